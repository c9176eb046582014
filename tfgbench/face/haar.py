"""OpenCV's bundled frontal-face Haar cascade: the offline face detector (no weights to fetch)."""

from __future__ import annotations

import numpy as np


class HaarDetector:
    """``detect(frames)`` -> per frame ``(k, 5)`` boxes ``x1, y1, x2, y2, score`` (score = the
    cascade's neighbour count, as a confidence proxy).

    Args:
        scale_factor, min_neighbors: cascade settings (OpenCV's usual 1.1 and 5).
        min_size_ratio: smallest face side as a fraction of the shorter frame side.
    """

    name = "opencv-haar"
    sha256 = "opencv-haarcascade_frontalface_default"

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size_ratio: float = 0.125) -> None:
        import cv2

        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self.cascade.empty():
            raise RuntimeError("OpenCV's haarcascade_frontalface_default.xml could not be loaded")
        self.scale_factor, self.min_neighbors, self.min_size_ratio = scale_factor, min_neighbors, min_size_ratio

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        import cv2

        out = []
        side = max(16, int(min(frames.shape[1:3]) * self.min_size_ratio))
        for frame in frames:
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            boxes, _, weights = self.cascade.detectMultiScale3(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(side, side), outputRejectLevels=True)
            if len(boxes) == 0:
                out.append(np.zeros((0, 5)))
                continue
            b = np.asarray(boxes, dtype=np.float64)
            out.append(np.column_stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3],
                                        np.asarray(weights, dtype=np.float64).reshape(-1)]))
        return out
