"""LSE-C / LSE-D (SyncNet lip-sync error) with pinned protocols.

``LSE`` is the ``lse`` metric family: ``lse/wav2lip`` (default), ``lse/wav2lip-nojpeg``,
``lse/syncnet-python`` and ``lse/synthetic``; every procedure, constant and bad-input rule is in
:mod:`tfgbench.metrics.lse.protocols`. Measures: ``lse_c`` (higher is better), ``lse_d`` (lower is
better), ``offset`` (frames, 0 = in sync). Light at import: torch loads when an ``LSE`` is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tfgbench.data.sample import Sample
from tfgbench.metrics.base import Metric, Score
from tfgbench.metrics.lse.protocols import (
    CONFIGS,
    PROTOCOLS,
    ClipTooShortError,
    LSEError,
    NoFaceError,
    SilentAudioError,
)

if TYPE_CHECKING:
    from tfgbench.metrics.lse.scorer import Prepared
    from tfgbench.metrics.lse.scoring import SyncResult

__all__ = ["LSE", "PROTOCOLS", "CONFIGS", "LSEError", "ClipTooShortError", "SilentAudioError", "NoFaceError"]


class LSE(Metric):
    """SyncNet LSE-C / LSE-D.

    Args:
        protocol: one of :data:`PROTOCOLS` (default ``lse/wav2lip``).
        device: torch device.
        weights: SyncNet weights (``syncnet_v2.model`` for the official protocols; found via
            ``$TFGBENCH_SYNCNET`` or ``$TFGBENCH_HOME/weights/`` when omitted; the shipped
            checkpoint for ``lse/synthetic``).
        options: ``s3fd`` (``sfd_face.pth`` for ``lse/syncnet-python``), ``threads``.
    """

    family = "lse"
    protocols = PROTOCOLS
    default_protocol = "lse/wav2lip"
    batch_size = 4

    def __init__(self, protocol: str | None = None, device: str = "cpu",
                 weights: str | Path | None = None, **options: Any) -> None:
        super().__init__(protocol, device, weights, **options)
        from tfgbench.metrics.lse.scorer import SyncScorer

        self.scorer = SyncScorer(self.spec.name, weights=weights, device=device,
                                 s3fd=options.get("s3fd"), threads=options.get("threads"))

    @property
    def evaluator_sha256(self) -> str:
        return self.scorer.sha256

    def score(self, sample: Sample, frames: np.ndarray) -> dict[str, Score]:
        """LSE of generated ``frames`` against ``sample.audio`` (and ``sample.boxes`` for
        ``lse/synthetic``)."""
        boxes = sample.boxes if CONFIGS[self.spec.name].crop == "boxes" else None
        return self._scores(self.scorer.score_frames(frames, sample.audio, boxes=boxes, where=sample.where()))

    @staticmethod
    def _scores(r: SyncResult) -> dict[str, Score]:
        return {"lse_c": Score(r.lse_c), "lse_d": Score(r.lse_d), "offset": Score(float(r.offset))}

    def score_batch(self, samples: Sequence[Sample], frames: Sequence[np.ndarray]
                    ) -> list[dict[str, Score] | Exception]:
        """Batched :meth:`score`: each clip prepared alone, the SyncNet passes shared by the batch
        (equal to :meth:`score` to float rounding: ``tests/test_batching.py``)."""
        use_boxes = CONFIGS[self.spec.name].crop == "boxes"
        preps: list[Prepared | Exception] = []
        for sample, f in zip(samples, frames, strict=True):
            try:
                preps.append(self.scorer.prepare(f, sample.audio, sample.boxes if use_boxes else None,
                                                 sample.where()))
            except Exception as e:  # noqa: BLE001 - this sample's error row
                preps.append(e)
        return [r if isinstance(r, Exception) else self._scores(r) for r in self.scorer.score_prepared_many(preps)]
