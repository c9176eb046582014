"""SyncTalklip's generator variants: names, supervisors, and the freeze variant's gradients."""

from __future__ import annotations

import pytest
import torch

from synctalklip.generator import ABLATIONS, FreezeTalkLip, SyncTalklipVariant, build_generator
from tfgbench.readers.avhubert import AVHubertConfig


def test_variant_names_and_supervision():
    assert SyncTalklipVariant().name == "synctalklip"
    assert SyncTalklipVariant("conv").supervisor == "conv"
    assert SyncTalklipVariant(ablation="avhubert").supervisor == "plain"
    assert SyncTalklipVariant(ablation="supcon").contrastive == "supcon"
    assert SyncTalklipVariant(ablation="no-contrastive").contrastive is None
    assert not SyncTalklipVariant(ablation="no-lip").lip_loss
    assert {SyncTalklipVariant(ablation=a).name for a in ABLATIONS} == {
        "synctalklip-supcon", "synctalklip-avhubert", "synctalklip-no-contrastive", "synctalklip-no-lip"}
    with pytest.raises(ValueError, match="ablations of the base model"):
        SyncTalklipVariant("freeze", "no-lip")


def _inputs(n_frames: int = 6):
    torch.manual_seed(0)
    faces = torch.rand(n_frames, 6, 96, 96)
    fbank = torch.randn(1, 104, n_frames)
    return faces, fbank, torch.zeros(1, n_frames, dtype=torch.bool), torch.arange(n_frames)


def test_freeze_variant_frozen_encoder_gets_no_gradient():
    torch.manual_seed(0)
    gen, cfg = build_generator(SyncTalklipVariant("freeze"), AVHubertConfig.tiny())
    assert isinstance(gen, FreezeTalkLip) and cfg.width == 0.25
    faces, fbank, pad, index = _inputs()
    with torch.no_grad():                                     # give the extra path a non-zero map first
        gen.extra_audio_map.weight.normal_(0, 0.1)
    fake, enc = gen(faces, fbank, pad, index)
    assert enc.shape == (1, 6, 2 * 128)                        # frozen and extra encodings side by side
    fake.mean().backward()
    frozen = [p for p in gen.audio_encoder.parameters()]
    assert all(p.grad is None for p in frozen) and not any(p.requires_grad for p in frozen)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.extra_audio_encoder.parameters())
    assert gen.audio_map.weight.grad.abs().sum() > 0          # the frozen path still feeds generation


def test_freeze_starts_as_the_frozen_generator():
    """extra_audio_map starts at zero: the output is the frozen path's alone."""
    torch.manual_seed(0)
    gen, _ = build_generator(SyncTalklipVariant("freeze"), AVHubertConfig.tiny())
    faces, fbank, pad, index = _inputs()
    with torch.no_grad():
        enc = gen.audio_encoder(None, pad, audio=fbank)[0]
        assert torch.equal(gen.bottleneck(torch.cat([enc, torch.randn_like(enc)], -1)), gen.audio_map(enc))


def test_generator_audio_encoder_starts_from_the_supervisor():
    torch.manual_seed(1)
    from tfgbench.readers.avhubert import EncoderWrapper

    source = EncoderWrapper(AVHubertConfig.tiny())
    gen, _ = build_generator(SyncTalklipVariant(), AVHubertConfig.tiny(), source.state_dict())
    for (k, a), b in zip(source.state_dict().items(), gen.audio_encoder.state_dict().values()):
        assert torch.equal(a, b), k
