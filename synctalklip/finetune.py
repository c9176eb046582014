"""AV-SyncNet fine-tuning (eq. 4-6) and the data plumbing it shares with pre-training.

``finetune`` minimises ``lambda_lip * L_lip(f^v) + lambda_av * L_av(f^a, f^v)`` with AdamW and a
one-cycle schedule through :func:`tfgbench.training.fit` (resumable run folder, ``log.jsonl``);
``plain`` skips the audio pass (``lambda_av = 0``). Validation: :func:`sync_and_accuracy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from synctalklip.avsyncnet import AVSyncNet, targets_to_tensors
from synctalklip.config import AVSyncNetConfig

SHIFT, MAX_OFFSET = 5, 7


class ClipBatches:
    """Batches of cached front-end features (frozen front end) or crops, fbank and padding."""

    def __init__(self, clips: Any, feats: list[list[torch.Tensor]] | None) -> None:
        self.clips, self.feats = clips, feats

    def __call__(self, idx: np.ndarray, rng: np.random.Generator, random_crop: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int], bool]:
        from tfgbench.readers.pretrain import crop_batch

        lengths = [len(self.clips.fbank[i]) for i in idx]
        t = max(lengths)
        fbank = torch.zeros(len(idx), t, self.clips.fbank[idx[0]].shape[1])
        pad = torch.ones(len(idx), t, dtype=torch.bool)
        for j, i in enumerate(idx):
            fbank[j, :lengths[j]] = torch.from_numpy(self.clips.fbank[i])
            pad[j, :lengths[j]] = False
        if self.feats is None:
            return crop_batch([self.clips.rois[i] for i in idx], rng, random_crop), fbank, pad, lengths, False
        video = torch.zeros(len(idx), t, self.feats[idx[0]][0].shape[1])
        for j, i in enumerate(idx):
            choices = self.feats[i]
            video[j, :lengths[j]] = choices[int(rng.integers(len(choices)))] if random_crop else choices[0]
        return video, fbank, pad, lengths, True


def encode_pair(net: AVSyncNet, video: torch.Tensor, fbank: torch.Tensor, pad: torch.Tensor, is_feats: bool,
                audio: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    fv = net.encode_video_feats(video, pad) if is_feats else net.encode_video(video, pad)
    return fv, (net.encode_audio(fbank, pad) if audio else None)


@torch.no_grad()
def sync_and_accuracy(net: AVSyncNet, batches: ClipBatches, targets: list[list[int]], n: int) -> dict[str, float]:
    """Teacher-forced token accuracy and lip loss; theta of aligned pairs, of pairs shifted by
    +-SHIFT frames, and the fraction of clips whose best offset in [-MAX_OFFSET, MAX_OFFSET] is 0."""
    was_training = net.training
    net.eval()
    dic = net.codec.dictionary
    correct = total = 0
    lip_sum = 0.0
    aligned, shifted, hits = [], [], 0
    for s in range(0, n, 32):
        idx = np.arange(s, min(s + 32, n))
        video, fbank, pad, lengths, is_feats = batches(idx, np.random.default_rng(0), False)
        fv, fa = encode_pair(net, video, fbank, pad, is_feats)
        tg = [targets[i] for i in idx]
        loss, ntok = net.lip_loss(fv, pad, tg)
        prev, tgt = targets_to_tensors(tg, dic.pad, dic.eos)
        logits = net.seq2seq.decoder(prev, net.seq2seq.decoder.encoder_kv(fv), pad)[0]
        keep = tgt.ne(dic.pad)
        correct += int(((logits.argmax(-1) == tgt) & keep).sum())
        total += ntok
        lip_sum += loss.item() * ntok
        ga, gv = net.align(fa, pad), net.align(fv, pad)
        for j, t in enumerate(lengths):
            a, v = ga[j, :t], gv[j, :t]
            by_offset = {o: net.theta(a[max(0, -o):t - max(0, o)], v[max(0, o):t - max(0, -o)]).mean().item()
                         for o in range(-MAX_OFFSET, MAX_OFFSET + 1)}
            aligned.append(by_offset[0])
            shifted.append((by_offset[SHIFT] + by_offset[-SHIFT]) / 2)
            hits += min(by_offset, key=by_offset.get) == 0
    if was_training:
        net.train()
    return {"token_acc": correct / max(total, 1), "lip_loss": lip_sum / max(total, 1),
            "theta_aligned": float(np.mean(aligned)), f"theta_shift{SHIFT}": float(np.mean(shifted)),
            "offset0_frac": hits / max(n, 1)}


def prepare_video(net: AVSyncNet, cfg: AVSyncNetConfig, clips: Any, val_clips: Any, args: Any, version: str,
                  only_val: bool = False) -> tuple[ClipBatches, ClipBatches, dict[str, Any]]:
    """The video side of the batches. Without ``--init`` the front end is first pre-trained by AV
    sync (own seed, own cache folder ``$TFGBENCH_HOME/cache/synctalklip``); with
    ``cfg.freeze_frontend`` it is frozen and its features are cached (train: ``cfg.crops`` crops;
    val/test: centre only, not cached). ``only_val``: use the front end already in ``net``."""
    from tfgbench.paths import home
    from tfgbench.readers.pretrain import load_or_pretrain_frontend
    from tfgbench.readers.train_synthetic_avhubert import extract_features, frontend_digest

    resnet = net.w2v.feature_extractor_video.resnet
    info: dict[str, Any] = {}
    if not only_val and not args.init:
        frontend, info = load_or_pretrain_frontend(clips, widths=tuple(net.seq2seq.cfg.resnet_widths),
                                                   steps=cfg.frontend_pretrain_steps, seed=args.seed, corpus=version,
                                                   cache_dir=home() / "cache" / "synctalklip")
        resnet.load_state_dict(frontend.state_dict())
        info = dict(info)
    info["digest"] = frontend_digest(resnet)
    if not cfg.freeze_frontend:
        return ClipBatches(clips, None), ClipBatches(val_clips, None), info
    for p in resnet.parameters():
        p.requires_grad_(False)
    resnet.eval()
    val_feats = extract_features(resnet, val_clips, 1, args.seed, cache=False)
    if only_val:
        return ClipBatches(val_clips, val_feats), ClipBatches(val_clips, val_feats), info
    feats = extract_features(resnet, clips, cfg.crops, args.seed, cache=args.limit is None)
    return ClipBatches(clips, feats), ClipBatches(val_clips, val_feats), info


def init_from_fairseq(path: str, spm: str | None, codec: Any, cfg: AVSyncNetConfig) -> tuple[Any, dict[str, Any]]:
    """A seq2seq whose encoder is the fairseq AV-HuBERT checkpoint's (any size; the loader needs no
    fairseq) and whose decoder is new, sized for ``codec``'s word vocabulary."""
    from dataclasses import replace

    from tfgbench.readers.avhubert import AVHubertSeq2Seq
    from tfgbench.readers.avhubert_reader import load_fairseq_avhubert

    model, _, ckpt_cfg = load_fairseq_avhubert(path, spm)
    new_cfg = replace(ckpt_cfg, vocab_size=len(codec.dictionary), pad_index=codec.dictionary.pad, dropout=cfg.dropout)
    seq2seq = AVHubertSeq2Seq(new_cfg)
    seq2seq.encoder.load_state_dict(model.encoder.state_dict())
    return seq2seq, {"file": str(path), "encoder_layers": ckpt_cfg.encoder_layers,
                     "encoder_embed_dim": ckpt_cfg.encoder_embed_dim}


def finetune(net: AVSyncNet, cfg: AVSyncNetConfig, clips: Any, val_clips: Any, batches: ClipBatches,
             val_batches: ClipBatches, *, run_dir: Path, seed: int, val_every: int,
             run_config: dict[str, Any], progress: bool = True) -> Any:
    """Multi-task fine-tuning for ``cfg.finetune_steps`` steps of ``cfg.finetune_batch`` clips."""
    from tfgbench.training import fit

    targets = [net.codec.encode(t) for t in clips.texts]
    val_targets = [net.codec.encode(t) for t in val_clips.texts]
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.finetune_lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.finetune_lr, total_steps=cfg.finetune_steps,
                                                pct_start=0.1)
    frontend = net.w2v.feature_extractor_video.resnet

    def step(i: int, rng: np.random.Generator) -> dict[str, float]:
        if cfg.freeze_frontend:
            frontend.eval()
        idx = rng.choice(len(clips), size=min(cfg.finetune_batch, len(clips)), replace=False)
        video, fbank, pad, _, is_feats = batches(idx, rng, True)
        fv, fa = encode_pair(net, video, fbank, pad, is_feats, audio=cfg.lambda_av > 0)
        lip, _ = net.lip_loss(fv, pad, [targets[j] for j in idx])
        loss = cfg.lambda_lip * lip
        out = {"lip": lip.item()}
        if fa is not None:
            av = net.av_loss(fa, fv, pad)
            loss = loss + cfg.lambda_av * av
            out["av"] = av.item()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        return {"loss": loss.item(), **out}

    return fit(run_dir, modules={"net": net}, optimizers={"net": opt}, schedulers={"net": sched}, step_fn=step,
               steps=cfg.finetune_steps, seed=seed, config=run_config,
               validate=lambda s: sync_and_accuracy(net, val_batches, val_targets, len(val_clips)),
               val_every=val_every, ckpt_every=250, log_every=10, desc=f"avsyncnet-{cfg.variant}", progress=progress)
