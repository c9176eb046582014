"""What a sample's run ends as: degenerate scores and bad model output are error rows naming the
problem, never numbers; a missing input fails only the protocols that need it; a run with error rows
exits 3 unless --allow-failures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import face_frames, tone

from tfgbench.cli import main
from tfgbench.data.folder import FolderDataset
from tfgbench.data.sample import Sample
from tfgbench.media.io import write_video
from tfgbench.metrics.base import Measure, Metric, ProtocolSpec, Score
from tfgbench.metrics.quality import PSNR
from tfgbench.model import TalkingFaceModel
from tfgbench.sample_worker import SampleWorker


class Fixed(Metric):
    """A metric that returns what it is told to, and needs what it is told to."""

    family = "fixed"
    protocols = (ProtocolSpec("fixed/a", (Measure("a", "A", True), Measure("b", "B", True)), "test"),)
    default_protocol = "fixed/a"

    def __init__(self, scores: dict, needs: frozenset = frozenset(), name: str = "fixed/a") -> None:
        super().__init__()
        self.spec = ProtocolSpec(name, self.spec.measures, "test", needs=needs)
        self._scores = scores

    def score(self, sample, frames):
        return self._scores


class Echo(TalkingFaceModel):
    name = "echo"

    def __init__(self, transform=lambda f: f) -> None:
        super().__init__()
        self.transform = transform

    def generate(self, sample):
        return self.transform(sample.frames.copy())


def _sample(frames: int = 8) -> Sample:
    return Sample(id="s/1", frames=face_frames(frames, size=48), audio=tone(frames),
                  boxes=np.tile([4, 4, 44, 44], (frames, 1)))


@pytest.mark.parametrize("scores,needle", [
    ({"a": Score(math.inf), "b": Score(1.0)}, "returned an infinite value for a"),
    ({"a": Score(-math.inf), "b": Score(1.0)}, "returned an infinite value for a"),
    ({"a": Score(math.nan), "b": Score(1.0)}, "returned NaN for a"),
    ({"a": Score.ratio(3.0, 0.0), "b": Score(1.0)}, "returned NaN for a"),  # pooled measure over no frames
    ({"a": Score(1.0, num=math.inf, den=2.0), "b": Score(1.0)}, "non-finite num"),
    ({"a": Score(1.0)}, "returned no value for b"),
])
def test_degenerate_metric_scores_become_error_rows(scores, needle):
    (result,) = SampleWorker(Echo(), [Fixed(scores)], None).process(_sample(), "s/1", ["fixed/a"])
    assert result.scores == {} and needle in result.error and "fixed/a" in result.error


@pytest.mark.parametrize("transform,needle", [
    (lambda f: np.where(f > 128, np.nan, f.astype(np.float32)), "contains NaN or infinite values"),
    (lambda f: f[:, :, :24], "output has shape"),
    (lambda f: f[:-1], "has 7 frames, the sample has 8"),
    (lambda f: f[..., 0], "must have shape (T, H, W, 3)"),
])
def test_bad_model_output_becomes_error_rows_naming_the_problem(transform, needle):
    results = SampleWorker(Echo(transform), [Fixed({"a": Score(1.0), "b": Score(2.0)})], None
                           ).process(_sample(), "s/1", ["fixed/a"])
    assert results[0].scores == {} and needle in results[0].error and "generation failed" in results[0].error


def test_lse_with_every_shift_at_one_distance_is_an_error_not_a_zero():
    torch = pytest.importorskip("torch")
    from tfgbench.metrics.lse.protocols import DegenerateSyncError
    from tfgbench.metrics.lse.scoring import summarize

    with pytest.raises(DegenerateSyncError, match="31 of 31 shifts give the same minimum"):
        summarize(torch.full((12, 31), 0.7), 15, "clip.mp4")
    with pytest.raises(DegenerateSyncError, match="not finite"):
        summarize(torch.full((12, 31), float("nan")), 15, "clip.mp4")
    ok = summarize(torch.linspace(0, 1, 31).repeat(12, 1), 15, "clip.mp4")
    assert ok.lse_c > 0


def test_missing_inputs_fail_only_the_protocols_that_need_them(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    frames = face_frames(8, size=64)
    write_video(root / "noaudio.mp4", frames, None, quality="standard")
    for name in ("badtext", "emptytext", "notext", "good"):
        write_video(root / f"{name}.mp4", frames, tone(8), quality="standard")
    (root / "badtext.txt").write_bytes(b"bin bl\xffue at f two now\n")
    (root / "emptytext.txt").write_text("Text:   \nConf: 5\n")
    (root / "good.txt").write_text("Text:  BIN BLUE\n")
    dataset = FolderDataset(root)
    audio_metric = Fixed({"a": Score(1.0), "b": Score(1.0)}, frozenset({"audio"}), "fixed/audio")
    text_metric = Fixed({"a": Score(1.0), "b": Score(1.0)}, frozenset({"transcript"}), "fixed/text")
    worker = SampleWorker(Echo(), [PSNR(), audio_metric, text_metric], None)
    out = {}
    for sample_id in dataset.ids():
        results = worker.process(dataset.load(sample_id), sample_id, ["psnr/talklip", "fixed/audio", "fixed/text"])
        out[sample_id] = {r.protocol: r.error for r in results}
    assert all(o["psnr/talklip"] is None for o in out.values()), out  # PSNR needs neither
    assert "noaudio.mp4: the video has no audio track" in out["noaudio"]["fixed/audio"]
    assert "fixed/audio needs the sample's audio" in out["noaudio"]["fixed/audio"]
    assert out["noaudio"]["fixed/text"] and "notext" not in out["noaudio"]["fixed/text"]
    assert "badtext.txt: the transcript is not valid UTF-8 (byte 0xff at offset 6)" in out["badtext"]["fixed/text"]
    assert "emptytext.txt: the transcript is empty" in out["emptytext"]["fixed/text"]
    assert "notext.txt: no transcript file" in out["notext"]["fixed/text"]
    assert out["good"] == {"psnr/talklip": None, "fixed/audio": None, "fixed/text": None}
    assert all(out[k]["fixed/audio"] is None for k in ("badtext", "emptytext", "notext", "good"))
    assert dataset.load("good").transcript == "BIN BLUE" and dataset.load("badtext").transcript is None


def test_exit_status_reports_error_rows_unless_allowed(tmp_path, capsys):
    root = tmp_path / "clips"
    root.mkdir()
    write_video(root / "good.mp4", face_frames(8, size=48), tone(8), quality="standard")
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    args = ["run", "--model", "ground-truth", "--dataset", "folder", "--data-root", str(root), "--metrics",
            "psnr", "--workdir", str(tmp_path / "work"), "--no-progress"]
    assert main(args) == 3
    assert "1 sample(s) are error rows (ground-truth): exit status 3" in capsys.readouterr().err
    assert main(args) == 3  # resumed, nothing to do: the stored error rows still count
    out = capsys.readouterr()
    assert "1 of its 2 samples are stored as error rows" in out.out, out.out
    assert main([*args, "--allow-failures"]) == 0
    (root / "broken.mp4").unlink()
    assert main(args[:-3] + ["--workdir", str(tmp_path / "work2"), "--no-progress"]) == 0
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "--allow-failures" in help_text
    assert "3    the run finished, but some samples are stored as error" in help_text
