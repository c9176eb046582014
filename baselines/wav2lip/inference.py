"""Wav2Lip inference as the official ``inference.py`` does it, on in-memory frames.

For a clip of ``T`` RGB frames and its 16 kHz audio:

1. mel spectrogram of the whole audio; chunks of 16 columns starting at ``int(i * 80 / fps)``, the
   last one taken from the end (:func:`baselines.wav2lip.audio.chunk_starts`): ``K`` chunks, a
   number that follows the audio length (1.2 s -> 27).
2. ``n = min(T, K)`` frames are generated. The official script truncates the video to ``K`` frames
   (and cycles frames when ``K > T``); a tfgbench model must return exactly ``T`` frames, so:
   **frames beyond the last chunk keep their original pixels, and chunks beyond the last frame are
   dropped.**
3. face boxes ``(x1, y1, x2, y2)`` (the sample's, or :func:`tfgbench.data.boxes.detect_face_boxes`)
   of the ``n`` frames, grown by ``pads = (top, bottom, left, right) = (0, 10, 0, 0)`` and clipped to
   the frame, then mean-smoothed over the next 5 frames (in place on ints, as the original).
4. each box cropped and resized to 96x96 (``cv2.resize``, bilinear), converted to BGR (the colour
   order the official models were trained in); input = lower half zeroed ++ the same unmasked
   frame as reference (``reference_frame = "same"``), scaled to [0, 1].
5. ``pred * 255`` truncated to uint8, back to RGB, resized into the box and pasted into the frame:
   pixels outside the (padded, smoothed) boxes are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from baselines.wav2lip.audio import chunk_starts, mel_chunks, melspectrogram

PADS = (0, 10, 0, 0)
IMG_SIZE = 96


def generated_frame_count(num_frames: int, num_samples: int, fps: float = 25.0) -> int:
    """How many of ``num_frames`` frames get a generated face: ``min(T, chunks)``."""
    return min(num_frames, len(chunk_starts(1 + num_samples // 200, fps)))


def prepare_boxes(frames: np.ndarray, boxes: np.ndarray | None, n: int, pads: tuple[int, int, int, int] = PADS,
                  smooth: bool = True) -> np.ndarray:
    """Padded, clipped and smoothed ``(n, 4)`` int boxes of the first ``n`` frames."""
    from tfgbench.face.crops import pad_boxes, smooth_boxes

    if boxes is None:
        from tfgbench.data.boxes import detect_face_boxes

        boxes = detect_face_boxes(frames[:n])
    h, w = frames.shape[1:3]
    b = pad_boxes(np.asarray(boxes)[:n], pads, h, w)
    return smooth_boxes(b, 5) if smooth else b


def face_inputs(frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(n, 6, 96, 96)`` float32: BGR crops with the lower half zeroed ++ the same crops, in [0, 1]."""
    import cv2

    crops = np.stack([cv2.resize(f[y1:y2, x1:x2], (IMG_SIZE, IMG_SIZE)) for f, (x1, y1, x2, y2) in
                      zip(frames, boxes.tolist())])[..., ::-1]
    masked = crops.copy()
    masked[:, IMG_SIZE // 2:] = 0
    x = np.concatenate([masked, crops], axis=3).astype(np.float32) / 255.0
    return x.transpose(0, 3, 1, 2)


def lipsync_batch(model: object, clips: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
                  device: str = "cpu", batch_size: int = 128, pads: tuple[int, int, int, int] = PADS,
                  smooth: bool = True, fps: float = 25.0) -> list[np.ndarray]:
    """Run ``model`` (a :class:`~baselines.wav2lip.model.Wav2Lip`) on clips ``(frames (T, H, W, 3)
    uint8 RGB, audio (N,) float32 16 kHz, boxes (T, 4) or None)``; returns new ``(T, H, W, 3)``
    frames per clip (see the module docstring). Windows of all clips share network batches."""
    import torch

    from tfgbench.face.crops import paste_faces

    faces, mels, plans = [], [], []
    for frames, audio, boxes in clips:
        chunks = mel_chunks(melspectrogram(audio), fps)
        n = min(len(frames), len(chunks))
        b = prepare_boxes(frames, boxes, n, pads, smooth)
        faces.append(face_inputs(frames[:n], b))
        mels.append(chunks[:n, None])
        plans.append((n, b))
    x_all = np.concatenate(faces)
    m_all = np.concatenate(mels)
    preds = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x_all), batch_size):
            x = torch.from_numpy(x_all[i:i + batch_size]).to(device)
            m = torch.from_numpy(m_all[i:i + batch_size]).to(device)
            preds.append((model(m, x).float().cpu().numpy().transpose(0, 2, 3, 1) * 255.0).astype(np.uint8))
    pred = np.concatenate(preds)[..., ::-1]   # BGR -> RGB
    out, start = [], 0
    for (frames, _, _), (n, b) in zip(clips, plans):
        result = frames.copy()
        result[:n] = paste_faces(frames[:n], np.ascontiguousarray(pred[start:start + n]), b)
        out.append(result)
        start += n
    return out
