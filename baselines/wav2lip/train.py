"""Train Wav2Lip: the lip-sync expert, then the generator (optionally with the quality GAN).

::

    python -m baselines.wav2lip.train expert --size tiny --out baselines/wav2lip/weights/syncnet-color-tiny.safetensors
    python -m baselines.wav2lip.train generator --expert baselines/wav2lip/weights/syncnet-color-tiny.safetensors \\
        --out baselines/wav2lip/weights/wav2lip-tiny.safetensors
    python -m baselines.wav2lip.train generator --gan --expert ... --out .../wav2lip-gan-tiny.safetensors

Recipes (official ``color_syncnet_train.py`` / ``wav2lip_train.py`` / ``hq_wav2lip_train.py``):

1. Expert ``SyncNetColor``: ``cosine_loss`` = BCE(cos(audio, face), y), y = 1 for frames in sync
   with the mel window, 0 for frames from another time of the same clip (batches.py).
2. Generator: ``(1 - sw - dw) L1 + sw * sync + dw * gan`` with ``sync = BCE(cos(expert(mel, G)), 1)``
   from the frozen expert (eval mode), ``sw = 0.03`` and, with ``--gan``, ``dw = 0.07`` and the
   discriminator ``Wav2LipDiscQual`` trained with BCE(D(real), 1) + BCE(D(G.detach()), 0).
   Official: ``sw = 0`` until the expert's validation sync loss on generated faces drops below
   0.75; ``--sync-threshold`` keeps that rule at both sizes (the switch is a module buffer, so a
   resumed run keeps it; the step it turned on is recorded in the checkpoint), ``0`` turns the sync
   loss on from the first step. At tiny size the official rule never fires (the expert's loss on
   generated faces stays above 0.75), so a default run is an L1-only generator that copies its
   reference (at inference the current frame, real mouth included) and ignores the audio: 20 test
   clips scored the same with their own and with another clip's audio (LSE-C 0.191 both ways,
   ``benchmarks/audio_control.py``). The shipped tiny checkpoints are therefore trained with
   ``--sync-threshold 0``: 1200 steps give LSE-C 0.266 with the clip's own audio and 0.161 with
   another clip's on the same 20 clips (independent synthetic evaluator), and mouths that open with
   the speech. (An earlier measurement on a previous corpus and expert, sync from the first step:
   LSE-C 0.203 against 0.245 for 400 L1-only steps, with high-contrast blobs in the mouth; the
   official rule stays the default of the command.)

Tiny-size choices (CPU, minutes): generator Adam lr 1e-3 betas (0.5, 0.999) with 50 warm-up steps
then cosine decay (official: constant 1e-4; the discriminator keeps the official 1e-4), small
batches (see ``--batch-size``). At tiny size the discriminator stays at chance (BCE 1.386 = 2 ln 2
through 800 steps at lr 1e-4 and at 3e-4; it saturated by step 90 at 1e-3), so the GAN term has
no measurable effect there; the recipe is kept as the official one. Validation every
``--val-every`` steps on fixed windows of the validation split: lip-region L1 with the true audio,
with another clip's audio (the shuffled-audio control) and for copying the reference frames.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from typing import Any

import numpy as np

SIZES = {"tiny": 0.25, "official": 1.0}
TRAIN_SPLIT = {"synthetic": "train", "lrs2": "train", "lrs3": "trainval"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m baselines.wav2lip.train", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="stage", required=True)
    for stage in ("expert", "generator"):
        s = sub.add_parser(stage)
        s.add_argument("--size", choices=list(SIZES), default="tiny")
        s.add_argument("--dataset", choices=list(TRAIN_SPLIT), default="synthetic")
        s.add_argument("--data-root", default=None, help="dataset root (LRS2/LRS3; synthetic: default cache)")
        s.add_argument("--steps", type=int, default=None,
                       help="default 1200 (expert ~5 min, generator ~12 min at tiny size on one busy core); "
                            "800 with --gan (a GAN step costs ~1.6x)")
        s.add_argument("--batch-size", type=int, default=32 if stage == "expert" else 4,
                       help="windows of 5 frames per step")
        s.add_argument("--lr", type=float, default=1e-3)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--run-dir", default=None, help="default runs/wav2lip-<stage>-<size>")
        s.add_argument("--out", required=True, help="safetensors file to write")
        s.add_argument("--threads", type=int, default=1)
        s.add_argument("--limit", type=int, default=None, help="use only the first N training clips")
        s.add_argument("--val-clips", type=int, default=16)
        s.add_argument("--val-every", type=int, default=100)
        if stage == "generator":
            s.add_argument("--expert", required=True, help="SyncNetColor weights (ours or lipsync_expert.pth)")
            s.add_argument("--gan", action="store_true", help="add the quality discriminator (disc_wt 0.07)")
            s.add_argument("--syncnet-wt", type=float, default=0.03)
            s.add_argument("--disc-wt", type=float, default=0.07)
            s.add_argument("--disc-lr", type=float, default=1e-4,
                           help="discriminator Adam lr (official 1e-4; at 1e-3 the tiny discriminator saturated "
                                "within 90 steps and stopped giving gradients)")
            s.add_argument("--sync-threshold", type=float, default=0.75,
                           help="turn the sync loss on once the val sync loss is below this (official 0.75; "
                                "0: on from the start)")
    return p


def training_data(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """``(train ClipBank, val ClipBank, dataset version)``: ``--val-clips`` clips evenly spaced over
    the val split; datasets without one hold out the last ``--val-clips`` training clips."""
    from baselines.wav2lip.batches import ClipBank
    from tfgbench import registry
    from tfgbench.data.faceclips import load_face_clips

    cls = registry.load("datasets", args.dataset)
    train_ds = cls(root=args.data_root, split=TRAIN_SPLIT[args.dataset])
    clips = load_face_clips(train_ds, size=96, limit=args.limit)
    if "val" in cls.splits:
        val = load_face_clips(cls(root=args.data_root, split="val"), size=96)
        # evenly spaced, so that every validation speaker is seen
        picked = np.linspace(0, len(val) - 1, min(args.val_clips, len(val))).round().astype(int).tolist()
        train_bank, val_bank = ClipBank.from_face_clips(clips), ClipBank.from_face_clips(val, picked)
    else:
        n = len(clips) - args.val_clips
        train_bank = ClipBank.from_face_clips(clips, list(range(n)))
        val_bank = ClipBank.from_face_clips(clips, list(range(n, len(clips))))
    return train_bank, val_bank, str(train_ds.version)


def warmup_cosine(optimizer: Any, steps: int, warmup: int = 50) -> Any:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``steps``."""
    import torch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def load_expert(path: str, device: str = "cpu") -> Any:
    """A frozen ``SyncNetColor`` (eval mode) from our safetensors or an official checkpoint; the
    width is read from the first conv's channels (32 at official size)."""
    from baselines.wav2lip.checkpoint import detect_width, match_state_dict, read_state_dict, strip_common_prefix
    from baselines.wav2lip.model import SyncNetColor

    anchor = "face_encoder.0.conv_block.0.weight"
    state = strip_common_prefix(read_state_dict(path)[0], anchor)
    model = SyncNetColor(detect_width(state, anchor, 32))
    match_state_dict(model, state, path)
    model.eval().requires_grad_(False)
    return model.to(device)


def _finish(args: argparse.Namespace, model: Any, config: dict, result: Any, extra: dict) -> None:
    from tfgbench.checkpoints import save_checkpoint

    frames = result.steps * args.batch_size * 5
    command = "python -m baselines.wav2lip.train " + shlex.join(args.argv)
    save_checkpoint(args.out, model.state_dict(), config, command=command, training_seconds=result.seconds,
                    steps=result.steps, frames_per_second=round(frames / max(result.seconds, 1e-9), 1),
                    val=result.last_val, last_losses=result.last_losses, **extra)
    print(f"wrote {args.out}: {result.steps} steps in {result.seconds:.0f} s; val {result.last_val}")


def train_expert(args: argparse.Namespace) -> None:
    import torch

    from baselines.wav2lip.batches import expert_batch
    from baselines.wav2lip.model import SyncNetColor, cosine_loss
    from tfgbench.training import fit

    train, val, version = training_data(args)
    width = SIZES[args.size]
    model = SyncNetColor(width)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = warmup_cosine(opt, args.steps)
    val_mel, val_faces, val_y = expert_batch(val, np.random.default_rng(4321), 256)

    def step(i: int, rng: np.random.Generator) -> dict[str, float]:
        mel, faces, y = expert_batch(train, rng, args.batch_size)
        loss = cosine_loss(*model(mel, faces), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": loss.item()}

    def validate(i: int) -> dict[str, float]:
        model.eval()
        a, v = model(val_mel, val_faces)
        cos = torch.nn.functional.cosine_similarity(a, v)
        accuracy = ((cos > 0.5).float() == val_y).float().mean().item()
        return {"loss": cosine_loss(a, v, val_y).item(), "accuracy": accuracy,
                "cos_in_sync": cos[val_y == 1].mean().item(), "cos_off_sync": cos[val_y == 0].mean().item()}

    config = {"model": "syncnet-color", "size": args.size, "width": width, "dataset": args.dataset,
              "dataset_version": version, "lr": args.lr, "batch_size": args.batch_size, "steps": args.steps,
              "seed": args.seed}
    result = fit(args.run_dir or f"runs/wav2lip-expert-{args.size}", modules={"expert": model},
                 optimizers={"expert": opt}, schedulers={"expert": sched}, step_fn=step, steps=args.steps,
                 seed=args.seed, config=config, validate=validate, val_every=args.val_every, desc="wav2lip expert")
    _finish(args, model, config, result, {"training_data": _training_data_name(args.dataset)})


def _training_data_name(dataset: str) -> str:
    return {"synthetic": "synthetic train split (tfgbench)", "lrs2": "LRS2 train split",
            "lrs3": "LRS3 trainval split"}[dataset]


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # recorded in the checkpoint as the command
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.time()
    if args.steps is None:
        args.steps = 800 if getattr(args, "gan", False) else 1200
    if args.stage == "expert":
        train_expert(args)
    else:
        from baselines.wav2lip.train_generator import train_generator

        train_generator(args)
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
