"""S3FD face detector (syncnet_python ``detectors/s3fd``), loading the user's ``sfd_face.pth``.

Layout (key names of the official state dict): ``vgg.{0,2,5,7,10,12,14,17,19,21,24,26,28,31,33}``
(VGG-16 convs; 31 is a dilated 3x3 1024 conv, 33 a 1x1), ``L2Norm3_3/4_3/5_3.weight`` (scales 10,
8, 5), ``extras.{0..3}``, ``loc.{0..5}`` and ``conf.{0..5}`` (the first conf head has 4 outputs:
max-out background over 3). Priors: min sizes 16..512, steps 4..128, variances 0.1 / 0.2.

Detection as ``S3FD.detect_faces(rgb, conf_th=0.9, scales=[0.25])`` in run_pipeline: resize by the
scale (bilinear), subtract the BGR mean (104, 117, 123) channel-wise, RGB into the network,
softmax, decode, keep scores > conf_th, NMS 0.3 then NMS 0.1, boxes in original pixels. Keeping
only scores > conf_th before the first NMS gives the same boxes as the official 0.05 threshold
(greedy NMS removes a box only through a higher-scoring one). Frames are batched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tfgbench.errors import TfgbenchError

_VGG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512, "M"]
_MIN_SIZES = (16, 32, 64, 128, 256, 512)
_STEPS = (4, 8, 16, 32, 64, 128)
_MEAN_RGB = (123.0, 117.0, 104.0)


class L2Norm(nn.Module):
    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight[None, :, None, None] * x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)


class S3FDNet(nn.Module):
    """The network; ``forward`` returns ``(loc (B, P, 4), scores (B, P))``."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG:
            if v in ("M", "C"):
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=(v == "C")))
            else:
                layers += [nn.Conv2d(cin, v, 3, 1, 1), nn.ReLU(inplace=True)]
                cin = v
        layers += [nn.Conv2d(512, 1024, 3, 1, 6, dilation=6), nn.ReLU(inplace=True),
                   nn.Conv2d(1024, 1024, 1, 1), nn.ReLU(inplace=True)]
        self.vgg = nn.ModuleList(layers)
        self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3 = L2Norm(256, 10), L2Norm(512, 8), L2Norm(512, 5)
        self.extras = nn.ModuleList([nn.Conv2d(1024, 256, 1), nn.Conv2d(256, 512, 3, 2, 1),
                                     nn.Conv2d(512, 128, 1), nn.Conv2d(128, 256, 3, 2, 1)])
        chans = (256, 512, 512, 1024, 512, 256)
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, 1, 1) for c in chans])
        self.conf = nn.ModuleList([nn.Conv2d(c, 4 if i == 0 else 2, 3, 1, 1) for i, c in enumerate(chans)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        sources = []
        for k, layer in enumerate(self.vgg):
            x = layer(x)
            if k == 15:
                sources.append(self.L2Norm3_3(x))
            elif k == 22:
                sources.append(self.L2Norm4_3(x))
            elif k == 29:
                sources.append(self.L2Norm5_3(x))
        sources.append(x)
        for k, layer in enumerate(self.extras):
            x = F.relu(layer(x))
            if k % 2 == 1:
                sources.append(x)
        locs, confs, shapes = [], [], []
        for i, s in enumerate(sources):
            c = self.conf[i](s)
            if i == 0:  # max-out background
                c = torch.cat([c[:, :3].max(1, keepdim=True)[0], c[:, 3:]], 1)
            locs.append(self.loc[i](s).permute(0, 2, 3, 1).reshape(len(s), -1, 4))
            confs.append(c.permute(0, 2, 3, 1).reshape(len(s), -1, 2))
            shapes.append((s.shape[2], s.shape[3]))
        scores = torch.softmax(torch.cat(confs, 1), -1)[..., 1]
        return torch.cat(locs, 1), scores, shapes


def priors(image_hw: tuple[int, int], shapes: list[tuple[int, int]]) -> torch.Tensor:
    """``(P, 4)`` prior boxes ``cx, cy, w, h`` relative to the image (official PriorBox)."""
    imh, imw = image_hw
    out = []
    for (fh, fw), step, size in zip(shapes, _STEPS, _MIN_SIZES):  # noqa: B905 (official: 6 maps)
        i, j = torch.meshgrid(torch.arange(fh), torch.arange(fw), indexing="ij")
        cx = (j.reshape(-1) + 0.5) / (imw / step)
        cy = (i.reshape(-1) + 0.5) / (imh / step)
        out.append(torch.stack([cx, cy, torch.full_like(cx, size / imw), torch.full_like(cy, size / imh)], 1))
    return torch.cat(out).float()


def nms(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> np.ndarray:
    """Greedy NMS (areas without +1, as the official ``nms_``); indices of kept boxes."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]))
        inter = w * h
        order = order[1:][inter / (areas[i] + areas[order[1:]] - inter) <= thresh]
    return np.asarray(keep, dtype=np.intp)


def load_s3fd(path: str | Path) -> S3FDNet:
    """Load ``sfd_face.pth`` (``weights_only=True``); keys and shapes must match exactly."""
    path = Path(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise TfgbenchError(f"{path}: cannot be read as S3FD weights with weights_only=True "
                            f"({type(e).__name__}: {e})") from e
    net = S3FDNet()
    own = net.state_dict()
    if not isinstance(state, dict) or set(state) != set(own):
        keys = set(state) if isinstance(state, dict) else set()
        raise TfgbenchError(f"{path}: not an sfd_face.pth layout (missing {sorted(set(own) - keys)[:4]}, "
                            f"unexpected {sorted(keys - set(own))[:4]})")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise TfgbenchError(f"{path}: {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
    net.load_state_dict(state)
    return net.eval()


class S3FDDetector:
    """Batched S3FD with run_pipeline's settings (``conf_th`` 0.9, ``scale`` 0.25)."""

    name = "s3fd"

    def __init__(self, weights: str | Path, device: str = "cpu", conf_th: float = 0.9,
                 scale: float = 0.25, batch: int = 16) -> None:
        from tfgbench.paths import sha256_file

        self.net = load_s3fd(weights).to(device)
        self.sha256 = sha256_file(weights)
        self.device, self.conf_th, self.scale, self.batch = device, conf_th, scale, batch

    @torch.no_grad()
    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        import cv2

        h, w = frames.shape[1:3]
        out: list[np.ndarray] = []
        prior = None
        for start in range(0, len(frames), self.batch):
            imgs = np.stack([cv2.resize(f, (0, 0), fx=self.scale, fy=self.scale,
                                        interpolation=cv2.INTER_LINEAR) for f in frames[start:start + self.batch]])
            x = torch.from_numpy(imgs).float() - torch.tensor(_MEAN_RGB)
            loc, scores, shapes = self.net(x.permute(0, 3, 1, 2).contiguous().to(self.device))
            if prior is None:
                prior = priors(imgs.shape[1:3], shapes).to(self.device)
            for b in range(len(imgs)):
                keep = scores[b] > self.conf_th
                if not bool(keep.any()):
                    out.append(np.zeros((0, 5)))
                    continue
                p, lo = prior[keep], loc[b][keep]
                centre = p[:, :2] + lo[:, :2] * 0.1 * p[:, 2:]
                size = p[:, 2:] * torch.exp(lo[:, 2:] * 0.2)
                boxes = torch.cat([centre - size / 2, centre + size / 2], 1).cpu().double().numpy()
                boxes *= np.array([w, h, w, h])
                s = scores[b][keep].cpu().double().numpy()
                k = nms(boxes, s, 0.3)
                boxes, s = boxes[k], s[k]
                k = nms(boxes, s, 0.1)
                out.append(np.column_stack([boxes[k], s[k]]))
        return out
