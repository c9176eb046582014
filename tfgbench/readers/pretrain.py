"""Audio-visual pre-training of a lip reader's video front end on the synthetic corpus (reusable).

A tiny reader trained from scratch on 2 CPU cores learns the grammar, not the lips
(measured by a prototype on this corpus); a front end pre-trained to *hear* the mouth is what lets it read.
This is the self-supervised step (no transcripts): per-frame audio-visual synchrony.

Objective (symmetric InfoNCE over all frames of a batch). For clip ``b`` and frame ``t``:
``v_bt = normalize(head_v(frontend(video_b))_t)``, ``a_bt = normalize(audio_enc(fbank_b)_t)``
(``fbank``: AV-HuBERT's 104-d stacked log filterbanks at 25 Hz, :func:`tfgbench.media.features.
stacked_logfbank`), ``s = v . a / tau``. For every *voiced* anchor frame (audio RMS above
:data:`VOICED_RMS`), the positive is the same-time frame of the other modality and the negatives
are every other frame of the batch: the clip's own other frames (shifted audio: the timing task)
and the other clips' frames (content). ``loss = (CE(s_va) + CE(s_av)) / 2``. The audio encoder and
the heads are thrown away; only the front end is kept.

API::

    clips = load_clips(SyntheticDataset(split="train"))      # cached under $TFGBENCH_HOME/cache
    frontend = ResEncoder((16, 32, 64, 128))                  # any (B,1,T,H,W) -> (B,T,C) module
    stats = pretrain_frontend(frontend, clips, feature_dim=128, steps=150)
    frontend = load_or_pretrain_frontend(clips)               # cached by (widths, steps, seed, corpus)

Inputs are the synthetic protocols' mouth crops (:func:`tfgbench.metrics.wer.preprocess.
synthetic_mouth_rois`: 48x48 uint8; training takes random 44x44 crops, scoring the centre).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tfgbench.metrics.wer.preprocess import AVHUBERT_MEAN, AVHUBERT_STD, SYNTHETIC_CROP, synthetic_mouth_rois

VOICED_RMS = 0.01   # frame RMS (full scale 1.0) above which a frame counts as speech


@dataclass
class ClipSet:
    """Prepared clips: ``rois[i]`` ``(T, 48, 48)`` uint8, ``fbank[i]`` ``(T, 104)`` float32,
    ``voiced[i]`` ``(T,)`` bool, ``texts[i]`` the transcript."""

    ids: list[str]
    rois: list[np.ndarray]
    fbank: list[np.ndarray]
    voiced: list[np.ndarray]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx: list[int]) -> ClipSet:
        return ClipSet(*[[getattr(self, f)[i] for i in idx] for f in ("ids", "rois", "fbank", "voiced", "texts")])


def prepare_sample(sample: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROIs, stacked log filterbanks and voiced-frame mask of one synthetic sample."""
    from tfgbench.media.features import stacked_logfbank

    t = sample.num_frames
    rois = synthetic_mouth_rois(sample.frames, sample.meta.get("mouth_box"), sample.where())
    fbank = stacked_logfbank(sample.audio, num_frames=t)
    pcm = np.zeros(t * 640, np.float32)
    pcm[: min(pcm.size, sample.audio.size)] = sample.audio[: pcm.size]
    rms = np.sqrt((pcm.reshape(t, 640) ** 2).mean(axis=1))
    return rois, fbank, rms > VOICED_RMS


def load_clips(dataset: Any, limit: int | None = None, cache: bool = True, progress: bool = True) -> ClipSet:
    """Prepare every sample of ``dataset`` (a tfgbench Dataset whose samples carry
    ``meta['mouth_box']``), cached as ``$TFGBENCH_HOME/cache/wer-clips-<version>-<split>.npz``."""
    from tqdm import tqdm

    from tfgbench.paths import home

    ids = dataset.ids()[:limit] if limit else dataset.ids()
    path = home() / "cache" / f"wer-clips-{dataset.version}-{dataset.split}-{len(ids)}.npz"
    if cache and path.is_file():
        z = np.load(path, allow_pickle=False)
        lens = z["lengths"]
        cut = np.cumsum(lens)[:-1]
        return ClipSet(list(z["ids"]), np.split(z["rois"], cut), np.split(z["fbank"], cut),
                       np.split(z["voiced"], cut), list(z["texts"]))
    out = ClipSet([], [], [], [], [])
    for sid in tqdm(ids, desc=f"preparing {dataset.split} clips", disable=not progress):
        s = dataset.load(sid)
        rois, fbank, voiced = prepare_sample(s)
        out.ids.append(sid)
        out.rois.append(rois)
        out.fbank.append(fbank)
        out.voiced.append(voiced)
        out.texts.append(s.transcript or "")
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, ids=np.array(out.ids), texts=np.array(out.texts), lengths=np.array([len(r) for r in out.rois]),
                 rois=np.concatenate(out.rois), fbank=np.concatenate(out.fbank), voiced=np.concatenate(out.voiced))
        tmp.replace(path)
    return out


def crop_batch(rois: list[np.ndarray], rng: np.random.Generator, random_crop: bool = True) -> torch.Tensor:
    """Zero-padded ``(B, 1, T, 44, 44)`` normalised clips from ``(T_i, 48, 48)`` uint8 ROIs; a
    random 44x44 window per clip when ``random_crop`` (augmentation), else the centre."""
    t_max = max(len(r) for r in rois)
    out = torch.zeros(len(rois), 1, t_max, SYNTHETIC_CROP, SYNTHETIC_CROP)
    room = rois[0].shape[1] - SYNTHETIC_CROP
    for i, r in enumerate(rois):
        dy, dx = (rng.integers(0, room + 1, 2) if random_crop else (room // 2, room // 2))
        crop = torch.from_numpy(r[:, dy:dy + SYNTHETIC_CROP, dx:dx + SYNTHETIC_CROP].astype(np.float32))
        out[i, 0, : len(r)] = (crop / 255.0 - AVHUBERT_MEAN) / AVHUBERT_STD
    return out


class AudioEncoder(nn.Module):
    """Per-frame audio embedding with +-2 frames of context: ``(B, T, 104)`` -> ``(B, T, D)``."""

    def __init__(self, in_dim: int = 104, hidden: int = 128, out_dim: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(in_dim, hidden, 3, padding=1), nn.GELU(),
                                 nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv1d(hidden, out_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(1, 2)).transpose(1, 2)


class VideoHead(nn.Module):
    """Front-end features ``(B, T, C)`` -> sync embedding ``(B, T, D)`` (+-1 frame of context)."""

    def __init__(self, feature_dim: int, out_dim: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(feature_dim, feature_dim, 3, padding=1), nn.GELU(),
                                 nn.Conv1d(feature_dim, out_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(1, 2)).transpose(1, 2)


def _windows(clips: ClipSet, idx: np.ndarray, length: int, rng: np.random.Generator):
    rois, fbank, voiced = [], [], []
    for i in idx:
        t = len(clips.rois[i])
        s = int(rng.integers(0, max(1, t - length + 1)))
        rois.append(clips.rois[i][s:s + length])
        fbank.append(clips.fbank[i][s:s + length])
        voiced.append(clips.voiced[i][s:s + length])
    t_max = max(len(r) for r in rois)
    a = torch.zeros(len(idx), t_max, fbank[0].shape[1])
    valid = torch.zeros(len(idx), t_max, dtype=torch.bool)
    anchor = torch.zeros(len(idx), t_max, dtype=torch.bool)
    for j, (f, v) in enumerate(zip(fbank, voiced)):
        a[j, : len(f)] = torch.from_numpy(f)
        valid[j, : len(f)] = True
        anchor[j, : len(v)] = torch.from_numpy(v)
    return crop_batch(rois, rng), a, valid, anchor


def info_nce(v: torch.Tensor, a: torch.Tensor, valid: torch.Tensor, anchor: torch.Tensor,
             log_scale: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Symmetric InfoNCE between frames (see module docstring). Returns the loss and the
    fraction of anchors whose best audio match is the right frame."""
    v = F.normalize(v[valid], dim=-1)
    a = F.normalize(a[valid], dim=-1)
    sim = v @ a.t() * log_scale.exp().clamp(max=100)
    rows = torch.nonzero(anchor[valid]).flatten()
    loss = (F.cross_entropy(sim[rows], rows) + F.cross_entropy(sim.t()[rows], rows)) / 2
    acc = (sim[rows].argmax(1) == rows).float().mean().item()
    return loss, acc


def pretrain_frontend(frontend: nn.Module, clips: ClipSet, *, feature_dim: int, steps: int = 150,
                      batch_size: int = 16, length: int = 32, lr: float = 2e-3, seed: int = 0,
                      log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``frontend`` in place by audio-visual synchrony; returns training statistics.

    Args:
        frontend: ``(B, 1, T, 44, 44)`` -> ``(B, T, feature_dim)`` module.
        clips: from :func:`load_clips` (training split only).
        steps, batch_size, length: optimisation steps of ``batch_size`` random ``length``-frame windows.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    audio, head = AudioEncoder(), VideoHead(feature_dim)
    log_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
    params = list(frontend.parameters()) + list(audio.parameters()) + list(head.parameters()) + [log_scale]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    frontend.train()
    history: list[tuple[float, float]] = []
    t0 = time.time()
    for step in range(steps):
        idx = rng.choice(len(clips), size=min(batch_size, len(clips)), replace=False)
        video, fb, valid, anchor = _windows(clips, idx, length, rng)
        loss, acc = info_nce(head(frontend(video)), audio(fb), valid, anchor, log_scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append((loss.item(), acc))
        if step % 10 == 0 or step == steps - 1:
            recent = history[-10:]
            log(f"pretrain step {step + 1}/{steps}  loss {np.mean([h[0] for h in recent]):.3f}  "
                f"frame-match acc {np.mean([h[1] for h in recent]):.3f}  ({time.time() - t0:.0f} s)")
    frontend.eval()
    return {"steps": steps, "seconds": round(time.time() - t0, 1), "first_loss": history[0][0],
            "final_loss": float(np.mean([h[0] for h in history[-10:]])),
            "final_match_acc": float(np.mean([h[1] for h in history[-10:]]))}


def add_reader_training_arguments(parser: Any, out_default: Path, steps_help: str) -> None:
    """The options both synthetic readers' training commands share (corpus, output, pre-training,
    steps, crops, limits, seed, threads): one definition, so the two commands stay in step and keep
    sharing the cached front-end pre-training."""
    parser.add_argument("--root", help="synthetic corpus folder (default: $TFGBENCH_HOME/synthetic/<version>)")
    parser.add_argument("--out", default=str(out_default), help="output safetensors (default: the shipped file)")
    parser.add_argument("--pretrain-steps", type=int, default=150, help="front-end AV-sync pre-training steps "
                        "(keep the default to share the cached pre-training between the two readers)")
    parser.add_argument("--steps", type=int, default=1200, help=steps_help)
    parser.add_argument("--crops", type=int, default=2, help="front-end crops per clip (1 = centre only)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training clips (smoke tests)")
    parser.add_argument("--eval-limit", type=int, default=None, help="score only the first N test clips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared 2-core machine 2 threads can be 10x slower)")


def training_setup(args: Any) -> tuple[Any, ClipSet, nn.Module, dict]:
    """What both synthetic readers' training commands start with, from their shared options: the
    train split, its clips, and the (cached) AV-sync pre-trained front end with its statistics."""
    from tfgbench.data.synthetic import SyntheticDataset

    torch.set_num_threads(args.threads)
    train = SyntheticDataset(args.root, split="train")
    clips = load_clips(train, limit=args.limit)
    frontend, stats = load_or_pretrain_frontend(clips, steps=args.pretrain_steps, seed=args.seed,
                                                corpus=train.version)
    return train, clips, frontend, stats


def load_or_pretrain_frontend(clips: ClipSet, *, widths: tuple[int, ...] = (16, 32, 64, 128), steps: int = 150,
                              seed: int = 0, corpus: str = "", cache_dir: Path | None = None,
                              log: Callable[[str], None] = print) -> tuple[nn.Module, dict[str, Any]]:
    """The default front end (:class:`tfgbench.readers.avhubert.ResEncoder` at ``widths``)
    pre-trained by :func:`pretrain_frontend`, cached as safetensors keyed by its settings, so the
    AV-HuBERT and Conformer training commands share one pre-training."""
    from tfgbench.checkpoints import load_checkpoint, save_checkpoint
    from tfgbench.paths import home
    from tfgbench.readers.avhubert import ResEncoder

    key = json.dumps({"widths": list(widths), "steps": steps, "seed": seed, "corpus": corpus,
                      "clips": len(clips), "objective": "av-sync-infonce-v1"}, sort_keys=True)
    path = (cache_dir or home() / "cache") / f"frontend-{hashlib.sha1(key.encode()).hexdigest()[:12]}.safetensors"
    frontend = ResEncoder(widths)
    if path.is_file():
        state, _, meta = load_checkpoint(path)
        frontend.load_state_dict(state)
        log(f"pre-trained front end loaded from {path}")
        return frontend.eval(), meta.get("stats", {})
    stats = pretrain_frontend(frontend, clips, feature_dim=widths[-1], steps=steps, seed=seed, log=log)
    save_checkpoint(path, frontend.state_dict(), {"widths": list(widths)}, stats=stats, key=key)
    return frontend.eval(), stats
