"""The shipped synthetic AV-HuBERT reader reads the lips: on unseen test speakers, ground truth
reads far better than the static-frame baseline (a frozen mouth)."""

from __future__ import annotations

import numpy as np
import pytest

from tfgbench.metrics.wer import WER
from tfgbench.metrics.wer.scorer import SYNTHETIC_AVHUBERT


@pytest.fixture(scope="module")
def test_clips(tmp_path_factory):
    """The first clips of the corpus's test split, generated here: clips are a pure function of
    (seed, speaker, utterance), so these equal the default corpus's ``s36/u000``... clips."""
    from tfgbench.data.synthetic import SyntheticDataset
    from tfgbench.data.synthetic.generation import DEFAULT_SIZES, generate

    out = tmp_path_factory.mktemp("corpus")
    sizes = {**DEFAULT_SIZES, "test": (DEFAULT_SIZES["test"][0], 2)}
    generate(out, splits=("test",), sizes=sizes, workers=1, progress=False)
    ds = SyntheticDataset(out, split="test")
    # 8 unseen speakers x 1 utterance
    ids = [i for i in ds.ids() if i.endswith("u000")]
    return [ds.load(i) for i in ids]


def test_shipped_reader_reads_lips_not_grammar(test_clips):
    assert SYNTHETIC_AVHUBERT.is_file(), "tfgbench/weights/avhubert-synthetic.safetensors must ship"
    metric = WER("wer/synthetic-avhubert")
    gt = metric.score_batch(test_clips, [s.frames for s in test_clips])
    static = metric.score_batch(test_clips, [np.repeat(s.frames[:1], s.num_frames, 0) for s in test_clips])

    def corpus(rows):
        return sum(r["wer"].num for r in rows) / sum(r["wer"].den for r in rows)

    gt_wer, static_wer = corpus(gt), corpus(static)
    # chance with the grammar alone is ~0.81 (uniform slots); a frozen mouth carries no words
    assert static_wer > 0.6
    assert gt_wer < 0.45 and gt_wer < static_wer - 0.3


def test_cli_takes_mouth_boxes_from_the_clip_alignment(test_clips, capsys):
    """`tfgbench wer CLIP.mp4` on a synthetic clip finds its mouth boxes in CLIP.json."""
    import argparse
    import json

    from tfgbench.metrics.wer import cli

    sample = test_clips[0]
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args([str(sample.path), "--text", sample.transcript, "--protocol",
                              "wer/synthetic-avhubert", "--json"])
    assert cli.run(args) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["words"] == 6 and row["edits"] <= 2
