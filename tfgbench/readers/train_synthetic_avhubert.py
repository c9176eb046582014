"""Train the synthetic corpus's AV-HuBERT reader (tiny) -> tfgbench/weights/avhubert-synthetic.safetensors.

    nice -n 5 python -m tfgbench.readers.train_synthetic_avhubert          # ~15-20 min on 2 CPU cores

Recipe (all on the corpus's *train* split; the test split is only scored at the end):

1. :func:`tfgbench.readers.pretrain.load_or_pretrain_frontend`: the quarter-width ResNet-18 front
   end pre-trained by audio-visual synchrony (self-supervised; shared with the Conformer reader).
2. The tiny seq2seq (:meth:`AVHubertConfig.tiny`: 3 x 128 encoder, 2 x 128 decoder) on top of the
   *frozen* front end: front-end features are computed once per clip for the centre crop and
   ``--crops - 1`` random 44x44 crops (augmentation), then encoder + decoder are trained with
   label-smoothed (0.1) cross entropy on the transcripts, dropout 0.1, AdamW, one-cycle schedule.
3. Vocabulary: the 51 GRID words as whole-word tokens (``WordTokenizer``) after fairseq's four
   specials; stored in the checkpoint's metadata (``symbols``), no SentencePiece model needed.
4. Scored on the test split through the ``wer/synthetic-avhubert`` metric itself: ground-truth
   frames and the ``static-frame`` baseline (first frame repeated); figures go in the metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tfgbench.metrics.wer.scorer import SYNTHETIC_AVHUBERT
from tfgbench.readers.avhubert import AVHubertConfig, AVHubertSeq2Seq
from tfgbench.readers.avhubert_reader import AVHubertReader, save_avhubert
from tfgbench.readers.pretrain import (
    ClipSet,
    add_reader_training_arguments,
    crop_batch,
    training_setup,
)
from tfgbench.readers.tokenizer import Dictionary, TextCodec, WordTokenizer


def frontend_digest(frontend: torch.nn.Module) -> str:
    h = hashlib.sha1()
    for k, v in sorted(frontend.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


@torch.no_grad()
def extract_features(frontend: torch.nn.Module, clips: ClipSet, crops: int, seed: int,
                     batch: int = 16, cache: bool = True) -> list[list[torch.Tensor]]:
    """Per clip, ``crops`` front-end feature sequences ``(T, C)``: the centre crop first, then
    random crops. Cached (our own torch file, read back with ``weights_only=True``) under
    ``$TFGBENCH_HOME/cache`` keyed by the front end's weights, the clips, ``crops`` and ``seed``."""
    from tqdm import tqdm

    from tfgbench.paths import home

    key = f"{frontend_digest(frontend)}-{len(clips)}-{crops}-{seed}"
    path = home() / "cache" / f"avhubert-feats-{key}.pt"
    if cache and path.is_file():
        flat = torch.load(path, weights_only=True)
        return [list(f) for f in flat]
    rng = np.random.default_rng(seed)
    frontend.eval()
    out: list[list[torch.Tensor]] = [[] for _ in range(len(clips))]
    for c in range(crops):
        for i in tqdm(range(0, len(clips), batch), desc=f"front-end features (crop {c + 1}/{crops})"):
            rois = clips.rois[i:i + batch]
            feats = frontend(crop_batch(rois, rng, random_crop=c > 0))
            for j, r in enumerate(rois):
                out[i + j].append(feats[j, : len(r)].clone())
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save([tuple(f) for f in out], path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    return out


def _batch(feats: list[list[torch.Tensor]], targets: list[list[int]], idx: np.ndarray, rng: np.random.Generator,
           pad: int, eos: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    chosen = [feats[i][int(rng.integers(len(feats[i])))] for i in idx]
    t_max = max(len(f) for f in chosen)
    x = torch.zeros(len(idx), t_max, chosen[0].shape[1])
    mask = torch.ones(len(idx), t_max, dtype=torch.bool)
    for j, f in enumerate(chosen):
        x[j, : len(f)], mask[j, : len(f)] = f, False
    l_max = max(len(targets[i]) for i in idx)
    tgt = torch.full((len(idx), l_max), pad, dtype=torch.long)
    prev = torch.full((len(idx), l_max), pad, dtype=torch.long)
    for j, i in enumerate(idx):
        t = torch.tensor(targets[i])
        tgt[j, : len(t)] = t
        prev[j, 0], prev[j, 1: len(t)] = eos, t[:-1]
    return x, mask, prev, tgt


def train_seq2seq(model: AVHubertSeq2Seq, feats: list[list[torch.Tensor]], targets: list[list[int]],
                  dictionary: Dictionary, *, steps: int, batch_size: int = 32, lr: float = 1e-3,
                  smoothing: float = 0.1, seed: int = 0) -> dict:
    """Label-smoothed cross entropy on pre-computed front-end features (front end frozen)."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    frozen = model.encoder.w2v_model.feature_extractor_video.resnet
    for p in frozen.parameters():
        p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    frozen.eval()
    losses, accs = [], []
    bar = tqdm(range(steps), desc="seq2seq")
    for _ in bar:
        idx = rng.choice(len(feats), size=min(batch_size, len(feats)), replace=False)
        x, mask, prev, tgt = _batch(feats, targets, idx, rng, dictionary.pad, dictionary.eos)
        enc = model.encoder(None, mask, video_feats=x)
        logits = model.decoder(prev, model.decoder.encoder_kv(enc), mask)[0]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                               ignore_index=dictionary.pad, label_smoothing=smoothing)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        keep = tgt.ne(dictionary.pad)
        losses.append(loss.item())
        accs.append(((logits.argmax(-1) == tgt) & keep).sum().item() / keep.sum().item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", token_acc=f"{np.mean(accs[-20:]):.3f}")
    model.eval()
    return {"steps": steps, "batch_size": batch_size, "lr": lr, "final_loss": float(np.mean(losses[-50:])),
            "final_token_acc_teacher_forced": float(np.mean(accs[-50:]))}


def evaluate(reader: AVHubertReader, dataset, limit: int | None = None) -> dict:
    """Corpus WER of ground-truth frames and of the static-frame baseline, through the
    ``wer/synthetic-avhubert`` metric with ``reader``."""
    from tqdm import tqdm

    from tfgbench.metrics.wer import WER

    metric = WER("wer/synthetic-avhubert", reader=reader)
    ids = dataset.ids()[:limit] if limit else dataset.ids()
    counts = {"ground-truth": [0, 0], "static-frame": [0, 0]}
    batch = 8
    for i in tqdm(range(0, len(ids), batch), desc=f"scoring {dataset.split}"):
        samples = [dataset.load(s) for s in ids[i:i + batch]]
        for name, frames in (("ground-truth", [s.frames for s in samples]),
                             ("static-frame", [np.repeat(s.frames[:1], s.num_frames, 0) for s in samples])):
            for r in metric.score_batch(samples, frames):
                if isinstance(r, Exception):
                    raise r
                counts[name][0] += int(r["wer"].num)
                counts[name][1] += int(r["wer"].den)
    return {f"{k}_wer": round(e / w, 4) for k, (e, w) in counts.items()} | {
        "clips": len(ids), "split": dataset.split, "version": dataset.version}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_reader_training_arguments(p, SYNTHETIC_AVHUBERT, "seq2seq training steps")
    args = p.parse_args(argv)
    from tfgbench.data.synthetic.grammar import VOCABULARY

    t0 = time.time()
    train, clips, frontend, pre_stats = training_setup(args)
    dictionary = Dictionary.from_pieces(VOCABULARY)
    codec = TextCodec(dictionary, WordTokenizer())
    torch.manual_seed(args.seed)
    cfg = AVHubertConfig.tiny(vocab_size=len(dictionary), dropout=0.1)
    model = AVHubertSeq2Seq(cfg)
    model.encoder.w2v_model.feature_extractor_video.resnet.load_state_dict(frontend.state_dict())
    feats = extract_features(frontend, clips, args.crops, args.seed)
    targets = [codec.encode(t) for t in clips.texts]
    train_stats = train_seq2seq(model, feats, targets, dictionary, steps=args.steps, seed=args.seed)
    model.cfg.dropout = 0.0
    reader = AVHubertReader(model, codec, sha256="training")
    test_stats = evaluate(reader, type(train)(args.root, split="test"), args.eval_limit)
    print(f"test split: ground-truth WER {test_stats['ground-truth_wer']:.3f}, "
          f"static-frame WER {test_stats['static-frame_wer']:.3f}")
    given = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    command = f"python -m tfgbench.readers.train_synthetic_avhubert {given}"
    save_avhubert(args.out, model, dictionary, command=command.strip(), corpus=train.version,
                  pretrain=pre_stats, train=train_stats, test=test_stats,
                  minutes=round((time.time() - t0) / 60, 1), train_clips=len(clips))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB) in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
