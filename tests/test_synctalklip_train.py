"""`synctalklip train generator` end to end on a fake LRS2-layout folder made of synthetic clips:
the variants train (their terms logged, frozen parts unchanged) and the plugin runs the result."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

SMALL = {"encoder_layers": 1, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 2,
         "conv_pos": 4, "conv_pos_groups": 2, "resnet_widths": (4, 8, 8, 16), "decoder_layers": 1,
         "decoder_embed_dim": 32, "decoder_ffn_embed_dim": 64, "decoder_attention_heads": 2}


@pytest.fixture(scope="module")
def fake_lrs2(tmp_path_factory):
    from conftest import make_fake_lrs2

    root = tmp_path_factory.mktemp("lrs2")
    samples = make_fake_lrs2(root)
    words = sorted({w for s in samples for w in s.transcript.split()})
    return root, words, samples[3]


def supervisor(path, words, variant):
    from synctalklip.avsyncnet import AVSyncNet, save_avsyncnet, word_codec
    from synctalklip.config import AVSyncNetConfig

    torch.manual_seed(0)
    net = AVSyncNet(AVSyncNetConfig.tiny(variant, encoder=dict(SMALL)), word_codec(words))
    save_avsyncnet(path, net, command="test")
    return net


@pytest.mark.parametrize("variant", ["freeze", "conv"])
def test_generator_training_on_lrs2_layout_and_plugin(tmp_path, monkeypatch, fake_lrs2, variant):
    from synctalklip.plugin import SyncTalklipConv, SyncTalklipFreeze
    from synctalklip.train_generator import main
    from tfgbench.checkpoints import load_checkpoint

    root, words, sample = fake_lrs2
    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path / "home"))
    sup = tmp_path / f"avsyncnet-{variant}.safetensors"
    net = supervisor(sup, words, "conv" if variant == "conv" else "base")
    out = tmp_path / "gen.safetensors"
    main(["--variant", variant, "--dataset", "lrs2", "--data-root", str(root), "--supervisor", str(sup),
          "--steps", "3", "--val-every", "3", "--clips-per-step", "2", "--window", "4", "--val-clips", "1",
          "--run-dir", str(tmp_path / "run"), "--out", str(out)])
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r for r in rows if "val" not in r]
    assert all(np.isfinite(r[k]) for r in losses for k in ("l1", "lip", "contrastive", "perceptual"))
    assert "lip_l1_shuffled" in [r for r in rows if "val" in r][-1]["val"]

    state, config, meta = load_checkpoint(out)
    assert meta["synctalklip"]["variant"] == variant and meta["command"].startswith("synctalklip train generator")
    enc = {k[len("encoder.w2v_model."):]: v for k, v in net.seq2seq.state_dict().items()
           if k.startswith("encoder.w2v_model.")}
    # (stored in float16: compare with the supervisor's weights rounded the same way)
    saved = {k: state[f"audio_encoder.w2v_model.{k}"] for k in enc}
    frozen_same = all(torch.equal(saved[k], v.to(saved[k].dtype)) for k, v in enc.items())
    assert frozen_same == (variant == "freeze")       # freeze keeps AV-SyncNet's encoder; conv tunes its top layer

    plugin = (SyncTalklipFreeze if variant == "freeze" else SyncTalklipConv)(checkpoint=str(out))
    frames = plugin.generate(sample)
    assert frames.shape == sample.frames.shape and frames.dtype == np.uint8
    x1, y1, x2, y2 = sample.boxes[0]
    outside = np.ones(sample.frames.shape[1:3], bool)
    outside[max(y1, 0):y2, max(x1, 0):x2] = False
    assert np.array_equal(frames[0][outside], sample.frames[0][outside])
    assert not np.array_equal(frames[0], sample.frames[0])
    assert plugin.info.training_data.startswith("lrs2 train split")


def test_expert_sync_pair_is_the_supervisors_theta_and_trains_only_the_video_side():
    """The contrastive pair from the frozen AV-SyncNet head: the L1 distance of the pair is stage 1's
    theta (eq. 5/11), gradients reach the generated video features but not the supervisor."""
    from synctalklip.avsyncnet import AVSyncNet, word_codec
    from synctalklip.config import AVSyncNetConfig
    from synctalklip.losses import novel_contrastive_loss
    from synctalklip.train_generator import expert_sync_pair

    torch.manual_seed(0)
    net = AVSyncNet(AVSyncNetConfig.tiny("base", encoder=dict(SMALL)), word_codec(["a", "b"]))
    with torch.no_grad():
        net.avsync.F.weight.add_(0.1 * torch.randn_like(net.avsync.F.weight))   # F no longer the identity
    audio, video = torch.randn(6, 32), torch.randn(6, 32, requires_grad=True)
    a, v = expert_sync_pair(net, "novel")(audio, video)
    assert torch.allclose((a - v).abs().sum(-1), net.theta(audio, video), atol=1e-6)
    novel_contrastive_loss(a, v).backward()
    assert video.grad is not None and video.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())
    a, v = expert_sync_pair(net, "supcon")(audio, video)
    assert torch.allclose(a.norm(dim=1), torch.ones(6)) and torch.allclose(v.norm(dim=1), torch.ones(6))
