"""Synthetic corpus: viseme coarticulation, face rendering, identities and speaker pools."""

from __future__ import annotations

import numpy as np

from tfgbench.data.synthetic import visemes
from tfgbench.data.synthetic.face import FaceRenderer, mouth_landmarks, mouth_shape
from tfgbench.data.synthetic.generation import speakers
from tfgbench.data.synthetic.identity import MAIN_HAIR, OOD_HAIR, make_speaker
from tfgbench.data.synthetic.speech import Phone

OPEN, SPREAD, ROUND = 0, 1, 2


def phones(spec: list[tuple[str, float]], start: float = 0.2) -> list[Phone]:
    out, t = [], start
    for sym, dur in spec:
        out.append(Phone(sym, t, t + dur, 0))
        t += dur
    return out


def test_split_symbol():
    assert visemes.split_symbol("aɪ") == ["a", "ɪ"]
    assert visemes.split_symbol("tʃ") == ["tʃ"]
    assert visemes.split_symbol("ɑːɹ") == ["ɑ", "ɹ"]
    assert visemes.split_symbol("uː") == ["u"]
    assert visemes.split_symbol("_") == ["_"]


def test_bilabial_closes_the_lips_between_open_vowels():
    track = visemes.mouth_track(phones([("ɑː", 0.16), ("m", 0.12), ("ɑː", 0.16)]), 20)
    t_vowel, t_m = int((0.2 + 0.08) * 25), int((0.2 + 0.16 + 0.06) * 25)
    assert track[t_vowel, OPEN] > 0.6
    assert track[t_m, OPEN] < 0.1
    assert track[0, OPEN] < 0.05  # silence before: closed


def test_coarticulation_rounds_a_consonant_before_a_rounded_vowel():
    before_u = visemes.mouth_track(phones([("s", 0.1), ("t", 0.06), ("uː", 0.2)]), 20)
    before_i = visemes.mouth_track(phones([("s", 0.1), ("t", 0.06), ("iː", 0.2)]), 20)
    k = int((0.2 + 0.1 + 0.03) * 25)  # the frame of "t"
    assert before_u[k, ROUND] > before_i[k, ROUND] + 0.2
    assert before_i[k, SPREAD] > before_u[k, SPREAD] + 0.2


def test_frame_average_is_the_mean_over_each_40ms():
    track = np.zeros((200, 6))
    track[50:] = 1.0  # a step at 50 ms
    out = visemes.frame_average(track, 5)
    assert np.allclose(out[:, 0], [0, 0.75, 1, 1, 1])


def test_mouth_landmarks_follow_the_mouth_shape():
    ident = make_speaker(0, 0, "s00", "main").identity
    closed = mouth_landmarks(mouth_shape(ident, np.zeros(6)), ident.mouth_y)
    opened = mouth_landmarks(mouth_shape(ident, np.array([1.0, 0.4, 0, 0.2, 0, 0])), ident.mouth_y)
    rounded = mouth_landmarks(mouth_shape(ident, np.array([0.3, 0.0, 1.0, 0, 0, 0])), ident.mouth_y)
    assert closed.shape == (20, 2)
    assert abs(closed[18, 1] - closed[14, 1]) < 0.1
    assert opened[18, 1] - opened[14, 1] > 0.7 * ident.mouth_w
    assert rounded[6, 0] - rounded[0, 0] < 0.8 * (opened[6, 0] - opened[0, 0])


def test_render_puts_the_mouth_where_the_landmarks_say():
    sp = make_speaker(0, 3, "s03", "main")
    r = FaceRenderer(sp.identity, 128, np.random.default_rng(1))
    pose = np.array([60.0, 63.0, 0.05, 1.0])
    frame, marks, box, mbox = r.render(pose, np.array([1.0, 0.4, 0.0, 0.0, 0.0, 0.0]), blink=0.0)
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    assert box.dtype == np.int32 and (box[:2] < box[2:]).all()
    # mouth landmarks inside the mouth box, the mouth box in the lower half of the face box
    assert (marks >= mbox[:2]).all() and (marks <= mbox[2:]).all()
    assert box[1] < mbox[1] and (mbox[1] + mbox[3]) / 2 > (box[1] + box[3]) / 2
    # the inside of the open mouth is dark, the same spot with a closed mouth is lip/skin
    centre = np.round((marks[14] + marks[18]) / 2).astype(int)
    closed, *_ = r.render(pose, np.zeros(6), blink=0.0)
    inside = frame[centre[1] - 1:centre[1] + 2, centre[0] - 1:centre[0] + 2].astype(float).mean()
    shut = closed[centre[1] - 1:centre[1] + 2, centre[0] - 1:centre[0] + 2].astype(float).mean()
    assert inside < 0.6 * shut
    # 96x96 Wav2Lip-style face crop: the mouth spans a good part of the lower half
    scale = 96 / (box[2] - box[0])
    assert (marks[6, 0] - marks[0, 0]) * scale > 25


def test_head_pose_moves_box_and_landmarks_together():
    sp = make_speaker(0, 5, "s05", "main")
    r = FaceRenderer(sp.identity, 128, np.random.default_rng(0))
    params = np.array([0.5, 0.4, 0, 0, 0, 0])
    f1, m1, b1, _ = r.render(np.array([60.0, 60.0, 0.0, 1.0]), params, 0.0)
    f2, m2, b2, _ = r.render(np.array([65.0, 62.0, 0.0, 1.0]), params, 0.0)
    assert np.allclose(m2 - m1, [5, 2], atol=1e-3)
    assert np.abs((b2 - b1) - [5, 2, 5, 2]).max() <= 1
    assert np.abs(f1.astype(int) - f2).mean() > 3


def test_blink_closes_the_eyes():
    ident = make_speaker(0, 7, "s07", "main").identity
    r = FaceRenderer(ident, 128, np.random.default_rng(0))
    pose, params = np.array([64.0, 61.0, 0.0, 1.0]), np.zeros(6)
    open_, *_ = r.render(pose, params, 0.0)
    shut, *_ = r.render(pose, params, 1.0)
    eye_rows = slice(int(61 + ident.eye_y - 5), int(61 + ident.eye_y + 5))
    assert np.abs(open_[eye_rows].astype(int) - shut[eye_rows]).mean() > 2
    mouth_rows = slice(int(61 + ident.mouth_y - 8), int(61 + ident.mouth_y + 8))
    assert np.array_equal(open_[mouth_rows], shut[mouth_rows])


def test_at_least_40_distinct_identities_and_disjoint_pools():
    groups = speakers(0)
    everyone = [sp for g in groups.values() for sp in g]
    assert len(everyone) >= 40
    ids = [sp.id for sp in everyone]
    assert len(set(ids)) == len(ids)
    # every face differs from every other (rendered at the same pose, mouth closed)
    pose, params = np.array([64.0, 61.0, 0.0, 1.0]), np.zeros(6)
    faces = np.stack([FaceRenderer(sp.identity, 64, np.random.default_rng(0)).render(pose, params, 0.0)[0]
                      for sp in everyone]).astype(np.float32)
    diffs = np.abs(faces[:, None] - faces[None]).mean(axis=(2, 3, 4))
    assert diffs[~np.eye(len(faces), dtype=bool)].min() > 2.0
    main = [sp for sp in everyone if sp.pool == "main"]
    ood = groups["ood"]
    assert {sp.identity.hair for sp in main} <= set(MAIN_HAIR)
    assert {sp.identity.hair for sp in ood} <= set(OOD_HAIR)
    assert all(sp.identity.glasses or sp.identity.beard for sp in ood)
    assert not any(sp.identity.glasses or sp.identity.beard for sp in main)
    assert {sp.voice.base for sp in main} == {"en"} and {sp.voice.base for sp in ood} == {"en-us"}
    assert all(sp.voice.breath == 0 for sp in main) and all(sp.voice.breath > 0 for sp in ood)
