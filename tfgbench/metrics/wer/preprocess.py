"""Frame preparation of the WER protocols: RGB uint8 ``(T, H, W, 3)`` -> reader input
``(T, S, S)`` float32 (numpy + OpenCV; no torch).

* :func:`avhubert_full_frame` (``wer/talklip-avhubert``): AV-HuBERT's loader on the whole frame:
  gray (``cv2`` BGR2GRAY weights 0.299/0.587/0.114), ``/255``, centre crop 88 with
  ``delta = int((W - 88) / 2)`` (``avhubert/utils.py CenterCrop``), ``(x - 0.421) / 0.165``.
* :func:`talklip_conformer` (``wer/talklip-conformer``): gray, ``cv2.resize`` to 224x224
  (bilinear, on uint8), rows/cols ``[56:168]``, ``/255``, ``(x - 0.4161) / 0.1688``.
* :func:`avhubert_roi` (``wer/avhubert-roi``): 96x96 mouth ROIs made as AV-HuBERT's
  ``preparation/align_mouth.py`` makes them (landmarks averaged over a 12-frame window, similarity
  transform of the stable points 33, 36, 39, 42, 45 onto the mean face in a 256x256 frame, 96x96
  patch centred on the mouth landmarks 48-67), then as the full-frame protocol (centre 88).
  Frames that are already 96x96 are taken as ROIs.
* :func:`synthetic_mouth_clips` (``wer/synthetic-*``): per frame, the sample's ground-truth mouth
  box (a square around the mouth, from the synthetic corpus; generated videos keep the head pose,
  so it applies to them too), edge-padded where it leaves the frame, gray, ``cv2.INTER_AREA``
  resize to 48x48, centre 44x44, ``/255``, ``(x - 0.421) / 0.165``.
"""

from __future__ import annotations

import numpy as np

from tfgbench.errors import TfgbenchError

AVHUBERT_MEAN, AVHUBERT_STD, AVHUBERT_CROP = 0.421, 0.165, 88
CONFORMER_MEAN, CONFORMER_STD, CONFORMER_RESIZE, CONFORMER_CROP = 0.4161, 0.1688, 224, 112
ROI_SIZE, ROI_STD_SIZE, ROI_WINDOW = 96, 256, 12
ROI_STABLE_POINTS = (33, 36, 39, 42, 45)
SYNTHETIC_ROI, SYNTHETIC_CROP = 48, 44
MEAN_FACE_ORIGIN = ("the 68-point mean face 20words_mean_face.npy that AV-HuBERT's preparation/align_mouth.py "
                    "uses (mpc001/Lipreading_using_Temporal_Convolutional_Networks, preprocessing/)")


class PreprocessError(TfgbenchError):
    """Frames that a WER protocol cannot prepare (too small, no mouth boxes, no landmarks...)."""


def gray(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 RGB -> ``(T, H, W)`` uint8, OpenCV's rounding."""
    import cv2

    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames])


def center_crop(frames: np.ndarray, size: int, where: str = "clip") -> np.ndarray:
    """AV-HuBERT's ``CenterCrop``: offsets ``int((W - size) / 2)``, ``int((H - size) / 2)``."""
    t, h, w = frames.shape[:3]
    if h < size or w < size:
        raise PreprocessError(f"{where}: frames are {w}x{h}, smaller than the {size}x{size} centre crop")
    dh, dw = int((h - size) / 2), int((w - size) / 2)
    return frames[:, dh:dh + size, dw:dw + size]


def _normalise(frames: np.ndarray, mean: float, std: float) -> np.ndarray:
    return ((frames.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def avhubert_full_frame(frames: np.ndarray, where: str = "clip") -> np.ndarray:
    """``wer/talklip-avhubert`` input ``(T, 88, 88)``."""
    return _normalise(center_crop(gray(frames), AVHUBERT_CROP, where), AVHUBERT_MEAN, AVHUBERT_STD)


def talklip_conformer(frames: np.ndarray, where: str = "clip") -> np.ndarray:
    """``wer/talklip-conformer`` input ``(T, 112, 112)``."""
    import cv2

    g = gray(frames)
    r = np.stack([cv2.resize(f, (CONFORMER_RESIZE, CONFORMER_RESIZE)) for f in g])
    lo = (CONFORMER_RESIZE - CONFORMER_CROP) // 2
    return _normalise(r[:, lo:lo + CONFORMER_CROP, lo:lo + CONFORMER_CROP], CONFORMER_MEAN, CONFORMER_STD)


def _cut_patch(img: np.ndarray, points: np.ndarray, half: int) -> np.ndarray:
    """align_mouth.py ``cut_patch``: a ``2 half`` square centred on the points' mean, moved inside
    the image. (The official code clamps the centre *before* its "too much bias" checks, so those
    checks never fire: a mouth near the edge is silently clamped, as here.)"""
    cx, cy = points.mean(axis=0)
    h, w = img.shape[:2]
    cy = min(max(cy, half), h - half)
    cx = min(max(cx, half), w - half)
    y0, x0 = int(round(cy) - half), int(round(cx) - half)
    return img[y0:y0 + 2 * half, x0:x0 + 2 * half].copy()


def mouth_rois(frames_gray: np.ndarray, landmarks: np.ndarray, mean_face: np.ndarray,
               where: str = "clip") -> np.ndarray:
    """``(T, 96, 96)`` uint8 mouth ROIs from gray frames and ``(T, 68, 2)`` landmarks (x, y)."""
    from skimage import transform as tf

    t = len(frames_gray)
    if landmarks.shape != (t, 68, 2):
        raise PreprocessError(f"{where}: landmarks must have shape ({t}, 68, 2), got {landmarks.shape}")
    stable = list(ROI_STABLE_POINTS)
    margin = min(t, ROI_WINDOW)
    out = []
    tform = None
    for i in range(t):
        # the official code smooths over the window that *starts* at frame i while it can
        lo = min(i, t - margin)
        if i <= t - margin:
            smooth = landmarks[lo:lo + margin].mean(axis=0)
            tform = tf.estimate_transform("similarity", smooth[stable], mean_face[stable])
        warped = tf.warp(frames_gray[i], inverse_map=tform.inverse, output_shape=(ROI_STD_SIZE, ROI_STD_SIZE))
        warped = (warped * 255).astype(np.uint8)
        out.append(_cut_patch(warped, tform(landmarks[i])[48:68], ROI_SIZE // 2))
    return np.stack(out)


def avhubert_roi(frames: np.ndarray, landmarks: np.ndarray | None, mean_face: np.ndarray | None,
                 where: str = "clip") -> np.ndarray:
    """``wer/avhubert-roi`` input ``(T, 88, 88)``: 96x96 ROIs (made from landmarks unless the
    frames already are 96x96), centre 88, normalised."""
    g = gray(frames)
    if g.shape[1:] != (ROI_SIZE, ROI_SIZE):
        if landmarks is None or mean_face is None:
            raise PreprocessError(
                f"{where}: wer/avhubert-roi needs 96x96 mouth-ROI frames, or 68-point landmarks per frame "
                f"(sample.meta['landmarks'], shape (T, 68, 2)) and the mean face; frames are "
                f"{g.shape[2]}x{g.shape[1]}")
        g = mouth_rois(g, np.asarray(landmarks, dtype=np.float64), mean_face, where)
    return _normalise(center_crop(g, AVHUBERT_CROP, where), AVHUBERT_MEAN, AVHUBERT_STD)


def synthetic_mouth_rois(frames: np.ndarray, mouth_boxes: np.ndarray | None, where: str = "clip") -> np.ndarray:
    """``(T, 48, 48)`` uint8 gray mouth ROIs from per-frame mouth boxes ``(T, 4)`` (or one box)
    (``x1, y1, x2, y2``, x2/y2 exclusive), edge-padded where a box leaves the frame."""
    import cv2

    if mouth_boxes is None:
        raise PreprocessError(f"{where}: the synthetic WER protocols need per-frame mouth boxes "
                              "(sample.meta['mouth_box'], from the synthetic corpus)")
    b = np.asarray(mouth_boxes, dtype=np.int64)
    if b.ndim == 1:
        b = np.broadcast_to(b, (len(frames), 4))
    if b.shape != (len(frames), 4):
        raise PreprocessError(f"{where}: mouth boxes have shape {b.shape}, expected ({len(frames)}, 4)")
    if np.any(b[:, 2] <= b[:, 0]) or np.any(b[:, 3] <= b[:, 1]):
        raise PreprocessError(f"{where}: a mouth box is empty")
    g = gray(frames)
    pad = max(g.shape[1:])                      # boxes may leave the frame by up to a frame size
    out = np.empty((len(g), SYNTHETIC_ROI, SYNTHETIC_ROI), np.uint8)
    padded = np.pad(g, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    for i in range(len(g)):
        x1, y1, x2, y2 = (np.clip(b[i], -pad, 2 * pad) + pad).tolist()
        out[i] = cv2.resize(padded[i, y1:y2, x1:x2], (SYNTHETIC_ROI, SYNTHETIC_ROI), interpolation=cv2.INTER_AREA)
    return out


def synthetic_mouth_clips(frames: np.ndarray, mouth_boxes: np.ndarray | None, where: str = "clip") -> np.ndarray:
    """``wer/synthetic-*`` input ``(T, 44, 44)`` float32: :func:`synthetic_mouth_rois`, centre
    44x44, ``/255``, ``(x - 0.421) / 0.165``. Training and scoring both use these crops."""
    rois = synthetic_mouth_rois(frames, mouth_boxes, where)
    return _normalise(center_crop(rois, SYNTHETIC_CROP, where), AVHUBERT_MEAN, AVHUBERT_STD)
