"""SyncTalklip stage 2: train the generator -> ``synctalklip/weights/<model>-tiny.safetensors``.

    synctalklip train generator --variant base                    # synctalklip
    synctalklip train generator --variant conv                    # synctalklip-conv
    synctalklip train generator --variant freeze                  # synctalklip-freeze
    synctalklip train generator --ablation no-lip                 # Table 3: supcon | avhubert | no-contrastive | no-lip

The loop is TalkLip's (:func:`baselines.talklip.recipe.train_talking_face`; SyncTalklip is a fork
of TalkLip) with SyncTalklip's parts: the frozen AV-SyncNet supervisor reads the clip with the
generated frames pasted in (lip-reading loss, eq. 4) and gives the video embeddings of those
frames; the audio side of the contrastive loss is the supervisor's audio-only encoding of the clip
(the official ``sync_enc_audio``), compared with the video side by the supervisor's own frozen
alignment head (``tau ||F(a) - v||_1`` of eq. 11, ``--sync-head expert``; ``--sync-head generator``:
the generator's trainable ``sync_net`` as in the official code); the contrastive loss is the novel L1
one (eq. 12) unless an ablation says otherwise; the generator's
audio encoder starts from the supervisor's encoder. Which supervisor file is used follows the
variant (``base``, ``conv``, or the plain AV-HuBERT of the ``avhubert`` ablation); ``--supervisor``
overrides it. The supervisors are ours (stage 1), never the evaluators in ``tfgbench/weights``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from synctalklip.generator import ABLATIONS, SIZES, VARIANTS, SyncTalklipVariant, build_generator

WEIGHTS = Path(__file__).resolve().parent / "weights"


def supervisor_path(spec: SyncTalklipVariant) -> Path:
    """The shipped stage-1 checkpoint that supervises ``spec`` (tiny)."""
    return WEIGHTS / f"avsyncnet-{spec.supervisor}-{spec.size}.safetensors"


def expert_sync_pair(net, contrastive: str | None):
    """The contrastive term's pair from the frozen supervisor's alignment head (stage 1's ``F`` and
    ``tau``): ``(tau F(a), tau v)``, so the novel loss's L1 distance is eq. 11's
    ``theta(a, v) = tau ||F(a) - v||_1`` exactly as AV-SyncNet was trained to score real pairs;
    SupCon gets the same pair as unit vectors."""
    import torch.nn.functional as F

    for p in net.parameters():
        p.requires_grad_(False)
    head = net.avsync.eval()

    def pair(audio: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, v = head.F(audio) * head.tau, video * head.tau
        if contrastive == "supcon":
            return F.normalize(a, dim=1), F.normalize(v, dim=1)
        return a, v
    return pair


def build_recipe(spec: SyncTalklipVariant, **overrides):
    """TalkLip's training recipe with SyncTalklip's supervision (see the module docstring).

    Loss weights: at ``paper`` size the official SyncTalklip values (``cont_w`` 1e-4, ``lip_w`` 1e-5,
    ``perp_w`` 0.07, the lip loss on from the start). At ``tiny`` size ``lip_w`` is the official value
    scaled as tiny TalkLip scales official TalkLip's (x100: 1e-3), and ``cont_w`` is 1 with the
    discriminator at the official 1e-4 learning rate: with the frozen supervisor's distance (the
    default ``--sync-head expert``) the contrastive term is a per-dimension mean distance that
    separates real from 10-frame-shifted mouths by about 0.17, and a 600-step run at ``cont_w`` 0.01
    showed no audio use, at 0.1 a faint one (LSE-C 0.175 own vs 0.143 other audio on 12 test clips),
    at 1 a clear one (0.278 vs 0.149; README, "Choices"). ``freeze`` trains no layer of the AV-SyncNet
    encoder (the extra encoder trains whole)."""
    from baselines.talklip.losses import supcon_av_sync
    from baselines.talklip.recipe import Recipe
    from synctalklip.losses import novel_contrastive_loss

    official = {"cont_w": 1e-4, "lip_w": 1e-5, "perp_w": 0.07}
    contrastive = {"novel": novel_contrastive_loss, "supcon": supcon_av_sync, None: None}[spec.contrastive]
    kw: dict = dict(contrastive=contrastive, sync_audio="expert", lip_loss=spec.lip_loss, lip_from=0)
    if spec.variant == "freeze":
        kw.update(finetune_audio_layers=0, finetune_audio_from=None)
    if spec.size == "tiny":
        tiny, paper = Recipe.tiny(), Recipe.paper()
        kw.update(lip_w=official["lip_w"] * tiny.lip_w / paper.lip_w, perp_w=official["perp_w"],
                  cont_w=1.0, disc_lr=1e-4)
        kw.update(overrides)
        return Recipe.tiny(**kw)
    kw.update(official)
    kw.update(overrides)
    return Recipe.paper(**kw)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="synctalklip train generator", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--variant", choices=VARIANTS, default="base")
    p.add_argument("--ablation", choices=ABLATIONS, help="a Table 3 ablation of the base model")
    p.add_argument("--size", choices=SIZES, default="tiny")
    p.add_argument("--supervisor", help="stage-1 AV-SyncNet file (default: the shipped one the variant uses)")
    p.add_argument("--run-dir", help="resumable run folder (default: runs/<model>-<size>)")
    p.add_argument("--sync-head", choices=("expert", "generator"), default="expert",
                   help="what compares audio and generated video in the contrastive term: the frozen "
                        "AV-SyncNet's own alignment head F and distance (default) or the generator's "
                        "trainable sync_net as in the official code (see the README)")
    p.add_argument("--out", help="output safetensors (default: synctalklip/weights/<model>-<size>.safetensors)")
    from baselines.talklip.train import add_generator_training_arguments

    add_generator_training_arguments(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()

    from baselines.talklip.checkpoint import audio_encoder_init, save_talklip
    from baselines.talklip.data import TrainingClips
    from baselines.talklip.model import TalkLipDiscQual
    from baselines.talklip.recipe import train_talking_face
    from baselines.talklip.train import load_splits, recipe_overrides, refuse_evaluator
    from synctalklip.avsyncnet import load_avsyncnet
    from tfgbench.errors import MissingResourceError

    spec = SyncTalklipVariant(args.variant, args.ablation, args.size)
    supervisor = Path(args.supervisor) if args.supervisor else supervisor_path(spec)
    refuse_evaluator(supervisor, "--supervisor")
    if not supervisor.is_file():
        raise MissingResourceError(
            f"{supervisor}: stage-1 supervisor not found; train it first with `synctalklip train avsyncnet "
            f"--size {spec.size} --variant {spec.supervisor}` or pass --supervisor FILE")
    net = load_avsyncnet(supervisor, device=args.device)
    overrides = recipe_overrides(args)
    recipe = build_recipe(spec, **overrides)
    torch.manual_seed(args.seed)
    state, encoder_cfg = audio_encoder_init(supervisor)
    generator, config = build_generator(spec, encoder_cfg, state)
    disc = TalkLipDiscQual(config.width)
    train_clips, val_clips = load_splits(args.dataset, args.data_root, args.limit, args.val_clips)
    train = TrainingClips.from_face_clips(train_clips, net.codec)
    val = TrainingClips.from_face_clips(val_clips, net.codec, progress=False)
    run_dir = args.run_dir or f"runs/{spec.name}-{spec.size}"
    out = Path(args.out) if args.out else WEIGHTS / f"{spec.name}-{spec.size}.safetensors"
    data = {"dataset": args.dataset, "train_clips": len(train), "val_clips": len(val),
            "supervisor": str(supervisor), "synctalklip": spec.to_dict()}
    align = (lambda f, pad: net.align(f, pad)) if spec.variant == "conv" else None
    pair = expert_sync_pair(net, spec.contrastive) if args.sync_head == "expert" else None
    data["sync_head"] = args.sync_head
    result = train_talking_face(recipe, train, val, generator, disc, net.seq2seq, run_dir, seed=args.seed,
                                device=args.device, pad=net.codec.dictionary.pad, eos=net.codec.dictionary.eos,
                                config=data, align=align, sync_pair=pair)
    given = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    # float16 on disk: the shipped tiny generators stay a few MB (weights load back into float32)
    save_talklip(out, generator.cpu().half(), config, command=f"synctalklip train generator {given}".strip(),
                 training_data=f"synthetic corpus train split ({len(train)} clips)" if args.dataset == "synthetic"
                 else f"{args.dataset} train split ({len(train)} clips)",
                 recipe=recipe.to_config(), train_seconds=result.seconds, steps=result.steps,
                 last_losses=result.last_losses, val=result.last_val, **data)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); training {result.seconds / 60:.1f} min, "
          f"total {(time.time() - t0) / 60:.1f} min; val {result.last_val}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
