"""TalkLip networks, checkpoints and losses: official key layout, official-container loading with
named key errors, SupCon and label smoothing against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from baselines.talklip.checkpoint import load_talklip, read_official_state
from baselines.talklip.losses import label_smoothed_nll, sample_negatives, supcon_av_sync, supcon_loss
from baselines.talklip.model import TalkLip, TalkLipConfig, TalkLipDiscQual, build_talklip
from tfgbench.errors import TfgbenchError


class NoEncoder(nn.Module):
    """Stands in for AV-HuBERT: the face networks' keys and shapes do not depend on it."""


def test_official_layout_has_wav2lips_face_keys_plus_audio_map_and_sync_head():
    from baselines.wav2lip.model import Wav2Lip

    state = TalkLip(NoEncoder(), audio_dim=768, width=1.0).state_dict()
    assert len(state) == 265
    wav2lip = {k: v.shape for k, v in Wav2Lip(1.0).state_dict().items() if not k.startswith("audio_encoder.")}
    assert {k: v.shape for k, v in state.items() if k not in wav2lip} == {
        "audio_map.weight": (512, 768), "audio_map.bias": (512,),
        "sync_net.Linearaudio.weight": (768, 768), "sync_net.Linearaudio.bias": (768,)}
    assert all(state[k].shape == s for k, s in wav2lip.items())
    assert state["face_decoder_blocks.1.0.conv_block.0.weight"].shape == (1024, 512, 3, 3)   # ConvT: in-channels first
    assert state["output_block.0.conv_block.0.weight"].shape == (32, 80, 3, 3)
    assert len(TalkLipDiscQual(1.0).state_dict()) == 28


def test_audio_encoder_keys_are_the_hubert_encoder_wrappers():
    g = build_talklip(TalkLipConfig.for_size("tiny"))
    keys = [k for k in g.state_dict() if k.startswith("audio_encoder.")]
    assert keys and all(k.startswith("audio_encoder.w2v_model.") for k in keys)
    assert "audio_encoder.w2v_model.encoder.layers.2.self_attn.k_proj.weight" in keys
    assert "audio_encoder.w2v_model.feature_extractor_audio.proj.weight" in keys
    assert g.audio_map.weight.shape == (128, 128)          # tiny: 128-d encoder -> 512 * 1/4 bottleneck


def _tiny_generator(seed: int = 0) -> TalkLip:
    torch.manual_seed(seed)
    g = build_talklip(TalkLipConfig.for_size("tiny"))
    with torch.no_grad():        # non-default BatchNorm statistics so that loading them is tested too
        for m in g.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return g.eval()


def _official_file(path, state, prefix=""):
    torch.save({"state_dict": {prefix + k: v for k, v in state.items()}, "optimizer": None,
                "global_step": 123, "global_epoch": 4}, path)
    return path


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_container_loads_with_sizes_from_shapes(tmp_path, prefix):
    g = _tiny_generator()
    state = dict(g.state_dict())
    state["audio_encoder.w2v_model.label_embs_concat"] = torch.randn(2004, 256)   # pre-training leftover
    path = _official_file(tmp_path / "talklip.pth", state, prefix)
    loaded, config, _ = load_talklip(path)
    assert config.width == 0.25 and config.audio_dim == 128 and config.channel_order == "bgr"
    assert config.audio["encoder_layers"] == 3 and config.audio["encoder_attention_heads"] == 4
    for k, v in g.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    faces, fbank = torch.rand(3, 6, 96, 96), torch.randn(1, 104, 5)
    index = torch.tensor([0, 2, 4])
    with torch.no_grad():
        assert torch.allclose(loaded(faces, fbank, None, index)[0], g(faces, fbank, None, index)[0], atol=1e-6)


def test_missing_extra_and_misshapen_keys_are_named(tmp_path):
    state = dict(_tiny_generator().state_dict())
    del state["audio_map.bias"]
    state["face_encoder_blocks.9.0.conv_block.0.weight"] = torch.zeros(1)
    state["sync_net.Linearaudio.bias"] = torch.zeros(7)
    path = _official_file(tmp_path / "broken.pth", state)
    with pytest.raises(TfgbenchError) as e:
        load_talklip(path)
    msg = str(e.value)
    assert str(path) in msg and "audio_map.bias" in msg and "face_encoder_blocks.9.0" in msg
    assert "sync_net.Linearaudio.bias" in msg


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": TalkLipConfig()}, path)   # an arbitrary class in the pickle
    with pytest.raises(TfgbenchError, match="weights_only"):
        read_official_state(path)


def test_sample_negatives_excludes_the_anchor_and_repeats():
    idx = sample_negatives(9, 4, torch.Generator().manual_seed(0))
    assert idx.shape == (9, 4)
    for i, row in enumerate(idx.tolist()):
        assert i not in row and len(set(row)) == 4 and all(0 <= j < 9 for j in row)


def test_supcon_matches_a_hand_computed_case():
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    v = torch.tensor([[0.8, 0.6], [0.28, 0.96]])
    # N = 2 -> one negative per anchor, necessarily the other frame's audio (a0 . a1 = 0.6):
    # loss_i = -log(exp(a_i.v_i / T) / (exp(a_i.v_i / T) + exp(a_i.a_j / T))) = log(1 + exp((a_i.a_j - a_i.v_i) / T))
    for t in (1.0, 0.07):
        expected = (math.log(1 + math.exp((0.6 - 0.8) / t)) + math.log(1 + math.exp((0.6 - 0.936) / t))) / 2
        assert supcon_av_sync(a, v, temperature=t, base_temperature=t).item() == pytest.approx(expected, rel=1e-5)
    # base temperature scales the loss by T / T_base; two explicit negatives
    neg = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]])               # (K=2, N=1, D)
    loss = supcon_loss(a[:1], v[:1], neg, temperature=0.5, base_temperature=0.25).item()
    logits = [0.8 / 0.5, 0.0, 1.0 / 0.5]
    assert loss == pytest.approx(-2 * (logits[0] - math.log(sum(math.exp(x) for x in logits))), rel=1e-6)


def test_label_smoothing_is_fairseqs_formula():
    logits = torch.tensor([[[2.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0]]])
    target = torch.tensor([[0, 1]])                      # the second target is padding (pad = 1)
    loss, nll = label_smoothed_nll(logits, target, epsilon=0.1, pad=1)
    lp = torch.log_softmax(logits[0, 0], -1)
    eps_i = 0.1 / 3
    assert nll.item() == pytest.approx(-lp[0].item(), rel=1e-6)
    assert loss.item() == pytest.approx((1 - 0.1 - eps_i) * -lp[0].item() + eps_i * -lp.sum().item(), rel=1e-6)


def test_audio_encoder_starts_from_a_fairseq_pretraining_checkpoint(tmp_path):
    """The official start, ``base_vox_iter5.pt``: bare AVHubertModel keys plus pre-training heads."""
    from baselines.talklip.train import build_generator
    from tfgbench.readers.avhubert import AVHubertConfig, AVHubertModel

    torch.manual_seed(3)
    w2v = AVHubertModel(AVHubertConfig.tiny())
    state = {**w2v.state_dict(), "label_embs_concat": torch.randn(2004, 256),
             "final_proj.weight": torch.randn(256, 128)}
    path = tmp_path / "base_vox_iter5.pt"
    torch.save({"model": state, "cfg": {"model": {"_name": "av_hubert", "encoder_attention_heads": 4}}}, path)
    generator, config = build_generator("tiny", path)
    assert config.audio["encoder_attention_heads"] == 4 and config.audio_dim == 128
    for k, v in w2v.state_dict().items():
        assert torch.equal(generator.audio_encoder.w2v_model.state_dict()[k], v), k
