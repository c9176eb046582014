"""Validation of a talking-face generator during training (reusable by SyncTalklip).

On a few validation clips, every frame is generated as at inference (reference = frame 0), once
with the clip's own audio and once with another validation clip's audio (the shuffled-audio
control: a generator that uses the audio does worse with the wrong audio). Figures:

* ``lip_l1_true`` / ``lip_l1_shuffled``: mean absolute error (pixels in [0, 1]) inside the mouth box
  of the face crop. A generator that uses the audio has ``true < shuffled``.
* ``lip_l1_copy_ref``: the same error of copying the reference frame (a fixed floor to beat).
* ``face_l1_true``: error over the whole crop.
* ``expert_acc_generated`` / ``expert_acc_real``: the lip-reading expert's teacher-forced token
  accuracy on the generated sequence (own audio) and on the real one (when an expert is given).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from baselines.talklip.data import TrainingClips, generate_clips, mouth_boxes, to_float
from baselines.talklip.losses import Targets, lip_reading_loss


def mouth_mask(boxes: np.ndarray, size: int) -> torch.Tensor:
    """``(T, 1, size, size)`` float mask of each frame's mouth box (pixel centres inside the box)."""
    centres = (np.arange(size) + 0.5) / size
    x = (centres[None, :] >= boxes[:, [0]]) & (centres[None, :] < boxes[:, [2]])
    y = (centres[None, :] >= boxes[:, [1]]) & (centres[None, :] < boxes[:, [3]])
    return torch.from_numpy((y[:, :, None] & x[:, None, :]).astype(np.float32))[:, None]


def make_validator(generator: torch.nn.Module, val: TrainingClips, expert: torch.nn.Module | None = None,
                   pad: int = 1, eos: int = 2, device: str = "cpu") -> Callable[[int], dict[str, float]]:
    """``validate(step) -> figures`` for :func:`tfgbench.training.fit` (see module docstring)."""
    from tfgbench.data.faceclips import mouth_rois_from_faces

    n = len(val)
    masks = [mouth_mask(mouth_boxes(val, i), val.faces[i].shape[1]) for i in range(n)]
    shuffled = []
    for i in range(n):
        other, t = val.fbank[(i + 1) % n], len(val.faces[i])
        shuffled.append(np.concatenate([other, np.zeros((max(0, t - len(other)), other.shape[1]), np.float32)])[:t])
    use_expert = expert is not None and val.tokens is not None

    def lip_l1(x: torch.Tensor, i: int) -> float:
        real = to_float(val.faces[i])
        return float(((x - real).abs() * masks[i]).sum() / (masks[i].sum() * 3))

    def expert_acc(frames: list[torch.Tensor]) -> float:
        def real(i: int):
            return None if val.rois is None or val.rois[i] is None else torch.from_numpy(val.rois[i]).to(device)

        rois = [mouth_rois_from_faces(f.to(device), torch.from_numpy(mouth_boxes(val, i)).to(device), real(i))
                for i, f in enumerate(frames)]
        t_max = max(len(r) for r in rois)
        batch = torch.zeros(n, t_max, *rois[0].shape[1:], device=device)
        padding = torch.ones(n, t_max, dtype=torch.bool, device=device)
        for i, r in enumerate(rois):
            batch[i, :len(r)], padding[i, :len(r)] = r, False
        targets = Targets.from_tokens(val.tokens, pad, eos)
        out = lip_reading_loss(expert, batch, padding, Targets(targets.prev.to(device), targets.target.to(device), pad))
        return out.correct / max(1, out.total)

    copy_ref = float(np.mean([lip_l1(to_float(val.faces[i][:1]).expand(len(val.faces[i]), -1, -1, -1), i)
                              for i in range(n)]))
    real_acc = expert_acc([to_float(f) for f in val.faces]) if use_expert else float("nan")

    def validate(step: int) -> dict[str, float]:
        generator.eval()
        true_l1, shuf_l1, face_l1, generated = [], [], [], []
        with torch.no_grad():
            for i in range(n):
                g = generate_clips(generator, [val.faces[i]], [val.fbank[i]])[0].cpu()
                generated.append(g)
                true_l1.append(lip_l1(g, i))
                face_l1.append(float((g - to_float(val.faces[i])).abs().mean()))
                shuf_l1.append(lip_l1(generate_clips(generator, [val.faces[i]], [shuffled[i]])[0].cpu(), i))
            out = {"lip_l1_true": float(np.mean(true_l1)), "lip_l1_shuffled": float(np.mean(shuf_l1)),
                   "lip_l1_copy_ref": copy_ref, "face_l1_true": float(np.mean(face_l1))}
            if use_expert:
                out["expert_acc_generated"] = expert_acc(generated)
                out["expert_acc_real"] = real_acc
        generator.train()
        return out

    return validate
