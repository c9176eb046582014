"""SyncNet with the official layout (joonson/syncnet_python ``SyncNetModel.S``) and its fast
inference path.

Layout (``num_layers_in_fc_layers=1024``): four ``nn.Sequential`` attributes whose indices count
ReLU and pooling positions, so the official ``syncnet_v2.model`` (a flat name -> tensor dict with
keys ``netcnnaud.*``, ``netfcaud.*``, ``netcnnlip.*``, ``netfclip.*``) loads key for key:

* ``netcnnaud``: MFCC windows ``(N, 1, 13, 20)`` -> ``(N, 512, 1, 1)``; conv at 0, 4, 8, 11, 14, 18.
* ``netcnnlip``: 5-frame BGR windows ``(N, 3, 5, 224, 224)`` -> ``(N, 512, 1, 1, 1)``; conv3d at
  0, 4, 8, 11, 14, 18; only the first conv looks across time (kernel 5), the rest are per frame.
* ``netfcaud`` / ``netfclip``: Linear(512, 512) . BatchNorm1d . ReLU . Linear(512, 1024).

The same code builds smaller evaluators (:class:`SyncNetConfig`: channel widths, input size,
unit-length embeddings) such as the synthetic corpus's evaluator.

Fast path (:meth:`SyncNetS.embed_video`): the official code cuts a clip into ``T - 5`` overlapping
5-frame windows and runs each through the lip tower. Because every layer after the first is
per-frame, the first Conv3d over window ``v`` equals a Conv2d over the 15 channels of frames
``v..v+4``, and the rest run as Conv2d on per-window feature maps (BatchNorm folded into the
convolution). That is the same arithmetic with no 5x copy of the clip and oneDNN 2-D kernels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from tfgbench.errors import TfgbenchError

SYNCNET_ORIGIN = ("http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model "
                  "(joonson/syncnet_python, download_model.sh)")


@dataclass(frozen=True)
class SyncNetConfig:
    """Widths and input size of a SyncNet; :meth:`official` is syncnet_python's ``S``.

    Attributes:
        aud: output channels of the six audio convolutions.
        lip: output channels of the six lip convolutions.
        fc_hidden: width of the hidden fc layer; ``embed``: embedding size.
        image_size: square input size of the lip tower (224 for the official network).
        in_channels: colour channels of the lip input (3: BGR).
        normalize: L2-normalise embeddings (our own evaluators; distances then lie in [0, 2]).
    """

    aud: tuple[int, ...] = (64, 192, 384, 256, 256, 512)
    lip: tuple[int, ...] = (96, 256, 256, 256, 256, 512)
    fc_hidden: int = 512
    embed: int = 1024
    image_size: int = 224
    in_channels: int = 3
    normalize: bool = False

    @staticmethod
    def official() -> SyncNetConfig:
        return SyncNetConfig()

    @staticmethod
    def tiny(image_size: int = 64) -> SyncNetConfig:
        """~1 M parameters: trains on 2 CPU cores in minutes (the synthetic evaluator)."""
        return SyncNetConfig(aud=(32, 64, 96, 96, 96, 128), lip=(32, 64, 96, 96, 96, 128),
                             fc_hidden=128, embed=128, image_size=image_size, normalize=True)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> SyncNetConfig:
        d = dict(d)
        d["aud"], d["lip"] = tuple(d["aud"]), tuple(d["lip"])
        return SyncNetConfig(**d)


def _spatial(v: int | tuple[int, ...]) -> tuple[int, int]:
    """The (H, W) part of a 3-D pooling argument."""
    return (v, v) if isinstance(v, int) else tuple(v[1:])


def _lip_final_kernel(size: int) -> int:
    """Spatial size reaching the last lip convolution (6 for 224 input)."""
    size = (size - 7) // 2 + 1          # conv 7x7 stride 2
    size = (size - 3) // 2 + 1          # maxpool 3 stride 2
    size = (size + 2 - 5) // 2 + 1      # conv 5x5 stride 2 pad 1
    size = (size + 2 - 3) // 2 + 1      # maxpool 3 stride 2 pad 1
    size = (size - 3) // 2 + 1          # maxpool 3 stride 2
    if size < 1:
        raise ValueError("image_size too small for the SyncNet lip tower")
    return size


class SyncNetS(nn.Module):
    """Two-tower SyncNet (audio: MFCC windows, lip: 5-frame windows) with official key names."""

    def __init__(self, config: SyncNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SyncNetConfig.official()
        a, v = cfg.aud, cfg.lip
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, a[0], 3, 1, 1), nn.BatchNorm2d(a[0]), nn.ReLU(inplace=True),
            nn.MaxPool2d(1, 1),
            nn.Conv2d(a[0], a[1], 3, 1, 1), nn.BatchNorm2d(a[1]), nn.ReLU(inplace=True),
            nn.MaxPool2d((3, 3), (1, 2)),
            nn.Conv2d(a[1], a[2], 3, padding=1), nn.BatchNorm2d(a[2]), nn.ReLU(inplace=True),
            nn.Conv2d(a[2], a[3], 3, padding=1), nn.BatchNorm2d(a[3]), nn.ReLU(inplace=True),
            nn.Conv2d(a[3], a[4], 3, padding=1), nn.BatchNorm2d(a[4]), nn.ReLU(inplace=True),
            nn.MaxPool2d((3, 3), (2, 2)),
            nn.Conv2d(a[4], a[5], (5, 4)), nn.BatchNorm2d(a[5]), nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(nn.Linear(a[5], cfg.fc_hidden), nn.BatchNorm1d(cfg.fc_hidden),
                                      nn.ReLU(), nn.Linear(cfg.fc_hidden, cfg.embed))
        self.netfclip = nn.Sequential(nn.Linear(v[5], cfg.fc_hidden), nn.BatchNorm1d(cfg.fc_hidden),
                                      nn.ReLU(), nn.Linear(cfg.fc_hidden, cfg.embed))
        k = _lip_final_kernel(cfg.image_size)
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(cfg.in_channels, v[0], (5, 7, 7), (1, 2, 2), 0), nn.BatchNorm3d(v[0]),
            nn.ReLU(inplace=True), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(v[0], v[1], (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.BatchNorm3d(v[1]),
            nn.ReLU(inplace=True), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            nn.Conv3d(v[1], v[2], (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(v[2]), nn.ReLU(inplace=True),
            nn.Conv3d(v[2], v[3], (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(v[3]), nn.ReLU(inplace=True),
            nn.Conv3d(v[3], v[4], (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(v[4]), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(v[4], v[5], (1, k, k), padding=0), nn.BatchNorm3d(v[5]), nn.ReLU(inplace=True),
        )
        self._fused: list | None = None

    # ---- the official forward passes (training and the window-by-window reference) ----
    def _head(self, fc: nn.Sequential, mid: torch.Tensor) -> torch.Tensor:
        out = fc(mid.reshape(mid.shape[0], -1))
        return F.normalize(out, dim=1) if self.config.normalize else out

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 13, 20)`` MFCC windows -> ``(N, embed)``."""
        return self._head(self.netfcaud, self.netcnnaud(x))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, 5, S, S)`` frame windows (BGR 0-255 for the official net) -> ``(N, embed)``."""
        return self._head(self.netfclip, self.netcnnlip(x))

    def train(self, mode: bool = True) -> SyncNetS:
        self._fused = None  # weights may change: rebuild the folded inference path
        return super().train(mode)

    # ---- fast inference over a whole clip ----
    def _fuse(self) -> list:
        """Conv2d weights with BatchNorm folded in: ``[(w, b, stride, padding, pool_after)]``."""
        layers = list(self.netcnnlip)
        fused = []
        for i, layer in enumerate(layers):
            if not isinstance(layer, nn.Conv3d):
                continue
            bn = layers[i + 1]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            w = layer.weight * scale[:, None, None, None, None]
            b = (layer.bias - bn.running_mean) * scale + bn.bias
            w2 = w.permute(0, 2, 1, 3, 4).reshape(w.shape[0], -1, w.shape[3], w.shape[4])
            pool = layers[i + 3] if i + 3 < len(layers) and isinstance(layers[i + 3], nn.MaxPool3d) else None
            pool_args = tuple(_spatial(getattr(pool, a)) for a in ("kernel_size", "stride", "padding")) \
                if pool else None
            fused.append((w2.detach().contiguous(memory_format=torch.channels_last), b.detach(),
                          layer.stride[1:], layer.padding[1:], pool_args))
        return fused

    @torch.no_grad()
    def embed_video(self, clip: torch.Tensor, num_windows: int, chunk: int = 32) -> torch.Tensor:
        """Lip embeddings of every 5-frame window of a clip in one batched pass.

        Args:
            clip: ``(T, C, S, S)`` float frames (BGR 0-255 for the official net).
            num_windows: windows to embed (window ``v`` covers frames ``v..v+4``); ``<= T - 4``.
            chunk: windows per oneDNN call (bounds memory: the 15-channel input is built per chunk).

        Returns:
            ``(num_windows, embed)``, equal to ``forward_lip`` on each window.
        """
        return self.embed_videos([clip], [num_windows], chunk)[0]

    @torch.no_grad()
    def embed_videos(self, clips: list[torch.Tensor], nums: list[int], chunk: int = 32) -> list[torch.Tensor]:
        """:meth:`embed_video` of several clips, whose windows share network passes of ``chunk``
        windows (one clip gives exactly :meth:`embed_video`'s passes)."""
        if self.training:
            raise RuntimeError("embed_video is an inference path: call .eval() first")
        if self._fused is None:
            self._fused = self._fuse()
        outs: list[torch.Tensor] = []
        pending: list[torch.Tensor] = []
        size = 0
        for clip, n in zip(clips, nums, strict=True):
            start = 0
            while start < n:
                stop = min(n, start + chunk - size)
                # (n, 5, C, S, S) -> (n, 5*C, S, S): channel index = frame * C + colour (as in _fuse)
                x = clip.unfold(0, 5, 1)[start:stop]              # (n, C, S, S, 5) view
                pending.append(x.permute(0, 4, 1, 2, 3).reshape(stop - start, -1, clip.shape[2], clip.shape[3]))
                size, start = size + stop - start, stop
                if size == chunk:
                    outs.append(self._embed_windows(pending))
                    pending, size = [], 0
        if pending:
            outs.append(self._embed_windows(pending))
        if not outs:
            return [c.new_zeros(0, self.config.embed) for c in clips]
        return list(torch.cat(outs).split(list(nums)))

    def _embed_windows(self, pieces: list[torch.Tensor]) -> torch.Tensor:
        x = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        x = x.contiguous(memory_format=torch.channels_last)
        for w, b, stride, padding, pool in self._fused:
            x = F.relu(F.conv2d(x, w, b, stride, padding), inplace=True)  # no extra buffer per layer
            if pool is not None:
                x = F.max_pool2d(x, *pool)
        return self._head(self.netfclip, x)


def official_state_keys(with_num_batches_tracked: bool = True) -> list[str]:
    """The key names of ``syncnet_v2.model``."""
    keys = list(SyncNetS().state_dict())
    return keys if with_num_batches_tracked else [k for k in keys if not k.endswith("num_batches_tracked")]


def load_syncnet_v2(path: str | Path, device: str = "cpu") -> SyncNetS:
    """Load the official ``syncnet_v2.model`` (flat name -> tensor dict) safely.

    ``torch.load(weights_only=True)`` (no code execution). Every weight and BatchNorm statistic of
    ``S`` must be present with its official shape; ``num_batches_tracked`` entries are optional
    (files saved by old PyTorch have none; they do not affect evaluation). Anything else is an
    error naming the file.
    """
    path = Path(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file or a pickle that needs code execution
        raise TfgbenchError(f"{path}: cannot be read as a SyncNet weights file with "
                            f"weights_only=True ({type(e).__name__}: {e})") from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise TfgbenchError(f"{path}: expected a name -> tensor dict (syncnet_v2.model format), "
                            f"got {type(state).__name__}")
    model = SyncNetS(SyncNetConfig.official())
    own = model.state_dict()
    unexpected = sorted(k for k in state if k not in own)
    required = [k for k in own if not k.endswith("num_batches_tracked")]
    missing = sorted(k for k in required if k not in state)
    if unexpected or missing:
        raise TfgbenchError(f"{path}: not a syncnet_v2.model layout; missing keys {missing[:5]}"
                            f"{'...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}"
                            f"{'...' if len(unexpected) > 5 else ''}")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(own[k].shape):
            raise TfgbenchError(f"{path}: {k} has shape {tuple(getattr(v, 'shape', ()))}, "
                                f"expected {tuple(own[k].shape)}")
        own[k].copy_(v)
    return model.to(device).eval()


def load_synthetic(path: str | Path, device: str = "cpu") -> SyncNetS:
    """Load a tfgbench SyncNet checkpoint (safetensors, config in metadata), e.g. the shipped
    synthetic-corpus evaluator ``tfgbench/weights/syncnet-synthetic.safetensors``."""
    from tfgbench.checkpoints import load_checkpoint
    from tfgbench.errors import MissingResourceError

    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(
            f"synthetic SyncNet checkpoint not found: {path}. Retrain it with "
            "`python -m tfgbench.metrics.lse.train_synthetic` (see its --help).")
    state, config, _ = load_checkpoint(path)
    model = SyncNetS(SyncNetConfig.from_dict(config["syncnet"]))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TfgbenchError(f"{path}: checkpoint does not match its config (missing {missing[:4]}, "
                            f"unexpected {unexpected[:4]})")
    return model.to(device).eval()
