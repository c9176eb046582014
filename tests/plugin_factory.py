"""Writes real out-of-tree plugin distributions (package + dist-info with entry points) into a
folder that tests put on PYTHONPATH: the registry sees them exactly as it sees pip-installed ones."""

from __future__ import annotations

from pathlib import Path

DUMMY_MODEL = '''
import time

import numpy as np

from tfgbench import ModelInfo, TalkingFaceModel


class ShiftModel(TalkingFaceModel):
    """Shifts the ground-truth frames by one pixel; settings select failure modes for tests."""

    name = "dummy-shift"

    def __init__(self, device="cpu", checkpoint=None, mode="ok", delay=0.0, pixels=1):
        super().__init__(device, checkpoint, mode=mode, delay=float(delay), pixels=int(pixels))

    @property
    def info(self):
        return ModelInfo(checkpoint_sha256="0" * 64, training_data="none", licence="MIT")

    def generate(self, sample):
        time.sleep(self.settings["delay"])
        mode = self.settings["mode"]
        if mode == "nan" or (mode == "nan-second" and sample.id.endswith("1")):
            return np.full(sample.frames.shape, np.nan, np.float32)
        if mode == "short":
            return sample.frames[:-1]
        if mode == "raise":
            raise RuntimeError("the model exploded")
        return np.roll(sample.frames, self.settings["pixels"], axis=2)
'''


def write_distribution(site: Path, dist: str, package: str, files: dict[str, str],
                       entry_points: dict[str, dict[str, str]]) -> None:
    pkg = site / package
    pkg.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (pkg / name).write_text(text)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def dummy_plugin_site(site: Path) -> Path:
    """A distribution 'tfgb-dummy' with a working model and a broken one."""
    write_distribution(site, "tfgb-dummy", "tfgb_dummy",
                       {"__init__.py": DUMMY_MODEL, "broken.py": "import no_such_module_anywhere\n"},
                       {"tfgbench.models": {"dummy-shift": "tfgb_dummy:ShiftModel",
                                            "broken-model": "tfgb_dummy.broken:Model"}})
    return site
