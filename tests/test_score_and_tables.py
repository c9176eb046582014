"""`tfgbench score` (videos made elsewhere) and table rendering."""

from __future__ import annotations

import shutil

from conftest import run_cli

from tfgbench.metrics.base import Measure, Score
from tfgbench.store import DatasetKey, ModelKey, ProtocolResult, Store
from tfgbench.tables import build_tables, render


def test_score_external_videos_matched_by_name(tmp_path, face_folder):
    videos = tmp_path / "generated"
    videos.mkdir()
    shutil.copy(face_folder / "clip0.mp4", videos / "clip0.mp4")  # only one of the two
    work = tmp_path / "work"
    out = run_cli("score", "--videos", str(videos), "--dataset", "folder", "--data-root", str(face_folder),
                  "--name", "my-model", "--metrics", "psnr", "--workdir", str(work), "--no-progress",
                  "--allow-failures").stdout
    assert "matched 1 of 2" in out
    csv_text = run_cli("table", "--workdir", str(work), "--format", "csv-summary").stdout
    line = next(row for row in csv_text.splitlines() if ",my-model," in row)
    assert line.endswith(",1,1,2")  # covered 1, failed 1 (no video), of 2: no value printed
    assert ",psnr,," in line


def _store_with(tmp_path) -> Store:
    store = Store(tmp_path / "r.sqlite")
    from tfgbench.metrics.base import ProtocolSpec

    spec = ProtocolSpec("wer/x", (Measure("wer", "WER", False, pooled=True, percent=True, digits=1),), "test")
    store.record_protocol(spec)
    dkey = DatasetKey("d", "v1", "test")
    store.record_dataset(dkey, 2)
    for model, edits in (("a_model", (1, 3)), ("b", (0, 0))):
        mkey = ModelKey(model, "none", "h")
        for i, e in enumerate(edits):
            store.write_sample(mkey, dkey, f"s{i}", None, [ProtocolResult("wer/x", "none", {"wer": Score.ratio(e, 4)})])
    return store


def test_table_pools_ratios_and_renders_every_format(tmp_path):
    store = _store_with(tmp_path)
    (table,) = build_tables(store.rows(), store.measures(), store.dataset_sizes())
    md = render(table, "md")
    assert "WER % ↓ (wer/x)" in md and "| 50.0" in md  # (1 + 3) / (4 + 4) = 50 %
    latex = render(table, "latex")
    assert r"$\downarrow$" in latex and r"a\_model" in latex and r"WER \%" in latex
    assert "<table>" in render(table, "html")
    assert "wer/x,none,wer,0.5," in render(table, "csv-summary")


def test_partial_coverage_is_flagged_not_averaged(tmp_path):
    store = _store_with(tmp_path)
    store.record_dataset(DatasetKey("d", "v1", "test"), 3)  # the split has a third sample nobody scored
    (table,) = build_tables(store.rows(), store.measures(), store.dataset_sizes())
    md = render(table, "md")
    assert "50.0 ⚠ 2/3" in md  # the mean over the covered samples, flagged with its coverage
