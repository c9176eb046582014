"""Face boxes for datasets that do not ship them.

TalkLip scores PSNR/SSIM inside per-frame face boxes that its ``preparation/bbx_extract.py``
stores as ``<id>.npy`` arrays ``(T, 4)`` of ``x1, y1, x2, y2`` (S3FD detections; a centred 96x96
box where no face is found). Datasets read such files when they exist; otherwise boxes are
detected here: S3FD when the user provides ``sfd_face.pth`` (``$TFGBENCH_S3FD`` or
``$TFGBENCH_HOME/weights/``; it cannot be downloaded here), otherwise OpenCV's bundled Haar cascade,
the largest face, with TalkLip's centred-96 fallback. Which source was used is recorded in
``sample.meta["boxes_source"]``.
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


def detect_face_boxes(frames: np.ndarray, every: int = 5, detector=None) -> np.ndarray:
    """``(T, 4)`` int face boxes: the largest face that ``detector`` (default: S3FD when the user's
    ``sfd_face.pth`` is found, else OpenCV's Haar cascade; see :func:`tfgbench.face.get_detector`)
    finds on every ``every``-th frame (and the last), linearly interpolated in between (as
    syncnet_python interpolates its tracks); frames before the first or after the last detection
    hold the nearest one. A clip with no face at all gets TalkLip's centred 96x96 box on every frame."""
    if detector is None:
        from tfgbench.face import get_detector

        detector = get_detector()
    height, width = frames.shape[1:3]
    keys = sorted(set(range(0, len(frames), every)) | {len(frames) - 1})
    found_keys, found_boxes = [], []
    for key, dets in zip(keys, detector.detect(frames[keys])):
        if len(dets):
            areas = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
            found_keys.append(key)
            found_boxes.append(dets[int(np.argmax(areas)), :4])
    if not found_keys:
        return np.tile(np.array(centre_box(height, width), dtype=np.int64), (len(frames), 1))
    known = np.asarray(found_boxes, dtype=np.float64)
    t = np.arange(len(frames))
    boxes = np.stack([np.interp(t, found_keys, known[:, j]) for j in range(4)], axis=1)
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
