"""PSNR and SSIM of generated frames against ground truth, as TalkLip's evaluation computes them.

TalkLip ``evaluation/visual_quality.py``: for each frame ``i < min(len(gt), len(gen))``, crop
both frames with the same face box ``[y1:y2, x1:x2]`` (BGR uint8), resize each crop to 96x96 with
``cv2.resize`` (bilinear), then

* PSNR = ``20 * log10(255 / sqrt(MSE))``, 100 when MSE is 0;
* SSIM = ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)`` over the 3 channels;

and the dataset value is the mean over *all frames of all videos* (frame-pooled), so each sample
stores ``num = sum of frame values`` and ``den = frames``.

TalkLip computes the MSE on uint8 arrays, so ``a - b`` and its square wrap modulo 256.
``psnr/talklip`` computes it correctly in floating point; ``psnr/talklip-uint8`` reproduces the
wrap-around for comparison with published numbers.

Boxes come from the sample (``sample.boxes``): the synthetic corpus knows them exactly; other
datasets read TalkLip-style ``.npy`` box files or detect faces (see the dataset's docs). Boxes are
clipped to the frame.
"""

from __future__ import annotations

import math

import numpy as np

from tfgbench.data.sample import Sample
from tfgbench.errors import SampleError
from tfgbench.metrics.base import Measure, Metric, ProtocolSpec, Score

CROP_SIZE = 96
_QUALITY_SETTINGS = {
    "crop": "sample face box, same box on both videos, clipped to the frame",
    "resize": "cv2.resize to 96x96, INTER_LINEAR, BGR uint8",
    "frames": "min(len(gt), len(generated))",
    "aggregation": "frame-pooled mean over all frames of all videos",
}


def psnr(a: np.ndarray, b: np.ndarray, wraparound: bool = False) -> float:
    """PSNR in dB between uint8 images with peak 255; 100 for identical images.

    ``wraparound=True`` reproduces TalkLip's uint8 arithmetic: ``mean(((a - b) % 256) ** 2 % 256)``.
    """
    if wraparound:
        mse = float(np.mean((a - b) ** 2))  # uint8 in, uint8 arithmetic: wraps as TalkLip's does
    else:
        mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return 100.0
    return 20 * math.log10(255.0 / math.sqrt(mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """TalkLip's SSIM of two ``(H, W, 3)`` uint8 images (Gaussian window, sigma 1.5)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=255))


def face_crops(frames: np.ndarray, boxes: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """``(T, size, size, 3)`` BGR uint8 crops of RGB ``frames`` at ``boxes`` ``(T, 4)`` x1,y1,x2,y2."""
    import cv2

    height, width = frames.shape[1:3]
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for i, (frame, box) in enumerate(zip(frames, boxes)):
        x1, y1, x2, y2 = (int(v) for v in box)
        x1, x2 = max(0, x1), min(width, x2)
        y1, y2 = max(0, y1), min(height, y2)
        if x2 <= x1 or y2 <= y1:
            raise SampleError(f"frame {i}: face box {tuple(int(v) for v in box)} lies outside "
                              f"the {width}x{height} frame")
        crop = np.ascontiguousarray(frame[y1:y2, x1:x2, ::-1])
        out[i] = cv2.resize(crop, (size, size))
    return out


def _paired_crops(sample: Sample, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if sample.boxes is None:
        raise SampleError(f"{sample.where()}: PSNR/SSIM need face boxes and the dataset gave none")
    if frames.shape[1:] != sample.frames.shape[1:]:
        raise SampleError(f"{sample.where()}: generated frames are {frames.shape[2]}x{frames.shape[1]}, "
                          f"ground truth is {sample.frames.shape[2]}x{sample.frames.shape[1]}")
    n = min(len(frames), sample.num_frames)
    try:
        return face_crops(sample.frames[:n], sample.boxes[:n]), face_crops(frames[:n], sample.boxes[:n])
    except SampleError as e:
        raise SampleError(f"{sample.where()}: {e}") from None


class PSNR(Metric):
    """Frame-pooled PSNR (dB) of 96x96 face crops, higher is better."""

    family = "psnr"
    default_protocol = "psnr/talklip"
    protocols = (
        ProtocolSpec("psnr/talklip", (Measure("psnr", "PSNR", True, pooled=True),),
                     "TalkLip face-crop PSNR, computed in floating point (no uint8 wrap-around)",
                     {**_QUALITY_SETTINGS, "mse": "float64"}, frozenset({"reference", "boxes"})),
        ProtocolSpec("psnr/talklip-uint8", (Measure("psnr", "PSNR", True, pooled=True),),
                     "TalkLip face-crop PSNR with its uint8 wrap-around, to compare with published numbers",
                     {**_QUALITY_SETTINGS, "mse": "uint8 arithmetic (wraps modulo 256)"},
                     frozenset({"reference", "boxes"})),
    )

    def score(self, sample: Sample, frames: np.ndarray) -> dict[str, Score]:
        gt, gen = _paired_crops(sample, frames)
        wrap = self.spec.name == "psnr/talklip-uint8"
        values = [psnr(a, b, wraparound=wrap) for a, b in zip(gt, gen)]
        return {"psnr": Score.ratio(sum(values), len(values))}


class SSIM(Metric):
    """Frame-pooled SSIM of 96x96 face crops, higher is better."""

    family = "ssim"
    default_protocol = "ssim/talklip"
    protocols = (
        ProtocolSpec("ssim/talklip", (Measure("ssim", "SSIM", True, pooled=True, digits=3),),
                     "TalkLip face-crop SSIM (scikit-image, Gaussian sigma 1.5, population covariance)",
                     {**_QUALITY_SETTINGS, "ssim": "gaussian_weights, sigma 1.5, "
                      "use_sample_covariance False, data_range 255, mean over 3 channels"},
                     frozenset({"reference", "boxes"})),
    )

    def score(self, sample: Sample, frames: np.ndarray) -> dict[str, Score]:
        gt, gen = _paired_crops(sample, frames)
        values = [ssim(a, b) for a, b in zip(gt, gen)]
        return {"ssim": Score.ratio(sum(values), len(values))}
