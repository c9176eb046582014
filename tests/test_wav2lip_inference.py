"""Wav2Lip inference: what the network sees, paste-back, chunks vs frames, and a plugin run end to end."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import torch
from conftest import face_frames, run_cli, tone

from baselines.wav2lip.audio import melspectrogram
from baselines.wav2lip.inference import generated_frame_count, lipsync_batch, prepare_boxes


class Spy(torch.nn.Module):
    """Records its inputs and answers a constant BGR colour (blue 1.0, green 0.5, red 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.mels: list[torch.Tensor] = []
        self.faces: list[torch.Tensor] = []

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        self.mels.append(mel)
        self.faces.append(face)
        out = torch.zeros(len(face), 3, 96, 96)
        out[:, 0], out[:, 1] = 1.0, 0.5
        return out


BOX = np.array([30, 20, 90, 80])   # x1, y1, x2, y2 in a 128x128 frame


def run_spy(num_frames: int, seconds: float, batch_size: int = 8):
    frames = face_frames(num_frames)
    audio = tone(int(round(seconds * 25)))
    spy = Spy()
    out = lipsync_batch(spy, [(frames, audio, np.tile(BOX, (num_frames, 1)))], batch_size=batch_size)[0]
    return frames, audio, spy, out


def test_inputs_are_masked_bgr_faces_and_the_official_mel_chunks():
    frames, audio, spy, _ = run_spy(30, 1.2)
    faces, mels = torch.cat(spy.faces), torch.cat(spy.mels)
    assert faces.shape == (27, 6, 96, 96) and mels.shape == (27, 1, 80, 16)
    assert torch.all(faces[:, :3, 48:] == 0)                       # lower half masked
    assert torch.equal(faces[:, :3, :48], faces[:, 3:, :48])       # reference = the same frame
    # box padded by 10 px at the bottom: rows 20..90, cols 30..90 of the frame, bilinear to 96x96, BGR
    import cv2
    crop = cv2.resize(frames[4][20:90, 30:90], (96, 96))[..., ::-1].astype(np.float32) / 255
    assert np.allclose(faces[4, 3:].numpy().transpose(1, 2, 0), crop, atol=1e-6)
    mel = melspectrogram(audio)
    assert torch.equal(mels[5, 0], torch.from_numpy(mel[:, 16:32]))   # start int(5 * 80 / 25) = 16
    assert torch.equal(mels[26, 0], torch.from_numpy(mel[:, -16:]))   # the last chunk from the end


def test_paste_back_changes_only_the_padded_box():
    frames, _, _, out = run_spy(30, 1.2)
    assert out.shape == frames.shape and out.dtype == np.uint8
    inside = np.zeros(frames.shape[1:3], bool)
    inside[20:90, 30:90] = True
    assert np.array_equal(out[:27][:, ~inside], frames[:27][:, ~inside])
    # BGR (1.0, 0.5, 0) -> RGB (0, 127, 255) after the official uint8 truncation
    assert np.all(out[:27][:, inside] == np.array([0, 127, 255], np.uint8))
    # 1.2 s of audio gives 27 chunks: frames 27..29 keep their original pixels
    assert np.array_equal(out[27:], frames[27:])


def test_more_chunks_than_frames_drops_the_extra_chunks():
    frames, _, spy, out = run_spy(20, 1.2)
    assert sum(len(f) for f in spy.faces) == 20
    assert out.shape == frames.shape
    assert generated_frame_count(20, 19200) == 20 and generated_frame_count(30, 19200) == 27


def test_batches_cover_every_window_once():
    _, _, spy, _ = run_spy(30, 1.2, batch_size=8)
    assert [len(f) for f in spy.faces] == [8, 8, 8, 3]


def test_boxes_are_padded_clipped_and_smoothed():
    frames = np.zeros((6, 100, 100, 3), np.uint8)
    boxes = np.array([[10, 10, 50, 95]] * 5 + [[20, 10, 60, 95]])
    out = prepare_boxes(frames, boxes, 6)
    assert out[:, 3].max() == 100                   # bottom pad 10 clipped to the frame
    # official get_smoothened_boxes: box i = mean of boxes i..i+4, truncated, in place; the windows of
    # the last frames (the last 5 boxes) already hold smoothed values: x1 = 10, 12, 12.4, 12.8, 13.2, 13.8
    assert out[:, 0].tolist() == [10, 12, 12, 12, 13, 13]
    assert np.array_equal(prepare_boxes(frames, boxes, 6, smooth=False)[5], [20, 10, 60, 100])


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from baselines.wav2lip.model import Wav2Lip
    from tfgbench.checkpoints import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "wav2lip-random.safetensors"
    save_checkpoint(path, Wav2Lip(0.25).state_dict(), {"model": "wav2lip", "width": 0.25},
                    training_data="synthetic train split (tfgbench)")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A synthetic test split of two clips."""
    from tfgbench.data.synthetic.generation import DEFAULT_SIZES, generate

    return generate(tmp_path_factory.mktemp("corpus"), splits=("test",), sizes={**DEFAULT_SIZES, "test": (1, 2)},
                    workers=1, progress=False)


def test_plugin_runs_end_to_end_through_the_runner(tmp_path, tiny_checkpoint, corpus):
    from baselines.wav2lip.plugin import Wav2LipGANModel
    from tfgbench.runner import RunSpec, run, synthetic_weights_warning

    model = Wav2LipGANModel(checkpoint=tiny_checkpoint, batch_size=16)
    spec = RunSpec(model="wav2lip-gan", dataset="synthetic", data_root=str(corpus),
                   metrics=["psnr"], workdir=str(tmp_path / "work"))
    summary = run(spec, model=model, progress=False, log=lambda _: None)
    assert summary.samples == 2 and not summary.failed
    rows = sqlite3.connect(tmp_path / "work" / "results.sqlite").execute(
        "SELECT value, error FROM results").fetchall()
    assert len(rows) == 2 and all(err is None and 10 < value < 100 for value, err in rows)
    assert model.info.training_data == "synthetic train split (tfgbench)"
    assert "does not represent" not in (synthetic_weights_warning(model, "synthetic") or "")
    assert "trained on synthetic" in synthetic_weights_warning(model, "lrs2")


def test_audio_too_short_for_one_chunk_names_the_sample(tiny_checkpoint):
    from baselines.wav2lip.plugin import Wav2LipModel
    from tfgbench.data.sample import Sample
    from tfgbench.errors import SampleError

    sample = Sample(id="short", frames=face_frames(3), audio=np.zeros(2999, np.float32))
    with pytest.raises(SampleError, match="'short'.*2999 audio samples"):
        Wav2LipModel(checkpoint=tiny_checkpoint).generate(sample)


@pytest.mark.parametrize("name", ["wav2lip", "wav2lip-gan"])
def test_shipped_tiny_weights_carry_their_command(name):
    from baselines.wav2lip.plugin import Wav2LipGANModel, Wav2LipModel
    from tfgbench.checkpoints import load_checkpoint

    model = {"wav2lip": Wav2LipModel, "wav2lip-gan": Wav2LipGANModel}[name]()
    assert model.weights_path.stat().st_size < 12 * 2 ** 20      # fp32, 2.3 M parameters
    _, config, meta = load_checkpoint(model.weights_path)
    assert config["model"] == name and config["width"] == 0.25 and config["dataset"] == "synthetic"
    assert meta["command"].startswith("python -m baselines.wav2lip.train generator")
    assert ("--gan" in meta["command"]) == (name == "wav2lip-gan")
    assert 0 < meta["training_seconds"] < 30 * 60
    assert model.info.training_data == "synthetic train split (tfgbench)"


def test_cli_runs_the_shipped_wav2lip_on_synthetic_clips(tmp_path, corpus):
    out = run_cli("run", "--model", "wav2lip", "--dataset", "synthetic", "--data-root", str(corpus),
                  "--metrics", "psnr,ssim", "--workdir", str(tmp_path / "work"), "--no-progress").stdout
    rows = sqlite3.connect(tmp_path / "work" / "results.sqlite").execute(
        "SELECT protocol, value, error FROM results").fetchall()
    assert len(rows) == 4 and all(err is None for _, _, err in rows), out
    psnr = [v for p, v, _ in rows if p.startswith("psnr")]
    assert all(20 < v < 100 for v in psnr)      # changed frames, still close to the real ones
