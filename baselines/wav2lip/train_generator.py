"""The generator recipe of :mod:`baselines.wav2lip.train` (official ``wav2lip_train.py`` and
``hq_wav2lip_train.py``; see that module's docstring for the losses and the tiny-size choices)."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines.wav2lip.batches import GeneratorBatch, lower_half_windows, region_mask
from baselines.wav2lip.model import Wav2Lip, Wav2LipDiscQual, cosine_loss


class SyncSwitch(nn.Module):
    """Holds whether the sync loss is on, as a buffer, so that a resumed run restores it."""

    def __init__(self, on: bool) -> None:
        super().__init__()
        self.register_buffer("on", torch.tensor(float(on)))

    def __bool__(self) -> bool:
        return bool(self.on.item() > 0)


def sync_loss(expert: nn.Module, mel: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """Official ``get_sync_loss``: the expert's BCE(cos, 1) on the lower halves of ``generated``
    ``(B, 3, 5, 96, 96)`` against the mel window ``(B, 1, 80, 16)``."""
    a, v = expert(mel, lower_half_windows(generated))
    return cosine_loss(a, v, torch.ones(len(a)))


def region_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference inside ``mask`` ``(B, 1, T, H, W)`` (per pixel and channel)."""
    return ((a - b).abs() * mask).sum() / (mask.sum() * a.size(1)).clamp_min(1)


def validation_figures(gen: nn.Module, expert: nn.Module, batch: GeneratorBatch) -> dict[str, float]:
    """Generator figures on a fixed batch: whole-face L1, lip-region L1 with the true audio, with
    another clip's audio (mels rolled by one in the batch: the shuffled-audio control), and for
    copying the reference frames; the expert's sync loss on the true-audio output, on the
    shuffled-audio output and on the real frames (its scale)."""
    gen.eval()
    mask = region_mask(batch.mouth)
    out = gen(batch.indiv_mels, batch.inputs)
    shuffled = gen(torch.roll(batch.indiv_mels, 1, dims=0), batch.inputs)
    reference = batch.inputs[:, 3:]
    return {"l1": F.l1_loss(out, batch.target).item(),
            "lip_l1_true": region_l1(out, batch.target, mask).item(),
            "lip_l1_shuffled": region_l1(shuffled, batch.target, mask).item(),
            "lip_l1_copy_reference": region_l1(reference, batch.target, mask).item(),
            "sync": sync_loss(expert, batch.sync_mel, out).item(),
            "sync_real": sync_loss(expert, batch.sync_mel, batch.target).item(),
            "sync_shuffled": sync_loss(expert, batch.sync_mel, shuffled).item()}


def train_generator(args: argparse.Namespace) -> None:
    from baselines.wav2lip.batches import fixed_generator_batch, generator_batch
    from baselines.wav2lip.train import SIZES, _finish, _training_data_name, load_expert, training_data, warmup_cosine
    from tfgbench.training import fit

    train, val, version = training_data(args)
    width = SIZES[args.size]
    expert = load_expert(args.expert)
    gen = Wav2Lip(width)
    opt = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    modules: dict[str, nn.Module] = {"gen": gen}
    optimizers = {"gen": opt}
    schedulers = {"gen": warmup_cosine(opt, args.steps)}
    disc = None
    if args.gan:
        disc = Wav2LipDiscQual(width)
        modules["disc"] = disc
        optimizers["disc"] = torch.optim.Adam(disc.parameters(), lr=args.disc_lr, betas=(0.5, 0.999))
        schedulers["disc"] = warmup_cosine(optimizers["disc"], args.steps)
    switch = SyncSwitch(on=args.sync_threshold <= 0)
    modules["sync_switch"] = switch
    disc_wt = args.disc_wt if args.gan else 0.0
    val_batch = fixed_generator_batch(val, args.val_clips)

    def step(i: int, rng: np.random.Generator) -> dict[str, float]:
        b = generator_batch(train, rng, args.batch_size)
        g = gen(b.indiv_mels, b.inputs)
        l1 = F.l1_loss(g, b.target)
        sync_wt = args.syncnet_wt if switch else 0.0
        losses = {"l1": l1.item()}
        loss = (1.0 - sync_wt - disc_wt) * l1
        if sync_wt > 0:
            s = sync_loss(expert, b.sync_mel, g)
            loss = loss + sync_wt * s
            losses["sync"] = s.item()
        if disc is not None:
            adv = disc.perceptual_loss(g)
            loss = loss + disc_wt * adv
            losses["gan"] = adv.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedulers["gen"].step()
        if disc is not None:
            # the generator's backward also filled the discriminator's grads: clear them first
            optimizers["disc"].zero_grad()
            real = disc(b.target)
            fake = disc(g.detach())
            d_loss = (F.binary_cross_entropy(real, torch.ones_like(real))
                      + F.binary_cross_entropy(fake, torch.zeros_like(fake)))
            d_loss.backward()
            optimizers["disc"].step()
            schedulers["disc"].step()
            losses["disc"] = d_loss.item()
        return losses

    def validate(i: int) -> dict[str, float]:
        figures = validation_figures(gen, expert, val_batch)
        if not switch and figures["sync"] < args.sync_threshold:
            switch.on.fill_(1.0)   # official: hparams.set_hparam('syncnet_wt', 0.03) once eval sync < .75
        figures["sync_on"] = float(bool(switch))
        return figures

    expert_sha = hashlib.sha256(Path(args.expert).read_bytes()).hexdigest()
    config = {"model": "wav2lip-gan" if args.gan else "wav2lip", "size": args.size, "width": width,
              "dataset": args.dataset, "dataset_version": version, "lr": args.lr, "batch_size": args.batch_size,
              "steps": args.steps, "seed": args.seed, "syncnet_wt": args.syncnet_wt, "disc_wt": disc_wt,
              "sync_threshold": args.sync_threshold, "disc_lr": args.disc_lr if args.gan else None,
              "expert_sha256": expert_sha, "colour_order": "bgr"}
    result = fit(args.run_dir or f"runs/{config['model']}-{args.size}", modules=modules, optimizers=optimizers,
                 schedulers=schedulers, step_fn=step, steps=args.steps, seed=args.seed, config=config,
                 validate=validate, val_every=args.val_every, desc=config["model"])
    from tfgbench.training import read_log

    # the switch flips at a validation; None: the sync loss never turned on in this run
    switched = [r["step"] for r in read_log(result.log_path) if r.get("val", {}).get("sync_on")]
    on_from = 0 if args.sync_threshold <= 0 else (switched[0] if switched else None)
    _finish(args, gen, config, result, {"training_data": _training_data_name(args.dataset),
                                        "expert": Path(args.expert).name, "sync_loss_on_from_step": on_from})
