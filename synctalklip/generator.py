"""SyncTalklip's generator (stage 2), its variants and the paper's Table 3 ablations.

SyncTalklip is a fork of TalkLip (Yangxiaoda1/SyncTalkLip): the generator is TalkLip's
(:class:`baselines.talklip.model.TalkLip`: Wav2Lip face encoder/decoder with U-Net skips, an
AV-HuBERT encoder as audio encoder, ``audio_map`` to the bottleneck, ``sync_net.Linearaudio``), with
the audio encoder initialised from AV-SyncNet's encoder (``TalkLip(encoder, 1024)`` at paper size:
AV-HuBERT Large). What changes from TalkLip is the supervision, chosen by a :class:`SyncTalklipVariant`:

========================  ===============  ==============  ===========  ==================================
model                     supervisor       contrastive     lip loss     audio encoder of the generator
========================  ===============  ==============  ===========  ==================================
``base``                  AV-SyncNet       novel (eq. 12)  yes          AV-SyncNet's, top layers tuned
``conv``                  AV-SyncNet conv  novel, on g(f)  yes          AV-SyncNet conv's, top layers tuned
``freeze``                AV-SyncNet       novel (eq. 12)  yes          AV-SyncNet's frozen + an extra one
ablation ``supcon``       AV-SyncNet       SupCon (TalkLip)  yes        as base
ablation ``avhubert``     plain AV-HuBERT  novel (eq. 12)  yes          the plain reader's, top layers tuned
ablation ``no-contrastive``  AV-SyncNet    none            yes          as base
ablation ``no-lip``       AV-SyncNet       novel (eq. 12)  no           as base
========================  ===============  ==============  ===========  ==================================

The contrastive loss pairs the supervisor's audio-only encoding of the clip (the official "sync
target", ``sync_enc_audio``) with the supervisor's encoding of the video in which the generated
frames replaced the real ones (a by-product of the lip-reading loss), through the supervisor's own
frozen ``F`` and ``tau`` (:func:`synctalklip.train_generator.expert_sync_pair`; the official code
uses the generator's ``sync_net``, ``--sync-head generator``).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from baselines.talklip.model import TalkLip, TalkLipConfig
from baselines.wav2lip.model import scaled
from tfgbench.readers.avhubert import AVHubertConfig, EncoderWrapper

VARIANTS = ("base", "conv", "freeze")
ABLATIONS = ("supcon", "avhubert", "no-contrastive", "no-lip")
SIZES = ("tiny", "paper")


@dataclass
class SyncTalklipVariant:
    """Which SyncTalklip: ``variant`` and at most one Table 3 ``ablation`` of the base model, at
    ``size`` (``tiny`` trains on 2 CPU cores, ``paper``: AV-HuBERT Large, 96x96 crops). The loss
    weights and schedule are the training recipe's (:class:`baselines.talklip.recipe.Recipe`)."""

    variant: str = "base"
    ablation: str | None = None
    size: str = "tiny"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {', '.join(VARIANTS)}")
        if self.ablation is not None and self.ablation not in ABLATIONS:
            raise ValueError(f"unknown ablation {self.ablation!r}; choose from {', '.join(ABLATIONS)}")
        if self.ablation is not None and self.variant != "base":
            raise ValueError("the Table 3 ablations are ablations of the base model (--variant base)")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; choose from {', '.join(SIZES)}")

    @property
    def name(self) -> str:
        """The model plugin's name: ``synctalklip``, ``synctalklip-conv``, ``synctalklip-no-lip``..."""
        suffix = self.ablation or (self.variant if self.variant != "base" else "")
        return "synctalklip" + (f"-{suffix}" if suffix else "")

    @property
    def supervisor(self) -> str:
        """Which AV-SyncNet checkpoint supervises: ``base``, ``conv`` or ``plain`` (AV-HuBERT)."""
        if self.ablation == "avhubert":
            return "plain"
        return "conv" if self.variant == "conv" else "base"

    @property
    def contrastive(self) -> str | None:
        """``"novel"`` (eq. 12), ``"supcon"`` (TalkLip's) or ``None``."""
        return {"supcon": "supcon", "no-contrastive": None}.get(self.ablation or "", "novel")

    @property
    def lip_loss(self) -> bool:
        return self.ablation != "no-lip"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SyncTalklipVariant:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class FreezeTalkLip(TalkLip):
    """The ``freeze`` variant: the AV-SyncNet audio encoder (``audio_encoder``) stays frozen, and an
    extra trainable AV-HuBERT encoder (``extra_audio_encoder``, also initialised from AV-SyncNet)
    with its own ``extra_audio_map`` drives generation together with it:
    ``bottleneck = audio_map(frozen(a)) + extra_audio_map(extra(a))``. ``extra_audio_map`` starts at
    zero, so training starts from the frozen encoder's generator. :meth:`encode_audio` returns both
    encodings side by side ``(B, T, 2 D)``; :meth:`bottleneck` splits them."""

    def __init__(self, audio_encoder: nn.Module, audio_dim: int, width: float) -> None:
        super().__init__(audio_encoder, audio_dim, width)
        self.extra_audio_encoder = copy.deepcopy(audio_encoder)
        self.extra_audio_map = nn.Linear(audio_dim, scaled(512, width))
        nn.init.zeros_(self.extra_audio_map.weight)
        nn.init.zeros_(self.extra_audio_map.bias)
        for p in self.audio_encoder.parameters():
            p.requires_grad_(False)

    def encode_audio(self, fbank: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            frozen = self.audio_encoder(None, padding_mask, audio=fbank)
        return torch.cat([frozen, self.extra_audio_encoder(None, padding_mask, audio=fbank)], dim=-1)

    def bottleneck(self, audio_embedding: torch.Tensor) -> torch.Tensor:
        d = self.audio_dim
        return self.audio_map(audio_embedding[:, :d]) + self.extra_audio_map(audio_embedding[:, d:])


def generator_config(spec: SyncTalklipVariant, encoder_cfg: AVHubertConfig) -> TalkLipConfig:
    """TalkLip's config with the supervisor's encoder as audio encoder (width 1/4 for tiny)."""
    return TalkLipConfig.for_size(spec.size, audio=encoder_cfg)


def build_generator(spec: SyncTalklipVariant, encoder_cfg: AVHubertConfig,
                    encoder_state: dict[str, torch.Tensor] | None = None) -> tuple[TalkLip, TalkLipConfig]:
    """The generator of ``spec`` and its config, the audio encoder loaded from ``encoder_state``
    (``w2v_model.*`` keys, :func:`baselines.talklip.checkpoint.audio_encoder_init`) when given.
    Which encoder layers train is the training recipe's business (``finetune_audio_layers``)."""
    cfg = generator_config(spec, encoder_cfg)
    encoder = EncoderWrapper(AVHubertConfig.from_dict(cfg.audio))
    if encoder_state is not None:
        encoder.load_state_dict(encoder_state)
    cls = FreezeTalkLip if spec.variant == "freeze" else TalkLip
    return cls(encoder, cfg.audio_dim, cfg.width), cfg
