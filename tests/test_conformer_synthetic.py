"""The shipped synthetic Conformer reader (protocol wer/synthetic-conformer) reads the lips of
unseen test speakers: ground truth reads well; a frozen mouth reads at chance, i.e. like a moving
mouth that says another sentence (teacher forcing lets the grammar fill in part of each word, so
chance is below 100%)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tfgbench.data.sample import SAMPLES_PER_FRAME, Sample


@pytest.fixture(scope="module")
def wers():
    from tfgbench.data.synthetic.clip import make_clip
    from tfgbench.data.synthetic.generation import _speaker_index, speakers
    from tfgbench.metrics.wer import WER

    metric = WER("wer/synthetic-conformer")  # the shipped checkpoint
    # 16 clips of 8 test speakers, never seen in training
    clips = [make_clip(0, sp, _speaker_index(sp), u) for sp in speakers(0)["test"][:8] for u in (1, 2)]

    def sample(video, text):
        audio = np.zeros(len(video.frames) * SAMPLES_PER_FRAME, np.float32)
        return Sample(video.id, video.frames, audio, text, video.boxes, meta={"mouth_box": video.mouth_boxes})

    own = [sample(c, c.transcript) for c in clips]
    # chance: each clip's transcript read from another speaker's (real, moving) mouth
    other = [sample(clips[(i + 2) % len(clips)], c.transcript) for i, c in enumerate(clips)]
    out = {}
    for name, samples, frames in (
            ("gt", own, [c.frames for c in clips]),
            ("static", own, [np.repeat(c.frames[:1], len(c.frames), 0) for c in clips]),
            ("mismatched", other, [s.frames for s in other])):
        rows = metric.score_batch(samples, frames)
        out[name] = float(np.mean([r["wer"].value for r in rows]))  # per-utterance mean
    return out


def test_ground_truth_reads_well_and_far_better_than_a_frozen_mouth(wers):
    assert wers["gt"] < 0.35
    assert wers["static"] > wers["gt"] + 0.25


def test_a_frozen_mouth_reads_at_chance(wers):
    assert wers["mismatched"] > 0.6
    assert abs(wers["static"] - wers["mismatched"]) < 0.2


def test_shipped_checkpoint_records_how_it_was_made():
    from tfgbench.checkpoints import load_checkpoint
    from tfgbench.readers.conformer_reader import SYNTHETIC_WEIGHTS, load_synthetic_reader

    state, config, meta = load_checkpoint(SYNTHETIC_WEIGHTS)
    assert meta["command"].startswith("python -m tfgbench.readers.train_synthetic_conformer")
    assert meta["corpus"].startswith("synthetic-v")
    assert config["model"] == "conformer-vsr" and config["conformer"]["layout"] == "talklip"
    assert meta["test"]["ground-truth_wer"] < meta["test"]["static-frame_wer"]
    assert SYNTHETIC_WEIGHTS.stat().st_size < 10e6
    reader = load_synthetic_reader()
    assert reader.teacher_forced and reader.input_size == (44, 44)


def test_missing_synthetic_weights_say_how_to_retrain(tmp_path):
    from tfgbench.errors import MissingResourceError
    from tfgbench.readers.conformer_reader import load_synthetic_reader

    with pytest.raises(MissingResourceError, match="train_synthetic_conformer"):
        load_synthetic_reader(path=tmp_path / "gone.safetensors")


def test_a_few_training_steps_reduce_the_loss():
    from tfgbench.readers.conformer import ConformerVSR, preset
    from tfgbench.readers.conformer_reader import encode_reference
    from tfgbench.readers.train_synthetic_conformer import train_conformer

    torch.manual_seed(0)
    model = ConformerVSR(preset("tiny"))
    texts = ["bin blue at f two now", "set red by q nine again", "lay green in a one soon"]
    feats = [[torch.randn(40, 128)] for _ in texts]
    targets = [encode_reference(t) for t in texts]
    x = torch.nn.utils.rnn.pad_sequence([f[0] for f in feats], batch_first=True)
    lengths = torch.tensor([40, 40, 40])

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            return model.loss(None, lengths, [torch.tensor(t) for t in targets], feats=x)[0].item()

    before = loss()
    train_conformer(model, feats, targets, steps=15, batch_size=3, lr=2e-3, mask_frames=0)
    assert loss() < 0.8 * before
