"""LRS2 and LRS3 in their official layouts.

* LRS2 (BBC, ``lrs2_v1``): ``<root>/main/<video>/<utt>.mp4`` with ``<utt>.txt`` transcripts
  (``Text:  WORDS``) and the split lists ``<root>/{train,val,test}.txt``. The test split is the
  1,243 utterances of ``test.txt`` (TalkLip's ``test_partial.tsv`` lists the same ids).
  Sample id: ``<video>/<utt>``.
* LRS3 (TED): ``<root>/{test,trainval,pretrain}/<speaker>/<utt>.mp4`` with ``.txt`` transcripts.
  The test split is every clip under ``test/``. Sample id: ``<speaker>/<utt>``.

Roots come from ``--data-root`` or ``$TFGBENCH_LRS2`` / ``$TFGBENCH_LRS3``. Both are 25 fps /
16 kHz already; other rates would be converted on load (:mod:`tfgbench.media.resample`).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from tfgbench.data.files import FileDataset, read_id_list
from tfgbench.errors import MissingResourceError

#: the protocols the papers report on LRS (Wav2Lip/TalkLip LSE, TalkLip WER1 and WER2)
LRS_PROTOCOLS = {"lse": "lse/wav2lip", "wer": ("wer/talklip-avhubert", "wer/talklip-conformer")}


class LRS2(FileDataset):
    name = "lrs2"
    default_protocols = LRS_PROTOCOLS
    splits = ("test", "val", "train")
    env = "TFGBENCH_LRS2"
    boxes_env = "TFGBENCH_LRS2_BOXES"
    about = ("LRS2 (Lip Reading Sentences 2, BBC) is licensed by the University of Oxford VGG group: "
             "https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs2.html . tfgbench expects the official "
             "layout: DIR/main/<video>/<utt>.mp4 (+ .txt transcripts) and DIR/test.txt.")

    def video_root(self) -> Path:
        return self.root / "main"

    @cached_property
    def _ids(self) -> list[str]:
        listing = self.root / f"{self.split}.txt"
        if not listing.is_file():
            raise MissingResourceError(f"LRS2 split list {listing} not found; the official release has "
                                       "train.txt, val.txt and test.txt next to main/")
        return read_id_list(listing)

    def ids(self) -> list[str]:
        return self._ids


class LRS3(FileDataset):
    name = "lrs3"
    default_protocols = LRS_PROTOCOLS
    splits = ("test", "trainval", "pretrain")
    env = "TFGBENCH_LRS3"
    boxes_env = "TFGBENCH_LRS3_BOXES"
    about = ("LRS3-TED is licensed by the University of Oxford VGG group: "
             "https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs3.html . tfgbench expects the official "
             "layout: DIR/test/<speaker>/<utt>.mp4 (+ .txt transcripts).")

    def video_root(self) -> Path:
        return self.root / self.split

    @cached_property
    def _ids(self) -> list[str]:
        base = self.video_root()
        if not base.is_dir():
            raise MissingResourceError(f"LRS3 split folder {base} not found (expected DIR/{self.split}/"
                                       "<speaker>/<utt>.mp4)")
        return sorted(p.relative_to(base).with_suffix("").as_posix() for p in base.glob("*/*.mp4"))

    def ids(self) -> list[str]:
        return self._ids
