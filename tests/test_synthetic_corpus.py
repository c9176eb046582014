"""Synthetic corpus on disk: manifest, dataset contract, A/V alignment, lips following sound,
determinism, bad files, automatic generation."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from pathlib import Path

import numpy as np
import pytest

from tfgbench.data.synthetic import SyntheticDataset, SyntheticOODDataset, corpus_version, generate
from tfgbench.data.synthetic import generation as gen_module
from tfgbench.data.synthetic.clip import make_clip
from tfgbench.data.synthetic.generation import ClipSpec, speakers, write_clip
from tfgbench.errors import MediaError, MissingResourceError, SampleError
from tfgbench.media.io import write_video
from tfgbench.paths import sha256_file

TINY = {"train": (2, 2), "val": (1, 1), "test": (2, 3), "ood": (1, 2)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "corpus"
    return generate(root, seed=0, sizes=TINY, workers=2, progress=False)


def test_manifest_lists_every_clip_with_its_sha256(corpus):
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["version"] == corpus_version(0, TINY) != corpus_version(0)
    assert manifest["splits"] == ["train", "val", "test", "ood"]
    assert len(manifest["clips"]) == sum(n * m for n, m in TINY.values())
    for clip in manifest["clips"]:
        for ext, digest in clip["files"].items():
            assert sha256_file(corpus / clip["split"] / f"{clip['id']}.{ext}") == digest
    assert manifest["espeak"]["version"] and manifest["packages"]["av"]
    by_split = {}
    for clip in manifest["clips"]:
        by_split.setdefault(clip["split"], set()).add(clip["speaker"])
    for a in by_split:
        for b in by_split:
            assert a == b or not (by_split[a] & by_split[b]), "speakers must be disjoint across splits"
    assert not list(corpus.glob(".tmp-*"))


def test_load_returns_the_sample_contract(corpus):
    ds = SyntheticDataset(corpus, split="test")
    assert ds.version == corpus_version(0, TINY) and len(ds) == 6
    assert ds.ids()[0] == "s03/u000"  # test speakers follow 2 train + 1 val speakers
    s = ds.load(ds.ids()[1])
    t = s.num_frames
    assert s.frames.shape == (t, 128, 128, 3) and s.frames.dtype == np.uint8 and t > 40
    assert s.audio.dtype == np.float32 and s.audio.shape == (t * 640,)
    assert s.boxes.shape == (t, 4) and s.boxes.dtype == np.int32
    assert s.meta["mouth"].shape == (t, 20, 2) and s.meta["mouth_box"].shape == (t, 4)
    assert s.meta["speaker"] == "s03" and s.meta["mouth_params"].shape == (t, 6)
    words = s.meta["alignment"]["words"]
    assert [w["word"] for w in words] == s.transcript.split() and len(words) == 6
    assert (corpus / "test" / f"{s.id}.txt").read_text().strip() == s.transcript
    assert all(0 < w["start"] < w["end"] <= t / 25 for w in words)
    phon = s.meta["alignment"]["phonemes"]
    assert all(p["word"] in range(-1, 6) for p in phon)
    # mouth landmarks sit inside the face box
    assert (s.meta["mouth"][..., 0] >= s.boxes[:, None, 0]).all()
    assert (s.meta["mouth"][..., 1] <= s.boxes[:, None, 3]).all()
    ood = SyntheticOODDataset(corpus)
    assert ood.name == "synthetic-ood" and ood.split == "test"
    assert [i.split("/")[0] for i in ood.ids()] == ["o00", "o00"]


def test_audio_and_video_stay_aligned_through_the_file(corpus):
    ds = SyntheticDataset(corpus, split="test")
    sp = speakers(0, TINY)["test"][0]
    clip = make_clip(0, sp, int(sp.id[1:]), 1)
    s = ds.load(f"{sp.id}/u001")
    ref, got = clip.audio.astype(np.float64), s.audio.astype(np.float64)
    lags = np.arange(-400, 401)
    cc = [np.dot(ref[400:-400], got[400 + k:got.size - 400 + k]) for k in lags]
    assert abs(int(lags[int(np.argmax(cc))])) <= 160  # within 10 ms
    mse = np.mean((s.frames.astype(np.float64) - clip.frames) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 40  # near-lossless video


def _corr(x: np.ndarray, y: np.ndarray, lag: int) -> float:
    """Pearson correlation of x[t + lag] with y[t]."""
    a = x[max(lag, 0):len(x) + min(lag, 0)]
    b = y[max(-lag, 0):len(y) + min(-lag, 0)]
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def lips_follow_sound(opening: np.ndarray, audio: np.ndarray) -> bool:
    """Mouth opening correlates with the speech energy envelope (RMS per 40 ms frame) far more
    at zero lag than at any shift of 5 frames or more."""
    env = np.sqrt((audio.reshape(len(opening), -1).astype(np.float64) ** 2).mean(1))
    c0 = _corr(opening, env, 0)
    far = max(_corr(opening, env, lag) for lag in list(range(-12, -4)) + list(range(5, 13)))
    return c0 > 0.5 and c0 > far + 0.25


def _pixel_opening(frames: np.ndarray, mouth: np.ndarray, pose: np.ndarray, rest: int) -> np.ndarray:
    """Mouth motion measured on the pixels: each frame's mouth region, warped to a head-fixed
    40x40 crop (centre between the lip corners, the head's rotation and scale), compared with
    the mean crop of the first ``rest`` frames (leading silence, mouth at rest)."""
    import cv2

    crops = []
    for f, m, (_, _, rot, scale) in zip(frames, mouth, pose):
        cx, cy = (m[0] + m[6]) / 2
        half = 0.5 * float(np.linalg.norm(m[6] - m[0])) / scale  # ~ half the rest mouth width
        c, s_ = np.cos(rot) * scale * half / 20, np.sin(rot) * scale * half / 20
        warp = np.array([[c, -s_, cx - 20 * c + 20 * s_], [s_, c, cy - 20 * s_ - 20 * c]])
        crops.append(cv2.warpAffine(f, warp, (40, 40), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP))
    crops = np.stack(crops).astype(np.float64)
    return np.abs(crops - crops[:rest].mean(0)).mean(axis=(1, 2, 3))


def test_lips_follow_sound_and_broken_copies_do_not(corpus):
    ds = SyntheticDataset(corpus, split="test")
    for sid in ds.ids():
        s = ds.load(sid)
        landmarks = s.meta["mouth"][:, 18, 1] - s.meta["mouth"][:, 14, 1]
        rest = max(int(s.meta["alignment"]["words"][0]["start"] * 25) - 1, 2)
        pose = np.asarray(ds.alignment(sid)["pose"])
        pixels = _pixel_opening(s.frames, s.meta["mouth"], pose, rest)
        for opening in (landmarks, pixels):
            assert lips_follow_sound(opening, s.audio), sid
            assert not lips_follow_sound(np.full_like(opening, opening[0]), s.audio)  # frozen mouth
            for shift in (5, -5, 8):
                assert not lips_follow_sound(opening, np.roll(s.audio, shift * 640)), (sid, shift)
        frozen = np.repeat(s.frames[:1], s.num_frames, axis=0)
        assert not lips_follow_sound(_pixel_opening(frozen, s.meta["mouth"][:1].repeat(len(frozen), 0),
                                                    pose[:1].repeat(len(frozen), 0), rest), s.audio)


def test_clips_are_byte_identical_when_regenerated(corpus, tmp_path):
    sp_by_id = {sp.id: sp for g in speakers(0, TINY).values() for sp in g}
    manifest = {c["id"]: c for c in json.loads((corpus / "manifest.json").read_text())["clips"]}
    for cid, split in (("s03/u002", "test"), ("o00/u001", "ood"), ("s00/u000", "train")):
        sp = sp_by_id[cid.split("/")[0]]
        index = 1000 + int(sp.id[1:]) if sp.pool == "ood" else int(sp.id[1:])
        spec = ClipSpec(split, index, sp.id, sp.pool, int(cid.split("/u")[1]))
        entry = write_clip(tmp_path, spec, 0, sp)  # after other clips in this process: no leaks
        assert entry["files"] == manifest[cid]["files"]


def _copy(corpus: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(corpus, dst)
    return dst


def test_bad_files_are_rejected_naming_the_file(corpus, tmp_path):
    root = _copy(corpus, tmp_path)
    ds = SyntheticDataset(root, split="test")
    ids = ds.ids()
    json_path = root / "test" / f"{ids[0]}.json"
    json_path.unlink()
    with pytest.raises(SampleError, match=f"{json_path}.*alignment file.*missing"):
        ds.load(ids[0])
    # an mp4 whose audio track is silent / missing
    s = ds.load(ids[1])
    mp4 = root / "test" / f"{ids[1]}.mp4"
    write_video(mp4, s.frames, np.zeros_like(s.audio), quality="near-lossless")
    with pytest.raises(MediaError, match=f"{mp4}.*does not match the manifest"):
        ds.load(ids[1])
    unchecked = SyntheticDataset(root, split="test", verify=False)
    with pytest.raises(MediaError, match=f"{mp4}.*broken audio"):
        unchecked.load(ids[1])
    write_video(mp4, s.frames, None, quality="near-lossless")
    with pytest.raises(MediaError, match=f"{mp4}.*audio track is missing"):
        unchecked.load(ids[1])
    # a truncated mp4
    mp4b = root / "test" / f"{ids[2]}.mp4"
    mp4b.write_bytes(mp4b.read_bytes()[:2000])
    with pytest.raises(MediaError, match=str(mp4b)):
        unchecked.load(ids[2])
    # an alignment that does not match its video
    jb = root / "test" / f"{ids[3]}.json"
    data = json.loads(jb.read_text())
    data["num_frames"] += 3
    jb.write_text(json.dumps(data))
    with pytest.raises(SampleError, match="alignment"):
        unchecked.load(ids[3])
    with pytest.raises(SampleError, match=f"{jb}.*does not match the manifest"):
        ds.load(ids[3])
    with pytest.raises(MissingResourceError, match="manifest.json"):
        SyntheticDataset(tmp_path / "nowhere", split="test").ids()


def _ensure(root: str) -> None:
    gen_module.ensure_corpus(Path(root), progress=False)


def test_first_use_generates_into_tfgbench_home_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(gen_module, "DEFAULT_SIZES", {"train": (1, 1), "val": (1, 1), "test": (1, 2), "ood": (1, 1)})
    ds = SyntheticDataset(split="val", progress=False)
    root = tmp_path / "home" / "synthetic" / corpus_version(0)
    assert ds.version == corpus_version(0) and not root.exists()  # version needs no generation
    assert ds.ids() == ["s01/u000"]
    manifest = root / "manifest.json"
    assert json.loads(manifest.read_text())["splits"] == ["val"]  # only the split asked for
    assert SyntheticOODDataset(progress=False).ids() == ["o00/u000"]  # adds its own split
    assert sorted(json.loads(manifest.read_text())["splits"]) == ["ood", "val"]
    stamp = manifest.stat().st_mtime_ns
    assert SyntheticOODDataset(progress=False).ids() == ["o00/u000"]
    assert SyntheticDataset(split="val", progress=False).ids() == ["s01/u000"]
    assert manifest.stat().st_mtime_ns == stamp  # not generated again
    # two processes asking for a fresh corpus at once: one generates, the other waits for it
    other = tmp_path / "home" / "synthetic" / "race"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_ensure, args=(str(other),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    clips = json.loads((other / "manifest.json").read_text())["clips"]
    assert len(clips) == 5 and not list(other.glob(".tmp-*"))
