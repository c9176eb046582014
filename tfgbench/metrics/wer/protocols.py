"""WER protocols: which reader, which frames, which decoding, which averaging.

Per sample every protocol stores ``wer = edits / reference words`` with ``num = edits`` and
``den = reference words`` (:mod:`tfgbench.metrics.wer.text`), so corpus WER stays exact whatever
the averaging. Dataset value: *corpus* protocols pool (``sum(edits) / sum(words)``, AV-HuBERT's
``infer_s2s.py``), *per-utterance* protocols average per-sample WERs (TalkLip's
``teacher_force_wer.py``). WER1 / WER2 of the paper are different protocols and never mixed.

Bad input (error rows, never a crashed run): empty reference transcript
(:class:`~tfgbench.metrics.wer.text.EmptyTranscriptError`), a video with no frames
(:class:`~tfgbench.errors.SampleError`), frames smaller than the crop, missing mouth boxes or
landmarks (:class:`~tfgbench.metrics.wer.preprocess.PreprocessError`). A missing reader checkpoint
or tokenizer is a :class:`~tfgbench.errors.MissingResourceError` when the metric is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfgbench.metrics.base import Measure, ProtocolSpec

TALKLIP_OBSERVER1_ORIGIN = ("TalkLip's README, 'Lip reading observer 1' (AV-HuBERT large fine-tuned on LRS2): "
                            "https://drive.google.com/file/d/1wOsiXKLOeScrU6XuzebYA6Y-9ncd8-le/view")
AVHUBERT_VSR_ORIGIN = ("the AV-HuBERT model zoo (facebookresearch/av_hubert README, 'Finetuned Models for "
                       "Visual Speech Recognition'), e.g. large_vox_433h.pt")


@dataclass(frozen=True)
class WERConfig:
    """``reader``: ``avhubert`` or ``conformer``. ``frames``: ``full-frame`` (centre 88),
    ``conformer`` (224 resize, centre 112), ``roi`` (landmark-aligned 96x96), ``synthetic-mouth``.
    ``weights``: ``official`` (user's file) or ``synthetic`` (shipped). ``corpus``: pooled WER."""

    reader: str
    frames: str
    weights: str
    corpus: bool
    env: str = ""
    filename: str = ""
    origin: str = ""
    beam: int = 50


CONFIGS: dict[str, WERConfig] = {
    "wer/talklip-avhubert": WERConfig("avhubert", "full-frame", "official", True, "TFGBENCH_AVHUBERT",
                                      "lip_reading_observer1.pt", TALKLIP_OBSERVER1_ORIGIN),
    "wer/talklip-conformer": WERConfig("conformer", "conformer", "official", False),
    "wer/avhubert-roi": WERConfig("avhubert", "roi", "official", True, "TFGBENCH_AVHUBERT_VSR",
                                  "large_vox_433h.pt", AVHUBERT_VSR_ORIGIN),
    "wer/synthetic-avhubert": WERConfig("avhubert", "synthetic-mouth", "synthetic", True),
    "wer/synthetic-conformer": WERConfig("conformer", "synthetic-mouth", "synthetic", False),
}


def _measure(corpus: bool) -> tuple[Measure, ...]:
    return (Measure("wer", "WER", higher_is_better=False, pooled=corpus, percent=True, digits=1),)


_TEXT = "NFKC, lower case, whitespace split; punctuation kept (as both official scorers)"
_AVH_DECODE = ("fairseq beam search (s2s_decode.yaml): beam 50, lenpen 1.0, max_len_a 1.0, max_len_b 0, "
               "min_len 1; max_len from each clip's own length")
_COUNTS = "jiwer word alignment; stored per sample: edits (S+D+I) and reference words"
_SYNTH_FRAMES = ("per-frame ground-truth mouth box of the synthetic corpus (sample.meta['mouth_box']; generated "
                 "videos keep the head pose, so the box applies to them), edge-padded, gray, INTER_AREA to 48x48, "
                 "centre 44x44, /255, (x-0.421)/0.165")

PROTOCOLS = (
    ProtocolSpec(
        "wer/talklip-avhubert", _measure(True),
        "WER1 of TalkLip: AV-HuBERT observer 1 on the full frame, centre 88 crop, beam 50, corpus WER",
        {"reader": "TalkLip 'Lip reading observer 1' (AV-HuBERT Large, LRS2), user-provided fairseq .pt",
         "frames": "whole frame, gray (0.299R+0.587G+0.114B), /255, centre crop 88 (int((W-88)/2)), "
                   "(x-0.421)/0.165, video only (audio features zero)",
         "decoding": _AVH_DECODE, "text": _TEXT, "counts": _COUNTS,
         "dataset value": "corpus WER = sum(edits) / sum(reference words)",
         "reference": "TalkLip evaluation/ + AV-HuBERT infer_s2s.py"},
        frozenset({"transcript"})),
    ProtocolSpec(
        "wer/talklip-conformer", _measure(False),
        "WER2 of TalkLip: Conformer observer 2, 224 resize + centre 112, teacher forcing, per-utterance mean",
        {"reader": "TalkLip 'Lip reading observer 2' (deep_avsr front end + ESPnet conformer, char vocabulary)",
         "frames": "gray, cv2.resize to 224x224 (bilinear, uint8), [56:168] crop, /255, (x-0.4161)/0.1688",
         "decoding": "teacher forcing: argmax at each reference position (reference given to the decoder)",
         "text": _TEXT, "counts": _COUNTS,
         "dataset value": "mean over utterances of edits / reference words",
         "reference": "TalkLip evaluation/teacher_force_wer.py"},
        frozenset({"transcript"})),
    ProtocolSpec(
        "wer/avhubert-roi", _measure(True),
        "AV-HuBERT VSR as published: landmark-aligned 96x96 mouth ROI, centre 88, beam 50, corpus WER",
        {"reader": "an official AV-HuBERT VSR checkpoint (default large_vox_433h.pt), user-provided",
         "frames": "96x96 mouth ROIs (frames already 96x96 are used as they are; otherwise 68-point "
                   "landmarks in sample.meta['landmarks'] + 20words_mean_face.npy: 12-frame landmark "
                   "smoothing, similarity transform of points 33,36,39,42,45 to the mean face in 256x256, "
                   "96x96 around landmarks 48-67; the ROI video re-encode is not reproduced), gray, /255, "
                   "centre 88, (x-0.421)/0.165",
         "decoding": _AVH_DECODE, "text": _TEXT, "counts": _COUNTS,
         "dataset value": "corpus WER = sum(edits) / sum(reference words)",
         "reference": "AV-HuBERT preparation/align_mouth.py + infer_s2s.py"},
        frozenset({"transcript"})),
    ProtocolSpec(
        "wer/synthetic-avhubert", _measure(True),
        "synthetic corpus: tiny AV-HuBERT seq2seq trained on its train split, mouth-box crop, beam 50, corpus WER",
        {"reader": "tfgbench/weights/avhubert-synthetic.safetensors (shipped; word vocabulary of the GRID grammar)",
         "frames": _SYNTH_FRAMES, "decoding": _AVH_DECODE, "text": _TEXT, "counts": _COUNTS,
         "dataset value": "corpus WER = sum(edits) / sum(reference words)"},
        frozenset({"transcript"})),
    ProtocolSpec(
        "wer/synthetic-conformer", _measure(False),
        "synthetic corpus: tiny Conformer reader trained on its train split, mouth-box crop, teacher forcing, "
        "per-utterance mean",
        {"reader": "tfgbench/weights/conformer-synthetic.safetensors (shipped)",
         "frames": _SYNTH_FRAMES,
         "decoding": "teacher forcing: argmax at each reference position", "text": _TEXT, "counts": _COUNTS,
         "dataset value": "mean over utterances of edits / reference words"},
        frozenset({"transcript"})),
)
