"""The synthetic corpus as tfgbench datasets: ``synthetic`` (train/val/test) and ``synthetic-ood``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tfgbench.data.base import Dataset
from tfgbench.data.sample import SAMPLES_PER_FRAME, Sample
from tfgbench.errors import MediaError, MissingResourceError, SampleError

from .generation import GENERATOR_VERSION, corpus_version, ensure_corpus


def default_root(seed: int = 0) -> Path:
    """``$TFGBENCH_HOME/synthetic/<corpus version>``."""
    from tfgbench.paths import home

    return home() / "synthetic" / corpus_version(seed)


class _SyntheticBase(Dataset):
    _dirs: ClassVar[dict[str, str]] = {}
    # the evaluators trained on the corpus's train split (shipped in tfgbench/weights/)
    default_protocols = {"lse": "lse/synthetic", "wer": ("wer/synthetic-avhubert", "wer/synthetic-conformer")}

    def __init__(self, root: str | Path | None = None, split: str = "test", *, seed: int = 0,
                 verify: bool = True, progress: bool = True) -> None:
        super().__init__(root, split)
        self.seed = seed
        self.verify = verify
        self.progress = progress
        self._auto = root is None
        if self.root is None:
            self.root = default_root(seed)
        self._manifest: dict | None = None
        self._clips: dict[str, dict] | None = None

    @property
    def directory(self) -> Path:
        """The folder holding this split's clips."""
        return self.root / self._dirs[self.split]

    @property
    def version(self) -> str:
        if self._auto:
            return corpus_version(self.seed)
        return str(self.manifest.get("version", f"synthetic-v{GENERATOR_VERSION}-unknown"))

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            if self._auto:
                # only the split asked for: the test split alone is ready in seconds
                ensure_corpus(self.root, self.seed, splits=(self._dirs[self.split],), progress=self.progress)
            path = self.root / "manifest.json"
            if not path.is_file():
                raise MissingResourceError(
                    f"{path}: no synthetic corpus here (manifest.json is missing). Generate one with "
                    f"`tfgbench data synthetic --out {self.root}`, or leave the root out to use "
                    "$TFGBENCH_HOME/synthetic/ (generated automatically on first use).")
            try:
                self._manifest = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise SampleError(f"{path}: unreadable manifest ({e})") from e
            if self._dirs[self.split] not in self._manifest.get("splits", []):
                raise MissingResourceError(
                    f"{self.root}: the synthetic corpus has no {self._dirs[self.split]!r} split (it has "
                    f"{', '.join(self._manifest.get('splits', [])) or 'none'}); generate it with "
                    f"`tfgbench data synthetic --out {self.root} --splits {self._dirs[self.split]}`")
        return self._manifest

    def _clip_table(self) -> dict[str, dict]:
        if self._clips is None:
            d = self._dirs[self.split]
            self._clips = {c["id"]: c for c in self.manifest["clips"] if c["split"] == d}
        return self._clips

    def ids(self) -> list[str]:
        return sorted(self._clip_table())

    def video_path(self, sample_id: str) -> Path:
        return self.directory / f"{sample_id}.mp4"

    def _entry(self, sample_id: str) -> dict:
        entry = self._clip_table().get(sample_id)
        if entry is None:
            raise SampleError(f"{self.root}: no clip {sample_id!r} in the {self.name} {self.split} split")
        return entry

    def alignment(self, sample_id: str) -> dict[str, Any]:
        """The clip's JSON ground truth (no video decoding): words, phonemes, boxes, landmarks."""
        entry = self._entry(sample_id)
        path = self.directory / f"{sample_id}.json"
        if not path.is_file():
            raise SampleError(f"{path}: the alignment file of {sample_id!r} is missing")
        data = path.read_bytes()
        if self.verify and _sha(data) != entry["files"]["json"]:
            raise SampleError(f"{path}: the alignment file does not match the manifest (changed or corrupt)")
        try:
            return json.loads(data)
        except ValueError as e:
            raise SampleError(f"{path}: the alignment file is not valid JSON ({e})") from e

    def load(self, sample_id: str) -> Sample:
        from tfgbench.media.io import read_video

        entry = self._entry(sample_id)
        mp4 = self.video_path(sample_id)
        if not mp4.is_file():
            raise MediaError(f"{mp4}: the video of {sample_id!r} is missing")
        data = mp4.read_bytes()
        if self.verify and _sha(data) != entry["files"]["mp4"]:
            raise MediaError(f"{mp4}: the video does not match the manifest (changed or corrupt)")
        align = self.alignment(sample_id)
        media = read_video(data, name=str(mp4))  # bytes already read for the checksum: no second read
        if media.audio is None or media.audio.size == 0:
            raise MediaError(f"{mp4}: the audio track is missing or empty")
        frames, audio = media.frames, media.audio
        t = int(align.get("num_frames", -1))
        if frames.shape[0] != t:
            raise SampleError(f"{mp4}: {frames.shape[0]} frames, but its alignment "
                              f"{mp4.with_suffix('.json')} says {t}")
        if not np.isfinite(audio).all() or audio.size < (t - 1) * SAMPLES_PER_FRAME or \
                float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < 1e-3:
            raise MediaError(f"{mp4}: broken audio track ({audio.size} samples for {t} frames, "
                             "silent, short or not finite)")
        audio = _fit(audio, t * SAMPLES_PER_FRAME)
        try:
            boxes = np.asarray(align["face_boxes"], dtype=np.int32).reshape(t, 4)
            mouth = np.asarray(align["mouth_landmarks"], dtype=np.float32).reshape(t, -1, 2)
            mouth_box = np.asarray(align["mouth_boxes"], dtype=np.int32).reshape(t, 4)
            words = [{"word": w["word"], "start": float(w["start"]), "end": float(w["end"])} for w in align["words"]]
            phones = [{"phoneme": p["phoneme"], "start": float(p["start"]), "end": float(p["end"]),
                       "word": int(p["word"])} for p in align["phonemes"]]
        except (KeyError, TypeError, ValueError) as e:
            raise SampleError(f"{mp4.with_suffix('.json')}: malformed alignment ({type(e).__name__}: {e})") from e
        transcript = " ".join(w["word"] for w in words)
        meta = {"mouth": mouth, "mouth_box": mouth_box, "alignment": {"words": words, "phonemes": phones},
                "speaker": align.get("speaker", entry["speaker"]),
                "mouth_params": np.asarray(align.get("mouth_params", []), dtype=np.float32)}
        return Sample(id=sample_id, frames=frames, audio=audio, transcript=transcript, boxes=boxes,
                      path=mp4, meta=meta).validate()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    if audio.size >= n:
        return np.ascontiguousarray(audio[:n], dtype=np.float32)
    return np.concatenate([audio, np.zeros(n - audio.size, np.float32)])


class SyntheticDataset(_SyntheticBase):
    """The synthetic GRID-style corpus: splits ``train``, ``val``, ``test`` (disjoint speakers)."""

    name = "synthetic"
    splits = ("train", "val", "test")
    _dirs: ClassVar[dict[str, str]] = {"train": "train", "val": "val", "test": "test"}


class SyntheticOODDataset(_SyntheticBase):
    """The synthetic corpus's out-of-domain test set: speakers with voices and face styles never
    seen in training (the analogue of testing an LRS2-trained model on LRS3)."""

    name = "synthetic-ood"
    splits = ("test",)
    _dirs: ClassVar[dict[str, str]] = {"test": "ood"}
