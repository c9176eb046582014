"""Batches of samples for models and metrics that declare batch support (``--batch-size N``).

A model whose ``batch_size`` class attribute is above 1 gets up to N samples at once through
:meth:`~tfgbench.model.TalkingFaceModel.generate_batch`; a metric whose ``batch_size`` is above 1
gets the batch's generated clips through :meth:`~tfgbench.metrics.base.Metric.score_batch`. Clips of
different lengths share a batch: each plugin pads them itself (Wav2Lip concatenates the clips' 5-frame
windows, TalkLip/SyncTalklip pad the audio with a mask, SyncNet and the readers take windows or padded
clips), so a sample's output never depends on its neighbours beyond float rounding. Everything else is
per sample, exactly as one at a time (the steps of :class:`tfgbench.sample_worker.SampleWorker`): the
video cache, the output checks (shape, frame count, NaN), the delivery encode, a protocol whose input
the sample lacks (``Sample.missing``), a degenerate score, a checkpoint that cannot be read (the run
stops), one error row per failing sample.

Isolation: when ``generate_batch`` (or ``score_batch``) raises for the whole batch, each sample is
generated (scored) alone, so one bad sample never fails its neighbours. Results are stored after each
batch, so a killed run loses at most the batch in flight. A protocol's ``seconds`` in a batch is the
batch's time divided by the clips it scored.

``tests/test_batching.py`` runs the shipped tiny models and evaluators batched and one at a time and
compares the stored rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from tfgbench.data.sample import Sample
    from tfgbench.metrics.base import Metric
    from tfgbench.model import TalkingFaceModel
    from tfgbench.sample_worker import SampleWorker
    from tfgbench.store import ProtocolResult

#: one sample of a batch: its id, the loaded sample (or the error loading raised), the protocols to score
Item = tuple[str, "Sample | BaseException", list[str]]
T = TypeVar("T")


def default_batch_size(model: TalkingFaceModel, metrics: Sequence[Metric]) -> int:
    """The batch a run uses without ``--batch-size``: the largest the model or a metric declares
    (1 when none declares batch support, e.g. ground truth scored with PSNR/SSIM only)."""
    return max([int(getattr(model, "batch_size", 1)), *(int(getattr(m, "batch_size", 1)) for m in metrics)])


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def process_batch(worker: SampleWorker, items: Sequence[Item]) -> list[tuple[str, list[ProtocolResult]]]:
    """Generate and score a batch; returns ``(sample_id, rows)`` per item, in order. With one item
    (or a model and metrics without batch support) it is :meth:`SampleWorker.process` per sample.
    Raises :class:`~tfgbench.errors.ConfigError` (the run stops) as :meth:`SampleWorker.process` does."""
    from tfgbench.sample_worker import error_text, failure, sample_boxes

    batched_metrics = [m for m in worker.metrics if getattr(m, "batch_size", 1) > 1]
    if len(items) <= 1 or (getattr(worker.model, "batch_size", 1) <= 1 and not batched_metrics):
        return [(i, worker.process(s, i, todo)) for i, s, todo in items]

    results: dict[int, list[ProtocolResult]] = {}
    frames: dict[int, np.ndarray] = {}       # delivered frames of the items that reached scoring
    to_generate: list[int] = []
    for k, (sample_id, sample, todo) in enumerate(items):
        if isinstance(sample, BaseException):
            results[k] = [failure(m, error_text(sample)) for m in worker.wanted(todo)]
            continue
        try:
            cached = worker.cached(sample_id)
        except Exception as e:
            results[k] = worker.generation_failed(sample, e, worker.wanted(todo))
            continue
        if cached is None:
            to_generate.append(k)
        else:
            frames[k] = cached

    for k, out in zip(to_generate, _generate(worker, [items[k] for k in to_generate])):
        sample = items[k][1]
        assert not isinstance(sample, BaseException)
        try:
            if isinstance(out, BaseException):
                raise out
            frames[k] = worker.checked(out, sample)
        except Exception as e:  # any model failure is stored with its reason; the run goes on
            results[k] = worker.generation_failed(sample, e, worker.wanted(items[k][2]))

    for k in sorted(frames):
        sample = items[k][1]
        assert not isinstance(sample, BaseException)
        delivered = worker.delivered(frames[k], sample)
        if isinstance(delivered, str):
            del frames[k]
            results[k] = [failure(m, delivered, sample_boxes(sample)) for m in worker.wanted(items[k][2])]
        else:
            frames[k] = delivered

    rows: dict[tuple[int, str], ProtocolResult] = {}
    for metric in worker.metrics:
        ks = []
        for k in sorted(frames):
            sample = items[k][1]
            assert not isinstance(sample, BaseException)
            if metric.spec.name not in items[k][2]:
                continue
            lacking = worker.lacking(metric, sample)  # an input the protocol needs is missing
            if lacking is None:
                ks.append(k)
            else:
                rows[k, metric.spec.name] = lacking
        for k, row in zip(ks, _score(worker, metric, [items[k][1] for k in ks], [frames[k] for k in ks])):
            rows[k, metric.spec.name] = row
    for k in frames:
        results[k] = [rows[k, m.spec.name] for m in worker.wanted(items[k][2])]
    return [(items[k][0], results[k]) for k in range(len(items))]


def _generate(worker: SampleWorker, items: Sequence[Item]) -> list[np.ndarray | BaseException]:
    """The model's output per item (or the exception it raised): one ``generate_batch`` call when
    the model declares batch support, each sample alone when that call fails or returns a wrong count."""
    model = worker.model
    samples = [s for _, s, _ in items]

    def alone(sample: Sample) -> np.ndarray | BaseException:
        try:
            return model.generate(sample)
        except Exception as e:  # noqa: BLE001 - stored as this sample's error row
            return e

    if len(samples) > 1 and getattr(model, "batch_size", 1) > 1:
        try:
            outs = model.generate_batch(samples)  # type: ignore[arg-type]
            if isinstance(outs, Sequence) and len(outs) == len(samples):
                return list(outs)
        except Exception:  # noqa: BLE001, S110 - isolate the failing sample: each one alone below
            pass
    return [alone(s) for s in samples]  # type: ignore[arg-type]


def _score(worker: SampleWorker, metric: Metric, samples: Sequence[Sample], frames: Sequence[np.ndarray]
           ) -> list[ProtocolResult]:
    """One protocol's rows for the batch (``score_batch`` when the metric declares batch support);
    :meth:`SampleWorker.result` turns a degenerate score into an error row, as one at a time."""
    if not samples:
        return []
    outs: list[object] | None = None
    t0 = time.perf_counter()
    if len(samples) > 1 and getattr(metric, "batch_size", 1) > 1:
        try:
            got = metric.score_batch(samples, frames)
            outs = list(got) if len(got) == len(samples) else None
        except Exception:  # noqa: BLE001, S110 - scored one by one below
            outs = None
    if outs is not None:
        seconds = (time.perf_counter() - t0) / len(samples)
        return [worker.result(metric, o, seconds, s) for s, o in zip(samples, outs)]
    rows = []
    for sample, f in zip(samples, frames):
        t0 = time.perf_counter()
        try:
            one: object = metric.score(sample, f)
        except Exception as e:  # noqa: BLE001 - this sample's error row
            one = e
        rows.append(worker.result(metric, one, time.perf_counter() - t0, sample))
    return rows
