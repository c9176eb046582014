"""The bad-input corpus (tests/bad_inputs.py) through `tfgbench run --dataset folder` and `tfgbench score`:
every case ends as error rows naming the file and the problem, or as a correct score; no case crashes
the run; the store passes `PRAGMA integrity_check` afterwards."""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict

from bad_inputs import FAMILIES, OK, make_corpus
from integrity_plugins import installed

from tfgbench.cli import main
from tfgbench.data.folder import FolderDataset

METRICS = "psnr,ssim,lse/synthetic,wer/synthetic-conformer"


def _outcomes(db, model: str) -> dict[str, dict[str, list[tuple]]]:
    """sample id -> family -> [(measure, value, den, error)]"""
    out: dict[str, dict[str, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    for sample_id, protocol, measure, value, den, error in db.execute(
            "SELECT sample_id, protocol, measure, value, den, error FROM results WHERE model=?", (model,)):
        out[sample_id][protocol.split("/")[0]].append((measure, value, den, error))
    return out


def _verify(outcomes, cases, dataset, command: str) -> None:
    problems = []
    for sample_id, case in cases.items():
        expect = case.expect if command == "run" or not case.run_only else {f: OK for f in FAMILIES} | {
            "wer": cases["fps30"].expect["wer"]}
        for family in FAMILIES:
            rows = outcomes[sample_id][family]
            want = expect[family]
            errors = [r[3] for r in rows if r[3] is not None]
            if want == OK:
                if errors or not rows:
                    problems.append(f"{command} {sample_id} ({case.what}) {family}: expected a score, got {errors}")
                    continue
                assert all(math.isfinite(r[1]) for r in rows)
                if family == "psnr":  # the output is the ground truth (or the same file): identical frames
                    assert [r[1] for r in rows] == [100.0], (sample_id, rows)
                if family == "ssim":
                    assert abs(rows[0][1] - 1.0) < 1e-9, (sample_id, rows)
            else:
                if len(errors) != 1 or want not in errors[0] or str(dataset.root / sample_id) not in errors[0]:
                    problems.append(f"{command} {sample_id} ({case.what}) {family}: expected an error naming the "
                                    f"file and {want!r}, got {errors or rows}")
    assert not problems, "\n".join(problems)


def test_every_bad_input_ends_as_an_error_row_or_a_correct_score(tmp_path, capsys):
    data = tmp_path / "corpus"
    cases = make_corpus(data)
    work = tmp_path / "work"
    common = ["--dataset", "folder", "--data-root", str(data), "--metrics", METRICS, "--workdir", str(work),
              "--no-progress"]
    with installed(tmp_path / "site"):
        code_run = main(["run", "--model", "bad-output", *common])
    code_score = main(["score", "--videos", str(data), "--name", "as-given", *common])
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    assert code_run == 3 and code_score == 3, out.out + out.err  # finished, with error rows
    assert f"bad-output: {len(cases)} samples scored" in out.out
    assert f"as-given: {len(cases)} samples scored" in out.out
    dataset = FolderDataset(data)
    dataset.need_boxes = False
    db = sqlite3.connect(work / "results.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for model, command in (("bad-output", "run"), ("as-given", "score")):
        outcomes = _outcomes(db, model)
        assert set(outcomes) == set(cases)
        _verify(outcomes, cases, dataset, command)
    # the cases that load were loaded correctly (rates, sizes, rotation, channels)
    for sample_id, case in cases.items():
        if case.check is not None:
            case.check(dataset.load(sample_id), None)
