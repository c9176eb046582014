"""Visual front ends of the Conformer lip readers: ``(B, T, H, W)`` gray clips -> ``(B, T, C)``.

- TalkLip observer 2 (deep_avsr ``VisualFrontend``): Conv3d(1, 64, (5, 7, 7), stride (1, 2, 2),
  pad (2, 3, 3)) -> per frame BN2d(eps 1e-3, momentum 0.01) -> ReLU -> MaxPool2d(3, 2, 1) ->
  four ``ResNetLayer`` s (64, 128, 256, 512; stride 1, 2, 2, 2) -> average pool (4x4 at 112 input)
  -> 512. Keys ``frontend3D.{0,1}``, ``resnet.layerN.{conv1a,bn1a,conv2a,downsample,outbna,
  conv1b,bn1b,conv2b,outbnb}``.
- Auto-AVSR ``Conv3dResNet``: same Conv3d, BN3d -> SiLU -> MaxPool3d((1,3,3),(1,2,2),(0,1,1)),
  ResNet-18 of ``BasicBlock`` s with SiLU, global average pool. Keys ``frontend3D.{0,1}``,
  ``trunk.layerN.M.{conv1,bn1,conv2,bn2,downsample.{0,1}}``.
- AV-HuBERT ``ResEncoder`` (PReLU), reused from :mod:`tfgbench.readers.avhubert` (the module that
  :mod:`tfgbench.readers.pretrain` pre-trains), for our synthetic reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from tfgbench.readers.conformer import ConformerConfig


class DeepAVSRResLayer(nn.Module):
    """deep_avsr ``ResNetLayer``: two residual units; the BN+ReLU comes after each sum
    (``outbna``/``outbnb``). ``downsample`` exists even at stride 1 (unused there), as in the
    official layout."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()

        def bn() -> nn.BatchNorm2d:
            return nn.BatchNorm2d(cout, momentum=0.01, eps=0.001)

        self.stride = stride
        self.conv1a = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1a = bn()
        self.conv2a = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.downsample = nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.outbna = bn()
        self.conv1b = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn1b = bn()
        self.conv2b = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.outbnb = bn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2a(F.relu(self.bn1a(self.conv1a(x))))
        y = y + (x if self.stride == 1 else self.downsample(x))
        mid = y
        y = F.relu(self.outbna(y))
        y = self.conv2b(F.relu(self.bn1b(self.conv1b(y)))) + mid
        return F.relu(self.outbnb(y))


class DeepAVSRResNet(nn.Module):
    def __init__(self, ch: tuple[int, ...]) -> None:
        super().__init__()
        self.layer1 = DeepAVSRResLayer(ch[0], ch[1], 1)
        self.layer2 = DeepAVSRResLayer(ch[1], ch[2], 2)
        self.layer3 = DeepAVSRResLayer(ch[2], ch[3], 2)
        self.layer4 = DeepAVSRResLayer(ch[3], ch[4], 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        # The official AvgPool2d(4, stride 1) on the 4x4 map of a 112 input == global mean.
        return x.mean(dim=(2, 3))


class BasicBlock(nn.Module):
    """torchvision-style ResNet basic block with SiLU (Auto-AVSR ``relu_type="swish"``)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.silu(self.bn1(self.conv1(x)))))
        return F.silu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18Trunk(nn.Module):
    def __init__(self, ch: tuple[int, ...]) -> None:
        super().__init__()
        for i in range(4):
            cin, stride = (ch[0], 1) if i == 0 else (ch[i], 2)
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, ch[i + 1], stride),
                                                         BasicBlock(ch[i + 1], ch[i + 1], 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


class VisualFrontend(nn.Module):
    """Conv3d stem + per-frame 2D ResNet: ``(B, T, H, W)`` -> ``(B, T, C)``, zeros past each length.

    ``talklip``: stem BN2d(eps 1e-3) + ReLU + MaxPool2d(3, 2, 1) per frame, deep_avsr ResNet
    (``resnet.*``). ``auto-avsr``: BN3d + SiLU + MaxPool3d((1,3,3),(1,2,2),(0,1,1)), ``trunk.*``.
    Only the Conv3d sees neighbouring frames (zero padded in time, like the official batch of 1).
    """

    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        ch, self.layout = cfg.frontend_channels, cfg.layout
        conv = nn.Conv3d(1, ch[0], (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False)
        if cfg.frontend == "avhubert-resnet":
            from tfgbench.readers.avhubert import ResEncoder

            enc = ResEncoder(tuple(ch[1:]), relu_type="prelu")
            self.layout = "avhubert-resnet"  # 3D stem, then trunk, like auto-avsr's
            self.frontend3D, self.trunk = enc.frontend3D, enc.trunk
        elif cfg.layout == "talklip":
            self.frontend3D = nn.Sequential(conv, nn.BatchNorm2d(ch[0], momentum=0.01, eps=0.001),
                                            nn.ReLU(), nn.MaxPool2d(3, 2, 1))
            self.resnet = DeepAVSRResNet(ch)
        else:
            self.frontend3D = nn.Sequential(conv, nn.BatchNorm3d(ch[0]), nn.SiLU(),
                                            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
            self.trunk = ResNet18Trunk(ch)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        y = self.frontend3D[0](x.unsqueeze(1)).transpose(1, 2)  # (B, T, C, H', W')
        valid = torch.arange(t, device=x.device)[None, :] < lengths[:, None]
        frames = y[valid]  # (N, C, H', W'): only real frames go through the 2D part
        for m in self.frontend3D[1:]:
            # BN3d/MaxPool3d with a time kernel of 1 act per frame: same as their 2D forms.
            frames = m(frames.unsqueeze(2)).squeeze(2) if self.layout != "talklip" else m(frames)
        feats = (self.resnet if self.layout == "talklip" else self.trunk)(frames)
        out = feats.new_zeros(b, t, feats.shape[-1])
        out[valid] = feats
        return out
