"""Face detection (Haar, S3FD loader), IOU tracking and crop_scale crops."""

from __future__ import annotations

import numpy as np
import pytest


def _s3fd_official_state():
    """sfd_face.pth's keys and shapes, written out from the published layout."""
    import torch

    convs = {0: (64, 3, 3), 2: (64, 64, 3), 5: (128, 64, 3), 7: (128, 128, 3), 10: (256, 128, 3),
             12: (256, 256, 3), 14: (256, 256, 3), 17: (512, 256, 3), 19: (512, 512, 3), 21: (512, 512, 3),
             24: (512, 512, 3), 26: (512, 512, 3), 28: (512, 512, 3), 31: (1024, 512, 3), 33: (1024, 1024, 1)}
    g = torch.Generator().manual_seed(0)
    state = {}
    for i, (co, ci, k) in convs.items():
        state[f"vgg.{i}.weight"] = torch.randn(co, ci, k, k, generator=g) * (2 / (ci * k * k)) ** 0.5
        state[f"vgg.{i}.bias"] = torch.zeros(co)
    state.update({"L2Norm3_3.weight": torch.full((256,), 10.0), "L2Norm4_3.weight": torch.full((512,), 8.0),
                  "L2Norm5_3.weight": torch.full((512,), 5.0)})
    for i, (co, ci, k) in enumerate([(256, 1024, 1), (512, 256, 3), (128, 512, 1), (256, 128, 3)]):
        state[f"extras.{i}.weight"] = torch.randn(co, ci, k, k, generator=g) * 0.01
        state[f"extras.{i}.bias"] = torch.zeros(co)
    for i, ci in enumerate((256, 512, 512, 1024, 512, 256)):
        state[f"loc.{i}.weight"] = torch.randn(4, ci, 3, 3, generator=g) * 0.01
        state[f"loc.{i}.bias"] = torch.zeros(4)
        nc = 4 if i == 0 else 2
        state[f"conf.{i}.weight"] = torch.randn(nc, ci, 3, 3, generator=g) * 0.01
        state[f"conf.{i}.bias"] = torch.tensor([0.0, 0.0, 0.0, 5.0][:nc] if nc == 4 else [0.0, 5.0])
    return state


def test_s3fd_loads_official_layout_and_detects(tmp_path):
    import torch

    from tfgbench.face import get_detector
    from tfgbench.face.s3fd import S3FDDetector

    path = tmp_path / "sfd_face.pth"
    torch.save(_s3fd_official_state(), str(path))
    det = get_detector(path)
    assert isinstance(det, S3FDDetector) and len(det.sha256) == 64
    frames = np.random.default_rng(0).integers(0, 255, (2, 128, 160, 3), dtype=np.uint8)
    out = det.detect(frames)
    # biased "face" logits make every prior a confident face; NMS 0.3 then 0.1 leaves a few boxes
    assert len(out) == 2 and out[0].shape[1] == 5 and len(out[0]) >= 1
    assert (out[0][:, 4] > 0.9).all()


def test_s3fd_rejects_a_wrong_layout(tmp_path):
    import torch

    from tfgbench.errors import TfgbenchError
    from tfgbench.face.s3fd import load_s3fd

    state = _s3fd_official_state()
    state.pop("conf.5.bias")
    torch.save(state, str(tmp_path / "bad.pth"))
    with pytest.raises(TfgbenchError, match="conf.5.bias"):
        load_s3fd(tmp_path / "bad.pth")


def test_s3fd_priors_and_nms():
    from tfgbench.face.s3fd import nms, priors

    p = priors((64, 64), [(16, 16), (8, 8)])
    assert p.shape == (16 * 16 + 8 * 8, 4)
    assert p[0].tolist() == pytest.approx([0.5 / 16, 0.5 / 16, 16 / 64, 16 / 64])
    assert p[256].tolist() == pytest.approx([0.5 / 8, 0.5 / 8, 32 / 64, 32 / 64])
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    assert nms(boxes, np.array([0.9, 0.95, 0.5]), 0.3).tolist() == [1, 2]


def test_haar_finds_the_astronaut():
    skimage = pytest.importorskip("skimage")
    from tfgbench.face import get_detector

    det = get_detector()
    assert det.name == "opencv-haar"
    out = det.detect(skimage.data.astronaut()[None])
    x1, y1, x2, y2, _ = out[0][0]
    assert 150 < (x1 + x2) / 2 < 300 and 50 < (y1 + y2) / 2 < 180


def test_tracking_splits_faces_and_interpolates():
    from tfgbench.face.track import track_faces

    dets = []
    for f in range(30):
        faces = [[10 + f, 10, 60 + f, 60, 0.99]]
        if f != 7:  # a missed detection on frame 7 is interpolated
            faces.append([100, 100, 150, 150, 0.98])
        dets.append(np.array(faces))
    tracks = track_faces(dets, min_track=10, min_face_size=20)
    assert len(tracks) == 2
    moving = [t for t in tracks if t.boxes[0, 0] < 50][0]
    still = [t for t in tracks if t.boxes[0, 0] >= 50][0]
    assert moving.frames.tolist() == list(range(30))
    assert still.frames.tolist() == list(range(30))
    assert still.boxes[7].tolist() == [100, 100, 150, 150]
    assert track_faces(dets, min_track=40, min_face_size=20) == []
    assert track_faces(dets, min_track=10, min_face_size=60) == []


def test_crop_follows_run_pipeline_geometry():
    from tfgbench.face.track import Track, crop_track

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (15, 120, 140, 3), dtype=np.uint8)
    box = np.array([40.0, 30.0, 80.0, 80.0])  # w 40, h 50 -> s 25, centre (60, 55)
    crops = crop_track(frames, Track(np.arange(15), np.tile(box, (15, 1))), crop_scale=0.4, size=32)
    import cv2

    bs, cs = 25.0, 0.4
    bsi = int(bs * (1 + 2 * cs))
    padded = np.pad(frames[4], ((bsi, bsi), (bsi, bsi), (0, 0)), constant_values=110)
    my, mx = 55 + bsi, 60 + bsi
    face = padded[int(my - bs):int(my + bs * 1.8), int(mx - bs * 1.4):int(mx + bs * 1.4)]
    assert face.shape[:2] == (70, 70)
    assert np.array_equal(crops[4], cv2.resize(face, (32, 32)))


def test_syncnet_python_protocol_end_to_end(tmp_path):
    """Haar detection -> track -> crop_scale crops -> scores; a clip with no face is an error."""
    import sys
    from pathlib import Path

    import cv2
    skimage = pytest.importorskip("skimage")

    sys.path.insert(0, str(Path(__file__).parent))
    from test_lse_reference import make_clip, make_random_syncnet_file

    from tfgbench.metrics.lse import NoFaceError
    from tfgbench.metrics.lse.scorer import SyncScorer

    make_random_syncnet_file(tmp_path / "s.model", seed=2)
    face = cv2.resize(skimage.data.astronaut(), (256, 256))
    frames = np.stack([np.roll(face, (t % 3, t % 4), (0, 1)) for t in range(20)])
    textured, audio = make_clip(20, size=256)
    scorer = SyncScorer("lse/syncnet-python", weights=tmp_path / "s.model", s3fd=None)
    assert scorer.detector.name == "opencv-haar" and scorer.sha256.endswith("opencv-haarcascade_frontalface_default")
    prep = scorer.prepare(frames, audio, where="astronaut")
    assert len(prep.clips) == 1 and prep.clips[0].shape == (20, 224, 224, 3)
    r = scorer.score_prepared(prep)
    assert r.num_windows == 15 and np.isfinite(r.lse_d)
    with pytest.raises(NoFaceError, match="no face track"):
        scorer.score_frames(textured, audio, where="textured")
