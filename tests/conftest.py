"""Shared fixtures: small real-face clips written as mp4 (no downloads: scikit-image ships the
astronaut photograph), and helpers to run the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op torch thread per test: the networks in tests are small, and on 2 shared cores two
    threads ran them up to 20x slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def levenshtein(a, b) -> int:
    """Edit distance between two sequences: an independent reference for the WER counts."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def face_frames(num_frames: int, size: int = 128, shift: int = 0) -> np.ndarray:
    """A real face (scikit-image's astronaut photograph) with a little horizontal motion."""
    import cv2
    import skimage.data

    face = cv2.resize(skimage.data.astronaut()[0:300, 100:400], (size, size), interpolation=cv2.INTER_AREA)
    return np.stack([np.roll(face, (i % 5) - 2 + shift, axis=1) for i in range(num_frames)])


def tone(num_frames: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(num_frames * 640) / 16000
    return (0.2 * np.sin(2 * np.pi * freq * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture
def face_folder(tmp_path: Path) -> Path:
    """A folder dataset of two 1.2 s clips with transcripts."""
    from tfgbench.media.io import write_video

    root = tmp_path / "clips"
    root.mkdir()
    for k, words in enumerate(["bin blue at f two now", "place red by g nine soon"]):
        write_video(root / f"clip{k}.mp4", face_frames(30, shift=k), tone(30, 200 + 50 * k), quality="standard")
        (root / f"clip{k}.txt").write_text(f"Text:  {words.upper()}\nConf:  5\n")
    return root


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m tfgbench.cli ARGS`` in a subprocess and return the completed process."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "tfgbench.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"tfgbench {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_fake_lrs2(root: Path, n: int = 4, train: int = 3) -> list:
    """An LRS2-layout folder (``main/<video>/<utt>.mp4`` + ``.txt`` + TalkLip ``.npy`` face boxes,
    ``train.txt``/``val.txt``) made of the first ``n`` synthetic *test* clips: the first ``train``
    in the train list, the rest in val. Returns the samples in order."""
    import shutil

    from tfgbench.data.synthetic import SyntheticDataset

    syn = SyntheticDataset(split="test")
    samples = []
    for k, sid in enumerate(syn.ids()[:n]):
        s = syn.load(sid)
        samples.append(s)
        dst = root / "main" / "6330311066473698535" / f"{k:05d}.mp4"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(syn.video_path(sid), dst)
        dst.with_suffix(".txt").write_text(f"Text:  {s.transcript.upper()}\nConf:  4\n")
        np.save(dst.with_suffix(".npy"), s.boxes)
    (root / "train.txt").write_text("".join(f"6330311066473698535/{k:05d}\n" for k in range(train)))
    (root / "val.txt").write_text("".join(f"6330311066473698535/{k:05d}\n" for k in range(train, n)))
    return samples


@pytest.fixture(scope="module")
def synthetic_test_clips(tmp_path_factory) -> Path:
    """One clip of each unseen test speaker of the synthetic corpus (8 clips; a pure function of the
    corpus seed, generated here). Shared by the plugin, batching and Ray tests."""
    from tfgbench.data.synthetic.generation import DEFAULT_SIZES, generate

    out = tmp_path_factory.mktemp("corpus")
    generate(out, splits=("test",), sizes={**DEFAULT_SIZES, "test": (DEFAULT_SIZES["test"][0], 1)}, workers=1,
             progress=False)
    return out
