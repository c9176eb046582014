"""The AV-HuBERT port against independent references: torch's own transformer layers, fairseq's
sinusoidal formula, torch's weight norm, and a plain re-statement of fairseq's beam search."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from tfgbench.readers.avhubert import (
    AVHubertConfig,
    AVHubertSeq2Seq,
    DecoderLayer,
    EncoderLayer,
    SinusoidalPositions,
    WeightNormConv1d,
)
from tfgbench.readers.beam_search import beam_search


def _copy_attn(ours, theirs: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        theirs.out_proj.weight.copy_(ours.out_proj.weight)
        theirs.out_proj.bias.copy_(ours.out_proj.bias)


def _copy_ffn_norms(ours, theirs, pairs) -> None:
    with torch.no_grad():
        theirs.linear1.weight.copy_(ours.fc1.weight)
        theirs.linear1.bias.copy_(ours.fc1.bias)
        theirs.linear2.weight.copy_(ours.fc2.weight)
        theirs.linear2.bias.copy_(ours.fc2.bias)
        for a, b in pairs:
            getattr(theirs, b).weight.copy_(getattr(ours, a).weight)
            getattr(theirs, b).bias.copy_(getattr(ours, a).bias)


def test_encoder_layer_matches_torch_pre_ln_layer():
    torch.manual_seed(0)
    ours = EncoderLayer(32, 64, 4, layer_norm_first=True).eval()
    ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", batch_first=True,
                                     norm_first=True).eval()
    _copy_attn(ours.self_attn, ref.self_attn)
    _copy_ffn_norms(ours, ref, [("self_attn_layer_norm", "norm1"), ("final_layer_norm", "norm2")])
    x = torch.randn(2, 7, 32)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 5:] = True
    got = ours(x, (~pad)[:, None, None, :])
    want = ref(x, src_key_padding_mask=pad)
    assert torch.allclose(got[0], want[0], atol=1e-5)
    assert torch.allclose(got[1, :5], want[1, :5], atol=1e-5)


def test_decoder_layer_matches_torch_pre_ln_layer():
    torch.manual_seed(1)
    ours = DecoderLayer(32, 48, 4, normalize_before=True).eval()
    ref = nn.TransformerDecoderLayer(32, 4, 48, dropout=0.0, activation="relu", batch_first=True,
                                     norm_first=True).eval()
    _copy_attn(ours.self_attn, ref.self_attn)
    _copy_attn(ours.encoder_attn, ref.multihead_attn)
    _copy_ffn_norms(ours, ref, [("self_attn_layer_norm", "norm1"), ("encoder_attn_layer_norm", "norm2"),
                                ("final_layer_norm", "norm3")])
    x, mem = torch.randn(2, 5, 32), torch.randn(2, 9, 32)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    att = ours.encoder_attn
    enc_kv = (att.split(att.k_proj(mem)), att.split(att.v_proj(mem)))
    got, _ = ours(x, None, causal, enc_kv, None)
    want = ref(x, mem, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5))
    assert torch.allclose(got, want, atol=1e-5)


def test_sinusoidal_positions_match_fairseq_formula():
    dim, pad, n = 10, 1, 20
    half = dim // 2
    table = torch.zeros(n, dim)
    for p in range(n):
        for i in range(half):
            w = math.exp(-i * math.log(10000) / (half - 1))
            table[p, i], table[p, half + i] = math.sin(p * w), math.cos(p * w)
    table[pad] = 0
    got = SinusoidalPositions(dim, pad)(torch.arange(n).view(1, -1))[0]
    assert torch.allclose(got, table, atol=1e-5)


def test_weight_norm_conv_matches_torch_weight_norm():
    torch.manual_seed(2)
    ours = WeightNormConv1d(16, 8, 4)
    with torch.no_grad():
        ours.weight_g.mul_(torch.rand_like(ours.weight_g) + 0.5)
    conv = nn.Conv1d(16, 16, 8, padding=4, groups=4)
    conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
    with torch.no_grad():
        conv.parametrizations.weight.original0.copy_(ours.weight_g)
        conv.parametrizations.weight.original1.copy_(ours.weight_v)
        conv.bias.copy_(ours.bias)
    x = torch.randn(2, 16, 11)
    assert torch.allclose(ours(x), conv(x)[..., :-1], atol=1e-5)   # SamePad drops the last step


def _tiny(seed=0, vocab=12):
    torch.manual_seed(seed)
    cfg = AVHubertConfig.tiny(encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                              decoder_embed_dim=32, decoder_ffn_embed_dim=64, resnet_widths=(8, 8, 16, 16),
                              conv_pos=8, vocab_size=vocab)
    return AVHubertSeq2Seq(cfg).eval()


def test_incremental_decoding_equals_teacher_forcing():
    model = _tiny()
    video = torch.randn(1, 1, 9, 32, 32)
    enc = model.encoder(video, None)
    kv = model.decoder.encoder_kv(enc)
    tokens = torch.tensor([[2, 5, 7, 4, 9, 6]])
    full, _ = model.decoder(tokens, kv, None)
    cache = None
    for t in range(tokens.shape[1]):
        pos = torch.tensor([[model.cfg.pad_index + 1 + t]])
        step, cache = model.decoder(tokens[:, t:t + 1], kv, None, pos, cache)
        assert torch.allclose(step[:, 0], full[:, t], atol=1e-4)


def test_batch_padding_does_not_change_outputs():
    from tfgbench.readers.avhubert_reader import AVHubertReader
    from tfgbench.readers.tokenizer import Dictionary, TextCodec, WordTokenizer

    model = _tiny(seed=3)
    codec = TextCodec(Dictionary.from_pieces(f"w{i}" for i in range(8)), WordTokenizer())
    reader = AVHubertReader(model, codec, batch_size=8)
    clips = [torch.randn(t, 32, 32) for t in (9, 4, 6)]
    video, pad = reader.collate(clips)
    enc_batch = model.encoder(video, pad)
    for i, c in enumerate(clips):
        alone = model.encoder(c[None, None], None)
        assert torch.allclose(enc_batch[i, : len(c)], alone[0], atol=1e-4)
    assert reader.transcribe(clips) == [reader.transcribe([c])[0] for c in clips]


# ------------------------------------------------------------------------------ beam search

def _toy_lprobs(prefix: tuple[int, ...], vocab: int, seed: int) -> torch.Tensor:
    """A deterministic 'language model': log-probs depend on the whole prefix."""
    g = torch.Generator().manual_seed(hash((prefix, seed)) % (2 ** 31))
    return torch.log_softmax(torch.randn(vocab, generator=g) * 2.5, -1)


def reference_beam(src_len: int, k: int, vocab: int, seed: int, eos=2, pad=1, a=1.0, b=0, min_len=1, lenpen=1.0):
    """fairseq's SequenceGenerator for one sentence, written plainly (lists, no batching)."""
    max_len = int(a * src_len + b)
    beams = [((eos,), 0.0)]
    final = []
    for step in range(max_len + 1):
        cands = []
        for bi, (toks, score) in enumerate(beams if step > 0 else beams[:1]):
            lp = _toy_lprobs(toks, vocab, seed).clone()
            lp[pad] = -math.inf
            if step >= max_len:
                keep = lp[eos].item()
                lp[:] = -math.inf
                lp[eos] = keep
            if step < min_len:
                lp[eos] = -math.inf
            for tok in range(vocab):
                cands.append((score + lp[tok].item(), bi * vocab + tok, toks + (tok,)))
        cands.sort(key=lambda c: (-c[0], c[1]))       # topk order: score, then flat index
        cands = cands[: min(2 * k, (len(beams) if step else 1) * vocab - 1)]
        for s, _, toks in cands[:k]:
            if toks[-1] == eos and s != -math.inf and len(final) < k:
                final.append((list(toks[1:]), s / (step + 1) ** lenpen))
        if len(final) >= k or step >= max_len:
            break
        beams = [(toks, s) for s, _, toks in cands if toks[-1] != eos][:k]
    return sorted(final, key=lambda h: -h[1])


@pytest.mark.parametrize("k", [1, 3, 5])
def test_beam_search_matches_reference(k):
    vocab, seeds, lens = 7, [11, 12, 13], [4, 6, 3]

    def step_fn(last, step, state):
        return torch.stack([_toy_lprobs(tuple(p), vocab, seed) for p, seed in zip(state["prefix"], state["seed"])])

    def reorder(state, rows):
        r = rows.tolist()
        return {"prefix": [state["prefix"][i] for i in r], "seed": [state["seed"][i] for i in r]}

    # the state tracks full prefixes so the toy model can condition on them
    state = {"prefix": [[2] for _ in range(3 * k)], "seed": [s for s in seeds for _ in range(k)]}

    def step_tracking(last, step, st):
        if step > 0:
            st["prefix"] = [p + [int(t)] for p, t in zip(st["prefix"], last)]
        return step_fn(last, step, st)

    got = beam_search(step_tracking, reorder, state, lens, eos=2, pad=1, unk=3, vocab_size=vocab, beam=k)
    for i, (seed, n) in enumerate(zip(seeds, lens)):
        want = reference_beam(n, k, vocab, seed)
        assert [h.tokens for h in got[i]] == [w[0] for w in want]
        assert all(abs(h.score - w[1]) < 1e-5 for h, w in zip(got[i], want))
