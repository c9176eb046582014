"""Generated videos on disk: the runner's cache, and videos generated elsewhere.

The cache is keyed by model name, checkpoint sha256 and settings hash (never by model name
alone: one model's outputs must never be served as another's), then dataset, version and split:
``<workdir>/videos/<model>/<ckpt[:12]>-<settings>/<dataset>/<version>/<split>/<id>.mp4``.
Videos are stored bit-exact (lossless RGB H.264, see :data:`tfgbench.media.io.QUALITY`) with the
sample's audio, so a resumed run scores exactly the frames the first run produced, and each file
is a playable result. Files are written to a temporary name and renamed, so a killed run never
leaves a truncated video behind.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from tfgbench.data.base import Dataset
from tfgbench.data.sample import Sample
from tfgbench.errors import MediaError, MissingResourceError
from tfgbench.media.io import read_video, write_video
from tfgbench.model import ModelInfo, TalkingFaceModel
from tfgbench.paths import sha256_file


class VideoCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sample_id: str) -> Path:
        return self.root / f"{sample_id}.mp4"

    def get(self, sample_id: str) -> np.ndarray | None:
        path = self.path(sample_id)
        if not path.is_file():
            return None
        try:
            return read_video(path, audio=False).frames
        except MediaError:
            path.unlink(missing_ok=True)  # a damaged cache entry is regenerated
            return None

    def put(self, sample: Sample, frames: np.ndarray) -> None:
        path = self.path(sample.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            write_video(f, frames, sample.audio, quality="lossless", fast_audio=True)
        tmp.replace(path)


def cache_for(workdir: Path, model: str, checkpoint_sha256: str, settings_hash: str, dataset: str,
              version: str, split: str) -> VideoCache:
    return VideoCache(workdir / "videos" / model / f"{checkpoint_sha256[:12]}-{settings_hash}" / dataset
                      / version / split)


def match_videos(directory: Path, dataset: Dataset, ids: list[str]) -> dict[str, Path]:
    """Map sample ids to mp4 files under ``directory``: ``<id>.mp4``, ``<id with / as _>.mp4``,
    or a unique ``<last part of id>.mp4`` anywhere below."""
    if not directory.is_dir():
        raise MissingResourceError(f"--videos {directory}: folder not found")
    files = {p.relative_to(directory).with_suffix("").as_posix(): p for p in directory.rglob("*.mp4")}
    by_stem: dict[str, list[Path]] = {}
    for p in files.values():
        by_stem.setdefault(p.stem, []).append(p)
    matched = {}
    for sample_id in ids:
        for key in (sample_id, sample_id.replace("/", "_")):
            if key in files:
                matched[sample_id] = files[key]
                break
        else:
            candidates = by_stem.get(sample_id.rsplit("/", 1)[-1], [])
            if len(candidates) == 1:
                matched[sample_id] = candidates[0]
    return matched


class ExternalVideos(TalkingFaceModel):
    """A pseudo-model that returns videos generated elsewhere, matched to samples by file name
    (``tfgbench score``). Its checkpoint hash is the sha256 of the matched files' names and bytes, so
    scoring a changed folder under the same name never reuses stale rows."""

    name = "external"

    def __init__(self, videos: dict[str, Path], label: str, directory: Path) -> None:
        super().__init__("cpu", None)
        self.videos, self.label, self.directory = videos, label, directory
        h = hashlib.sha256()
        for sample_id in sorted(videos):
            h.update(f"{sample_id}\0{sha256_file(videos[sample_id])}\n".encode())
        self._sha = h.hexdigest()

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(checkpoint_sha256=self._sha, training_data="unknown (external videos)",
                         licence="unknown", reference_frame="unknown")

    def generate(self, sample: Sample) -> np.ndarray:
        path = self.videos.get(sample.id)
        if path is None:
            raise MissingResourceError(f"no generated video for sample {sample.id!r} in {self.directory}")
        return read_video(path, audio=False).frames
