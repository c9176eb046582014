"""Conformer lip reader: official layouts load from files made here in the official formats,
the attention and text conventions match their definitions, batching changes nothing."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from conftest import levenshtein

from tfgbench.errors import MissingResourceError, TfgbenchError
from tfgbench.readers.conformer import ConformerVSR, RelPositionMultiHeadedAttention, preset
from tfgbench.readers.conformer_loader import infer_config, load_model
from tfgbench.readers.conformer_reader import (
    AutoAVSRReader,
    ConformerReader,
    encode_reference,
    find_observer,
    load_conformer_reader,
    random_conformer_reader,
    required_length,
    teacher_forced_hypothesis,
)

# ---------------------------------------------------------------- official key/shape layouts,
# written out from ESPnet 0.10.6 / deep_avsr / auto_avsr module definitions (not from our model).


def _bn(p, c, out):
    out.update({f"{p}.weight": (c,), f"{p}.bias": (c,), f"{p}.running_mean": (c,),
                f"{p}.running_var": (c,), f"{p}.num_batches_tracked": ()})


def _lin(p, o, i, out, bias=True):
    out[f"{p}.weight"] = (o, i)
    if bias:
        out[f"{p}.bias"] = (o,)


def _ln(p, c, out):
    out.update({f"{p}.weight": (c,), f"{p}.bias": (c,)})


def _mha(p, d, out):
    for n in ("linear_q", "linear_k", "linear_v", "linear_out"):
        _lin(f"{p}.{n}", d, d, out)


def _backend(out, d, h, eunits, elayers, dunits, dlayers, odim, kernel, pw):
    for i in range(elayers):
        b = f"encoder.encoders.{i}"
        _mha(f"{b}.self_attn", d, out)
        _lin(f"{b}.self_attn.linear_pos", d, d, out, bias=False)
        out[f"{b}.self_attn.pos_bias_u"] = (h, d // h)
        out[f"{b}.self_attn.pos_bias_v"] = (h, d // h)
        for ff in ("feed_forward", "feed_forward_macaron"):
            _lin(f"{b}.{ff}.w_1", eunits, d, out)
            _lin(f"{b}.{ff}.w_2", d, eunits, out)
        out.update({f"{b}.conv_module.{pw}1.weight": (2 * d, d, 1), f"{b}.conv_module.{pw}1.bias": (2 * d,),
                    f"{b}.conv_module.depthwise_conv.weight": (d, 1, kernel),
                    f"{b}.conv_module.depthwise_conv.bias": (d,),
                    f"{b}.conv_module.{pw}2.weight": (d, d, 1), f"{b}.conv_module.{pw}2.bias": (d,)})
        _bn(f"{b}.conv_module.norm", d, out)
        for n in ("norm_ff", "norm_mha", "norm_ff_macaron", "norm_conv", "norm_final"):
            _ln(f"{b}.{n}", d, out)
    _ln("encoder.after_norm", d, out)
    out["decoder.embed.0.weight"] = (odim, d)
    for i in range(dlayers):
        b = f"decoder.decoders.{i}"
        _mha(f"{b}.self_attn", d, out)
        _mha(f"{b}.src_attn", d, out)
        _lin(f"{b}.feed_forward.w_1", dunits, d, out)
        _lin(f"{b}.feed_forward.w_2", d, dunits, out)
        for n in ("norm1", "norm2", "norm3"):
            _ln(f"{b}.{n}", d, out)
    _ln("decoder.after_norm", d, out)
    _lin("decoder.output_layer", odim, d, out)
    _lin("ctc.ctc_lo", odim, d, out)


def talklip_spec(ch=(64, 64, 128, 256, 512), d=256, h=4, eunits=2048, elayers=12, dunits=2048,
                 dlayers=6, odim=40, kernel=31):
    out: dict[str, tuple] = {"visual_frontend.frontend3D.0.weight": (ch[0], 1, 5, 7, 7)}
    _bn("visual_frontend.frontend3D.1", ch[0], out)
    for n in range(1, 5):
        p, ci, co = f"visual_frontend.resnet.layer{n}", ch[n - 1], ch[n]
        out.update({f"{p}.conv1a.weight": (co, ci, 3, 3), f"{p}.conv2a.weight": (co, co, 3, 3),
                    f"{p}.downsample.weight": (co, ci, 1, 1), f"{p}.conv1b.weight": (co, co, 3, 3),
                    f"{p}.conv2b.weight": (co, co, 3, 3)})
        for bn in ("bn1a", "outbna", "bn1b", "outbnb"):
            _bn(f"{p}.{bn}", co, out)
    _lin("encoder.embed.0", d, ch[4], out)
    _ln("encoder.embed.1", d, out)
    _backend(out, d, h, eunits, elayers, dunits, dlayers, odim, kernel, "pointwise_conv")
    return out


def auto_avsr_spec(ch=(64, 64, 128, 256, 512), d=768, h=12, units=3072, elayers=12, dlayers=6,
                   odim=5049, kernel=31):
    out: dict[str, tuple] = {"frontend.frontend3D.0.weight": (ch[0], 1, 5, 7, 7)}
    _bn("frontend.frontend3D.1", ch[0], out)
    for n in range(1, 5):
        for blk in range(2):
            p = f"frontend.trunk.layer{n}.{blk}"
            ci = ch[n - 1] if blk == 0 else ch[n]
            co = ch[n]
            out.update({f"{p}.conv1.weight": (co, ci, 3, 3), f"{p}.conv2.weight": (co, co, 3, 3)})
            _bn(f"{p}.bn1", co, out)
            _bn(f"{p}.bn2", co, out)
            if blk == 0 and n > 1:
                out[f"{p}.downsample.0.weight"] = (co, ci, 1, 1)
                _bn(f"{p}.downsample.1", co, out)
    _lin("proj_encoder", d, ch[4], out)
    _backend(out, d, h, units, elayers, units, dlayers, odim, kernel, "pointwise_cov")
    return out


def _random_state(spec, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for k, shape in spec.items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(100)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(shape, generator=g) * 0.05
    return state


def _meta_spec(name):
    with torch.device("meta"):
        model = ConformerVSR(preset(name))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name,spec", [("observer", talklip_spec), ("auto-avsr", auto_avsr_spec)])
def test_full_size_layouts_have_the_official_keys_and_shapes(name, spec):
    assert _meta_spec(name) == spec()


def test_talklip_observer_file_loads(tmp_path):
    state = _random_state(talklip_spec())
    path = tmp_path / "conformer.pt"
    torch.save(state, path)  # teacher_force_wer.py: model.load_state_dict(torch.load(path))
    reader = load_conformer_reader(path)
    assert isinstance(reader, ConformerReader) and reader.teacher_forced
    assert reader.input_size == (112, 112)
    cfg = reader.model.cfg
    assert (cfg.layout, cfg.adim, cfg.aheads, cfg.eunits, cfg.elayers, cfg.dlayers, cfg.odim) == (
        "talklip", 256, 4, 2048, 12, 6, 40)
    loaded = reader.model.state_dict()
    for k in ("visual_frontend.resnet.layer3.outbnb.running_var", "encoder.encoders.11.self_attn.pos_bias_u",
              "decoder.output_layer.weight"):
        assert torch.equal(loaded[k], state[k])
    out = reader.transcribe([torch.randn(12, 112, 112)], ["HELLO WORLD"])
    assert len(out) == 1 and isinstance(out[0], str)


def test_auto_avsr_file_loads_reduced_width(tmp_path):
    # Full-size shapes are checked above without allocating 1 GB; the file test uses the same
    # keys and container at a reduced width.
    spec = auto_avsr_spec(ch=(8, 8, 16, 16, 32), d=48, h=4, units=64, elayers=2, dlayers=1, odim=12)
    path = tmp_path / "vsr_trlrs3_base.pth"
    torch.save(_random_state(spec), path)
    units = tmp_path / "units.txt"
    units.write_text("".join(f"\u2581W{i} {i + 1}\n" for i in range(10)))
    reader = load_conformer_reader(path, units=units)
    assert isinstance(reader, AutoAVSRReader) and not reader.teacher_forced
    assert (reader.model.cfg.aheads, reader.model.cfg.elayers, reader.model.cfg.odim) == (4, 2, 12)
    hyp = reader.transcribe([torch.randn(9, 88, 88)])[0]
    assert all(w.startswith("w") for w in hyp.split())
    with pytest.raises(MissingResourceError, match="unigram5000_units.txt"):
        load_conformer_reader(path, units=tmp_path / "nope.txt")


def test_wrapped_containers_load_and_bad_files_are_named(tmp_path):
    spec = talklip_spec(ch=(8, 8, 8, 16, 16), d=32, h=4, eunits=32, elayers=1, dunits=32, dlayers=1)
    state = _random_state(spec)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, wrapped)
    model, meta = load_model(wrapped)
    assert meta["format"] == "talklip" and model.cfg.frontend_channels == (8, 8, 8, 16, 16)

    broken = dict(state)
    broken.pop("encoder.encoders.0.conv_module.norm.running_mean")
    broken["encoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pt"
    torch.save(broken, path)
    with pytest.raises(TfgbenchError, match=r"broken\.pt.*missing: encoder\.encoders\.0\.conv_module"
                                            r"\.norm\.running_mean.*unexpected: encoder\.extra\.weight"):
        load_model(path)

    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": state, "args": _Opaque()}, unsafe)  # a pickled object: refused, not run
    with pytest.raises(TfgbenchError, match="unsafe.pt.*weights_only"):
        load_model(unsafe)
    with pytest.raises(TfgbenchError, match="not a Conformer"):
        torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "other.pt")
        load_model(tmp_path / "other.pt")


class _Opaque:
    pass


def test_missing_observer_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("TFGBENCH_CONFORMER_OBSERVER", raising=False)
    with pytest.raises(MissingResourceError) as e:
        find_observer(tmp_path / "absent.pt", flag="--weights")
    msg = str(e.value)
    assert "absent.pt" in msg and "TFGBENCH_CONFORMER_OBSERVER" in msg and "drive.google.com" in msg
    with pytest.raises(MissingResourceError, match="absent.pt"):
        load_conformer_reader(tmp_path / "absent.pt")


def test_infer_config_reads_heads_from_pos_bias():
    spec = talklip_spec(ch=(8, 8, 8, 16, 16), d=48, h=6, eunits=40, elayers=3, dunits=24, dlayers=2)
    cfg = infer_config(_random_state(spec), "x")
    assert (cfg.aheads, cfg.eunits, cfg.elayers, cfg.dunits, cfg.dlayers) == (6, 40, 3, 24, 2)


# ---------------------------------------------------------------- numerics


def test_relative_attention_matches_its_formula():
    torch.manual_seed(0)
    d, h, t = 16, 2, 7
    att = RelPositionMultiHeadedAttention(h, d, 0.0).eval()
    x = torch.randn(1, t, d)
    # positional encodings of offsets t-1 .. -(t-1), as ESPnet's RelPositionalEncoding gives them
    offsets = torch.arange(t - 1, -t, -1).float()
    div = torch.tensor([10000 ** (-2 * i / d) for i in range(d // 2)])
    pe = torch.zeros(2 * t - 1, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(offsets[:, None] * div), torch.cos(offsets[:, None] * div)
    mask = torch.ones(1, 1, t, dtype=torch.bool)
    mask[..., -2:] = False
    with torch.no_grad():
        got = att(x, pe[None], mask)[0]
        want = _naive_rel_attention(att, x, pe, t, h, d)
    assert torch.allclose(got, want, atol=1e-5)


def _naive_rel_attention(att, x, pe, t, h, d):
    dk = d // h
    q = att.linear_q(x)[0].view(t, h, dk)
    k = att.linear_k(x)[0].view(t, h, dk)
    v = att.linear_v(x)[0].view(t, h, dk)
    p = att.linear_pos(pe).view(2 * t - 1, h, dk)
    out = torch.zeros(t, h, dk)
    for hh in range(h):
        for i in range(t):
            s = torch.tensor([((q[i, hh] + att.pos_bias_u[hh]) @ k[j, hh]
                               + (q[i, hh] + att.pos_bias_v[hh]) @ p[(t - 1) - (i - j), hh]) / math.sqrt(dk)
                              if j < t - 2 else -math.inf for j in range(t)])
            out[i, hh] = torch.softmax(s, 0) @ v[:, hh]
    return att.linear_out(out.reshape(t, d))


def test_batch_gives_the_same_logits_as_each_clip_alone():
    torch.manual_seed(1)
    model = ConformerVSR(preset("tiny")).eval()
    clips = [torch.randn(n, 44, 44) for n in (14, 6, 10)]
    targets = [torch.tensor(encode_reference(s)) for s in ("BIN BLUE", "SET RED BY Q NINE", "LAY")]
    req = torch.tensor([required_length(t.tolist()) for t in targets])
    x = torch.zeros(3, 14, 44, 44)
    for i, c in enumerate(clips):
        x[i, :len(c)] = c
    with torch.no_grad():
        hs, hl = model.encode(x, torch.tensor([14, 6, 10]), req)
        batched = model.teacher_forced_logits(hs, hl, targets)
        for i, c in enumerate(clips):
            hs1, hl1 = model.encode(c[None], torch.tensor([len(c)]), req[i:i + 1])
            alone = model.teacher_forced_logits(hs1, hl1, [targets[i]])[0]
            assert int(hl1) == max(len(c), int(req[i]))
            assert torch.allclose(batched[i, :len(targets[i]) + 1], alone, atol=1e-4)


def test_required_length_and_vocabulary():
    ids = encode_reference("hello  it's 42")
    # TalkLip's char_dict, written out independently
    official = {" ": 1, "E": 2, "T": 3, "O": 4, "L": 11, "H": 9, "I": 6, "'": 22, "S": 8, "4": 38, "2": 32}
    assert ids == [official[c] for c in "HELLO  IT'S 42"]
    assert required_length(ids) == len(ids) + 2  # "LL" and the double space
    with pytest.raises(TfgbenchError, match="'!'"):
        encode_reference("hi!")


def _official_wer(pred, trgt, space=1):
    """asrMetrics.compute_both's word error rate, re-implemented from its definition."""
    pred = np.array(pred)
    if len(pred) > 0 and pred[-1] == 39:
        pred = pred[:-1]
    trgt = np.array(trgt)
    pw = np.split(pred, np.where(pred == space)[0])
    pw = [pw[0].tobytes()] + [w[1:].tobytes() for w in pw[1:] if len(w[1:]) != 0]
    tw = np.split(trgt, np.where(trgt == space)[0])
    tw = [tw[0].tobytes()] + [w[1:].tobytes() for w in tw[1:]]
    return levenshtein(pw, tw) / len(tw)


def test_hypothesis_text_reproduces_the_official_word_split():
    jiwer = pytest.importorskip("jiwer")
    rng = np.random.default_rng(0)
    refs = ["BIN BLUE AT F TWO NOW", "PLACE RED IN Q NINE AGAIN", "IT'S A TEST"]
    for trial in range(300):
        ref = refs[trial % 3]
        trgt = encode_reference(ref)
        # predictions: the reference with random corruptions, incl. blanks, spaces and <EOS>
        pred = list(trgt) + [39]
        for _ in range(rng.integers(0, 6)):
            pos = int(rng.integers(0, len(pred)))
            pred[pos] = int(rng.choice([0, 1, 1, 39, int(rng.integers(2, 39))]))
        hyp = teacher_forced_hypothesis(pred, len(trgt))
        want = _official_wer(pred[:len(trgt)], trgt)
        got = jiwer.wer(ref.lower(), hyp) if hyp else 1.0
        assert got == pytest.approx(want), (pred, hyp)


def test_reader_checks_its_inputs():
    reader = random_conformer_reader("tiny")
    with pytest.raises(TfgbenchError, match="teacher-forced"):
        reader.transcribe([torch.zeros(5, 44, 44)])
    with pytest.raises(TfgbenchError, match=r"\(T, 44, 44\)"):
        reader.transcribe([torch.zeros(5, 88, 88)], ["BIN"])
    out = reader.transcribe([torch.zeros(5, 44, 44), torch.zeros(9, 44, 44)], ["bin blue", "set"])
    assert len(out) == 2 and len(out[0].split()) >= 1
