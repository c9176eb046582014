"""An independent re-statement of the official LSE procedure, for tests only.

Written from the published procedure (joonson/syncnet_python ``SyncNetInstance.evaluate`` with
Wav2Lip's 224 resize), deliberately slow and literal: the lip tower runs window by window in
batches of 20 as ``Conv3d`` over ``(N, 3, 5, 224, 224)``, distances are computed one window at a
time. It shares no code with tfgbench's scorer.
"""

from __future__ import annotations

import math
import subprocess
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn


def official_s() -> nn.Module:
    """syncnet_python's ``S`` layer list (same Sequential indices, so the same key names)."""
    m = nn.Module()
    m.netcnnaud = nn.Sequential(
        nn.Conv2d(1, 64, (3, 3), (1, 1), (1, 1)), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d((1, 1), (1, 1)),
        nn.Conv2d(64, 192, (3, 3), (1, 1), (1, 1)), nn.BatchNorm2d(192), nn.ReLU(), nn.MaxPool2d((3, 3), (1, 2)),
        nn.Conv2d(192, 384, (3, 3), padding=(1, 1)), nn.BatchNorm2d(384), nn.ReLU(),
        nn.Conv2d(384, 256, (3, 3), padding=(1, 1)), nn.BatchNorm2d(256), nn.ReLU(),
        nn.Conv2d(256, 256, (3, 3), padding=(1, 1)), nn.BatchNorm2d(256), nn.ReLU(), nn.MaxPool2d((3, 3), (2, 2)),
        nn.Conv2d(256, 512, (5, 4), padding=(0, 0)), nn.BatchNorm2d(512), nn.ReLU())
    m.netfcaud = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 1024))
    m.netfclip = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 1024))
    m.netcnnlip = nn.Sequential(
        nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2), 0), nn.BatchNorm3d(96), nn.ReLU(), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.BatchNorm3d(256), nn.ReLU(),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(256), nn.ReLU(),
        nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(256), nn.ReLU(),
        nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(256), nn.ReLU(),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        nn.Conv3d(256, 512, (1, 6, 6), padding=0), nn.BatchNorm3d(512), nn.ReLU())
    return m


def make_random_syncnet_file(path: Path, seed: int = 0, num_batches_tracked: bool = False) -> nn.Module:
    """Random weights in the ``syncnet_v2.model`` container (a flat name -> tensor dict written by
    ``torch.save``). BatchNorm statistics are set from one batch of plausible input so activations
    stay in range; the last linear layers are scaled so distances are of the official size (~10)."""
    torch.manual_seed(seed)
    m = official_s()
    for bn in [x for x in m.modules() if isinstance(x, nn.modules.batchnorm._BatchNorm)]:
        bn.momentum = None  # cumulative average: one batch sets the statistics
        nn.init.uniform_(bn.weight, 0.8, 1.2)
        nn.init.uniform_(bn.bias, -0.1, 0.1)
    m.train()
    with torch.no_grad():
        m.netfclip(m.netcnnlip(torch.rand(6, 3, 5, 224, 224) * 255).flatten(1))
        m.netfcaud(m.netcnnaud(torch.randn(64, 1, 13, 20) * 10).flatten(1))
        for fc in (m.netfcaud[3], m.netfclip[3]):
            fc.weight.mul_(0.15)
    m.eval()
    state = OrderedDict((k, v.clone()) for k, v in m.state_dict().items()
                        if num_batches_tracked or not k.endswith("num_batches_tracked"))
    torch.save(state, str(path))
    return m


def calc_pdist(feat1: torch.Tensor, feat2: torch.Tensor, vshift: int) -> list[torch.Tensor]:
    win_size = vshift * 2 + 1
    feat2p = torch.nn.functional.pad(feat2, (0, 0, vshift, vshift))
    return [torch.nn.functional.pairwise_distance(feat1[[i], :].repeat(win_size, 1), feat2p[i:i + win_size, :])
            for i in range(len(feat1))]


@torch.no_grad()
def reference_evaluate(model: nn.Module, images_bgr: list[np.ndarray], audio_int16: np.ndarray,
                       vshift: int = 15, batch_size: int = 20) -> tuple[int, float, float]:
    """``(offset, conf = LSE-C, minval = LSE-D)`` exactly as the official evaluate()."""
    import cv2
    import python_speech_features

    images = [cv2.resize(im, (224, 224)) for im in images_bgr]
    im = np.stack(images, axis=3)[None]
    im = np.transpose(im, (0, 3, 4, 1, 2))
    imtv = torch.from_numpy(im.astype(float)).float()
    mfcc = np.stack([np.array(i) for i in zip(*python_speech_features.mfcc(audio_int16, 16000))])
    cct = torch.from_numpy(mfcc[None, None].astype(float)).float()
    min_length = min(len(images), math.floor(len(audio_int16) / 640))
    lastframe = min_length - 5
    im_feat, cc_feat = [], []
    for i in range(0, lastframe, batch_size):
        frames = range(i, min(lastframe, i + batch_size))
        im_in = torch.cat([imtv[:, :, v:v + 5, :, :] for v in frames], 0)
        im_feat.append(model.netfclip(model.netcnnlip(im_in).view(len(frames), -1)))
        cc_in = torch.cat([cct[:, :, :, v * 4:v * 4 + 20] for v in frames], 0)
        cc_feat.append(model.netfcaud(model.netcnnaud(cc_in).view(len(frames), -1)))
    dists = calc_pdist(torch.cat(im_feat, 0), torch.cat(cc_feat, 0), vshift)
    mdist = torch.mean(torch.stack(dists, 1), 1)
    minval, minidx = torch.min(mdist, 0)
    return int(vshift - minidx), float(torch.median(mdist) - minval), float(minval)


def ffmpeg_extract(video: Path, tmp: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """The official extraction with the ffmpeg CLI: JPEG frames (defaults) read by cv2.imread,
    and a 16 kHz int16 wav read by scipy."""
    import cv2
    from scipy.io import wavfile

    tmp.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-threads", "1", "-f", "image2",
                    str(tmp / "%06d.jpg")], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-async", "1", "-ac", "1", "-vn",
                    "-acodec", "pcm_s16le", "-ar", "16000", str(tmp / "audio.wav")], check=True)
    images = [cv2.imread(str(f)) for f in sorted(tmp.glob("*.jpg"))]
    _, audio = wavfile.read(str(tmp / "audio.wav"))
    return images, audio


# ----------------------------------------------------------------------------------------------
# tests: tfgbench against the reference above, on the same frames
# ----------------------------------------------------------------------------------------------
import shutil  # noqa: E402

import pytest  # noqa: E402

FRAMES = 24


def make_clip(num_frames: int = FRAMES, size: int = 160, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Moving, textured RGB frames and speech-like audio (noise bursts and tones)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    frames = []
    for t in range(num_frames):
        r = 128 + 100 * np.sin(xx / 9 + t / 3) * np.cos(yy / 13)
        g = 128 + 90 * np.cos((xx + yy) / 17 - t / 5)
        b = 128 + 80 * np.sin(yy / 7 + t / 4)
        mouth = ((xx - 80) ** 2 / 30 ** 2 + (yy - 115) ** 2 / (4 + 12 * abs(np.sin(t / 2))) ** 2) < 1
        img = np.stack([r, g, b], -1) + rng.normal(0, 6, (size, size, 3))
        img[mouth] = 20
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    n = num_frames * 640
    tt = np.arange(n) / 16000
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * tt)
    audio = env * (0.3 * np.sin(2 * np.pi * 180 * tt) + 0.1 * rng.normal(0, 1, n))
    return np.stack(frames), np.clip(audio, -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tfgbench.media.io import write_video

    tmp = tmp_path_factory.mktemp("lse")
    weights = tmp / "syncnet_v2.model"
    model = make_random_syncnet_file(weights)
    frames, audio = make_clip()
    video = tmp / "clip.mp4"
    video.write_bytes(write_video(None, frames, audio, quality="standard"))
    return model, weights, video, tmp


def _assert_same(ours, ref):
    offset, conf, minval = ref
    assert ours.offset == offset
    assert ours.lse_c == pytest.approx(conf, abs=1e-4)
    assert ours.lse_d == pytest.approx(minval, abs=1e-4)


def test_nojpeg_matches_reference(setup):
    from tfgbench.media.io import read_video
    from tfgbench.metrics.lse.scorer import SyncScorer

    model, weights, video, _ = setup
    media = read_video(video)
    audio_int16 = np.clip(np.rint(media.audio.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
    ref = reference_evaluate(model, [f[..., ::-1] for f in media.frames], audio_int16)
    ours = SyncScorer("lse/wav2lip-nojpeg", weights=weights).score_file(video)
    _assert_same(ours, ref)
    assert ours.num_windows == FRAMES - 5
    # the distance scale is that of the official network (a real check that weights were loaded)
    assert 1.0 < ours.lse_d < 100.0


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI (the official extraction)")
def test_wav2lip_matches_official_ffmpeg_pipeline(setup):
    """End to end: the official ffmpeg JPEG + wav extraction vs tfgbench's in-memory round trip."""
    from tfgbench.metrics.lse.scorer import SyncScorer

    model, weights, video, tmp = setup
    images, audio = ffmpeg_extract(video, tmp / "official")
    ref = reference_evaluate(model, images, audio)
    ours = SyncScorer("lse/wav2lip", weights=weights).score_file(video)
    _assert_same(ours, ref)


def test_wav2lip_arrays_match_reference_on_same_frames(setup):
    """Metric path (RGB arrays in memory): reference fed tfgbench's JPEG'd frames."""
    from tfgbench.media.io import read_video
    from tfgbench.metrics.lse.jpeg import roundtrip_rgb
    from tfgbench.metrics.lse.scorer import SyncScorer

    model, weights, video, _ = setup
    media = read_video(video)
    audio_int16 = np.clip(np.rint(media.audio.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
    jpeg = roundtrip_rgb(media.frames)
    assert not np.array_equal(jpeg, media.frames[..., ::-1])  # the round trip does change pixels
    ref = reference_evaluate(model, list(jpeg), audio_int16)
    ours = SyncScorer("lse/wav2lip", weights=weights).score_frames(media.frames, media.audio)
    _assert_same(ours, ref)


def test_delayed_audio_matches_reference(setup):
    """Audio delayed by 3 frames (zeros in front): same numbers as the reference."""
    from tfgbench.media.io import read_video
    from tfgbench.metrics.lse.scorer import SyncScorer

    model, weights, video, _ = setup
    media = read_video(video)
    shifted = np.concatenate([np.zeros(3 * 640, np.float32), media.audio])[: len(media.audio)]
    audio_int16 = np.clip(np.rint(shifted.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
    ref = reference_evaluate(model, [f[..., ::-1] for f in media.frames], audio_int16)
    ours = SyncScorer("lse/wav2lip-nojpeg", weights=weights).score_frames(media.frames, shifted)
    _assert_same(ours, ref)




@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")
@pytest.mark.parametrize("quality,qscale", [("standard", None), ("standard", 2), ("near-lossless", None)])
def test_jpeg_round_trip_is_pixel_identical_to_ffmpeg(tmp_path, quality, qscale):
    """yuv420p and yuv444p inputs, default rate control and -qscale:v 2: same decoded pixels."""
    import subprocess

    import cv2

    from tfgbench.media.io import write_video
    from tfgbench.metrics.lse.jpeg import decode_roundtrip

    frames, audio = make_clip(12, size=96, seed=4)
    video = tmp_path / "v.mp4"
    video.write_bytes(write_video(None, frames, audio, quality=quality))
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(video)]
    cmd += ["-qscale:v", str(qscale)] if qscale else []
    subprocess.run(cmd + ["-threads", "1", "-f", "image2", str(tmp_path / "%06d.jpg")], check=True)
    official = [cv2.imread(str(f)) for f in sorted(tmp_path.glob("*.jpg"))]
    ours = list(decode_roundtrip(video, qscale=qscale))
    assert len(ours) == len(official) == 12
    for a, b in zip(ours, official, strict=True):
        assert np.array_equal(a, b)
