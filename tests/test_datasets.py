"""LRS2 / LRS3 / folder datasets read the official layouts; missing data explains itself."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import face_frames, tone

from tfgbench import registry
from tfgbench.errors import MissingResourceError
from tfgbench.media.io import write_video


def _clip(path, words: str, frames: int = 12):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, face_frames(frames), tone(frames), quality="standard")
    path.with_suffix(".txt").write_text(f"Text:  {words}\nConf:  4\n\nWORD START END ASDSCORE\n")


def test_lrs2_layout_and_test_list(tmp_path):
    _clip(tmp_path / "main/6330311066473698535/00011.mp4", "HELLO THERE")
    _clip(tmp_path / "main/6330311066473698535/00012.mp4", "NOT IN THE LIST")
    (tmp_path / "test.txt").write_text("6330311066473698535/00011 NF\n")
    ds = registry.load("datasets", "lrs2")(root=tmp_path, split="test")
    assert ds.ids() == ["6330311066473698535/00011"]
    s = ds.load(ds.ids()[0])
    assert s.transcript == "HELLO THERE"
    assert s.frames.shape == (12, 128, 128, 3) and s.audio.dtype == np.float32
    assert s.boxes.shape == (12, 4) and s.meta["boxes_source"] == "opencv-haar"


def test_lrs3_layout_and_box_files(tmp_path):
    _clip(tmp_path / "test/spk1/00001.mp4", "A B")
    _clip(tmp_path / "test/spk2/00003.mp4", "C")
    boxes = np.tile([1, 2, 60, 70], (12, 1))
    np.save(tmp_path / "test/spk2/00003.npy", boxes)
    ds = registry.load("datasets", "lrs3")(root=tmp_path)
    assert ds.ids() == ["spk1/00001", "spk2/00003"]
    s = ds.load("spk2/00003")
    np.testing.assert_array_equal(s.boxes, boxes)
    assert s.meta["boxes_source"].endswith("00003.npy")


def test_missing_root_says_what_where_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv("TFGBENCH_LRS2", raising=False)
    with pytest.raises(MissingResourceError) as e:
        registry.load("datasets", "lrs2")(root=tmp_path / "nowhere")
    msg = str(e.value)
    for needle in ("LRS2", str(tmp_path / "nowhere"), "TFGBENCH_LRS2", "--dataset synthetic", "robots.ox.ac.uk"):
        assert needle in msg
    monkeypatch.setenv("TFGBENCH_LRS3", str(tmp_path / "env-root"))
    with pytest.raises(MissingResourceError, match="env-root"):
        registry.load("datasets", "lrs3")()


def test_folder_transcripts_plain_or_lrs_style(tmp_path):
    _clip(tmp_path / "a.mp4", "LRS STYLE")
    write_video(tmp_path / "sub/b.mp4", face_frames(5), tone(5), quality="standard")
    (tmp_path / "sub/b.txt").write_text("plain words\n")
    ds = registry.load("datasets", "folder")(root=tmp_path)
    assert ds.ids() == ["a", "sub/b"]
    assert ds.load("a").transcript == "LRS STYLE" and ds.load("sub/b").transcript == "plain words"
