"""The dataset contract: a named, versioned list of sample ids that loads samples on demand."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from tfgbench.data.sample import Sample


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
