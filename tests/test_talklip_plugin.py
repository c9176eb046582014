"""The ``talklip`` plugin: pixels outside the face boxes are the sample's own; official ``.pth``
files run through it; the shipped tiny checkpoint runs end to end through the harness on synthetic
test clips, its mouths closer to the truth with the clip's own audio than with another's."""

from __future__ import annotations

import numpy as np
import torch
from conftest import face_frames, tone

from baselines.talklip.checkpoint import save_talklip
from baselines.talklip.model import TalkLipConfig, build_talklip
from baselines.talklip.plugin import TalkLipModel
from tfgbench.data.sample import Sample


def _sample(frames: int = 12) -> Sample:
    video = face_frames(frames, size=128)
    boxes = np.tile(np.array([30, 20, 100, 110]), (frames, 1))
    boxes[:, 0] += np.arange(frames) % 3            # boxes move a little
    return Sample(id="astronaut", frames=video, audio=tone(frames), transcript="bin blue", boxes=boxes).validate()


def _outside(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.ones(shape[:3], bool)
    for t, (x1, y1, x2, y2) in enumerate(boxes):
        mask[t, y1:y2, x1:x2] = False
    return mask


def test_inference_changes_only_the_face_boxes(tmp_path):
    torch.manual_seed(0)
    config = TalkLipConfig.for_size("tiny")
    path = save_talklip(tmp_path / "g.safetensors", build_talklip(config), config, training_data="LRS2 train split")
    sample = _sample()
    out = TalkLipModel(checkpoint=path).generate(sample)
    assert out.shape == sample.frames.shape and out.dtype == np.uint8
    outside = _outside(sample.boxes, out.shape)
    assert np.array_equal(out[outside], sample.frames[outside])
    assert np.abs(out[~outside].astype(int) - sample.frames[~outside]).mean() > 1    # the faces were re-drawn


def test_official_checkpoint_runs_through_the_plugin(tmp_path):
    from tfgbench.paths import sha256_file

    torch.manual_seed(1)
    state = build_talklip(TalkLipConfig.for_size("tiny")).state_dict()
    path = tmp_path / "talklip_official.pth"
    torch.save({"state_dict": state, "optimizer": None, "global_step": 1, "global_epoch": 0}, path)
    model = TalkLipModel(checkpoint=path)
    sample = _sample(8)
    batch = model.generate_batch([sample, _sample(5)])
    assert [b.shape for b in batch] == [sample.frames.shape, (5, 128, 128, 3)]
    assert model.info.checkpoint_sha256 == sha256_file(path)
    assert model._config.channel_order == "bgr" and "synthetic" not in model.info.training_data


def test_shipped_tiny_checkpoint_end_to_end(synthetic_test_clips, tmp_path):
    from tfgbench.data.synthetic import SyntheticDataset
    from tfgbench.runner import RunSpec, run
    from tfgbench.store import Store

    model = TalkLipModel()
    assert model.default_checkpoint.is_file(), "baselines/talklip/weights/talklip-tiny.safetensors must ship"
    assert "synthetic" in model.info.training_data
    spec = RunSpec(model="talklip", dataset="synthetic", data_root=str(synthetic_test_clips), limit=3,
                   metrics=["psnr"], workdir=str(tmp_path / "work"))
    summary = run(spec, model=model, progress=False, log=lambda line: None)
    assert summary.samples == 3 and not summary.failed
    with Store(tmp_path / "work" / "results.sqlite") as store:
        psnr = [r.value for r in store.rows("synthetic") if r.measure == "psnr"]
    assert len(psnr) == 3 and min(psnr) > 18

    # the mouth follows the audio: closer to the ground truth with the clip's own audio than with
    # another clip's audio (the shuffled-audio control; the tiny model's margin is small, ~0.5 %)
    ds = SyntheticDataset(synthetic_test_clips, split="test")
    samples = [ds.load(i) for i in ds.ids()[:3]]
    own = model.generate_batch(samples)
    swapped = [Sample(s.id, s.frames, np.resize(o.audio, s.audio.shape), s.transcript, s.boxes, s.path, s.meta)
               for s, o in zip(samples, samples[1:] + samples[:1])]
    other = model.generate_batch(swapped)

    def mouth_error(videos):
        errs = []
        for s, v in zip(samples, videos):
            for t, (x1, y1, x2, y2) in enumerate(s.meta["mouth_box"]):
                errs.append(np.abs(v[t, y1:y2, x1:x2].astype(float) - s.frames[t, y1:y2, x1:x2]).mean())
        return float(np.mean(errs))

    assert mouth_error(own) < mouth_error(other)
