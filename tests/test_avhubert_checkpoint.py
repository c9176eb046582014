"""Official AV-HuBERT checkpoints load with neither fairseq nor omegaconf importable, and the
restricted unpickler refuses anything else.

The checkpoints are written here the way fairseq writes them: ``torch.save`` (pickle protocol 2)
of ``{args, cfg, model, task_state, ...}`` where ``task_state`` holds objects pickled under their
real names (``fairseq.data.dictionary.Dictionary``, ``fairseq.data.encoders.sentencepiece_bpe.
SentencepieceBPE``, ``sentencepiece.SentencePieceProcessor``; stand-in classes registered under
those module names while saving, then removed). The key names and shapes below are written from
the official layout (reference/official-protocols.md section 4.1), not from our model.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import types
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

# ------------------------------------------------------------------------------ official layout


def _bn(prefix: str, c: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def official_shapes(d: int = 768, ffn: int = 3072, layers: int = 12, dd: int = 768, dffn: int = 3072,
                    dlayers: int = 6, vocab: int = 1000, widths=(64, 128, 256, 512), clusters: int = 2000,
                    final_dim: int = 256, conv_pos: int = 128, groups: int = 16) -> dict[str, tuple]:
    """Key -> shape of fairseq's ``av_hubert_seq2seq`` state dict (Base by default)."""
    s: dict[str, tuple] = {}
    w = "encoder.w2v_model."
    r = w + "feature_extractor_video.resnet."
    s[r + "frontend3D.0.weight"] = (widths[0], 1, 5, 7, 7)
    s.update(_bn(r + "frontend3D.1", widths[0]))
    s[r + "frontend3D.2.weight"] = (widths[0],)
    cin = widths[0]
    for i, c in enumerate(widths):
        for j in range(2):
            p = f"{r}trunk.layer{i + 1}.{j}."
            s[p + "conv1.weight"] = (c, cin if j == 0 else c, 3, 3)
            s.update(_bn(p + "bn1", c))
            s[p + "relu1.weight"] = (c,)
            s[p + "conv2.weight"] = (c, c, 3, 3)
            s.update(_bn(p + "bn2", c))
            s[p + "relu2.weight"] = (c,)
            if j == 0 and i > 0:
                s[p + "downsample.0.weight"] = (c, cin, 1, 1)
                s.update(_bn(p + "downsample.1", c))
        cin = c
    s[w + "feature_extractor_video.proj.weight"] = (d, widths[-1])
    s[w + "feature_extractor_video.proj.bias"] = (d,)
    s[w + "feature_extractor_audio.proj.weight"] = (d, 104)
    s[w + "feature_extractor_audio.proj.bias"] = (d,)
    s[w + "mask_emb"] = (104,)
    s[w + "label_embs_concat"] = (clusters + 4, final_dim)
    s[w + "layer_norm.weight"] = (2 * d,)
    s[w + "layer_norm.bias"] = (2 * d,)
    s[w + "post_extract_proj.weight"] = (d, 2 * d)
    s[w + "post_extract_proj.bias"] = (d,)
    s[w + "encoder.pos_conv.0.bias"] = (d,)
    s[w + "encoder.pos_conv.0.weight_g"] = (1, 1, conv_pos)
    s[w + "encoder.pos_conv.0.weight_v"] = (d, d // groups, conv_pos)
    s[w + "encoder.layer_norm.weight"] = (d,)
    s[w + "encoder.layer_norm.bias"] = (d,)

    def attn(p: str, dim: int, kdim: int) -> None:
        for n, shape in (("q_proj", (dim, dim)), ("k_proj", (dim, kdim)), ("v_proj", (dim, kdim)),
                         ("out_proj", (dim, dim))):
            s[f"{p}.{n}.weight"], s[f"{p}.{n}.bias"] = shape, (dim,)

    def ln(p: str, dim: int) -> None:
        s[p + ".weight"], s[p + ".bias"] = (dim,), (dim,)

    for i in range(layers):
        p = f"{w}encoder.layers.{i}."
        attn(p + "self_attn", d, d)
        ln(p + "self_attn_layer_norm", d)
        s[p + "fc1.weight"], s[p + "fc1.bias"] = (ffn, d), (ffn,)
        s[p + "fc2.weight"], s[p + "fc2.bias"] = (d, ffn), (d,)
        ln(p + "final_layer_norm", d)
    s["decoder.embed_tokens.weight"] = (vocab, dd)
    s["decoder.embed_positions._float_tensor"] = (1,)
    for i in range(dlayers):
        p = f"decoder.layers.{i}."
        attn(p + "self_attn", dd, dd)
        ln(p + "self_attn_layer_norm", dd)
        attn(p + "encoder_attn", dd, dd)
        ln(p + "encoder_attn_layer_norm", dd)
        s[p + "fc1.weight"], s[p + "fc1.bias"] = (dffn, dd), (dffn,)
        s[p + "fc2.weight"], s[p + "fc2.bias"] = (dd, dffn), (dd,)
        ln(p + "final_layer_norm", dd)
    ln("decoder.layer_norm", dd)
    return s


def random_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(100, dtype=torch.long)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g) * 0.02
    return out


# ------------------------------------------------------------------------------ fairseq stand-ins

class FakeDictionary:
    """Same ``__dict__`` as fairseq's Dictionary."""

    def __init__(self, pieces):
        self.bos_word, self.unk_word, self.pad_word, self.eos_word = "<s>", "<unk>", "<pad>", "</s>"
        self.symbols, self.count, self.indices = [], [], {}
        for sym in ["<s>", "<pad>", "</s>", "<unk>", *pieces]:
            self.indices[sym] = len(self.symbols)
            self.symbols.append(sym)
            self.count.append(1)
        self.bos_index, self.pad_index, self.eos_index, self.unk_index = 0, 1, 2, 3
        self.nspecial = 4


class FakeSPP:
    """sentencepiece < 0.2: the pickled state is the serialized model proto (bytes)."""

    def __init__(self, proto: bytes):
        self.proto = proto

    def __getstate__(self):
        return self.proto


class FakeBPE:
    def __init__(self, sp):
        self.sp = sp


class FakeMeta:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class FakeNode:
    def __init__(self, val, parent):
        self._metadata, self._parent, self._val = FakeMeta(ref_type=None, optional=True), parent, val


class FakeDictConfig:
    """omegaconf 2.0 layout: ``{_metadata, _parent, _content}`` with value nodes as leaves."""

    def __init__(self, content, parent=None):
        self._metadata, self._parent = FakeMeta(ref_type=dict, key_type=None, flags={}), parent
        self._content = {k: FakeDictConfig(v, self) if isinstance(v, dict) else FakeNode(v, self)
                         for k, v in content.items()}


FAKES = {("fairseq.data.dictionary", "Dictionary"): FakeDictionary,
         ("fairseq.data.encoders.sentencepiece_bpe", "SentencepieceBPE"): FakeBPE,
         ("sentencepiece", "SentencePieceProcessor"): FakeSPP,
         ("omegaconf.dictconfig", "DictConfig"): FakeDictConfig,
         ("omegaconf.nodes", "AnyNode"): FakeNode,
         ("omegaconf.base", "ContainerMetadata"): FakeMeta}


def _restore_modules(saved: dict) -> None:
    """Put back the sys.modules entries a test replaced (removing those that did not exist)."""
    for m, old in saved.items():
        if old is None:
            sys.modules.pop(m, None)
        else:
            sys.modules[m] = old


@contextmanager
def fairseq_names():
    """Register the stand-ins under the real module/class names while pickling."""
    saved = {}
    try:
        for (mod, name), cls in FAKES.items():
            parts = mod.split(".")
            for i in range(1, len(parts) + 1):
                m = ".".join(parts[:i])
                if m not in saved:
                    saved[m] = sys.modules.get(m)
                    sys.modules[m] = types.ModuleType(m)
            setattr(sys.modules[mod], name, cls)
            cls.__module__, cls.__qualname__ = mod, name
        # FakeMeta is pickled under one name; Metadata leaves reuse it
        yield
    finally:
        _restore_modules(saved)


def tiny_spm_proto(tmp_path: Path) -> bytes:
    import sentencepiece as spm

    text = tmp_path / "text.txt"
    text.write_text("\n".join(["place blue at f two now", "bin red by g nine soon", "lay green in a one again",
                               "set white with z zero please"] * 20))
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(tmp_path / "spm"), vocab_size=30,
                                   model_type="unigram", minloglevel=2)
    return (tmp_path / "spm.model").read_bytes()


BASE_MODEL_CFG = {"_name": "av_hubert_seq2seq", "decoder_layers": 6, "decoder_embed_dim": 768,
                  "decoder_ffn_embed_dim": 3072, "decoder_attention_heads": 4,
                  "decoder_normalize_before": True, "share_decoder_input_output_embed": True,
                  "no_scale_embedding": True, "max_target_positions": 2048}
BASE_W2V = {"_name": "av_hubert", "encoder_layers": 12, "encoder_embed_dim": 768,
            "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12, "layer_norm_first": True,
            "audio_feat_dim": 104, "final_dim": 256, "modality_fuse": "concat", "masking_type": "input",
            "label_rate": 25, "resnet_relu_type": "prelu"}


def write_fairseq_checkpoint(path: Path, state: dict, model_cfg: dict, w2v_model: dict, pieces: list[str],
                             proto: bytes | None, *, omegaconf_cfg: bool = False, legacy: bool = False) -> None:
    cfg = {"_name": None, "common": {"fp16": True, "seed": 1337},
           "task": {"_name": "av_hubert_pretraining", "is_s2s": True, "labels": ["wrd"], "modalities": ["video"],
                    "normalize": True, "stack_order_audio": 4, "tokenizer_bpe_name": "sentencepiece"},
           "model": dict(model_cfg, w2v_args={"model": w2v_model, "task": {"labels": ["km"], "label_rate": 25},
                                              "common": {"seed": 1337}})}
    with fairseq_names():
        task_state = {"dictionaries": [FakeDictionary(pieces)], "target_dictionary": FakeDictionary(pieces)}
        if proto is not None:
            task_state["s2s_tokenizer"] = FakeBPE(FakeSPP(proto))
        obj = {"args": argparse.Namespace(arch="av_hubert_seq2seq") if omegaconf_cfg else None,
               "cfg": FakeDictConfig(cfg) if omegaconf_cfg else cfg,
               "model": state, "criterion": None, "optimizer_history": [{"num_updates": 45000}],
               "task_state": task_state, "extra_state": {"epoch": 30}, "last_optimizer_state": None}
        torch.save(obj, path, pickle_protocol=2, _use_new_zipfile_serialization=not legacy)


@contextmanager
def no_fairseq_no_omegaconf():
    """Make ``import fairseq`` / ``import omegaconf`` fail while loading."""
    saved = {m: sys.modules.get(m) for m in ("fairseq", "omegaconf", "sentencepiece_stub")}
    try:
        sys.modules["fairseq"] = None
        sys.modules["omegaconf"] = None
        with pytest.raises(ImportError):
            import fairseq  # noqa: F401
        with pytest.raises(ImportError):
            import omegaconf  # noqa: F401
        yield
    finally:
        _restore_modules(saved)


# ------------------------------------------------------------------------------ tests

def test_base_checkpoint_loads_without_fairseq_and_decodes(tmp_path):
    from tfgbench.readers.avhubert_reader import load_avhubert_reader

    shapes = official_shapes()
    assert len(shapes) == 504                      # the official Base seq2seq key count
    assert abs(sum(torch.Size(s).numel() for s in shapes.values()) / 1e6 - 160.6) < 0.1
    state = random_state(shapes)
    pieces = [f"\u2581w{i}" for i in range(996)]
    path = tmp_path / "base_vox_433h.pt"
    write_fairseq_checkpoint(path, state, BASE_MODEL_CFG, BASE_W2V, pieces, tiny_spm_proto(tmp_path))
    assert zipfile.is_zipfile(path)
    with no_fairseq_no_omegaconf():
        reader = load_avhubert_reader(path)
    cfg = reader.config
    assert (cfg.encoder_layers, cfg.encoder_embed_dim, cfg.encoder_attention_heads) == (12, 768, 12)
    assert (cfg.decoder_layers, cfg.decoder_embed_dim, cfg.decoder_attention_heads, cfg.vocab_size) == (6, 768, 4, 1000)
    own = reader.model.state_dict()
    assert set(own) == set(shapes) - {"encoder.w2v_model.label_embs_concat"}
    for key in ("encoder.w2v_model.encoder.layers.11.fc2.weight", "decoder.layers.5.encoder_attn.v_proj.bias",
                "encoder.w2v_model.feature_extractor_video.resnet.trunk.layer4.1.bn2.running_var"):
        assert torch.equal(own[key], state[key])
    assert reader.codec.dictionary.symbols[4:] == pieces
    assert reader.codec.tokenizer.encode("blue at f") == reader.codec.tokenizer.sp.encode("blue at f", out_type=str)
    del state
    g = torch.Generator().manual_seed(1)
    hyp = reader.transcribe([torch.randn(6, 88, 88, generator=g)])[0]
    words = hyp.split()
    assert 1 <= len(words) <= 6                    # max_len_a 1.0 x 6 frames
    assert all(w.startswith("w") and 0 <= int(w[1:]) < 996 for w in words)


@pytest.mark.parametrize("legacy,omegaconf_cfg", [(True, False), (False, True), (True, True)])
def test_tiny_checkpoint_variants(tmp_path, legacy, omegaconf_cfg):
    """Legacy (non-zip) container, omegaconf DictConfig cfg and Namespace args all load."""
    from tfgbench.readers.avhubert_reader import load_avhubert_reader

    widths = (8, 16, 16, 32)
    shapes = official_shapes(d=32, ffn=64, layers=2, dd=32, dffn=48, dlayers=2, vocab=14, widths=widths,
                             clusters=10, final_dim=16, conv_pos=8, groups=4)
    state = random_state(shapes, seed=3)
    model_cfg = dict(BASE_MODEL_CFG, decoder_layers=2, decoder_embed_dim=32, decoder_ffn_embed_dim=48,
                     decoder_attention_heads=2)
    w2v = dict(BASE_W2V, encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
               encoder_attention_heads=4, conv_pos=8, conv_pos_groups=4)
    path = tmp_path / "tiny.pt"
    write_fairseq_checkpoint(path, state, model_cfg, w2v, [f"\u2581{c}" for c in "abcdefghij"], None,
                             omegaconf_cfg=omegaconf_cfg, legacy=legacy)
    assert zipfile.is_zipfile(path) != legacy
    with no_fairseq_no_omegaconf():
        reader = load_avhubert_reader(path)
    assert reader.config.encoder_attention_heads == 4 and reader.config.decoder_attention_heads == 2
    assert reader.config.conv_pos == 8 and reader.config.resnet_widths == widths
    own = reader.model.state_dict()
    assert all(torch.equal(own[k], state[k]) for k in own)
    out = reader.transcribe([torch.randn(5, 40, 40), torch.randn(3, 40, 40)])
    assert len(out) == 2 and all(set(w) <= set("abcdefghij") for h in out for w in h.split())


class Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["zip", "legacy", "raw"])
def test_malicious_pickle_is_rejected(tmp_path, container):
    from tfgbench.readers.fairseq_checkpoint import UnsafeCheckpointError, load_fairseq_checkpoint

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"model": {"w": torch.zeros(2)}, "cfg": Evil(marker)}
    if container == "raw":  # a bare pickle (no torch container) of the same attack
        path.write_bytes(pickle.dumps({"cfg": Evil(marker)}, protocol=2))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=container == "zip")
    with pytest.raises(UnsafeCheckpointError, match="system"):
        load_fairseq_checkpoint(path)
    assert not marker.exists()


def test_builtins_eval_and_getattr_rejected(tmp_path):
    from tfgbench.readers.fairseq_checkpoint import UnsafeCheckpointError, load_fairseq_checkpoint

    for module, name in (("builtins", "eval"), ("__builtin__", "getattr"), ("torch", "load"),
                         ("fairseq.models", "build_model"), ("numpy", "load")):
        data = f"\x80\x02c{module}\n{name}\n.".encode("latin1")
        path = tmp_path / "g.pt"
        path.write_bytes(data)
        with pytest.raises(UnsafeCheckpointError, match=name):
            load_fairseq_checkpoint(path)


def test_bad_files_give_clear_errors(tmp_path):
    from tfgbench.errors import MissingResourceError, TfgbenchError
    from tfgbench.readers.avhubert_reader import load_avhubert_reader

    with pytest.raises(MissingResourceError, match="not found"):
        load_avhubert_reader(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(TfgbenchError, match="junk.pt"):
        load_avhubert_reader(junk)
    notavh = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(3)}, "cfg": {}}, notavh)
    with pytest.raises(TfgbenchError, match="not an AV-HuBERT seq2seq checkpoint"):
        load_avhubert_reader(notavh)


def test_missing_tokenizer_is_a_clear_error_and_spm_fills_in(tmp_path):
    """A checkpoint without target dictionary or embedded tokenizer needs the user's .model."""
    import sentencepiece as spm

    from tfgbench.errors import MissingResourceError
    from tfgbench.readers.avhubert_reader import load_avhubert_reader

    tiny_spm_proto(tmp_path)                                      # writes tmp_path / "spm.model" (30 pieces)
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "spm.model"))
    vocab = 4 + sum(not (sp.is_control(i) or sp.is_unknown(i)) for i in range(sp.get_piece_size()))
    shapes = official_shapes(d=32, ffn=64, layers=1, dd=32, dffn=48, dlayers=1, vocab=vocab, widths=(8, 8, 8, 16),
                             clusters=4, final_dim=16, conv_pos=8, groups=4)
    path = tmp_path / "nodict.pt"
    cfg = {"model": dict(BASE_MODEL_CFG, decoder_layers=1, decoder_embed_dim=32, decoder_ffn_embed_dim=48,
                         decoder_attention_heads=2,
                         w2v_args={"model": dict(BASE_W2V, encoder_layers=1, encoder_embed_dim=32,
                                                 encoder_ffn_embed_dim=64, encoder_attention_heads=4,
                                                 conv_pos=8, conv_pos_groups=4)})}
    torch.save({"args": None, "cfg": cfg, "model": random_state(shapes, seed=5), "task_state": {}}, path,
               pickle_protocol=2)
    with pytest.raises(MissingResourceError, match="--spm") as e:
        load_avhubert_reader(path)
    assert "spm_unigram1000.model" in str(e.value)
    reader = load_avhubert_reader(path, spm=tmp_path / "spm.model")
    assert len(reader.codec.dictionary) == vocab
    ids = reader.codec.encode("blue at f")
    assert ids[-1] == reader.codec.dictionary.eos
    assert reader.codec.decode(ids) == "blue at f"
    assert isinstance(reader.transcribe([torch.randn(4, 40, 40)])[0], str)
