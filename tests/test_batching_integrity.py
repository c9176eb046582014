"""A sample in a batch ends exactly as it ends alone (result integrity with ``--batch-size``): bad model
output, a degenerate score and an input a protocol needs are error rows naming the problem; the other
samples of the batch still score; an unreadable checkpoint stops the run. And ``--batch-size``,
``--executor`` and ``--address`` are checked before the first sample."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from conftest import face_frames, tone

from tfgbench.batching import process_batch
from tfgbench.data.sample import Sample
from tfgbench.errors import ConfigError
from tfgbench.metrics.base import Measure, Metric, ProtocolSpec, Score
from tfgbench.model import TalkingFaceModel
from tfgbench.sample_worker import SampleWorker


class Batched(TalkingFaceModel):
    """The ground truth in batches, except a sample whose id names a bad output."""

    name = "batched"
    batch_size = 4

    def __init__(self, checkpoint: str | None = None) -> None:
        super().__init__(checkpoint=checkpoint)
        self.batches: list[int] = []

    def generate(self, sample):
        if self.checkpoint is not None:
            raise OSError(f"cannot read {self.checkpoint}")
        frames = sample.frames.copy()
        return frames[:-1] if sample.id == "frames" else frames

    def generate_batch(self, samples):
        self.batches.append(len(samples))
        return [self.generate(s) for s in samples]


class PerSample(Metric):
    """A batch-capable metric whose score for sample ``nan`` is NaN (a degenerate score); needs audio."""

    family = "persample"
    protocols = (ProtocolSpec("persample/a", (Measure("a", "A", True),), "test", needs=frozenset({"audio"})),)
    default_protocol = "persample/a"
    batch_size = 4

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def score(self, sample, frames):
        return {"a": Score(math.nan if sample.id == "nan" else float(frames.mean()))}

    def score_batch(self, samples, frames):
        self.batches.append([s.id for s in samples])
        return super().score_batch(samples, frames)


def _sample(sample_id: str) -> Sample:
    sample = Sample(id=sample_id, frames=face_frames(8, size=32), audio=tone(8), boxes=np.tile([2, 2, 30, 30], (8, 1)))
    if sample_id == "noaudio":
        sample.missing["audio"] = "noaudio.mp4: the video has no audio track"
    return sample


def test_a_batch_ends_each_sample_as_one_at_a_time():
    from tfgbench.metrics.quality import PSNR

    ids = ["good", "frames", "nan", "noaudio", "broken"]
    samples: dict[str, Sample | BaseException] = {i: _sample(i) for i in ids[:-1]}
    samples["broken"] = OSError("broken.mp4: truncated")
    todo = ["psnr/talklip", "persample/a"]
    alone_worker = SampleWorker(Batched(), [PSNR(), PerSample()], None)
    alone = {i: alone_worker.process(samples[i], i, todo) for i in ids}
    model, metric = Batched(), PerSample()
    batched = dict(process_batch(SampleWorker(model, [PSNR(), metric], None), [(i, samples[i], todo) for i in ids]))
    assert model.batches == [4] and metric.batches == [["good", "nan"]]  # batching really happened
    for i in ids:
        assert [(r.protocol, r.error, {k: s.value for k, s in r.scores.items()}) for r in batched[i]] == \
               [(r.protocol, r.error, {k: s.value for k, s in r.scores.items()}) for r in alone[i]], i
    errors = {i: {r.protocol: r.error for r in batched[i]} for i in ids}
    assert errors["good"] == {"psnr/talklip": None, "persample/a": None}
    assert "has 7 frames, the sample has 8" in errors["frames"]["persample/a"]
    assert errors["nan"]["psnr/talklip"] is None and "returned NaN for a" in errors["nan"]["persample/a"]
    assert errors["noaudio"]["psnr/talklip"] is None
    assert "persample/a needs the sample's audio: noaudio.mp4: the video has no audio track" in \
        errors["noaudio"]["persample/a"]
    assert all("broken.mp4: truncated" in e for e in errors["broken"].values())


def test_an_unreadable_checkpoint_in_a_batch_stops_the_run(tmp_path):
    from tfgbench.metrics.quality import PSNR

    worker = SampleWorker(Batched(checkpoint=str(tmp_path / "w.pth")), [PSNR()], None)
    items = [(i, _sample(i), ["psnr/talklip"]) for i in ("a", "b", "c")]
    with pytest.raises(ConfigError, match="--checkpoint .*w.pth"):
        process_batch(worker, items)


def test_lse_in_a_batch_fails_only_the_degenerate_clip():
    torch = pytest.importorskip("torch")
    from tfgbench.metrics.lse.protocols import DegenerateSyncError
    from tfgbench.metrics.lse.scoring import evaluate_clips, num_windows

    class Net(torch.nn.Module):
        """Features from the first clip's audio windows and random video features; zeros for the second
        clip's (every shift ties: LSE-C exactly 0)."""

        def __init__(self, first: int) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
            self.first = first

        def forward_aud(self, windows):
            feats = windows.flatten(1)[:, :8].clone()
            feats[self.first:] = 0
            return feats

        def embed_videos(self, clips, nums):
            gen = torch.Generator().manual_seed(0)
            return [torch.randn(n, 8, generator=gen) if k == 0 else torch.zeros(n, 8) for k, n in enumerate(nums)]

    clips = [torch.zeros(20, 3, 8, 8), torch.zeros(20, 3, 8, 8)]
    audio = tone(20).astype(np.float32)
    good, bad = evaluate_clips(Net(num_windows(20, len(audio))), clips, [audio, audio], 15, ["a.mp4", "b.mp4"])
    assert not isinstance(good, Exception) and good.lse_c > 0
    assert isinstance(bad, DegenerateSyncError) and "b.mp4: degenerate sync score" in str(bad)


@pytest.mark.parametrize("changes,expected", [
    ({"batch_size": 0}, "--batch-size 0: must be 1 or more"),
    ({"executor": "dask"}, "--executor dask: must be local or ray"),
    ({"address": "10.0.0.1:6379"}, "--address 10.0.0.1:6379: only --executor ray joins a cluster"),
    ({"executor": "ray", "address": "head"}, "--address head: not a Ray cluster address"),
    ({"executor": "ray", "jobs": -1}, "--jobs -1: must be 1 or more (Ray actors)"),
    ({"executor": "ray", "ray_missing": True}, "--executor ray: Ray is not installed here. Install it with: "
                                               "pip install 'tfgbench[ray]'"),
])
def test_scale_flags_are_checked_before_the_first_sample(tmp_path, monkeypatch, changes, expected):
    from tfgbench.runner import RunSpec, run

    if changes.pop("ray_missing", False):
        monkeypatch.setitem(sys.modules, "ray", None)  # not importable, as without the extra
    spec = RunSpec(model="ground-truth", dataset="synthetic", metrics=["psnr"], workdir=str(tmp_path / "w"),
                   **changes)
    with pytest.raises(ConfigError) as e:
        run(spec, progress=False, log=lambda line: None)
    assert expected in str(e.value)
    assert not (tmp_path / "w").exists()


def test_scale_flags_fail_the_command_with_exit_status_2(tmp_path, capsys):
    from tfgbench.cli import main

    base = ["run", "--model", "ground-truth", "--dataset", "synthetic", "--metrics", "psnr", "--workdir",
            str(tmp_path / "w"), "--no-progress"]
    assert main([*base, "--batch-size", "0"]) == 2
    assert "--batch-size 0: must be 1 or more" in capsys.readouterr().err
    assert main([*base, "--address", "ray://head:10001"]) == 2
    assert "--address ray://head:10001: only --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
