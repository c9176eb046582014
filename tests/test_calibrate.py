"""``tfgbench calibrate``: the guard on the shipped synthetic evaluators, the report, and the LRS2 wiring."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import make_fake_lrs2, run_cli  # noqa: E402

from tfgbench.calibrate import CalibrationSpec, pick_ids, sweep  # noqa: E402
from tfgbench.calibrate_report import estimate, offset_share, write_report  # noqa: E402

READERS = ("wer/synthetic-avhubert", "wer/synthetic-conformer")


@pytest.fixture(scope="module")
def guard(tmp_path_factory):
    """A small sweep on 6 synthetic test clips (6 of the 8 test speakers) with the shipped evaluators."""
    import torch

    torch.set_num_threads(1)
    spec = CalibrationSpec(dataset="synthetic", protocols=["lse/synthetic", *READERS],
                           kinds=["shift", "freeze", "mouth-swap"],
                           amounts={"shift": (-5, 5), "freeze": (1.0,), "mouth-swap": (1.0,)}, clips=6,
                           workdir=str(tmp_path_factory.mktemp("calibrate")))
    return sweep(spec, progress=False, log=lambda _: None)


def _per_clip(cal, label, protocol, measure):
    return {i: v[0] for i, v in cal.values[(label, protocol, measure)].items()}


def _wer(cal, label, protocol):
    return estimate([cal.values[(label, protocol, "wer")]], pooled=True, reps=1)[0]


def test_guard_offset_follows_the_shift(guard):
    assert guard.failed == {}
    assert len(guard.ids) == 6 and len({i.split("/")[0] for i in guard.ids}) == 6   # spread over speakers
    share, n = offset_share(guard, "shift", [-5, 5], "lse/synthetic")
    assert n == 12 and share >= 0.75
    assert set(_per_clip(guard, "degrade:none", "lse/synthetic", "offset").values()) == {0.0}


def test_guard_lse_c_falls_with_the_offset(guard):
    base = _per_clip(guard, "degrade:none", "lse/synthetic", "lse_c")
    for label in ("degrade:shift=-5", "degrade:shift=5"):
        shifted = _per_clip(guard, label, "lse/synthetic", "lse_c")
        assert sum(base[i] > shifted[i] for i in base) >= 5, label
        assert np.mean(list(base.values())) - np.mean(list(shifted.values())) > 0.05, label


def test_guard_frozen_mouth_and_swapped_mouth_raise_wer(guard):
    for reader in READERS:
        truth = _wer(guard, "degrade:none", reader)
        assert truth < 0.3, reader
        assert _wer(guard, "degrade:freeze=1", reader) > truth + 0.4, reader
        assert _wer(guard, "degrade:mouth-swap=1", reader) > truth + 0.3, reader


def test_sweep_resumes_and_report_is_written(guard, tmp_path):
    again = sweep(guard.spec, progress=False, log=lambda _: None)
    assert again.values == guard.values                 # read back from the store, nothing re-scored
    with sqlite3.connect(Path(guard.spec.workdir) / "results.sqlite") as db:
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        models = {r[0] for r in db.execute("SELECT DISTINCT model FROM results")}
    assert runs == 5                                    # one run per setting, none added by the resume
    assert models == {"degrade:none", "degrade:shift=-5", "degrade:shift=5", "degrade:freeze=1",
                      "degrade:mouth-swap=1"}
    paths = write_report(guard, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["freeze.png", "mouth-swap.png", "shift.png", "summary.md"]
    assert all(p.stat().st_size > 10_000 for p in paths if p.suffix == ".png")
    text = (tmp_path / "out" / "summary.md").read_text()
    shift_row = next(line for line in text.splitlines() if line.startswith("| shift (±5)"))
    assert "= shift on" in shift_row and "✓" in shift_row and "✗" not in shift_row
    freeze_row = next(line for line in text.splitlines() if line.startswith("| freeze (1)"))
    assert freeze_row.count("✓") == 4                   # LSE-C, LSE-D and both WERs get worse
    assert "![mouth-swap](mouth-swap.png)" in text


def test_sweep_rows_are_the_rows_tfgbench_run_would_store(guard):
    from tfgbench.runner import RunSpec, run

    spec = RunSpec(model="degrade", dataset="synthetic", metrics=list(guard.spec.protocols), limit=1,
                   model_args={"kind": "shift", "amount": 5}, workdir=guard.spec.workdir)
    summary = run(spec, progress=False, log=lambda _: None)
    assert summary.skipped == 1 and summary.samples == 0   # the sweep's row for the split's first clip is found


def test_estimate_pools_and_pairs():
    rows = {"a": (0.5, 1.0, 2.0), "b": (0.0, 0.0, 8.0)}
    assert estimate([rows], pooled=True, reps=10)[0] == pytest.approx(0.1)       # 1 / 10 words
    assert estimate([rows], pooled=False, reps=10)[0] == pytest.approx(0.25)     # mean of per-clip values
    value, low, high, n = estimate([rows], pooled=False, baseline=rows, reps=50)
    assert (value, low, high, n) == (0.0, 0.0, 0.0, 2)                            # paired: no spread
    plus = {"a": (1.5, None, None), "b": (1.0, None, None), "c": (9.0, None, None)}
    value, low, high, n = estimate([plus], pooled=False, baseline=rows, reps=50)
    assert n == 2 and value == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)
    assert low <= value <= high
    assert estimate([{}], pooled=False)[3] == 0


def test_pick_ids_spreads_over_the_split():
    ids = [f"s{k // 25:02d}/u{k % 25:03d}" for k in range(200)]
    picked = pick_ids(ids, 24)
    assert len(picked) == 24 and len({p.split("/")[0] for p in picked}) == 8
    assert pick_ids(ids, 0) == ids and pick_ids(ids[:3], 10) == ids[:3]


def test_calibrate_on_lrs2_with_official_weights_file(tmp_path):
    """Wiring only: an LRS2-layout folder and a random-weight file in the official syncnet_v2.model format."""
    from test_lse_reference import make_random_syncnet_file

    root = tmp_path / "lrs2"
    make_fake_lrs2(root, n=3, train=0)
    (root / "test.txt").write_text("".join(f"6330311066473698535/{k:05d}\n" for k in range(3)))
    weights = tmp_path / "syncnet_v2.model"
    make_random_syncnet_file(weights, seed=1)
    out = tmp_path / "out"
    proc = run_cli("calibrate", "--dataset", "lrs2", "--data-root", str(root), "--weights", f"lse={weights}",
                   "--kinds", "shift,mouth-swap", "--amounts", "shift=3", "--amounts", "mouth-swap=1",
                   "--clips", "1", "--workdir", str(tmp_path / "w"), "--out", str(out), "--no-progress")
    assert "skipping metric 'wer'" in proc.stdout          # no observer weights: WER is skipped, not failed
    from tfgbench.paths import sha256_file

    with sqlite3.connect(tmp_path / "w" / "results.sqlite") as db:
        rows = db.execute("SELECT model, protocol, evaluator_sha256, measure, value, error FROM results "
                          "WHERE dataset='lrs2'").fetchall()
    assert not [r for r in rows if r[5] is not None]
    lse = [r for r in rows if r[1] == "lse/wav2lip"]
    assert {r[0] for r in lse} == {"degrade:none", "degrade:shift=3", "degrade:mouth-swap=1"}
    assert len(lse) == 3 * 3 and {r[2] for r in lse} == {sha256_file(weights)}
    assert {r[1] for r in rows} == {"lse/wav2lip", "psnr/talklip", "ssim/talklip"}
    text = (out / "summary.md").read_text()
    assert "lse/wav2lip" in text and (out / "shift.png").is_file() and (out / "mouth-swap.png").is_file()
