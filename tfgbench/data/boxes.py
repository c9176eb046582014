"""Face boxes for datasets that do not ship them.

TalkLip scores PSNR/SSIM inside per-frame face boxes that its ``preparation/bbx_extract.py``
stores as ``<id>.npy`` arrays ``(T, 4)`` of ``x1, y1, x2, y2`` (S3FD detections; a centred 96x96
box where no face is found). Datasets read such files when they exist; otherwise boxes are
detected here with OpenCV's bundled Haar cascade (an offline detector: S3FD weights cannot be
downloaded here), the largest face per frame, with TalkLip's centred-96 fallback for frames
without a face. Which source was used is recorded in ``sample.meta["boxes_source"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgbench.errors import SampleError


def centre_box(height: int, width: int, size: int = 96) -> tuple[int, int, int, int]:
    """TalkLip's fallback box: ``size`` x ``size`` in the middle of the frame."""
    y = int((height - size) / 2)
    x = int((width - size) / 2)
    return x, y, x + size, y + size


def detect_face_boxes(frames: np.ndarray, every: int = 5) -> np.ndarray:
    """``(T, 4)`` int face boxes: the largest Haar-cascade face on every ``every``-th frame (and the
    last), linearly interpolated in between (as syncnet_python interpolates its tracks); frames
    before the first or after the last detection hold the nearest one. A clip with no face at all
    gets TalkLip's centred 96x96 box on every frame."""
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    height, width = frames.shape[1:3]
    min_side = max(24, min(height, width) // 5)  # talking-head clips: the face is a large part of the frame
    keys, found_boxes = [], []
    for i in sorted(set(range(0, len(frames), every)) | {len(frames) - 1}):
        gray = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY)
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        if len(found):
            x, y, w, h = max(found, key=lambda b: b[2] * b[3])
            keys.append(i)
            found_boxes.append((x, y, x + w, y + h))
    if not keys:
        return np.tile(np.array(centre_box(height, width), dtype=np.int64), (len(frames), 1))
    known = np.asarray(found_boxes, dtype=np.float64)
    t = np.arange(len(frames))
    boxes = np.stack([np.interp(t, keys, known[:, j]) for j in range(4)], axis=1)
    return np.rint(boxes).astype(np.int64)


def load_box_file(path: Path, num_frames: int) -> np.ndarray:
    """Read a TalkLip-style ``(T, 4)`` box file; its length must cover the video."""
    try:
        boxes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise SampleError(f"{path}: unreadable face-box file ({e})") from e
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise SampleError(f"{path}: face boxes must have shape (T, 4), got {boxes.shape}")
    if len(boxes) < num_frames:
        raise SampleError(f"{path}: {len(boxes)} face boxes for a video of {num_frames} frames")
    return boxes[:num_frames].astype(np.int64)


def boxes_beside(video: str | Path, key: str) -> np.ndarray | None:
    """Per-frame boxes ``(T, 4)`` stored under ``key`` (``"face_boxes"``, ``"mouth_boxes"``) in the
    alignment JSON beside a synthetic-corpus clip (``<clip>.json``); ``None`` where there is none."""
    import json

    path = Path(video).with_suffix(".json")
    if not path.is_file():
        return None
    try:
        return np.asarray(json.loads(path.read_text())[key], dtype=np.int64).reshape(-1, 4)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SampleError(f"{path}: cannot read {key} from the clip's alignment file ({e})") from e
