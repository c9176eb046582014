"""Lip-reading word error rate (WER) with pinned protocols.

``WER`` is the ``wer`` metric family: ``wer/talklip-avhubert`` (default; the paper's WER1),
``wer/talklip-conformer`` (WER2), ``wer/avhubert-roi``, ``wer/synthetic-avhubert`` and
``wer/synthetic-conformer``; every choice is in :mod:`tfgbench.metrics.wer.protocols`, the text
rule in :mod:`tfgbench.metrics.wer.text`, the crops in :mod:`tfgbench.metrics.wer.preprocess`.
One measure, ``wer``, stored per sample with ``num`` = edits and ``den`` = reference words.
Light at import: torch loads when a ``WER`` is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfgbench.data.sample import Sample
from tfgbench.errors import TfgbenchError
from tfgbench.metrics.base import Metric, Score
from tfgbench.metrics.wer.protocols import CONFIGS, PROTOCOLS
from tfgbench.metrics.wer.text import EmptyTranscriptError, WordErrors, normalize_text, word_errors

__all__ = ["WER", "PROTOCOLS", "CONFIGS", "EmptyTranscriptError", "WordErrors", "normalize_text", "word_errors"]


class WER(Metric):
    """Word error rate of a lip reader on the generated frames against the sample's transcript.

    Args:
        protocol: one of :data:`PROTOCOLS` (default ``wer/talklip-avhubert``).
        device: torch device.
        weights: the reader checkpoint (else the protocol's environment variable
            ``$TFGBENCH_AVHUBERT`` / ``$TFGBENCH_AVHUBERT_VSR`` / ``$TFGBENCH_CONFORMER_OBSERVER``, then
            ``$TFGBENCH_HOME/weights/<official name>``; the shipped checkpoints for ``wer/synthetic-*``).
        options: ``spm`` (SentencePiece ``.model``; else ``$TFGBENCH_AVHUBERT_SPM``), ``mean_face``
            (``20words_mean_face.npy`` for ``wer/avhubert-roi``), ``batch_size``.
    """

    family = "wer"
    protocols = PROTOCOLS
    default_protocol = "wer/talklip-avhubert"
    batch_size = 8

    def __init__(self, protocol: str | None = None, device: str = "cpu",
                 weights: str | Path | None = None, **options: Any) -> None:
        super().__init__(protocol, device, weights, **options)
        from tfgbench.metrics.wer.scorer import WERScorer

        self.scorer = WERScorer(self.spec.name, weights=weights, device=device, spm=options.get("spm"),
                                mean_face=options.get("mean_face"), batch_size=options.get("batch_size"),
                                reader=options.get("reader"))
        self.last_hypothesis: str | None = None

    @property
    def evaluator_sha256(self) -> str:
        return self.scorer.sha256

    @staticmethod
    def _scores(edits: int, words: int) -> dict[str, Score]:
        return {"wer": Score(value=edits / words, num=float(edits), den=float(words))}

    def score(self, sample: Sample, frames: np.ndarray) -> dict[str, Score]:
        """WER of ``frames`` read by the protocol's reader, against ``sample.transcript``."""
        r = self.scorer.score(frames, sample.transcript, sample.meta, sample.where())
        self.last_hypothesis = r.hypothesis
        return self._scores(r.errors.edits, r.errors.words)

    def score_batch(self, samples: Sequence[Sample], frames: Sequence[np.ndarray]
                    ) -> list[dict[str, Score] | Exception]:
        """Batched :meth:`score` (one reader batch); a sample that cannot be scored yields its error."""
        results = self.scorer.score_many([(f, s.transcript, s.meta, s.where()) for s, f in zip(samples, frames)])
        return [r if isinstance(r, TfgbenchError) else self._scores(r.errors.edits, r.errors.words)
                for r in results]
