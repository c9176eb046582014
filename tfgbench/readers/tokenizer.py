"""Target vocabularies of the AV-HuBERT reader: a fairseq-style :class:`Dictionary` plus a text
tokenizer (SentencePiece for official checkpoints, whitespace words for our synthetic reader).

fairseq conventions kept here:

* the dictionary starts with ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, then the pieces;
* a target sequence is ``encode(text.lower())`` followed by ``</s>``; decoding starts from ``</s>``;
* ``Dictionary.string`` joins symbols with spaces, dropping ``</s>`` and ``<pad>``;
* SentencePiece text is recovered as fairseq's ``SentencepieceBPE.decode`` does:
  ``x.replace(" ", "").replace("\u2581", " ").strip()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tfgbench.errors import MissingResourceError, TfgbenchError

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
SPM_ORIGIN = ("the AV-HuBERT repository (facebookresearch/av_hubert): the SentencePiece model that "
              "avhubert/preparation/lrs3_prepare.py writes as spm1000/spm_unigram1000.model, the one "
              "the checkpoint was fine-tuned with")


class Dictionary:
    """fairseq ``Dictionary``: index <-> symbol, with bos/pad/eos/unk indices."""

    def __init__(self, symbols: Sequence[str], bos: int = 0, pad: int = 1, eos: int = 2,
                 unk: int = 3) -> None:
        self.symbols = list(symbols)
        self.indices = {s: i for i, s in enumerate(self.symbols)}
        self.bos, self.pad, self.eos, self.unk = bos, pad, eos, unk

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dictionary) and self.symbols == other.symbols and (
            self.bos, self.pad, self.eos, self.unk) == (other.bos, other.pad, other.eos, other.unk)

    @classmethod
    def from_pieces(cls, pieces: Iterable[str]) -> Dictionary:
        """The four fairseq specials followed by ``pieces`` (duplicates and specials skipped)."""
        symbols = list(SPECIALS)
        for p in pieces:
            if p not in symbols:
                symbols.append(p)
        return cls(symbols)

    @classmethod
    def from_fairseq_state(cls, state: Any, where: str = "checkpoint") -> Dictionary:
        """Build from the pickled state (``__dict__``) of ``fairseq.data.dictionary.Dictionary``."""
        if not isinstance(state, dict) or not isinstance(state.get("symbols"), list):
            raise TfgbenchError(f"{where}: the target dictionary has no symbol list")
        return cls(state["symbols"], bos=int(state.get("bos_index", 0)), pad=int(state.get("pad_index", 1)),
                   eos=int(state.get("eos_index", 2)), unk=int(state.get("unk_index", 3)))

    @classmethod
    def from_sentencepiece(cls, sp: Any) -> Dictionary:
        """fairseq's dictionary for a SentencePiece model: specials + every normal piece."""
        pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())
                  if not (sp.is_control(i) or sp.is_unknown(i))]
        return cls.from_pieces(pieces)

    def index(self, symbol: str) -> int:
        return self.indices.get(symbol, self.unk)

    def encode(self, pieces: Sequence[str], append_eos: bool = True) -> list[int]:
        ids = [self.index(p) for p in pieces]
        return ids + [self.eos] if append_eos else ids

    def string(self, ids: Iterable[int]) -> str:
        """Symbols joined by spaces, without ``</s>``, ``<pad>`` and ``<s>``."""
        skip = {self.eos, self.pad, self.bos}
        return " ".join(self.symbols[i] for i in (int(i) for i in ids) if i not in skip)


class WordTokenizer:
    """Whitespace words (the synthetic reader's vocabulary: the 51 GRID words)."""

    kind = "word"

    def encode(self, text: str) -> list[str]:
        return text.lower().split()

    def decode(self, symbols: str) -> str:
        return " ".join(symbols.split())


class SentencePieceTokenizer:
    """A SentencePiece model, loaded from a ``.model`` file or from serialized proto bytes."""

    kind = "sentencepiece"

    def __init__(self, processor: Any) -> None:
        self.sp = processor

    @classmethod
    def from_file(cls, path: str | Path) -> SentencePieceTokenizer:
        import sentencepiece as spm

        path = Path(path)
        if not path.is_file():
            raise MissingResourceError(f"{path}: SentencePiece model not found")
        try:
            return cls(spm.SentencePieceProcessor(model_file=str(path)))
        except Exception as e:  # sentencepiece raises OSError/RuntimeError on bad files
            raise TfgbenchError(f"{path}: not a SentencePiece model ({e})") from e

    @classmethod
    def from_proto(cls, proto: bytes, where: str = "checkpoint") -> SentencePieceTokenizer:
        import sentencepiece as spm

        try:
            return cls(spm.SentencePieceProcessor(model_proto=proto))
        except Exception as e:
            raise TfgbenchError(f"{where}: the embedded SentencePiece model cannot be read ({e})") from e

    def encode(self, text: str) -> list[str]:
        return list(self.sp.encode(text.lower(), out_type=str))

    def decode(self, symbols: str) -> str:
        return symbols.replace(" ", "").replace("\u2581", " ").strip()


Tokenizer = WordTokenizer | SentencePieceTokenizer


class TextCodec:
    """Dictionary + tokenizer: text <-> target ids (with ``</s>`` appended on encode)."""

    def __init__(self, dictionary: Dictionary, tokenizer: Tokenizer) -> None:
        self.dictionary = dictionary
        self.tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return self.dictionary.encode(self.tokenizer.encode(text))

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode(self.dictionary.string(ids))


def sentencepiece_from_task_state(task_state: dict[str, Any], where: str) -> SentencePieceTokenizer | None:
    """The tokenizer a released checkpoint carries in ``task_state['s2s_tokenizer']`` (a pickled
    fairseq ``SentencepieceBPE`` whose ``sp`` holds the serialized model proto: bytes for
    sentencepiece < 0.2, ``{'model_proto': bytes}`` after), or ``None``."""
    bpe = task_state.get("s2s_tokenizer")
    sp = getattr(bpe, "state", None)
    sp = sp.get("sp") if isinstance(sp, dict) else None
    proto = getattr(sp, "state", None)
    if isinstance(proto, dict):  # sentencepiece >= 0.2 pickles a dict holding 'model_proto'
        proto = proto.get("model_proto")
    if isinstance(proto, (bytes, bytearray)) and proto:
        return SentencePieceTokenizer.from_proto(bytes(proto), where)
    return None
