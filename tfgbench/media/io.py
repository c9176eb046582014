"""Read and write mp4 (H.264 + AAC) in memory with PyAV.

Audio and video stay aligned through a round trip to within a few samples: audio frames are
written with timestamps, so the AAC encoder's 1024 priming samples go into the file's edit list
instead of delaying the sound by 64 ms (1.6 video frames at 25 fps, exactly the kind of error a
lip-sync benchmark measures); on reading, timestamps place the audio on the video's clock and the
stream's declared duration trims the encoder's tail padding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tfgbench.data.sample import FPS, SAMPLE_RATE
from tfgbench.errors import MediaError
from tfgbench.media.resample import place_audio, resample_audio, resample_frame_times

Source = str | Path | bytes | BinaryIO

#: encoder presets: (codec, pixel format, options)
QUALITY = {
    # bit-exact RGB (H.264 High 4:4:4 Predictive): the generated-video cache uses this
    "lossless": ("libx264rgb", "rgb24", {"crf": "0", "preset": "veryfast"}),
    # YUV 4:4:4 at crf 0: near lossless, smaller, widely decodable by ffmpeg
    "near-lossless": ("libx264", "yuv444p", {"crf": "0", "preset": "veryfast"}),
    # what players expect (even width and height required)
    "standard": ("libx264", "yuv420p", {"crf": "18", "preset": "medium"}),
}
AUDIO_CHUNK = 1024  # AAC frame size


@dataclass
class Media:
    """Decoded media on the sample clock: frames ``(T, H, W, 3)`` uint8 RGB at 25 fps and mono
    float32 audio at 16 kHz (``None`` where the file has no such stream), plus the source rates and
    the display rotation that was applied (degrees counter-clockwise, from the display matrix)."""

    frames: np.ndarray | None
    audio: np.ndarray | None
    source_fps: float | None
    source_sample_rate: int | None
    rotation: int = 0


def _rotate(frames: np.ndarray, degrees: float, name: str) -> tuple[np.ndarray, int]:
    """Frames as a player shows them: the stream's display matrix (a phone's "rotate 90") applied
    with :func:`numpy.rot90`, counter-clockwise as ffmpeg's autorotate does."""
    quarter = round(degrees / 90)
    if abs(quarter * 90 - degrees) > 1e-3:
        raise MediaError(f"{name}: the display matrix rotates the video by {degrees:g} degrees; only multiples of "
                         "90 are supported")
    if quarter % 4 == 0:
        return frames, 0
    return np.ascontiguousarray(np.rot90(frames, k=quarter, axes=(1, 2))), (quarter % 4) * 90


def _name(src: Source) -> str:
    return str(src) if isinstance(src, (str, Path)) else "<in-memory video>"


def _open(src: Source, name: str):
    import av

    if isinstance(src, (bytes, bytearray)):
        src = io.BytesIO(src)
    elif isinstance(src, (str, Path)):
        if not Path(src).is_file():
            raise MediaError(f"{src}: no such file")
    try:
        return av.open(src if not isinstance(src, Path) else str(src))
    except av.FFmpegError as e:
        raise MediaError(f"{name}: cannot be opened as a video ({e})") from e


def _planar_float(frame) -> np.ndarray:
    """An audio frame as ``(channels, samples)`` float32 in [-1, 1]."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    data = data.reshape(channels, -1) if frame.format.is_planar else data.reshape(-1, channels).T
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    return data.astype(np.float32)


def read_video(src: Source, *, video: bool = True, audio: bool = True, name: str | None = None) -> Media:
    """Decode a video file (path, bytes or file object) to the sample contract.

    Frame rate and sample rate are converted by the rule in :mod:`tfgbench.media.resample`.
    Raises :class:`MediaError` naming the file (``name`` for bytes read elsewhere) for a corrupt or
    unreadable file or a video stream without frames.
    """
    import av

    name = name or _name(src)
    frames = samples = None
    source_fps = source_rate = None
    applied = 0
    try:
        with _open(src, name) as container:
            v_stream = container.streams.video[0] if container.streams.video and video else None
            a_stream = container.streams.audio[0] if container.streams.audio and audio else None
            if video and v_stream is None:
                raise MediaError(f"{name}: has no video stream")
            v_start = 0.0
            if v_stream is not None:
                images, times, rotation = [], [], 0.0
                for frame in container.decode(v_stream):
                    if not images:
                        rotation = float(getattr(frame, "rotation", 0) or 0)
                    images.append(frame.to_ndarray(format="rgb24"))
                    times.append(float(frame.time) if frame.time is not None else len(times) / FPS)
                if not images:
                    raise MediaError(f"{name}: the video stream has no frames")
                times_arr = np.asarray(times)
                order = np.argsort(times_arr, kind="stable")
                times_arr = times_arr[order]
                v_start = float(times_arr[0])
                rate = v_stream.average_rate or v_stream.guessed_rate
                source_fps = float(rate) if rate else None
                duration = None
                if source_fps and abs(source_fps - FPS) > 1e-6:
                    duration = len(images) / source_fps
                if source_fps and abs(source_fps - FPS) <= 1e-6:
                    frames = np.stack([images[i] for i in order])
                else:
                    idx = resample_frame_times(times_arr - v_start, FPS, duration)
                    frames = np.stack([images[order[i]] for i in idx])
                frames, applied = _rotate(frames, rotation, name)
            if a_stream is not None:
                container.seek(0)
                chunks, a_start = [], None
                for frame in container.decode(a_stream):
                    if a_start is None:
                        a_start = float(frame.time) if frame.time is not None else 0.0
                    chunks.append(_planar_float(frame))
                source_rate = a_stream.rate
                if chunks:
                    pcm = np.concatenate(chunks, axis=1)
                    if a_stream.duration is not None and a_stream.time_base is not None:
                        declared = int(round(float(a_stream.duration * a_stream.time_base) * source_rate))
                        pcm = pcm[:, :declared] if declared > 0 else pcm
                    mono = resample_audio(pcm, source_rate, SAMPLE_RATE)
                    samples = place_audio(mono, (a_start or 0.0) - v_start)
                else:
                    samples = np.zeros(0, dtype=np.float32)
    except av.FFmpegError as e:
        raise MediaError(f"{name}: corrupt or unreadable video ({e})") from e
    return Media(frames=frames, audio=samples, source_fps=source_fps, source_sample_rate=source_rate,
                 rotation=applied)


def write_video(
    dest: str | Path | BinaryIO | None,
    frames: np.ndarray,
    audio: np.ndarray | None = None,
    *,
    fps: int = FPS,
    sample_rate: int = SAMPLE_RATE,
    quality: str = "lossless",
    audio_bitrate: int = 128_000,
    fast_audio: bool = False,
    threads: int | None = None,
) -> bytes | None:
    """Encode ``frames`` ``(T, H, W, 3)`` uint8 RGB and optional mono float32 ``audio`` as an
    H.264/AAC mp4. ``dest=None`` returns the file's bytes. See :data:`QUALITY` for presets.
    ``fast_audio`` uses ffmpeg's fast AAC coder (5x faster, slightly lower quality) for files whose
    audio is not scored, such as the runner's cache. ``threads`` fixes x264's thread count (default:
    one per core); x264's bitstream depends on it, so byte-identical files on machines with
    different core counts need a fixed count (the synthetic corpus uses 1)."""
    import av

    if quality not in QUALITY:
        raise ValueError(f"quality must be one of {sorted(QUALITY)}, got {quality!r}")
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise MediaError(f"{dest}: cannot write frames of shape {frames.shape} and dtype {frames.dtype}")
    codec, pix_fmt, options = QUALITY[quality]
    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise MediaError(f"{dest}: quality 'standard' needs even width and height, got {width}x{height}")
    target = io.BytesIO() if dest is None else dest
    if isinstance(target, (str, Path)):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    target_arg = str(target) if isinstance(target, Path) else target
    with av.open(target_arg, "w", format="mp4") as container:
        v_stream = container.add_stream(codec, rate=fps)
        v_stream.width, v_stream.height, v_stream.pix_fmt = width, height, pix_fmt
        v_stream.options = dict(options, **({"threads": str(threads)} if threads else {}))
        a_stream = None
        if audio is not None:
            a_stream = container.add_stream("aac", rate=sample_rate)
            a_stream.layout = "mono"
            a_stream.bit_rate = audio_bitrate
            if fast_audio:
                a_stream.options = {"aac_coder": "fast"}
        for i, image in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            container.mux(v_stream.encode(vf))
        container.mux(v_stream.encode())
        if a_stream is not None:
            pcm = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
            for start in range(0, pcm.size, AUDIO_CHUNK):
                af = av.AudioFrame.from_ndarray(pcm[None, start:start + AUDIO_CHUNK].copy(),
                                                format="fltp", layout="mono")
                # the timestamp is what keeps the AAC priming delay out of the decoded audio
                af.sample_rate, af.pts, af.time_base = sample_rate, start, Fraction(1, sample_rate)
                container.mux(a_stream.encode(af))
            container.mux(a_stream.encode())
    return target.getvalue() if dest is None else None
