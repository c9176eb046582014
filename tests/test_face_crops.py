"""Face crops and paste-back for generators, and the differentiable mouth ROI of the lip experts."""

from __future__ import annotations

import numpy as np
import torch

from tfgbench.face.crops import crop_faces, mouth_in_face, pad_boxes, paste_faces, smooth_boxes


def test_smooth_boxes_matches_wav2lip_in_place_rule():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [4, 0, 14, 10], [6, 0, 16, 10], [9, 1, 19, 11]])
    out = smooth_boxes(boxes, window=2)
    # by hand: i=0 mean(b0,b1); i=1 mean(b1,b2); i=2 mean(b2,b3); i=3 mean(b3,b4) = (7.5 -> 7, 0.5 -> 0, ..);
    # i=4 (end) window = rows 3..4 *after* row 3 was smoothed: mean([7,0,17,10],[9,1,19,11]) = [8,0,18,10]
    assert out.tolist() == [[1, 0, 11, 10], [3, 0, 13, 10], [5, 0, 15, 10], [7, 0, 17, 10], [8, 0, 18, 10]]


def test_pad_boxes_clips_to_frame():
    out = pad_boxes(np.array([[5, 5, 50, 90]]), (0, 10, 0, 0), height=96, width=64)
    assert out.tolist() == [[5, 5, 50, 96]]


def _image(t=3, h=80, w=100):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 2.5) % 256, (yy * 3) % 256, 255 * np.exp(-((xx - 60) ** 2 + (yy - 50) ** 2) / 200)], -1)
    return np.repeat(img[None].astype(np.uint8), t, 0)


def test_crop_paste_round_trip_and_outside_untouched():
    frames = _image()
    boxes = np.array([[20, 10, 84, 74]] * 3)                   # 64x64 box: crop at 64 is exact
    faces = crop_faces(frames, boxes, 64)
    assert np.array_equal(faces[0], frames[0, 10:74, 20:84])
    changed = paste_faces(frames, 255 - faces, boxes)
    assert np.array_equal(changed[:, :, :20], frames[:, :, :20]) and np.array_equal(changed[:, 74:], frames[:, 74:])
    assert np.array_equal(changed[0, 10:74, 20:84], 255 - frames[0, 10:74, 20:84])
    lower = paste_faces(frames, 255 - faces, boxes, lower_half_only=True)
    assert np.array_equal(lower[:, 10:42], frames[:, 10:42]) and np.array_equal(lower[0, 42:74, 20:84],
                                                                                255 - frames[0, 42:74, 20:84])


def test_crop_pads_boxes_that_leave_the_frame():
    frames = _image(t=1)
    faces = crop_faces(frames, np.array([[-10, -10, 30, 30]]), 40)
    assert np.array_equal(faces[0, 10:, 10:], frames[0, :30, :30])
    assert np.array_equal(faces[0, 0, 10:], frames[0, 0, :30])      # edge padding above the frame


def test_mouth_rois_from_faces_match_the_synthetic_protocol_crop():
    from tfgbench.data.faceclips import mouth_rois_from_faces
    from tfgbench.metrics.wer.preprocess import synthetic_mouth_clips

    frames = _image(t=2)
    face = np.array([[16, 8, 88, 78]] * 2)
    mouth = np.array([[40, 36, 76, 62], [44, 40, 80, 66]])
    reference = synthetic_mouth_clips(frames, mouth)                     # cv2, from the full frame
    crops = torch.from_numpy(crop_faces(frames, face, 96)).permute(0, 3, 1, 2).float() / 255
    ours = mouth_rois_from_faces(crops, torch.from_numpy(mouth_in_face(mouth, face))).numpy()
    assert ours.shape == reference.shape == (2, 44, 44)
    assert np.abs(ours - reference).mean() < 0.05 * reference.std()
    # a box one tenth of the face off would not agree
    shifted = mouth_in_face(mouth + [7, 0, 7, 0], face)
    off = mouth_rois_from_faces(crops, torch.from_numpy(shifted)).numpy()
    assert np.abs(off - reference).mean() > 4 * np.abs(ours - reference).mean()
    crops.requires_grad_(True)
    mouth_rois_from_faces(crops, torch.from_numpy(mouth_in_face(mouth, face))).sum().backward()
    assert crops.grad.abs().sum() > 0


def test_mouth_rois_take_the_real_frame_where_the_mouth_leaves_the_face_box():
    from tfgbench.data.faceclips import mouth_rois_from_faces
    from tfgbench.metrics.wer.preprocess import synthetic_mouth_clips, synthetic_mouth_rois

    frames = _image(t=2)
    face = np.array([[16, 8, 88, 56]] * 2)                   # the mouth box reaches 10 px below the face
    mouth = np.array([[40, 36, 76, 66], [44, 40, 80, 66]])
    reference = synthetic_mouth_clips(frames, mouth)
    crops = torch.from_numpy(crop_faces(frames, face, 96)).permute(0, 3, 1, 2).float() / 255
    rel = torch.from_numpy(mouth_in_face(mouth, face))
    real = torch.from_numpy(synthetic_mouth_rois(frames, mouth))
    pasted = mouth_rois_from_faces(crops, rel, real).numpy()
    border = mouth_rois_from_faces(crops, rel).numpy()
    assert np.abs(pasted - reference).mean() < 0.05 * reference.std()
    assert np.abs(border - reference).mean() > 3 * np.abs(pasted - reference).mean()
    # generated pixels still drive the inside part: a black face darkens the top of the ROI only
    dark = mouth_rois_from_faces(torch.zeros_like(crops), rel, real).numpy()
    assert np.allclose(dark[:, 0], (0 - 0.421) / 0.165) and np.allclose(dark[:, -1], pasted[:, -1])


def test_mouth_from_face_is_the_lower_centre_square():
    from tfgbench.face.crops import mouth_from_face

    # face 40 wide, 80 tall at (10, 20): square of side 20 centred at x 30, y 20 + 60 = 80
    assert mouth_from_face(np.array([[10, 20, 50, 100]])).tolist() == [[20, 70, 40, 90]]
