"""The dataset contract: a named, versioned list of sample ids that loads samples on demand."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from tfgbench.data.sample import Sample
from tfgbench.errors import SampleError


class SampleIdError(SampleError):
    """A sample id that could escape the dataset or the run's folders (absolute, ``..``...)."""


def check_sample_id(sample_id: object, where: str) -> str:
    """Return ``sample_id`` if it is a safe relative id: a non-empty ``/``-separated path with no
    empty, ``.`` or ``..`` component, not absolute, without backslashes, drive letters or control
    characters. Ids become file names (``<workdir>/videos/.../<id>.mp4``, ``--videos DIR/<id>.mp4``),
    so a bad one could write outside the workdir or over a source video. Raises
    :class:`SampleIdError` naming ``where`` (the file and line the id came from) and the problem."""
    problem = None
    if not isinstance(sample_id, str) or not sample_id:
        problem = "it is empty"
    elif sample_id.startswith("/"):
        problem = "it is an absolute path"
    elif "\\" in sample_id:
        problem = "it contains a backslash"
    elif any(ord(c) < 32 or ord(c) == 127 for c in sample_id):
        problem = "it contains a control character"
    elif len(sample_id) > 1 and sample_id[1] == ":":
        problem = "it starts with a drive letter"
    else:
        parts = sample_id.split("/")
        if any(p == "" for p in parts):
            problem = "it has an empty path component (a leading, trailing or doubled '/')"
        elif any(p in (".", "..") for p in parts):
            problem = "it has a '.' or '..' path component"
    if problem:
        raise SampleIdError(f"{where}: invalid sample id {sample_id!r}: {problem}. Sample ids must be relative "
                            "paths such as 'speaker/00001', without '..', '.' or empty components.")
    return sample_id


class Dataset(ABC):
    """A split of a dataset.

    Subclasses set ``name`` and implement :meth:`ids` and :meth:`load`. ``version`` is part of
    every stored result's key, so two versions of a corpus are never mixed in one table.
    ``splits`` lists the split names the dataset knows.
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]] = ("test",)
    #: protocol(s) a bare metric family means on this dataset, e.g. {"lse": "lse/wav2lip"}
    default_protocols: ClassVar[dict[str, str | tuple[str, ...]]] = {}
    #: whether :meth:`load` must provide face boxes; the runner clears it when no protocol needs
    #: them, so datasets that detect faces can skip the work
    need_boxes: bool = True

    def __init__(self, root: str | Path | None = None, split: str = "test") -> None:
        if split not in self.splits:
            from tfgbench.errors import TfgbenchError

            raise TfgbenchError(f"dataset {self.name!r} has no split {split!r}; "
                                f"it has: {', '.join(self.splits)}")
        self.root = Path(root) if root is not None else None
        self.split = split

    @property
    def version(self) -> str:
        """A string that changes whenever the data behind the ids changes."""
        return "1"

    def boxes_key(self) -> str:
        """Where this split's face boxes come from, as part of every result's key (PSNR/SSIM crops
        and the crops of box-based generators depend on it). ``"dataset"``: exact boxes that ship
        with the data and are covered by :attr:`version`. Datasets that read box files or detect
        faces return the files' hash and/or the detector with its weights' sha256."""
        return "dataset"

    @abstractmethod
    def ids(self) -> list[str]:
        """The sample ids of this split, in a stable order."""

    @abstractmethod
    def load(self, sample_id: str) -> Sample:
        """Read one sample, converted to 25 fps / 16 kHz. Raises a TfgbenchError subclass
        naming the file on bad input."""

    def video_path(self, sample_id: str) -> Path | None:
        """The file behind a sample, when there is one (used to match externally generated videos)."""
        return None

    def __iter__(self) -> Iterator[Sample]:
        for sample_id in self.ids():
            yield self.load(sample_id)

    def __len__(self) -> int:
        return len(self.ids())
