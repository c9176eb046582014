"""`tfgbench table` renders from the results DataFrame, and `--format csv` is a plain dump of it.

The expected outputs in tests/fixtures/tables/ were written by `tfgbench table` at commit c120632,
before the tables were computed with pandas, for the store of tests/table_store.py: the same store
must render byte for byte the same Markdown, LaTeX, HTML and per-cell CSV (now `--format
csv-summary`), partial-coverage cells included.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pandas as pd
import pytest
from table_store import build

import tfgbench
from tfgbench.cli import main
from tfgbench.frame import read_csv
from tfgbench.store import Store
from tfgbench.tables import build_tables, render

GOLDEN = Path(__file__).parent / "fixtures" / "tables"
CASES = {
    "all.md": [],
    "all.tex": ["--format", "latex"],
    "all.html": ["--format", "html"],
    "summary.csv": ["--format", "csv-summary"],  # was `--format csv` before the dump
    "synthetic-val.md": ["--dataset", "synthetic", "--split", "val"],
    "ci.md": ["--ci", "--resamples", "200", "--dataset", "synthetic"],
    "ci-summary.csv": ["--ci", "--resamples", "200", "--dataset", "synthetic", "--format", "csv-summary"],
}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("tables")
    build(work)
    return work


def table(capsys, work: Path, *args: str) -> str:
    assert main(["table", "--workdir", str(work), *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CASES))
def test_tables_render_as_before(work, capsys, name):
    assert table(capsys, work, *CASES[name]).encode() == (GOLDEN / name).read_bytes()  # CSV lines end in \r\n


def test_partial_cells_in_the_expected_output():
    md = (GOLDEN / "all.md").read_text()
    part_a = next(line for line in md.splitlines() if line.startswith("| part-a "))
    assert "23.77 ⚠ 5/40, 1 failed" in part_a  # PSNR over the 5 samples all three partial models share
    assert part_a.rstrip(" |").endswith("⚠ 0/40")  # Conformer WER: no sample shared, so no value
    assert "compared on the samples all partial models share" in md
    assert "0.618 ⚠ 4/5, 1 failed" in (GOLDEN / "synthetic-val.md").read_text()
    assert "| inf " in md  # the infinite PSNR of the ground truth under S3FD boxes


def test_tables_are_computed_from_the_results_frame(work):
    frame = tfgbench.results(work)
    with Store(work / "results.sqlite") as store:
        measures, sizes = store.measures(), store.dataset_sizes()
    tables = build_tables(frame, measures, sizes)
    expected = (GOLDEN / "all.md").read_text()
    assert "\n".join(render(t, "md") for t in tables) == expected
    # a cell is an aggregation of the frame's rows: the pooled PSNR of wav2lip is sum(num) / sum(den)
    rows = frame[(frame.model == "wav2lip") & (frame.delivery == "lossless") & (frame.protocol == "psnr/talklip")
                 & (frame.dataset == "synthetic") & (frame.boxes == "dataset")]
    synthetic = next(t for t in tables if t.dataset.dataset == "synthetic" and t.dataset.boxes == "dataset"
                     and t.dataset.split == "test")
    cell = next(c for (m, col), c in synthetic.cells.items()
                if m[0] == "wav2lip" and m[3] == "lossless" and col.protocol == "psnr/talklip")
    assert cell.complete and cell.value == pytest.approx(rows.num.sum() / rows.den.sum(), rel=1e-15)
    # dropping a model's rows from the frame drops it from the table
    fewer = build_tables(frame[frame.model != "trial"], measures, sizes)
    assert all(m[0] != "trial" for t in fewer for m in t.models)


def test_csv_is_a_plain_dump_of_the_results_frame(work, tmp_path, capsys):
    out = tmp_path / "results.csv"
    table(capsys, work, "--format", "csv", "--output", str(out))
    expected = tfgbench.results(work)
    pd.testing.assert_frame_equal(read_csv(out), expected)
    # one line per stored row, the frame's columns as the header, floats at full precision
    with open(out, newline="") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == len(expected) and list(lines[0]) == list(expected.columns)
    for key in ("model", "checkpoint_sha256", "settings_hash", "delivery", "dataset", "dataset_version", "split",
                "boxes", "sample_id", "protocol", "protocol_version", "evaluator_sha256", "measure", "value"):
        assert key in lines[0]
    values = [float(x["value"]) for x in lines if x["value"]]
    assert values == [v for v in expected.value if not math.isnan(v)]
    assert any(x["error"] == "decode failed" and x["measure"] == "*" and x["value"] == "" for x in lines)
    # filters select the same rows as tfgbench.results()
    text = table(capsys, work, "--format", "csv", "--dataset", "synthetic", "--split", "val")
    pd.testing.assert_frame_equal(read_csv(io.StringIO(text)), tfgbench.results(work, dataset="synthetic",
                                                                               split="val"))


def test_csv_options_that_do_not_apply_are_refused(work, capsys):
    for args, message in ((["--format", "csv", "--ci"], "use --format csv-summary --ci"),
                          (["--format", "csv-summary", "--paper", "table1", "--dataset", "synthetic"],
                           "--paper tables have --format csv"),
                          (["--format", "csv", "--dataset", "nothing"], "no stored results for nothing")):
        assert main(["table", "--workdir", str(work), *args]) == 2
        assert message in capsys.readouterr().err


def test_ids_that_look_like_numbers_stay_text(tmp_path, capsys):
    from tfgbench.metrics.base import Measure, ProtocolSpec, Score
    from tfgbench.store import DatasetKey, ModelKey, ProtocolResult

    store = Store(tmp_path / "results.sqlite")
    store.record_protocol(ProtocolSpec("q/x", (Measure("lse_c", "Q", True),), "test"))
    for sid, value in (("00001", 1.5), ("00002", 2.5)):
        store.write_sample(ModelKey("m", "none", "1234"), DatasetKey("d", "007", "test"), sid, None,
                           [ProtocolResult("q/x", "none", {"lse_c": Score(value)})])
    store.close()
    out = tmp_path / "results.csv"
    table(capsys, tmp_path, "--format", "csv", "--output", str(out))
    assert pd.read_csv(out).sample_id.tolist() == [1, 2]  # plain pandas guesses numbers
    back = read_csv(out)
    assert back.sample_id.tolist() == ["00001", "00002"] and back.settings_hash[0] == "1234"
    pd.testing.assert_frame_equal(back, tfgbench.results(tmp_path))
    # the README's example
    df = tfgbench.results(tmp_path, dataset="d", errors=False)
    assert df[df.measure == "lse_c"].groupby("model").value.mean().to_dict() == {"m": 2.0}
