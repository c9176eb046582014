"""The registry with real out-of-tree plugin distributions (dist-info + entry points on the path)."""

from __future__ import annotations

import sqlite3

from conftest import run_cli
from plugin_factory import dummy_plugin_site, write_distribution


def test_out_of_tree_model_is_listed_run_and_stored(tmp_path, face_folder):
    site = dummy_plugin_site(tmp_path / "site")
    env = {"PYTHONPATH": str(site)}
    listing = run_cli("list", "models", env=env).stdout
    assert "dummy-shift" in listing and "tfgb-dummy" in listing
    assert "ground-truth" in listing and "static-frame" in listing  # built-ins use the same mechanism
    work = tmp_path / "work"
    out = run_cli("run", "--model", "dummy-shift", "--dataset", "folder", "--data-root", str(face_folder),
                  "--metrics", "psnr", "--workdir", str(work), "--no-progress", env=env).stdout
    assert "dummy-shift" in out
    rows = sqlite3.connect(work / "results.sqlite").execute(
        "SELECT model, checkpoint_sha256, value FROM results WHERE error IS NULL").fetchall()
    assert len(rows) == 2
    assert all(r[0] == "dummy-shift" and r[1] == "0" * 64 and 0 < r[2] < 100 for r in rows)


def test_broken_plugin_fails_only_when_asked_and_names_its_distribution(tmp_path, face_folder):
    env = {"PYTHONPATH": str(dummy_plugin_site(tmp_path / "site"))}
    assert "broken-model" in run_cli("list", "models", env=env).stdout  # listing imports nothing
    proc = run_cli("run", "--model", "broken-model", "--dataset", "folder", "--data-root", str(face_folder),
                   "--metrics", "psnr", "--workdir", str(tmp_path / "w"), env=env, check=False)
    assert proc.returncode == 2
    assert "tfgb-dummy" in proc.stderr and "no_such_module_anywhere" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_name_suggests_the_closest(tmp_path):
    proc = run_cli("run", "--model", "static-frames", "--dataset", "folder", "--data-root", str(tmp_path),
                   check=False)
    assert proc.returncode == 2 and "Did you mean 'static-frame'" in proc.stderr


def test_duplicate_names_from_two_distributions_are_an_error(tmp_path):
    site = tmp_path / "site"
    write_distribution(site, "tfgb-dup", "tfgb_dup", {"__init__.py": ""},
                       {"tfgbench.models": {"static-frame": "tfgb_dup:Other"}})
    proc = run_cli("list", "models", env={"PYTHONPATH": str(site)}, check=False)
    assert proc.returncode == 2
    assert "static-frame" in proc.stderr and "tfgb-dup" in proc.stderr and "tfgbench" in proc.stderr
