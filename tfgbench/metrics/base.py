"""The metric contract: a metric family with named protocols, scoring one sample (or a batch) at a time.

A *protocol* pins every choice that changes a number (crop, resize, colour order, JPEG round
trip, window, reader checkpoint, beam, text normalisation, averaging). Results are stored and
compared per protocol, never mixed. One protocol yields one or more *measures* (``lse/wav2lip``
yields ``lse_c``, ``lse_d`` and ``offset``).

Per-sample results are stored as :class:`Score` rows. The dataset value of a measure is either
the mean of per-sample values (``pooled=False``: e.g. LSE, mean over videos) or the ratio of
summed sufficient statistics (``pooled=True``: ``sum(num) / sum(den)``, e.g. corpus WER =
edits / reference words, frame-pooled PSNR = sum of frame PSNRs / frames). Aggregation is a pure
function of stored rows (:func:`aggregate`), so tables never need the metric's weights.

Metric modules must not import torch at module level: ``tfgbench list protocols`` imports them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tfgbench.data.sample import Sample
from tfgbench.errors import TfgbenchError


@dataclass(frozen=True)
class Measure:
    """One number a protocol produces per sample.

    Attributes:
        key: stored name, e.g. ``"lse_c"``.
        label: column header, e.g. ``"LSE-C"``.
        higher_is_better: direction shown as an arrow in tables; ``None`` for a measure that is
            reported but not ranked (the AV offset: 0 is in sync, both signs are off).
        pooled: dataset value is ``sum(num) / sum(den)`` over samples; else the mean of values.
        percent: displayed multiplied by 100 (WER).
        digits: decimals shown in tables.
    """

    key: str
    label: str
    higher_is_better: bool | None
    pooled: bool = False
    percent: bool = False
    digits: int = 2


@dataclass(frozen=True)
class ProtocolSpec:
    """A named, fully pinned way of computing a metric.

    Attributes:
        name: ``"<family>/<variant>"``, lowercase kebab-case, e.g. ``"psnr/talklip"``.
        measures: what it produces per sample.
        summary: one line for ``tfgbench list protocols``.
        settings: every pinned choice, shown to users and recorded with results.
        needs: inputs beyond the generated frames: any of ``"reference"`` (ground-truth frames),
            ``"audio"``, ``"transcript"``, ``"boxes"``.
        version: bumped whenever the protocol's code changes a number. It is part of every
            result's key: rows of different versions are never mixed in a table cell, and a run
            re-scores samples stored under an older version.
    """

    name: str
    measures: tuple[Measure, ...]
    summary: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    needs: frozenset[str] = frozenset()
    version: int = 1

    @property
    def family(self) -> str:
        return self.name.split("/", 1)[0]


@dataclass(frozen=True)
class Score:
    """One measure on one sample. For pooled measures ``value == num / den``."""

    value: float
    num: float | None = None
    den: float | None = None

    @staticmethod
    def ratio(num: float, den: float) -> Score:
        return Score(value=(num / den) if den else math.nan, num=float(num), den=float(den))


class Metric(ABC):
    """Base class of metric plugins (entry-point group ``tfgbench.metrics``, keyed by family).

    Subclasses set ``family``, ``protocols`` and ``default_protocol`` and implement
    :meth:`score`. Heavy state (networks, weights) is built in ``__init__``; torch is imported
    there, never at module level.
    """

    family: ClassVar[str]
    protocols: ClassVar[tuple[ProtocolSpec, ...]]
    default_protocol: ClassVar[str]
    #: how many samples :meth:`score_batch` likes at once (1 = no batching benefit: the runner
    #: then calls :meth:`score` per sample)
    batch_size: ClassVar[int] = 1

    def __init__(self, protocol: str | None = None, device: str = "cpu",
                 weights: str | Path | None = None, **options: Any) -> None:
        self.spec = self.protocol_spec(protocol or self.default_protocol)
        self.device = device
        self.options = options

    @classmethod
    def protocol_spec(cls, name: str) -> ProtocolSpec:
        for spec in cls.protocols:
            if spec.name == name:
                return spec
        raise TfgbenchError(f"metric {cls.family!r} has no protocol {name!r}; it has: "
                            f"{', '.join(s.name for s in cls.protocols)}")

    @property
    def evaluator_sha256(self) -> str:
        """sha256 of the evaluator's weights (``"none"`` for metrics without weights)."""
        return "none"

    @abstractmethod
    def score(self, sample: Sample, frames: np.ndarray) -> dict[str, Score]:
        """Score generated ``frames`` ``(T, H, W, 3)`` uint8 RGB (25 fps) for ``sample``.

        ``sample`` carries the ground-truth frames, the driving audio, the transcript and boxes.
        Returns one :class:`Score` per measure key. Raises a TfgbenchError subclass with a clear
        message when the input cannot be scored; the runner stores that as an error row.
        """

    def score_batch(self, samples: Sequence[Sample], frames: Sequence[np.ndarray]
                    ) -> list[dict[str, Score] | Exception]:
        """Batched :meth:`score`: per sample its scores, or the exception that sample raised (the
        others are still scored). Each sample's scores must equal what :meth:`score` gives it
        alone (to float rounding; see ``tests/test_batching.py``). The default calls :meth:`score`."""
        out: list[dict[str, Score] | Exception] = []
        for sample, f in zip(samples, frames, strict=True):
            try:
                out.append(self.score(sample, f))
            except Exception as e:  # noqa: BLE001 - returned to the caller, who stores it per sample
                out.append(e)
        return out


def aggregate(measure: Measure, rows: Iterable[tuple[float, float | None, float | None]]) -> float:
    """Dataset value of ``measure`` from per-sample ``(value, num, den)`` rows.

    ``pooled``: ``sum(num) / sum(den)``; otherwise ``mean(value)``. NaN for no rows.
    """
    rows = list(rows)
    if not rows:
        return math.nan
    if measure.pooled:
        den = sum(r[2] for r in rows if r[2] is not None)
        num = sum(r[1] for r in rows if r[1] is not None)
        return num / den if den else math.nan
    return sum(r[0] for r in rows) / len(rows)
