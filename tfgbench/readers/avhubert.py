"""AV-HuBERT seq2seq lip reader as a native PyTorch module (no fairseq).

Layout and parameter names follow fairseq's ``av_hubert_seq2seq`` model exactly, so a released
checkpoint's ``model`` state dict loads with ``load_state_dict`` (see
:mod:`tfgbench.readers.avhubert_reader`)::

    encoder.w2v_model.feature_extractor_video.resnet.{frontend3D,trunk}.*   ResNet-18 3D front end
    encoder.w2v_model.feature_extractor_video.proj                          Linear(512 -> D)
    encoder.w2v_model.feature_extractor_audio.proj                          Linear(104 -> D)
    encoder.w2v_model.layer_norm                                            LayerNorm(2D)  (concat)
    encoder.w2v_model.post_extract_proj                                     Linear(2D -> D)
    encoder.w2v_model.mask_emb                                              [104] (pre-training only)
    encoder.w2v_model.encoder.pos_conv.0.{weight_g,weight_v,bias}           conv pos. embedding
    encoder.w2v_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj, self_attn_layer_norm,
                                          fc1, fc2, final_layer_norm}       pre-LN transformer
    encoder.w2v_model.encoder.layer_norm
    decoder.embed_tokens, decoder.embed_positions._float_tensor, decoder.layer_norm
    decoder.layers.N.{self_attn, self_attn_layer_norm, encoder_attn, encoder_attn_layer_norm,
                      fc1, fc2, final_layer_norm}

Shapes: video ``(B, 1, T, H, W)`` (gray, normalised) -> front end ``(B, T, 512)``; audio
``(B, 104, T)``; the missing modality is zeros (video-only lip reading). Encoder output
``(B, T, D)``. Decoder: sinusoidal positions from ``pad + 1``, embeddings unscaled
(``no_scale_embedding``), output projection tied to ``embed_tokens`` (logits = x @ E^T).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from tfgbench.readers.transformer import (
    DecoderLayer,
    EncoderLayer,
    MultiheadAttention,
    SinusoidalPositions,
    WeightNormConv1d,
    key_mask,
)

__all__ = ["AVHubertConfig", "AVHubertModel", "AVHubertSeq2Seq", "DecoderLayer", "EncoderLayer", "MultiheadAttention",
           "ResEncoder", "SinusoidalPositions", "TransformerDecoder", "TransformerEncoder", "WeightNormConv1d"]


@dataclass
class AVHubertConfig:
    """Sizes of the seq2seq model. ``base()`` / ``large()`` are the released sizes, ``tiny()``
    trains on 2 CPU cores. Field names follow fairseq's config keys."""

    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    layer_norm_first: bool = True
    conv_pos: int = 128
    conv_pos_groups: int = 16
    audio_feat_dim: int = 104
    modality_fuse: str = "concat"
    masking_type: str = "input"
    resnet_relu_type: str = "prelu"
    resnet_widths: tuple[int, ...] = (64, 128, 256, 512)
    decoder_layers: int = 6
    decoder_embed_dim: int = 768
    decoder_ffn_embed_dim: int = 3072
    decoder_attention_heads: int = 4
    decoder_normalize_before: bool = True
    decoder_learned_pos: bool = False
    share_decoder_input_output_embed: bool = True
    no_scale_embedding: bool = True
    max_target_positions: int = 2048
    vocab_size: int = 1000
    pad_index: int = 1
    dropout: float = 0.0          # encoder/decoder dropout while training (fairseq fine-tuning uses 0.1)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def base(cls, **kw: Any) -> AVHubertConfig:
        """Base: 12 x 768 encoder (12 heads), 6 x 768 decoder (4 heads), 1000 targets."""
        return cls(**kw)

    @classmethod
    def large(cls, **kw: Any) -> AVHubertConfig:
        """Large: 24 x 1024 encoder (16 heads), 9 x 1024 decoder (8 heads)."""
        d = dict(encoder_layers=24, encoder_embed_dim=1024, encoder_ffn_embed_dim=4096,
                 encoder_attention_heads=16, decoder_layers=9, decoder_embed_dim=1024,
                 decoder_ffn_embed_dim=4096, decoder_attention_heads=8)
        d.update(kw)
        return cls(**d)

    @classmethod
    def tiny(cls, **kw: Any) -> AVHubertConfig:
        """Tiny: quarter-width ResNet-18, 3 x 128 encoder, 2 x 128 decoder (CPU training)."""
        d = dict(encoder_layers=3, encoder_embed_dim=128, encoder_ffn_embed_dim=512,
                 encoder_attention_heads=4, conv_pos=16, conv_pos_groups=4,
                 resnet_widths=(16, 32, 64, 128), decoder_layers=2, decoder_embed_dim=128,
                 decoder_ffn_embed_dim=512, decoder_attention_heads=4, vocab_size=64)
        d.update(kw)
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["resnet_widths"] = list(self.resnet_widths)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AVHubertConfig:
        d = dict(d)
        if "resnet_widths" in d:
            d["resnet_widths"] = tuple(d["resnet_widths"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# ------------------------------------------------------------------------------ video front end

class BasicBlock(nn.Module):
    """ResNet basic block with PReLU (``relu1``/``relu2``) as in AV-HuBERT's ``resnet.py``."""

    def __init__(self, cin: int, cout: int, stride: int = 1, relu_type: str = "prelu") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.PReLU(cout) if relu_type == "prelu" else nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.PReLU(cout) if relu_type == "prelu" else nn.ReLU()
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + (self.downsample(x) if self.downsample is not None else x))


class ResNetTrunk(nn.Module):
    """ResNet-18 trunk (2 blocks per stage) ending in global average pooling."""

    def __init__(self, widths: tuple[int, ...], relu_type: str = "prelu") -> None:
        super().__init__()
        cin = widths[0]
        for i, w in enumerate(widths):
            blocks = [BasicBlock(cin, w, 1 if i == 0 else 2, relu_type), BasicBlock(w, w, 1, relu_type)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = w
        self.num_layers = len(widths)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return x.mean(dim=(2, 3))


class ResEncoder(nn.Module):
    """3D-conv stem + ResNet-18 trunk: ``(B, 1, T, H, W)`` -> ``(B, T, widths[-1])``.

    Stem: Conv3d(1, w0, (5, 7, 7), stride (1, 2, 2), pad (2, 3, 3)) -> BN3d -> PReLU ->
    MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)); then each frame through the 2D trunk.
    The 5-frame temporal kernel is the only temporal context (frame rate preserved).
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), relu_type: str = "prelu") -> None:
        super().__init__()
        w0 = widths[0]
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, w0, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False), nn.BatchNorm3d(w0),
            nn.PReLU(w0) if relu_type == "prelu" else nn.ReLU(),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        self.trunk = ResNetTrunk(tuple(widths), relu_type)
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = self.frontend3D(x)                                 # (B, C, T, h, w)
        _, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, c, h, w)          # every frame through the 2D trunk
        return self.trunk(x).view(b, t, -1)


class SubModel(nn.Module):
    """A modality's feature extractor: optional ResNet then ``proj`` to the encoder width."""

    def __init__(self, resnet: nn.Module | None, input_dim: int, dim: int) -> None:
        super().__init__()
        self.resnet = resnet
        self.proj = nn.Linear(input_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """video ``(B, 1, T, H, W)`` or audio ``(B, F, T)`` -> ``(B, T, D)``."""
        x = self.resnet(x) if self.resnet is not None else x.transpose(1, 2)
        return self.proj(x)


class TransformerEncoder(nn.Module):
    """wav2vec2 ``TransformerEncoder``: x + GELU(pos_conv(x)), layers, final LayerNorm (pre-LN)."""

    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        d = cfg.encoder_embed_dim
        self.pos_conv = nn.Sequential(WeightNormConv1d(d, cfg.conv_pos, cfg.conv_pos_groups))
        self.layers = nn.ModuleList(EncoderLayer(d, cfg.encoder_ffn_embed_dim, cfg.encoder_attention_heads,
                                                 cfg.layer_norm_first, cfg.dropout)
                                    for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(d)
        self.layer_norm_first = cfg.layer_norm_first

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
        x = x + F.gelu(self.pos_conv(x.transpose(1, 2))).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        mask = key_mask(padding_mask)
        for layer in self.layers:
            x = layer(x, mask)
        return self.layer_norm(x) if self.layer_norm_first else x


class AVHubertModel(nn.Module):
    """The AV-HuBERT encoder (fairseq ``AVHubertModel``, fine-tuning path ``extract_finetune``)."""

    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        d = cfg.encoder_embed_dim
        resnet = ResEncoder(cfg.resnet_widths, cfg.resnet_relu_type)
        self.feature_extractor_audio = SubModel(None, cfg.audio_feat_dim, d)
        self.feature_extractor_video = SubModel(resnet, resnet.out_dim, d)
        self.fuse = cfg.modality_fuse
        embed = 2 * d if cfg.modality_fuse == "concat" else d
        self.post_extract_proj = nn.Linear(embed, d) if embed != d else None
        self.mask_emb = nn.Parameter(torch.rand(cfg.audio_feat_dim if cfg.masking_type == "input" else d))
        self.encoder = TransformerEncoder(cfg)
        self.layer_norm = nn.LayerNorm(embed)

    def forward(self, video: torch.Tensor | None, audio: torch.Tensor | None = None,
                padding_mask: torch.Tensor | None = None, video_feats: torch.Tensor | None = None) -> torch.Tensor:
        """``video (B, 1, T, H, W)`` and/or ``audio (B, F, T)`` -> ``(B, T, D)``.
        ``video_feats (B, T, C)``: the ResNet's output, given instead of ``video`` (training a
        reader on a frozen, pre-computed front end)."""
        if video_feats is not None:
            fv = self.feature_extractor_video.proj(video_feats)
        else:
            fv = self.feature_extractor_video(video) if video is not None else None
        fa = self.feature_extractor_audio(audio) if audio is not None else None
        fv = fv if fv is not None else torch.zeros_like(fa)
        fa = fa if fa is not None else torch.zeros_like(fv)
        x = torch.cat([fa, fv], dim=-1) if self.fuse == "concat" else fa + fv
        x = self.layer_norm(x)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x, padding_mask)


class EncoderWrapper(nn.Module):
    """``HubertEncoderWrapper``: holds ``w2v_model`` (gives the ``encoder.w2v_model.`` prefix)."""

    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        self.w2v_model = AVHubertModel(cfg)

    def forward(self, video: torch.Tensor | None, padding_mask: torch.Tensor | None = None,
                audio: torch.Tensor | None = None, video_feats: torch.Tensor | None = None) -> torch.Tensor:
        return self.w2v_model(video, audio, padding_mask, video_feats)


# ------------------------------------------------------------------------------ decoder

class TransformerDecoder(nn.Module):
    """AV-HuBERT's ``TransformerDecoder``; see the module docstring for conventions."""

    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        d = cfg.decoder_embed_dim
        self.pad = cfg.pad_index
        self.embed_tokens = nn.Embedding(cfg.vocab_size, d, padding_idx=cfg.pad_index)
        nn.init.normal_(self.embed_tokens.weight, 0, d ** -0.5)
        with torch.no_grad():
            self.embed_tokens.weight[cfg.pad_index].zero_()
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(d)
        if cfg.decoder_learned_pos:
            raise ValueError("learned decoder positions are not supported (released models use sinusoidal)")
        self.embed_positions = SinusoidalPositions(d, cfg.pad_index)
        self.layers = nn.ModuleList(DecoderLayer(d, cfg.decoder_ffn_embed_dim, cfg.decoder_attention_heads,
                                                 cfg.decoder_normalize_before, cfg.dropout)
                                    for _ in range(cfg.decoder_layers))
        self.layer_norm = nn.LayerNorm(d) if cfg.decoder_normalize_before else None
        self.embed_out = (None if cfg.share_decoder_input_output_embed
                          else nn.Parameter(torch.randn(cfg.vocab_size, d) * d ** -0.5))

    def encoder_kv(self, enc: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer encoder-attention keys/values (computed once per utterance)."""
        return [(layer.encoder_attn.split(layer.encoder_attn.k_proj(enc)),
                 layer.encoder_attn.split(layer.encoder_attn.v_proj(enc))) for layer in self.layers]

    def forward(self, tokens: torch.Tensor, enc_kv: list[tuple[torch.Tensor, torch.Tensor]],
                enc_padding: torch.Tensor | None, positions: torch.Tensor | None = None,
                cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """``tokens (N, L)`` -> logits ``(N, L, V)`` and the new self-attention cache.

        Teacher forcing: ``cache=None``, causal mask, positions from the tokens (pads get the
        zero row). Incremental: ``tokens`` is the last token ``(N, 1)``, ``positions`` its
        position, ``cache`` the earlier keys/values. ``enc_kv`` may hold ``B`` rows for ``N = g B``
        token rows (``g`` consecutive rows per utterance: beam search), ``enc_padding`` then ``(B, S)``.
        """
        if positions is None:
            nonpad = tokens.ne(self.pad).long()
            positions = torch.cumsum(nonpad, 1) * nonpad + self.pad
        x = self.embed_scale * self.embed_tokens(tokens) + self.embed_positions(positions)
        length = tokens.shape[1]
        self_mask = None
        if cache is None and length > 1:
            self_mask = torch.ones(length, length, dtype=torch.bool, device=tokens.device).tril()
        enc_mask = key_mask(enc_padding)
        new_cache = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, cache[i] if cache is not None else None, self_mask, enc_kv[i], enc_mask)
            new_cache.append(kv)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        weight = self.embed_tokens.weight if self.embed_out is None else self.embed_out
        return x @ weight.t(), new_cache


class AVHubertSeq2Seq(nn.Module):
    """``encoder.w2v_model`` + ``decoder``: the fine-tuned lip reader."""

    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        if cfg.decoder_embed_dim != cfg.encoder_embed_dim:
            raise ValueError("encoder and decoder widths must match (encoder_attn k/v are D x D)")
        self.cfg = cfg
        self.encoder = EncoderWrapper(cfg)
        self.decoder = TransformerDecoder(cfg)

    def forward(self, video: torch.Tensor, padding_mask: torch.Tensor | None,
                prev_output_tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(B, L, V)`` for ``prev_output_tokens`` (``</s>`` + target[:-1])."""
        enc = self.encoder(video, padding_mask)
        return self.decoder(prev_output_tokens, self.decoder.encoder_kv(enc), padding_mask)[0]
