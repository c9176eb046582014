"""The AV-HuBERT lip reader: loading (fairseq ``.pt`` or our safetensors) and beam-search decoding.

Official checkpoints (the AV-HuBERT VSR models, TalkLip's observer 1) are fairseq files read by
:mod:`tfgbench.readers.fairseq_checkpoint`; sizes come from ``cfg['model']`` (decoder) and
``cfg['model']['w2v_args']['model']`` (encoder), checked against the state-dict shapes. The target
dictionary comes from ``task_state['target_dictionary']``; the SentencePiece model from
``task_state['s2s_tokenizer']`` when the file carries it, else from the user's ``.model`` file
(needed only to build the dictionary when the checkpoint has none).
Pre-training-only tensors (``label_embs_concat``, ``final_proj``, ``target_glu``) are dropped.

Our own readers (``tfgbench/weights/avhubert-synthetic.safetensors``) store the config, the
dictionary symbols and the tokenizer kind in the safetensors metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tfgbench.errors import MissingResourceError, TfgbenchError
from tfgbench.readers.avhubert import AVHubertConfig, AVHubertSeq2Seq
from tfgbench.readers.base import LipReader
from tfgbench.readers.beam_search import beam_search
from tfgbench.readers.tokenizer import (
    SPM_ORIGIN,
    Dictionary,
    SentencePieceTokenizer,
    TextCodec,
    WordTokenizer,
    sentencepiece_from_task_state,
)

#: AV-SyncNet (synctalklip) stores its alignment head in the reader's file under this prefix; the
#: reader ignores those keys, so an AV-SyncNet file scores as a plain AV-HuBERT reader.
AVSYNC_PREFIX = "avsync."
PRETRAIN_ONLY = ("encoder.w2v_model.label_embs_concat", "encoder.w2v_model.final_proj.",
                 "encoder.w2v_model.target_glu.")


@dataclass
class DecodeSettings:
    """fairseq ``s2s_decode.yaml``: beam 50, max_len_a 1.0, max_len_b 0, lenpen 1.0."""

    beam: int = 50
    max_len_a: float = 1.0
    max_len_b: int = 0
    lenpen: float = 1.0
    min_len: int = 1


class _DecoderState:
    """Beam-search state: encoder keys/values and padding once per live utterance, the
    self-attention cache once per beam (``beam`` consecutive rows per utterance)."""

    def __init__(self, enc_kv: list, enc_pad: torch.Tensor | None, beam: int) -> None:
        self.enc_kv, self.enc_pad, self.cache, self.beam = enc_kv, enc_pad, None, beam

    def select(self, rows: torch.Tensor) -> _DecoderState:
        utt = torch.div(rows.view(-1, self.beam)[:, 0], self.beam, rounding_mode="floor")
        same = torch.arange(utt.numel(), device=utt.device)
        if utt.numel() != self.enc_kv[0][0].shape[0] or not torch.equal(utt, same):
            self.enc_kv = [(k[utt], v[utt]) for k, v in self.enc_kv]
            self.enc_pad = self.enc_pad[utt] if self.enc_pad is not None else None
        if self.cache is not None:
            self.cache = [(k[rows], v[rows]) for k, v in self.cache]
        return self


class AVHubertReader(LipReader):
    """Video-only AV-HuBERT seq2seq reader with batched fairseq-style beam search."""

    teacher_forced = False

    def __init__(self, model: AVHubertSeq2Seq, codec: TextCodec, *, decode: DecodeSettings | None = None,
                 device: str = "cpu", sha256: str = "none", batch_size: int = 4) -> None:
        self.model = model.to(device).eval()
        self.codec = codec
        self.decode = decode or DecodeSettings()
        self.device = device
        self.sha256 = sha256
        self.batch_size = batch_size

    @property
    def config(self) -> AVHubertConfig:
        return self.model.cfg

    @staticmethod
    def collate(videos: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad ``(T_i, H, W)`` clips with zeros -> ``(B, 1, T, H, W)`` and padding mask ``(B, T)``."""
        if any(v.ndim != 3 or v.shape[0] == 0 for v in videos):
            raise TfgbenchError("every clip must be a non-empty (T, H, W) tensor, got shapes "
                                f"{[tuple(v.shape) for v in videos]}")
        t_max = max(v.shape[0] for v in videos)
        batch = videos[0].new_zeros(len(videos), 1, t_max, *videos[0].shape[1:])
        pad = torch.ones(len(videos), t_max, dtype=torch.bool)
        for i, v in enumerate(videos):
            batch[i, 0, : v.shape[0]] = v
            pad[i, : v.shape[0]] = False
        return batch, pad

    @torch.no_grad()
    def transcribe(self, videos: Sequence[torch.Tensor], references: Sequence[str] | None = None) -> list[str]:
        out: list[str] = []
        for i in range(0, len(videos), self.batch_size):
            out.extend(self._transcribe(videos[i:i + self.batch_size]))
        return out

    def _transcribe(self, videos: Sequence[torch.Tensor]) -> list[str]:
        video, pad = self.collate([torch.as_tensor(v, dtype=torch.float32) for v in videos])
        video, pad = video.to(self.device), pad.to(self.device)
        model, d = self.model, self.decode
        enc = model.encoder(video, pad)
        k = min(d.beam, len(self.codec.dictionary) - 1)
        state = _DecoderState(model.decoder.encoder_kv(enc), pad, k)
        dic = self.codec.dictionary
        pad_idx = dic.pad

        def step(last: torch.Tensor, t: int, st: _DecoderState) -> torch.Tensor:
            positions = torch.full((last.shape[0], 1), pad_idx + 1 + t, dtype=torch.long, device=self.device)
            logits, st.cache = model.decoder(last.view(-1, 1).to(self.device), st.enc_kv, st.enc_pad,
                                             positions, st.cache)
            return F.log_softmax(logits[:, -1].float(), dim=-1).cpu()

        hyps = beam_search(step, lambda st, r: st.select(r.to(self.device)), state,
                           [int(v.shape[0]) for v in videos], eos=dic.eos, pad=dic.pad, unk=dic.unk,
                           vocab_size=len(dic), beam=d.beam, max_len_a=d.max_len_a, max_len_b=d.max_len_b,
                           min_len=d.min_len, lenpen=d.lenpen, max_positions=model.cfg.max_target_positions)
        return [" ".join(self.codec.decode(h[0].tokens).lower().split()) if h else "" for h in hyps]


# ------------------------------------------------------------------------------ fairseq files

def _get(d: Any, key: str, default: Any) -> Any:
    if isinstance(d, dict) and d.get(key) is not None:
        return d[key]
    return default


def config_from_fairseq(cfg: dict[str, Any], state: dict[str, torch.Tensor], where: str) -> AVHubertConfig:
    """Model sizes from a fairseq config, with fairseq's defaults where a field is absent and the
    state-dict shapes as the final word on widths, depths and vocabulary."""
    m = _get(cfg, "model", {})
    w2v = _get(m, "w2v_args", {})
    em = _get(w2v, "model", w2v)
    pre = "encoder.w2v_model."
    try:
        d = state[pre + "post_extract_proj.weight"].shape[0] if pre + "post_extract_proj.weight" in state \
            else state[pre + "feature_extractor_video.proj.weight"].shape[0]
        vocab, dd = state["decoder.embed_tokens.weight"].shape
        enc_layers = 1 + max(int(k[len(pre) + 15:].split(".")[0]) for k in state
                             if k.startswith(pre + "encoder.layers."))
        dec_layers = 1 + max(int(k[15:].split(".")[0]) for k in state if k.startswith("decoder.layers."))
        ffn = state[pre + "encoder.layers.0.fc1.weight"].shape[0]
        dffn = state["decoder.layers.0.fc1.weight"].shape[0]
        conv = state[pre + "encoder.pos_conv.0.weight_v"].shape
        audio_dim = state[pre + "feature_extractor_audio.proj.weight"].shape[1]
        widths = tuple(state[pre + f"feature_extractor_video.resnet.trunk.layer{i}.0.conv1.weight"].shape[0]
                       for i in range(1, 5))
    except (KeyError, ValueError) as e:
        raise TfgbenchError(f"{where}: not an AV-HuBERT seq2seq checkpoint (missing {e} in its "
                            "state dict; expected encoder.w2v_model.* and decoder.* keys)") from e
    heads_default = {768: 12, 1024: 16}.get(d, max(1, d // 64))
    dheads_default = {768: 4, 1024: 8}.get(dd, max(1, dd // 64))
    share = bool(_get(m, "share_decoder_input_output_embed", "decoder.embed_out" not in state))
    return AVHubertConfig(
        encoder_layers=enc_layers, encoder_embed_dim=d, encoder_ffn_embed_dim=ffn,
        encoder_attention_heads=int(_get(em, "encoder_attention_heads", heads_default)),
        layer_norm_first=bool(_get(em, "layer_norm_first", True)),
        conv_pos=conv[2], conv_pos_groups=d // conv[1], audio_feat_dim=audio_dim,
        modality_fuse=str(_get(em, "modality_fuse", "concat")),
        masking_type=str(_get(em, "masking_type", "input")),
        resnet_relu_type=str(_get(em, "resnet_relu_type", "prelu")), resnet_widths=widths,
        decoder_layers=dec_layers, decoder_embed_dim=dd, decoder_ffn_embed_dim=dffn,
        decoder_attention_heads=int(_get(m, "decoder_attention_heads", dheads_default)),
        decoder_normalize_before=bool(_get(m, "decoder_normalize_before", "decoder.layer_norm.weight" in state)),
        decoder_learned_pos=bool(_get(m, "decoder_learned_pos", False)),
        share_decoder_input_output_embed=share,
        no_scale_embedding=bool(_get(m, "no_scale_embedding", True)),
        max_target_positions=int(_get(m, "max_target_positions", 2048)), vocab_size=vocab)


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """``load_state_dict`` that reports missing / unexpected / mis-shaped keys by name."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        def show(xs: list[str]) -> str:
            return ", ".join(xs[:5]) + (f" ... ({len(xs)} in all)" if len(xs) > 5 else "")
        raise TfgbenchError(f"{where}: state dict does not match the model. missing: {show(missing) or '-'}; "
                            f"unexpected: {show(unexpected) or '-'}; shape: {show(shapes) or '-'}")
    model.load_state_dict(state, strict=True)


def load_fairseq_avhubert(path: str | Path, spm: str | Path | None = None
                          ) -> tuple[AVHubertSeq2Seq, TextCodec, AVHubertConfig]:
    """Build the model and text codec from a fairseq AV-HuBERT seq2seq ``.pt`` file."""
    from tfgbench.readers.fairseq_checkpoint import PickledObject, load_fairseq_checkpoint

    ckpt = load_fairseq_checkpoint(path)
    where = str(path)
    state = {k: v for k, v in ckpt.model.items() if not k.startswith(PRETRAIN_ONLY)}
    cfg = config_from_fairseq(ckpt.cfg, state, where)
    tokenizer = sentencepiece_from_task_state(ckpt.task_state, where)
    if tokenizer is None and spm is not None:
        tokenizer = SentencePieceTokenizer.from_file(spm)
    td = ckpt.task_state.get("target_dictionary")
    if isinstance(td, PickledObject):
        dictionary = Dictionary.from_fairseq_state(td.state, where)
    elif tokenizer is not None:
        dictionary = Dictionary.from_sentencepiece(tokenizer.sp)
    else:
        raise MissingResourceError(
            f"{where}: the checkpoint has no target dictionary and no embedded tokenizer, and no "
            f"SentencePiece model was given (--spm FILE or $TFGBENCH_AVHUBERT_SPM). It comes from {SPM_ORIGIN}.")
    if len(dictionary) != cfg.vocab_size:
        raise TfgbenchError(f"{where}: the dictionary has {len(dictionary)} symbols but the decoder has "
                            f"{cfg.vocab_size} outputs (wrong SentencePiece model?)")
    cfg.pad_index = dictionary.pad
    model = AVHubertSeq2Seq(cfg)
    load_state_strict(model, state, where)
    # decoding needs only the dictionary (fairseq's SentencepieceBPE.decode never calls sentencepiece)
    return model, TextCodec(dictionary, tokenizer or _PieceDecoder()), cfg


class _PieceDecoder(SentencePieceTokenizer):
    """SentencePiece-style decoding without a model (encoding needs the real model)."""

    def __init__(self) -> None:
        super().__init__(None)

    def encode(self, text: str) -> list[str]:
        raise MissingResourceError(f"encoding text needs the SentencePiece model ({SPM_ORIGIN}); "
                                   "pass --spm FILE or set $TFGBENCH_AVHUBERT_SPM")


# ------------------------------------------------------------------------------ our safetensors

def save_avhubert(path: str | Path, model: AVHubertSeq2Seq, dictionary: Dictionary, **metadata: Any) -> Path:
    """Write our reader: weights + config + dictionary symbols + tokenizer kind ("word")."""
    from tfgbench.checkpoints import save_checkpoint

    return save_checkpoint(path, model.state_dict(), model.cfg.to_dict(), symbols=dictionary.symbols,
                           tokenizer="word", **metadata)


def load_safetensors_avhubert(path: str | Path) -> tuple[AVHubertSeq2Seq, TextCodec, AVHubertConfig]:
    from tfgbench.checkpoints import load_checkpoint

    state, config, meta = load_checkpoint(path)
    if "symbols" not in meta or meta.get("tokenizer") != "word":
        raise TfgbenchError(f"{path}: not an AV-HuBERT reader checkpoint (no dictionary in its metadata)")
    cfg = AVHubertConfig.from_dict(config)
    model = AVHubertSeq2Seq(cfg)
    state = {k: v for k, v in state.items() if not k.startswith(AVSYNC_PREFIX)}
    load_state_strict(model, state, str(path))
    return model, TextCodec(Dictionary(meta["symbols"]), WordTokenizer()), cfg


def load_avhubert_reader(path: str | Path, *, spm: str | Path | None = None, device: str = "cpu",
                         decode: DecodeSettings | None = None, batch_size: int = 4) -> AVHubertReader:
    """A reader from a fairseq ``.pt`` (official) or a tfgbench ``.safetensors`` file."""
    from tfgbench.paths import sha256_file

    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"{path}: AV-HuBERT reader checkpoint not found")
    with open(path, "rb") as f:
        head = f.read(9)
    is_safetensors = path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == b"{")
    loader = load_safetensors_avhubert if is_safetensors else load_fairseq_avhubert
    model, codec, _ = loader(path) if is_safetensors else loader(path, spm)
    return AVHubertReader(model, codec, decode=decode, device=device, sha256=sha256_file(path),
                          batch_size=batch_size)


def random_avhubert_reader(size: str = "tiny", *, device: str = "cpu", beam: int = 50,
                           seed: int = 0) -> AVHubertReader:
    """Random weights at ``tiny`` / ``base`` / ``large`` size with a placeholder vocabulary
    (benchmarks and tests)."""
    torch.manual_seed(seed)
    cfg = getattr(AVHubertConfig, size)()
    dictionary = Dictionary.from_pieces(f"w{i}" for i in range(cfg.vocab_size - 4))
    return AVHubertReader(AVHubertSeq2Seq(cfg), TextCodec(dictionary, WordTokenizer()),
                          decode=DecodeSettings(beam=beam), device=device, sha256="random")
