"""``folder``: any directory of mp4 files (searched recursively) with optional ``.txt``
transcripts and optional ``.npy`` face boxes beside them. Sample id: the path relative to the
folder without ``.mp4``. It has one split, ``test``."""

from __future__ import annotations

from functools import cached_property

from tfgbench.data.files import FileDataset
from tfgbench.errors import MissingResourceError


class FolderDataset(FileDataset):
    name = "folder"
    about = "A folder dataset is any directory that holds .mp4 files (with optional .txt transcripts)."

    @cached_property
    def _ids(self) -> list[str]:
        ids = sorted(p.relative_to(self.root).with_suffix("").as_posix() for p in self.root.rglob("*.mp4"))
        if not ids:
            raise MissingResourceError(f"{self.root}: no .mp4 files found (dataset 'folder' scores every .mp4 "
                                       "below the folder given with --data-root)")
        return ids

    def ids(self) -> list[str]:
        return self._ids
