"""Batched beam search with fairseq ``SequenceGenerator`` semantics (as AV-HuBERT's
``infer_s2s.py`` runs it: beam 50, ``max_len_a`` 1.0, ``max_len_b`` 0, lenpen 1, min_len 1).

Per utterance ``b`` with source length ``T_b`` (video frames), ``max_len = min(int(a * T_b + b_),
max_positions - 1)``. Decoding starts from ``</s>``. At step ``s`` every live beam gets
``log_softmax`` scores; ``<pad>`` is never chosen, ``<unk>`` pays ``unk_penalty``, ``</s>`` is
forbidden while ``s < min_len`` and forced once ``s >= max_len``. The ``2K`` best (beam, token)
continuations by cumulative score are taken (at step 0 only beam 0, since all beams are equal).
Candidates ending in ``</s>`` *among the first K* are finalised with score
``cumulative / (s + 1) ** lenpen``; the best ``K`` other candidates continue. An utterance stops
when it has ``K`` finalised hypotheses or reaches ``max_len`` (fairseq's early stop). Hypotheses
are returned best first.

Difference from fairseq, on purpose: ``max_len`` uses each clip's own length instead of the
padded batch length, so a result does not depend on what else is in the batch (identical unless a
hypothesis runs to ``T`` tokens).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

StepFn = Callable[[torch.Tensor, int, Any], torch.Tensor]
ReorderFn = Callable[[Any, torch.Tensor], Any]


@dataclass
class Hypothesis:
    tokens: list[int]          # without the leading </s>, ending with </s>
    score: float               # length-normalised log probability


@torch.no_grad()
def beam_search(step_fn: StepFn, reorder_fn: ReorderFn, state: Any, src_lengths: list[int], *,
                eos: int, pad: int, unk: int, vocab_size: int, beam: int = 50,
                max_len_a: float = 1.0, max_len_b: int = 0, min_len: int = 1, lenpen: float = 1.0,
                unk_penalty: float = 0.0, max_positions: int = 2048) -> list[list[Hypothesis]]:
    """Decode ``len(src_lengths)`` utterances.

    Args:
        step_fn: ``step_fn(last_tokens (N,), step, state) -> log_probs (N, V)`` for the ``N``
            live rows (utterance-major, ``K`` rows per utterance); it updates ``state`` in place.
        reorder_fn: ``reorder_fn(state, index (N',)) -> state`` selecting rows (beam reordering
            and dropping finished utterances).
        state: decoder state for ``B * K`` rows (each utterance's encoder output repeated K times).
        src_lengths: source length of each utterance (frames), for ``max_len``.
    """
    bsz = len(src_lengths)
    k = min(beam, vocab_size - 1)
    max_lens = [max(min(int(max_len_a * t + max_len_b), max_positions - 1), min_len) for t in src_lengths]
    finalized: list[list[Hypothesis]] = [[] for _ in range(bsz)]
    alive = list(range(bsz))                                   # original index of each live utterance
    tokens = torch.full((bsz * k, 1), eos, dtype=torch.long)   # (N, step + 1), starts with </s>
    scores = torch.zeros(bsz * k, 0)                           # cumulative score after each step
    for step in range(max(max_lens) + 1):
        n = len(alive)
        lprobs = step_fn(tokens[:, -1], step, state).float()
        lprobs = lprobs.masked_fill(lprobs.isnan(), -math.inf)
        lprobs[:, pad] = -math.inf
        lprobs[:, unk] -= unk_penalty
        row_max = torch.tensor([max_lens[b] for b in alive]).repeat_interleave(k)
        forced = row_max <= step
        if forced.any():
            keep = lprobs[forced, eos].clone()
            lprobs[forced] = -math.inf
            lprobs[forced, eos] = keep
        if step < min_len:
            lprobs[:, eos] = -math.inf
        lprobs = lprobs.view(n, k, -1)
        if step == 0:
            cand = lprobs[:, :1]                                # all beams are identical
        else:
            cand = lprobs + scores[:, -1].view(n, k, 1)
        flat = cand.reshape(n, -1)
        c_scores, c_idx = flat.topk(min(2 * k, flat.shape[1] - 1), dim=1)
        c_beams = torch.div(c_idx, vocab_size, rounding_mode="floor")
        c_tokens = c_idx % vocab_size
        eos_mask = c_tokens.eq(eos) & c_scores.ne(-math.inf)
        finished_now: list[int] = []
        for i in range(n):
            b = alive[i]
            for j in torch.nonzero(eos_mask[i, :k]).flatten().tolist():
                if len(finalized[b]) < k:
                    row = i * k + int(c_beams[i, j])
                    finalized[b].append(Hypothesis(tokens[row, 1:].tolist() + [eos],
                                                   float(c_scores[i, j]) / (step + 1) ** lenpen))
            if len(finalized[b]) >= k or step >= max_lens[b]:
                finished_now.append(i)
        if len(finished_now) == n:
            break
        keep_sent = [i for i in range(n) if i not in set(finished_now)]
        ks = torch.tensor(keep_sent)
        c_scores, c_beams, c_tokens, eos_mask = c_scores[ks], c_beams[ks], c_tokens[ks], eos_mask[ks]
        # the best K non-</s> candidates continue (sort key: rank, pushed back when </s>)
        order = (eos_mask.long() * c_scores.shape[1] + torch.arange(c_scores.shape[1])).argsort(dim=1)[:, :k]
        rows = (ks.view(-1, 1) * k + torch.gather(c_beams, 1, order)).view(-1)
        tokens = torch.cat([tokens[rows], torch.gather(c_tokens, 1, order).view(-1, 1)], dim=1)
        scores = torch.cat([scores[rows], torch.gather(c_scores, 1, order).view(-1, 1)], dim=1)
        state = reorder_fn(state, rows)
        alive = [alive[i] for i in keep_sent]
    return [sorted(h, key=lambda x: -x.score) for h in finalized]
