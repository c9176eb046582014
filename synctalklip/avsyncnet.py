"""AV-SyncNet (SyncTalklip section 3.2): an AV-HuBERT seq2seq lip reader whose encoder also aligns
its audio-only and video-only embeddings.

Shapes: video ``(B, 1, T, 44, 44)`` normalised mouth crops (the ``wer/synthetic-*`` convention,
``(x/255 - 0.421) / 0.165``); fbank ``(B, T, 104)`` stacked log filterbanks
(:func:`tfgbench.readers.pretrain.prepare_sample`); padding mask ``(B, T)`` True at padding.

Losses (eq. 4-6), with the choices documented in :mod:`synctalklip.config`::

    f^v = enc(video only)   f^a = enc(audio only)          (B, T, D), same encoder
    theta(a, v) = tau * sum_d |F(a)_d - v_d|                F = Linear(D, D) (identity init)
    L_av  = mean over valid frames of theta(g(f^a), g(f^v))  g = identity | convex temporal conv
    L_lip = label-smoothed CE of the teacher-forced decoder on f^v (mean over target tokens)
    L     = lambda_av L_av + lambda_lip L_lip

Saved as ONE safetensors file: the :class:`AVHubertSeq2Seq` state dict under fairseq key names plus
the alignment head under :data:`AVSYNC_PREFIX` (``avsync.F.weight``, ``avsync.F.bias``,
``avsync.conv_logits``), so ``tfgbench wer --reader FILE`` reads it as a plain AV-HuBERT reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.talklip.losses import label_smoothed_nll
from synctalklip.config import AVSyncNetConfig
from tfgbench.readers.avhubert import AVHubertSeq2Seq
from tfgbench.readers.avhubert_reader import AVSYNC_PREFIX
from tfgbench.readers.tokenizer import Dictionary, TextCodec

__all__ = ["AVSYNC_PREFIX", "AVSyncNet", "AlignHead", "load_avsyncnet", "save_avsyncnet"]


class AlignHead(nn.Module):
    """``F`` (Linear(D, D) on the audio side) and, for ``conv``, the temporal convolution ``g``."""

    def __init__(self, dim: int, tau: float, conv_kernel: int | None) -> None:
        super().__init__()
        self.tau = tau
        self.F = nn.Linear(dim, dim)
        with torch.no_grad():
            self.F.weight.copy_(torch.eye(dim))
            self.F.bias.zero_()
        # per-channel tap logits; softmax over taps -> convex weights (zeros: uniform average)
        self.conv_logits = nn.Parameter(torch.zeros(dim, conv_kernel)) if conv_kernel else None

    def align(self, f: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, D)`` -> ``(B, T, D)``: identity, or the depthwise temporal average over
        ``conv_kernel`` frames (padding frames count as zeros)."""
        if self.conv_logits is None:
            return f
        if padding_mask is not None:
            f = f.masked_fill(padding_mask[..., None], 0.0)
        k = self.conv_logits.shape[1]
        w = self.conv_logits.softmax(-1).unsqueeze(1)                   # (D, 1, k)
        return F.conv1d(f.transpose(1, 2), w, padding=k // 2, groups=f.shape[-1]).transpose(1, 2)

    def theta(self, fa: torch.Tensor, fv: torch.Tensor) -> torch.Tensor:
        """eq. 5/11: ``tau * ||F(fa) - fv||_1`` over the last dim; ``(..., D) x (..., D) -> (...)``."""
        return (self.F(fa) - fv).abs().sum(-1) * self.tau


def targets_to_tensors(targets: list[list[int]], pad: int, eos: int,
                       device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``prev_output_tokens`` (``</s>`` + target[:-1]) and ``target`` ``(B, L)``, pad-filled.
    Each target list ends with ``</s>`` (:meth:`TextCodec.encode` appends it)."""
    length = max(len(t) for t in targets)
    tgt = torch.full((len(targets), length), pad, dtype=torch.long)
    prev = torch.full((len(targets), length), pad, dtype=torch.long)
    for j, t in enumerate(targets):
        tt = torch.tensor(t, dtype=torch.long)
        tgt[j, : len(t)] = tt
        prev[j, 0] = eos
        prev[j, 1: len(t)] = tt[:-1]
    return prev.to(device), tgt.to(device)


class AVSyncNet(nn.Module):
    """The seq2seq reader (``self.seq2seq``, fairseq key names) + alignment head (``self.avsync``)."""

    def __init__(self, cfg: AVSyncNetConfig, codec: TextCodec, seq2seq: AVHubertSeq2Seq | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.codec = codec
        self.variant = cfg.variant
        self.seq2seq = seq2seq if seq2seq is not None else AVHubertSeq2Seq(cfg.avhubert_config(len(codec.dictionary)))
        dim = self.seq2seq.cfg.encoder_embed_dim
        self.avsync = AlignHead(dim, cfg.resolved_tau(dim), cfg.conv_kernel if cfg.variant == "conv" else None)

    # ---------------------------------------------------------------- encoders
    @property
    def w2v(self) -> nn.Module:
        return self.seq2seq.encoder.w2v_model

    def encode_video(self, video: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Video-only encoding: ``(B, 1, T, 44, 44)`` -> ``(B, T, D)`` (audio features are zeros)."""
        return self.w2v(video, None, padding_mask)

    def encode_video_feats(self, feats: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`encode_video` from the ResNet front end's output ``(B, T, C)``."""
        return self.w2v(None, None, padding_mask, video_feats=feats)

    def encode_audio(self, fbank: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Audio-only encoding: ``(B, T, 104)`` -> ``(B, T, D)`` (video features are zeros)."""
        return self.w2v(None, fbank.transpose(1, 2), padding_mask)

    # ---------------------------------------------------------------- losses
    def lip_loss(self, fv: torch.Tensor, padding_mask: torch.Tensor | None,
                 targets: list[list[int]]) -> tuple[torch.Tensor, int]:
        """eq. 4: teacher-forced label-smoothed CE of the decoder on ``fv``.

        Returns ``(loss, ntok)``: ``loss`` is the **mean** over the ``ntok`` target tokens
        (``</s>`` included, pads excluded) of fairseq's label-smoothed NLL (eps
        ``cfg.label_smoothing``); fairseq's summed criterion value is ``loss * ntok``."""
        dic = self.codec.dictionary
        prev, tgt = targets_to_tensors(targets, dic.pad, dic.eos, fv.device)
        dec = self.seq2seq.decoder
        logits = dec(prev, dec.encoder_kv(fv), padding_mask)[0]
        ntok = int(tgt.ne(dic.pad).sum())
        return label_smoothed_nll(logits, tgt, self.cfg.label_smoothing, dic.pad)[0] / max(ntok, 1), ntok

    def align(self, f: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``g``: identity (``base``/``plain``) or the temporal convolution (``conv``)."""
        return self.avsync.align(f, padding_mask)

    def theta(self, fa: torch.Tensor, fv: torch.Tensor) -> torch.Tensor:
        """eq. 5/11 distance ``F(||fa - fv||_1 * tau)`` over the last dim (see :class:`AlignHead`)."""
        return self.avsync.theta(fa, fv)

    def av_loss(self, fa: torch.Tensor, fv: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """eq. 5 ``L_av``: ``theta(g(fa), g(fv))`` averaged over the valid frames."""
        d = self.theta(self.align(fa, padding_mask), self.align(fv, padding_mask))
        if padding_mask is None:
            return d.mean()
        valid = ~padding_mask
        return d[valid].sum() / valid.sum().clamp(min=1)


# ---------------------------------------------------------------------- files

def save_avsyncnet(path: str | Path, net: AVSyncNet, **metadata: Any) -> Path:
    """One safetensors file: ``seq2seq`` keys as :func:`save_avhubert` writes them + ``avsync.*``;
    metadata: the AV-HuBERT config (``config``), ``avsyncnet`` (our config), ``variant``,
    ``symbols``, ``tokenizer`` ("word") and whatever is passed (command, minutes, figures)."""
    from tfgbench.checkpoints import save_checkpoint
    from tfgbench.readers.tokenizer import WordTokenizer

    if not isinstance(net.codec.tokenizer, WordTokenizer):
        raise ValueError("only word-vocabulary AV-SyncNets are saved as tfgbench readers "
                         "(a SentencePiece codec stays with its fairseq checkpoint)")
    state = dict(net.seq2seq.state_dict())
    state.update({AVSYNC_PREFIX + k: v for k, v in net.avsync.state_dict().items()})
    return save_checkpoint(path, state, net.seq2seq.cfg.to_dict(), symbols=net.codec.dictionary.symbols,
                           tokenizer="word", avsyncnet=net.cfg.to_dict(), variant=net.variant, **metadata)


def load_avsyncnet(path: str | Path, device: str = "cpu") -> AVSyncNet:
    """An :class:`AVSyncNet` in eval mode from :func:`save_avsyncnet`'s file."""
    from tfgbench.checkpoints import load_checkpoint
    from tfgbench.errors import TfgbenchError
    from tfgbench.readers.avhubert_reader import load_safetensors_avhubert, load_state_strict

    seq2seq, codec, _ = load_safetensors_avhubert(path)
    state, _, meta = load_checkpoint(path)
    if "avsyncnet" not in meta:
        raise TfgbenchError(f"{path}: an AV-HuBERT reader but not an AV-SyncNet (no 'avsyncnet' metadata)")
    cfg = AVSyncNetConfig.from_dict(meta["avsyncnet"])
    net = AVSyncNet(cfg, codec, seq2seq)
    head = {k[len(AVSYNC_PREFIX):]: v for k, v in state.items() if k.startswith(AVSYNC_PREFIX)}
    load_state_strict(net.avsync, head, f"{path} ({AVSYNC_PREFIX}* keys)")
    net.meta = meta
    return net.to(device).eval()


def word_codec(words: list[str]) -> TextCodec:
    """fairseq specials + whole-word vocabulary (the synthetic readers' tokenizer)."""
    from tfgbench.readers.tokenizer import WordTokenizer

    return TextCodec(Dictionary.from_pieces(words), WordTokenizer())
