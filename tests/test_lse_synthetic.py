"""The shipped synthetic-corpus SyncNet (protocol lse/synthetic) separates sync from non-sync
on unseen test speakers: ground truth vs static frame vs audio delayed by 5 frames.

LSE-C and LSE-D take the best of +-15 shifts, so a constant 5-frame delay shows in the offset and
in the distance at shift 0, not in LSE-C/LSE-D themselves (as with the official SyncNet)."""

from __future__ import annotations

import numpy as np
import pytest

from tfgbench.data.sample import SAMPLES_PER_FRAME, Sample


@pytest.fixture(scope="module")
def results():
    from tfgbench.data.synthetic.clip import make_clip
    from tfgbench.data.synthetic.generation import _speaker_index, speakers
    from tfgbench.metrics.lse import LSE

    metric = LSE("lse/synthetic")
    out: dict[str, list] = {"gt": [], "static": [], "delayed": []}
    for sp in speakers(0)["test"][:4]:  # unseen speakers: the evaluator trained on "train" only
        clip = make_clip(0, sp, _speaker_index(sp), 0)
        t = len(clip.frames)
        audio = np.zeros(t * SAMPLES_PER_FRAME, np.float32)
        audio[: min(len(audio), len(clip.audio))] = clip.audio[: len(audio)]
        sample = Sample(f"{sp.id}/u000", clip.frames, audio, boxes=clip.boxes)
        scorer = metric.scorer
        out["gt"].append(scorer.score_frames(clip.frames, audio, boxes=clip.boxes))
        static = np.repeat(clip.frames[:1], t, 0)
        out["static"].append(scorer.score_frames(static, audio, boxes=clip.boxes))
        delayed = np.concatenate([np.zeros(5 * SAMPLES_PER_FRAME, np.float32), audio])[: len(audio)]
        out["delayed"].append(scorer.score_frames(clip.frames, delayed, boxes=clip.boxes))
        # the metric plugin gives the same numbers through Sample (boxes from the sample)
        s = metric.score(sample, clip.frames)
        assert s["lse_c"].value == pytest.approx(out["gt"][-1].lse_c, abs=1e-6)
    return out


def _mean(rows, key):
    return float(np.mean([getattr(r, key) for r in rows]))


def test_ground_truth_is_in_sync(results):
    assert sum(r.offset == 0 for r in results["gt"]) >= 3


def test_static_frame_scores_clearly_worse(results):
    assert _mean(results["gt"], "lse_c") > 2 * _mean(results["static"], "lse_c")
    assert _mean(results["gt"], "lse_d") < _mean(results["static"], "lse_d")


def test_delayed_audio_is_detected(results):
    assert sum(r.offset == -5 for r in results["delayed"]) >= 3
    at_zero = lambda rows: float(np.mean([r.mean_dists[15] for r in rows]))  # noqa: E731
    assert at_zero(results["gt"]) < at_zero(results["delayed"]) - 0.05


def test_shipped_checkpoint_records_its_training_command():
    from tfgbench.checkpoints import load_checkpoint
    from tfgbench.metrics.lse.scorer import SYNTHETIC_WEIGHTS

    _, config, meta = load_checkpoint(SYNTHETIC_WEIGHTS)
    assert meta["command"].startswith("python -m tfgbench.metrics.lse.train_synthetic")
    assert meta["split"] == "train" and config["protocol"] == "lse/synthetic"
    assert SYNTHETIC_WEIGHTS.stat().st_size < 8 * 2 ** 20


def test_scoring_a_synthetic_file_uses_the_boxes_beside_it(tmp_path):
    """`tfgbench lse CLIP.mp4 --protocol lse/synthetic` takes the exact face boxes from CLIP.json,
    so it agrees with scoring the loaded sample."""
    from tfgbench.data.synthetic import SyntheticDataset
    from tfgbench.data.synthetic.generation import DEFAULT_SIZES, generate
    from tfgbench.metrics.lse import LSE

    generate(tmp_path, splits=("test",), sizes={**DEFAULT_SIZES, "test": (1, 1)}, workers=1, progress=False)
    ds = SyntheticDataset(tmp_path, split="test")
    sample = ds.load(ds.ids()[0])
    metric = LSE("lse/synthetic")
    from_file = metric.scorer.score_file(sample.path)
    from_sample = metric.score(sample, sample.frames)
    assert from_file.offset == from_sample["offset"].value
    assert from_file.lse_c == pytest.approx(from_sample["lse_c"].value, abs=1e-4)
    assert from_file.lse_d == pytest.approx(from_sample["lse_d"].value, abs=1e-4)
