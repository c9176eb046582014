"""`tfgbench figure`: snapshot strips (paper Figure 3) and per-model distributions."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_cli
from results_factory import fake_store, small_corpus

from tfgbench.errors import TfgbenchError
from tfgbench.figures import crop_box, parse_frames, snapshots


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return small_corpus(tmp_path_factory.mktemp("corpus"))


def test_parse_frames_and_crop_box():
    assert parse_frames("0:8:2", 60) == [0, 2, 4, 6]
    assert parse_frames("3,5", 60) == [3, 5]
    assert parse_frames(None, 60) == list(range(22, 38, 2))
    with pytest.raises(TfgbenchError, match="frames 0..9"):
        parse_frames("5:20", 10)
    boxes = np.array([[10, 20, 50, 60], [12, 18, 54, 58]])
    assert crop_box(boxes, [0, 1], (100, 100, 3), "face") == (7, 15, 57, 63)  # union 10,18,54,60 padded 3
    assert crop_box(boxes, [0, 1], (100, 100, 3), "mouth") == (7, 36, 57, 63)  # lower half of the union
    assert crop_box(boxes, [0], (100, 100, 3), "full") == (0, 0, 100, 100)
    assert crop_box(None, [0], (80, 90, 3), "face") == (0, 0, 90, 80)


def test_snapshot_rows_are_ground_truth_then_models(tmp_path, corpus):
    import matplotlib.image

    from tfgbench.data.synthetic import SyntheticDataset

    sid = SyntheticDataset(root=corpus, split="test").ids()[0]
    out, rows = snapshots("synthetic", sid, ["static-frame", "ground-truth"], tmp_path / "fig.png",
                          data_root=str(corpus), workdir=tmp_path / "nowhere", frames="10:40:5")
    assert [r.label for r in rows] == ["Ground Truth", "static-frame", "ground-truth"]
    gt, static, copy = (r.frames for r in rows)
    assert np.array_equal(copy, gt) and (static == static[0]).all()
    mouth = slice(80, 110), slice(40, 90)  # the lower face of a 128x128 synthetic frame
    assert np.abs(gt[10:40:5][(slice(None), *mouth)].astype(int) - gt[10][mouth]).max() > 30  # the mouth moves
    img = matplotlib.image.imread(out)
    assert img.shape[1] > img.shape[0] > 100  # 6 frames wide, 3 rows high
    two = matplotlib.image.imread(snapshots("synthetic", sid, ["static-frame"], tmp_path / "two.png",
                                            data_root=str(corpus), frames="10:40:5")[0])
    assert two.shape[0] < img.shape[0] and abs(two.shape[1] - img.shape[1]) < 8  # one row fewer, same width


def test_snapshots_read_the_run_video_cache(tmp_path, corpus):
    """A model's row shows the exact frames its run scored (the cache), not a fresh generation."""
    from tfgbench.data.synthetic import SyntheticDataset
    from tfgbench.metrics.base import Score
    from tfgbench.runner import dataset_key
    from tfgbench.store import ModelKey, ProtocolResult, Store
    from tfgbench.videos import cache_for

    dataset = SyntheticDataset(root=corpus, split="test")
    sample = dataset.load(dataset.ids()[0])
    dkey = dataset_key(dataset)
    mkey = ModelKey("my-model", "f" * 64, "s1")
    with Store(tmp_path / "results.sqlite") as store:
        store.write_sample(mkey, dkey, sample.id, 1, [ProtocolResult("psnr/talklip", "none", {"psnr": Score(9.0)})])
    inverted = 255 - sample.frames
    cache_for(tmp_path, mkey, dkey).put(sample, inverted)
    out = run_cli("figure", "snapshots", "--dataset", "synthetic", "--data-root", str(corpus), "--sample", sample.id,
                  "--models", "my-model", "--workdir", str(tmp_path), "--out", str(tmp_path / "c.png")).stdout
    assert "my-model: cached video" in out and f"wrote {tmp_path / 'c.png'}" in out
    _, rows = snapshots("synthetic", sample.id, ["my-model"], tmp_path / "d.png", data_root=str(corpus),
                        workdir=tmp_path)
    assert np.array_equal(rows[1].frames, inverted)
    bad = run_cli("figure", "snapshots", "--dataset", "synthetic", "--data-root", str(corpus), "--sample", "nope/u1",
                  "--models", "static-frame", "--out", str(tmp_path / "e.png"), check=False)
    assert bad.returncode == 2 and "has no sample 'nope/u1'" in bad.stderr


def test_distribution_plot_from_stored_rows(tmp_path):
    import matplotlib.image

    fake_store(tmp_path / "results.sqlite").close()
    out = tmp_path / "d.png"
    res = run_cli("figure", "distribution", "--dataset", "synthetic", "--protocol", "wer/synthetic-avhubert",
                  "--measure", "wer", "--workdir", str(tmp_path), "--out", str(out), "--kind", "box")
    assert f"wrote {out}" in res.stdout
    img = matplotlib.image.imread(out)
    assert img.shape[1] > img.shape[0] and img.std() > 0.05
    narrow = tmp_path / "n.png"
    run_cli("figure", "distribution", "--dataset", "synthetic", "--protocol", "lse/synthetic", "--measure", "lse_c",
            "--models", "wav2lip,talklip", "--workdir", str(tmp_path), "--out", str(narrow))
    assert matplotlib.image.imread(narrow).shape[1] < img.shape[1]  # 2 models instead of 5
    bad = run_cli("figure", "distribution", "--dataset", "synthetic", "--protocol", "lse/wav2lip", "--measure",
                  "lse_c", "--workdir", str(tmp_path), "--out", str(narrow), check=False)
    assert bad.returncode == 2 and "no stored lse/wav2lip lse_c rows" in bad.stderr
