"""``WERScorer``: one protocol's reader + frame preparation + word-error counting (imports torch).

Readers by protocol (:data:`tfgbench.metrics.wer.protocols.CONFIGS`):

* ``*-avhubert`` -> :class:`tfgbench.readers.avhubert_reader.AVHubertReader` (fairseq ``.pt`` or
  our safetensors), beam search;
* ``*-conformer`` -> :mod:`tfgbench.readers.conformer_reader` (TalkLip observer 2 or our
  safetensors), teacher forcing.

Weights: ``weights`` (``--reader FILE``), else the protocol's environment variable, else
``$TFGBENCH_HOME/weights/<official name>`` (:func:`tfgbench.paths.find_file`); the synthetic
protocols default to the checkpoints shipped in ``tfgbench/weights/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tfgbench.data.sample import check_frames
from tfgbench.errors import MissingResourceError, TfgbenchError
from tfgbench.metrics.wer import preprocess as pp
from tfgbench.metrics.wer.protocols import CONFIGS
from tfgbench.metrics.wer.text import EmptyTranscriptError, WordErrors, normalize_text, word_errors
from tfgbench.readers.base import LipReader

SYNTHETIC_AVHUBERT = Path(__file__).resolve().parents[2] / "weights" / "avhubert-synthetic.safetensors"
AVHUBERT_RETRAIN = "python -m tfgbench.readers.train_synthetic_avhubert"


@dataclass
class WERResult:
    hypothesis: str
    reference: str
    errors: WordErrors


def resolve_spm(spm: str | Path | None) -> Path | None:
    """The SentencePiece model an official AV-HuBERT reader is given: ``spm`` (``--spm``), else
    ``$TFGBENCH_AVHUBERT_SPM``, else ``$TFGBENCH_HOME/weights/spm_unigram1000.model`` if present
    (used only when the checkpoint has no dictionary)."""
    from tfgbench.paths import home

    if spm is not None:
        return Path(spm).expanduser()
    if os.environ.get("TFGBENCH_AVHUBERT_SPM"):
        return Path(os.environ["TFGBENCH_AVHUBERT_SPM"]).expanduser()
    default = home() / "weights" / "spm_unigram1000.model"
    return default if default.is_file() else None


def build_reader(protocol: str, weights: str | Path | None = None, device: str = "cpu",
                 spm: str | Path | None = None, batch_size: int | None = None) -> LipReader:
    """The reader a protocol pins (see module docstring). Raises MissingResourceError when a
    checkpoint or tokenizer is missing, naming where it was looked for and where it comes from."""
    from tfgbench.paths import find_file

    cfg = CONFIGS[protocol]
    if cfg.reader == "avhubert":
        from tfgbench.readers.avhubert_reader import DecodeSettings, load_avhubert_reader

        if cfg.weights == "synthetic":
            path = Path(weights) if weights is not None else SYNTHETIC_AVHUBERT
            if not path.is_file():
                raise MissingResourceError(f"the synthetic AV-HuBERT reader is missing: {path}. "
                                           f"Retrain it with: {AVHUBERT_RETRAIN}")
        else:
            path = find_file(f"the {protocol} reader checkpoint", weights, cfg.env, cfg.filename, cfg.origin,
                             flag="--reader")
        return load_avhubert_reader(path, spm=resolve_spm(spm), device=device, decode=DecodeSettings(beam=cfg.beam),
                                    batch_size=batch_size or 4)
    from tfgbench.readers import conformer_reader as cr

    if cfg.weights == "synthetic":
        return cr.load_synthetic_reader(device=device, path=weights)
    return cr.ConformerReader.from_file(cr.find_observer(weights, flag="--reader"), device=device,
                                        batch_size=batch_size or 8)


class WERScorer:
    """Scores clips under one WER protocol.

    Args:
        protocol: a key of :data:`CONFIGS`.
        weights: reader checkpoint (see :func:`build_reader`).
        device: torch device.
        spm: SentencePiece ``.model`` for AV-HuBERT checkpoints that carry neither a dictionary nor
            a tokenizer (else ``$TFGBENCH_AVHUBERT_SPM``).
        mean_face: ``20words_mean_face.npy`` for ``wer/avhubert-roi`` with landmarks (else
            ``$TFGBENCH_MEAN_FACE`` or ``$TFGBENCH_HOME/weights/``; looked up only when needed).
    """

    def __init__(self, protocol: str, weights: str | Path | None = None, device: str = "cpu",
                 spm: str | Path | None = None, mean_face: str | Path | None = None,
                 batch_size: int | None = None, reader: LipReader | None = None) -> None:
        if protocol not in CONFIGS:
            raise TfgbenchError(f"unknown WER protocol {protocol!r}; choose from {', '.join(CONFIGS)}")
        self.protocol, self.config = protocol, CONFIGS[protocol]
        self.reader = reader if reader is not None else build_reader(protocol, weights, device, spm, batch_size)
        self.mean_face_path = mean_face
        self._mean_face: np.ndarray | None = None
        self.side_files = self._side_files(spm)

    def _side_files(self, spm: str | Path | None) -> dict[str, str]:
        """sha256 of every file besides the reader's weights that can change a transcript: the
        SentencePiece model given to an official AV-HuBERT reader, the mean face of
        ``wer/avhubert-roi`` (``none`` when absent: samples that need it then fail)."""
        from tfgbench.filehash import file_sha256
        from tfgbench.paths import find_file

        out: dict[str, str] = {}
        if self.config.reader == "avhubert" and self.config.weights == "official":
            path = resolve_spm(spm)
            if path is not None:
                out["spm"] = file_sha256(path, "--spm")
        if self.config.frames == "roi":
            try:
                self.mean_face_path = find_file("the AV-HuBERT mean face", self.mean_face_path, "TFGBENCH_MEAN_FACE",
                                                "20words_mean_face.npy", pp.MEAN_FACE_ORIGIN, flag="--mean-face")
                out["mean-face"] = file_sha256(self.mean_face_path, "--mean-face")
            except MissingResourceError:
                if self.mean_face_path is not None:
                    raise
                out["mean-face"] = "none"
        return out

    @property
    def sha256(self) -> str:
        """The evaluator key: the reader's weights, then each side file (see :meth:`_side_files`)."""
        return self.reader.sha256 + "".join(f"+{k}:{v}" for k, v in sorted(self.side_files.items()))

    def mean_face(self) -> np.ndarray:
        if self._mean_face is None:
            from tfgbench.paths import find_file

            path = find_file("the AV-HuBERT mean face", self.mean_face_path, "TFGBENCH_MEAN_FACE",
                             "20words_mean_face.npy", pp.MEAN_FACE_ORIGIN, flag="--mean-face")
            face = np.load(path, allow_pickle=False)
            if face.shape != (68, 2):
                raise TfgbenchError(f"{path}: a mean face must have shape (68, 2), got {face.shape}")
            self._mean_face = face.astype(np.float64)
        return self._mean_face

    def prepare(self, frames: np.ndarray, meta: Mapping[str, Any] | None = None, where: str = "clip") -> np.ndarray:
        """RGB uint8 ``(T, H, W, 3)`` -> the reader's ``(T, S, S)`` float32 input."""
        check_frames(frames, where)
        meta = meta or {}
        kind = self.config.frames
        if kind == "full-frame":
            return pp.avhubert_full_frame(frames, where)
        if kind == "conformer":
            return pp.talklip_conformer(frames, where)
        if kind == "roi":
            marks = meta.get("landmarks")
            needs_marks = frames.shape[1:3] != (pp.ROI_SIZE, pp.ROI_SIZE)
            face = self.mean_face() if needs_marks and marks is not None else None
            return pp.avhubert_roi(frames, marks, face, where)
        boxes = meta.get("mouth_box", meta.get("mouth_boxes"))
        return pp.synthetic_mouth_clips(frames, boxes, where)

    def score_many(self, items: Sequence[tuple[np.ndarray, str | None, Mapping[str, Any] | None, str]]
                   ) -> list[WERResult | TfgbenchError]:
        """Score ``(frames, reference, meta, where)`` items in reader batches; a bad item becomes
        its TfgbenchError in the output list, the others are still scored."""
        out: list[WERResult | TfgbenchError | None] = [None] * len(items)
        ready: list[tuple[int, np.ndarray, str]] = []
        for i, (frames, ref, meta, where) in enumerate(items):
            try:
                if not normalize_text(ref or ""):
                    raise EmptyTranscriptError(f"{where}: the reference transcript is empty; WER needs at "
                                               "least one reference word")
                ready.append((i, self.prepare(frames, meta, where), normalize_text(ref or "")))
            except TfgbenchError as e:
                out[i] = e
        if ready:
            videos = [torch.from_numpy(clip) for _, clip, _ in ready]
            refs = [ref for _, _, ref in ready]
            try:
                hyps = self.reader.transcribe(videos, refs)
            except TfgbenchError:
                hyps = []
                for v, r, (i, _, _) in zip(videos, refs, ready):   # isolate the clip that fails
                    try:
                        hyps.append(self.reader.transcribe([v], [r])[0])
                    except TfgbenchError as e:
                        out[i] = e
                        hyps.append(None)
            for (i, _, ref), hyp in zip(ready, hyps):
                if hyp is not None:
                    out[i] = WERResult(normalize_text(hyp), ref, word_errors(ref, hyp, items[i][3]))
        return out  # type: ignore[return-value]

    def score(self, frames: np.ndarray, reference: str | None, meta: Mapping[str, Any] | None = None,
              where: str = "clip") -> WERResult:
        """Score one clip; raises the TfgbenchError describing bad input."""
        result = self.score_many([(frames, reference, meta, where)])[0]
        if isinstance(result, TfgbenchError):
            raise result
        return result
