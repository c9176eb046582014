"""SyncTalklip's generator losses (paper section 3.3, eq. 7-13).

Shapes: generated and real face crops ``(N, 3, S, S)`` in [0, 1]; discriminator outputs ``(N, 1)``
probabilities; audio / video embeddings ``(N, D)`` of the generated frames ``Upsilon``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """eq. 7, ``L_rec = 1/T sum_i ||v_i - v^_i||_1``, with the L1 norm taken as the mean absolute
    difference over a frame's pixels (so the value does not depend on the crop size), i.e. the
    mean absolute error over every pixel of every generated frame (TalkLip's ``nn.L1Loss``)."""
    return (generated - real).abs().mean()


def generator_adversarial_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """eq. 8 in its non-saturating form, as the official code trains it (TalkLip/Wav2Lip
    ``BCE(D(v^), 1) = -E[log D(v^)]``): minimised when the discriminator calls the generated frames
    real. eq. 8 as printed, ``E[log(1 - D(v^))]``, has the same fixed point and vanishing gradients
    early on."""
    return F.binary_cross_entropy(d_fake, torch.ones_like(d_fake))


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """eq. 9, with the discriminator trained to call real frames real and generated ones fake:
    ``BCE(D(v), 1) + BCE(D(v^), 0) = -E[log D(v)] - E[log(1 - D(v^))]`` (official code; ``d_fake``
    computed on detached frames)."""
    return (F.binary_cross_entropy(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake)))


def novel_contrastive_loss(audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """eq. 11-12 over the generated frames ``Upsilon`` of a batch.

    ``L_cav = 1/|U| sum_{i in U} [ theta(a_i, v_i) - 1/(|U|-1) sum_{j in U, j != i} theta(a_i, v_j) ]``

    with ``theta(a, v) = ||F(a) - v||_1``: the paired distance minus the mean distance of the same
    audio frame to the other generated frames. ``F`` (the learned linear layer of eq. 11) is applied
    by the caller: SyncTalklip's official code uses the generator's ``sync_net``
    (``normalize(Linearaudio(normalize(a)))``) against ``normalize(v)``, so ``theta`` is bounded.
    eq. 12 sums over ``i``; we average (the sum differs by the constant ``|U|``, which would tie the
    loss weight to the batch). The official code estimates the negative term from
    ``min(100, |U|/2)`` sampled negatives; this computes the exact mean of eq. 12.

    Args:
        audio: ``(N, D)`` ``F(f^a_i)`` of the N generated frames (N >= 2).
        video: ``(N, D)`` ``f^v_i`` of the same frames, in the same order.
    """
    n = audio.shape[0]
    if n < 2:
        raise ValueError("the novel contrastive loss needs at least two generated frames (one negative)")
    dist = (audio[:, None, :] - video[None, :, :]).abs().sum(-1)     # (N, N): audio i against video j
    positive = dist.diagonal()
    negative = (dist.sum(1) - positive) / (n - 1)
    return (positive - negative).mean()
