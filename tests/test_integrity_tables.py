"""Partial coverage prints numbers marked n/N (compared on shared samples when models differ), and
`tfgbench.results()` returns the stored rows as a pandas DataFrame."""

from __future__ import annotations

import pytest

from tfgbench.cli import main
from tfgbench.metrics.base import Measure, ProtocolSpec, Score
from tfgbench.store import DatasetKey, ModelKey, ProtocolResult, Store
from tfgbench.tables import build_tables, render

SPEC = ProtocolSpec("q/x", (Measure("q", "Q", True),), "test")


def _store(tmp_path, coverage: dict[str, dict[str, float]], total: int = 4, error: dict | None = None) -> Store:
    store = Store(tmp_path / "results.sqlite")
    store.record_protocol(SPEC)
    dkey = DatasetKey("d", "v1", "test")
    store.record_dataset(dkey, total)
    for model, values in coverage.items():
        for sample_id, value in values.items():
            store.write_sample(ModelKey(model, "none", "h"), dkey, sample_id, None,
                               [ProtocolResult("q/x", "none", {"q": Score(value)})])
    for model, sample_id in (error or {}).items():
        store.write_sample(ModelKey(model, "none", "h"), dkey, sample_id, None,
                           [ProtocolResult("q/x", "none", {}, "boom")])
    return store


def test_partial_cells_show_values_compared_on_shared_samples(tmp_path):
    store = _store(tmp_path, {
        "full": {"s0": 1.0, "s1": 2.0, "s2": 3.0, "s3": 4.0},
        "left": {"s0": 10.0, "s1": 20.0, "s2": 30.0},   # shares s1, s2 with "right"
        "right": {"s1": 5.0, "s2": 7.0, "s3": 100.0},
    })
    (table,) = build_tables(store.rows(), store.measures(), store.dataset_sizes())
    md = render(table, "md")
    assert "| 2.50 " in md and "| full " in md  # full coverage: the plain mean, unmarked
    assert "25.00 ⚠ 2/4" in md  # left on s1, s2
    assert "6.00 ⚠ 2/4" in md  # right on s1, s2
    assert "compared on the samples all partial models share" in md
    cells = {m[0]: c for (m, _), c in table.cells.items()}
    assert cells["full"].complete and not cells["left"].complete and not cells["right"].complete
    csv_text = render(table, "csv-summary")
    assert ",full,none,h,lossless,1,q/x,none,q,2.5,4,0,4" in csv_text
    assert ",left,none,h,lossless,1,q/x,none,q,,3,0,4" in csv_text  # CSV keeps full values only


def test_a_single_partial_model_shows_its_mean_with_failures_flagged(tmp_path):
    store = _store(tmp_path, {"m": {"s0": 1.0, "s1": 3.0}}, total=10, error={"m": "s2"})
    (table,) = build_tables(store.rows(), store.measures(), store.dataset_sizes())
    md = render(table, "md")
    assert "2.00 ⚠ 2/10, 1 failed" in md and "share" not in md


def test_limit_run_prints_numbers(tmp_path, capsys):
    code = main(["run", "--model", "ground-truth", "--dataset", "synthetic", "--limit", "3", "--metrics",
                 "psnr,lse", "--workdir", str(tmp_path / "work"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    row = next(line for line in out.splitlines() if line.startswith("| ground-truth"))
    assert "100.00 ⚠ 3/200" in row, row
    cells = [c.strip() for c in row.strip("|").split("|")[1:]]
    assert all(c.split(" ⚠")[0].replace(".", "").replace("-", "").isdigit() for c in cells), cells
    assert "⚠ n/N: partial coverage" in out


def test_results_dataframe(tmp_path):
    import pandas as pd

    import tfgbench

    _store(tmp_path, {"a": {"s0": 1.0, "s1": 2.0}, "b": {"s0": 3.0}}, error={"b": "s1"}).close()
    df = tfgbench.results(tmp_path)
    assert isinstance(df, pd.DataFrame) and len(df) == 4
    for column in ("model", "checkpoint_sha256", "settings_hash", "delivery", "dataset", "dataset_version",
                   "split", "boxes", "sample_id", "protocol", "protocol_version", "evaluator_sha256", "measure",
                   "value", "num", "den", "error"):
        assert column in df.columns
    assert df[df.model == "a"].value.mean() == 1.5
    assert len(tfgbench.results(tmp_path, model="b")) == 2
    assert len(tfgbench.results(tmp_path / "results.sqlite", errors=False)) == 3
    failed = tfgbench.results(tmp_path, model="b").set_index("sample_id").loc["s1"]
    assert failed.error == "boom" and failed.measure == "*" and pd.isna(failed.value)
    with pytest.raises(tfgbench.TfgbenchError, match="no results at"):
        tfgbench.results(tmp_path / "nowhere")
