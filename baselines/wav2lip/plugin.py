"""tfgbench plugins ``wav2lip`` and ``wav2lip-gan``.

Default weights: the tiny checkpoints shipped in ``baselines/wav2lip/weights/`` (trained on the
synthetic corpus by ``python -m baselines.wav2lip.train``; their metadata holds the command).
``--checkpoint FILE`` takes a user's official ``wav2lip.pth`` / ``wav2lip_gan.pth`` in any
container (training dict with ``state_dict``, ``module.`` prefixes, bare state dict, TorchScript
archive), sized from its tensor shapes, or one of our safetensors files.

Settings (``--model-arg``): ``batch_size`` (network batch, default 128), ``pads`` (top, bottom,
left, right; default the official ``[0, 10, 0, 0]``), ``smooth`` (5-frame box smoothing, default
true). Inference follows the official script; see :mod:`baselines.wav2lip.inference` for what
happens when the audio gives more or fewer mel chunks than the clip has frames.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tfgbench.data.sample import Sample, check_frames
from tfgbench.model import ModelInfo, TalkingFaceModel

WEIGHTS = Path(__file__).resolve().parent / "weights"
OFFICIAL_LICENCE = "Wav2Lip weights: research / non-commercial use only (Rudrabha/Wav2Lip licence)"
#: shortest audio giving one mel chunk: 1 + N // 200 >= 16 mel frames
MIN_AUDIO_SAMPLES = 15 * 200
OURS_LICENCE = "MIT (weights trained by tfgbench; Wav2Lip architecture by Prajwal et al. 2020)"


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header (no torch needed)."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return header.get("__metadata__", {}) or {}


class Wav2LipModel(TalkingFaceModel):
    """Wav2Lip (Prajwal et al. 2020): the official generator and inference procedure."""

    name = "wav2lip"
    batch_size = 4
    default_weights: ClassVar[str] = "wav2lip-tiny.safetensors"

    def __init__(self, device: str = "cpu", checkpoint: str | Path | None = None, batch_size: int = 128,
                 pads: Sequence[int] = (0, 10, 0, 0), smooth: bool = True) -> None:
        if len(pads) != 4:
            from tfgbench.errors import TfgbenchError

            raise TfgbenchError(f"wav2lip: pads must be 4 integers (top, bottom, left, right), got {pads!r}")
        super().__init__(device, checkpoint, batch_size=int(batch_size), pads=[int(p) for p in pads],
                         smooth=bool(smooth))
        self.weights_path = Path(checkpoint) if checkpoint is not None else WEIGHTS / self.default_weights
        if not self.weights_path.is_file():
            from tfgbench.errors import MissingResourceError

            raise MissingResourceError(f"{self.name}: checkpoint not found: {self.weights_path}")
        self._net: Any = None
        self._sha: str | None = None

    @property
    def ours(self) -> bool:
        return self.weights_path.suffix == ".safetensors"

    @property
    def info(self) -> ModelInfo:
        if self._sha is None:
            from tfgbench.paths import sha256_file

            self._sha = sha256_file(self.weights_path)
        if self.ours:
            meta = safetensors_metadata(self.weights_path)
            data = json.loads(meta.get("training_data", '"synthetic train split (tfgbench)"'))
            return ModelInfo(checkpoint_sha256=self._sha, training_data=data, licence=OURS_LICENCE,
                             reference_frame="same")
        return ModelInfo(checkpoint_sha256=self._sha, training_data="LRS2 (official)", licence=OFFICIAL_LICENCE,
                         reference_frame="same")

    def network(self) -> Any:
        """The loaded generator (built on first use; width detected from the checkpoint's shapes)."""
        if self._net is None:
            from baselines.wav2lip.checkpoint import (
                detect_width,
                match_state_dict,
                read_state_dict,
                strip_common_prefix,
            )
            from baselines.wav2lip.model import Wav2Lip

            anchor = "face_encoder_blocks.0.0.conv_block.0.weight"
            state = strip_common_prefix(read_state_dict(self.weights_path)[0], anchor)
            net = Wav2Lip(detect_width(state, anchor, 16))
            match_state_dict(net, state, self.weights_path)
            self._net = net.to(self.device).eval()
        return self._net

    def generate(self, sample: Sample) -> np.ndarray:
        return self.generate_batch([sample])[0]

    def generate_batch(self, samples: Sequence[Sample]) -> list[np.ndarray]:
        from baselines.wav2lip.inference import lipsync_batch
        from tfgbench.errors import SampleError

        for x in samples:
            if len(x.audio) < MIN_AUDIO_SAMPLES:
                raise SampleError(f"{x.where()}: {len(x.audio)} audio samples; Wav2Lip needs at least "
                                  f"{MIN_AUDIO_SAMPLES} (one 16-column mel chunk, 0.19 s at 16 kHz)")
        s = self.settings
        outs = lipsync_batch(self.network(), [(x.frames, x.audio, x.boxes) for x in samples], device=self.device,
                             batch_size=s["batch_size"], pads=tuple(s["pads"]), smooth=s["smooth"])
        return [check_frames(o, x.where(), like=x.frames) for o, x in zip(outs, samples)]


class Wav2LipGANModel(Wav2LipModel):
    """Wav2Lip + visual-quality GAN (the official ``wav2lip_gan.pth`` recipe)."""

    name = "wav2lip-gan"
    default_weights: ClassVar[str] = "wav2lip-gan-tiny.safetensors"
