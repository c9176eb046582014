"""Generated videos on disk: the runner's cache, and videos generated elsewhere.

The cache is keyed by model name, checkpoint sha256 and settings hash (never by model name
alone: one model's outputs must never be served as another's), then dataset, version, face-box
source (generators crop faces with the sample's boxes) and split:
``<workdir>/videos/<model>/<ckpt[:12]>-<settings>/<dataset>/<version>[-boxes-<hash>]/<split>/<id>.mp4``
(no box suffix for datasets whose exact boxes ship with them). Delivery is not part of the path:
the cache holds the generated frames, which ``--delivery official`` encodes after reading them.
Sample ids are checked before they become file names, and a path that would leave the cache
folder is refused.
Videos are stored bit-exact (lossless RGB H.264, see :data:`tfgbench.media.io.QUALITY`) with the
sample's audio, so a resumed run scores exactly the frames the first run produced, and each file
is a playable result. Files are written to a temporary name and renamed, so a killed run never
leaves a truncated video behind.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgbench.data.base import Dataset, SampleIdError, check_sample_id
from tfgbench.data.sample import Sample
from tfgbench.errors import MediaError, MissingResourceError, TfgbenchError
from tfgbench.media.io import read_video, write_video
from tfgbench.model import ModelInfo, TalkingFaceModel
from tfgbench.paths import sha256_file
from tfgbench.store import DatasetKey, ModelKey


class VideoCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sample_id: str) -> Path:
        check_sample_id(sample_id, f"video cache {self.root}")
        path = self.root / f"{sample_id}.mp4"
        if os.path.commonpath([os.path.abspath(path), os.path.abspath(self.root)]) != os.path.abspath(self.root):
            raise SampleIdError(f"video cache {self.root}: sample id {sample_id!r} would leave the cache folder")
        return path

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


def cache_for(workdir: Path, model: ModelKey, dataset: DatasetKey) -> VideoCache:
    version = dataset.dataset_version
    if dataset.boxes != "dataset":
        version += "-boxes-" + hashlib.sha256(dataset.boxes.encode()).hexdigest()[:12]
    return VideoCache(workdir / "videos" / model.model / f"{model.checkpoint_sha256[:12]}-{model.settings_hash}"
                      / dataset.dataset / version / dataset.split)


LAYOUTS = ("name files <id>.mp4 in subfolders (e.g. DIR/spkA/00001.mp4), or <id with / as _>.mp4 "
           "(e.g. DIR/spkA_00001.mp4)")


@dataclass
class Matched:
    """What :func:`match_videos` found: sample id -> file, and the files no sample claimed."""

    videos: dict[str, Path]
    unmatched_files: list[Path]


def match_videos(directory: Path, dataset: Dataset, ids: list[str], all_ids: list[str] | None = None) -> Matched:
    """Map sample ids to mp4 files under ``directory``: ``<id>.mp4``, ``<id with / as _>.mp4``,
    or else ``<last part of id>.mp4`` anywhere below, when that name is unambiguous.

    Every id of the split (``all_ids``, default ``ids``) takes part, so a file is never given to a
    sample when another sample of the split could own it too: two ids sharing a last part
    (``spkA/00001``, ``spkB/00001``) that fall back to the same ``00001.mp4``, or one id whose
    last part names several files, is a :class:`TfgbenchError` listing the colliding ids and files
    and the layouts that avoid it. Files that no sample of the split claims are returned in
    ``unmatched_files`` for the caller to report."""
    if not directory.is_dir():
        raise MissingResourceError(f"--videos {directory}: folder not found")
    all_ids = list(all_ids) if all_ids is not None else list(ids)
    files = {p.relative_to(directory).with_suffix("").as_posix(): p for p in sorted(directory.rglob("*.mp4"))}
    claims: dict[str, Path] = {}
    for sample_id in all_ids:
        for key in (sample_id, sample_id.replace("/", "_")):
            if key in files:
                claims[sample_id] = files[key]
                break
    taken = set(claims.values())
    by_stem: dict[str, list[Path]] = {}
    for p in files.values():
        if p not in taken:
            by_stem.setdefault(p.stem, []).append(p)
    problems = []
    for sample_id in all_ids:
        if sample_id in claims:
            continue
        candidates = by_stem.get(sample_id.rsplit("/", 1)[-1], [])
        if len(candidates) == 1:
            claims[sample_id] = candidates[0]
        elif len(candidates) > 1:
            names = ", ".join(str(c.relative_to(directory)) for c in candidates[:5])
            problems.append(f"sample {sample_id} matches {len(candidates)} files: {names}")
    owners: dict[Path, list[str]] = {}
    for sample_id, path in claims.items():
        owners.setdefault(path, []).append(sample_id)
    for path, owner_ids in owners.items():
        if len(owner_ids) > 1:
            shown = ", ".join(owner_ids[:6]) + (f" ... ({len(owner_ids)} in all)" if len(owner_ids) > 6 else "")
            problems.append(f"{path.relative_to(directory)} could be the video of samples {shown}")
    if problems:
        listing = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise TfgbenchError(f"--videos {directory}: {len(problems)} ambiguous file name(s) for dataset "
                            f"{dataset.name}/{dataset.split}:\n  {listing}\nTo make every match unique, {LAYOUTS}.")
    wanted = set(ids)
    unmatched = sorted(set(files.values()) - set(claims.values()))
    return Matched({i: p for i, p in claims.items() if i in wanted}, unmatched)


class ExternalVideos(TalkingFaceModel):
    """A pseudo-model that returns videos generated elsewhere, matched to samples by file name
    (``tfgbench score``). Its checkpoint hash is the sha256 of the matched files' names and bytes, so
    scoring a changed folder under the same name never reuses stale rows."""

    name = "external"
    uses_boxes = False

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
