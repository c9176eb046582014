"""AV-sync pre-training learns from a signal shared by mouth and sound (a few steps, tiny clips),
and the seq2seq training step on pre-computed features lowers its loss."""

from __future__ import annotations

import numpy as np
import torch

from tfgbench.readers.avhubert import AVHubertConfig, AVHubertSeq2Seq, ResEncoder
from tfgbench.readers.pretrain import ClipSet, crop_batch, info_nce, pretrain_frontend
from tfgbench.readers.tokenizer import Dictionary


def toy_clips(n: int = 12, t: int = 16, seed: int = 0) -> ClipSet:
    """A bright bar whose height follows a random per-frame 'phone'; the audio features encode
    the same phone: only frame-level synchrony links them."""
    rng = np.random.default_rng(seed)
    rois, fbank, voiced, texts = [], [], [], []
    for _ in range(n):
        phones = rng.integers(0, 6, t)
        r = np.full((t, 48, 48), 60, np.uint8)
        for k, ph in enumerate(phones):
            r[k, 20 - 2 * ph: 28 + 2 * ph, 10:38] = 220
        f = rng.normal(0, 0.3, (t, 104)).astype(np.float32)
        f[np.arange(t), phones * 10] += 3.0
        rois.append(r)
        fbank.append(f)
        voiced.append(np.ones(t, bool))
        texts.append("bin blue")
    return ClipSet([f"c{i}" for i in range(n)], rois, fbank, voiced, texts)


def test_crop_batch_centre_and_padding():
    rois = [np.arange(48 * 48, dtype=np.uint8).reshape(1, 48, 48).repeat(3, 0), np.zeros((2, 48, 48), np.uint8)]
    x = crop_batch(rois, np.random.default_rng(0), random_crop=False)
    assert x.shape == (2, 1, 3, 44, 44)
    assert torch.allclose(x[0, 0, 0], (torch.from_numpy(rois[0][0, 2:46, 2:46]).float() / 255 - 0.421) / 0.165)
    assert (x[1, 0, 2] == 0).all()                                  # time padding is zeros


def test_info_nce_prefers_matching_frames():
    v = torch.randn(2, 5, 8)
    valid = torch.ones(2, 5, dtype=torch.bool)
    scale = torch.tensor(np.log(10.0))
    good, acc_good = info_nce(v, v.clone(), valid, valid, scale)
    bad, acc_bad = info_nce(v, torch.randn(2, 5, 8), valid, valid, scale)
    assert good < bad and acc_good == 1.0


def test_pretraining_loss_falls():
    torch.manual_seed(0)
    fe = ResEncoder((8, 8, 16, 16))
    logs = []
    stats = pretrain_frontend(fe, toy_clips(), feature_dim=16, steps=25, batch_size=6, length=16, lr=3e-3,
                              log=logs.append)
    assert stats["final_loss"] < stats["first_loss"] - 0.3
    assert not fe.training and len(logs) >= 3


def test_seq2seq_step_on_precomputed_features_learns():
    from tfgbench.readers.train_synthetic_avhubert import train_seq2seq

    torch.manual_seed(0)
    words = ["bin", "blue", "red", "now"]
    d = Dictionary.from_pieces(words)
    cfg = AVHubertConfig.tiny(encoder_layers=1, decoder_layers=1, vocab_size=len(d), resnet_widths=(8, 8, 8, 16))
    model = AVHubertSeq2Seq(cfg)
    rng = np.random.default_rng(0)
    # the feature of each frame says which word is spoken: a learnable mapping
    feats, targets = [], []
    for _ in range(24):
        seq = list(rng.integers(0, 4, 3))
        f = torch.zeros(9, 16)
        for k, w in enumerate(seq):
            f[3 * k: 3 * k + 3, w] = 3.0
        feats.append([f])
        targets.append([4 + int(w) for w in seq] + [d.eos])
    before = model.state_dict()["decoder.layers.0.fc1.weight"].clone()
    frozen = model.state_dict()["encoder.w2v_model.feature_extractor_video.resnet.trunk.layer1.0.conv1.weight"].clone()
    stats = train_seq2seq(model, feats, targets, d, steps=60, batch_size=8, lr=3e-3)
    assert stats["final_token_acc_teacher_forced"] > 0.6
    assert not torch.equal(before, model.state_dict()["decoder.layers.0.fc1.weight"])
    assert torch.equal(frozen, model.state_dict()[
        "encoder.w2v_model.feature_extractor_video.resnet.trunk.layer1.0.conv1.weight"])
