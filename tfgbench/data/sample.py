"""The sample contract shared by datasets, models and metrics.

A sample is one utterance: RGB uint8 frames ``(T, H, W, 3)`` at 25 fps, mono float32 audio
at 16 kHz, the transcript, and optional per-frame face boxes ``(T, 4)`` as ``x1, y1, x2, y2``
pixel coordinates (x2/y2 exclusive). Datasets convert other rates once, on load
(see :mod:`tfgbench.media.resample`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfgbench.errors import SampleError

FPS = 25
SAMPLE_RATE = 16_000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640


@dataclass
class Sample:
    """One utterance of a dataset.

    Attributes:
        id: dataset-unique id, e.g. ``"6330311066473698535/00011"`` for LRS2.
        frames: ``(T, H, W, 3)`` uint8 RGB at :data:`FPS`.
        audio: ``(N,)`` float32 mono in [-1, 1] at :data:`SAMPLE_RATE`.
        transcript: the spoken words, or ``None`` where the dataset has none.
        boxes: ``(T, 4)`` int face boxes ``x1, y1, x2, y2`` or ``None``.
        path: the file the sample was read from, for error messages.
        meta: dataset-specific extras (e.g. mouth landmarks of the synthetic corpus).
        missing: inputs the sample lacks, each with the reason naming the file: ``"audio"`` (no
            audio track; ``audio`` is then empty) and ``"transcript"`` (no transcript file, an empty
            one, or one that is not valid UTF-8; ``transcript`` is then ``None``). The runner gives
            error rows only to the protocols that need such an input (``ProtocolSpec.needs``).
    """

    id: str
    frames: np.ndarray
    audio: np.ndarray
    transcript: str | None = None
    boxes: np.ndarray | None = None
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / FPS

    def where(self) -> str:
        """A short description of where the sample came from, for error messages."""
        return str(self.path) if self.path is not None else f"sample {self.id!r}"

    def validate(self) -> Sample:
        """Check the contract; raise :class:`SampleError` naming the sample and the problem."""
        check_frames(self.frames, self.where())
        a = self.audio
        if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype != np.float32:
            raise SampleError(f"{self.where()}: audio must be a 1-D float32 array, got "
                              f"{getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')}")
        if a.size == 0 and "audio" not in self.missing:
            raise SampleError(f"{self.where()}: the audio track is empty")
        if self.boxes is not None and self.boxes.shape != (self.num_frames, 4):
            raise SampleError(f"{self.where()}: boxes have shape {self.boxes.shape}, "
                              f"expected ({self.num_frames}, 4)")
        return self


def check_frames(frames: object, where: str, like: np.ndarray | None = None) -> np.ndarray:
    """Check that ``frames`` is a non-empty ``(T, H, W, 3)`` uint8 array (and matches ``like``'s
    shape when given). Raises :class:`SampleError` that names ``where`` and the problem."""
    if not isinstance(frames, np.ndarray):
        raise SampleError(f"{where}: frames must be a numpy array, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise SampleError(f"{where}: frames must have shape (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        if np.issubdtype(frames.dtype, np.floating) and not np.isfinite(frames).all():
            raise SampleError(f"{where}: frames contain NaN or infinite values")
        raise SampleError(f"{where}: frames must be uint8, got {frames.dtype}")
    if frames.shape[0] == 0:
        raise SampleError(f"{where}: the video has no frames")
    if like is not None and frames.shape != like.shape:
        raise SampleError(f"{where}: output has shape {frames.shape}, the sample has {like.shape} "
                          "(a model must return as many frames as the sample, of the same size)")
    return frames
