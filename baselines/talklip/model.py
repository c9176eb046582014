"""TalkLip networks (Wang et al. 2023) with the official layouts and state-dict key names.

Written from the layer facts of ``Sxjdwang/TalkLip`` ``models/talklip.py`` and
``models/learn_sync.py``:

* :class:`TalkLip` ``(audio_encoder, audio_dim, width)``: Wav2Lip's face encoder/decoder
  (``face_encoder_blocks.*``, ``face_decoder_blocks.*``, ``output_block.*``, built by
  :mod:`baselines.wav2lip.model`), an AV-HuBERT encoder as the audio encoder
  (``audio_encoder.w2v_model.*``, :class:`tfgbench.readers.avhubert.EncoderWrapper`, the official
  ``HubertEncoderWrapper``), ``audio_map = Linear(audio_dim, 512 * width)`` from one frame of the
  encoder's output to the U-Net bottleneck, and the contrastive head
  ``sync_net.Linearaudio = Linear(audio_dim, audio_dim)``. Without its audio encoder the official
  size has 265 keys (Wav2Lip's 352 minus its 91 mel-encoder keys, plus 2 + 2).
* :class:`TalkLipDiscQual` (official ``TalkLip_disc_qual``): the same 28-key quality
  discriminator as Wav2Lip's (lower half of the face -> P(real)).

Shapes: faces ``(N, 6, 96, 96)`` in [0, 1] (target with its lower half zeroed ++ reference);
audio ``(B, 104, T)`` stacked log filterbanks at 25 Hz (:mod:`baselines.talklip.audio`) ->
encoder output ``(B, T, D)``; one row ``(N, D)`` per generated frame -> faces ``(N, 3, 96, 96)``.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from baselines.wav2lip.model import (
    Wav2LipDiscQual,
    face_decoder_blocks,
    face_encoder_blocks,
    output_block,
    scaled,
)
from tfgbench.readers.avhubert import AVHubertConfig, EncoderWrapper

#: size name -> face-network channel multiplier (``paper`` is an alias of ``official``)
SIZES: dict[str, float] = {"official": 1.0, "paper": 1.0, "tiny": 0.25}


@dataclass
class TalkLipConfig:
    """What rebuilds a generator: the face-network ``width`` and the audio encoder's AV-HuBERT
    config (``audio``, :meth:`AVHubertConfig.to_dict`; only its encoder fields matter).
    ``channel_order`` is the colour order the generator was trained on: ``"bgr"`` for official
    checkpoints (OpenCV-decoded frames), ``"rgb"`` for ours."""

    width: float = 1.0
    audio: dict[str, Any] = field(default_factory=lambda: AVHubertConfig.base().to_dict())
    channel_order: str = "rgb"

    @property
    def audio_dim(self) -> int:
        return int(self.audio["encoder_embed_dim"])

    @classmethod
    def for_size(cls, size: str, audio: AVHubertConfig | None = None, **kw: Any) -> TalkLipConfig:
        """``official``/``paper``: width 1 with AV-HuBERT Base (768-d, ``TalkLip(encoder, 768)``);
        ``tiny``: width 1/4 with the tiny AV-HuBERT (128-d). ``audio`` overrides the encoder
        (SyncTalklip: ``AVHubertConfig.large()``, 1024-d)."""
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
        if audio is None:
            audio = AVHubertConfig.tiny() if size == "tiny" else AVHubertConfig.base()
        return cls(width=SIZES[size], audio=audio.to_dict(), **kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TalkLipConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class AVSyncHead(nn.Module):
    """The official ``av_sync`` module's parameters: ``Linearaudio`` (``D -> D``). The projection
    applied to audio features before the contrastive loss is
    ``normalize(Linearaudio(normalize(a)))`` (official ``av_sync.forward``)."""

    def __init__(self, audio_dim: int) -> None:
        super().__init__()
        self.Linearaudio = nn.Linear(audio_dim, audio_dim)

    def project(self, audio: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` -> ``(N, D)`` unit vectors."""
        return F.normalize(self.Linearaudio(F.normalize(audio, dim=1)), dim=1)


class TalkLip(nn.Module):
    """The TalkLip generator (see the module docstring).

    Args:
        audio_encoder: an :class:`EncoderWrapper` (AV-HuBERT encoder) producing ``(B, T, audio_dim)``.
        audio_dim: its output width (768 for Base, 1024 for Large, 128 for tiny).
        width: face-network channel multiplier (1 official, 1/4 tiny); bottleneck ``512 * width``.

    The audio encoder runs under ``no_grad`` unless :attr:`finetune_audio` is set (official
    ``ft``: off until the first training stage ends).
    """

    def __init__(self, audio_encoder: nn.Module, audio_dim: int = 768, width: float = 1.0) -> None:
        super().__init__()
        self.width = width
        self.audio_dim = audio_dim
        self.face_encoder_blocks = face_encoder_blocks(width)
        self.audio_encoder = audio_encoder
        self.audio_map = nn.Linear(audio_dim, scaled(512, width))
        self.face_decoder_blocks = face_decoder_blocks(width)
        self.output_block = output_block(width)
        self.sync_net = AVSyncHead(audio_dim)
        self.finetune_audio = False
        self.channels_last = False

    def use_channels_last(self) -> TalkLip:
        """Store the face networks' weights channels-last (about 30 % faster on CPU at 96x96; the
        values and keys of the state dict do not change)."""
        for block in (self.face_encoder_blocks, self.face_decoder_blocks, self.output_block):
            block.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def encode_audio(self, fbank: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``fbank (B, 104, T)`` (+ padding mask ``(B, T)``, True = padded) -> ``(B, T, D)``."""
        with contextlib.nullcontext() if self.finetune_audio else torch.no_grad():
            return self.audio_encoder(None, padding_mask, audio=fbank)

    def bottleneck(self, audio_embedding: torch.Tensor) -> torch.Tensor:
        """One encoder frame per face ``(N, D)`` -> the U-Net bottleneck ``(N, 512 * width)``
        (``audio_map``; a hook for generators with another audio path, e.g. SyncTalklip's ``freeze``)."""
        return self.audio_map(audio_embedding)

    def render(self, faces: torch.Tensor, audio_embedding: torch.Tensor) -> torch.Tensor:
        """U-Net pass: ``faces (N, 6, 96, 96)`` + one encoder frame per face ``(N, D)`` -> ``(N, 3, 96, 96)``."""
        feats = []
        x = faces.contiguous(memory_format=torch.channels_last) if self.channels_last else faces
        for block in self.face_encoder_blocks:
            x = block(x)
            feats.append(x)
        x = self.bottleneck(audio_embedding)[:, :, None, None]
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), feats.pop()), dim=1)
        return self.output_block(x)

    def forward(self, faces: torch.Tensor, fbank: torch.Tensor, padding_mask: torch.Tensor | None,
                index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The official ``forward(sample, face_sequences, idAudio)``: encode the whole clips once,
        take row ``index[n] = b * T + t`` of the flattened ``(B * T, D)`` output for face ``n``.
        Returns the faces ``(N, 3, 96, 96)`` and the encoder output ``(B, T, D)``."""
        enc = self.encode_audio(fbank, padding_mask)
        return self.render(faces, enc.reshape(-1, enc.shape[-1])[index]), enc


class TalkLipDiscQual(Wav2LipDiscQual):
    """Official ``TalkLip_disc_qual``: the layers, keys (28) and losses of Wav2Lip's quality
    discriminator. ``forward(faces (N, 3, 96, 96))`` -> ``(N, 1)`` P(real) of the lower halves;
    ``perceptual_loss(fake)`` = ``BCE(D(fake), 1)`` (official ``perceptual_forward``)."""


def build_talklip(config: TalkLipConfig) -> TalkLip:
    """A generator with random weights at ``config``'s sizes."""
    encoder = EncoderWrapper(AVHubertConfig.from_dict(config.audio))
    return TalkLip(encoder, config.audio_dim, config.width)


def set_audio_finetuning(model: TalkLip, top_layers: int) -> list[nn.Parameter]:
    """Official ``retrieve_avhubert``: only the top ``top_layers`` transformer layers of the audio
    encoder are trainable (layers 9-11 of Base: ``top_layers=3``); everything else in the encoder is
    frozen. Returns the encoder parameters left trainable. (Gradients reach them only while
    :attr:`TalkLip.finetune_audio` is set.)"""
    layers = model.audio_encoder.w2v_model.encoder.layers
    keep = {id(p) for layer in list(layers)[len(layers) - top_layers:] for p in layer.parameters()} \
        if top_layers > 0 else set()
    trainable = []
    for p in model.audio_encoder.parameters():
        p.requires_grad_(id(p) in keep)
        if id(p) in keep:
            trainable.append(p)
    return trainable
