"""How generated frames reach the metrics (``tfgbench run --delivery``), part of every result's key.

* ``lossless`` (default): the frames the model returned, bit for bit (the video cache stores them
  losslessly).
* ``official``: the frames after the lossy encode that the official inference scripts put between
  the generator and the evaluation scripts, which score the mp4 those scripts wrote. Wav2Lip's
  ``inference.py`` and TalkLip's ``inf_test.py`` (SyncTalklip's is TalkLip's) both

  1. write the frames with OpenCV, ``cv2.VideoWriter(tmp.avi, fourcc('DIVX'), 25, (W, H))``: MPEG-4
     Part 2 (FFmpeg's ``mpeg4`` encoder), yuv420p, OpenCV's default rate control (about
     1.5 x 25 x W x H bit/s, GOP 12);
  2. mux it with the audio through ``ffmpeg -y -i audio.wav -i tmp.avi -strict -2 -q:v 1 out.mp4``:
     the video is re-encoded to H.264 with FFmpeg's libx264 defaults (CRF 23, preset medium,
     yuv420p); ``-q:v 1`` is ignored by libx264 (it logs "-qscale is ignored, -crf is recommended").

  Here step 1 is OpenCV's own writer and step 2 PyAV's libx264 with those settings, both in a
  temporary folder / in memory, then decoded back to RGB. x264 runs on one thread so that the
  result does not depend on the machine's core count (FFmpeg's default thread count changes the
  bitstream slightly). The audio is not re-encoded: every protocol reads the sample's own audio.
  Frames with an odd width or height are an error row: libx264 refuses odd sizes in yuv420p, so
  the official scripts produce no video for them.

``tfgbench score`` rows carry delivery ``file``: the videos are scored as they were given.
"""

from __future__ import annotations

import io
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from tfgbench.errors import SampleError, TfgbenchError

DELIVERIES = ("lossless", "official")

#: the encode of ``official`` delivery, recorded in the README and the run's settings
OFFICIAL_SETTINGS = {
    "stage 1": "cv2.VideoWriter fourcc DIVX (FFmpeg mpeg4), 25 fps, yuv420p, OpenCV default bit rate",
    "stage 2": "libx264 crf 23, preset medium, yuv420p, 1 thread (ffmpeg CLI defaults; -q:v 1 ignored)",
    "source": "Wav2Lip inference.py; TalkLip inf_test.py",
}


def check_delivery(name: str) -> str:
    if name not in DELIVERIES:
        raise TfgbenchError(f"--delivery must be one of {', '.join(DELIVERIES)}, got {name!r}")
    return name


def _write_divx(frames: np.ndarray, path: Path) -> None:
    import cv2

    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"DIVX"), 25, (width, height))
    if not writer.isOpened():
        raise TfgbenchError("--delivery official: this OpenCV build cannot write DIVX .avi files "
                            "(opencv-python-headless from PyPI can)")
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))  # the official scripts hold BGR frames
    finally:
        writer.release()


def _reencode_h264(avi: Path, width: int, height: int) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(str(avi)) as src, av.open(out, "w", format="mp4") as dst:
        stream = dst.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "medium", "threads": "1"}
        for i, frame in enumerate(src.decode(src.streams.video[0])):
            frame = frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
            frame.pts, frame.time_base = i, Fraction(1, 25)
            dst.mux(stream.encode(frame))
        dst.mux(stream.encode())
    return out.getvalue()


def official_roundtrip(frames: np.ndarray, where: str = "clip") -> np.ndarray:
    """``frames`` ``(T, H, W, 3)`` uint8 RGB after the official scripts' two encodes (see module
    docstring), decoded back to RGB; same shape. Raises :class:`SampleError` for odd sizes."""
    from tfgbench.media.io import read_video

    t, height, width = frames.shape[:3]
    if height % 2 or width % 2:
        raise SampleError(f"{where}: --delivery official needs an even frame width and height (libx264 "
                          f"yuv420p, as the official scripts encode), got {width}x{height}")
    with tempfile.TemporaryDirectory(prefix="tfgbench-delivery-") as tmp:
        avi = Path(tmp) / "result.avi"
        _write_divx(frames, avi)
        mp4 = _reencode_h264(avi, width, height)
    decoded = read_video(mp4, audio=False, name=f"{where} (official delivery)").frames
    if decoded is None or decoded.shape != frames.shape:
        got = None if decoded is None else decoded.shape
        raise SampleError(f"{where}: the official-delivery encode returned frames of shape {got}, "
                          f"expected {frames.shape}")
    return decoded


def deliver(frames: np.ndarray, delivery: str, where: str = "clip") -> np.ndarray:
    """The frames the metrics see under ``delivery``."""
    if delivery == "official":
        return official_roundtrip(frames, where)
    return frames
