"""Generate and score one sample: :class:`SampleWorker` (used in the run's process, or in each
worker process under ``--jobs N``).

Batches (:mod:`tfgbench.batching`) use the same steps, so every rule below holds for them too.

Every way a sample can go wrong ends as error rows with the reason, never as a number:

* the sample could not be loaded: one error row per protocol, with the loader's message;
* the model fails, or returns something that is not ``(T, H, W, 3)`` uint8 frames of the sample's
  length and size (NaN or infinite values, the wrong shape, the wrong frame count): error rows
  naming the model, the sample and the problem;
* an input a protocol needs is missing (:attr:`tfgbench.data.sample.Sample.missing`: no audio
  track for LSE, a missing, empty or non-UTF-8 transcript for WER): error rows for the protocols
  that need it (``ProtocolSpec.needs``); the others still score;
* a metric raises, or returns a degenerate score (NaN or infinite value, measures missing): an
  error row for that protocol naming the measure.
"""

from __future__ import annotations

import math
import time

import numpy as np

from tfgbench.data.sample import Sample, check_frames
from tfgbench.delivery import deliver
from tfgbench.errors import ConfigError, SampleError, TfgbenchError
from tfgbench.metrics.base import Metric, Score
from tfgbench.model import TalkingFaceModel
from tfgbench.store import ProtocolResult
from tfgbench.videos import VideoCache


def failure(metric: Metric, error: str, sample_boxes: str | None = None, seconds: float | None = None
            ) -> ProtocolResult:
    """The error row of ``metric`` for one sample."""
    return ProtocolResult(metric.spec.name, metric.evaluator_sha256, {}, error, seconds=seconds,
                          protocol_version=metric.spec.version, sample_boxes=sample_boxes)


def error_text(e: BaseException) -> str:
    return str(e) if isinstance(e, TfgbenchError) else f"{type(e).__name__}: {e}"


def check_scores(metric: Metric, scores: object, where: str) -> dict[str, Score]:
    """``scores`` if it holds a finite value for every measure the protocol declares; otherwise a
    :class:`SampleError` naming the protocol, the sample and the degenerate measure."""
    name = metric.spec.name
    if not isinstance(scores, dict):
        raise SampleError(f"{where}: {name} returned {type(scores).__name__}, not a dict of scores")
    missing = [m.key for m in metric.spec.measures if m.key not in scores]
    if missing:
        raise SampleError(f"{where}: {name} returned no value for {', '.join(missing)}")
    for key, score in scores.items():
        value = getattr(score, "value", None)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            what = "no value" if value is None else "NaN" if isinstance(value, float) and math.isnan(value) \
                else "an infinite value" if isinstance(value, float) else f"a {type(value).__name__}"
            raise SampleError(f"{where}: {name} returned {what} for {key}; a degenerate score is not stored")
        for part in ("num", "den"):
            x = getattr(score, part, None)
            if x is not None and not math.isfinite(x):
                raise SampleError(f"{where}: {name} returned a non-finite {part} ({x}) for {key}")
    return scores


def check_output(frames: object, sample: Sample, model: TalkingFaceModel, strict_shape: bool) -> np.ndarray:
    """The model's output if it is usable frames for ``sample``; else a :class:`SampleError`."""
    where = f"{sample.where()}: model {model.name!r} output"
    if not isinstance(frames, np.ndarray):
        raise SampleError(f"{where} is {type(frames).__name__}, not a numpy array")
    if np.issubdtype(frames.dtype, np.floating) and not np.isfinite(frames).all():
        raise SampleError(f"{where} contains NaN or infinite values")
    if strict_shape and frames.ndim == 4 and frames.shape[0] != sample.num_frames:
        raise SampleError(f"{where} has {frames.shape[0]} frames, the sample has {sample.num_frames} "
                          "(a model must return as many frames as the sample: one per input frame)")
    return check_frames(frames, where, like=sample.frames if strict_shape else None)


def checkpoint_error(model: TalkingFaceModel, e: BaseException) -> None:
    """Raise :class:`ConfigError` when a generation failure is the model's checkpoint (plugins often
    load weights on first use): a file that cannot be read fails every sample, so it stops the run
    instead of storing one error row per sample that later runs would skip."""
    checkpoint = getattr(model, "checkpoint", None)
    if checkpoint is not None and str(checkpoint) in str(e):
        raise ConfigError(f"--checkpoint {checkpoint}: model {model.name!r} cannot use it: {error_text(e)}") from e


def sample_boxes(sample: Sample) -> str | None:
    """The face-box source a sample's rows record (column ``sample_boxes``)."""
    return sample.meta.get("boxes_key") or ("dataset" if sample.boxes is not None else None)


class SampleWorker:
    """Generates and scores samples; one per process (or Ray actor). :meth:`process` does one sample;
    its steps (:meth:`cached`, :meth:`checked`, :meth:`generation_failed`, :meth:`delivered`,
    :meth:`lacking`, :meth:`result`) are shared with the batched path (:mod:`tfgbench.batching`), so
    a sample ends the same way one at a time and in a batch."""

    def __init__(self, model: TalkingFaceModel, metrics: list[Metric], cache: VideoCache | None,
                 strict_shape: bool = True, delivery: str = "lossless") -> None:
        self.model, self.metrics, self.cache, self.strict_shape = model, metrics, cache, strict_shape
        self.delivery = delivery

    def wanted(self, todo: list[str]) -> list[Metric]:
        return [m for m in self.metrics if m.spec.name in todo]

    def process(self, sample: Sample | BaseException, sample_id: str, todo: list[str]) -> list[ProtocolResult]:
        wanted = self.wanted(todo)
        if isinstance(sample, BaseException):
            return [failure(m, error_text(sample)) for m in wanted]
        try:
            frames = self.cached(sample_id)
            if frames is None:
                frames = self.checked(self.model.generate(sample), sample)
        except Exception as e:  # any model failure is stored with its reason; the run goes on
            return self.generation_failed(sample, e, wanted)
        delivered = self.delivered(frames, sample)
        if isinstance(delivered, str):
            return [failure(m, delivered, sample_boxes(sample)) for m in wanted]
        results = []
        for metric in wanted:
            row = self.lacking(metric, sample)
            if row is None:
                t0 = time.perf_counter()
                try:
                    scores: object = metric.score(sample, delivered)
                except Exception as e:
                    scores = e
                row = self.result(metric, scores, time.perf_counter() - t0, sample)
            results.append(row)
        return results

    # -- the steps of :meth:`process` ------------------------------------------------------------
    def cached(self, sample_id: str) -> np.ndarray | None:
        return self.cache.get(sample_id) if self.cache is not None else None

    def checked(self, frames: object, sample: Sample) -> np.ndarray:
        """The model's output for ``sample`` (:func:`check_output`), written to the video cache."""
        frames = check_output(frames, sample, self.model, self.strict_shape)
        if self.cache is not None:
            self.cache.put(sample, frames)
        return frames

    def generation_failed(self, sample: Sample, e: BaseException, wanted: list[Metric]) -> list[ProtocolResult]:
        """The error rows of a sample the model could not generate; raises :class:`ConfigError`
        when the cause is the model's checkpoint (:func:`checkpoint_error`)."""
        checkpoint_error(self.model, e)
        missing = "".join(f" (the sample's {k} is unusable: {v})" for k, v in sample.missing.items()
                          if k == "audio")
        return [failure(m, f"generation failed: {error_text(e)}{missing}", sample_boxes(sample)) for m in wanted]

    def delivered(self, frames: np.ndarray, sample: Sample) -> np.ndarray | str:
        """The frames as scored (:func:`tfgbench.delivery.deliver`), or the error text."""
        try:
            return deliver(frames, self.delivery, sample.where())
        except Exception as e:
            return f"{self.delivery} delivery failed: {error_text(e)}"

    @staticmethod
    def lacking(metric: Metric, sample: Sample) -> ProtocolResult | None:
        """The error row of a protocol that needs an input the sample lacks (``ProtocolSpec.needs``
        against :attr:`Sample.missing`), else ``None``: the protocol can score the sample."""
        lacking = sorted(set(metric.spec.needs) & set(sample.missing))
        if not lacking:
            return None
        reasons = "; ".join(sample.missing[k] for k in lacking)
        return failure(metric, f"{metric.spec.name} needs the sample's {' and '.join(lacking)}: {reasons}",
                       sample_boxes(sample))

    @staticmethod
    def result(metric: Metric, scores: object, seconds: float, sample: Sample) -> ProtocolResult:
        """One protocol's row: its scores (:func:`check_scores`: a degenerate score is an error row),
        or the exception scoring raised."""
        boxes = sample_boxes(sample)
        try:
            if isinstance(scores, BaseException):
                raise scores
            checked = check_scores(metric, scores, sample.where())
        except Exception as e:
            return failure(metric, error_text(e), boxes, seconds)
        return ProtocolResult(metric.spec.name, metric.evaluator_sha256, checked, seconds=seconds,
                              protocol_version=metric.spec.version, sample_boxes=boxes)
