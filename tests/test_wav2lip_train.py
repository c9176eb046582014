"""Wav2Lip training: batches laid out as the official scripts, losses that move, the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from baselines.wav2lip.batches import (
    ClipBank,
    expert_batch,
    generator_batch,
    lower_half_windows,
    mel_start,
    region_mask,
)
from baselines.wav2lip.model import SyncNetColor, Wav2Lip, Wav2LipDiscQual, cosine_loss


def toy_bank(clips: int = 3, frames: int = 30) -> ClipBank:
    """Frames whose pixels say where they come from: R = frame index, G = 10 * clip, B = 200; mel
    column ``c`` holds the value ``c``."""
    faces = []
    for c in range(clips):
        x = np.zeros((frames, 96, 96, 3), np.uint8)
        x[..., 0] = np.arange(frames)[:, None, None]
        x[..., 1], x[..., 2] = 10 * c, 200
        faces.append(x)
    mels = [np.tile(np.arange(1 + frames * 640 // 200, dtype=np.float32), (80, 1)) for _ in range(clips)]
    return ClipBank(faces=faces, mels=mels, mouth=[None] * clips, ids=[f"c{c}" for c in range(clips)])


def value(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * 255).long()


def test_expert_batches_pair_frames_with_the_official_mel_window():
    mel, faces, y = expert_batch(toy_bank(), np.random.default_rng(0), 64)
    assert mel.shape == (64, 1, 80, 16) and faces.shape == (64, 15, 48, 96)
    assert torch.all(value(faces[:, 0::3]) == 200)                  # BGR: channel 0 of every frame is blue
    frames = value(faces[:, 2::3, 0, 0])                           # (64, 5) frame indices (red)
    assert torch.all(frames.diff(dim=1) == 1)                       # 5 consecutive frames
    first_column = mel[:, 0, 0, 0].long()
    expected = torch.tensor([float(mel_start(int(f)) == int(c)) for f, c in zip(frames[:, 0], first_column)])
    assert torch.equal(y, expected)                                 # label 1 iff the frames start at the audio
    assert 16 < y.sum() < 48                                        # both kinds, about half each
    assert torch.all(mel[:, 0, 0, 15] - mel[:, 0, 0, 0] == 15)      # 16 consecutive mel columns


def test_generator_batch_layout():
    b = generator_batch(toy_bank(), np.random.default_rng(1), 8)
    assert b.inputs.shape == (8, 6, 5, 96, 96) and b.target.shape == (8, 3, 5, 96, 96)
    assert b.indiv_mels.shape == (8, 5, 1, 80, 16) and b.sync_mel.shape == (8, 1, 80, 16)
    assert torch.all(b.inputs[:, :3, :, 48:] == 0) and torch.equal(b.inputs[:, :3, :, :48], b.target[:, :, :, :48])
    for k in range(8):
        frames = value(b.target[k, 2, :, 0, 0])
        assert torch.all(frames.diff() == 1)
        f = int(frames[0])
        # per-frame chunks start one frame early (official get_segmented_mels); the sync window at f
        assert b.indiv_mels[k, :, 0, 0, 0].long().tolist() == [mel_start(j - 1) for j in range(f, f + 5)]
        assert int(b.sync_mel[k, 0, 0, 0]) == mel_start(f)
        reference = value(b.inputs[k, 5, :, 0, 0])
        assert torch.all(reference.diff() == 1) and int(reference[0]) != f      # another time ...
        assert torch.equal(b.inputs[k, 4], b.target[k, 1])                     # ... of the same clip


def test_region_mask_uses_the_mouth_box_or_the_lower_half():
    mouth = torch.tensor([[[0.25, 0.5, 0.75, 1.0]], [[float("nan")] * 4]])
    mask = region_mask(mouth, size=8)
    assert mask.shape == (2, 1, 1, 8, 8)
    assert mask[0, 0, 0].sum() == 16 and mask[0, 0, 0, 4:, 2:6].all()
    assert mask[1, 0, 0, 4:].all() and not mask[1, 0, 0, :4].any()


def test_expert_loss_moves():
    torch.manual_seed(0)
    model = SyncNetColor(0.25)
    mel, faces, y = expert_batch(toy_bank(), np.random.default_rng(0), 16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = cosine_loss(*model(mel, faces), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_generator_losses_move_with_sync_and_gan():
    torch.manual_seed(0)
    gen, disc, expert = Wav2Lip(0.25), Wav2LipDiscQual(0.25), SyncNetColor(0.25).eval().requires_grad_(False)
    b = generator_batch(toy_bank(), np.random.default_rng(2), 2)
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    l1s = []
    for _ in range(8):
        g = gen(b.indiv_mels, b.inputs)
        l1 = torch.nn.functional.l1_loss(g, b.target)
        sync = cosine_loss(*expert(b.sync_mel, lower_half_windows(g)), torch.ones(2))
        loss = 0.9 * l1 + 0.03 * sync + 0.07 * disc.perceptual_loss(g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        l1s.append(l1.item())
    assert l1s[-1] < 0.92 * l1s[0]
    assert all(p.grad is None for p in expert.parameters())


def test_training_commands_end_to_end(tmp_path, monkeypatch):
    from baselines.wav2lip.plugin import Wav2LipModel
    from baselines.wav2lip.train import main
    from tfgbench.checkpoints import load_checkpoint
    from tfgbench.data.synthetic.generation import DEFAULT_SIZES, generate

    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path / "home"))
    corpus = generate(tmp_path / "corpus", splits=("train", "val"),
                      sizes={**DEFAULT_SIZES, "train": (1, 2), "val": (1, 1)}, workers=1, progress=False)
    common = ["--data-root", str(corpus), "--steps", "4", "--val-every", "2", "--val-clips", "1"]
    expert = tmp_path / "expert.safetensors"
    main(["expert", *common, "--batch-size", "4", "--run-dir", str(tmp_path / "e"), "--out", str(expert)])
    state, config, meta = load_checkpoint(expert)
    assert config["model"] == "syncnet-color" and config["width"] == 0.25
    assert meta["command"].startswith("python -m baselines.wav2lip.train") and meta["training_seconds"] > 0
    gen = tmp_path / "gen.safetensors"
    # a threshold no sync loss can miss: the switch turns on at the first validation
    main(["generator", "--gan", "--expert", str(expert), "--sync-threshold", "100", *common, "--batch-size", "2",
          "--run-dir", str(tmp_path / "g"), "--out", str(gen)])
    rows = [json.loads(line) for line in (tmp_path / "g" / "log.jsonl").read_text().splitlines()]
    val = [r["val"] for r in rows if "val" in r]
    assert {"lip_l1_true", "lip_l1_shuffled", "lip_l1_copy_reference", "sync"} <= set(val[0])
    assert val[0]["sync_on"] == 1.0
    assert load_checkpoint(gen)[2]["sync_loss_on_from_step"] == 2
    state, config, meta = load_checkpoint(gen)
    assert config["model"] == "wav2lip-gan" and config["disc_wt"] == 0.07
    assert not any(k.startswith(("disc", "sync_switch")) for k in state)
    plugin = Wav2LipModel(checkpoint=gen)
    assert plugin.network().width == 0.25 and plugin.info.training_data == "synthetic train split (tfgbench)"
    with pytest.raises(Exception, match="another config"):
        main(["generator", "--expert", str(expert), *common, "--run-dir", str(tmp_path / "g"), "--out", str(gen)])
