"""Train a TalkLip generator -> our safetensors checkpoint (the loop: :mod:`baselines.talklip.recipe`).

    python -m baselines.talklip.train --size tiny --expert synctalklip/weights/avsyncnet-plain-tiny.safetensors \\
        --init-audio synctalklip/weights/avhubert-pretrained-tiny.safetensors --steps 600 --seed 0 \\
        --run-dir runs/talklip-tiny --out baselines/talklip/weights/talklip-tiny.safetensors --threads 1

Data: ``--dataset synthetic`` (default; the corpus's train split, validation on its val split) or
``lrs2``/``lrs3`` with ``--data-root`` (face boxes required; LRS3 has no val split, so the last
``--val-clips`` training clips are held out). The expert is a plain AV-HuBERT seq2seq lip reader
(tfgbench safetensors, e.g. the synthetic one ``synctalklip/weights/avsyncnet-plain-tiny.safetensors``;
never the evaluators in ``tfgbench/weights``); without ``--expert`` a random tiny reader stands in
(smoke runs only). ``--init-audio`` starts the generator's AV-HuBERT audio encoder (official:
pre-trained ``base_vox_iter5.pt``); without it the encoder is random.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from baselines.talklip.checkpoint import audio_encoder_init, save_talklip
from baselines.talklip.data import TrainingClips
from baselines.talklip.model import SIZES, TalkLipConfig, TalkLipDiscQual, build_talklip
from baselines.talklip.recipe import Recipe, train_talking_face
from tfgbench.errors import TfgbenchError
from tfgbench.readers.avhubert import AVHubertConfig

WEIGHTS = Path(__file__).resolve().parent / "weights"
DEFAULT_OUT = WEIGHTS / "talklip-tiny.safetensors"
#: the evaluators that score results; never a supervisor or an init
EVALUATORS = Path(__file__).resolve().parents[2] / "tfgbench" / "weights"


def refuse_evaluator(path: str | Path | None, flag: str) -> None:
    if path is not None and Path(path).resolve().parent == EVALUATORS.resolve():
        raise TfgbenchError(f"{flag} {path}: that is an evaluator of tfgbench's metrics; supervisors and "
                            "initialisations must be trained separately (e.g. synctalklip/weights/)")


def load_expert(path: str | Path | None, seed: int = 0) -> tuple[torch.nn.Module, Any, str]:
    """The lip-reading expert (model, text codec, description): our AV-HuBERT seq2seq safetensors,
    whose extra heads stored beside it (``avsync.*``) are ignored; a random tiny reader over the
    synthetic vocabulary without ``path`` (smoke runs)."""
    from tfgbench.checkpoints import load_checkpoint
    from tfgbench.readers.avhubert import AVHubertSeq2Seq
    from tfgbench.readers.avhubert_reader import load_state_strict
    from tfgbench.readers.tokenizer import Dictionary, TextCodec, WordTokenizer

    refuse_evaluator(path, "--expert")
    if path is None:
        from tfgbench.data.synthetic.grammar import VOCABULARY

        torch.manual_seed(seed)
        dictionary = Dictionary.from_pieces(VOCABULARY)
        model = AVHubertSeq2Seq(AVHubertConfig.tiny(vocab_size=len(dictionary)))
        return model, TextCodec(dictionary, WordTokenizer()), "random tiny AV-HuBERT (smoke run)"
    state, config, meta = load_checkpoint(path)
    if "symbols" not in meta or meta.get("tokenizer", "word") != "word":
        raise TfgbenchError(f"{path}: not a tfgbench AV-HuBERT reader checkpoint (no word dictionary in its metadata)")
    model = AVHubertSeq2Seq(AVHubertConfig.from_dict(config))
    load_state_strict(model, {k: v for k, v in state.items() if not k.startswith("avsync.")}, str(path))
    return model, TextCodec(Dictionary(meta["symbols"]), WordTokenizer()), str(path)


def build_generator(size: str, init_audio: str | Path | None, seed: int = 0):
    """A generator at ``size`` whose audio encoder starts from ``init_audio`` (sizes from that file)."""
    from tfgbench.readers.avhubert_reader import load_state_strict

    refuse_evaluator(init_audio, "--init-audio")
    torch.manual_seed(seed)
    if init_audio is None:
        config = TalkLipConfig.for_size(size)
        return build_talklip(config), config
    state, audio_cfg = audio_encoder_init(init_audio)
    config = TalkLipConfig.for_size(size, audio=audio_cfg)
    model = build_talklip(config)
    load_state_strict(model.audio_encoder, state, str(init_audio))
    return model, config


def load_splits(dataset: str, data_root: str | None, limit: int | None, val_clips: int):
    """(train, val) FaceClips of ``dataset``."""
    from tfgbench.data.faceclips import load_face_clips

    if dataset == "synthetic":
        from tfgbench.data.synthetic import SyntheticDataset

        train = load_face_clips(SyntheticDataset(data_root, split="train"), limit=limit)
        return train, load_face_clips(SyntheticDataset(data_root, split="val"), limit=val_clips)
    from tfgbench.data.lrs import LRS2, LRS3

    if data_root is None:
        raise TfgbenchError(f"--dataset {dataset} needs --data-root DIR (the dataset's root folder)")
    if dataset == "lrs2":
        return (load_face_clips(LRS2(data_root, split="train"), limit=limit),
                load_face_clips(LRS2(data_root, split="val"), limit=val_clips))
    if dataset != "lrs3":
        raise TfgbenchError(f"unknown --dataset {dataset!r}; choose synthetic, lrs2 or lrs3")
    clips = load_face_clips(LRS3(data_root, split="trainval"), limit=limit)
    cut = len(clips) - val_clips
    return _subset(clips, slice(0, cut)), _subset(clips, slice(cut, None))


def _subset(clips, part: slice):
    from dataclasses import replace

    return replace(clips, **{f: getattr(clips, f)[part] for f in ("ids", "faces", "audio", "mouth", "boxes", "texts")})


def add_generator_training_arguments(p: argparse.ArgumentParser) -> None:
    """The options every TalkLip-family training command shares (TalkLip, SyncTalklip stage 2): data,
    steps, seed, threads, device, limits, and overrides of the recipe's values."""
    p.add_argument("--dataset", default="synthetic", choices=["synthetic", "lrs2", "lrs3"])
    p.add_argument("--data-root", help="dataset root (LRS2/LRS3; synthetic: default corpus folder)")
    p.add_argument("--steps", type=int, help="training steps (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on 2 shared cores, "
                   "2 threads can be slower)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--limit", type=int, help="use only the first N training clips (smoke runs)")
    p.add_argument("--val-clips", type=int, default=6)
    for name in ("lip-w", "cont-w", "perp-w", "lr", "disc-lr"):
        p.add_argument(f"--{name}", type=float, help="override the recipe's value")
    for name in ("clips-per-step", "window", "val-every"):
        p.add_argument(f"--{name}", type=int, help="override the recipe's value")


def recipe_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe values given on the command line (checkpoints follow ``--val-every``)."""
    kw = {k: getattr(args, k) for k in ("lip_w", "cont_w", "perp_w", "lr", "disc_lr", "clips_per_step", "window",
                                        "val_every", "steps")}
    kw = {k: v for k, v in kw.items() if v is not None}
    if "val_every" in kw:
        kw["ckpt_every"] = kw["val_every"]
    return kw


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--expert", help="lip-reading expert (tfgbench AV-HuBERT safetensors)")
    p.add_argument("--init-audio", help="AV-HuBERT safetensors to start the audio encoder from")
    p.add_argument("--run-dir", required=True, help="resumable run folder (log.jsonl, last.safetensors)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output generator safetensors")
    add_generator_training_arguments(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()

    recipe_kw = recipe_overrides(args)
    recipe = Recipe.tiny(**recipe_kw) if args.size == "tiny" else Recipe.paper(**recipe_kw)
    expert, codec, expert_desc = load_expert(args.expert, args.seed)
    generator, config = build_generator(args.size, args.init_audio, args.seed)
    disc = TalkLipDiscQual(config.width)
    train_clips, val_clips = load_splits(args.dataset, args.data_root, args.limit, args.val_clips)
    train = TrainingClips.from_face_clips(train_clips, codec)
    val = TrainingClips.from_face_clips(val_clips, codec, progress=False)
    data = {"dataset": args.dataset, "train_clips": len(train), "val_clips": len(val), "size": args.size,
            "expert": expert_desc, "init_audio": args.init_audio or "random"}
    result = train_talking_face(recipe, train, val, generator, disc, expert, args.run_dir, seed=args.seed,
                                device=args.device, pad=codec.dictionary.pad, eos=codec.dictionary.eos, config=data)
    given = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    save_talklip(args.out, generator.cpu(), config, half=True, command=f"python -m baselines.talklip.train {given}",
                 training_data=f"{args.dataset} train split ({len(train)} clips)", recipe=recipe.to_config(),
                 train_seconds=result.seconds, steps=result.steps, last_losses=result.last_losses,
                 val=result.last_val, **data)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB); training {result.seconds / 60:.1f} min, "
          f"total {(time.time() - t0) / 60:.1f} min; val {result.last_val}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
