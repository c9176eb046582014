"""AV-SyncNet pre-training by masked cluster prediction (SyncTalklip eq. 3, AV-HuBERT's recipe).

Each iteration: cluster frames into ``k`` discrete targets ``z_t``, then train the encoder to predict
them from audio-visual input whose spans were masked::

    L = ( sum_{t in M_a u M_v} CE(p_t, z_t) + alpha * sum_{t valid, not masked} CE(p_t, z_t) ) / |M_a u M_v|

* targets: iteration 1, k-means (``scipy.cluster.vq.kmeans2``, k-means++) of MFCCs of the audio
  (DCT-II of each of the four stacked 26-band log filterbanks, 13 coefficients each -> 52-d);
  iteration ``i > 1``, k-means of the encoder's own layer-``cluster_layer`` output on unmasked
  audio-visual input (features standardised per dimension before clustering).
* masking (AV-HuBERT ``masking_type=input``): audio spans (``mask_prob_audio``, length
  ``mask_length_audio``) replaced by the learned ``mask_emb``; video spans (``mask_prob_video``,
  ``mask_length_video``) replaced by a span copied from elsewhere in the same clip. Spans start at
  ``int(p T / L + u)`` uniform positions (they may overlap, as fairseq's ``compute_mask_indices``).
* modality dropout: per batch, with probability ``modality_dropout`` one modality is zeroed (audio
  with probability ``audio_dropout``, else video), as AV-HuBERT's ``forward_features``.
* prediction: HuBERT's head, ``logits_k = cos(final_proj(x_t), e_k) / logit_temp``.
* the encoder continues from one iteration to the next (HuBERT re-initialises it; at tiny scale
  continuing halves the cost); the head and cluster embeddings are new each iteration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tfgbench.readers.avhubert import AVHubertModel
from tfgbench.readers.transformer import key_mask


def mfcc_from_fbank(fbank: np.ndarray, stack: int = 4, coefficients: int = 13) -> np.ndarray:
    """``(T, 26 * stack)`` stacked log filterbanks -> ``(T, coefficients * stack)`` MFCCs."""
    from scipy.fft import dct

    t = fbank.shape[0]
    bands = fbank.reshape(t, stack, -1)
    return dct(bands, type=2, axis=-1, norm="ortho")[..., :coefficients].reshape(t, -1).astype(np.float32)


def kmeans_targets(frames: list[np.ndarray], k: int, sample: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """k-means of per-clip features ``(T_i, C)``: returns per-clip labels ``(T_i,)`` int64 in
    ``[0, k)`` and the centroids ``(k, C)`` (in standardised units). Clusters are fitted on at most
    ``sample`` frames drawn at random, then every frame gets its nearest centroid."""
    from scipy.cluster.vq import kmeans2, vq

    data = np.concatenate(frames).astype(np.float64)
    mean, std = data.mean(0), data.std(0) + 1e-6
    data = (data - mean) / std
    rng = np.random.default_rng(seed)
    fit = data[rng.choice(len(data), size=min(sample, len(data)), replace=False)]
    k = min(k, len(fit))                 # a tiny smoke-test corpus may have fewer frames than clusters
    centroids, _ = kmeans2(fit, k, iter=20, minit="++", seed=seed)
    labels, _ = vq(data, centroids)
    cut = np.cumsum([len(f) for f in frames])[:-1]
    return [lab.astype(np.int64) for lab in np.split(labels, cut)], centroids


def span_mask(lengths: list[int], prob: float, span: int, rng: np.random.Generator) -> list[list[int]]:
    """Span starts per clip: ``int(prob * T / span + u)`` starts uniform in ``[0, T - span]``."""
    out = []
    for t in lengths:
        n = int(prob * t / span + rng.random())
        out.append(rng.integers(0, max(1, t - span + 1), size=n).tolist() if t > 0 else [])
    return out


def mask_inputs(video: torch.Tensor, audio: torch.Tensor, lengths: list[int], mask_emb: torch.Tensor,
                cfg: Any, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Masked copies of ``video`` (``(B, T, C)`` features or ``(B, 1, T, H, W)`` crops) and
    ``audio`` ``(B, T, F)``, and the union mask ``(B, T)`` (True = masked frame)."""
    b, t = audio.shape[:2]
    masked = torch.zeros(b, t, dtype=torch.bool)
    audio_mask = torch.zeros(b, t, dtype=torch.bool)
    source = torch.arange(t).repeat(b, 1)                 # video frame each position shows
    for i, starts in enumerate(span_mask(lengths, cfg.mask_prob_audio, cfg.mask_length_audio, rng)):
        for s in starts:
            audio_mask[i, s:min(s + cfg.mask_length_audio, lengths[i])] = True
    for i, starts in enumerate(span_mask(lengths, cfg.mask_prob_video, cfg.mask_length_video, rng)):
        for s in starts:
            e = min(s + cfg.mask_length_video, lengths[i])
            src = int(rng.integers(0, max(1, lengths[i] - (e - s) + 1)))
            source[i, s:e] = torch.arange(src, src + e - s)
            masked[i, s:e] = True
    masked |= audio_mask
    audio = torch.where(audio_mask[..., None], mask_emb.to(audio.dtype), audio)
    rows = torch.arange(b)[:, None]
    if video.ndim == 3:
        video = video[rows, source]
    else:
        video = video.transpose(1, 2)[rows, source].transpose(1, 2)
    return video, audio, masked


def masked_prediction_loss(logits: torch.Tensor, targets: torch.Tensor, masked: torch.Tensor,
                           valid: torch.Tensor, alpha: float) -> tuple[torch.Tensor, float]:
    """eq. 3 normalised by the number of masked frames; returns the loss and the masked-frame
    accuracy. ``logits (B, T, K)``, ``targets (B, T)``, ``masked``/``valid`` ``(B, T)`` bool."""
    ce = F.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0), reduction="none")   # (B, T)
    m = masked & valid
    u = ~masked & valid
    loss = (ce[m].sum() + alpha * ce[u].sum()) / m.sum().clamp(min=1)
    acc = (logits.argmax(-1)[m] == targets[m]).float().mean().item() if m.any() else 0.0
    return loss, acc


class ClusterHead(nn.Module):
    """HuBERT's prediction head: cosine similarity of ``final_proj(x)`` with cluster embeddings."""

    def __init__(self, dim: int, final_dim: int, k: int, logit_temp: float) -> None:
        super().__init__()
        self.final_proj = nn.Linear(dim, final_dim)
        self.label_embs = nn.Parameter(torch.randn(k, final_dim) * final_dim ** -0.5)
        self.logit_temp = logit_temp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(self.final_proj(x)[..., None, :], self.label_embs, dim=-1) / self.logit_temp


def layer_features(w2v: AVHubertModel, video: torch.Tensor | None, video_feats: torch.Tensor | None,
                   audio: torch.Tensor, padding_mask: torch.Tensor, layer: int) -> torch.Tensor:
    """Output of encoder layer ``layer`` (1-based, before the final LayerNorm) on audio-visual input."""
    fv = (w2v.feature_extractor_video.proj(video_feats) if video_feats is not None
          else w2v.feature_extractor_video(video))
    fa = w2v.feature_extractor_audio(audio.transpose(1, 2))
    x = torch.cat([fa, fv], -1) if w2v.fuse == "concat" else fa + fv
    x = w2v.layer_norm(x)
    if w2v.post_extract_proj is not None:
        x = w2v.post_extract_proj(x)
    enc = w2v.encoder
    x = x.masked_fill(padding_mask[..., None], 0.0)
    x = x + F.gelu(enc.pos_conv(x.transpose(1, 2))).transpose(1, 2)
    for lay in enc.layers[:layer]:
        x = lay(x, key_mask(padding_mask))
    return x


BatchFn = Callable[[np.ndarray, np.random.Generator, bool],
                   tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int], bool]]


@torch.no_grad()
def model_targets(w2v: AVHubertModel, batch: BatchFn, n: int, cfg: Any, k: int, seed: int) -> list[np.ndarray]:
    """k-means labels of the encoder's layer-``cfg.cluster_layer`` features, clip by clip."""
    w2v.eval()
    feats: list[np.ndarray] = []
    for i in range(0, n, 32):
        idx = np.arange(i, min(i + 32, n))
        video, fbank, pad, lengths, is_feats = batch(idx, np.random.default_rng(0), False)
        x = layer_features(w2v, None if is_feats else video, video if is_feats else None, fbank, pad,
                           cfg.cluster_layer)
        feats.extend(x[j, :lengths[j]].numpy() for j in range(len(idx)))
    w2v.train()
    return kmeans_targets(feats, k, cfg.kmeans_frames, seed)[0]


def pretrain_encoder(w2v: AVHubertModel, batch: BatchFn, fbanks: list[np.ndarray], cfg: Any, *, seed: int,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``w2v`` in place for ``cfg.pretrain_iterations`` iterations of ``cfg.pretrain_steps``.

    ``batch(idx, rng, random_crop) -> (video, fbank (B,T,104), padding (B,T), lengths, is_feats)``
    serves clip ``idx`` of the training set (``video``: cached front-end features ``(B, T, C)``
    when ``is_feats``, else crops ``(B, 1, T, 44, 44)``); ``fbanks[i]`` is clip ``i``'s ``(T, 104)``.
    Returns per-iteration statistics.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dim = w2v.encoder.layer_norm.normalized_shape[0]
    frontend = w2v.feature_extractor_video.resnet
    stats: dict[str, Any] = {"iterations": []}
    t0 = time.time()
    for it in range(cfg.pretrain_iterations):
        k = cfg.clusters[min(it, len(cfg.clusters) - 1)]
        if it == 0:
            targets = kmeans_targets([mfcc_from_fbank(f) for f in fbanks], k, cfg.kmeans_frames, seed)[0]
        else:
            targets = model_targets(w2v, batch, len(fbanks), cfg, k, seed + it)
        head = ClusterHead(dim, cfg.final_dim, k, cfg.logit_temp)
        params = [p for p in w2v.parameters() if p.requires_grad] + list(head.parameters())
        opt = torch.optim.AdamW(params, lr=cfg.pretrain_lr, weight_decay=0.01, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.pretrain_lr, total_steps=cfg.pretrain_steps,
                                                    pct_start=0.08)
        w2v.train()
        if cfg.freeze_frontend and frontend is not None:
            frontend.eval()
        hist: list[tuple[float, float]] = []
        for step in range(cfg.pretrain_steps):
            idx = rng.choice(len(fbanks), size=min(cfg.pretrain_batch, len(fbanks)), replace=False)
            video, fbank, pad, lengths, is_feats = batch(idx, rng, True)
            video, fbank, masked = mask_inputs(video, fbank, lengths, w2v.mask_emb, cfg, rng)
            drop = rng.random() < cfg.modality_dropout
            drop_audio = drop and rng.random() < cfg.audio_dropout
            drop_video = drop and not drop_audio
            v = None if drop_video else video
            x = w2v(None if is_feats else v, None if drop_audio else fbank.transpose(1, 2), pad,
                    video_feats=v if is_feats else None)
            tgt = torch.zeros(pad.shape, dtype=torch.long)
            for j, i in enumerate(idx):
                tgt[j, :lengths[j]] = torch.from_numpy(targets[i][:lengths[j]])
            loss, acc = masked_prediction_loss(head(x), tgt, masked, ~pad, cfg.alpha)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            sched.step()
            hist.append((loss.item(), acc))
            if step % 50 == 0 or step == cfg.pretrain_steps - 1:
                recent = hist[-50:]
                log(f"pretrain iteration {it + 1}/{cfg.pretrain_iterations} (k={k}) step {step + 1}/"
                    f"{cfg.pretrain_steps}  loss {np.mean([h[0] for h in recent]):.3f}  masked acc "
                    f"{np.mean([h[1] for h in recent]):.3f}  ({time.time() - t0:.0f} s)")
        stats["iterations"].append({"k": k, "first_loss": hist[0][0],
                                    "final_loss": float(np.mean([h[0] for h in hist[-50:]])),
                                    "final_masked_acc": float(np.mean([h[1] for h in hist[-50:]]))})
    w2v.eval()
    stats["seconds"] = round(time.time() - t0, 1)
    return stats


ENCODER_PREFIX = "encoder.w2v_model."


def save_pretrained(path: Any, w2v: AVHubertModel, avhubert_cfg: Any, **metadata: Any) -> Any:
    """The pre-trained encoder as safetensors under the seq2seq's key names
    (``encoder.w2v_model.*``, no decoder); config = the AV-HuBERT config."""
    from tfgbench.checkpoints import save_checkpoint

    state = {ENCODER_PREFIX + k: v for k, v in w2v.state_dict().items()}
    return save_checkpoint(path, state, avhubert_cfg.to_dict(), **metadata)


def load_pretrained_encoder(path: Any) -> tuple[AVHubertModel, Any, dict[str, Any]]:
    """``(AVHubertModel, AVHubertConfig, metadata)`` from :func:`save_pretrained`'s file (e.g.
    ``synctalklip/weights/avhubert-pretrained-tiny.safetensors``)."""
    from tfgbench.checkpoints import load_checkpoint
    from tfgbench.readers.avhubert import AVHubertConfig
    from tfgbench.readers.avhubert_reader import load_state_strict

    state, config, meta = load_checkpoint(path)
    cfg = AVHubertConfig.from_dict(config)
    w2v = AVHubertModel(cfg)
    load_state_strict(w2v, {k[len(ENCODER_PREFIX):]: v for k, v in state.items()}, str(path))
    return w2v.eval(), cfg, meta
