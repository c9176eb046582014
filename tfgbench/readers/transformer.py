"""fairseq-style transformer blocks of the AV-HuBERT port (parameter names as in fairseq).

* :class:`MultiheadAttention`: ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``; softmax(q k^T /
  sqrt(d_head)) v through ``scaled_dot_product_attention``; boolean masks, True = attend.
* :class:`EncoderLayer`: wav2vec2 ``TransformerSentenceEncoderLayer`` (GELU FFN ``fc1``/``fc2``,
  ``self_attn_layer_norm``, ``final_layer_norm``), pre-LN when ``layer_norm_first``.
* :class:`WeightNormConv1d`: the encoder's convolutional positional embedding ``pos_conv.0``.
* :class:`SinusoidalPositions`, :class:`DecoderLayer`: fairseq's decoder positions and layer (ReLU FFN,
  ``encoder_attn``), pre-LN when ``normalize_before``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


class MultiheadAttention(nn.Module):
    """fairseq ``MultiheadAttention`` (q/k/v/out projections, q scaled by head_dim^-0.5)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        for lin in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_uniform_(lin.weight, gain=1 / math.sqrt(2))
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None) -> torch.Tensor:
        """``q`` ``(B, Tq, D)``; ``k``/``v`` already split ``(B, H, Tk, d)``; ``mask`` bool,
        True = attend, broadcastable to ``(B, H, Tq, Tk)``."""
        out = F.scaled_dot_product_attention(self.split(self.q_proj(q)), k, v, attn_mask=mask)
        b, h, t, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, t, h * d))

    def forward(self, q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.attend(q, self.split(self.k_proj(kv)), self.split(self.v_proj(kv)), mask)


def key_mask(padding_mask: torch.Tensor | None) -> torch.Tensor | None:
    """``(B, Tk)`` True = padding -> ``(B, 1, 1, Tk)`` True = attend."""
    return None if padding_mask is None else (~padding_mask)[:, None, None, :]


class EncoderLayer(nn.Module):
    """wav2vec2 ``TransformerSentenceEncoderLayer`` (GELU FFN), pre-LN when ``layer_norm_first``."""

    def __init__(self, dim: int, ffn: int, heads: int, layer_norm_first: bool, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.pre = layer_norm_first
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.pre:
            h = self.self_attn_layer_norm(x)
            x = x + self.dropout(self.self_attn(h, h, mask))
            return x + self.dropout(self.fc2(F.gelu(self.fc1(self.final_layer_norm(x)))))
        x = self.self_attn_layer_norm(x + self.dropout(self.self_attn(x, x, mask)))
        return self.final_layer_norm(x + self.dropout(self.fc2(F.gelu(self.fc1(x)))))


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d with weight norm over dim 2 (fairseq's ``pos_conv.0``):
    ``w = g * v / ||v||``, norms taken per kernel tap over (out, in) channels."""

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        std = math.sqrt(4.0 / (kernel * dim))
        v = torch.randn(dim, dim // groups, kernel) * std
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(v.norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.kernel, self.groups = kernel, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        y = F.conv1d(x, w, self.bias, padding=self.kernel // 2, groups=self.groups)
        return y[..., :-1] if self.kernel % 2 == 0 else y                 # SamePad


class SinusoidalPositions(nn.Module):
    """fairseq ``SinusoidalPositionalEmbedding``: position ``p`` (from ``pad + 1``) ->
    ``[sin(p w_i), cos(p w_i)]``, ``w_i = 10000^(-i / (d/2 - 1))``; row ``pad`` is zero."""

    def __init__(self, dim: int, pad: int) -> None:
        super().__init__()
        self.dim, self.pad = dim, pad
        self.register_buffer("_float_tensor", torch.zeros(1))

    def table(self, n: int, device: torch.device) -> torch.Tensor:
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, dtype=torch.float, device=device) * -(math.log(10000) / (half - 1)))
        ang = torch.arange(n, dtype=torch.float, device=device)[:, None] * freq[None]
        emb = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
        if self.dim % 2:
            emb = F.pad(emb, (0, 1))
        emb[self.pad] = 0
        return emb

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.table(int(positions.max()) + 1, positions.device)[positions]


class DecoderLayer(nn.Module):
    """fairseq ``TransformerDecoderLayer`` (ReLU FFN), pre-LN when ``normalize_before``."""

    def __init__(self, dim: int, ffn: int, heads: int, normalize_before: bool, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.self_attn = MultiheadAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.encoder_attn = MultiheadAttention(dim, heads)
        self.encoder_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.pre = normalize_before

    def _block(self, x: torch.Tensor, norm: nn.LayerNorm, fn: Any) -> torch.Tensor:
        return x + self.drop(fn(norm(x))) if self.pre else norm(x + self.drop(fn(x)))

    def forward(self, x: torch.Tensor, self_kv: tuple[torch.Tensor, torch.Tensor] | None,
                self_mask: torch.Tensor | None, enc_kv: tuple[torch.Tensor, torch.Tensor],
                enc_mask: torch.Tensor | None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``self_kv``: cached keys/values of earlier positions (incremental decoding) or None.
        Returns the output and the self-attention keys/values including this call's positions."""
        cache: list[tuple[torch.Tensor, torch.Tensor]] = []

        def self_attention(h: torch.Tensor) -> torch.Tensor:
            k, v = self.self_attn.split(self.self_attn.k_proj(h)), self.self_attn.split(self.self_attn.v_proj(h))
            if self_kv is not None:
                k, v = torch.cat([self_kv[0], k], 2), torch.cat([self_kv[1], v], 2)
            cache.append((k, v))
            return self.self_attn.attend(h, k, v, self_mask)

        def encoder_attention(h: torch.Tensor) -> torch.Tensor:
            # beam search keeps one copy of the encoder keys per utterance: the g beams of an
            # utterance become g query rows of that utterance (cross-attention has no mask between them)
            n, t, d = h.shape
            b = enc_kv[0].shape[0]
            out = self.encoder_attn.attend(h.reshape(b, (n // b) * t, d), enc_kv[0], enc_kv[1], enc_mask)
            return out.reshape(n, t, d)

        x = self._block(x, self.self_attn_layer_norm, self_attention)
        x = self._block(x, self.encoder_attn_layer_norm, encoder_attention)
        x = self._block(x, self.final_layer_norm, lambda h: self.fc2(F.relu(self.fc1(h))))
        return x, cache[0]
