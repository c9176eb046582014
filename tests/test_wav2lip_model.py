"""Wav2Lip networks: the official state-dict layouts at official size, the tiny width, forward layouts."""

from __future__ import annotations

import hashlib

import pytest
import torch

from baselines.wav2lip.model import (
    SyncNetColor,
    Wav2Lip,
    Wav2LipDiscQual,
    face_decoder_blocks,
    face_encoder_blocks,
    output_block,
    scaled,
)

# sha256 of "key:shape\n" over the state dicts of the official classes (Rudrabha/Wav2Lip 5c90fa9,
# models/wav2lip.py and models/syncnet.py instantiated with torch 2.13), in state-dict order
OFFICIAL = {
    Wav2Lip: (352, "b6e4ea90e6c7ff705fcf70a0ca7a7ded2bb23b46ec3c58504c17efb03eee59fd", 36298035),
    Wav2LipDiscQual: (28, "de2d10c5694380ad7fd213b675d6c0f47546d0c77771ab7fd14860f8adb14cde", 14113793),
    SyncNetColor: (217, "b99f6d0a6897fd529793a75c48594210743952e60cef936eb4fe8a7646168e77", 16435072),
}


def fingerprint(model: torch.nn.Module) -> str:
    lines = "".join(f"{k}:{tuple(v.shape)}\n" for k, v in model.state_dict().items())
    return hashlib.sha256(lines.encode()).hexdigest()


@pytest.mark.parametrize("cls", list(OFFICIAL), ids=lambda c: c.__name__)
def test_official_size_matches_official_keys_and_shapes(cls):
    model = cls()
    count, digest, params = OFFICIAL[cls]
    assert len(model.state_dict()) == count
    assert fingerprint(model) == digest
    assert sum(p.numel() for p in model.parameters()) == params


def test_official_key_examples():
    shapes = {k: tuple(v.shape) for k, v in Wav2Lip().state_dict().items()}
    assert shapes["face_encoder_blocks.0.0.conv_block.0.weight"] == (16, 6, 7, 7)
    assert shapes["face_decoder_blocks.1.0.conv_block.0.weight"] == (1024, 512, 3, 3)   # ConvT: in-channels first
    assert shapes["face_decoder_blocks.6.0.conv_block.0.weight"] == (160, 64, 3, 3)
    assert shapes["output_block.0.conv_block.0.weight"] == (32, 80, 3, 3)
    assert shapes["output_block.1.weight"] == (3, 32, 1, 1)
    assert shapes["audio_encoder.12.conv_block.0.weight"] == (512, 512, 1, 1)
    assert "audio_encoder.13.conv_block.0.weight" not in shapes
    sync = {k: tuple(v.shape) for k, v in SyncNetColor().state_dict().items()}
    assert sync["face_encoder.0.conv_block.0.weight"] == (32, 15, 7, 7)
    assert sync["audio_encoder.13.conv_block.0.weight"] == (512, 512, 1, 1)     # one more residual block
    assert not any("conv_block.1" in k for k in Wav2LipDiscQual().state_dict())  # no BatchNorm


def test_tiny_width_rounds_channels_and_keeps_keys():
    assert [scaled(c, 0.25) for c in (16, 32, 64, 80, 384, 512)] == [4, 8, 16, 20, 96, 128]
    tiny, full = Wav2Lip(0.25), Wav2Lip()
    assert list(tiny.state_dict()) == list(full.state_dict())
    assert tiny.state_dict()["face_encoder_blocks.0.0.conv_block.0.weight"].shape == (4, 6, 7, 7)
    # decoder input = previous decoder output ++ encoder skip: 128 + 128 at the bottleneck
    assert tiny.state_dict()["face_decoder_blocks.1.0.conv_block.0.weight"].shape == (256, 128, 3, 3)
    assert tiny.state_dict()["output_block.0.conv_block.0.weight"].shape == (8, 20, 3, 3)
    assert list(SyncNetColor(0.25).state_dict()) == list(SyncNetColor().state_dict())
    assert list(Wav2LipDiscQual(0.25).state_dict()) == list(Wav2LipDiscQual().state_dict())


def test_reusable_blocks_reproduce_the_generator_keys():
    parts = torch.nn.Module()
    parts.face_encoder_blocks = face_encoder_blocks(0.25)
    parts.face_decoder_blocks = face_decoder_blocks(0.25)
    parts.output_block = output_block(0.25)
    expected = {k: v.shape for k, v in Wav2Lip(0.25).state_dict().items() if not k.startswith("audio_encoder")}
    assert {k: v.shape for k, v in parts.state_dict().items()} == expected


def test_forward_layouts_and_time_folding():
    torch.manual_seed(0)
    model = Wav2Lip(0.25).eval()
    audio = torch.randn(2, 3, 1, 80, 16)
    faces = torch.rand(2, 6, 3, 96, 96)
    with torch.no_grad():
        out = model(audio, faces)
        assert out.shape == (2, 3, 3, 96, 96)
        assert 0 <= out.min() and out.max() <= 1
        # the 5-D call equals per-frame 4-D calls (batch b, time t)
        single = model(audio[1, 2][None], faces[1, :, 2][None])
    assert torch.allclose(out[1, :, 2], single[0], atol=1e-5)
    disc = Wav2LipDiscQual(0.25)
    assert disc(torch.rand(2, 3, 5, 96, 96)).shape == (10, 1)
    a, v = SyncNetColor(0.25)(torch.randn(3, 1, 80, 16), torch.rand(3, 15, 48, 96))
    assert a.shape == v.shape == (3, 128)
    assert torch.allclose(a.norm(dim=1), torch.ones(3), atol=1e-5)


def test_disc_reads_only_the_lower_half():
    torch.manual_seed(0)
    disc = Wav2LipDiscQual(0.25)
    for p in disc.parameters():   # default init shrinks activations with depth; larger weights show a change
        torch.nn.init.normal_(p, std=0.1)
    faces = torch.rand(1, 3, 96, 96)
    changed = faces.clone()
    changed[:, :, :48] = torch.rand(1, 3, 48, 96)
    assert torch.equal(disc(faces), disc(changed))
    changed[:, :, 60] = 0
    assert not torch.equal(disc(faces), disc(changed))
