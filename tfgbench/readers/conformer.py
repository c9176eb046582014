"""Conformer visual speech recogniser in ESPnet's parameter layout (TalkLip observer 2, Auto-AVSR).

One network, two official layouts, selected by :attr:`ConformerConfig.layout`:

- ``"talklip"``: TalkLip's ``E2E(512, 40, 'conformer_arg.txt')`` = deep_avsr ``VisualFrontend``
  (Conv3d 5x7x7 + BN + ReLU + max-pool, then an 18-layer ResNet of pre-activation style
  ``ResNetLayer`` s, global average pool -> 512-d per frame) + ESPnet 0.10.6 conformer encoder
  (``input_layer="linear"``: Linear -> LayerNorm -> x*sqrt(d) + relative positions; macaron
  feed-forwards with swish; relative-position self-attention; convolution module with kernel 31)
  + ESPnet transformer decoder + CTC head. Keys: ``visual_frontend.*``, ``encoder.*``,
  ``decoder.*``, ``ctc.ctc_lo.*``.
- ``"auto-avsr"``: Ma et al.'s ``E2E(odim, "video")`` = ``Conv3dResNet`` (Conv3d + BN3d + SiLU +
  max-pool, ResNet-18 ``BasicBlock`` s with SiLU) + ``proj_encoder`` Linear(512, D) + conformer
  encoder (no input layer, ReLU feed-forwards, ``pointwise_cov1/2`` spelling) + decoder + CTC.
  Keys: ``frontend.*``, ``proj_encoder.*``, ``encoder.*``, ``decoder.*``, ``ctc.ctc_lo.*``.

Shapes: videos ``(B, T, H, W)`` float32 (normalised gray) -> frame features ``(B, T, C)`` ->
encoder ``(B, T', D)`` -> decoder logits ``(B, L + 1, V)`` for a target of ``L`` tokens.

Relative-position self-attention (ESPnet ``RelPositionMultiHeadedAttention``), for query ``i``
and key ``j`` with projections ``q, k`` and relative embedding ``p_{i-j}``::

    score(i, j) = ((q_i + u) . k_j + (q_i + v) . W_pos p_{i-j}) / sqrt(d_k)

Padded positions are zeroed before the depthwise convolution, so a batch gives the same outputs
as each clip alone (the official scripts decode one clip at a time).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tfgbench.readers.conformer_frontend import VisualFrontend

LAYOUTS = ("talklip", "auto-avsr")


@dataclass
class ConformerConfig:
    """Sizes and layout of :class:`ConformerVSR`.

    Attributes:
        layout: ``"talklip"`` or ``"auto-avsr"`` (parameter names and block variants).
        frontend: ``"official"`` (the layout's own front end) or ``"avhubert-resnet"``: AV-HuBERT's
            ``ResEncoder`` (Conv3d + BN3d + PReLU stem, ResNet-18 with PReLU; keys ``frontend3D.*``,
            ``trunk.*``), the module :mod:`tfgbench.readers.pretrain` pre-trains (our synthetic reader).
        frontend_channels: stem width, then the widths of the 4 ResNet stages (last = feature dim).
        input_size: side of the square clips the model was trained on (informational: the
            front end pools globally).
        adim / aheads / eunits / elayers: encoder width, heads, feed-forward units, blocks.
        dheads / dunits / dlayers: decoder heads, feed-forward units, blocks (width = adim).
        odim: output vocabulary (index 0 = CTC blank, ``odim - 1`` = sos/eos).
        cnn_kernel: depthwise convolution kernel of the conformer convolution module.
        dropout: dropout rate used in training (inactive in eval mode).
        mtlalpha: CTC weight of the training loss ``a * CTC + (1 - a) * attention``.
        lsm_weight: label smoothing of the attention loss.
        mean / std: the clip normalisation ``(x / 255 - mean) / std`` the model expects.
    """

    layout: str = "talklip"
    frontend: str = "official"
    frontend_channels: tuple[int, ...] = (64, 64, 128, 256, 512)
    input_size: int = 112
    adim: int = 256
    aheads: int = 4
    eunits: int = 2048
    elayers: int = 12
    dheads: int = 4
    dunits: int = 2048
    dlayers: int = 6
    odim: int = 40
    cnn_kernel: int = 31
    dropout: float = 0.1
    mtlalpha: float = 0.3
    lsm_weight: float = 0.1
    mean: float = 0.4161
    std: float = 0.1688

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown conformer layout {self.layout!r}; choose from {LAYOUTS}")
        self.frontend_channels = tuple(int(c) for c in self.frontend_channels)
        if len(self.frontend_channels) != 5:
            raise ValueError("frontend_channels must have 5 entries (stem + 4 ResNet stages)")
        if self.frontend not in ("official", "avhubert-resnet"):
            raise ValueError(f"unknown front end {self.frontend!r}; choose official or avhubert-resnet")
        if self.frontend == "avhubert-resnet" and self.frontend_channels[0] != self.frontend_channels[1]:
            raise ValueError("the avhubert-resnet front end's stem width equals its first stage width")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frontend_channels"] = list(self.frontend_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConformerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def preset(name: str) -> ConformerConfig:
    """Named sizes: ``tiny`` (trains on 2 CPU cores), ``observer``/``paper`` (TalkLip observer 2:
    adim 256, 4 heads, 2048 units, 12 + 6 blocks, 40 characters), ``auto-avsr`` (768-d, 12 heads,
    3072 units, 12 + 6 blocks, 5049 unigram pieces)."""
    if name == "tiny":  # input: the synthetic protocols' 44x44 mouth crops
        return ConformerConfig(frontend="avhubert-resnet", frontend_channels=(16, 16, 32, 64, 128),
                               input_size=44, adim=96, aheads=4, eunits=192, elayers=3, dheads=4,
                               dunits=192, dlayers=2, mean=0.421, std=0.165)
    if name in ("observer", "paper", "talklip"):
        return ConformerConfig()
    if name == "auto-avsr":
        return ConformerConfig(layout="auto-avsr", input_size=88, adim=768, aheads=12, eunits=3072,
                               elayers=12, dheads=12, dunits=3072, dlayers=6, odim=5049,
                               mtlalpha=0.1, mean=0.421, std=0.165)
    raise ValueError(f"unknown conformer size {name!r}; choose from tiny, observer, auto-avsr")


# ----------------------------------------------------------------------------- blocks
class PositionwiseFeedForward(nn.Module):
    def __init__(self, d: int, units: int, dropout: float, act: nn.Module) -> None:
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d, units), nn.Linear(units, d)
        self.dropout, self.activation = nn.Dropout(dropout), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.dropout(self.activation(self.w_1(x))))


def _layer_norm(d: int) -> nn.LayerNorm:
    return nn.LayerNorm(d, eps=1e-12)  # ESPnet's LayerNorm subclass uses eps 1e-12


class MultiHeadedAttention(nn.Module):
    """ESPnet ``MultiHeadedAttention`` (``linear_q/k/v/out``); ``mask`` (B, 1 or Tq, Tk) bool,
    True = attend. ``bias`` is an extra additive score term (relative positions)."""

    def __init__(self, heads: int, d: int, dropout: float) -> None:
        super().__init__()
        self.h, self.d_k, self.p = heads, d // heads, dropout
        self.linear_q, self.linear_k = nn.Linear(d, d), nn.Linear(d, d)
        self.linear_v, self.linear_out = nn.Linear(d, d), nn.Linear(d, d)

    def _split(self, x: torch.Tensor, lin: nn.Linear) -> torch.Tensor:
        return lin(x).view(x.shape[0], -1, self.h, self.d_k).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
               bias: torch.Tensor | None = None) -> torch.Tensor:
        add = None
        if mask is not None:
            add = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(
                ~mask, float("-inf")).unsqueeze(1)
        if bias is not None:
            add = bias if add is None else add + bias
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=add,
                                             dropout_p=self.p if self.training else 0.0)
        return self.linear_out(out.transpose(1, 2).reshape(q.shape[0], -1, self.h * self.d_k))

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        return self.attend(self._split(query, self.linear_q), self._split(key, self.linear_k),
                           self._split(value, self.linear_v), mask)


class RelPositionMultiHeadedAttention(MultiHeadedAttention):
    """ESPnet (>= 0.10) relative-position attention: ``linear_pos`` (no bias), ``pos_bias_u``,
    ``pos_bias_v`` (heads, d_k); ``pos`` is (1, 2T - 1, D) for offsets T-1 .. -(T-1)."""

    def __init__(self, heads: int, d: int, dropout: float) -> None:
        super().__init__(heads, d, dropout)
        self.linear_pos = nn.Linear(d, d, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(self.h, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        q = self._split(x, self.linear_q)  # (B, h, T, d_k)
        k, v = self._split(x, self.linear_k), self._split(x, self.linear_v)
        p = self.linear_pos(pos).view(1, -1, self.h, self.d_k).transpose(1, 2)  # (1, h, 2T-1, d_k)
        bd = torch.matmul(q + self.pos_bias_v[:, None], p.transpose(-2, -1))  # (B, h, T, 2T-1)
        t = bd.shape[2]
        # rel_shift: row i keeps columns for offsets i-0 .. i-(T-1), i.e. p index T-1-i+j.
        bd = torch.cat([bd.new_zeros(*bd.shape[:3], 1), bd], dim=-1).view(*bd.shape[:2], 2 * t, t)
        bd = bd[:, :, 1:].reshape(*bd.shape[:2], t, 2 * t - 1)[..., :t]
        return self.attend(q + self.pos_bias_u[:, None], k, v, mask, bias=bd / math.sqrt(self.d_k))


class ConvolutionModule(nn.Module):
    """Pointwise conv (2D channels) -> GLU -> depthwise conv -> BN -> swish -> pointwise conv.
    Auto-AVSR spells the pointwise convs ``pointwise_cov1/2``."""

    def __init__(self, d: int, kernel: int, spelling: str = "conv") -> None:
        super().__init__()
        self._pw1, self._pw2 = f"pointwise_{spelling}1", f"pointwise_{spelling}2"
        setattr(self, self._pw1, nn.Conv1d(d, 2 * d, 1))
        self.depthwise_conv = nn.Conv1d(d, d, kernel, padding=(kernel - 1) // 2, groups=d)
        self.norm = nn.BatchNorm1d(d)
        setattr(self, self._pw2, nn.Conv1d(d, d, 1))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = F.glu(getattr(self, self._pw1)(x.transpose(1, 2)), dim=1)
        x = x * keep.unsqueeze(1)  # padded steps = the zeros a lone clip would be padded with
        x = F.silu(self.norm(self.depthwise_conv(x)))
        return getattr(self, self._pw2)(x).transpose(1, 2)


class ConformerBlock(nn.Module):
    """Macaron conformer block: x + FF/2, + MHSA, + Conv, + FF/2, final LayerNorm (pre-norm)."""

    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        d, talklip = cfg.adim, cfg.layout == "talklip"
        act = nn.SiLU() if talklip else nn.ReLU()
        self.self_attn = RelPositionMultiHeadedAttention(cfg.aheads, d, 0.0)
        self.feed_forward = PositionwiseFeedForward(d, cfg.eunits, cfg.dropout, act)
        self.feed_forward_macaron = PositionwiseFeedForward(d, cfg.eunits, cfg.dropout, act)
        self.conv_module = ConvolutionModule(d, cfg.cnn_kernel, "conv" if talklip else "cov")
        for name in ("norm_ff", "norm_mha", "norm_ff_macaron", "norm_conv", "norm_final"):
            setattr(self, name, _layer_norm(d))
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor,
                keep: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))
        x = x + self.dropout(self.self_attn(self.norm_mha(x), pos, mask))
        x = x + self.dropout(self.conv_module(self.norm_conv(x), keep))
        x = x + 0.5 * self.dropout(self.feed_forward(self.norm_ff(x)))
        return self.norm_final(x)


def sinusoids(positions: torch.Tensor, d: int) -> torch.Tensor:
    """``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(...)`` for each position ``p``."""
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(math.log(10000.0) / d))
    ang = positions.float()[:, None] * div[None]
    return torch.stack([ang.sin(), ang.cos()], dim=-1).flatten(1)


class RelPositionalEncoding(nn.Module):
    """Returns ``(x * sqrt(d), pos)`` with ``pos`` the encodings of offsets T-1 .. -(T-1)."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.d, self.dropout = d, nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = x.shape[1]
        pos = sinusoids(torch.arange(t - 1, -t, -1), self.d).to(x)[None]
        return self.dropout(x * math.sqrt(self.d)), self.dropout(pos)


class PositionalEncoding(nn.Module):
    """Absolute sinusoidal encoding: ``x * sqrt(d) + PE[0..T-1]``."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.d, self.dropout = d, nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x * math.sqrt(self.d) + sinusoids(torch.arange(x.shape[1]), self.d).to(x))


class ConformerEncoder(nn.Module):
    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        d = cfg.adim
        if cfg.layout == "talklip":
            self.embed = nn.Sequential(nn.Linear(cfg.frontend_channels[-1], d), nn.LayerNorm(d),
                                       nn.Dropout(cfg.dropout), RelPositionalEncoding(d, cfg.dropout))
        else:
            self.embed = nn.Sequential(RelPositionalEncoding(d, cfg.dropout))
        self.encoders = nn.ModuleList(ConformerBlock(cfg) for _ in range(cfg.elayers))
        self.after_norm = _layer_norm(d)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None]).to(x.dtype)
        x, pos = self.embed(x)
        mask = keep.bool().unsqueeze(1)  # (B, 1, T)
        for block in self.encoders:
            x = block(x, pos, mask, keep)
        return self.after_norm(x)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        d = cfg.adim
        self.self_attn = MultiHeadedAttention(cfg.dheads, d, 0.0)
        self.src_attn = MultiHeadedAttention(cfg.dheads, d, 0.0)
        self.feed_forward = PositionwiseFeedForward(d, cfg.dunits, cfg.dropout, nn.ReLU())
        self.norm1, self.norm2, self.norm3 = _layer_norm(d), _layer_norm(d), _layer_norm(d)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, mem: torch.Tensor,
                mem_mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.dropout(self.self_attn(h, h, h, x_mask))
        h = self.norm2(x)
        x = x + self.dropout(self.src_attn(h, mem, mem, mem_mask))
        return x + self.dropout(self.feed_forward(self.norm3(x)))


class TransformerDecoder(nn.Module):
    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Embedding(cfg.odim, cfg.adim), PositionalEncoding(cfg.adim, cfg.dropout))
        self.decoders = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.dlayers))
        self.after_norm = _layer_norm(cfg.adim)
        self.output_layer = nn.Linear(cfg.adim, cfg.odim)

    def forward(self, ys_in: torch.Tensor, mem: torch.Tensor, mem_lengths: torch.Tensor) -> torch.Tensor:
        """``ys_in`` (B, L) token ids starting with sos -> logits (B, L, V) (causal)."""
        n = ys_in.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=ys_in.device).tril()[None]
        mem_mask = (torch.arange(mem.shape[1], device=mem.device)[None] < mem_lengths[:, None])[:, None]
        x = self.embed(ys_in)
        for layer in self.decoders:
            x = layer(x, causal, mem, mem_mask)
        return self.output_layer(self.after_norm(x))


class CTCHead(nn.Module):
    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        self.ctc_lo = nn.Linear(cfg.adim, cfg.odim)

    def forward(self, hs: torch.Tensor) -> torch.Tensor:
        return self.ctc_lo(hs)


class ConformerVSR(nn.Module):
    """The whole recogniser; its ``state_dict`` keys are the official ones of ``cfg.layout``."""

    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.sos = self.eos = cfg.odim - 1
        if cfg.layout == "talklip":
            self.visual_frontend = VisualFrontend(cfg)
        else:
            self.frontend = VisualFrontend(cfg)
            self.proj_encoder = nn.Linear(cfg.frontend_channels[-1], cfg.adim)
        self.encoder = ConformerEncoder(cfg)
        self.decoder = TransformerDecoder(cfg)
        self.ctc = CTCHead(cfg)

    def frame_features(self, videos: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W)`` -> ``(B, T, C)`` visual features (before the encoder)."""
        if self.cfg.layout == "talklip":
            return self.visual_frontend(videos, lengths)
        return self.proj_encoder(self.frontend(videos, lengths))

    def encode(self, videos: torch.Tensor, lengths: torch.Tensor,
               required: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode padded clips. ``required`` (TalkLip ``outpadding``): per clip, an encoder length
        ``>= T``; the features are zero padded to it, centred (``floor((R - T) / 2)`` steps on the
        left), and the padding is attended to, as TalkLip's teacher-forced scorer does.

        Returns ``(hs (B, T', D), enc_lengths (B,))``.
        """
        return self.encode_features(self.frame_features(videos, lengths), lengths, required)

    def encode_features(self, feats: torch.Tensor, lengths: torch.Tensor,
                        required: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`encode` from precomputed :meth:`frame_features` ``(B, T, C)``."""
        if required is None:
            return self.encoder(feats, lengths), lengths
        required = torch.maximum(required, lengths)
        out = feats.new_zeros(feats.shape[0], int(required.max()), feats.shape[-1])
        for i, (n, r) in enumerate(zip(lengths.tolist(), required.tolist())):
            left = (r - n) // 2
            out[i, left:left + n] = feats[i, :n]
        return self.encoder(out, required), required

    def teacher_forced_logits(self, hs: torch.Tensor, hs_lengths: torch.Tensor,
                              targets: list[torch.Tensor]) -> torch.Tensor:
        """Decoder logits ``(B, Lmax + 1, V)`` for inputs ``[sos] + target`` (padded with eos)."""
        lmax = max(len(t) for t in targets)
        ys_in = torch.full((len(targets), lmax + 1), self.eos, dtype=torch.long, device=hs.device)
        for i, t in enumerate(targets):
            ys_in[i, 1:len(t) + 1] = t
        return self.decoder(ys_in, hs, hs_lengths)

    @torch.no_grad()
    def greedy_decode(self, hs: torch.Tensor, hs_lengths: torch.Tensor, max_len: int) -> list[list[int]]:
        """Batched greedy attention decoding from sos until eos (or ``max_len`` tokens)."""
        b = hs.shape[0]
        ys = torch.full((b, 1), self.sos, dtype=torch.long, device=hs.device)
        done = torch.zeros(b, dtype=torch.bool, device=hs.device)
        for _ in range(max_len):
            nxt = self.decoder(ys, hs, hs_lengths)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.eos), nxt)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= nxt == self.eos
            if bool(done.all()):
                break
        out = []
        for row in ys[:, 1:].tolist():
            out.append(row[:row.index(self.eos)] if self.eos in row else row)
        return out

    def loss(self, videos: torch.Tensor | None, lengths: torch.Tensor, targets: list[torch.Tensor],
             feats: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss ``a * CTC + (1 - a) * label-smoothed attention CE`` (ESPnet: both summed
        over tokens and divided by the batch size). ``feats``: precomputed frame features
        (then ``videos`` may be None)."""
        if feats is None:
            feats = self.frame_features(videos, lengths)
        hs, hl = self.encode_features(feats, lengths)
        b = len(targets)
        logp = F.log_softmax(self.ctc(hs), dim=-1).transpose(0, 1)
        tl = torch.tensor([len(t) for t in targets], device=hs.device)
        ctc = F.ctc_loss(logp, torch.cat(targets), hl, tl, blank=0, reduction="sum",
                         zero_infinity=True) / b
        logits = self.teacher_forced_logits(hs, hl, targets)
        ys_out = torch.full(logits.shape[:2], -1, dtype=torch.long, device=hs.device)
        for i, t in enumerate(targets):
            ys_out[i, :len(t)] = t
            ys_out[i, len(t)] = self.eos
        valid = ys_out >= 0
        att = F.cross_entropy(logits[valid], ys_out[valid], reduction="sum",
                              label_smoothing=self.cfg.lsm_weight) / b
        a = self.cfg.mtlalpha
        acc = (logits.argmax(-1)[valid] == ys_out[valid]).float().mean()
        return a * ctc + (1 - a) * att, {"ctc": ctc.item(), "att": att.item(), "acc": acc.item()}
