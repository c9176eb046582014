"""Out-of-tree plugins for the result-integrity tests: a model that forgets to declare its checkpoint
hash (and can kill its own process on one chosen sample), and a dataset whose ids come from a JSON
list. Installed as a real distribution on a temporary path (see plugin_factory)."""

from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager
from pathlib import Path

from plugin_factory import write_distribution

MODEL = '''
import json
import os
import signal
from pathlib import Path

import numpy as np

from tfgbench import ModelInfo, TalkingFaceModel
from tfgbench.data.base import Dataset
from tfgbench.data.sample import Sample


class Forgetful(TalkingFaceModel):
    """Output depends on the --checkpoint file's bytes and on a --model-arg file; declares no hash."""

    name = "forgetful"

    def __init__(self, device="cpu", checkpoint=None, reference=None, die_on=None):
        super().__init__(device, checkpoint, reference=reference, die_on=die_on)

    @property
    def info(self):
        return ModelInfo(training_data="none", licence="MIT")  # checkpoint_sha256 left at "none"

    def generate(self, sample):
        if self.settings["die_on"] is not None and sample.id == self.settings["die_on"]:
            os.kill(os.getpid(), signal.SIGKILL)  # a segfault or an OOM kill, as the parent sees it
        shift = 1
        if self.checkpoint is not None:
            shift += len(Path(self.checkpoint).read_bytes()) % 7
        if self.settings["reference"] is not None:
            shift += len(Path(self.settings["reference"]).read_bytes()) % 5
        return np.roll(sample.frames, shift, axis=2)


class Sleepy(TalkingFaceModel):
    """The ground truth, slowly: sleeps $TFGB_SLEEP seconds per sample (default 3; not part of the key,
    so a resumed run can be fast) and writes its pid to $TFGB_PIDS/<pid> when built (the parent's and
    every worker's), so a test can check that no process is left behind."""

    name = "sleepy"

    def __init__(self, device="cpu", checkpoint=None):
        super().__init__(device, checkpoint)
        if os.environ.get("TFGB_PIDS"):
            Path(os.environ["TFGB_PIDS"], str(os.getpid())).write_text("")

    @property
    def info(self):
        return ModelInfo(training_data="none", licence="MIT")

    def generate(self, sample):
        import time

        time.sleep(float(os.environ.get("TFGB_SLEEP", "3")))
        return sample.frames.copy()


class SleepyBatch(Sleepy):
    """:class:`Sleepy` with batch support (batches of 2 by default): the runner's batched path."""

    name = "sleepy-batch"
    batch_size = 2


class BadOutput(TalkingFaceModel):
    """The ground truth, except for samples whose id names a failure: ``...model_nan`` (NaN floats),
    ``...model_shape`` (half the width), ``...model_frames`` (one frame short)."""

    name = "bad-output"
    cache_outputs = False

    @property
    def info(self):
        return ModelInfo(training_data="none", licence="MIT")

    def generate(self, sample):
        frames = sample.frames.copy()
        if sample.id.endswith("model_nan"):
            out = frames.astype(np.float32)
            out[0, 0, 0, 0] = np.nan
            return out
        if sample.id.endswith("model_shape"):
            return np.ascontiguousarray(frames[:, :, : frames.shape[2] // 2])
        if sample.id.endswith("model_frames"):
            return frames[:-1]
        return frames


class ListDataset(Dataset):
    """Ids from <root>/ids.json; every sample is the same tiny clip."""

    name = "id-list"

    def ids(self):
        return json.loads((self.root / "ids.json").read_text())

    def load(self, sample_id):
        frames = np.zeros((8, 32, 32, 3), np.uint8)
        return Sample(id=sample_id, frames=frames, audio=np.zeros(8 * 640, np.float32) + 0.1)
'''


def install(site: Path) -> Path:
    write_distribution(site, "tfgb-integrity", "tfgb_integrity", {"__init__.py": MODEL},
                       {"tfgbench.models": {"forgetful": "tfgb_integrity:Forgetful", "sleepy": "tfgb_integrity:Sleepy",
                                            "sleepy-batch": "tfgb_integrity:SleepyBatch",
                                            "bad-output": "tfgb_integrity:BadOutput"},
                        "tfgbench.datasets": {"id-list": "tfgb_integrity:ListDataset"}})
    return site


@contextmanager
def installed(site: Path):
    """The plugins importable in this process (entry points found through sys.path)."""
    install(site)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("tfgb_integrity", None)
        importlib.invalidate_caches()
