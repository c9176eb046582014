"""Inputs that must not escape or collide: sample ids, and `tfgbench score --videos` file names."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import face_frames, run_cli, tone
from integrity_plugins import installed

from tfgbench.data.base import SampleIdError, check_sample_id
from tfgbench.media.io import write_video


@pytest.mark.parametrize("bad", ["/etc/passwd", "../escape", "a/../../b", "a//b", "a/", "./a", "a/./b", ".", "",
                                 "a\\..\\b", "C:evil", "a\nb"])
def test_bad_sample_ids_are_refused(bad):
    with pytest.raises(SampleIdError, match="invalid sample id"):
        check_sample_id(bad, "somewhere")


@pytest.mark.parametrize("good", ["00001", "6330311066473698535/00011", "spk_1/u-000.v2", "a..b/c"])
def test_good_sample_ids_pass(good):
    assert check_sample_id(good, "somewhere") == good


def test_lrs2_list_with_an_escaping_id_names_file_and_line(tmp_path):
    from tfgbench import registry

    (tmp_path / "main").mkdir()
    (tmp_path / "test.txt").write_text("6330311066473698535/00011 NF\n\n../../../home/victim/video NF\n")
    ds = registry.load("datasets", "lrs2")(root=tmp_path)
    with pytest.raises(SampleIdError) as e:
        ds.ids()
    assert f"{tmp_path / 'test.txt'}, line 3" in str(e.value) and "'../../../home/victim/video'" in str(e.value)


def test_runner_checks_ids_of_any_dataset_before_using_them(tmp_path):
    from tfgbench.runner import RunSpec, run

    data = tmp_path / "data"
    data.mkdir()
    (data / "ids.json").write_text(json.dumps(["ok/1", "/tmp/outside"]))
    spec = RunSpec(model="static-frame", dataset="id-list", data_root=str(data), metrics=["psnr"],
                   workdir=str(tmp_path / "work"))
    with installed(tmp_path / "site"), pytest.raises(SampleIdError, match="'/tmp/outside'.*absolute"):
        run(spec, progress=False, log=lambda _: None)
    assert not (tmp_path / "work").exists()  # nothing was generated or written


def test_video_cache_never_writes_outside_its_folder(tmp_path):
    from tfgbench.videos import VideoCache

    cache = VideoCache(tmp_path / "cache")
    assert cache.path("spk/00001") == tmp_path / "cache" / "spk" / "00001.mp4"
    for bad in ("../../victim", "/abs/path"):
        with pytest.raises(SampleIdError):
            cache.path(bad)


def _lrs3(root, ids):
    for sample_id in ids:
        path = root / "test" / f"{sample_id}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, face_frames(10, size=64), tone(10), quality="standard")
        path.with_suffix(".txt").write_text("Text:  HELLO\n")
    return root


def test_score_refuses_ambiguous_stem_matches(tmp_path):
    data = _lrs3(tmp_path / "lrs3", ["spkA/00001", "spkB/00001", "spkC/00002"])
    videos = tmp_path / "out"
    videos.mkdir()
    shutil.copy(data / "test/spkA/00001.mp4", videos / "00001.mp4")    # whose video is this?
    shutil.copy(data / "test/spkC/00002.mp4", videos / "00002.mp4")
    proc = run_cli("score", "--videos", str(videos), "--dataset", "lrs3", "--data-root", str(data), "--name", "x",
                   "--metrics", "psnr", "--workdir", str(tmp_path / "work"), "--no-progress", check=False)
    assert proc.returncode == 2
    err = proc.stderr
    assert "00001.mp4 could be the video of samples spkA/00001, spkB/00001" in err
    assert "subfolders" in err and "spkA_00001.mp4" in err
    assert not (tmp_path / "work" / "results.sqlite").exists()


def test_score_reports_files_that_match_no_sample(tmp_path):
    data = _lrs3(tmp_path / "lrs3", ["spkA/00001", "spkB/00001"])
    videos = tmp_path / "out"
    (videos / "spkA").mkdir(parents=True)
    shutil.copy(data / "test/spkA/00001.mp4", videos / "spkA/00001.mp4")   # layout 1: subfolders
    shutil.copy(data / "test/spkB/00001.mp4", videos / "spkB_00001.mp4")   # layout 2: / as _
    shutil.copy(data / "test/spkB/00001.mp4", videos / "stray-take-2.mp4")
    out = run_cli("score", "--videos", str(videos), "--dataset", "lrs3", "--data-root", str(data), "--name", "x",
                  "--metrics", "psnr", "--workdir", str(tmp_path / "work"), "--no-progress").stdout
    assert "matched 2 of 2" in out
    assert "1 file(s)" in out and "stray-take-2.mp4" in out and "match no sample" in out
