"""Train the synthetic corpus's Conformer reader (tiny) -> tfgbench/weights/conformer-synthetic.safetensors.

    nice -n 5 python -m tfgbench.readers.train_synthetic_conformer        # ~10 min after the shared steps

Recipe (all on the corpus's *train* split; the test split is only scored at the end):

1. :func:`tfgbench.readers.pretrain.load_or_pretrain_frontend`: the quarter-width ResNet-18 front
   end pre-trained by audio-visual synchrony (self-supervised; the same cached pre-training as the
   AV-HuBERT reader's, so the second command reuses it).
2. The tiny Conformer (:func:`tfgbench.readers.conformer.preset` ``"tiny"``: TalkLip observer 2's
   layout at 96-d, 4 encoder + 2 decoder blocks, 40-character vocabulary) on top of the *frozen*
   front end: features are computed once per clip for the centre crop and ``--crops - 1`` random
   44x44 crops, then encoder + decoder + CTC are trained with TalkLip's objective
   ``0.3 CTC + 0.7 label-smoothed (0.1) attention CE``, time masking of the features, dropout 0.1,
   AdamW, one-cycle schedule.
3. Scored through the ``wer/synthetic-conformer`` metric itself (teacher forcing, per-utterance
   mean) on the test split: ground-truth frames and the ``static-frame`` baseline (first frame
   repeated). Teacher forcing hands the decoder the reference prefix, so static-frame stays far
   from 100%; what matters is the gap. Figures go in the checkpoint metadata.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tfgbench.readers.conformer import ConformerVSR, preset
from tfgbench.readers.conformer_loader import checkpoint_config
from tfgbench.readers.conformer_reader import SYNTHETIC_WEIGHTS, ConformerReader, encode_reference
from tfgbench.readers.pretrain import add_reader_training_arguments, training_setup

RETRAIN = "python -m tfgbench.readers.train_synthetic_conformer"


def cached_features(frontend: torch.nn.Module, clips, crops: int, seed: int) -> list[list[torch.Tensor]]:
    """:func:`extract_features` (the AV-HuBERT script's), cached under ``$TFGBENCH_HOME/cache`` by
    a hash of the front end's weights, the clips, the crops and the seed (re-runs skip it)."""
    import hashlib

    from tfgbench.paths import home
    from tfgbench.readers.train_synthetic_avhubert import extract_features

    h = hashlib.sha1(f"{crops}-{seed}-{len(clips)}-{clips.ids[0]}-{clips.ids[-1]}".encode())
    for k, v in sorted(frontend.state_dict().items()):
        h.update(k.encode() + v.detach().cpu().numpy().tobytes())
    path = home() / "cache" / f"conformer-feats-{h.hexdigest()[:12]}.npz"
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        cut = np.cumsum(z["lengths"])[:-1]
        per_crop = [np.split(z[f"crop{c}"], cut) for c in range(crops)]
        return [[torch.from_numpy(per_crop[c][i]) for c in range(crops)] for i in range(len(clips))]
    feats = extract_features(frontend, clips, crops, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, lengths=np.array([len(f[0]) for f in feats]),
             **{f"crop{c}": np.concatenate([f[c].numpy() for f in feats]) for c in range(crops)})
    tmp.replace(path)
    return feats


def _batch(feats: list[list[torch.Tensor]], idx: np.ndarray, rng: np.random.Generator,
           mask_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ``(B, T, C)`` features (one random crop per clip) with one time mask of up to
    ``mask_frames`` frames per clip (SpecAugment-style: the reader must use context)."""
    chosen = [feats[i][int(rng.integers(len(feats[i])))] for i in idx]
    lengths = torch.tensor([len(f) for f in chosen])
    x = torch.zeros(len(idx), int(lengths.max()), chosen[0].shape[1])
    for j, f in enumerate(chosen):
        x[j, :len(f)] = f
        if mask_frames:
            w = int(rng.integers(0, mask_frames + 1))
            s = int(rng.integers(0, max(1, len(f) - w)))
            x[j, s:s + w] = 0
    return x, lengths


def train_conformer(model: ConformerVSR, feats: list[list[torch.Tensor]], targets: list[list[int]], *,
                    steps: int, batch_size: int = 32, lr: float = 2e-3, mask_frames: int = 8,
                    seed: int = 0) -> dict:
    """CTC + attention training of encoder, decoder and CTC head on frozen front-end features."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    for p in model.visual_frontend.parameters():
        p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    model.visual_frontend.eval()
    hist: list[tuple[float, float, float]] = []
    bar = tqdm(range(steps), desc="conformer")
    for _ in bar:
        idx = rng.choice(len(feats), size=min(batch_size, len(feats)), replace=False)
        x, lengths = _batch(feats, idx, rng, mask_frames)
        loss, st = model.loss(None, lengths, [torch.tensor(targets[i]) for i in idx], feats=x)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        hist.append((loss.item(), st["ctc"], st["acc"]))
        recent = np.mean(hist[-20:], axis=0)
        bar.set_postfix(loss=f"{recent[0]:.2f}", ctc=f"{recent[1]:.2f}", char_acc=f"{recent[2]:.3f}")
    model.eval()
    last = np.mean(hist[-50:], axis=0)
    return {"steps": steps, "batch_size": batch_size, "lr": lr, "mask_frames": mask_frames,
            "final_loss": round(float(last[0]), 4), "final_ctc": round(float(last[1]), 4),
            "final_char_acc_teacher_forced": round(float(last[2]), 4)}


def evaluate(reader: ConformerReader, dataset, limit: int | None = None) -> dict:
    """Per-utterance mean WER of ground-truth frames and of the static-frame baseline through the
    ``wer/synthetic-conformer`` metric with ``reader``."""
    from tqdm import tqdm

    from tfgbench.metrics.wer import WER

    metric = WER("wer/synthetic-conformer", reader=reader)
    ids = dataset.ids()[:limit] if limit else dataset.ids()
    values: dict[str, list[float]] = {"ground-truth": [], "static-frame": []}
    for i in tqdm(range(0, len(ids), 8), desc=f"scoring {dataset.split}"):
        samples = [dataset.load(s) for s in ids[i:i + 8]]
        for name, frames in (("ground-truth", [s.frames for s in samples]),
                             ("static-frame", [np.repeat(s.frames[:1], s.num_frames, 0) for s in samples])):
            for r in metric.score_batch(samples, frames):
                if isinstance(r, Exception):
                    raise r
                values[name].append(r["wer"].value)
    return {f"{k}_wer": round(float(np.mean(v)), 4) for k, v in values.items()} | {
        "clips": len(ids), "split": dataset.split, "version": dataset.version}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_reader_training_arguments(p, SYNTHETIC_WEIGHTS, "conformer training steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    args = p.parse_args(argv)
    from tfgbench.checkpoints import save_checkpoint

    t0 = time.time()
    train, clips, frontend, pre_stats = training_setup(args)
    torch.manual_seed(args.seed)
    cfg = preset("tiny")
    model = ConformerVSR(cfg)
    model.visual_frontend.load_state_dict(frontend.state_dict())
    feats = cached_features(frontend, clips, args.crops, args.seed)
    targets = [encode_reference(t, f"training clip {i}") for i, t in zip(clips.ids, clips.texts)]
    train_stats = train_conformer(model, feats, targets, steps=args.steps, batch_size=args.batch_size,
                                  lr=args.lr, seed=args.seed)
    reader = ConformerReader(model, sha256="training")
    test_stats = evaluate(reader, type(train)(args.root, split="test"), args.eval_limit)
    print(f"test split (per-utterance mean, teacher forced): ground-truth WER {test_stats['ground-truth_wer']:.3f}, "
          f"static-frame WER {test_stats['static-frame_wer']:.3f}")
    given = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    save_checkpoint(args.out, model.state_dict(), checkpoint_config(cfg), command=f"{RETRAIN} {given}".strip(),
                    corpus=train.version, pretrain=pre_stats, train=train_stats, test=test_stats,
                    minutes=round((time.time() - t0) / 60, 1), train_clips=len(clips))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB) in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
