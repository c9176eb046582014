"""AV-SyncNet (synctalklip): eq. 5 and the lip loss against hand-computed cases, the conv variant's
receptive field, and the one-file format (tfgbench reader and AVSyncNet read the same seq2seq)."""

from __future__ import annotations

import pytest
import torch

SMALL = {"encoder_layers": 1, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 2,
         "conv_pos": 4, "conv_pos_groups": 2, "resnet_widths": (4, 8, 8, 16), "decoder_layers": 1,
         "decoder_embed_dim": 32, "decoder_ffn_embed_dim": 64, "decoder_attention_heads": 2}


def small_net(variant: str = "base", seed: int = 0, **kw):
    from synctalklip.avsyncnet import AVSyncNet, word_codec
    from synctalklip.config import AVSyncNetConfig

    torch.manual_seed(seed)
    cfg = AVSyncNetConfig.tiny(variant, encoder=dict(SMALL), **kw)
    return AVSyncNet(cfg, word_codec(["bin", "blue", "at", "f", "two", "now"]))


def test_theta_eq5_hand_computed_and_broadcasting():
    from synctalklip.avsyncnet import AlignHead

    head = AlignHead(2, tau=0.5, conv_kernel=None)
    with torch.no_grad():
        head.F.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        head.F.bias.copy_(torch.tensor([0.0, 1.0]))
    # F([1, 2]) = [2, 3]; |[2, 3] - [0, -1]|_1 = 2 + 4 = 6; * tau 0.5 = 3
    assert head.theta(torch.tensor([1.0, 2.0]), torch.tensor([0.0, -1.0])).item() == pytest.approx(3.0)
    fa, fv = torch.randn(3, 1, 2), torch.randn(1, 4, 2)
    d = head.theta(fa, fv)
    assert d.shape == (3, 4)
    assert d[2, 1].item() == pytest.approx(head.theta(fa[2, 0], fv[0, 1]).item())


def test_av_loss_averages_valid_frames_only():
    net = small_net("base", tau=1.0)
    dim = 32
    fa = torch.zeros(1, 3, dim)
    fv = torch.zeros(1, 3, dim)
    fv[0, 0] = 1.0          # theta 32 (F is the identity at init)
    fv[0, 1] = -0.5         # theta 16
    fv[0, 2] = 100.0        # padding: must not count
    pad = torch.tensor([[False, False, True]])
    assert net.av_loss(fa, fv, pad).item() == pytest.approx((32 + 16) / 2)
    assert net.cfg.resolved_tau(dim) == 1.0 and small_net().avsync.tau == pytest.approx(1 / dim)
    assert small_net("plain").cfg.lambda_av == 0.0


def test_lip_loss_is_mean_over_target_tokens():
    net = small_net().eval()
    video = torch.randn(2, 1, 6, 44, 44)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[1, 4:] = True
    targets = [net.codec.encode("bin blue at"), net.codec.encode("now")]
    fv = net.encode_video(video, pad)
    loss, ntok = net.lip_loss(fv, pad, targets)
    assert ntok == 4 + 2                              # words + </s>
    one, n1 = net.lip_loss(fv[:1], pad[:1], targets[:1])
    two, n2 = net.lip_loss(fv[1:], pad[1:, :], targets[1:])
    assert loss.item() == pytest.approx((one.item() * n1 + two.item() * n2) / ntok, rel=1e-5)


def test_conv_variant_widens_theta_receptive_field():
    base, conv = small_net("base"), small_net("conv")
    fa, fv = torch.randn(1, 11, 32), torch.randn(1, 11, 32)
    fa2 = fa.clone()
    fa2[0, 7] += 3.0                                  # two frames after frame 5
    for net, changes in ((base, False), (conv, True)):
        d1 = net.theta(net.align(fa), net.align(fv))[0]
        d2 = net.theta(net.align(fa2), net.align(fv))[0]
        assert (abs(d1[5] - d2[5]).item() > 1e-4) == changes
        assert d1[2].item() == pytest.approx(d2[2].item())   # outside the 5-frame window either way
    const = torch.ones(1, 9, 32) * torch.randn(32)
    assert torch.allclose(conv.align(const)[0, 2:-2], const[0, 2:-2], atol=1e-6)   # convex taps


def test_saved_file_is_a_tfgbench_reader_and_an_avsyncnet(tmp_path):
    from synctalklip.avsyncnet import load_avsyncnet, save_avsyncnet
    from tfgbench.checkpoints import load_checkpoint, save_checkpoint
    from tfgbench.errors import TfgbenchError
    from tfgbench.readers.avhubert_reader import load_avhubert_reader

    net = small_net("conv").eval()
    with torch.no_grad():
        net.avsync.F.weight.mul_(0.5)
        net.avsync.conv_logits.normal_()
    path = save_avsyncnet(tmp_path / "avs.safetensors", net, command="test", minutes=0.0)
    reader = load_avhubert_reader(path)
    again = load_avsyncnet(path)
    assert again.variant == "conv" and again.codec.dictionary == net.codec.dictionary
    video = torch.randn(1, 1, 7, 44, 44)
    prev = torch.tensor([[2, 4, 5]])
    with torch.no_grad():
        ref = net.seq2seq(video, None, prev)
        assert torch.equal(reader.model(video, None, prev), ref)
        assert torch.equal(again.seq2seq(video, None, prev), ref)
        fa = torch.randn(1, 7, 32)
        same = again.theta(again.align(fa), again.align(fa * 2))
        assert torch.equal(same, net.theta(net.align(fa), net.align(fa * 2)))
    assert isinstance(reader.transcribe([torch.randn(5, 44, 44)])[0], str)
    # the reader ignores avsync.* only: any other stray key is still an error naming it
    state, cfg, meta = load_checkpoint(path)
    state["decoder.stray"] = torch.zeros(1)
    save_checkpoint(tmp_path / "bad.safetensors", state, cfg, **meta)
    with pytest.raises(TfgbenchError, match="decoder.stray"):
        load_avhubert_reader(tmp_path / "bad.safetensors")
