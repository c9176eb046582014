"""Training data for talking-face generators: every clip's face crops, audio and mouth box, cached.

Decoding mp4s inside a training loop would dominate a CPU run (reference: a tiny generator spends
3.5 min decoding the synthetic train split once). :func:`load_face_clips` crops every frame's
face box once, stores all crops of a split in one ``.npy`` (memory-mapped, so two training
processes share the page cache) plus an index (audio, boxes, mouth boxes, transcripts), and returns
views into it::

    clips = load_face_clips(SyntheticDataset(split="train"), size=96)
    clips.faces[i]    # (T, 96, 96, 3) uint8 RGB, the face box resized (tfgbench.face.crops.crop_faces)
    clips.audio[i]    # (N,) float32, 16 kHz
    clips.mouth[i]    # (T, 4) float32 mouth box in face-crop coordinates (may leave [0, 1])
    clips.rois[i]     # (T, 48, 48) uint8 gray mouth ROIs of the real frames (the wer/synthetic-* crop)
    clips.boxes[i]    # (T, 4) int face boxes in the frame
    clips.texts[i]    # transcript

The cache lives in ``$TFGBENCH_HOME/cache/faceclips-<dataset version>-<split>-<size>-<n clips>/``
and is keyed by everything that changes its content. Datasets without mouth boxes (LRS2/LRS3) get
them from the face boxes (:func:`tfgbench.face.crops.mouth_from_face`). :func:`mouth_rois_from_faces` turns (real or
generated) face crops into the lip-reading experts' input, differentiably.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfgbench.errors import SampleError

#: mouth ROI convention of the ``wer/synthetic-*`` protocols (tfgbench.metrics.wer.preprocess)
ROI_SIZE, ROI_CROP = 48, 44
ROI_MEAN, ROI_STD = 0.421, 0.165
CACHE_FORMAT = 2


@dataclass
class FaceClips:
    """Cached clips of one dataset split (see the module docstring)."""

    ids: list[str]
    faces: list[np.ndarray]
    audio: list[np.ndarray]
    mouth: list[np.ndarray]
    rois: list[np.ndarray]
    boxes: list[np.ndarray]
    texts: list[str]
    size: int

    def __len__(self) -> int:
        return len(self.ids)


def _cache_dir(dataset: Any, size: int, n: int) -> Path:
    from tfgbench.paths import home

    version = str(dataset.version).replace("/", "_")
    return home() / "cache" / f"faceclips-v{CACHE_FORMAT}-{version}-{dataset.split}-{size}-{n}"


def _build(dataset: Any, ids: list[str], size: int, folder: Path, progress: bool) -> None:
    from tqdm import tqdm

    from tfgbench.face.crops import crop_faces, mouth_from_face, mouth_in_face
    from tfgbench.metrics.wer.preprocess import synthetic_mouth_rois

    faces, audio, boxes, mouth, rois, texts, lengths = [], [], [], [], [], [], []
    for sid in tqdm(ids, desc=f"cropping faces ({dataset.split})", disable=not progress):
        s = dataset.load(sid)
        if s.boxes is None:
            raise SampleError(f"{s.where()}: no face boxes; generator training needs per-frame boxes "
                              "(box files for LRS2/LRS3, see the README)")
        faces.append(crop_faces(s.frames, s.boxes, size, s.where()))
        audio.append(s.audio)
        boxes.append(np.asarray(s.boxes, np.int32))
        mb = s.meta.get("mouth_box")
        mb = mb if mb is not None else mouth_from_face(s.boxes)      # LRS2/LRS3: from the face box
        mouth.append(mouth_in_face(mb, s.boxes))
        rois.append(synthetic_mouth_rois(s.frames, mb, s.where()))
        texts.append(s.transcript or "")
        lengths.append(s.num_frames)
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    np.save(tmp / "faces.npy", np.concatenate(faces))
    np.savez(tmp / "index.npz", lengths=np.array(lengths), audio_lengths=np.array([len(a) for a in audio]),
             audio=np.concatenate(audio), boxes=np.concatenate(boxes), mouth=np.concatenate(mouth),
             rois=np.concatenate(rois))
    (tmp / "meta.json").write_text(json.dumps({"ids": ids, "texts": texts, "size": size}))
    tmp.rename(folder)


def load_face_clips(dataset: Any, size: int = 96, limit: int | None = None, progress: bool = True) -> FaceClips:
    """Face crops, audio, boxes, mouth boxes and transcripts of every sample of ``dataset`` (a
    tfgbench dataset whose samples carry face boxes), built once and cached (see module docstring).
    Concurrent callers wait for one builder (a file lock)."""
    ids = list(dataset.ids())
    ids = ids[:limit] if limit else ids
    folder = _cache_dir(dataset, size, len(ids))
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / (folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "meta.json").is_file():
            _build(dataset, ids, size, folder, progress)
    meta = json.loads((folder / "meta.json").read_text())
    index = dict(np.load(folder / "index.npz"))      # dict(): an NpzFile re-reads arrays per access
    faces = np.load(folder / "faces.npy", mmap_mode="r")
    cut = np.cumsum(index["lengths"])[:-1]
    mouth = np.split(index["mouth"], cut)
    rois = np.split(index["rois"], cut)
    return FaceClips(ids=meta["ids"], faces=np.split(faces, cut), texts=meta["texts"], size=meta["size"], rois=rois,
                     audio=np.split(index["audio"], np.cumsum(index["audio_lengths"])[:-1]),
                     boxes=np.split(index["boxes"], cut), mouth=mouth)


def normalise_rois(rois: Any) -> Any:
    """Real mouth ROIs ``(N, 48, 48)`` (uint8 0-255, :attr:`FaceClips.rois`) -> the experts' input
    ``(N, 44, 44)``: centre 44x44, ``(x / 255 - 0.421) / 0.165`` (as ``synthetic_mouth_clips``)."""
    off = (ROI_SIZE - ROI_CROP) // 2
    return (rois[:, off:off + ROI_CROP, off:off + ROI_CROP].float() / 255.0 - ROI_MEAN) / ROI_STD


def mouth_rois_from_faces(faces: Any, mouth: Any, real: Any | None = None) -> Any:
    """The lip experts' input for generated (or real) face crops, differentiably: the generated
    face pasted back into the frame, then the ``wer/synthetic-*`` mouth crop.

    Args:
        faces: ``(N, 3, S, S)`` float RGB in [0, 1].
        mouth: ``(N, 4)`` mouth boxes in face-crop coordinates (:func:`tfgbench.face.crops.
            mouth_in_face`; the mouth box may reach below the face box).
        real: ``(N, 48, 48)`` uint8 or float (0-255) mouth ROIs of the real frames
            (:attr:`FaceClips.rois`). Where the mouth box leaves the face box, the pasted-back frame
            shows the real frame, so those ROI pixels come from ``real``; without it the crop's
            border is repeated there.

    Returns:
        ``(N, 44, 44)``: gray ``0.299 R + 0.587 G + 0.114 B`` sampled bilinearly at the 48x48 pixel
        centres of the mouth box (``grid_sample``), the centre 44x44, ``(x - 0.421) / 0.165``: the
        protocols' convention (which resizes with cv2 INTER_AREA from the full frame; the two agree
        to within resampling differences).
    """
    import torch
    import torch.nn.functional as F

    weights = torch.tensor([0.299, 0.587, 0.114], dtype=faces.dtype, device=faces.device)
    gray = (faces * weights[None, :, None, None]).sum(1, keepdim=True)
    m = mouth.to(device=faces.device, dtype=faces.dtype)
    theta = torch.zeros(len(m), 2, 3, dtype=faces.dtype, device=faces.device)
    theta[:, 0, 0] = m[:, 2] - m[:, 0]
    theta[:, 0, 2] = m[:, 0] + m[:, 2] - 1
    theta[:, 1, 1] = m[:, 3] - m[:, 1]
    theta[:, 1, 2] = m[:, 1] + m[:, 3] - 1
    grid = F.affine_grid(theta, [len(m), 1, ROI_SIZE, ROI_SIZE], align_corners=False)
    roi = F.grid_sample(gray, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]
    if real is not None:
        inside = (grid.abs() <= 1).all(-1)                       # ROI pixels that fall in the face box
        roi = torch.where(inside, roi, real.to(device=faces.device, dtype=faces.dtype) / 255.0)
    off = (ROI_SIZE - ROI_CROP) // 2
    roi = roi[:, off:off + ROI_CROP, off:off + ROI_CROP]
    return (roi - ROI_MEAN) / ROI_STD
