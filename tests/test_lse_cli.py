"""LSE command line, hub entry point, metric plugin and bad input."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_lse_reference import make_clip, make_random_syncnet_file  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tfgbench.media.io import write_video

    tmp = tmp_path_factory.mktemp("lsecli")
    make_random_syncnet_file(tmp / "syncnet_v2.model", seed=3)
    frames, audio = make_clip(24, size=96)
    (tmp / "ok.mp4").write_bytes(write_video(None, frames, audio, quality="standard"))
    (tmp / "short.mp4").write_bytes(write_video(None, frames[:4], audio[:4 * 640], quality="standard"))
    (tmp / "silent.mp4").write_bytes(write_video(None, frames, np.zeros_like(audio), quality="standard"))
    (tmp / "shortaudio.mp4").write_bytes(write_video(None, frames, audio[:16 * 640], quality="standard"))
    return tmp


def _cli(argv: list[str]) -> int:
    from tfgbench.metrics.lse import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


def test_cli_json_has_exactly_the_documented_keys(files, capsys):
    assert _cli([str(files / "ok.mp4"), "--syncnet", str(files / "syncnet_v2.model"), "--json",
                 "--protocol", "lse/wav2lip-nojpeg"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert set(row) == {"offset", "lse_c", "lse_d", "protocol"}
    assert row["protocol"] == "lse/wav2lip-nojpeg"
    assert isinstance(row["offset"], int) and row["lse_c"] >= 0 and row["lse_d"] > 0


def test_cli_text_and_several_videos_with_a_bad_one(files, capsys):
    rc = _cli([str(files / "ok.mp4"), str(files / "short.mp4"), "--syncnet", str(files / "syncnet_v2.model")])
    out = capsys.readouterr().out
    assert rc == 1  # one video failed, the other was scored
    assert "LSE-C" in out and "short.mp4: error:" in out and "mean over 1 videos (1 failed)" in out


def test_weights_found_through_environment(files, monkeypatch, capsys):
    monkeypatch.setenv("TFGBENCH_SYNCNET", str(files / "syncnet_v2.model"))
    assert _cli([str(files / "ok.mp4"), "--json"]) == 0
    assert "lse_c" in json.loads(capsys.readouterr().out)


def test_missing_weights_name_the_official_file(files, monkeypatch, tmp_path):
    from tfgbench.errors import MissingResourceError

    monkeypatch.delenv("TFGBENCH_SYNCNET", raising=False)
    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path))
    with pytest.raises(MissingResourceError) as e:
        _cli([str(files / "ok.mp4")])
    msg = str(e.value)
    assert "syncnet_v2.model" in msg and "TFGBENCH_SYNCNET" in msg and "robots.ox.ac.uk" in msg


def test_bad_input_errors(files):
    from tfgbench.metrics.lse import ClipTooShortError, SilentAudioError
    from tfgbench.metrics.lse.scorer import SyncScorer

    scorer = SyncScorer("lse/wav2lip", weights=files / "syncnet_v2.model")
    with pytest.raises(ClipTooShortError, match="short.mp4.*at least 6"):
        scorer.score_file(files / "short.mp4")
    with pytest.raises(SilentAudioError, match="silent"):
        scorer.score_file(files / "silent.mp4")
    # audio shorter than the video: the official rule scores the common part
    r = scorer.score_file(files / "shortaudio.mp4")
    assert r.num_windows == 16 - 5


def test_metric_plugin_scores_a_sample(files):
    from tfgbench.data.sample import Sample
    from tfgbench.metrics.lse import LSE
    from tfgbench.metrics.lse.scorer import SyncScorer

    frames, audio = make_clip(24, size=96)
    metric = LSE("lse/wav2lip", weights=files / "syncnet_v2.model")
    scores = metric.score(Sample("s", frames, audio), frames)
    direct = SyncScorer("lse/wav2lip", weights=files / "syncnet_v2.model").score_frames(frames, audio)
    assert set(scores) == {"lse_c", "lse_d", "offset"}
    assert scores["lse_d"].value == pytest.approx(direct.lse_d, abs=1e-6)
    assert len(metric.evaluator_sha256) == 64


def test_hub_entry_point(files):
    torch = pytest.importorskip("torch")
    root = Path(__file__).resolve().parents[1]
    scorer = torch.hub.load(str(root), "syncnet", source="local", weights=str(files / "syncnet_v2.model"),
                            protocol="lse/wav2lip-nojpeg")
    r = scorer.score_file(files / "ok.mp4")
    assert r.num_windows == 24 - 5 and np.isfinite(r.lse_c)


def test_modules_do_not_import_torch_at_import_time():
    import subprocess

    code = ("import sys, tfgbench.metrics.lse, tfgbench.metrics.lse.cli, tfgbench.metrics.lse.protocols, "
            "tfgbench.face; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
