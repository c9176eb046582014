"""A worker process that dies under --jobs N turns its sample into error rows; a fresh worker takes
over and the run finishes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from conftest import face_frames, tone
from integrity_plugins import install

from tfgbench.media.io import write_video


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, with a time limit: a pool that never finishes must fail the test."""
    return subprocess.run([sys.executable, "-m", "tfgbench.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_a_worker_that_kills_itself_becomes_an_error_row(tmp_path):
    data = tmp_path / "clips"
    data.mkdir()
    for k in range(6):
        write_video(data / f"c{k:02d}.mp4", face_frames(8, size=64, shift=k), tone(8), quality="standard")
    env = {"PYTHONPATH": str(install(tmp_path / "site"))}
    work = tmp_path / "work"
    proc = run_cli("run", "--model", "forgetful", "--model-arg", 'die_on="c02"', "--jobs", "2", "--dataset", "folder",
                   "--data-root", str(data), "--metrics", "psnr,ssim", "--workdir", str(work), "--no-progress",
                   env=env)
    assert "Traceback" not in proc.stderr, proc.stderr  # (the exit status reports the failure)
    assert "6 samples scored" in proc.stdout and "1 failed" in proc.stdout, proc.stdout
    con = sqlite3.connect(work / "results.sqlite")
    errors = dict(con.execute("SELECT protocol, error FROM results WHERE sample_id='c02'"))
    assert set(errors) == {"psnr/talklip", "ssim/talklip"}
    assert all("worker process died (killed by signal SIGKILL)" in e for e in errors.values())
    ok = {r[0] for r in con.execute("SELECT sample_id FROM results WHERE error IS NULL")}
    assert ok == {"c00", "c01", "c03", "c04", "c05"}
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the next run retries nothing by default, and --retry-errors meets the same death again, cleanly
    again = run_cli("run", "--model", "forgetful", "--model-arg", 'die_on="c02"', "--jobs", "2", "--dataset",
                    "folder", "--data-root", str(data), "--metrics", "psnr,ssim", "--workdir", str(work),
                    "--no-progress", "--retry-errors", env=env)
    assert "1 samples scored, 5 already stored, 1 failed" in again.stdout, again.stdout + again.stderr
