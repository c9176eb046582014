"""The ``degrade`` model plugin: each degradation is a pure (seeded) function, checked on a hand-made case."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import face_frames, run_cli, tone  # noqa: E402

from tfgbench import degrade as D  # noqa: E402
from tfgbench.data.sample import Sample  # noqa: E402
from tfgbench.errors import TfgbenchError  # noqa: E402


def numbered(t: int = 10, h: int = 16, w: int = 16) -> np.ndarray:
    """Frame ``i`` is filled with the value ``10 * i``: which source frame an output shows is readable."""
    return np.stack([np.full((h, w, 3), 10 * i, np.uint8) for i in range(t)])


def test_shift_shows_frame_i_minus_offset_and_holds_the_edges():
    f = numbered(10)
    assert [int(x) for x in D.shift_frames(f, 3)[:, 0, 0, 0] // 10] == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6]
    assert [int(x) for x in D.shift_frames(f, -2)[:, 0, 0, 0] // 10] == [2, 3, 4, 5, 6, 7, 8, 9, 9, 9]
    assert np.array_equal(D.shift_frames(f, 0), f)


def test_freeze_whole_frames_repeats_the_first_frame_of_the_run():
    f = numbered(8)
    out = D.freeze_frames(f, 0.5, start=2)
    assert [int(x) for x in out[:, 0, 0, 0] // 10] == [0, 1, 2, 2, 2, 2, 6, 7]
    assert np.array_equal(D.freeze_frames(f, 0.0), f)
    with pytest.raises(ValueError):
        D.freeze_frames(f, 0.5, start=6)  # a 4-frame run cannot start at frame 6 of 8


def test_freeze_mouth_changes_only_the_region_and_follows_the_box():
    f = numbered(6, 40, 40)
    boxes = np.array([[10 + i, 10, 30 + i, 30] for i in range(6)])  # the head moves right
    out = D.freeze_frames(f, 1.0, start=0, boxes=boxes)
    for i in range(6):
        x1, y1, x2, y2 = boxes[i]
        assert out[i, (y1 + y2) // 2, (x1 + x2) // 2, 0] == 0          # frame 0's mouth in the box centre
        outside = np.ones((40, 40), bool)
        outside[y1:y2, x1:x2] = False
        assert np.all(out[i][outside] == 10 * i)                         # the rest is untouched
        edge = out[i, y1, x1, 0]
        assert 0 <= edge <= 10 * i                                        # feathered, no hard seam


def test_paste_region_resizes_and_feathers():
    dst = np.zeros((20, 20, 3), np.uint8)
    src = np.full((10, 10, 3), 200, np.uint8)
    out = D.paste_region(dst, src, np.array([0, 0, 10, 10]), np.array([5, 5, 15, 15]))
    assert out[10, 10, 0] == 200
    assert 0 < out[5, 5, 0] < 200
    assert out[:5].max() == 0 and out[15:].max() == 0
    # a box partly outside the frame is clipped, not an error
    out = D.paste_region(dst, src, np.array([0, 0, 10, 10]), np.array([15, 15, 25, 25]))
    assert out[17, 17, 0] > 0 and out.shape == dst.shape


def test_mouth_swap_takes_the_donor_frame_by_frame_for_the_fraction():
    f = numbered(8, 30, 30)
    donor = 255 - numbered(5, 30, 30)                    # donor frame j is 255 - 10 j
    boxes = np.tile([5, 5, 25, 25], (8, 1))
    out = D.mouth_swap_frames(f, boxes, donor, boxes, fraction=0.5, start=2)
    centre = out[:, 15, 15, 0].astype(int).tolist()
    assert centre == [0, 10, 235, 225, 215, 255, 60, 70]  # frames 2..5 show donor frames 2, 3, 4, 0 (looped)
    assert np.array_equal(out[:, 0], f[:, 0])


def test_blur_is_symmetric_about_a_step_edge():
    img = np.zeros((1, 32, 32, 3), np.uint8)
    img[:, :, 16:] = 255
    out = D.blur_frames(img, 2.0)[0, 16, :, 0].astype(int)
    assert np.all(np.diff(out) >= 0) and out[0] == 0 and out[-1] == 255
    assert abs(out[15] + out[16] - 255) <= 1            # mirror symmetry around the edge
    assert 20 < out[15] < 128 < out[16] < 235           # really blurred
    assert np.array_equal(D.blur_frames(img, 0), img)


def test_jpeg_keeps_colour_order_and_loses_more_at_low_quality():
    frames = face_frames(2, size=64)
    err = {q: np.abs(D.jpeg_frames(frames, q).astype(int) - frames).mean() for q in (95, 50, 5)}
    assert err[95] < err[50] < err[5]
    red = np.zeros((1, 32, 32, 3), np.uint8)
    red[..., 0] = 220
    back = D.jpeg_frames(red, 30)[0].reshape(-1, 3).mean(0)
    assert back[0] > 200 and back[2] < 20                # red stays red (RGB <-> BGR handled)


def test_h264_round_trip_keeps_shape_order_and_colour():
    frames = face_frames(5, size=48)[:, :47, :45]        # odd size; five distinct frames
    low = D.h264_frames(frames, 0)
    high = D.h264_frames(frames, 51)
    assert low.shape == high.shape == frames.shape
    err_low = np.abs(low.astype(int) - frames).mean()
    err_high = np.abs(high.astype(int) - frames).mean()
    assert err_low < 4.0 and err_high > 5 * err_low     # 4:2:0 chroma costs a little even at crf 0
    red = np.zeros((3, 32, 32, 3), np.uint8)
    red[..., 0] = 220
    back = D.h264_frames(red, 30)[0].reshape(-1, 3).mean(0)
    assert back[0] > 200 and back[2] < 20
    # frame order survives: each output frame is closest to its own input frame
    for i in range(len(frames)):
        dists = [np.abs(low[i].astype(int) - frames[j]).mean() for j in range(len(frames))]
        assert int(np.argmin(dists)) == i


def test_downscale_removes_fine_detail_and_keeps_flat_images():
    checker = (np.indices((32, 32)).sum(0) % 2 * 255).astype(np.uint8)
    img = np.repeat(checker[None, :, :, None], 3, axis=3)
    out = D.downscale_frames(img, 2)
    assert abs(float(out.mean()) - 127.5) < 1.0 and out.std() < 2.0
    flat = np.full((2, 20, 20, 3), 77, np.uint8)
    assert np.array_equal(D.downscale_frames(flat, 3), flat)
    assert np.array_equal(D.downscale_frames(img, 1), img)


def test_noise_is_seeded_and_has_the_requested_sigma():
    grey = np.full((4, 64, 64, 3), 128, np.uint8)
    a, b, c = D.noise_frames(grey, 10, 1), D.noise_frames(grey, 10, 1), D.noise_frames(grey, 10, 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs((a.astype(float) - 128).std() - 10) < 0.3
    assert np.array_equal(D.noise_frames(grey, 0, 1), grey)


def test_settings_are_normalised_and_validated():
    assert D.normalise("blur", 0) == {"kind": "none"}           # identity amounts share the undegraded key
    assert D.normalise("shift", 0) == {"kind": "none"}
    assert D.normalise("blur", "2") == {"kind": "blur", "amount": 2.0}
    assert D.normalise("jpeg", 20.0) == {"kind": "jpeg", "amount": 20}
    assert D.normalise("freeze", 0.5, region="frame", seed=3) == {"kind": "freeze", "amount": 0.5,
                                                                  "region": "frame", "seed": 3}
    assert D.label(D.normalise("freeze", 0.5, region="frame")) == "degrade:freeze=0.5,region=frame"
    assert D.label(D.normalise("noise", 4, seed=2)) == "degrade:noise=4,seed=2"
    for kind, amount, match in [("jpeg", 0, "1"), ("shift", 1.5, "integer"), ("freeze", 2, r"\[0"),
                                ("warp", 1, "unknown kind"), ("blur", "lots", "number")]:
        with pytest.raises(TfgbenchError, match=match):
            D.normalise(kind, amount)
    with pytest.raises(TfgbenchError, match="region"):
        D.normalise("freeze", 0.5, region="eyes")


def test_run_start_is_deterministic_and_in_range():
    starts = {D.run_start(60, 0.25, 0, f"s{k}") for k in range(20)}
    assert all(0 <= s <= 45 for s in starts) and len(starts) > 5
    assert D.run_start(60, 0.25, 0, "a") == D.run_start(60, 0.25, 0, "a")
    assert D.run_start(60, 1.0, 7, "a") == 0


def _sample(tmp_path: Path, name: str, k: int) -> Sample:
    from tfgbench.media.io import write_video

    frames, audio = face_frames(12, size=64, shift=k), tone(12)
    path = tmp_path / "spk" / f"{name}.mp4"
    write_video(path, frames, audio, quality="lossless")
    mouth = np.tile([20, 36, 44, 60], (12, 1))
    path.with_suffix(".json").write_text(json.dumps({"mouth_boxes": mouth.tolist()}))
    return Sample(id=f"spk/{name}", frames=frames, audio=audio, boxes=np.tile([8, 4, 56, 62], (12, 1)),
                  path=path, meta={"mouth_box": mouth})


def test_plugin_loads_through_the_entry_point_and_keys_its_settings(tmp_path):
    from tfgbench import registry

    cls = registry.load("models", "degrade")
    assert cls is D.Degrade
    none, zero_blur, blur2, blur3 = cls(), cls(kind="blur", amount=0), cls(kind="blur", amount=2), cls(kind="blur",
                                                                                                         amount=3)
    assert none.settings_hash() == zero_blur.settings_hash()
    assert len({none.settings_hash(), blur2.settings_hash(), blur3.settings_hash()}) == 3
    assert blur2.label == "degrade:blur=2"
    with pytest.raises(TfgbenchError, match="no checkpoint"):
        cls(checkpoint="x.pth")
    s = _sample(tmp_path, "u0", 0)
    assert np.array_equal(none.generate(s), s.frames)
    out = cls(kind="shift", amount=2).generate(s)
    assert np.array_equal(out[5], s.frames[3])
    frozen = cls(kind="freeze", amount=1.0).generate(s)
    assert np.array_equal(frozen[:, 48, 32], np.repeat(s.frames[:1, 48, 32], 12, axis=0))  # mouth centre
    assert np.array_equal(frozen[:, 10], s.frames[:, 10])                                  # forehead moves on


def test_mouth_swap_plugin_takes_lips_from_another_clip_of_the_speaker(tmp_path):
    target = _sample(tmp_path, "u0", 0)
    donor = _sample(tmp_path, "u1", 2)
    with pytest.raises(TfgbenchError, match="no other clip"):
        lonely = _sample(tmp_path / "alone", "u9", 0)
        D.Degrade(kind="mouth-swap").generate(lonely)
    out = D.Degrade(kind="mouth-swap", amount=1.0).generate(target)
    assert np.array_equal(out[:, 48, 32], donor.frames[:, 48, 32])   # the donor's mouth, frame for frame
    assert np.array_equal(out[:, 10], target.frames[:, 10])
    assert not np.array_equal(out[:, 48, 32], target.frames[:, 48, 32])


def test_tfgbench_run_accepts_degrade_model_args(face_folder, tmp_path):
    proc = run_cli("run", "--model", "degrade", "--model-arg", "kind=jpeg", "--model-arg", "amount=10",
                   "--dataset", "folder", "--data-root", str(face_folder), "--metrics", "psnr",
                   "--workdir", str(tmp_path / "w"), "--no-progress")
    assert "degrade:jpeg=10" in proc.stdout
    from tfgbench.store import Store

    with Store(tmp_path / "w" / "results.sqlite") as store:
        values = [r.value for r in store.rows("folder") if r.measure == "psnr"]
    assert len(values) == 2 and all(20 < v < 40 for v in values)
