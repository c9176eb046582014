"""--delivery official: the frames the metrics see went through the official scripts' encode, and the
choice is part of the key."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from conftest import face_frames, run_cli

from tfgbench.delivery import deliver, official_roundtrip
from tfgbench.errors import SampleError
from tfgbench.metrics.quality import psnr


def test_official_roundtrip_is_lossy_deterministic_and_keeps_the_shape():
    frames = face_frames(20)
    out = official_roundtrip(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert not np.array_equal(out, frames)
    value = np.mean([psnr(a, b) for a, b in zip(frames, out)])
    assert 25 < value < 50  # an H.264 CRF 23 encode of a face: lossy, not broken
    assert np.array_equal(official_roundtrip(frames), out)
    assert deliver(frames, "lossless") is frames


def test_official_delivery_refuses_odd_sizes():
    with pytest.raises(SampleError, match="even frame width and height"):
        official_roundtrip(face_frames(6, size=63))


def test_delivery_is_part_of_the_key(tmp_path, face_folder):
    work = tmp_path / "work"
    common = ("--model", "ground-truth", "--dataset", "folder", "--data-root", str(face_folder), "--metrics", "psnr",
              "--workdir", str(work), "--no-progress")
    run_cli("run", *common)
    out = run_cli("run", *common, "--delivery", "official").stdout
    assert "2 samples scored, 0 already stored" in out  # lossless rows were not reused
    assert "ground-truth [official delivery]" in out
    con = sqlite3.connect(work / "results.sqlite")
    values = dict(con.execute("SELECT delivery, SUM(num) / SUM(den) FROM results GROUP BY delivery"))
    assert values["lossless"] == 100.0 and 25 < values["official"] < 50
    assert {r[0] for r in con.execute("SELECT delivery FROM runs")} == {"lossless", "official"}
