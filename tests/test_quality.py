"""PSNR/SSIM protocols against scikit-image and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tfgbench.data.sample import Sample
from tfgbench.errors import SampleError
from tfgbench.metrics.base import aggregate
from tfgbench.metrics.quality import PSNR, SSIM, psnr


def make_sample(frames: np.ndarray, box=(8, 4, 40, 44)) -> Sample:
    boxes = np.tile(np.array(box), (len(frames), 1))
    return Sample("s", frames, np.zeros(640 * len(frames), np.float32), boxes=boxes)


def test_psnr_matches_scikit_image():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    assert psnr(a, a) == 100.0  # TalkLip's convention for identical crops


def test_uint8_wraparound_hand_computed():
    a = np.array([[[10, 200, 0]]], np.uint8)
    b = np.array([[[20, 100, 255]]], np.uint8)
    # uint8: a-b = (246, 100, 1); squared mod 256 = (246^2 % 256, 100^2 % 256, 1) = (100, 16, 1)
    mse_wrapped = (100 + 16 + 1) / 3
    assert psnr(a, b, wraparound=True) == pytest.approx(20 * math.log10(255 / math.sqrt(mse_wrapped)))
    mse_true = (100 + 100**2 + 255**2) / 3
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / math.sqrt(mse_true)))


def test_protocol_crops_resizes_and_pools_frames():
    import cv2

    rng = np.random.default_rng(2)
    gt = rng.integers(0, 256, (3, 60, 50, 3), dtype=np.uint8)
    gen = np.clip(gt.astype(int) + rng.integers(-30, 31, gt.shape), 0, 255).astype(np.uint8)
    sample = make_sample(gt)
    # independent reference: TalkLip's procedure spelled out (BGR crop [y1:y2, x1:x2], resize 96)
    ref_p, ref_s = [], []
    for g, s in zip(gt, gen):
        cg = cv2.resize(np.ascontiguousarray(g[4:44, 8:40, ::-1]), (96, 96))
        cs = cv2.resize(np.ascontiguousarray(s[4:44, 8:40, ::-1]), (96, 96))
        ref_p.append(peak_signal_noise_ratio(cg, cs, data_range=255))
        ref_s.append(structural_similarity(cg, cs, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False, data_range=255))
    p = PSNR().score(sample, gen)["psnr"]
    s = SSIM().score(sample, gen)["ssim"]
    assert p.den == 3 and p.value == pytest.approx(np.mean(ref_p), abs=1e-9)
    assert s.den == 3 and s.value == pytest.approx(np.mean(ref_s), abs=1e-9)


def test_dataset_value_is_frame_pooled_not_mean_of_videos():
    measure = PSNR.protocols[0].measures[0]
    # video A: 1 frame at 10 dB; video B: 3 frames at 30 dB -> pooled (10 + 90) / 4 = 25, not 20
    rows = [(10.0, 10.0, 1.0), (30.0, 90.0, 3.0)]
    assert aggregate(measure, rows) == 25.0


def test_uses_shorter_length_and_rejects_size_mismatch():
    gt = np.zeros((5, 48, 48, 3), np.uint8)
    sample = make_sample(gt)
    assert PSNR().score(sample, gt[:3])["psnr"].den == 3
    with pytest.raises(SampleError, match="generated frames"):
        PSNR().score(sample, np.zeros((5, 40, 48, 3), np.uint8))
    with pytest.raises(SampleError, match="outside"):
        PSNR().score(make_sample(gt, box=(60, 60, 80, 80)), gt)
