"""The training loop of TalkLip-family generators (TalkLip; SyncTalklip is a fork with other parts).

One step (official ``train.py``), on ``clips_per_step`` clips with a ``window`` of frames each
(:func:`baselines.talklip.data.sample_batch`):

1. Generator: ``fake, enc = G(inputs, fbank)``. ``L1 = |fake - real|``.
2. Perceptual (GAN) term ``BCE(D(fake), 1)`` when ``perp_w > 0``.
3. Lip reading (from step ``lip_from``): the generated faces' mouth ROIs replace the real ones in the
   clip's whole ROI sequence (:func:`tfgbench.data.faceclips.mouth_rois_from_faces`); the frozen
   expert reads it teacher forced: summed label-smoothed CE ``lip``; its encoder output at the
   generated frames is the video side ``v`` of the contrastive term.
4. Contrastive (same steps, when ``recipe.contrastive`` and ``cont_w > 0``): audio side ``a`` =
   ``sync_audio == "generator"``: the generator's audio-encoder output (TalkLip), ``"expert"``: the
   expert's audio-mode encoder output (SyncTalklip); ``contrastive(G.sync_net.project(a),
   normalize(v))``.
5. ``total = lip_w lip + perp_w perceptual + (1 - lip_w - perp_w) L1 + cont_w contrastive``; one
   generator step; then one discriminator step ``BCE(D(real), 1) + BCE(D(fake.detach()), 0)``.

Hooks for forks (:class:`Recipe` fields and :func:`train_talking_face` arguments):

* ``contrastive(audio (N, D), video (N, D)) -> loss``: both unit vectors (TalkLip:
  :func:`baselines.talklip.losses.supcon_av_sync`); ``None`` disables the term.
* ``sync_audio``: ``"generator"`` or ``"expert"`` (which audio features face the video features).
* ``lip_loss``: the lip-reading term on/off (the expert still runs for the contrastive term).
* ``extra_modules``: further modules trained by the generator's optimizer and saved with the run
  (e.g. a second, trainable audio encoder that a generator subclass uses in ``encode_audio``).
  Any generator parameter with ``requires_grad`` is trained; the audio encoder's trainable layers
  follow ``finetune_audio_layers`` / ``finetune_audio_from`` (official ``ft``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from baselines.talklip.data import TrainingClips, sample_batch
from baselines.talklip.losses import Targets, expert_audio_features, lip_reading_loss, supcon_av_sync
from baselines.talklip.model import TalkLip, set_audio_finetuning
from baselines.talklip.validation import make_validator

Contrastive = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SyncPair = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Recipe:
    """Every setting of a run. :meth:`paper` holds the official values; :meth:`tiny` the CPU recipe."""

    steps: int = 1000
    clips_per_step: int = 8
    window: int = 5
    lr: float = 1e-4
    disc_lr: float | None = None    # the discriminator's learning rate (None: ``lr``, as the official code)
    betas: tuple[float, float] = (0.5, 0.999)
    cosine: bool = False            # cosine decay of the learning rate to 0 over the run (after warm-up)
    warmup: int = 0
    lip_w: float = 1e-5
    perp_w: float = 0.07
    cont_w: float = 1e-3
    label_smoothing: float = 0.1
    lip_loss: bool = True
    lip_from: int = 0               # first step of the lip-reading and contrastive terms
    contrastive: Contrastive | None = field(default=supcon_av_sync)
    sync_audio: str = "generator"   # "generator" (TalkLip) | "expert" (SyncTalklip)
    finetune_audio_layers: int = 3  # top transformer layers of the audio encoder that train
    finetune_audio_from: int | None = 0   # first step they train (None: never)
    val_every: int = 3000
    ckpt_every: int = 3000
    log_every: int = 10

    @classmethod
    def paper(cls, **kw: Any) -> Recipe:
        """Official ``train.py`` defaults: Adam 1e-4 (0.5, 0.999), batch 8 clips, 5-frame windows,
        ``lip_w 1e-5, perp_w 0.07, cont_w 1e-3``, audio layers 9-11 fine-tuned, checkpoints and
        validation every 3000 steps. (The official switches on audio fine-tuning and then the
        lip/contrastive terms when the validation L1 plateaus; here they start at fixed steps.)"""
        return cls(**kw)

    @classmethod
    def tiny(cls, **kw: Any) -> Recipe:
        """The CPU recipe: about 10 minutes on one thread (900 steps of 2 clips x 8 generated frames,
        Adam 2e-3 with warm-up and cosine decay). ``lip_w`` and ``cont_w`` are 100x and 10x the
        official values: measured on the synthetic corpus, the lip-reading term's gradient on the
        generated pixels is ~3e3-1e4 times the L1 term's per unit weight and the contrastive term's
        ~800 times, and with the official weights a 900-step run showed no audio use at all
        (lip-region L1 with true and shuffled audio equal), while these weights gave a consistent
        true < shuffled gap from step 300 on."""
        base = dict(steps=900, clips_per_step=2, window=8, lr=2e-3, cosine=True, warmup=30,
                    lip_w=1e-3, perp_w=0.07, cont_w=1e-2, finetune_audio_layers=1, finetune_audio_from=0,
                    val_every=150, ckpt_every=150)
        base.update(kw)
        return cls(**base)

    def to_config(self) -> dict[str, Any]:
        """JSON-able form (the contrastive callable by name) for run configs and checkpoint metadata."""
        d = asdict(self)
        c = self.contrastive
        d["contrastive"] = None if c is None else f"{getattr(c, '__module__', '')}.{getattr(c, '__qualname__', c)}"
        d["betas"] = list(self.betas)
        return d


def _lr_lambda(recipe: Recipe) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if recipe.warmup and step < recipe.warmup:
            return (step + 1) / recipe.warmup
        if not recipe.cosine:
            return 1.0
        progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
        return 0.5 * (1 + np.cos(np.pi * min(1.0, progress)))
    return factor


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """Eval mode, no trainable parameters (the expert)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


def train_talking_face(recipe: Recipe, train: TrainingClips, val: TrainingClips, generator: TalkLip,
                       disc: torch.nn.Module | None, expert: torch.nn.Module | None, run_dir: str | Path, *,
                       seed: int = 0, device: str = "cpu", pad: int = 1, eos: int = 2,
                       extra_modules: Mapping[str, torch.nn.Module] | None = None,
                       config: Mapping[str, Any] | None = None, progress: bool = True,
                       align: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                       sync_pair: SyncPair | None = None):
    """Train ``generator`` (and ``disc``) with ``recipe``; resumable in ``run_dir``
    (:func:`tfgbench.training.fit`). ``expert``: a frozen AV-HuBERT seq2seq lip reader (``None``:
    no lip or contrastive term); ``pad``/``eos``: its dictionary's indices. ``config``: extra
    entries for the run's config (e.g. the command's data and init files). ``align(features (B, T, D),
    padding (B, T)) -> (B, T, D)``: applied to the audio and video feature sequences before the
    generated frames are picked for the contrastive term (SyncTalklip(conv)'s temporal conv).
    ``sync_pair(audio (N, D), video (N, D)) -> (a, v)``: the pair the contrastive term compares
    (default: TalkLip's ``G.sync_net.project(audio)`` against ``normalize(video)``; SyncTalklip: the
    frozen supervisor's own alignment head). Returns the :class:`tfgbench.training.TrainResult`."""
    from tfgbench.data.faceclips import mouth_rois_from_faces, normalise_rois
    from tfgbench.training import fit

    generator.to(device).use_channels_last()
    if expert is not None:
        freeze(expert).to(device)
        if train.tokens is None:
            raise ValueError("the lip-reading expert needs transcript tokens in the training clips")
    set_audio_finetuning(generator, recipe.finetune_audio_layers)
    extra = dict(extra_modules or {})
    params = [p for p in generator.parameters() if p.requires_grad]
    params += [p for m in extra.values() for p in m.to(device).parameters() if p.requires_grad]
    modules: dict[str, torch.nn.Module] = {"gen": generator, **extra}
    optimizers = {"gen": torch.optim.Adam(params, lr=recipe.lr, betas=recipe.betas)}
    schedulers = {"gen": torch.optim.lr_scheduler.LambdaLR(optimizers["gen"], _lr_lambda(recipe))}
    if disc is not None and recipe.perp_w > 0:
        modules["disc"] = disc.to(device).to(memory_format=torch.channels_last)
        disc_lr = recipe.lr if recipe.disc_lr is None else recipe.disc_lr
        optimizers["disc"] = torch.optim.Adam(disc.parameters(), lr=disc_lr, betas=recipe.betas)
        schedulers["disc"] = torch.optim.lr_scheduler.LambdaLR(optimizers["disc"], _lr_lambda(recipe))
    else:
        disc = None
    expert_on = expert is not None and (recipe.lip_loss or (recipe.contrastive is not None and recipe.cont_w > 0))

    def step(i: int, rng: np.random.Generator) -> dict[str, float]:
        b = sample_batch(train, rng, recipe.clips_per_step, recipe.window, with_sequences=expert_on)
        inputs, real, fbank, padding, index = (x.to(device) for x in (b.inputs, b.real, b.fbank, b.padding, b.index))
        generator.finetune_audio = recipe.finetune_audio_from is not None and i >= recipe.finetune_audio_from
        fake, enc_audio = generator(inputs, fbank, padding, index)
        l1 = F.l1_loss(fake, real)
        total = (1.0 - recipe.lip_w - recipe.perp_w) * l1
        out = {"l1": l1.item()}
        if disc is not None:
            perceptual = disc.perceptual_loss(fake)
            total = total + recipe.perp_w * perceptual
            out["perceptual"] = perceptual.item()
        if expert_on and i >= recipe.lip_from:
            mouth = b.clip_mouth.to(device)
            if b.clip_rois is not None:     # real frames exactly as the evaluators crop them
                real_rois = b.clip_rois.to(device)
                rois = normalise_rois(real_rois)
                generated = mouth_rois_from_faces(fake, mouth[index], real_rois[index])
            else:
                with torch.no_grad():
                    rois = mouth_rois_from_faces(b.clip_faces.to(device), mouth)
                generated = mouth_rois_from_faces(fake, mouth[index])
            rois = rois.index_put((index,), generated)
            targets = Targets.from_tokens([train.tokens[c] for c in b.clips], pad, eos)
            read = lip_reading_loss(expert, rois.view(len(b.clips), -1, *rois.shape[1:]), padding,
                                    Targets(targets.prev.to(device), targets.target.to(device), pad),
                                    recipe.label_smoothing)
            out["lip"], out["expert_acc"] = read.loss.item(), read.correct / max(1, read.total)
            if recipe.lip_loss:
                total = total + recipe.lip_w * read.loss
            if recipe.contrastive is not None and recipe.cont_w > 0:
                audio = enc_audio if recipe.sync_audio == "generator" else expert_audio_features(expert, fbank, padding)
                video = read.encoder_out
                if align is not None:       # SyncTalklip(conv): a temporal conv over both sequences first
                    audio, video = align(audio, padding), align(video, padding)
                a, v = audio.reshape(-1, audio.shape[-1])[index], video.reshape(-1, video.shape[-1])[index]
                a, v = sync_pair(a, v) if sync_pair is not None else (generator.sync_net.project(a),
                                                                      F.normalize(v, dim=1))
                contrastive = recipe.contrastive(a, v)
                total = total + recipe.cont_w * contrastive
                out["contrastive"] = contrastive.item()
        optimizers["gen"].zero_grad(set_to_none=True)
        total.backward()
        optimizers["gen"].step()
        schedulers["gen"].step()
        if disc is not None:
            pred_real, pred_fake = disc(real), disc(fake.detach())
            d_loss = F.binary_cross_entropy(pred_real, torch.ones_like(pred_real)) + \
                F.binary_cross_entropy(pred_fake, torch.zeros_like(pred_fake))
            optimizers["disc"].zero_grad(set_to_none=True)
            d_loss.backward()
            optimizers["disc"].step()
            schedulers["disc"].step()
            out["disc"] = d_loss.item()
        out["total"] = total.item()
        return out

    validate = make_validator(generator, val, expert if expert is not None else None, pad, eos, device)
    run_config = {"recipe": recipe.to_config(), "seed": seed, **dict(config or {})}
    return fit(run_dir, modules=modules, optimizers=optimizers, schedulers=schedulers, step_fn=step,
               steps=recipe.steps, seed=seed, config=run_config, validate=validate, val_every=recipe.val_every,
               ckpt_every=recipe.ckpt_every, log_every=recipe.log_every, desc="talklip", progress=progress)
