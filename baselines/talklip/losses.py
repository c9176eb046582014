"""TalkLip's losses (official ``train.py``, ``models/learn_sync.py``, AV-HuBERT's criterion).

* :func:`supcon_av_sync`: the contrastive ``av_sync`` loss. For generated frame ``i`` with audio
  feature ``a_i`` and lip-reader video feature ``v_i`` (both unit vectors, see
  :meth:`baselines.talklip.model.AVSyncHead.project`), ``K = min(100, floor(N / 2))`` negatives
  ``a_j`` (``j != i``, drawn without replacement by ``torch.multinomial``):
  ``loss_i = -(T / T_base) log( exp(a_i.v_i / T) / (exp(a_i.v_i / T) + sum_j exp(a_i.a_j / T)) )``,
  mean over ``i``; ``T = T_base = 0.07`` (``SupConLoss``, positive in column 0).
* :func:`label_smoothed_nll`: fairseq's ``label_smoothed_nll_loss`` (summed over non-pad tokens):
  ``(1 - eps - eps / (V - 1)) * nll + eps / (V - 1) * sum_v(-log p_v)``.
* :func:`lip_reading_loss`: a frozen AV-HuBERT seq2seq expert reads a (partly generated) mouth-ROI
  sequence, teacher forced on the transcript; returns the summed label-smoothed loss (as the
  official criterion returns it, not divided by the token count), the encoder output (the video
  features of the contrastive loss) and the token accuracy counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: ``SupConLoss(temperature=0.07, base_temperature=0.07)``
TEMPERATURE = 0.07
#: official ``n_negatives = min(100, N / 2)``
MAX_NEGATIVES = 100


def sample_negatives(n: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n, k)`` indices: row ``i`` holds ``k`` distinct indices in ``[0, n)`` other than ``i``,
    uniformly drawn (official: ``torch.multinomial`` over ``n - 1`` slots, then indices ``>= i``
    shifted by one)."""
    if k == 0:
        return torch.zeros(n, 0, dtype=torch.long)
    idx = torch.multinomial(torch.ones(n, n - 1), k, replacement=False, generator=generator)
    return idx + (idx >= torch.arange(n)[:, None]).long()


def supcon_loss(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                temperature: float = TEMPERATURE, base_temperature: float = TEMPERATURE) -> torch.Tensor:
    """Official ``SupConLoss.forward``: ``anchor (N, D)``, ``positive (N, D)``, ``negatives (K, N, D)``
    -> mean over ``N`` of ``-(T / T_base) * log_softmax([a.p, a.n_1 .. a.n_K] / T)[0]``."""
    contrast = torch.cat([positive[None], negatives], dim=0)                # (1 + K, N, D)
    logits = (anchor[None] * contrast).sum(-1).t() / temperature            # (N, 1 + K)
    log_prob = logits[:, 0] - torch.logsumexp(logits, dim=1)
    return -(temperature / base_temperature) * log_prob.mean()


def supcon_av_sync(audio: torch.Tensor, video: torch.Tensor, temperature: float = TEMPERATURE,
                   base_temperature: float = TEMPERATURE, max_negatives: int = MAX_NEGATIVES,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """TalkLip's contrastive loss between projected audio ``(N, D)`` and video ``(N, D)`` features
    (unit vectors); the negatives of frame ``i`` are other frames' *audio* features."""
    n = audio.shape[0]
    k = min(max_negatives, n // 2)
    if k == 0:
        return audio.sum() * 0.0
    neg = sample_negatives(n, k, generator).to(audio.device)
    negatives = audio[neg.reshape(-1)].view(n, k, -1).transpose(0, 1)      # (K, N, D)
    return supcon_loss(audio, video, negatives, temperature, base_temperature)


def label_smoothed_nll(logits: torch.Tensor, target: torch.Tensor, epsilon: float, pad: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """fairseq ``label_smoothed_nll_loss(reduce=True)``: ``logits (B, L, V)``, ``target (B, L)``
    -> (smoothed loss, nll) summed over the non-pad targets."""
    lprobs = F.log_softmax(logits.float(), dim=-1).reshape(-1, logits.shape[-1])
    target = target.reshape(-1, 1)
    keep = target.ne(pad)
    nll = -(lprobs.gather(1, target) * keep).sum()
    smooth = -(lprobs.sum(-1, keepdim=True) * keep).sum()
    eps_i = epsilon / (lprobs.shape[-1] - 1)
    return (1.0 - epsilon - eps_i) * nll + eps_i * smooth, nll


@dataclass
class Targets:
    """Teacher-forcing batch: ``prev (B, L)`` = ``</s>`` + target[:-1], ``target (B, L)`` (pad-filled)."""

    prev: torch.Tensor
    target: torch.Tensor
    pad: int

    @classmethod
    def from_tokens(cls, tokens: Sequence[Sequence[int]], pad: int, eos: int) -> Targets:
        """``tokens[b]``: a transcript's token ids ending with ``eos`` (``TextCodec.encode``)."""
        length = max(len(t) for t in tokens)
        target = torch.full((len(tokens), length), pad, dtype=torch.long)
        prev = torch.full((len(tokens), length), pad, dtype=torch.long)
        for b, t in enumerate(tokens):
            t = torch.as_tensor(list(t), dtype=torch.long)
            target[b, :len(t)] = t
            prev[b, 0] = eos
            prev[b, 1:len(t)] = t[:-1]
        return cls(prev, target, pad)


@dataclass
class LipReading:
    """What one expert pass gives: summed smoothed loss, encoder output ``(B, T, D)``, counts."""

    loss: torch.Tensor
    encoder_out: torch.Tensor
    correct: int
    total: int


def lip_reading_loss(expert: torch.nn.Module, rois: torch.Tensor, padding_mask: torch.Tensor | None,
                     targets: Targets, epsilon: float = 0.1) -> LipReading:
    """A frozen :class:`tfgbench.readers.avhubert.AVHubertSeq2Seq` reads ``rois (B, T, 44, 44)``
    (normalised mouth ROIs, :func:`tfgbench.data.faceclips.mouth_rois_from_faces`) teacher forced.
    Gradients flow to ``rois`` (the generated frames), not to the expert's weights."""
    enc = expert.encoder(rois[:, None], padding_mask)
    logits = expert.decoder(targets.prev, expert.decoder.encoder_kv(enc), padding_mask)[0]
    loss, _ = label_smoothed_nll(logits, targets.target, epsilon, targets.pad)
    keep = targets.target.ne(targets.pad)
    correct = int(((logits.argmax(-1) == targets.target) & keep).sum())
    return LipReading(loss, enc, correct, int(keep.sum()))


def expert_audio_features(expert: torch.nn.Module, fbank: torch.Tensor,
                          padding_mask: torch.Tensor | None) -> torch.Tensor:
    """The expert encoder's *audio-mode* output ``(B, T, D)`` (video zeros), no gradient:
    SyncTalkLip's sync target (``sync_enc_audio``)."""
    with torch.no_grad():
        return expert.encoder(None, padding_mask, audio=fbank)
