"""Datasets backed by mp4 files on disk: shared loading for LRS2, LRS3 and plain folders.

**Version** (part of every result's key and of the video-cache path): the sha256 of the id list,
the size and modification time (ns) of every sample's ``.mp4`` and ``.txt``, and the full
contents of :data:`CONTENT_SAMPLE` clips spread evenly over the split (video and transcript).
Re-extracting, editing or replacing a clip changes its size or mtime, so old rows and cached
videos are not reused; copying the data elsewhere (new mtimes) also gives a new version, which
costs a re-run, never a wrong number. It is computed once per dataset object: a few stats per clip
(well under a second for LRS2's 1,243 test clips on a local disk).

**Face boxes** (:meth:`FileDataset.boxes_key`): the sha256 of every box file the split uses, and,
when some clip has none, the detector that fills in (S3FD with the sha256 of ``sfd_face.pth``, or
OpenCV's Haar cascade with the sha256 of its XML file). Each sample records the source it used in
``sample.meta["boxes_source"]`` (the box file or the detector name) and ``sample.meta["boxes_key"]``
(with the hash); the runner stores the latter with every row of the sample.
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from tfgbench.data.base import Dataset, check_sample_id
from tfgbench.data.boxes import detect_face_boxes, load_box_file
from tfgbench.data.sample import Sample
from tfgbench.errors import MediaError, MissingResourceError, TfgbenchError
from tfgbench.media.io import read_video

#: how many clips of a split are hashed in full for its version
CONTENT_SAMPLE = 8
#: bumped when box detection (key frames, interpolation, fallback) changes its boxes
BOX_DETECTION_VERSION = 1


def load_transcript(path: Path) -> tuple[str | None, str | None]:
    """``(transcript, problem)`` from a ``.txt`` beside the video: LRS-style (``Text:  WORDS`` on the
    first line, followed by ``Conf:`` and word timings) or plain text. ``problem`` names the file and
    says what is wrong when there is no usable transcript: it does not exist, it holds no words, or
    it is not valid UTF-8 (never decoded into replacement characters that would count as words)."""
    if not path.is_file():
        return None, f"{path}: no transcript file"
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, (f"{path}: the transcript is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
                      "save it as UTF-8")
    lines = text.splitlines()
    words = next((line[len("Text:"):].strip() for line in lines if line.startswith("Text:")), None)
    if words is None:
        words = " ".join(line.strip() for line in lines if line.strip())
    if not words.strip():
        return None, f"{path}: the transcript is empty"
    return words, None


def read_transcript(path: Path) -> str | None:
    """The transcript of :func:`load_transcript`, or ``None`` when there is no usable one."""
    return load_transcript(path)[0]


def detector_key(s3fd: str | Path | None = None) -> str:
    """The face detector :func:`tfgbench.face.get_detector` would use, with its weights' sha256:
    ``s3fd:<sha256>`` or ``opencv-haar:<sha256 of the cascade XML>``, plus the detection-rule version."""
    from tfgbench.face import find_s3fd
    from tfgbench.filehash import file_sha256

    path = find_s3fd(s3fd)
    if path is not None:
        return f"s3fd:{file_sha256(path, 'S3FD weights')}/v{BOX_DETECTION_VERSION}"
    import cv2

    xml = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    digest = file_sha256(xml, "OpenCV Haar cascade") if xml.is_file() else f"opencv-{cv2.__version__}"
    return f"opencv-haar:{digest}/v{BOX_DETECTION_VERSION}"


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
        return self._version

    @cached_property
    def _version(self) -> str:
        ids = self.ids()
        h = hashlib.sha256()
        for sample_id in ids:
            h.update(f"{sample_id}\n".encode())
            for suffix in (".mp4", ".txt"):
                try:
                    st = (self.video_root() / f"{sample_id}{suffix}").stat()
                    h.update(f"{suffix} {st.st_size} {st.st_mtime_ns}\n".encode())
                except OSError:
                    h.update(f"{suffix} missing\n".encode())
        step = max(1, len(ids) // CONTENT_SAMPLE)
        for sample_id in ids[::step][:CONTENT_SAMPLE]:
            for suffix in (".mp4", ".txt"):
                path = self.video_root() / f"{sample_id}{suffix}"
                if path.is_file():
                    h.update(f"{sample_id}{suffix} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
        return f"{len(ids)}-{h.hexdigest()[:12]}"

    def _box_file(self, sample_id: str) -> Path | None:
        candidates = [self.video_root() / f"{sample_id}.npy"]
        for env in (self.boxes_env, "TFGBENCH_BOXES"):
            if os.environ.get(env):
                candidates.append(Path(os.environ[env]) / f"{sample_id}.npy")
        return next((p for p in candidates if p.is_file()), None)

    def boxes_key(self) -> str:
        return self._boxes_key

    @cached_property
    def _boxes_key(self) -> str:
        files, missing = hashlib.sha256(), 0
        count = 0
        for sample_id in self.ids():
            path = self._box_file(sample_id)
            if path is None:
                missing += 1
                continue
            count += 1
            files.update(f"{sample_id}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
        parts = [f"box-files:{count}:{files.hexdigest()[:16]}"] if count else []
        if missing:
            parts.append(self._detector_key)
        return " + ".join(parts)

    @cached_property
    def _detector_key(self) -> str:
        return detector_key()

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
        missing: dict[str, str] = {}
        audio = media.audio
        if audio is None or audio.size == 0:
            missing["audio"] = f"{path}: the video has no audio track" if audio is None \
                else f"{path}: the audio track is empty"
            audio = np.zeros(0, dtype=np.float32)
        transcript, problem = load_transcript(path.with_suffix(".txt"))
        if problem:
            missing["transcript"] = problem
        box_file = self._box_file(sample_id)
        if not self.need_boxes:
            boxes, source, key = None, "not needed", "not loaded"
        elif box_file is not None:
            boxes, source = load_box_file(box_file, len(media.frames)), str(box_file)
            key = f"box-file:{hashlib.sha256(box_file.read_bytes()).hexdigest()} {box_file}"
        else:
            detector = self._face_detector()
            boxes, source = detect_face_boxes(media.frames, detector=detector), detector.name
            key = self._detector_key
        sample = Sample(id=sample_id, frames=media.frames, audio=audio, transcript=transcript, boxes=boxes,
                        path=path, missing=missing,
                        meta={"boxes_source": source, "boxes_key": key, "source_fps": media.source_fps,
                              "source_sample_rate": media.source_sample_rate,
                              "rotation": media.rotation})
        return sample.validate()


def read_id_list(path: Path) -> list[str]:
    """Sample ids from a list file: the first whitespace-separated token of each non-empty line
    (LRS2 ``test.txt`` lines look like ``6330311066473698535/00011`` or ``... NF``). Each id is
    checked (:func:`tfgbench.data.base.check_sample_id`); a bad one names the file and line."""
    if not path.is_file():
        raise TfgbenchError(f"{path}: id list not found")
    ids = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.strip():
            ids.append(check_sample_id(line.split()[0], f"{path}, line {number}"))
    return ids
