"""TalkLip's inputs: audio features, generator inputs, and training batches from cached face clips.

Audio (official ``fre_audio`` + ``audio_visual_align``): ``python_speech_features.logfbank`` (26
filters, 100 Hz) stacked by 4 -> 104-d at 25 Hz, layer-normalised per frame
(:func:`tfgbench.media.features.stacked_logfbank`, the features of
:func:`tfgbench.readers.pretrain.prepare_sample`), aligned to the video length: zeros appended when
short; when long, ``train.py`` cuts the end and ``inf_test.py`` cuts both ends evenly
(``align="end"`` / ``"centre"``).

Generator input (official ``Talklipdata``): face crop ``/ 255`` with rows ``48:96`` zeroed, next to
the reference crop: ``(N, 6, 96, 96)``.

Training batch (:func:`sample_batch`), per clip: a window of ``window`` consecutive frames to
generate, each with a reference frame drawn from the clip at least ``MIN_REFERENCE_GAP`` frames
away (official: a 5-frame window elsewhere in the clip); the clip's whole audio and real face
sequence come along, so the lip-reading expert reads the full clip with the generated frames
pasted in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tfgbench.media.features import stacked_logfbank

#: reference frames are drawn at least this far from the frame being generated
MIN_REFERENCE_GAP = 5
#: mouth box (face-crop [0, 1] coordinates) assumed where a dataset has none: the lower-middle face
DEFAULT_MOUTH_BOX = (0.25, 0.55, 0.75, 1.0)


def audio_features(audio: np.ndarray, num_frames: int, align: str = "end") -> np.ndarray:
    """``(num_frames, 104)`` float32 AV-HuBERT features aligned to the video (see module docstring)."""
    feats = stacked_logfbank(audio, num_frames=None)
    diff = len(feats) - num_frames
    if diff < 0:
        feats = np.concatenate([feats, np.zeros((-diff, feats.shape[1]), np.float32)])
    elif diff > 0:
        left = diff // 2 if align == "centre" else 0
        feats = feats[left:left + num_frames]
    return np.ascontiguousarray(feats, dtype=np.float32)


def generator_input(targets: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """``(N, 3, S, S)`` target and reference crops in [0, 1] -> ``(N, 6, S, S)``, target's lower half zeroed."""
    masked = targets.clone()
    masked[:, :, targets.shape[2] // 2:] = 0.0
    return torch.cat([masked, references], dim=1)


def to_float(faces: np.ndarray, bgr: bool = False) -> torch.Tensor:
    """``(N, S, S, 3)`` uint8 RGB -> ``(N, 3, S, S)`` float32 in [0, 1] (channels reversed for ``bgr``)."""
    # np.array copies: cached clips are read-only memory maps, which torch.from_numpy warns about
    x = torch.from_numpy(np.array(faces, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0
    return x.flip(1) if bgr else x


def collate_audio(feats: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip ``(T_b, 104)`` features -> zero-padded ``(B, 104, T)`` and padding mask ``(B, T)``."""
    t_max = max(len(f) for f in feats)
    out = torch.zeros(len(feats), feats[0].shape[1], t_max)
    pad = torch.ones(len(feats), t_max, dtype=torch.bool)
    for b, f in enumerate(feats):
        out[b, :, :len(f)] = torch.from_numpy(f).t()
        pad[b, :len(f)] = False
    return out, pad


def generate_clips(generator: torch.nn.Module, faces: list[np.ndarray], fbank: list[np.ndarray],
                   bgr: bool = False, chunk: int = 128) -> list[torch.Tensor]:
    """Inference (official ``inf_test.py``): every frame of every clip, reference = the clip's frame 0.

    Args:
        generator: a :class:`baselines.talklip.model.TalkLip` (eval mode, under ``no_grad``).
        faces: per clip ``(T_b, S, S, 3)`` uint8 RGB face crops.
        fbank: per clip ``(T_b, 104)`` audio features (:func:`audio_features`).
        bgr: the generator works in BGR (official checkpoints): channels are reversed in and out.
        chunk: frames per U-Net pass.

    Returns: per clip ``(T_b, 3, S, S)`` float RGB in [0, 1] on the generator's device.
    """
    device = next(generator.parameters()).device
    # the audio encoder runs once per group of equal-length clips (bucketing): no padding, so a
    # clip's features, and its frames, do not depend on the other clips of the batch
    emb_of: dict[int, torch.Tensor] = {}
    for length in sorted({len(f) for f in fbank}):
        members = [b for b, f in enumerate(fbank) if len(f) == length]
        audio, pad = collate_audio([fbank[b] for b in members])
        enc = generator.encode_audio(audio.to(device), pad.to(device))
        for j, b in enumerate(members):
            emb_of[b] = enc[j, :len(faces[b])]
    real = torch.cat([to_float(f, bgr) for f in faces]).to(device)
    references = torch.cat([to_float(f[:1], bgr).expand(len(f), -1, -1, -1) for f in faces]).to(device)
    inputs = generator_input(real, references)
    emb = torch.cat([emb_of[b] for b in range(len(faces))])
    out = torch.cat([generator.render(inputs[s:s + chunk], emb[s:s + chunk]) for s in range(0, len(emb), chunk)])
    out = out.flip(1) if bgr else out
    return list(out.split([len(f) for f in faces]))


@dataclass
class TrainingClips:
    """Face clips (:class:`tfgbench.data.faceclips.FaceClips`) with per-clip audio features and,
    when an expert reads them, transcript tokens."""

    faces: list[np.ndarray]          # (T, 96, 96, 3) uint8
    fbank: list[np.ndarray]          # (T, 104) float32
    mouth: list[np.ndarray | None]   # (T, 4) mouth box in face-crop [0, 1] coordinates
    tokens: list[list[int]] | None   # transcript token ids (ending with </s>)
    ids: list[str]
    rois: list[np.ndarray | None] | None = None   # (T, 48, 48) uint8 real mouth ROIs (FaceClips.rois)

    def __len__(self) -> int:
        return len(self.faces)

    @classmethod
    def from_face_clips(cls, clips, codec=None, progress: bool = True) -> TrainingClips:
        """Audio features of every clip (train alignment) and tokens when ``codec`` is given."""
        from tqdm import tqdm

        fbank = [audio_features(a, len(f)) for a, f in
                 tqdm(zip(clips.audio, clips.faces), total=len(clips), desc="audio features", disable=not progress)]
        tokens = [codec.encode(t) for t in clips.texts] if codec is not None else None
        return cls(list(clips.faces), fbank, list(clips.mouth), tokens, list(clips.ids),
                   list(getattr(clips, "rois", [None] * len(clips))))


def mouth_boxes(data: TrainingClips, i: int) -> np.ndarray:
    """``(T, 4)`` mouth boxes of clip ``i`` (:data:`DEFAULT_MOUTH_BOX` where the dataset has none)."""
    m = data.mouth[i]
    return m if m is not None else np.tile(np.array(DEFAULT_MOUTH_BOX, np.float32), (len(data.faces[i]), 1))


@dataclass
class Batch:
    """One training step's data. ``N = sum of window lengths``; ``B`` clips padded to ``T`` frames.

    ``inputs (N, 6, 96, 96)``, ``real (N, 3, 96, 96)`` (ground truth of the generated frames),
    ``fbank (B, 104, T)``, ``padding (B, T)``, ``index (N,)`` = ``b * T + t`` (row of a generated frame
    in the flattened clips), ``clip_faces (B * T, 3, 96, 96)`` the real sequences (zeros in padding),
    ``clip_mouth (B * T, 4)`` their mouth boxes (:data:`DEFAULT_MOUTH_BOX` in padding),
    ``clip_rois (B * T, 48, 48)`` uint8 real mouth ROIs when every chosen clip has them (else ``None``),
    ``clips`` the chosen clip indices."""

    inputs: torch.Tensor
    real: torch.Tensor
    fbank: torch.Tensor
    padding: torch.Tensor
    index: torch.Tensor
    clip_faces: torch.Tensor
    clip_mouth: torch.Tensor
    clips: list[int]
    clip_rois: torch.Tensor | None = None


def reference_frames(frames: np.ndarray, length: int, rng: np.random.Generator,
                     gap: int = MIN_REFERENCE_GAP) -> np.ndarray:
    """For each frame index in ``frames``, a random frame of a ``length``-frame clip at least
    ``gap`` frames away (any other frame when the clip is too short for that)."""
    out = np.empty(len(frames), dtype=np.int64)
    for i, t in enumerate(frames):
        far = np.r_[0:max(0, t - gap + 1), min(length, t + gap):length]
        if len(far) == 0:
            far = np.array([j for j in range(length) if j != t] or [t])
        out[i] = far[rng.integers(len(far))]
    return out


def sample_batch(data: TrainingClips, rng: np.random.Generator, clips_per_step: int, window: int,
                 with_sequences: bool = True) -> Batch:
    """Draw ``clips_per_step`` clips and a ``window``-frame span of each (see module docstring)."""
    chosen = [int(i) for i in rng.choice(len(data), size=min(clips_per_step, len(data)), replace=False)]
    lengths = [len(data.faces[i]) for i in chosen]
    t_max = max(lengths)
    targets, refs, index = [], [], []
    for b, (i, t) in enumerate(zip(chosen, lengths)):
        w = min(window, t)
        start = int(rng.integers(0, t - w + 1))
        frames = np.arange(start, start + w)
        targets.append(data.faces[i][frames])
        refs.append(data.faces[i][reference_frames(frames, t, rng)])
        index.append(b * t_max + frames)
    real = to_float(np.concatenate(targets))
    inputs = generator_input(real, to_float(np.concatenate(refs)))
    fbank, padding = collate_audio([data.fbank[i] for i in chosen])
    clip_faces = torch.zeros(0)
    clip_rois = None
    clip_mouth = torch.tensor(DEFAULT_MOUTH_BOX).repeat(len(chosen) * t_max, 1)
    if with_sequences:
        have_rois = data.rois is not None and all(data.rois[i] is not None for i in chosen)
        if have_rois:       # the real frames' ROIs as the evaluators crop them; no need for the faces
            clip_rois = torch.zeros(len(chosen) * t_max, *data.rois[chosen[0]].shape[1:], dtype=torch.uint8)
        else:
            clip_faces = torch.zeros(len(chosen) * t_max, 3, *data.faces[chosen[0]].shape[1:3])
        for b, (i, t) in enumerate(zip(chosen, lengths)):
            if have_rois:
                clip_rois[b * t_max:b * t_max + t] = torch.from_numpy(np.ascontiguousarray(data.rois[i]))
            else:
                clip_faces[b * t_max:b * t_max + t] = to_float(data.faces[i])
            clip_mouth[b * t_max:b * t_max + t] = torch.from_numpy(mouth_boxes(data, i))
    return Batch(inputs, real, fbank, padding, torch.from_numpy(np.concatenate(index)), clip_faces,
                 clip_mouth, chosen, clip_rois)
