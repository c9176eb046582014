"""run_pipeline's face tracking and crops (joonson/syncnet_python), in memory.

* :func:`track_faces`: greedy IOU tracking (IOU > 0.5 with the track's last box, at most
  ``num_failed_det`` frames apart), repeated until no detection is left; a track is kept when it
  has more than ``min_track`` detections and its mean box side exceeds ``min_face_size``; boxes are
  linearly interpolated over missed frames. (The official loop removes items from the list it
  iterates, which skips a detection after each match; here each frame gives a track at most one
  box, the best-overlapping one.)
* :func:`crop_track`: ``s = max(w, h) / 2`` and the box centre, each median-filtered (kernel 13,
  ``scipy.signal.medfilt``: zero-padded ends, as the official); the frame is padded by
  ``int(s (1 + 2 cs))`` with the value 110; rows ``[my - s, my + s (1 + 2 cs))``, columns
  ``[mx - s (1 + cs), mx + s (1 + cs))``, resized to ``size`` (bilinear).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Track:
    """``frames``: consecutive frame indices ``(L,)``; ``boxes``: ``(L, 4)`` float x1, y1, x2, y2."""

    frames: np.ndarray
    boxes: np.ndarray


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes (official formula, no +1)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def track_faces(detections: list[np.ndarray], min_track: int = 100, min_face_size: float = 100,
                num_failed_det: int = 25, iou_threshold: float = 0.5) -> list[Track]:
    """Tracks from per-frame detections (``(k, >=4)`` arrays, frame order)."""
    left = [list(np.asarray(d, dtype=np.float64)[:, :4]) for d in detections]
    tracks: list[Track] = []
    while True:
        frames, boxes = [], []
        for f, faces in enumerate(left):
            if not faces:
                continue
            if not frames:
                frames.append(f)
                boxes.append(faces.pop(0))
                continue
            if f - frames[-1] > num_failed_det:
                break
            overlaps = [iou(face, boxes[-1]) for face in faces]
            best = int(np.argmax(overlaps))
            if overlaps[best] > iou_threshold:
                frames.append(f)
                boxes.append(faces.pop(best))
        if not frames:
            break
        if len(frames) <= min_track:
            continue
        fr = np.asarray(frames)
        bx = np.asarray(boxes)
        full = np.arange(fr[0], fr[-1] + 1)
        interp = np.stack([np.interp(full, fr, bx[:, j]) for j in range(4)], 1)
        if max(np.mean(interp[:, 2] - interp[:, 0]), np.mean(interp[:, 3] - interp[:, 1])) > min_face_size:
            tracks.append(Track(full, interp))
    return tracks


def crop_track(frames: np.ndarray, track: Track, crop_scale: float = 0.4, size: int = 224) -> np.ndarray:
    """``(L, size, size, C)`` crops of ``frames`` (any channel order, uint8) along ``track``."""
    import cv2
    from scipy.signal import medfilt

    b = track.boxes
    s = medfilt(np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2, kernel_size=13)
    y = medfilt((b[:, 1] + b[:, 3]) / 2, kernel_size=13)
    x = medfilt((b[:, 0] + b[:, 2]) / 2, kernel_size=13)
    cs = crop_scale
    out = np.empty((len(track.frames), size, size, frames.shape[3]), dtype=np.uint8)
    for i, f in enumerate(track.frames):
        bs = s[i]
        bsi = int(bs * (1 + 2 * cs))
        padded = np.pad(frames[f], ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=110)
        my, mx = y[i] + bsi, x[i] + bsi
        face = padded[int(my - bs):int(my + bs * (1 + 2 * cs)), int(mx - bs * (1 + cs)):int(mx + bs * (1 + cs))]
        out[i] = cv2.resize(face, (size, size))
    return out
