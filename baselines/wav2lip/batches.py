"""Training batches for the expert and the generator, sampled as the official training scripts do.

Everything is drawn from :class:`tfgbench.data.faceclips.FaceClips` (96x96 RGB face crops cached
once) and the clips' mel spectrograms (:func:`baselines.wav2lip.audio.melspectrogram`, computed
once at start-up). Faces are fed in **BGR** order, as the official models were trained
(``cv2.imread``), so that official checkpoints and ours share one inference path.

Windows (``T = 5`` frames starting at frame ``f``; mel column of frame ``j`` = ``int(80 j / 25)``):

* expert (``color_syncnet_train.py``): 5 frames' lower halves stacked on channels
  ``(15, 48, 96)`` against the 16 mel columns starting at frame ``f``; label 1 when the frames start
  at ``f`` (in sync), 0 when they start at another frame ``f' != f`` of the same clip.
* generator (``wav2lip_train.py``): target window ``(3, 5, 96, 96)``, its lower-half-masked copy
  ++ a reference window from another start ``f' != f`` of the same clip -> ``(6, 5, 96, 96)``; one
  mel chunk per frame starting one frame early (``int(80 (j - 1) / 25)``, the official
  ``get_segmented_mels``) -> ``(5, 1, 80, 16)``; and the expert's mel window at ``f`` ``(1, 80, 16)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from baselines.wav2lip.audio import MEL_STEP, melspectrogram

SYNC_T = 5


def mel_start(frame: int, fps: float = 25.0) -> int:
    """First mel column of video frame ``frame`` (80 mel frames per second)."""
    return int(80.0 * (frame / fps))


@dataclass
class ClipBank:
    """Face crops ``faces[i] (T, 96, 96, 3)`` uint8 RGB, mels ``mels[i] (80, M)``, mouth boxes in crop
    coordinates ``mouth[i] (T, 4)`` or ``None``, for the clips in ``index``."""

    faces: list[np.ndarray]
    mels: list[np.ndarray]
    mouth: list[np.ndarray | None]
    ids: list[str]
    _starts: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_face_clips(cls, clips: object, index: list[int] | None = None) -> ClipBank:
        index = list(range(len(clips))) if index is None else index
        return cls(faces=[clips.faces[i] for i in index], mels=[melspectrogram(clips.audio[i]) for i in index],
                   mouth=[clips.mouth[i] for i in index], ids=[clips.ids[i] for i in index])

    def __len__(self) -> int:
        return len(self.faces)

    def valid_starts(self, i: int, generator: bool) -> np.ndarray:
        """Window starts ``f`` whose 5 frames and every mel window they need exist."""
        t, m = len(self.faces[i]), self.mels[i].shape[1]
        key = (i, generator)
        if key not in self._starts:
            # the generator's per-frame chunks start one frame early: frames f-1 .. f+3 (and f for sync)
            first, last = (1, SYNC_T - 2) if generator else (0, 0)
            self._starts[key] = np.array([f for f in range(first, t - SYNC_T + 1)
                                          if mel_start(max(f, f + last)) + MEL_STEP <= m], dtype=np.int64)
        return self._starts[key]


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(..., H, W, 3)`` uint8 RGB -> float BGR in [0, 1], channels first ``(..., 3, H, W)``."""
    x = torch.from_numpy(np.ascontiguousarray(frames[..., ::-1])).float().div_(255.0)
    return x.movedim(-1, -3)


def _pick(bank: ClipBank, rng: np.random.Generator, generator: bool) -> tuple[int, int, int]:
    """A clip with at least two valid starts, its start ``f`` and another start ``f' != f``."""
    while True:
        i = int(rng.integers(len(bank)))
        starts = bank.valid_starts(i, generator)
        if len(starts) >= 2:
            f, other = rng.choice(starts, size=2, replace=False)
            return i, int(f), int(other)


def expert_batch(bank: ClipBank, rng: np.random.Generator,
                 batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mel (B, 1, 80, 16), faces (B, 15, 48, 96), label (B,))``, half in sync on average."""
    mels, faces, labels = [], [], []
    for _ in range(batch):
        i, f, other = _pick(bank, rng, generator=False)
        in_sync = bool(rng.integers(2))
        start = f if in_sync else other
        window = to_tensor(bank.faces[i][start:start + SYNC_T])[:, :, 48:]   # (5, 3, 48, 96)
        faces.append(window.reshape(SYNC_T * 3, 48, 96))
        mels.append(torch.from_numpy(bank.mels[i][:, mel_start(f):mel_start(f) + MEL_STEP]))
        labels.append(float(in_sync))
    return torch.stack(mels)[:, None], torch.stack(faces), torch.tensor(labels)


@dataclass
class GeneratorBatch:
    """One generator batch (official layouts): ``inputs (B, 6, 5, 96, 96)``, ``indiv_mels
    (B, 5, 1, 80, 16)``, ``sync_mel (B, 1, 80, 16)``, ``target (B, 3, 5, 96, 96)``, ``mouth (B, 5, 4)``
    mouth boxes in crop coordinates (NaN where unknown)."""

    inputs: torch.Tensor
    indiv_mels: torch.Tensor
    sync_mel: torch.Tensor
    target: torch.Tensor
    mouth: torch.Tensor


def generator_item(bank: ClipBank, i: int, f: int, ref: int) -> tuple[torch.Tensor, ...]:
    """Tensors of one generator window: clip ``i``, target frames ``f..f+4``, reference ``ref..ref+4``."""
    target = to_tensor(bank.faces[i][f:f + SYNC_T]).movedim(0, 1)          # (3, 5, 96, 96)
    reference = to_tensor(bank.faces[i][ref:ref + SYNC_T]).movedim(0, 1)
    masked = target.clone()
    masked[:, :, 48:] = 0.0
    mel = bank.mels[i]
    indiv = np.stack([mel[:, mel_start(j - 1):mel_start(j - 1) + MEL_STEP] for j in range(f, f + SYNC_T)])
    sync = mel[:, mel_start(f):mel_start(f) + MEL_STEP]
    mouth = bank.mouth[i][f:f + SYNC_T] if bank.mouth[i] is not None else np.full((SYNC_T, 4), np.nan, np.float32)
    return (torch.cat([masked, reference]), torch.from_numpy(indiv)[:, None], torch.from_numpy(sync)[None],
            target, torch.from_numpy(np.asarray(mouth, np.float32)))


def generator_batch(bank: ClipBank, rng: np.random.Generator, batch: int) -> GeneratorBatch:
    """``batch`` random windows (see the module docstring)."""
    items = [generator_item(bank, *_pick(bank, rng, generator=True)) for _ in range(batch)]
    return GeneratorBatch(*(torch.stack(parts) for parts in zip(*items)))


def fixed_generator_batch(bank: ClipBank, clips: int, seed: int = 1234) -> GeneratorBatch:
    """A deterministic validation batch: one window from each of the first ``clips`` clips."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(min(clips, len(bank))):
        starts = bank.valid_starts(i, generator=True)
        if len(starts) >= 2:
            f, ref = rng.choice(starts, size=2, replace=False)
            items.append(generator_item(bank, i, int(f), int(ref)))
    return GeneratorBatch(*(torch.stack(parts) for parts in zip(*items)))


def lower_half_windows(faces: torch.Tensor) -> torch.Tensor:
    """Generated ``(B, 3, 5, 96, 96)`` -> the expert's input ``(B, 15, 48, 96)`` (official
    ``get_sync_loss``: lower half, frames stacked on channels, frame-major)."""
    lower = faces[:, :, :, faces.size(3) // 2:]
    return torch.cat([lower[:, :, k] for k in range(lower.size(2))], dim=1)


def region_mask(mouth: torch.Tensor, size: int = 96) -> torch.Tensor:
    """``(B, T, 4)`` mouth boxes in crop coordinates -> ``(B, 1, T, size, size)`` 0/1 mask of the box;
    where a box is unknown (NaN), the lower half of the crop."""
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    box = torch.where(torch.isnan(mouth), torch.tensor([0.0, 0.5, 1.0, 1.0]).expand_as(mouth), mouth)
    x_in = (grid >= box[..., 0:1]) & (grid < box[..., 2:3])        # (B, T, size)
    y_in = (grid >= box[..., 1:2]) & (grid < box[..., 3:4])
    return (y_in[..., :, None] & x_in[..., None, :]).float()[:, None]
