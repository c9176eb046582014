"""AV-SyncNet training (synctalklip): eq. 3 by hand, k-means targets, span masking, a short
pre-training and fine-tuning that move their losses, ``--init`` from a fairseq file, and the LRS2
path (mouth box from the face box) on a fake LRS2 folder made of synthetic clips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_avsyncnet import small_net


def test_masked_prediction_loss_eq3_by_hand():
    from synctalklip.pretrain import masked_prediction_loss

    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0], [5.0, 0.0]]])
    targets = torch.tensor([[1, 0, 1]])
    valid = torch.tensor([[True, True, False]])
    ce0, ce1 = -math.log(0.75), math.log(2.0)
    loss, acc = masked_prediction_loss(logits, targets, torch.tensor([[True, False, False]]), valid, alpha=0.5)
    assert loss.item() == pytest.approx(ce0 + 0.5 * ce1) and acc == 1.0
    loss, _ = masked_prediction_loss(logits, targets, torch.tensor([[True, True, True]]), valid, alpha=0.5)
    assert loss.item() == pytest.approx((ce0 + ce1) / 2)       # the padded frame never counts


def test_mfcc_is_the_dct_of_each_stacked_filterbank():
    from synctalklip.pretrain import mfcc_from_fbank

    fbank = np.random.default_rng(0).normal(size=(3, 104)).astype(np.float32)
    mfcc = mfcc_from_fbank(fbank)
    assert mfcc.shape == (3, 52)
    x = fbank[1, 26:52].astype(np.float64)                      # second stacked 10 ms frame
    n = np.arange(26)
    ref = [np.sqrt((1 if k == 0 else 2) / 26) * np.sum(x * np.cos(np.pi * k * (2 * n + 1) / 52)) for k in range(13)]
    np.testing.assert_allclose(mfcc[1, 13:26], ref, rtol=1e-4, atol=1e-5)


def test_kmeans_targets_separate_blobs_clip_by_clip():
    from synctalklip.pretrain import kmeans_targets

    rng = np.random.default_rng(0)
    blob_a = rng.normal(0, 0.1, size=(30, 5)) + 5
    blob_b = rng.normal(0, 0.1, size=(20, 5)) - 5
    clip1 = np.concatenate([blob_a[:15], blob_b[:10]])
    clip2 = np.concatenate([blob_a[15:], blob_b[10:]])[::-1]
    labels, centroids = kmeans_targets([clip1, clip2], k=2, sample=1000, seed=0)
    assert [len(x) for x in labels] == [25, 25] and centroids.shape == (2, 5)
    assert all(x.dtype == np.int64 and set(x) <= {0, 1} for x in labels)
    a, b = labels[0][0], labels[0][-1]
    assert a != b and set(labels[0][:15]) == {a} and set(labels[0][15:]) == {b}
    assert set(labels[1][:10]) == {b} and set(labels[1][10:]) == {a}


def test_mask_inputs_masks_spans_inside_each_clip():
    from synctalklip.config import AVSyncNetConfig
    from synctalklip.pretrain import mask_inputs

    cfg = AVSyncNetConfig.tiny(mask_prob_audio=0.5, mask_length_audio=3, mask_prob_video=0.5, mask_length_video=2)
    video = torch.arange(2 * 12, dtype=torch.float32).view(2, 12, 1).repeat(1, 1, 4)
    audio = torch.randn(2, 12, 104)
    emb = torch.full((104,), 7.0)
    v, a, masked = mask_inputs(video, audio, [12, 8], emb, cfg, np.random.default_rng(0))
    audio_masked = (a == 7.0).all(-1)
    video_moved = (v != video).any(-1)
    assert audio_masked.any() and video_moved.any()
    assert torch.equal(masked, audio_masked | masked) and not masked[1, 8:].any()
    assert torch.equal(a[~audio_masked], audio[~audio_masked])
    assert set(v[1, :8, 0].tolist()) <= set(video[1, :8, 0].tolist())   # copies of the clip's own frames


def fake_clips(n: int = 8, t: int = 14, seed: int = 0):
    from tfgbench.readers.pretrain import ClipSet

    rng = np.random.default_rng(seed)
    words = ["bin", "blue", "at", "f", "two", "now"]
    protos = rng.normal(size=(4, 104)).astype(np.float32)
    fbank = [np.repeat(protos[rng.integers(0, 4, t // 2)], 2, 0) + 0.1 * rng.normal(size=(t, 104)).astype(np.float32)
             for _ in range(n)]
    return ClipSet([f"c{i}" for i in range(n)], [rng.integers(0, 255, (t, 48, 48), dtype=np.uint8) for _ in range(n)],
                   fbank, [np.ones(t, bool) for _ in range(n)],
                   [" ".join(rng.choice(words, 3)) for _ in range(n)])


def test_short_pretraining_and_finetuning_move_their_losses(tmp_path):
    from synctalklip.finetune import ClipBatches, finetune, sync_and_accuracy
    from synctalklip.pretrain import pretrain_encoder
    from tfgbench.readers.train_synthetic_avhubert import extract_features

    clips = fake_clips()
    net = small_net("base", clusters=(4, 6), pretrain_steps=30, pretrain_batch=4, cluster_layer=1, final_dim=8,
                    finetune_steps=30, finetune_batch=4, finetune_lr=3e-3)
    resnet = net.w2v.feature_extractor_video.resnet.eval()
    for p in resnet.parameters():
        p.requires_grad_(False)
    batches = ClipBatches(clips, extract_features(resnet, clips, 1, 0, cache=False))
    stats = pretrain_encoder(net.w2v, batches, clips.fbank, net.cfg, seed=0, log=lambda s: None)
    assert [it["k"] for it in stats["iterations"]] == [4, 6]
    assert stats["iterations"][0]["final_loss"] < stats["iterations"][0]["first_loss"]
    result = finetune(net, net.cfg, clips, clips, batches, batches, run_dir=tmp_path / "run", seed=0, val_every=0,
                      run_config={"test": 1}, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    train = [r for r in rows if "val" not in r]
    assert train[-1]["lip"] < train[0]["lip"] and train[-1]["av"] < train[0]["av"]
    assert result.last_val["token_acc"] > 0 and set(result.last_val) >= {"theta_aligned", "theta_shift5"}
    targets = [net.codec.encode(t) for t in clips.texts]
    assert sync_and_accuracy(net, batches, targets, len(clips)) == pytest.approx(result.last_val)


def test_init_from_a_fairseq_checkpoint_takes_its_encoder(tmp_path):
    from test_avhubert_checkpoint import (
        BASE_MODEL_CFG,
        BASE_W2V,
        official_shapes,
        random_state,
        write_fairseq_checkpoint,
    )

    from synctalklip.avsyncnet import AVSyncNet
    from synctalklip.finetune import init_from_fairseq

    shapes = official_shapes(d=32, ffn=64, layers=2, dd=32, dffn=48, dlayers=2, vocab=14, widths=(8, 16, 16, 32),
                             clusters=10, final_dim=16, conv_pos=8, groups=4)
    state = random_state(shapes, seed=3)
    path = tmp_path / "large_stand_in.pt"
    write_fairseq_checkpoint(path, state, dict(BASE_MODEL_CFG, decoder_layers=2, decoder_embed_dim=32,
                                               decoder_ffn_embed_dim=48, decoder_attention_heads=2),
                             dict(BASE_W2V, encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                                  encoder_attention_heads=4), [f"\u2581{c}" for c in "abcdefghij"], None)
    net0 = small_net("conv")
    seq2seq, info = init_from_fairseq(str(path), None, net0.codec, net0.cfg)
    net = AVSyncNet(net0.cfg, net0.codec, seq2seq)
    own = net.seq2seq.state_dict()
    enc = [k for k in own if k.startswith("encoder.")]
    assert enc and all(torch.equal(own[k], state[k]) for k in enc)
    assert own["decoder.embed_tokens.weight"].shape == (len(net.codec.dictionary), 32)
    assert info["encoder_layers"] == 2 and net.avsync.conv_logits.shape == (32, 5)


def test_lrs2_layout_mouth_from_face_and_a_tiny_run(tmp_path, monkeypatch):
    from conftest import make_fake_lrs2

    from synctalklip.avsyncnet import load_avsyncnet
    from synctalklip.train_avsyncnet import main
    from tfgbench.face.crops import mouth_from_face

    root = tmp_path / "lrs2"
    samples = make_fake_lrs2(root)
    for s in samples:
        m = mouth_from_face(s.boxes)
        cx, cy = (s.meta["mouth_box"][:, 0] + s.meta["mouth_box"][:, 2]) / 2, \
            (s.meta["mouth_box"][:, 1] + s.meta["mouth_box"][:, 3]) / 2
        assert ((m[:, 0] < cx) & (cx < m[:, 2]) & (m[:, 1] < cy) & (cy < m[:, 3])).all()   # mouth centre inside
    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path / "home"))
    out = tmp_path / "lrs2-avs.safetensors"
    main(["--dataset", "lrs2", "--data-root", str(root), "--steps", "2", "--pretrain-steps", "2",
          "--frontend-pretrain-steps", "1", "--run-dir", str(tmp_path / "run"), "--out", str(out)])
    net = load_avsyncnet(out)
    words = set(" ".join(s.transcript for s in samples[:3]).split())
    assert words <= set(net.codec.dictionary.symbols)
    assert net.meta["corpus"].endswith("mouth-from-face-v1") and net.meta["train_clips"] == 3
    assert net.meta["val"]["token_acc"] >= 0 and "test" not in net.meta
