"""The runner: resumable after a real kill, failures stored as error rows, cache keyed by model."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
from conftest import face_frames, run_cli, tone
from plugin_factory import dummy_plugin_site

from tfgbench.media.io import write_video


def make_clips(root, n: int, frames: int = 10):
    root.mkdir(parents=True)
    for k in range(n):
        write_video(root / f"c{k:02d}.mp4", face_frames(frames, size=64, shift=k), tone(frames), quality="standard")
    return root


def stored(db) -> list[tuple]:
    if not db.is_file():
        return []
    try:
        con = sqlite3.connect(db, timeout=1)
        return con.execute("SELECT sample_id, run_id FROM results WHERE error IS NULL").fetchall()
    except sqlite3.OperationalError:
        return []


def test_killed_run_loses_only_samples_in_flight_and_resumes(tmp_path):
    data = make_clips(tmp_path / "clips", 12)
    env = {**os.environ, "PYTHONPATH": str(dummy_plugin_site(tmp_path / "site"))}
    work = tmp_path / "work"
    db = work / "results.sqlite"
    args = [sys.executable, "-m", "tfgbench.cli", "run", "--model", "dummy-shift", "--model-arg", "delay=0.25",
            "--dataset", "folder", "--data-root", str(data), "--metrics", "psnr", "--workdir", str(work),
            "--no-progress"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(stored(db)) < 3 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = dict(stored(db))
    assert 3 <= len(first) < 12, "the kill should land mid-run"
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    out = run_cli(*args[3:], env={"PYTHONPATH": env["PYTHONPATH"]}).stdout
    assert f"{len(first)} already stored" in out
    second = dict(stored(db))
    assert len(second) == 12
    assert all(second[i] == run_id for i, run_id in first.items()), "stored samples must not be recomputed"
    # no half-written cache files survive
    assert not [p for p in work.rglob("*.tmp")]


def test_failures_become_error_rows_and_the_run_goes_on(tmp_path, face_folder):
    env = {"PYTHONPATH": str(dummy_plugin_site(tmp_path / "site"))}
    (face_folder / "zz-corrupt.mp4").write_bytes(b"not a video at all")
    work = tmp_path / "work"
    out = run_cli("run", "--model", "dummy-shift", "--model-arg", 'mode="nan-second"', "--dataset", "folder",
                  "--data-root", str(face_folder), "--metrics", "psnr,ssim", "--workdir", str(work),
                  "--no-progress", "--allow-failures", env=env).stdout
    assert "2 failed" in out
    con = sqlite3.connect(work / "results.sqlite")
    errors = dict(con.execute("SELECT sample_id, error FROM results "
                              "WHERE error IS NOT NULL AND protocol='psnr/talklip'"))
    assert set(errors) == {"clip1", "zz-corrupt"}
    assert "NaN" in errors["clip1"]
    assert "zz-corrupt.mp4" in errors["zz-corrupt"]
    ok = con.execute("SELECT COUNT(*) FROM results WHERE error IS NULL").fetchone()[0]
    assert ok == 2  # clip0: psnr + ssim
    table = run_cli("table", "--workdir", str(work)).stdout
    assert "⚠ 1/3, 2 failed" in table  # flagged, no partial average


def test_wrong_shape_and_exceptions_are_stored(tmp_path, face_folder):
    env = {"PYTHONPATH": str(dummy_plugin_site(tmp_path / "site"))}
    for mode, needle in (('"short"', "as many frames"), ('"raise"', "the model exploded")):
        work = tmp_path / mode.strip('"')
        run_cli("run", "--model", "dummy-shift", "--model-arg", f"mode={mode}", "--dataset", "folder",
                "--data-root", str(face_folder), "--metrics", "psnr", "--workdir", str(work), "--no-progress",
                "--allow-failures", env=env)
        errors = [r[0] for r in sqlite3.connect(work / "results.sqlite").execute("SELECT error FROM results")]
        assert len(errors) == 2 and all(needle in e for e in errors)


def test_cache_is_keyed_by_model_settings(tmp_path, face_folder):
    """Two settings of one model never share cached videos (lm-eval-harness's cache bug)."""
    import sys

    from tfgbench.runner import RunSpec, run

    sys.path.insert(0, str(dummy_plugin_site(tmp_path / "site")))
    import importlib

    importlib.invalidate_caches()
    work = tmp_path / "work"
    try:
        for pixels in (1, 7):
            spec = RunSpec(model="dummy-shift", dataset="folder", data_root=str(face_folder), metrics=["psnr"],
                           workdir=str(work), model_args={"pixels": pixels})
            run(spec, progress=False, log=lambda _: None)
    finally:
        sys.path.remove(str(tmp_path / "site"))
    dirs = sorted({p.parent for p in (work / "videos").rglob("*.mp4")})
    assert len(dirs) == 2
    from tfgbench.media.io import read_video

    a, b = (read_video(d / "clip0.mp4", audio=False).frames for d in dirs)
    assert not np.array_equal(a, b)
    rows = sqlite3.connect(work / "results.sqlite").execute("SELECT DISTINCT settings_hash FROM results").fetchall()
    assert len(rows) == 2


def test_worker_processes_store_the_same_rows(tmp_path, face_folder):
    from tfgbench.runner import RunSpec, run

    values = []
    for jobs in (1, 2):
        spec = RunSpec(model="static-frame", dataset="folder", data_root=str(face_folder), metrics=["psnr", "ssim"],
                       workdir=str(tmp_path / f"w{jobs}"), jobs=jobs)
        summary = run(spec, progress=False, log=lambda _: None)
        assert summary.samples == 2 and not summary.failed
        con = sqlite3.connect(tmp_path / f"w{jobs}" / "results.sqlite")
        values.append(con.execute("SELECT sample_id, protocol, value FROM results ORDER BY 1, 2").fetchall())
    assert values[0] == values[1] and len(values[0]) == 4


def test_synthetic_trained_weights_on_real_faces_get_a_warning(tmp_path, face_folder):
    from tfgbench.model import ModelInfo, TalkingFaceModel
    from tfgbench.runner import RunSpec, run

    class Toy(TalkingFaceModel):
        name = "toy"
        cache_outputs = False

        def __init__(self, trained_on: str) -> None:
            super().__init__("cpu", None, trained_on=trained_on)

        @property
        def info(self) -> ModelInfo:
            return ModelInfo(training_data=self.settings["trained_on"])

        def generate(self, sample):
            return sample.frames.copy()

    for trained_on, warned in (("synthetic corpus train split", True), ("LRS2 train", False)):
        lines: list[str] = []
        spec = RunSpec(model="toy", dataset="folder", data_root=str(face_folder), metrics=["psnr"],
                       workdir=str(tmp_path / trained_on.split()[0]))
        run(spec, model=Toy(trained_on), progress=False, log=lines.append)
        assert any("trained on synthetic corpus" in line and "'folder'" in line for line in lines) == warned
