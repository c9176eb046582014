"""The official LSE scripts' JPEG round trip, in memory.

syncnet_python / Wav2Lip extract frames with ``ffmpeg -y -i VIDEO -threads 1 -f image2
DIR/%06d.jpg`` (no ``-qscale``) and read them back with ``cv2.imread`` (BGR). That is:

1. ffmpeg's auto-inserted scaler converts the decoded frames to the mjpeg encoder's full-range
   format (``yuv420p`` -> ``yuvj420p``, ``yuv444p`` -> ``yuvj444p``). For same-size planar YUV this
   is libswscale's range conversion on 15-bit intermediates, reproduced bit for bit by
   :func:`to_full_range` (checked against ffmpeg 5.1's output):
   ``Y' = clip(((min(Y<<7, 30189) * 19077 - 39057361) >> 14) + 64 >> 7)``,
   ``C' = clip(((min(C<<7, 30775) * 4663 - 9289992) >> 12) + 64 >> 7)``.
2. the mjpeg encoder with its defaults: ``bit_rate`` 200 kb/s at 25 fps with libavcodec's rate
   control (quality varies per frame and depends on the previous frames), one thread. The
   encoder here is PyAV's bundled libavcodec, opened with the same settings; fed the same planes
   it writes the same DCT data as the ffmpeg CLI (only the ``Lavc`` version comment differs).
   Measured against Debian's ffmpeg 5.1: pixel-identical on short clips; on a 100-frame clip the
   rate control chose another quantiser on 2 frames (ffmpeg versions differ among themselves
   the same way), which moved LSE-D by 4e-4 and left the offset unchanged.
3. ``cv2.imdecode`` = ``cv2.imread`` of the file (libjpeg, BGR uint8).

Frames that are not planar YUV (RGB arrays from a model) first go to ``yuv420p`` with
libswscale's BT.601 limited-range matrix, i.e. what writing them to a standard H.264 mp4 does,
then follow the same path. With ``qscale`` set (``-qscale:v 2`` in ``run_pipeline.py``) the
quality is fixed instead of rate-controlled.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

FULL_RANGE = {"yuv420p": "yuvj420p", "yuv422p": "yuvj422p", "yuv444p": "yuvj444p"}
_QP2LAMBDA = 118  # FF_QP2LAMBDA: global_quality is a quantiser scale times this


def to_full_range(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """libswscale's limited -> full range conversion of 8-bit planes (see module docstring)."""
    def lum(p: np.ndarray) -> np.ndarray:
        x = (np.minimum(p.astype(np.int32) << 7, 30189) * 19077 - 39057361) >> 14
        return np.clip((x + 64) >> 7, 0, 255).astype(np.uint8)

    def chroma(p: np.ndarray) -> np.ndarray:
        x = (np.minimum(p.astype(np.int32) << 7, 30775) * 4663 - 9289992) >> 12
        return np.clip((x + 64) >> 7, 0, 255).astype(np.uint8)

    return lum(y), chroma(u), chroma(v)


def _planes(frame) -> list[np.ndarray]:
    """The Y, U, V planes of a planar 8-bit av.VideoFrame (line padding removed)."""
    out = []
    for j, plane in enumerate(frame.planes):
        arr = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        out.append(arr[: plane.height, : plane.width] if j else arr[: frame.height, : frame.width])
    return out


def _fill(frame, planes: list[np.ndarray]) -> None:
    for plane, arr in zip(frame.planes, planes, strict=True):
        buf = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        buf[: arr.shape[0], : arr.shape[1]] = arr


class MjpegRoundTrip:
    """Stateful JPEG round trip of one video (the rate control carries over between frames).

    Args:
        qscale: fixed quantiser (``-qscale:v``); ``None`` = the encoder's default rate control.
        fps: frame rate the encoder is told (rate control budget = bit_rate / fps per frame).
    """

    def __init__(self, qscale: int | None = None, fps: int = 25) -> None:
        self.qscale, self.fps = qscale, fps
        self._enc = None
        self._fmt = None
        self._index = 0

    def _open(self, width: int, height: int, fmt: str) -> None:
        import av

        enc = av.CodecContext.create("mjpeg", "w")
        enc.width, enc.height, enc.pix_fmt = width, height, fmt
        enc.time_base, enc.framerate = Fraction(1, self.fps), Fraction(self.fps)
        enc.bit_rate = 200_000  # libavcodec's default, spelled out
        enc.thread_count = 1
        if self.qscale is not None:
            enc.qscale = True  # AV_CODEC_FLAG_QSCALE
            enc.global_quality = self.qscale * _QP2LAMBDA
        enc.open()
        self._enc, self._fmt = enc, fmt

    def _encode(self, frame) -> bytes:
        frame.pts, frame.time_base = self._index, Fraction(1, self.fps)
        self._index += 1
        packets = self._enc.encode(frame)
        if len(packets) != 1:  # mjpeg is intra-only: one packet per frame, no delay
            raise RuntimeError(f"mjpeg encoder returned {len(packets)} packets for one frame")
        return bytes(packets[0])

    def av_frame(self, frame, rgb_as_file: bool = True) -> np.ndarray:
        """Round-trip one decoded ``av.VideoFrame``; returns BGR uint8 ``(H, W, 3)``.

        Planar YUV goes through the exact range conversion. Other formats: with
        ``rgb_as_file`` (frames decoded from an RGB file) the ffmpeg CLI's choice, ``yuvj444p`` by
        libswscale (close to, not bit-exact with, older ffmpeg versions); otherwise ``yuv420p``
        first (see :meth:`rgb`).
        """
        import av
        import cv2

        src = frame.format.name
        if src in FULL_RANGE:
            full = FULL_RANGE[src]
        elif rgb_as_file:
            frame, src, full = frame.reformat(format="yuvj444p"), "yuvj444p", "yuvj444p"
        else:
            frame, src = frame.reformat(format="yuv420p"), "yuv420p"
            full = FULL_RANGE[src]
        if self._enc is None:
            self._open(frame.width, frame.height, full)
        elif self._fmt != full or (self._enc.width, self._enc.height) != (frame.width, frame.height):
            raise ValueError("all frames of a video must have the same size and pixel format")
        if src == full:
            out = frame
        else:
            out = av.VideoFrame(frame.width, frame.height, full)
            _fill(out, list(to_full_range(*_planes(frame))))
        data = self._encode(out)
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)

    def rgb(self, image: np.ndarray) -> np.ndarray:
        """Round-trip one RGB uint8 ``(H, W, 3)`` array (via yuv420p); returns BGR uint8."""
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        return self.av_frame(frame, rgb_as_file=False)


def roundtrip_rgb(frames: Iterable[np.ndarray], qscale: int | None = None) -> np.ndarray:
    """JPEG round trip of RGB frames ``(T, H, W, 3)`` -> BGR uint8 ``(T, H, W, 3)``."""
    rt = MjpegRoundTrip(qscale)
    return np.stack([rt.rgb(f) for f in frames])


def decode_roundtrip(path: str | Path, qscale: int | None = None) -> Iterator[np.ndarray]:
    """Decode a video file and JPEG round-trip its frames in their native pixel format (as the
    ffmpeg CLI does); yields BGR uint8 frames in presentation order."""
    import av

    rt = MjpegRoundTrip(qscale)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            yield rt.av_frame(frame)
