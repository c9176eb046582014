"""WER metric: counts against an independent Levenshtein, aggregation, crops, bad input, CLI."""

from __future__ import annotations

import argparse
import json
import random

import numpy as np
import pytest
import torch
from conftest import levenshtein

from tfgbench.data.sample import Sample
from tfgbench.errors import MissingResourceError, SampleError, TfgbenchError
from tfgbench.metrics.base import aggregate
from tfgbench.metrics.wer import WER, EmptyTranscriptError, normalize_text, word_errors
from tfgbench.metrics.wer import preprocess as pp
from tfgbench.readers.base import LipReader


def test_word_errors_match_independent_levenshtein():
    rng = random.Random(0)
    vocab = ["bin", "blue", "at", "f", "two", "now", "don't", "Place"]
    for _ in range(200):
        ref = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 8)))
        hyp = "  ".join(rng.choice(vocab) for _ in range(rng.randint(0, 8)))
        e = word_errors(ref, hyp)
        r, h = ref.lower().split(), hyp.lower().split()
        assert e.edits == levenshtein(r, h)
        assert e.words == len(r)
        assert e.substitutions + e.deletions + e.insertions == e.edits


def test_normalisation_keeps_apostrophes_and_ignores_case():
    assert normalize_text("  DON'T  Stop\tnow ") == "don't stop now"
    assert word_errors("DON'T stop", "don't STOP").edits == 0
    assert word_errors("dont stop", "don't stop").edits == 1


def test_empty_reference_is_an_error():
    with pytest.raises(EmptyTranscriptError, match="clip7"):
        word_errors("  ", "bin blue", "clip7")


class FixedReader(LipReader):
    """Returns preset hypotheses; records what it was given."""

    def __init__(self, hyps: dict[int, str], teacher_forced: bool = False):
        self.hyps, self.seen, self.sha256 = hyps, [], "fixed"
        self.teacher_forced = teacher_forced

    def transcribe(self, videos, references=None):
        self.seen.append(([tuple(v.shape) for v in videos], references))
        return [self.hyps[int(v.shape[0])] for v in videos]


def _sample(t: int, text: str | None, size: int = 96, boxes: bool = True) -> Sample:
    frames = np.full((t, size, size, 3), 100, np.uint8)
    meta = {"mouth_box": np.tile([30, 50, 66, 86], (t, 1))} if boxes else {}
    return Sample(id=f"s{t}", frames=frames, audio=np.zeros(t * 640, np.float32), transcript=text, meta=meta)


@pytest.mark.parametrize("protocol,pooled", [("wer/talklip-avhubert", True), ("wer/talklip-conformer", False),
                                             ("wer/synthetic-avhubert", True), ("wer/synthetic-conformer", False)])
def test_scores_and_aggregation(protocol, pooled):
    reader = FixedReader({5: "bin blue at f two", 7: "lay red"})
    size = 224 if "conformer" in protocol and "talklip" in protocol else 96
    metric = WER(protocol, reader=reader)
    s1, s2 = _sample(5, "bin blue at f two now", size), _sample(7, "Lay green with x", size)
    rows = []
    for s in (s1, s2):
        sc = metric.score(s, s.frames)["wer"]
        rows.append((sc.value, sc.num, sc.den))
    assert rows[0][1:] == (1.0, 6.0) and rows[1][1:] == (3.0, 4.0)
    measure = metric.spec.measures[0]
    assert measure.pooled is pooled and measure.key == "wer"
    want = (1 + 3) / (6 + 4) if pooled else (1 / 6 + 3 / 4) / 2
    assert aggregate(measure, rows) == pytest.approx(want)
    shape = reader.seen[0][0][0]
    expected = {"wer/talklip-avhubert": (5, 88, 88), "wer/talklip-conformer": (5, 112, 112)}.get(protocol, (5, 44, 44))
    assert shape == expected
    assert reader.seen[0][1] == ["bin blue at f two now"]       # normalised reference (teacher forcing)


def test_bad_inputs_are_clear_errors_and_batches_isolate_them():
    metric = WER("wer/synthetic-avhubert", reader=FixedReader({5: "a b", 6: "c"}))
    with pytest.raises(EmptyTranscriptError):
        metric.score(_sample(5, ""), _sample(5, "").frames)
    with pytest.raises(EmptyTranscriptError):
        metric.score(_sample(5, None), _sample(5, None).frames)
    with pytest.raises(SampleError, match="no frames"):
        metric.score(_sample(5, "a b"), np.zeros((0, 96, 96, 3), np.uint8))
    with pytest.raises(pp.PreprocessError, match="mouth boxes"):
        metric.score(_sample(5, "a b", boxes=False), _sample(5, "a b").frames)
    small = WER("wer/talklip-avhubert", reader=FixedReader({5: "a"}))
    with pytest.raises(pp.PreprocessError, match="smaller than the 88x88"):
        small.score(_sample(5, "a", size=64), _sample(5, "a", size=64).frames)
    good, empty = _sample(5, "a b"), _sample(6, " ")
    out = metric.score_batch([good, empty], [good.frames, empty.frames])
    assert out[0]["wer"].value == 0.0 and isinstance(out[1], EmptyTranscriptError)


def test_missing_checkpoints_name_file_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("TFGBENCH_AVHUBERT", raising=False)
    with pytest.raises(MissingResourceError) as e:
        WER("wer/talklip-avhubert")
    msg = str(e.value)
    assert "lip_reading_observer1.pt" in msg and "TFGBENCH_AVHUBERT" in msg and "--reader" in msg
    assert "TalkLip" in msg
    with pytest.raises(MissingResourceError, match="large_vox_433h.pt"):
        WER("wer/avhubert-roi")
    with pytest.raises(MissingResourceError, match="train_synthetic_avhubert"):
        WER("wer/synthetic-avhubert", weights=tmp_path / "nope.safetensors")


def test_full_frame_crop_offsets_and_normalisation():
    t, h, w = 2, 100, 97
    val = (np.arange(h)[:, None] + 2 * np.arange(w)[None]) % 256
    frames = np.repeat(np.repeat(val[None, ..., None], 3, -1), t, 0).astype(np.uint8)  # R=G=B: gray exact
    out = pp.avhubert_full_frame(frames)
    dh, dw = (h - 88) // 2, (w - 88) // 2
    want = (val[dh:dh + 88, dw:dw + 88] / 255.0 - 0.421) / 0.165
    assert out.shape == (t, 88, 88) and np.allclose(out[1], want, atol=1e-5)


def test_conformer_crop_of_uniform_frame():
    out = pp.talklip_conformer(np.full((3, 160, 130, 3), 77, np.uint8))
    assert out.shape == (3, 112, 112) and np.allclose(out, (77 / 255 - 0.4161) / 0.1688, atol=1e-5)


def test_synthetic_crop_follows_the_box_and_pads_outside():
    frames = np.zeros((2, 128, 128, 3), np.uint8)
    frames[0, 40:80, 20:60] = 255                       # a white square exactly in frame 0's box
    frames[1, 0:20, 108:128] = 255
    boxes = np.array([[20, 40, 60, 80], [108, -20, 148, 20]])   # frame 1's box leaves the frame
    out = pp.synthetic_mouth_clips(frames, boxes)
    assert out.shape == (2, 44, 44)
    white, black = (1 - 0.421) / 0.165, (0 - 0.421) / 0.165
    assert np.allclose(out[0], white, atol=1e-5)
    assert out[1, 30, 8] == pytest.approx(white) and out[1, 8, 30] > black   # edge padding repeats white


def test_roi_frames_pass_through_and_landmark_alignment():
    roi = np.repeat(np.arange(96, dtype=np.uint8)[None, :, None].repeat(96, 0)[None], 2, 0).repeat(3, -1)
    out = pp.avhubert_roi(roi, None, None)
    assert np.allclose(out[0, 0], (np.arange(4, 92) / 255 - 0.421) / 0.165, atol=1e-5)
    with pytest.raises(pp.PreprocessError, match="landmarks"):
        pp.avhubert_roi(np.zeros((2, 200, 200, 3), np.uint8), None, None)
    # landmarks equal to the mean face: identity transform, ROI centred on the mouth points
    rng = np.random.default_rng(0)
    mean_face = rng.uniform(60, 200, (68, 2))
    mean_face[48:68] = rng.uniform(110, 150, (20, 2))
    img = np.zeros((3, 256, 256, 3), np.uint8)
    cx, cy = np.rint(mean_face[48:68].mean(0)).astype(int)
    img[:, cy - 48:cy + 48, cx - 48:cx + 48] = 200
    out = pp.avhubert_roi(img, np.repeat(mean_face[None], 3, 0), mean_face)
    assert out.shape == (3, 88, 88)
    assert np.abs(out - (199 / 255 - 0.421) / 0.165).max() < 0.05     # warp rounding: 199 or 200


def _cli(argv):
    from tfgbench.metrics.wer import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


def test_cli_json_with_a_tiny_reader(tmp_path, capsys):
    from tfgbench.media.io import write_video
    from tfgbench.readers.avhubert import AVHubertConfig, AVHubertSeq2Seq
    from tfgbench.readers.avhubert_reader import save_avhubert
    from tfgbench.readers.tokenizer import Dictionary

    torch.manual_seed(0)
    words = ["bin", "blue", "at", "f", "two", "now"]
    cfg = AVHubertConfig.tiny(encoder_layers=1, decoder_layers=1, vocab_size=len(words) + 4)
    reader_path = save_avhubert(tmp_path / "r.safetensors", AVHubertSeq2Seq(cfg), Dictionary.from_pieces(words))
    video = tmp_path / "v.mp4"
    write_video(video, np.random.default_rng(0).integers(0, 255, (10, 64, 64, 3), dtype=np.uint8))
    rc = _cli([str(video), "--text", "Bin blue at F two now", "--protocol", "wer/synthetic-avhubert",
               "--reader", str(reader_path), "--mouth-box", "10,10,50,50", "--json"])
    row = json.loads(capsys.readouterr().out)
    assert rc == 0 and set(row) == {"wer", "edits", "words", "hypothesis", "protocol"}
    assert row["words"] == 6 and row["wer"] == pytest.approx(row["edits"] / 6)
    assert row["edits"] == levenshtein("bin blue at f two now".split(), row["hypothesis"].split())
    with pytest.raises(TfgbenchError, match="mouth boxes"):
        _cli([str(video), "--text", "bin", "--protocol", "wer/synthetic-avhubert", "--reader", str(reader_path)])
    with pytest.raises(EmptyTranscriptError):
        _cli([str(video), "--text", " ", "--protocol", "wer/synthetic-avhubert", "--reader", str(reader_path),
              "--mouth-box", "10,10,50,50"])


def test_metric_and_cli_modules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, tfgbench.metrics.wer, tfgbench.metrics.wer.cli, tfgbench.metrics.wer.protocols; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
