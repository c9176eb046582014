"""SyncTalklip's generator losses against hand-computed cases (paper eq. 7, 9-12)."""

from __future__ import annotations

import math

import pytest
import torch

from synctalklip.losses import (
    discriminator_loss,
    generator_adversarial_loss,
    novel_contrastive_loss,
    reconstruction_loss,
)


def test_reconstruction_is_the_mean_absolute_error():
    real = torch.zeros(2, 3, 2, 2)
    gen = torch.zeros(2, 3, 2, 2)
    gen[0, 0, 0, 0] = 0.6      # one pixel of 24 off by 0.6, one by 0.3
    gen[1, 2, 1, 1] = -0.3
    assert reconstruction_loss(gen, real).item() == pytest.approx(0.9 / 24)


def test_adversarial_losses_by_hand():
    d_fake = torch.tensor([[0.25], [0.5]])
    d_real = torch.tensor([[0.8], [0.9]])
    assert generator_adversarial_loss(d_fake).item() == pytest.approx(-(math.log(0.25) + math.log(0.5)) / 2)
    expected = -(math.log(0.8) + math.log(0.9)) / 2 - (math.log(0.75) + math.log(0.5)) / 2
    assert discriminator_loss(d_real, d_fake).item() == pytest.approx(expected)


def test_novel_contrastive_by_hand():
    fa = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    fv = torch.tensor([[0.0, 1.0], [1.0, 0.0], [3.0, 2.0]])
    # theta(a_i, v_j) = |a_i - v_j|_1:
    #   a0: v0 1, v1 1, v2 5   -> 1 - (1 + 5)/2 = -2
    #   a1: v0 2, v1 0, v2 4   -> 0 - (2 + 4)/2 = -3
    #   a2: v0 1, v1 3, v2 3   -> 3 - (1 + 3)/2 =  1
    assert novel_contrastive_loss(fa, fv).item() == pytest.approx((-2 - 3 + 1) / 3)


def test_novel_contrastive_is_negative_for_aligned_pairs_and_positive_for_shuffled():
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 4)

    fa = torch.randn(6, 4)
    aligned = lin(fa).detach()                         # video embeddings equal to F(audio)
    shuffled = aligned[torch.tensor([1, 2, 3, 4, 5, 0])]
    assert novel_contrastive_loss(lin(fa), aligned) < 0 < novel_contrastive_loss(lin(fa), shuffled)
    with pytest.raises(ValueError, match="two generated frames"):
        novel_contrastive_loss(fa[:1], aligned[:1])
