"""Batched generation and scoring (``--batch-size N``) store the rows one-at-a-time stores.

The shipped tiny models and synthetic evaluators run on synthetic test clips of different lengths
(56 to 67 frames), batched and one at a time. Generated frames are uint8 and WER counts are
integers: both must match exactly. Float measures (PSNR, SSIM, LSE) must match to float rounding:
in a batch, the SyncNet windows of several clips share convolution passes of another shape, and the
float32 kernels for another shape may round differently (on the development CPU, LSE moved by up to
2e-7 for some batch compositions and not at all for others; another CPU or a GPU may choose other
kernels). So floats are compared at a relative 1e-6: a sample scored against another sample's clip,
or a padding bug, moves them by orders of magnitude more.
"""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest

from tfgbench.runner import RunSpec, run

METRICS = ["psnr", "ssim", "lse", "wer/synthetic-avhubert", "wer/synthetic-conformer"]


@pytest.fixture(scope="module")
def corpus(synthetic_test_clips):
    return synthetic_test_clips


def stored(workdir) -> dict[tuple[str, str, str], tuple]:
    con = sqlite3.connect(workdir / "results.sqlite")
    rows = con.execute("SELECT sample_id, protocol, measure, value, num, den, error FROM results").fetchall()
    con.close()
    return {r[:3]: r[3:] for r in rows}


def assert_same_rows(one: dict, batched: dict) -> None:
    assert one.keys() == batched.keys()
    for key, (v1, n1, d1, e1) in one.items():
        v2, n2, d2, e2 = batched[key]
        assert e1 == e2, key
        if key[1].startswith("wer/"):
            assert (n1, d1) == (n2, d2), key  # edits and reference words: integers
        assert (v1 is None) == (v2 is None), key
        assert v1 is None or math.isclose(v1, v2, rel_tol=1e-6, abs_tol=1e-9), (key, v1, v2)


def spy(monkeypatch, cls, name: str, sizes: list[int]) -> None:
    """Record the batch size of every ``cls.name`` call (so the test sees batching really happened)."""
    original = getattr(cls, name)

    def wrapper(self, samples, *args, **kwargs):
        sizes.append(len(samples))
        return original(self, samples, *args, **kwargs)

    monkeypatch.setattr(cls, name, wrapper)


def test_runner_batches_store_the_rows_of_one_at_a_time(corpus, tmp_path, monkeypatch):
    """Wav2Lip with every synthetic protocol: batches of 4 (the last batch of 2) against batch 1."""
    from baselines.wav2lip.plugin import Wav2LipModel
    from tfgbench.metrics.lse import LSE
    from tfgbench.metrics.wer import WER

    calls: dict[str, list[int]] = {"generate": [], "lse": [], "wer": []}
    spy(monkeypatch, Wav2LipModel, "generate_batch", calls["generate"])
    spy(monkeypatch, LSE, "score_batch", calls["lse"])
    spy(monkeypatch, WER, "score_batch", calls["wer"])
    rows = {}
    for batch in (1, 4):
        spec = RunSpec(model="wav2lip", dataset="synthetic", data_root=str(corpus), limit=6, metrics=METRICS,
                       workdir=str(tmp_path / f"b{batch}"), batch_size=batch)
        summary = run(spec, progress=False, log=lambda line: None)
        assert summary.samples == 6 and not summary.failed, summary.failed
        rows[batch] = stored(tmp_path / f"b{batch}")
        if batch == 1:  # one at a time: generate() per sample (itself a batch of one), score() per sample
            assert set(calls["generate"]) == {1} and calls["lse"] == calls["wer"] == []
            calls["generate"].clear()
    assert calls["generate"] == [4, 2] and calls["lse"] == [4, 2] and calls["wer"] == [4, 4, 2, 2]
    assert len(rows[1]) == 6 * (1 + 1 + 3 + 1 + 1)
    assert_same_rows(rows[1], rows[4])


@pytest.mark.parametrize("name", ["talklip", "synctalklip"])
def test_talklip_family_frames_batched_equal_one_at_a_time(corpus, name):
    """TalkLip's audio encoder would pad shorter clips; bucketing by length keeps every frame equal."""
    from tfgbench import registry
    from tfgbench.data.synthetic import SyntheticDataset

    ds = SyntheticDataset(corpus, split="test")
    samples = [ds.load(i) for i in ds.ids()[:5]]
    assert len({s.num_frames for s in samples}) >= 4          # mixed lengths in one batch
    model = registry.load("models", name)()
    batched = model.generate_batch(samples)
    for sample, frames in zip(samples, batched):
        alone = model.generate(sample)
        assert frames.shape == sample.frames.shape
        assert np.abs(frames.astype(int) - alone).max() <= 1 and (frames != alone).mean() < 1e-4, sample.id
        assert not np.array_equal(frames, sample.frames)      # the faces were re-drawn


class _Flaky:
    """A batch-capable model whose batch call fails whenever one chosen sample is in it."""

    name = "flaky"
    batch_size = 4
    cache_outputs = False
    uses_boxes = False
    settings: dict = {}
    checkpoint = None
    label = "flaky"

    def __init__(self, bad: str) -> None:
        self.bad = bad
        self.batches: list[int] = []

    @property
    def info(self):
        from tfgbench.model import ModelInfo

        return ModelInfo()

    def settings_hash(self) -> str:
        return "flaky"

    def generate(self, sample):
        if sample.id == self.bad:
            raise RuntimeError("this clip breaks the model")
        return np.roll(sample.frames, 1, axis=2)

    def generate_batch(self, samples):
        self.batches.append(len(samples))
        return [self.generate(s) for s in samples]


def test_a_failing_sample_fails_only_itself_in_a_batch(corpus, tmp_path):
    from tfgbench.data.synthetic import SyntheticDataset

    bad = SyntheticDataset(corpus, split="test").ids()[1]
    rows = {}
    for batch in (1, 4):
        model = _Flaky(bad)
        spec = RunSpec(model="flaky", dataset="synthetic", data_root=str(corpus), limit=5,
                       metrics=["psnr", "lse"], workdir=str(tmp_path / f"b{batch}"), batch_size=batch)
        summary = run(spec, model=model, progress=False, log=lambda line: None)
        assert summary.samples == 5 and list(summary.failed) == [bad]
        assert "this clip breaks the model" in summary.failed[bad]
        assert model.batches == ([4] if batch == 4 else [])
        rows[batch] = stored(tmp_path / f"b{batch}")
    assert_same_rows(rows[1], rows[4])
    assert sum(1 for r in rows[4].values() if r[3] is None) == 4 * 4   # 4 good samples x (psnr + 3 LSE)
