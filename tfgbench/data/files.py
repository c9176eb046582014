"""Datasets backed by mp4 files on disk: shared loading for LRS2, LRS3 and plain folders."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tfgbench.data.base import Dataset
from tfgbench.data.boxes import detect_face_boxes, load_box_file
from tfgbench.data.sample import Sample
from tfgbench.errors import MediaError, MissingResourceError, TfgbenchError
from tfgbench.media.io import read_video


def read_transcript(path: Path) -> str | None:
    """Transcript from a ``.txt`` beside the video: LRS-style (``Text:  WORDS`` on the first line,
    followed by ``Conf:`` and word timings) or plain text. ``None`` if the file does not exist."""
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for line in lines:
        if line.startswith("Text:"):
            return line[len("Text:"):].strip()
    return " ".join(line.strip() for line in lines if line.strip())


class FileDataset(Dataset):
    """A dataset whose sample ``id`` is the mp4 path relative to :meth:`video_root`, without
    ``.mp4``. Subclasses implement :meth:`video_root` and :meth:`ids`.

    Face boxes: ``<id>.npy`` beside the video or under ``$TFGBENCH_BOXES`` / ``boxes_env``
    (TalkLip's ``bbx_root`` layout), else detected (see :mod:`tfgbench.data.boxes`).
    """

    env: str = ""  # environment variable with the root
    boxes_env: str = "TFGBENCH_BOXES"
    about: str = ""  # what the dataset is, for the missing-root message

    def __init__(self, root: str | Path | None = None, split: str = "test") -> None:
        if root is None and self.env and os.environ.get(self.env):
            root = os.environ[self.env]
        super().__init__(root, split)
        if self.root is None or not self.root.is_dir():
            self._missing_root()

    def _missing_root(self) -> None:
        where = f"--data-root {self.root}" if self.root is not None else "no --data-root given"
        env = f", ${self.env} {'= ' + os.environ[self.env] if os.environ.get(self.env) else 'not set'}"
        raise MissingResourceError(
            f"dataset {self.name!r}: data not found ({where}{env if self.env else ''}).\n{self.about}\n"
            f"Point tfgbench at it with --data-root DIR" + (f" or {self.env}=DIR" if self.env else "")
            + ".\nNo data at hand? `--dataset synthetic` works right now: the synthetic corpus is "
            "generated locally, nothing to download.")

    def video_root(self) -> Path:
        assert self.root is not None
        return self.root

    def video_path(self, sample_id: str) -> Path:
        return self.video_root() / f"{sample_id}.mp4"

    @property
    def version(self) -> str:
        ids = self.ids()
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
        return f"{len(ids)}-{digest}"

    def _box_file(self, sample_id: str) -> Path | None:
        candidates = [self.video_root() / f"{sample_id}.npy"]
        for env in (self.boxes_env, "TFGBENCH_BOXES"):
            if os.environ.get(env):
                candidates.append(Path(os.environ[env]) / f"{sample_id}.npy")
        return next((p for p in candidates if p.is_file()), None)

    def _face_detector(self):
        """S3FD with the user's weights, else Haar (see :func:`tfgbench.face.get_detector`), built once."""
        if getattr(self, "_detector", None) is None:
            from tfgbench.face import get_detector

            self._detector = get_detector()
        return self._detector

    def load(self, sample_id: str) -> Sample:
        path = self.video_path(sample_id)
        if not path.is_file():
            raise MediaError(f"{path}: video of sample {sample_id!r} not found")
        media = read_video(path)
        if media.audio is None:
            raise MediaError(f"{path}: the video has no audio track")
        if media.audio.size == 0:
            raise MediaError(f"{path}: the audio track is empty")
        box_file = self._box_file(sample_id)
        if not self.need_boxes:
            boxes, source = None, "not needed"
        elif box_file is not None:
            boxes, source = load_box_file(box_file, len(media.frames)), str(box_file)
        else:
            detector = self._face_detector()
            boxes, source = detect_face_boxes(media.frames, detector=detector), detector.name
        sample = Sample(id=sample_id, frames=media.frames, audio=media.audio,
                        transcript=read_transcript(path.with_suffix(".txt")), boxes=boxes, path=path,
                        meta={"boxes_source": source, "source_fps": media.source_fps,
                              "source_sample_rate": media.source_sample_rate})
        return sample.validate()


def read_id_list(path: Path) -> list[str]:
    """Sample ids from a list file: the first whitespace-separated token of each non-empty line
    (LRS2 ``test.txt`` lines look like ``6330311066473698535/00011`` or ``... NF``)."""
    if not path.is_file():
        raise TfgbenchError(f"{path}: id list not found")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
