"""Train AV-SyncNet (SyncTalklip stage 1): pre-training (eq. 3) then multi-task fine-tuning (eq. 4-6).

    python -m synctalklip.train_avsyncnet --size tiny --variant base      # -> weights/avsyncnet-base-tiny.safetensors
    python -m synctalklip.train_avsyncnet --size tiny --variant plain     # lambda_av = 0 ("AV-HuBERT" of Table 2)
    python -m synctalklip.train_avsyncnet --size tiny --variant conv      # temporal conv before the alignment

Recipe (train split only; the test split is scored at the end):

1. Video front end (ResNet-18, quarter width at tiny): AV-sync InfoNCE pre-training of
   :func:`tfgbench.readers.pretrain.load_or_pretrain_frontend` with this run's own seed and cache
   folder (never the evaluators' front end); at tiny size it stays frozen and its features (centre +
   random crops) are cached.
2. Masked cluster prediction (:mod:`synctalklip.pretrain`), cached under
   ``$TFGBENCH_HOME/cache/synctalklip/`` keyed by its settings and shared by the three variants; the
   shipped ``synctalklip/weights/avhubert-pretrained-tiny.safetensors`` is used when its key matches.
   ``--init FILE.pt`` (a fairseq AV-HuBERT seq2seq checkpoint, e.g. Large) replaces steps 1-2: its
   encoder is the pre-trained model (the decoder is rebuilt for this run's word vocabulary).
3. Fine-tuning with :func:`tfgbench.training.fit` (resumable ``--run-dir``): ``lambda_lip L_lip +
   lambda_av L_av``; validation = teacher-forced token accuracy, lip loss, mean theta of aligned and
   +-5-frame shifted pairs, and the fraction of clips whose theta-minimising offset in [-7, 7] is 0.
4. Synthetic corpus: test-split WER through the ``wer/synthetic-avhubert`` protocol (ground truth and
   static first frame) with the trained model as reader; figures, command and minutes go into the file.

LRS2/LRS3 (``--dataset lrs2 --data-root DIR``): the datasets have face boxes only, so the mouth box is
the lower centre of the face box (:func:`tfgbench.face.crops.mouth_from_face`); vocabulary = the most
frequent training words.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from synctalklip.avsyncnet import AVSyncNet, save_avsyncnet, word_codec
from synctalklip.config import AVSyncNetConfig
from synctalklip.finetune import ClipBatches, finetune, init_from_fairseq, prepare_video, sync_and_accuracy
from tfgbench.face.crops import mouth_from_face

WEIGHTS = Path(__file__).resolve().parent / "weights"
SHIPPED_PRETRAINED = WEIGHTS / "avhubert-pretrained-tiny.safetensors"


class MouthFromFace:
    """A tfgbench dataset whose samples get ``meta['mouth_box']`` from their face boxes."""

    def __init__(self, dataset: Any) -> None:
        self.dataset, self.split = dataset, dataset.split
        self.version = f"{dataset.version}-mouth-from-face-v1"

    def ids(self) -> list[str]:
        return self.dataset.ids()

    def load(self, sample_id: str) -> Any:
        from tfgbench.errors import SampleError

        s = self.dataset.load(sample_id)
        if s.boxes is None:
            raise SampleError(f"{s.where()}: no face boxes, so no mouth region for AV-SyncNet")
        s.meta["mouth_box"] = mouth_from_face(s.boxes)
        return s


def open_splits(args: argparse.Namespace) -> tuple[Any, Any, Any, str]:
    """(train, val or None, test or None) datasets with mouth boxes, and the corpus version."""
    if args.dataset == "synthetic":
        from tfgbench.data.synthetic import SyntheticDataset

        train = SyntheticDataset(args.data_root, split="train")
        return train, SyntheticDataset(args.data_root, split="val"), SyntheticDataset(args.data_root, split="test"), \
            train.version
    from tfgbench import registry

    cls = registry.load("datasets", args.dataset)
    names = {"lrs2": ("train", "val"), "lrs3": ("trainval", None)}[args.dataset]
    train = MouthFromFace(cls(root=args.data_root, split=names[0]))
    val = MouthFromFace(cls(root=args.data_root, split=names[1])) if names[1] else None
    return train, val, None, train.version


def build_codec(dataset: str, texts: list[str], vocab: int) -> Any:
    if dataset == "synthetic":
        from tfgbench.data.synthetic.grammar import VOCABULARY

        return word_codec(list(VOCABULARY))
    counts = Counter(w for t in texts for w in t.lower().split())
    return word_codec([w for w, _ in counts.most_common(vocab - 4)])


def pretrained_encoder(cfg: AVSyncNetConfig, net: AVSyncNet, batches: ClipBatches, clips: Any, key: dict,
                       seed: int, pretrained_out: str | None, command: str, log: Any = print) -> dict[str, Any]:
    """Load the cached (or shipped) pre-training with this ``key`` into ``net``, or run it (under a
    file lock so concurrent variants share one run)."""
    from synctalklip.pretrain import load_pretrained_encoder, pretrain_encoder, save_pretrained
    from tfgbench.paths import home

    key_text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha1(key_text.encode()).hexdigest()[:12]
    cache = home() / "cache" / "synctalklip" / f"pretrain-{digest}.safetensors"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for path in (SHIPPED_PRETRAINED, cache):
            if path.is_file():
                w2v, _, meta = load_pretrained_encoder(path)
                if meta.get("key") == key_text:
                    net.w2v.load_state_dict(w2v.state_dict())
                    log(f"pre-trained encoder loaded from {path}")
                    return {"file": str(path), **meta.get("stats", {})}
        t0 = time.time()
        stats = pretrain_encoder(net.w2v, batches, clips.fbank, cfg, seed=seed, log=log)
        stats["minutes"] = round((time.time() - t0) / 60, 1)
        for path in [cache] + ([Path(pretrained_out)] if pretrained_out else []):
            save_pretrained(path, net.w2v, net.seq2seq.cfg, key=key_text, stats=stats, command=command)
        return {"file": str(cache), **stats}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="synctalklip train avsyncnet", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=("tiny", "paper"), default="tiny")
    p.add_argument("--variant", choices=("base", "conv", "plain"), default="base")
    p.add_argument("--dataset", choices=("synthetic", "lrs2", "lrs3"), default="synthetic")
    p.add_argument("--data-root", help="dataset folder (default: the synthetic corpus / $TFGBENCH_LRS2 ...)")
    p.add_argument("--steps", type=int, help="fine-tuning steps (default: the size's config)")
    p.add_argument("--pretrain-steps", type=int, help="masked-prediction steps per iteration")
    p.add_argument("--pretrain-iterations", type=int, help="clustering iterations (>= 2 without --init)")
    p.add_argument("--frontend-pretrain-steps", type=int, help="AV-sync InfoNCE steps of the video front end")
    p.add_argument("--init", help="fairseq AV-HuBERT seq2seq checkpoint (.pt) whose encoder replaces pre-training")
    p.add_argument("--spm", help="SentencePiece model for --init files without an embedded tokenizer")
    p.add_argument("--vocab", type=int, default=1000, help="word vocabulary size for LRS2/LRS3")
    p.add_argument("--seed", type=int, default=1, help="seed (the shipped evaluators use 0; stay off it)")
    p.add_argument("--run-dir", help="training state / log folder (default: $TFGBENCH_HOME/runs/avsyncnet-...)")
    p.add_argument("--out", help="output safetensors (default: synctalklip/weights/avsyncnet-<variant>-<size>)")
    p.add_argument("--pretrained-out", help="also write the pre-trained encoder here (when pre-training runs)")
    p.add_argument("--limit", type=int, help="use only the first N training clips (smoke tests)")
    p.add_argument("--eval-limit", type=int, help="score only the first N test clips")
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return p.parse_args(argv)


def make_config(args: argparse.Namespace) -> AVSyncNetConfig:
    over = {k: v for k, v in (("finetune_steps", args.steps), ("pretrain_steps", args.pretrain_steps),
                              ("pretrain_iterations", args.pretrain_iterations),
                              ("frontend_pretrain_steps", args.frontend_pretrain_steps)) if v is not None}
    return getattr(AVSyncNetConfig, args.size)(args.variant, **over)


def main(argv: list[str] | None = None) -> int:
    from tfgbench.paths import home
    from tfgbench.readers.pretrain import load_clips

    args = parse_args(argv)
    given = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    command = f"python -m synctalklip.train_avsyncnet {given}".strip()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    cfg = make_config(args)
    train, val, test, version = open_splits(args)
    clips = load_clips(train, limit=args.limit)
    if val is None:                                  # LRS3: hold out every 20th training clip
        held = list(range(0, len(clips), 20))
        val_clips, clips = clips.subset(held), clips.subset([i for i in range(len(clips)) if i % 20])
    else:
        val_clips = load_clips(val)
    codec = build_codec(args.dataset, clips.texts, args.vocab)
    torch.manual_seed(args.seed)
    info: dict[str, Any] = {"corpus": version, "train_clips": len(clips), "val_clips": len(val_clips)}
    seq2seq = None
    if args.init:
        seq2seq, info["init"] = init_from_fairseq(args.init, args.spm, codec, cfg)
    net = AVSyncNet(cfg, codec, seq2seq)
    batches, val_batches, info["frontend"] = prepare_video(net, cfg, clips, val_clips, args, version)
    if not args.init:
        key = {**cfg.pretrain_key(), "corpus": version, "clips": len(clips), "seed": args.seed,
               "frontend": info["frontend"].get("digest")}
        info["pretrain"] = pretrained_encoder(cfg, net, batches, clips, key, args.seed, args.pretrained_out, command)
    name = f"avsyncnet-{args.variant}-{args.size}"
    run_dir = Path(args.run_dir) if args.run_dir else home() / "runs" / f"{name}-{args.dataset}-s{args.seed}"
    result = finetune(net, cfg, clips, val_clips, batches, val_batches, run_dir=run_dir, seed=args.seed,
                      val_every=args.val_every,
                      run_config={**cfg.to_dict(), "dataset": args.dataset, "corpus": version, "seed": args.seed,
                                  "train_clips": len(clips), "init": args.init})
    info["train"] = {"steps": result.steps, "minutes": round(result.seconds / 60, 1), **result.last_losses}
    info["val"] = result.last_val
    net.seq2seq.cfg.dropout = 0.0                     # inference config in the saved file
    if test is not None:
        from tfgbench.readers.avhubert_reader import AVHubertReader
        from tfgbench.readers.train_synthetic_avhubert import evaluate

        test_clips = load_clips(test)
        tb = prepare_video(net, cfg, test_clips, test_clips, args, version, only_val=True)[1]
        targets = [codec.encode(t) for t in test_clips.texts]
        info["test_sync"] = sync_and_accuracy(net, tb, targets, len(test_clips))
        info["test"] = evaluate(AVHubertReader(net.seq2seq, codec, sha256="training"), test, args.eval_limit)
        print(f"test split: ground-truth WER {info['test']['ground-truth_wer']:.3f}, static-frame WER "
              f"{info['test']['static-frame_wer']:.3f}; sync {info['test_sync']}")
    out = Path(args.out) if args.out else WEIGHTS / f"{name}.safetensors"
    save_avsyncnet(out, net, command=command,
                   minutes=round((time.time() - t0) / 60, 1), **info)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
