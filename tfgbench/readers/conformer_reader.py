"""Conformer lip readers for the WER metric: TalkLip's teacher-forced observer 2, our synthetic
reader (same layout at tiny size), and Auto-AVSR (free greedy decoding).

Teacher-forced scoring, as TalkLip's ``teacher_force_wer.py`` does it, for a reference of ``L``
characters ``y_1..y_L`` (TalkLip's 40-symbol vocabulary, upper case)::

    logits = decoder([sos, y_1, ..., y_L], encoder(video))      # (L + 1, 40)
    pred   = argmax(logits)[:L]; drop pred[-1] if it is <EOS>
    words  = split pred at spaces (an empty first word counts; later empty words do not)
    WER    = edit_distance(words, reference words) / len(reference words)   # per utterance

The encoder input is the frame features zero-padded (centred) to
``max(T, L + number of doubled letters)`` steps, TalkLip's CTC-length rule. The WER metric
averages per-utterance WER (mean over clips).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from tfgbench.errors import TfgbenchError
from tfgbench.paths import find_file, sha256_file
from tfgbench.readers.base import LipReader

if TYPE_CHECKING:
    import torch

    from tfgbench.readers.conformer import ConformerVSR

# TalkLip's char_dict: index i -> character (0 = CTC blank, 39 = <EOS>/<SOS>).
TALKLIP_CHARS = "_ ETOAINSHRLDUYWGCMFBP'VKJXQZ0192856734"
SPACE, EOS = 1, 39
UNKNOWN = "#"  # written for symbols that are not characters (blank, a mid-sentence <EOS>)

SYNTHETIC_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "conformer-synthetic.safetensors"
OBSERVER_ORIGIN = ("TalkLip's 'Lip reading observer 2' (conformer.pt), linked from "
                   "github.com/Sxjdwang/TalkLip evaluation/README.md: "
                   "https://drive.google.com/file/d/16tpyaXLLTYUnIBT_YEWQ5ui6xUkBGcpM")
UNITS_ORIGIN = "github.com/mpc001/auto_avsr, file spm/unigram/unigram5000_units.txt"


def find_observer(given: str | Path | None = None, flag: str | None = None) -> Path:
    """Locate TalkLip's observer 2: ``given``, ``$TFGBENCH_CONFORMER_OBSERVER``, or
    ``$TFGBENCH_HOME/weights/conformer.pt``; a :class:`MissingResourceError` says where it looked."""
    return find_file("TalkLip's Conformer lip-reading observer (observer 2)", given,
                     "TFGBENCH_CONFORMER_OBSERVER", "conformer.pt", OBSERVER_ORIGIN, flag)


def encode_reference(text: str, where: str = "reference") -> list[int]:
    """Upper-case ``text`` and map it to TalkLip character ids (A-Z, 0-9, apostrophe, space)."""
    ids = []
    for ch in text.upper():
        i = TALKLIP_CHARS.find(ch)
        if i <= 0:
            raise TfgbenchError(f"{where}: character {ch!r} is not in the conformer reader's "
                                "vocabulary (A-Z, 0-9, apostrophe, space)")
        ids.append(i)
    if not ids:
        raise TfgbenchError(f"{where}: empty reference transcript (a teacher-forced reader needs one)")
    return ids


def required_length(ids: Sequence[int]) -> int:
    """TalkLip's ``req_input_length``: ``L`` plus one per character equal to its predecessor."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:]) if a == b)


def official_words(pred: Sequence[int]) -> list[str]:
    """Words of a predicted id sequence split as ``asrMetrics.compute_both`` splits them: the
    first word is kept even when empty (written ``#``), later empty words are dropped."""
    segments: list[list[int]] = [[]]
    for i in pred:
        if i == SPACE:
            segments.append([])
        else:
            segments[-1].append(i)
    words = [segments[0]] + [s for s in segments[1:] if s]

    def spell(w: list[int]) -> str:
        return "".join(TALKLIP_CHARS[i].lower() if 1 < i < EOS else UNKNOWN for i in w) or UNKNOWN

    return [spell(w) for w in words]


def teacher_forced_hypothesis(argmax: Sequence[int], n_ref: int) -> str:
    """Hypothesis text from the per-position argmax of a teacher-forced decoder pass."""
    pred = list(argmax[:n_ref])
    if pred and pred[-1] == EOS:
        pred = pred[:-1]
    return " ".join(official_words(pred))


def _check_clips(videos: Sequence[torch.Tensor], size: int, name: str) -> None:
    import torch

    for k, v in enumerate(videos):
        if not isinstance(v, torch.Tensor) or v.ndim != 3 or not v.is_floating_point():
            raise TfgbenchError(f"{name}: clip {k} must be a float (T, H, W) tensor, got "
                                f"{getattr(v, 'dtype', type(v))} {tuple(getattr(v, 'shape', ()))}")
        if tuple(v.shape[1:]) != (size, size) or v.shape[0] == 0:
            raise TfgbenchError(f"{name}: clip {k} has shape {tuple(v.shape)}; this reader expects "
                                f"(T, {size}, {size}) with T >= 1 (the WER protocol's crop)")


class _ConformerBase(LipReader):
    def __init__(self, model: ConformerVSR, device: str = "cpu", sha256: str = "random",
                 source: str = "random weights", batch_size: int = 8) -> None:
        self.model = model.to(device).eval()
        self.device, self.sha256, self.source, self.batch_size = device, sha256, source, batch_size
        self.cfg = model.cfg

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.cfg.input_size, self.cfg.input_size)

    def _batches(self, videos: Sequence[torch.Tensor]) -> list[list[int]]:
        # Similar lengths together: less padding, same results (the model masks padding).
        order = sorted(range(len(videos)), key=lambda i: videos[i].shape[0])
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _pad(self, clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        lengths = torch.tensor([c.shape[0] for c in clips], device=self.device)
        x = torch.zeros(len(clips), int(lengths.max()), *clips[0].shape[1:], device=self.device)
        for i, c in enumerate(clips):
            x[i, :c.shape[0]] = c.to(self.device, torch.float32)
        return x, lengths


class ConformerReader(_ConformerBase):
    """Teacher-forced character reader (TalkLip observer 2 layout; also our synthetic reader)."""

    teacher_forced: ClassVar[bool] = True

    @classmethod
    def from_file(cls, path: str | Path, device: str = "cpu", batch_size: int = 8) -> ConformerReader:
        reader = load_conformer_reader(path, device, batch_size=batch_size)
        if not isinstance(reader, ConformerReader):
            raise TfgbenchError(f"{path}: an Auto-AVSR checkpoint; it decodes freely, load it "
                                "with load_conformer_reader(path, units=...)")
        return reader

    def transcribe(self, videos: Sequence[torch.Tensor],
                   references: Sequence[str] | None = None) -> list[str]:
        import torch

        if references is None or len(references) != len(videos):
            raise TfgbenchError("the Conformer reader is teacher-forced: it needs one reference "
                                f"transcript per clip ({len(videos)} clips, "
                                f"{'no' if references is None else len(references)} references)")
        _check_clips(videos, self.cfg.input_size, "conformer reader")
        targets = [encode_reference(r, f"reference of clip {k}") for k, r in enumerate(references)]
        out: list[str] = [""] * len(videos)
        with torch.inference_mode():
            for idx in self._batches(videos):
                x, lengths = self._pad([videos[i] for i in idx])
                ys = [torch.tensor(targets[i], device=self.device) for i in idx]
                req = torch.tensor([required_length(targets[i]) for i in idx], device=self.device)
                hs, hl = self.model.encode(x, lengths, req)
                best = self.model.teacher_forced_logits(hs, hl, ys).argmax(-1).tolist()
                for row, i in zip(best, idx):
                    out[i] = teacher_forced_hypothesis(row, len(targets[i]))
        return out


class AutoAVSRReader(_ConformerBase):
    """Ma et al.'s Auto-AVSR VSR model, greedy attention decoding (the official decodes with a
    joint CTC/attention beam of 40, so its WER can be somewhat lower than this reader's)."""

    teacher_forced: ClassVar[bool] = False

    def __init__(self, model: ConformerVSR, units: Sequence[str], **kw: object) -> None:
        super().__init__(model, **kw)  # type: ignore[arg-type]
        self.token_list = ["<blank>", *units, "<eos>"]
        if len(self.token_list) != model.cfg.odim:
            raise TfgbenchError(f"the units list has {len(units)} pieces but the model outputs "
                                f"{model.cfg.odim} = blank + pieces + eos symbols")

    @staticmethod
    def read_units(path: str | Path | None = None) -> list[str]:
        """Pieces of ``unigram5000_units.txt`` (lines ``piece id``, ids 1..N in order)."""
        p = find_file("Auto-AVSR's SentencePiece unit list", path, "TFGBENCH_AUTO_AVSR_UNITS",
                      "unigram5000_units.txt", UNITS_ORIGIN)
        return [line.split()[0] for line in p.read_text(encoding="utf8").splitlines() if line.strip()]

    def transcribe(self, videos: Sequence[torch.Tensor],
                   references: Sequence[str] | None = None) -> list[str]:
        import torch

        _check_clips(videos, self.cfg.input_size, "Auto-AVSR reader")
        out: list[str] = [""] * len(videos)
        with torch.inference_mode():
            for idx in self._batches(videos):
                x, lengths = self._pad([videos[i] for i in idx])
                hs, hl = self.model.encode(x, lengths)
                for ids, i in zip(self.model.greedy_decode(hs, hl, int(lengths.max())), idx):
                    text = "".join(self.token_list[t] for t in ids if 0 < t < len(self.token_list) - 1)
                    out[i] = " ".join(text.replace("\u2581", " ").lower().split())
        return out


def load_conformer_reader(path: str | Path, device: str = "cpu", units: str | Path | None = None,
                          batch_size: int = 8) -> LipReader:
    """Build the right reader for a checkpoint: TalkLip ``conformer.pt`` or our safetensors ->
    :class:`ConformerReader`; Auto-AVSR ``vsr_*.pth`` -> :class:`AutoAVSRReader` (needs ``units``)."""
    from tfgbench.readers.conformer_loader import load_model

    model, meta = load_model(path)
    kw = {"device": device, "sha256": sha256_file(path), "source": str(path), "batch_size": batch_size}
    if model.cfg.layout == "auto-avsr":
        return AutoAVSRReader(model, AutoAVSRReader.read_units(units), **kw)
    if model.cfg.odim != len(TALKLIP_CHARS) + 1:
        raise TfgbenchError(f"{path}: a character reader must have {len(TALKLIP_CHARS) + 1} outputs, "
                            f"this one has {model.cfg.odim}")
    return ConformerReader(model, **kw)


def load_synthetic_reader(device: str = "cpu", path: str | Path | None = None) -> ConformerReader:
    """The shipped reader trained on the synthetic corpus (protocol ``wer/synthetic-conformer``)."""
    p = Path(path) if path is not None else SYNTHETIC_WEIGHTS
    if not p.is_file():
        from tfgbench.errors import MissingResourceError

        raise MissingResourceError(
            f"the synthetic Conformer reader's weights are missing: {p}. They ship with tfgbench; "
            "retrain them with: python -m tfgbench.readers.train_synthetic_conformer")
    return ConformerReader.from_file(p, device)


def random_conformer_reader(size: str = "tiny", device: str = "cpu", seed: int = 0) -> LipReader:
    """A reader with random weights (for speed/memory benchmarks): ``tiny``, ``observer`` or
    ``auto-avsr`` (the latter with placeholder piece names)."""
    import torch

    from tfgbench.readers.conformer import ConformerVSR, preset

    torch.manual_seed(seed)
    model = ConformerVSR(preset(size)).eval()
    if model.cfg.layout == "auto-avsr":
        return AutoAVSRReader(model, [f"p{i}" for i in range(model.cfg.odim - 2)], device=device)
    return ConformerReader(model, device=device)
