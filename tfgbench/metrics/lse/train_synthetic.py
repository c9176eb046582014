"""Train the synthetic corpus's SyncNet evaluator (protocol ``lse/synthetic``) on its train split.

    python -m tfgbench.metrics.lse.train_synthetic --steps 480 \
        --out tfgbench/weights/syncnet-synthetic.safetensors

Data: ``SyntheticDataset(split="train")`` only (speakers disjoint from val/test); each clip gives
lower-face crops (:func:`~tfgbench.metrics.lse.scorer.box_crops`, 64x64 BGR 0-255) and MFCCs
exactly as the scorer prepares them. Objective (sync by classification over shifts): for a
5-frame video window ``v`` the candidates are the same clip's audio windows ``v + d``,
``d = -15..15`` (the shifts the score looks at), plus the aligned audio of the other clips in
the batch; ``logits = -scale * ||f_v - g||`` with unit-length embeddings, cross-entropy with
``d = 0`` as the answer. Evaluation on the test split (``--eval-clips``): ground truth vs
static frame (frame 0 repeated) vs ground truth with the audio delayed 5 frames; the figures go
into the checkpoint's metadata with this command.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tfgbench.data.sample import SAMPLES_PER_FRAME
from tfgbench.metrics.lse.protocols import CONFIGS
from tfgbench.metrics.lse.scorer import SYNTHETIC_WEIGHTS, box_crops
from tfgbench.metrics.lse.scoring import num_windows, quantize_audio
from tfgbench.metrics.lse.syncnet import SyncNetConfig, SyncNetS

VSHIFT = CONFIGS["lse/synthetic"].vshift
SIZE = CONFIGS["lse/synthetic"].size


def prepare_clip(frames: np.ndarray, audio: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(crops (T, S, S, 3) uint8 BGR, mfcc (13, M) float32, windows)`` as the scorer sees them."""
    from tfgbench.media.features import mfcc

    crops = box_crops(np.ascontiguousarray(frames[..., ::-1]), boxes, SIZE)
    q = quantize_audio(audio)
    return crops, mfcc(q), num_windows(len(frames), len(q))


def load_split(split: str, limit_per_speaker: int | None, limit: int | None, seed: int = 0):
    from tqdm import tqdm

    from tfgbench.data.synthetic import SyntheticDataset

    ds = SyntheticDataset(split=split, seed=seed)
    ids = ds.ids()
    if limit_per_speaker:
        per: dict[str, int] = {}
        keep = []
        for i in ids:
            spk = i.split("/")[0]
            if per.get(spk, 0) < limit_per_speaker:
                keep.append(i)
                per[spk] = per.get(spk, 0) + 1
        ids = keep
    if limit:
        ids = ids[:limit]
    clips = []
    for sid in tqdm(ids, desc=f"loading {split}", unit="clip"):
        s = ds.load(sid)
        clips.append((sid, s.frames, s.audio, s.boxes))
    return ds, clips


def train(model: SyncNetS, data: list, minutes: float, clips_per_batch: int, windows_per_clip: int,
          lr: float, seed: int, log_every: int = 20, steps: int | None = None) -> dict:
    """Train for ``steps`` steps (deterministic with one thread), or else for ``minutes`` of wall
    time; returns the step count, final running loss and the running accuracy of picking
    ``d = 0`` among the 31 shifts. The learning rate follows a cosine over the budget.

    Each step takes ``clips_per_batch`` clips and ``windows_per_clip`` video windows of each; every
    audio window of those clips is embedded once and shared by the windows' 31 candidates.
    """
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scale = 10.0  # unit-length embeddings: distances in [0, 2]
    shifts = torch.arange(-VSHIFT, VSHIFT + 1)
    model.train()
    start, step = time.time(), 0
    run_loss = run_acc = None
    budget = minutes * 60
    bar = tqdm(total=steps or int(budget), desc="training", unit="step" if steps else "s")

    def progress() -> float:
        return step / steps if steps else (time.time() - start) / budget

    while progress() < 1.0:
        for g in opt.param_groups:  # cosine decay over the budget
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress())))
        picks = rng.choice(len(data), size=clips_per_batch, replace=False)
        vids, auds, owners, centres, offsets, counts = [], [], [], [], [], []
        first = 0
        for c, k in enumerate(picks):
            crops, mf, n = data[k]
            vs = rng.choice(n, size=windows_per_clip, replace=n < windows_per_clip)
            vids += [crops[v:v + 5] for v in vs]
            auds.append(np.stack([mf[:, 4 * u:4 * u + 20] for u in range(n)]))
            owners += [c] * len(vs)
            centres += list(vs)
            offsets += [first] * len(vs)
            counts += [n] * len(vs)
            first += n
        x = torch.from_numpy(np.stack(vids)).float().permute(0, 4, 1, 2, 3)  # (B, 3, 5, S, S)
        a = torch.from_numpy(np.concatenate(auds)).float().unsqueeze(1)    # (sum n, 1, 13, 20)
        fv = model.forward_lip(x)                                           # (B, D)
        fa = model.forward_aud(a)                                           # (sum n, D)
        centre = torch.as_tensor(np.asarray(centres))[:, None] + shifts     # (B, 31) window index
        valid = (centre >= 0) & (centre < torch.as_tensor(np.asarray(counts))[:, None])
        rows = torch.as_tensor(np.asarray(offsets))[:, None] + centre.clamp(min=0)
        rows = torch.minimum(rows, torch.as_tensor(np.asarray(offsets) + np.asarray(counts) - 1)[:, None])
        d_shift = (fv[:, None] - fa[rows]).norm(dim=-1)                     # (B, 31)
        d_cross = torch.cdist(fv, fa[rows[:, VSHIFT]])                      # aligned audio of others
        owner = torch.as_tensor(np.asarray(owners))
        same = owner[:, None] == owner[None, :]
        logits = torch.cat([-scale * d_shift.masked_fill(~valid, 1e4),
                            -scale * d_cross.masked_fill(same, 1e4)], 1)
        target = torch.full((len(fv),), VSHIFT, dtype=torch.long)
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            acc = float((d_shift.masked_fill(~valid, 1e4).argmin(1) == VSHIFT).float().mean())
        lv = float(loss.detach())
        run_loss = lv if run_loss is None else 0.95 * run_loss + 0.05 * lv
        run_acc = acc if run_acc is None else 0.95 * run_acc + 0.05 * acc
        step += 1
        bar.update((step if steps else int(time.time() - start)) - bar.n)
        if step % log_every == 0:
            bar.set_postfix(loss=f"{run_loss:.3f}", shift_acc=f"{run_acc:.2f}", step=step)
    bar.close()
    model.eval()
    return {"steps": step, "loss": run_loss, "train_shift_accuracy": run_acc}


@torch.no_grad()
def evaluate(model: SyncNetS, clips: list) -> dict:
    """Mean LSE-C / LSE-D and offset hit rates for ground truth, static frame and audio delayed
    by 5 frames, with the exact scoring procedure."""
    from tfgbench.metrics.lse.scoring import evaluate_clip

    def score(frames, audio, boxes):
        crops, _, _ = prepare_clip(frames, audio, boxes)
        clip = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
        return evaluate_clip(model, clip, quantize_audio(audio), VSHIFT)

    rows: dict[str, list] = {"ground_truth": [], "static_frame": [], "audio_delayed_5": []}
    for _, frames, audio, boxes in clips:
        rows["ground_truth"].append(score(frames, audio, boxes))
        static = np.repeat(frames[:1], len(frames), 0)
        rows["static_frame"].append(score(static, audio, boxes))
        delayed = np.concatenate([np.zeros(5 * SAMPLES_PER_FRAME, np.float32), audio])[: len(audio)]
        rows["audio_delayed_5"].append(score(frames, delayed, boxes))
    out = {}
    for k, rs in rows.items():
        out[k] = {"lse_c": float(np.mean([r.lse_c for r in rs])), "lse_d": float(np.mean([r.lse_d for r in rs])),
                  "offset_0": float(np.mean([r.offset == 0 for r in rs])),
                  "offset_minus5": float(np.mean([r.offset == -5 for r in rs])), "clips": len(rs)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=SYNTHETIC_WEIGHTS, help="checkpoint to write")
    p.add_argument("--size", choices=["tiny", "paper"], default="tiny",
                   help="tiny: ~1M parameters, CPU minutes; paper: the official SyncNet widths (GPU)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (deterministic with --threads 1); default: use --minutes")
    p.add_argument("--minutes", type=float, default=15.0, help="training wall-time budget without --steps")
    p.add_argument("--clips-per-batch", type=int, default=8)
    p.add_argument("--windows-per-clip", type=int, default=6)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--per-speaker", type=int, default=30, help="train utterances per speaker (memory)")
    p.add_argument("--eval-clips", type=int, default=100, help="test-split clips for the final figures")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: deterministic, and fastest on a loaded 2-core machine)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    train_ds, train_clips = load_split("train", args.per_speaker, None, args.seed)
    data = [prepare_clip(f, a, b) for _, f, a, b in train_clips]
    data = [d for d in data if d[2] >= 1]
    del train_clips
    cfg = SyncNetConfig.tiny(SIZE) if args.size == "tiny" else SyncNetConfig(image_size=SIZE, normalize=True)
    model = SyncNetS(cfg)
    params = sum(p.numel() for p in model.parameters())
    print(f"{len(data)} training clips from {train_ds.version}; {params / 1e6:.2f}M parameters", flush=True)
    stats = train(model, data, args.minutes, args.clips_per_batch, args.windows_per_clip, args.lr, args.seed,
                  steps=args.steps)
    _, test_clips = load_split("test", None, args.eval_clips, args.seed)
    figures = evaluate(model, test_clips)
    for k, v in figures.items():
        print(f"{k:16s} LSE-C {v['lse_c']:.3f}  LSE-D {v['lse_d']:.3f}  offset 0: {v['offset_0']:.0%}  "
              f"offset -5: {v['offset_minus5']:.0%}  ({v['clips']} test clips)")
    from tfgbench.checkpoints import save_checkpoint

    command = "python -m tfgbench.metrics.lse.train_synthetic " + shlex.join(sys.argv[1:] if argv is None else argv)
    save_checkpoint(args.out, model.state_dict(),
                    {"syncnet": cfg.to_dict(), "protocol": "lse/synthetic", "crop": "box_crops", "size": SIZE},
                    command=command, corpus_version=train_ds.version, split="train", training=stats,
                    test_figures=figures, parameters=params)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
