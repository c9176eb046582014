"""Face crops for generators: cut the face box out of every frame, paste the generated face back.

Boxes are ``(T, 4)`` ``x1, y1, x2, y2`` pixel coordinates (x2/y2 exclusive), as in
:class:`tfgbench.data.sample.Sample`. The Wav2Lip/TalkLip inference scripts crop the (padded,
smoothed) box, resize it to 96x96, and resize the generated face back into the same box; these
helpers do the same with OpenCV and no torch.
"""

from __future__ import annotations

import numpy as np

from tfgbench.errors import SampleError


def _as_boxes(boxes: np.ndarray, num_frames: int, where: str) -> np.ndarray:
    b = np.asarray(boxes)
    if b.ndim == 1:
        b = np.broadcast_to(b, (num_frames, 4))
    if b.shape != (num_frames, 4):
        raise SampleError(f"{where}: face boxes have shape {b.shape}, expected ({num_frames}, 4)")
    b = np.round(b).astype(np.int64)
    if np.any(b[:, 2] <= b[:, 0]) or np.any(b[:, 3] <= b[:, 1]):
        raise SampleError(f"{where}: a face box is empty (x2 <= x1 or y2 <= y1)")
    return b


def pad_boxes(boxes: np.ndarray, pads: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    """Wav2Lip's ``--pads (top, bottom, left, right)``: grow each box, clipped to the frame."""
    top, bottom, left, right = pads
    b = np.asarray(boxes, dtype=np.int64).copy()
    b[:, 0] = np.maximum(0, b[:, 0] - left)
    b[:, 1] = np.maximum(0, b[:, 1] - top)
    b[:, 2] = np.minimum(width, b[:, 2] + right)
    b[:, 3] = np.minimum(height, b[:, 3] + bottom)
    return b


def smooth_boxes(boxes: np.ndarray, window: int = 5) -> np.ndarray:
    """Wav2Lip's ``get_smoothened_boxes``: box ``i`` becomes the mean of boxes ``i .. i+window-1``,
    or of the last ``window`` boxes near the end. As in the original, the update is in place on an
    int array (means truncated), so the end windows see already-smoothed boxes."""
    b = np.asarray(boxes).astype(np.int64).copy()
    for i in range(len(b)):
        chunk = b[len(b) - window:] if i + window > len(b) else b[i:i + window]
        b[i] = np.mean(chunk, axis=0)
    return b


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int = 96, where: str = "clip") -> np.ndarray:
    """``(T, size, size, 3)`` uint8: each frame's box resized to ``size`` (cv2 INTER_AREA),
    edge-padded where a box leaves the frame."""
    import cv2

    t, h, w = frames.shape[:3]
    b = _as_boxes(boxes, t, where)
    pad = int(max(0, -b[:, :2].min(), (b[:, 2] - w).max(), (b[:, 3] - h).max()))
    src = np.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else frames
    out = np.empty((t, size, size, 3), np.uint8)
    for i in range(t):
        x1, y1, x2, y2 = (b[i] + pad).tolist()
        out[i] = cv2.resize(src[i, y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_AREA)
    return out


def paste_faces(frames: np.ndarray, faces: np.ndarray, boxes: np.ndarray, lower_half_only: bool = False,
                where: str = "clip") -> np.ndarray:
    """A copy of ``frames`` with ``faces[i]`` resized (cv2 bilinear) into box ``i``; the part of a
    box outside the frame is dropped. ``lower_half_only`` pastes only the box's lower half (the
    part a lip-sync generator re-draws; the upper half of the crop is a blurred copy)."""
    import cv2

    t, h, w = frames.shape[:3]
    if len(faces) != t:
        raise SampleError(f"{where}: {len(faces)} generated faces for {t} frames")
    b = _as_boxes(boxes, t, where)
    out = frames.copy()
    for i in range(t):
        x1, y1, x2, y2 = b[i].tolist()
        face = cv2.resize(faces[i], (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
        top = (y2 - y1) // 2 if lower_half_only else 0
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1 + top, 0), min(x2, w), min(y2, h)
        if cx2 > cx1 and cy2 > cy1:
            out[i, cy1:cy2, cx1:cx2] = face[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]
    return out


def mouth_from_face(boxes: np.ndarray) -> np.ndarray:
    """Mouth boxes ``(T, 4)`` for datasets that have face boxes only (LRS2/LRS3): a square of half
    the face width, centred horizontally, its centre at 75 % of the face height (S3FD/Haar face
    boxes span roughly brow to chin, so the mouth sits in the lower-centre quarter). The synthetic
    corpus knows its mouth boxes exactly and does not need this."""
    b = np.asarray(boxes, dtype=np.float64)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx, cy, half = (b[:, 0] + b[:, 2]) / 2, b[:, 1] + 0.75 * h, w / 4
    return np.stack([cx - half, cy - half, cx + half, cy + half], 1).round().astype(np.int64)


def mouth_in_face(mouth_boxes: np.ndarray, face_boxes: np.ndarray) -> np.ndarray:
    """Mouth boxes ``(T, 4)`` in face-crop coordinates: ``(x - x1) / (x2 - x1)`` etc., float32 in
    [0, 1] where the mouth lies inside the face box (it may leave it slightly)."""
    m = np.asarray(mouth_boxes, dtype=np.float64)
    f = np.asarray(face_boxes, dtype=np.float64)
    fw = (f[:, 2] - f[:, 0])[:, None]
    fh = (f[:, 3] - f[:, 1])[:, None]
    out = np.empty_like(m)
    out[:, [0, 2]] = (m[:, [0, 2]] - f[:, [0]]) / fw
    out[:, [1, 3]] = (m[:, [1, 3]] - f[:, [1]]) / fh
    return out.astype(np.float32)
