"""TalkLip training: a few steps of the full recipe (L1 + GAN + lip reading + contrastive, random
tiny expert) move the losses; the lip-reading term reaches the generated mouths and nothing else."""

from __future__ import annotations

import json

import numpy as np
import torch

from baselines.talklip.data import TrainingClips, sample_batch
from baselines.talklip.losses import Targets, lip_reading_loss
from baselines.talklip.model import TalkLipConfig, TalkLipDiscQual, build_talklip
from baselines.talklip.recipe import Recipe, train_talking_face
from tfgbench.readers.avhubert import AVHubertConfig, AVHubertSeq2Seq

MOUTH = (0.3, 0.6, 0.7, 0.9)


def toy_clips(n: int, frames: int, seed: int) -> TrainingClips:
    """Faces: a smooth colour gradient with a dark 'mouth' whose height follows the first audio
    feature; audio features random; transcripts of 3 tokens + </s>."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    faces, fbank = [], []
    for _ in range(n):
        f = rng.standard_normal((frames, 104)).astype(np.float32)
        base = np.stack([0.3 + 0.5 * xx, 0.4 + 0.3 * yy, 0.6 - 0.2 * xx], -1)
        clip = np.repeat(base[None], frames, 0)
        for t in range(frames):
            h = int(3 + 4 * (np.tanh(f[t, 0]) + 1))
            clip[t, 72 - h:72 + h, 36:60] = 0.1
        faces.append((clip * 255).astype(np.uint8))
        fbank.append(f)
    mouth = [np.tile(np.array(MOUTH, np.float32), (frames, 1)) for _ in range(n)]
    tokens = [[int(x) for x in rng.integers(4, 20, 3)] + [2] for _ in range(n)]
    return TrainingClips(faces, fbank, mouth, tokens, [f"c{i}" for i in range(n)])


def test_a_few_steps_of_the_full_recipe_move_the_losses(tmp_path):
    torch.manual_seed(0)
    generator = build_talklip(TalkLipConfig.for_size("tiny"))
    expert = AVHubertSeq2Seq(AVHubertConfig.tiny(vocab_size=24))
    recipe = Recipe.tiny(steps=16, clips_per_step=2, window=4, warmup=0, cosine=False, val_every=0,
                         ckpt_every=0, log_every=4)
    result = train_talking_face(recipe, toy_clips(3, 14, 0), toy_clips(2, 12, 1), generator,
                                TalkLipDiscQual(0.25), expert, tmp_path / "run", seed=0, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    train = [r for r in rows if "val" not in r]
    assert {"l1", "perceptual", "lip", "contrastive", "disc", "expert_acc"} <= set(train[0])
    assert train[-1]["l1"] < 0.7 * train[0]["l1"]
    assert train[-1]["contrastive"] < train[0]["contrastive"]
    val = result.last_val
    assert {"lip_l1_true", "lip_l1_shuffled", "lip_l1_copy_ref", "expert_acc_generated"} <= set(val)
    # the expert is frozen: its weights did not move
    assert all(not p.requires_grad for p in expert.parameters())


def test_lip_reading_gradient_reaches_the_mouth_box_only():
    from tfgbench.data.faceclips import mouth_rois_from_faces

    torch.manual_seed(0)
    data = toy_clips(2, 10, 2)
    batch = sample_batch(data, np.random.default_rng(0), clips_per_step=2, window=3)
    fake = batch.real.clone().requires_grad_(True)
    rois = mouth_rois_from_faces(batch.clip_faces, batch.clip_mouth)
    rois = rois.index_put((batch.index,), mouth_rois_from_faces(fake, batch.clip_mouth[batch.index]))
    expert = AVHubertSeq2Seq(AVHubertConfig.tiny(vocab_size=24)).eval()
    targets = Targets.from_tokens([data.tokens[c] for c in batch.clips], pad=1, eos=2)
    read = lip_reading_loss(expert, rois.view(2, -1, 44, 44), batch.padding, targets)
    read.loss.backward()
    grad = fake.grad.abs().sum(dim=(0, 1))                     # (96, 96)
    x1, y1, x2, y2 = (int(round(v * 96)) for v in MOUTH)
    inside = grad[y1 - 1:y2 + 1, x1 - 1:x2 + 1].sum()
    assert inside > 0 and grad.sum() - inside == 0
    # teacher forcing: the targets are the transcript tokens, the decoder input starts with </s>
    assert targets.prev[0, 0] == 2 and torch.equal(targets.target[0], torch.tensor(data.tokens[batch.clips[0]]))
