"""Media I/O: A/V alignment through a real mp4 round trip, rate conversion, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from tfgbench.errors import MediaError
from tfgbench.media.io import QUALITY, read_video, write_video
from tfgbench.media.resample import resample_frame_times


def click_and_flash(num_frames: int = 75, at_frame: int = 40, sr: int = 16000, fps: int = 25):
    frames = np.full((num_frames, 64, 64, 3), 20, np.uint8)
    frames[at_frame] = 255
    audio = np.zeros(int(num_frames * sr / fps), np.float32)
    start = int(at_frame * sr / fps)
    audio[start:start + 16] = 0.9
    return frames, audio


def onset_seconds(audio: np.ndarray, sr: int = 16000) -> float:
    return float(np.argmax(np.abs(audio) > 0.3)) / sr


@pytest.mark.parametrize("quality", sorted(QUALITY))
def test_click_and_flash_stay_aligned(quality):
    frames, audio = click_and_flash()
    media = read_video(write_video(None, frames, audio, quality=quality))
    flash = int(np.argmax(media.frames.reshape(len(media.frames), -1).mean(axis=1)))
    assert flash == 40
    # the click must come back within 10 ms of the flash (AAC priming would put it ~64 ms late)
    assert abs(onset_seconds(media.audio) - flash / 25) < 0.010
    assert len(media.frames) == 75
    assert abs(len(media.audio) - len(audio)) < 16


def test_lossless_preset_is_bit_exact():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 33, 47, 3), dtype=np.uint8)  # odd sizes too
    media = read_video(write_video(None, frames, None, quality="lossless"))
    assert media.audio is None
    np.testing.assert_array_equal(media.frames, frames)


def test_30fps_and_44k_stereo_are_converted_by_the_rule():
    # 30 fps source with a flash at 1.0 s and a stereo 44.1 kHz click at 1.0 s
    import io
    from fractions import Fraction

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        v = c.add_stream("libx264", rate=30)
        v.width = v.height = 32
        v.pix_fmt = "yuv444p"
        a = c.add_stream("aac", rate=44100)
        a.layout = "stereo"
        for i in range(60):
            img = np.full((32, 32, 3), 255 if i == 30 else 0, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 30)
            c.mux(v.encode(f))
        c.mux(v.encode())
        pcm = np.zeros((2, 88200), np.float32)
        pcm[:, 44100:44100 + 40] = 0.9
        for s in range(0, pcm.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(pcm[:, s:s + 1024].copy(), format="fltp", layout="stereo")
            f.sample_rate, f.pts, f.time_base = 44100, s, Fraction(1, 44100)
            c.mux(a.encode(f))
        c.mux(a.encode())
    media = read_video(buf.getvalue())
    assert media.source_fps == pytest.approx(30)
    assert media.source_sample_rate == 44100
    assert len(media.frames) == 50  # 2 s at 25 fps
    assert int(np.argmax(media.frames.reshape(50, -1).mean(axis=1))) == 25  # 1.0 s
    assert abs(onset_seconds(media.audio) - 1.0) < 0.010
    assert media.audio.ndim == 1 and media.audio.dtype == np.float32


def test_frame_time_rule_sample_and_hold():
    times = np.arange(6) / 30.0  # 30 fps, 0.2 s
    # targets 0, .04, .08, .12, .16 s -> last frame shown at or before each
    assert resample_frame_times(times).tolist() == [0, 1, 2, 3, 4]
    times50 = np.arange(10) / 50.0
    assert resample_frame_times(times50).tolist() == [0, 2, 4, 6, 8]


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(MediaError, match="broken.mp4"):
        read_video(bad)
    with pytest.raises(MediaError, match="no such file"):
        read_video(tmp_path / "missing.mp4")
