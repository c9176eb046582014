"""Wav2Lip networks (Prajwal et al. 2020) with the official layouts and state-dict key names.

Written from the layer facts of ``Rudrabha/Wav2Lip`` ``models/{conv,wav2lip,syncnet}.py``:

* ``Wav2Lip`` (352 keys): 6x96x96 face (lower-half-masked target ++ reference) + 1x80x16 mel
  -> 3x96x96 face in [0, 1].
* ``Wav2LipDiscQual`` (28 keys, no BatchNorm): lower half of a 3x96x96 face -> P(real).
* ``SyncNetColor`` (217 keys): 15x48x96 (5 lower-half RGB frames) + 1x80x16 mel ->
  two L2-normalised 512-d embeddings (``SyncNet_color`` of the lip-sync expert).

``width`` multiplies every hidden channel count (``round(c * width)``, at least 1); input and output
channels (6, 3, 15, 1, the discriminator's 1 logit) are never scaled. ``width=1`` is the official
size; ``width=0.25`` is our ``tiny`` size (16 -> 4, 512 -> 128 channels). The U-Net concatenation
widths are sums of scaled widths, so every width gives a consistent network with the same keys.

The building blocks (``Conv2d``, ``Conv2dTranspose``, ``NoNormConv2d``, ``face_encoder_blocks``,
``face_decoder_blocks``, ``output_block``) are public so that other generators of the family
(TalkLip) reuse them with Wav2Lip's exact key names.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: the two sizes every tfgbench model offers
SIZES: dict[str, float] = {"official": 1.0, "tiny": 0.25}


def scaled(channels: int, width: float) -> int:
    """Hidden channel count at channel multiplier ``width``: ``max(1, round(channels * width))``."""
    return max(1, int(round(channels * width)))


class Conv2d(nn.Module):
    """``conv_block = [nn.Conv2d, BatchNorm2d]`` then ReLU; ``residual`` adds the input before the
    ReLU (official ``models/conv.py`` ``Conv2d``). Keys ``conv_block.0.*``, ``conv_block.1.*``."""

    def __init__(self, cin: int, cout: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int], padding: int | tuple[int, int], residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class NoNormConv2d(nn.Module):
    """``conv_block = [nn.Conv2d]`` then LeakyReLU(0.01) (official ``nonorm_Conv2d``, discriminator)."""

    def __init__(self, cin: int, cout: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int], padding: int | tuple[int, int]) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


class Conv2dTranspose(nn.Module):
    """``conv_block = [ConvTranspose2d, BatchNorm2d]`` then ReLU (official ``Conv2dTranspose``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int,
                 output_padding: int = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _res(c: int) -> Conv2d:
    return Conv2d(c, c, 3, 1, 1, residual=True)


#: official encoder stage widths (96 -> 48 -> 24 -> 12 -> 6 -> 3 -> 1 px)
ENCODER_CHANNELS = (16, 32, 64, 128, 256, 512, 512)
#: official decoder stage output widths (1 -> 3 -> 6 -> 12 -> 24 -> 48 -> 96 px)
DECODER_CHANNELS = (512, 512, 512, 384, 256, 128, 64)


def face_encoder_blocks(width: float = 1.0, in_channels: int = 6) -> nn.ModuleList:
    """Wav2Lip's 7-stage face encoder: ``(N, in_channels, 96, 96)`` -> features at 96, 48, 24, 12,
    6, 3, 1 px with ``scaled(ENCODER_CHANNELS[i], width)`` channels (the U-Net skips)."""
    e = [scaled(c, width) for c in ENCODER_CHANNELS]
    return nn.ModuleList([
        nn.Sequential(Conv2d(in_channels, e[0], 7, 1, 3)),
        nn.Sequential(Conv2d(e[0], e[1], 3, 2, 1), _res(e[1]), _res(e[1])),
        nn.Sequential(Conv2d(e[1], e[2], 3, 2, 1), _res(e[2]), _res(e[2]), _res(e[2])),
        nn.Sequential(Conv2d(e[2], e[3], 3, 2, 1), _res(e[3]), _res(e[3])),
        nn.Sequential(Conv2d(e[3], e[4], 3, 2, 1), _res(e[4]), _res(e[4])),
        nn.Sequential(Conv2d(e[4], e[5], 3, 2, 1), _res(e[5])),
        nn.Sequential(Conv2d(e[5], e[6], 3, 1, 0), Conv2d(e[6], e[6], 1, 1, 0)),
    ])


def face_decoder_blocks(width: float = 1.0, embedding_channels: int | None = None) -> nn.ModuleList:
    """Wav2Lip's 7-stage decoder. Stage 0 maps the ``(N, E, 1, 1)`` audio embedding (E =
    ``scaled(512, width)`` unless given) to 512 channels; every stage's output is concatenated
    with the matching encoder feature before the next stage (officially 1024, 1024, 768, 512, 320,
    160 input channels), so the last output has ``scaled(64) + scaled(16)`` channels."""
    e = [scaled(c, width) for c in ENCODER_CHANNELS]
    d = [scaled(c, width) for c in DECODER_CHANNELS]
    emb = scaled(512, width) if embedding_channels is None else embedding_channels

    def up(i: int, n_res: int) -> nn.Sequential:
        # stage i reads stage i-1's output ++ encoder feature 7-i (same spatial size)
        cin = d[i - 1] + e[7 - i]
        first = (Conv2dTranspose(cin, d[i], 3, 1, 0) if i == 1
                 else Conv2dTranspose(cin, d[i], 3, 2, 1, output_padding=1))
        return nn.Sequential(first, *[_res(d[i]) for _ in range(n_res)])

    return nn.ModuleList([nn.Sequential(Conv2d(emb, d[0], 1, 1, 0)),
                          up(1, 1), up(2, 2), up(3, 2), up(4, 2), up(5, 2), up(6, 2)])


def output_block(width: float = 1.0) -> nn.Sequential:
    """``[Conv2d(scaled(64)+scaled(16) -> scaled(32)), nn.Conv2d(-> 3, k1), Sigmoid]``: RGB in [0, 1]."""
    cin = scaled(DECODER_CHANNELS[-1], width) + scaled(ENCODER_CHANNELS[0], width)
    mid = scaled(32, width)
    return nn.Sequential(Conv2d(cin, mid, 3, 1, 1), nn.Conv2d(mid, 3, 1, 1, 0), nn.Sigmoid())


def audio_encoder(width: float = 1.0, syncnet: bool = False) -> nn.Sequential:
    """Mel encoder: ``(N, 1, 80, 16)`` -> ``(N, scaled(512), 1, 1)``. Wav2Lip's has 13 entries;
    ``SyncNet_color``'s (``syncnet=True``) has one more residual block at 256 channels (14)."""
    c = [scaled(x, width) for x in (32, 64, 128, 256, 512)]
    layers = [Conv2d(1, c[0], 3, 1, 1), _res(c[0]), _res(c[0]),
              Conv2d(c[0], c[1], 3, (3, 1), 1), _res(c[1]), _res(c[1]),
              Conv2d(c[1], c[2], 3, 3, 1), _res(c[2]), _res(c[2]),
              Conv2d(c[2], c[3], 3, (3, 2), 1), _res(c[3])]
    if syncnet:
        layers.append(_res(c[3]))
    layers += [Conv2d(c[3], c[4], 3, 1, 0), Conv2d(c[4], c[4], 1, 1, 0)]
    return nn.Sequential(*layers)


def fold_time(x: torch.Tensor, time_dim: int) -> torch.Tensor:
    """``(B, ..., T at time_dim, ...)`` -> ``(T*B, ...)`` ordered time-major, as the official
    ``torch.cat([x[:, i] for i in range(T)])``."""
    return torch.cat(x.unbind(time_dim), dim=0)


class Wav2Lip(nn.Module):
    """The generator. ``forward(audio, face)``:

    * 4-D: audio ``(N, 1, 80, 16)``, face ``(N, 6, 96, 96)`` in [0, 1] -> ``(N, 3, 96, 96)``.
    * 5-D (official training layout): audio ``(B, T, 1, 80, 16)``, face ``(B, 6, T, 96, 96)`` ->
      ``(B, 3, T, 96, 96)``; time is folded into the batch.

    Channels 0-2 of the face are the target frame with its lower half zeroed, 3-5 the reference.
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.width = width
        self.face_encoder_blocks = face_encoder_blocks(width)
        self.audio_encoder = audio_encoder(width)
        self.face_decoder_blocks = face_decoder_blocks(width)
        self.output_block = output_block(width)

    def decode(self, embedding: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """U-Net pass: audio ``embedding (N, E, 1, 1)`` + ``face (N, 6, 96, 96)`` -> ``(N, 3, 96, 96)``."""
        feats = []
        x = face
        for block in self.face_encoder_blocks:
            x = block(x)
            feats.append(x)
        x = embedding
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), feats.pop()), dim=1)
        return self.output_block(x)

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        batch = audio_sequences.size(0)
        folded = face_sequences.dim() > 4
        if folded:
            audio_sequences = fold_time(audio_sequences, 1)
            face_sequences = fold_time(face_sequences, 2)
        out = self.decode(self.audio_encoder(audio_sequences), face_sequences)
        if folded:
            out = torch.stack(torch.split(out, batch, dim=0), dim=2)
        return out


class Wav2LipDiscQual(nn.Module):
    """Visual-quality discriminator (official ``Wav2Lip_disc_qual``): reads the lower half of each
    face. ``forward(faces)`` with faces ``(B, 3, T, 96, 96)`` (or ``(N, 3, 96, 96)``) in [0, 1]
    -> ``(B*T, 1)`` probabilities of "real" (time-major order, as the generator's folding)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = [scaled(x, width) for x in (32, 64, 128, 256, 512)]
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(NoNormConv2d(3, c[0], 7, 1, 3)),
            nn.Sequential(NoNormConv2d(c[0], c[1], 5, (1, 2), 2), NoNormConv2d(c[1], c[1], 5, 1, 2)),
            nn.Sequential(NoNormConv2d(c[1], c[2], 5, 2, 2), NoNormConv2d(c[2], c[2], 5, 1, 2)),
            nn.Sequential(NoNormConv2d(c[2], c[3], 5, 2, 2), NoNormConv2d(c[3], c[3], 5, 1, 2)),
            nn.Sequential(NoNormConv2d(c[3], c[4], 3, 2, 1), NoNormConv2d(c[4], c[4], 3, 1, 1)),
            nn.Sequential(NoNormConv2d(c[4], c[4], 3, 2, 1), NoNormConv2d(c[4], c[4], 3, 1, 1)),
            nn.Sequential(NoNormConv2d(c[4], c[4], 3, 1, 0), NoNormConv2d(c[4], c[4], 1, 1, 0)),
        ])
        self.binary_pred = nn.Sequential(nn.Conv2d(c[4], 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, face_sequences: torch.Tensor) -> torch.Tensor:
        if face_sequences.dim() > 4:
            face_sequences = fold_time(face_sequences, 2)
        x = face_sequences[:, :, face_sequences.size(2) // 2:]  # lower half: 48 x 96
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).view(len(x), -1)

    def perceptual_loss(self, fake_faces: torch.Tensor) -> torch.Tensor:
        """Generator's adversarial term: ``BCE(D(fake), 1)`` (official ``perceptual_forward``)."""
        pred = self(fake_faces)
        return F.binary_cross_entropy(pred, torch.ones_like(pred))


class SyncNetColor(nn.Module):
    """The lip-sync expert (official ``SyncNet_color``). ``forward(audio, faces)``: audio
    ``(N, 1, 80, 16)``, faces ``(N, 15, 48, 96)`` (5 RGB lower-half frames stacked on channels,
    in [0, 1]) -> ``(audio_embedding, face_embedding)``, each ``(N, scaled(512))`` of unit L2 norm."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = [scaled(x, width) for x in (32, 64, 128, 256, 512)]
        self.face_encoder = nn.Sequential(
            Conv2d(15, c[0], 7, 1, 3),
            Conv2d(c[0], c[1], 5, (1, 2), 1), _res(c[1]), _res(c[1]),
            Conv2d(c[1], c[2], 3, 2, 1), _res(c[2]), _res(c[2]), _res(c[2]),
            Conv2d(c[2], c[3], 3, 2, 1), _res(c[3]), _res(c[3]),
            Conv2d(c[3], c[4], 3, 2, 1), _res(c[4]), _res(c[4]),
            Conv2d(c[4], c[4], 3, 2, 1), Conv2d(c[4], c[4], 3, 1, 0), Conv2d(c[4], c[4], 1, 1, 0),
        )
        self.audio_encoder = audio_encoder(width, syncnet=True)

    def forward(self, audio_sequences: torch.Tensor,
                face_sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        audio = self.audio_encoder(audio_sequences).flatten(1)
        face = self.face_encoder(face_sequences).flatten(1)
        return F.normalize(audio, p=2, dim=1), F.normalize(face, p=2, dim=1)


def cosine_loss(audio_embedding: torch.Tensor, face_embedding: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Official ``cosine_loss``: ``BCE(cos(a, v), y)`` with y = 1 in sync, 0 off sync. With ReLU
    outputs and unit norms the cosine lies in [0, 1]; it is clamped away from 0 and 1 so BCE stays
    finite (the official relies on BCE's own log clamp at -100)."""
    d = F.cosine_similarity(audio_embedding, face_embedding).clamp(1e-7, 1 - 1e-7)
    return F.binary_cross_entropy(d.unsqueeze(1), label.view(-1, 1).to(d.dtype))
