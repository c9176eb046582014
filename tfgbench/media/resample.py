"""Frame-rate and sample-rate conversion to the sample contract (25 fps, 16 kHz mono).

The rule, applied once when a dataset loads a file:

* Video: output frame ``k`` shows the source frame on screen at time ``k / 25`` s (measured
  from the first video frame): the last source frame whose presentation time is at or before
  it ("sample and hold", what a player shows). Frames of a 25 fps source pass unchanged.
* Audio: channels are averaged to mono, then resampled with soxr (``HQ``) to 16 kHz. The audio
  is placed on the video's clock: samples before the first video frame are dropped and a late
  audio start is padded with zeros, so audio sample ``n`` belongs to time ``n / 16000`` s of
  frame 0's clock.
"""

from __future__ import annotations

import numpy as np

from tfgbench.data.sample import FPS, SAMPLE_RATE


def resample_frame_times(times: np.ndarray, fps: float = FPS, duration: float | None = None) -> np.ndarray:
    """Indices of the source frames shown at ``k / fps`` for ``k = 0..K-1``.

    Args:
        times: presentation times (s) of the source frames, ascending, first at 0.
        fps: target rate.
        duration: source duration in seconds (default: last time + median frame interval).

    Returns:
        ``(K,)`` int indices into the source frames, ``K = round(duration * fps)``.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    if duration is None:
        step = float(np.median(np.diff(times))) if times.size > 1 else 1.0 / fps
        duration = float(times[-1] - times[0]) + step
    count = max(1, int(round(duration * fps)))
    targets = times[0] + np.arange(count) / fps
    # a frame whose time is within 1 ms after the target counts as on screen (timestamp rounding)
    idx = np.searchsorted(times, targets + 1e-3, side="right") - 1
    return np.clip(idx, 0, times.size - 1)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """``(channels, N)`` or ``(N,)`` -> ``(N,)`` float32, channels averaged."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=0) if audio.ndim == 2 else audio


def resample_audio(audio: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float audio from ``rate`` to ``target`` Hz with soxr (HQ)."""
    audio = to_mono(audio)
    if rate == target or audio.size == 0:
        return audio.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(audio, rate, target, quality="HQ").astype(np.float32)


def place_audio(audio: np.ndarray, offset_seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Put audio that starts ``offset_seconds`` after the first video frame on the video clock
    (negative: it starts before; those samples are dropped)."""
    shift = int(round(offset_seconds * rate))
    if shift > 0:
        return np.concatenate([np.zeros(shift, dtype=np.float32), audio])
    return audio[-shift:] if shift < 0 else audio
