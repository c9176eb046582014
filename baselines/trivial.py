"""The two bounding rows of every leaderboard.

* ``ground-truth``: returns the sample's own frames, the ceiling (PSNR is infinite per frame,
  SSIM is 1, LSE and WER are those of real video).
* ``static-frame``: repeats the reference frame for the whole clip, the floor: no lip motion.
"""

from __future__ import annotations

import numpy as np

from tfgbench.data.sample import Sample
from tfgbench.model import ModelInfo, TalkingFaceModel


class GroundTruth(TalkingFaceModel):
    name = "ground-truth"
    cache_outputs = False
    takes_checkpoint = False

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(training_data="none", licence="n/a", reference_frame="none")

    def generate(self, sample: Sample) -> np.ndarray:
        return sample.frames.copy()


class StaticFrame(TalkingFaceModel):
    """Repeats frame ``reference`` (setting, default 0: the first frame) ``T`` times."""

    name = "static-frame"
    cache_outputs = False
    takes_checkpoint = False

    def __init__(self, device: str = "cpu", checkpoint=None, reference: int = 0) -> None:
        super().__init__(device, checkpoint, reference=int(reference))

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(training_data="none", licence="n/a", reference_frame="first")

    def generate(self, sample: Sample) -> np.ndarray:
        index = min(self.settings["reference"], sample.num_frames - 1)
        return np.repeat(sample.frames[index:index + 1], sample.num_frames, axis=0)
