"""The ``talklip`` model plugin: TalkLip inference as the official ``inf_test.py`` does it.

Per sample: face boxes from the dataset (``sample.boxes``) or detected
(:func:`tfgbench.data.boxes.detect_face_boxes`); every frame's box cropped to 96x96
(:func:`tfgbench.face.crops.crop_faces`); the lower half zeroed; the reference is frame 0 for every
frame; AV-HuBERT audio features of the sample's audio, centre-aligned to the frames; the generated
96x96 faces resized back into the boxes (:func:`tfgbench.face.crops.paste_faces`). Pixels outside
the boxes are the sample's own.

Weights: the shipped tiny checkpoint (``baselines/talklip/weights/talklip-tiny.safetensors``,
trained on the synthetic corpus) by default; ``--checkpoint FILE`` takes a tfgbench safetensors or
an official TalkLip ``.pth`` (sizes read from the file: AV-HuBERT Base at the official size; BGR
channel order, as the official code reads frames with OpenCV).

SyncTalklip's plugin subclasses :class:`TalkLipModel`, changing ``name``, ``default_checkpoint``
and, if needed, :meth:`TalkLipModel.load_generator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tfgbench.data.sample import Sample
from tfgbench.errors import MissingResourceError
from tfgbench.model import ModelInfo, TalkingFaceModel

WEIGHTS = Path(__file__).resolve().parent / "weights"


class TalkLipModel(TalkingFaceModel):
    """TalkLip generator plugin (see the module docstring). Settings: ``chunk`` (frames per
    network pass; does not change the output)."""

    name = "talklip"
    batch_size = 4
    default_checkpoint: ClassVar[Path] = WEIGHTS / "talklip-tiny.safetensors"
    official_licence: ClassVar[str] = "TalkLip code and official weights: see github.com/Sxjdwang/TalkLip"

    def __init__(self, device: str = "cpu", checkpoint: str | Path | None = None, chunk: int = 128) -> None:
        super().__init__(device, checkpoint)
        self.chunk = int(chunk)
        self._model: Any = None
        self._config: Any = None
        self._meta: dict[str, Any] = {}
        self._sha256: str | None = None

    # ------------------------------------------------------------------ weights

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint if self.checkpoint is not None else self.default_checkpoint

    def load_generator(self, path: Path) -> tuple[Any, Any, dict[str, Any]]:
        """``(generator, TalkLipConfig, metadata)`` from ``path`` (override for other generators)."""
        from baselines.talklip.checkpoint import load_talklip

        return load_talklip(path)

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        path = self.checkpoint_path
        if not path.is_file():
            raise MissingResourceError(
                f"{self.name}: checkpoint {path} not found" + (
                    "" if self.checkpoint is not None else
                    " (the shipped tiny checkpoint is missing from this installation; pass --checkpoint FILE)"))
        model, config, meta = self.load_generator(path)
        self._model = model.to(self.device).eval()
        if self.device == "cpu":
            self._model.use_channels_last()
        self._config, self._meta = config, meta

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            from tfgbench.paths import sha256_file

            path = self.checkpoint_path
            if not path.is_file():
                raise MissingResourceError(f"{self.name}: checkpoint {path} not found")
            self._sha256 = sha256_file(path)
        return self._sha256

    @property
    def info(self) -> ModelInfo:
        self._ensure_loaded()
        trained = str(self._meta.get("training_data", "unknown"))
        licence = "MIT (tfgbench-trained weights)" if self._meta.get("command") else self.official_licence
        return ModelInfo(checkpoint_sha256=self.sha256, training_data=trained, licence=licence,
                         reference_frame="first")

    # ------------------------------------------------------------------ generation

    def generate(self, sample: Sample) -> np.ndarray:
        return self.generate_batch([sample])[0]

    def generate_batch(self, samples: Sequence[Sample]) -> list[np.ndarray]:
        import torch

        from baselines.talklip.data import audio_features, generate_clips
        from tfgbench.data.boxes import detect_face_boxes
        from tfgbench.face.crops import crop_faces, paste_faces

        self._ensure_loaded()
        boxes = [s.boxes if s.boxes is not None else detect_face_boxes(s.frames) for s in samples]
        faces = [crop_faces(s.frames, b, 96, s.where()) for s, b in zip(samples, boxes)]
        fbank = [audio_features(s.audio, s.num_frames, align="centre") for s in samples]
        with torch.no_grad():
            out = generate_clips(self._model, faces, fbank, bgr=self._config.channel_order == "bgr", chunk=self.chunk)
        results = []
        for s, b, g in zip(samples, boxes, out):
            generated = (g.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            results.append(paste_faces(s.frames, generated, b, where=s.where()))
        return results
