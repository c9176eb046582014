"""``tfgbench data synthetic``: generation into --out, --sizes, --preview contact sheet, errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from tfgbench.data.synthetic import SyntheticDataset, cli, corpus_version
from tfgbench.errors import TfgbenchError


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tfgbench data synthetic")
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


def test_generates_requested_splits_into_out_and_adds_more_later(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert run("--out", str(out), "--splits", "test", "--sizes", "test=1x2,ood=1x1", "--workers", "1",
               "--quiet") == 0
    sizes = cli.parse_sizes("test=1x2,ood=1x1")
    version = corpus_version(0, sizes)
    assert version in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"] == version and manifest["splits"] == ["test"]
    assert len(SyntheticDataset(out, split="test")) == 2
    stamp = (out / "test" / "s36" / "u000.mp4").stat().st_mtime_ns
    assert run("--out", str(out), "--splits", "ood,test", "--sizes", "test=1x2,ood=1x1", "--quiet") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"] == ["test", "ood"] and len(manifest["clips"]) == 3
    assert (out / "test" / "s36" / "u000.mp4").stat().st_mtime_ns == stamp  # kept, not redone
    # the same folder with other sizes is another corpus: refused
    with pytest.raises(TfgbenchError, match="holds corpus"):
        run("--out", str(out), "--splits", "test", "--sizes", "test=2x2", "--quiet")


def test_preview_writes_a_contact_sheet(tmp_path):
    import cv2

    png = tmp_path / "sheet.png"
    assert run("--preview", str(png)) == 0
    sheet = cv2.imread(str(png))
    assert sheet is not None and sheet.shape[0] > 8 * 128 and sheet.shape[1] >= 10 * 128
    # rows show different faces, and within a row the mouth region changes across the sentence
    rows = [sheet[k * 162:k * 162 + 128] for k in range(8)]
    assert min(np.abs(rows[i].astype(int) - rows[i + 1]).mean() for i in range(7)) > 5
    tiles = [rows[0][:, j * 130:j * 130 + 128].astype(int) for j in range(10)]
    assert max(np.abs(tiles[0][85:115] - t[85:115]).mean() for t in tiles[1:]) > 3


@pytest.mark.parametrize("argv, message", [
    (("--splits", "train,bogus"), "unknown split"),
    (("--sizes", "train=3"), "cannot read"),
    (("--sizes", "dev=3x3"), "cannot read"),
])
def test_bad_arguments_get_clear_errors(tmp_path, argv, message):
    with pytest.raises(TfgbenchError, match=message):
        run("--out", str(tmp_path / "x"), *argv)
