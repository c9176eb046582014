"""Result keys computed by the harness: checkpoint and --model-arg files, dataset content, WER side
files. Each test fails on a harness that trusts plugins or hashes only the id list."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import types

import pytest
from conftest import face_frames, tone
from integrity_plugins import installed

from tfgbench.media.io import write_video
from tfgbench.runner import RunSpec, run


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run(tmp_path, data, **kw):
    spec = RunSpec(model=kw.pop("model", "forgetful"), dataset="folder", data_root=str(data), metrics=["psnr"],
                   workdir=str(tmp_path / "work"), **kw)
    return run(spec, progress=False, log=lambda _: None)


def test_checkpoint_hash_is_computed_by_the_harness(tmp_path, face_folder):
    """A plugin that forgets ModelInfo.checkpoint_sha256 must not store two checkpoints under "none"."""
    ckpt = tmp_path / "weights.bin"
    with installed(tmp_path / "site"):
        ckpt.write_bytes(b"first checkpoint")
        first = _run(tmp_path, face_folder, checkpoint=str(ckpt))
        ckpt.write_bytes(b"the second, retrained checkpoint")
        second = _run(tmp_path, face_folder, checkpoint=str(ckpt))
    assert first.model.checkpoint_sha256 == _sha(b"first checkpoint")
    assert second.model.checkpoint_sha256 == _sha(b"the second, retrained checkpoint")
    assert second.samples == 2 and second.skipped == 0, "rows of the old checkpoint were reused"
    con = sqlite3.connect(tmp_path / "work" / "results.sqlite")
    stored = {r[0] for r in con.execute("SELECT DISTINCT checkpoint_sha256 FROM results")}
    assert stored == {_sha(b"first checkpoint"), _sha(b"the second, retrained checkpoint")}
    files = [r[0] for r in con.execute("SELECT key_files FROM runs")]
    assert all(str(ckpt) in f for f in files)
    # two cache folders: the second checkpoint's videos were generated, not served from the first's
    assert len({p.parent for p in (tmp_path / "work" / "videos").rglob("*.mp4")}) == 2


def test_files_named_by_model_args_are_part_of_the_key(tmp_path, face_folder):
    ref = tmp_path / "reference.png"
    with installed(tmp_path / "site"):
        ref.write_bytes(b"12")
        first = _run(tmp_path, face_folder, model_args={"reference": str(ref)})
        ref.write_bytes(b"12345")  # same path, new content
        second = _run(tmp_path, face_folder, model_args={"reference": str(ref)})
    assert first.model.settings_hash != second.model.settings_hash
    assert second.samples == 2 and second.skipped == 0


def test_hashes_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    from tfgbench import filehash

    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path / "home"))
    calls = []
    real = filehash._hash_bytes
    monkeypatch.setattr(filehash, "_hash_bytes", lambda p: calls.append(p) or real(p))
    f = tmp_path / "big.ckpt"
    f.write_bytes(b"a" * 1000)
    first = filehash.file_sha256(f)
    assert filehash.file_sha256(f) == first and len(calls) == 1
    assert (tmp_path / "home" / "cache" / "sha256.json").is_file()
    st = f.stat()
    f.write_bytes(b"b" * 1000)                          # same size, and the old mtime put back:
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert filehash.file_sha256(f) == first             # the cache answers (no re-hash)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert filehash.file_sha256(f) == _sha(b"b" * 1000) and len(calls) == 2
    filehash._MEMORY.clear()                            # a new process reads the cache file
    filehash._LOADED.clear()
    assert filehash.file_sha256(f) == _sha(b"b" * 1000) and len(calls) == 2


def test_file_dataset_version_covers_content(tmp_path, face_folder):
    from tfgbench.data.folder import FolderDataset

    before = FolderDataset(face_folder).version
    assert FolderDataset(face_folder).version == before
    # re-extracted clip: same ids, new pixels
    write_video(face_folder / "clip1.mp4", face_frames(30, shift=9), tone(30, 250), quality="standard")
    after_video = FolderDataset(face_folder).version
    assert after_video != before
    (face_folder / "clip0.txt").write_text("Text:  A CORRECTED TRANSCRIPT\n")
    assert FolderDataset(face_folder).version != after_video


def test_wer_side_files_are_part_of_the_evaluator_key(tmp_path, monkeypatch):
    from tfgbench.metrics.wer.scorer import WERScorer

    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TFGBENCH_AVHUBERT_SPM", raising=False)
    monkeypatch.delenv("TFGBENCH_MEAN_FACE", raising=False)
    reader = types.SimpleNamespace(sha256="r" * 64)
    spm_a, spm_b = tmp_path / "a.model", tmp_path / "b.model"
    spm_a.write_bytes(b"sentencepiece A")
    spm_b.write_bytes(b"sentencepiece B")
    keys = {WERScorer("wer/talklip-avhubert", reader=reader, spm=s).sha256 for s in (spm_a, spm_b, None)}
    assert len(keys) == 3
    monkeypatch.setenv("TFGBENCH_AVHUBERT_SPM", str(spm_a))  # the environment variable counts too
    assert WERScorer("wer/talklip-avhubert", reader=reader).sha256 == \
        WERScorer("wer/talklip-avhubert", reader=reader, spm=spm_a).sha256
    face_a, face_b = tmp_path / "a.npy", tmp_path / "b.npy"
    face_a.write_bytes(b"mean face A")
    face_b.write_bytes(b"mean face B")
    roi = {WERScorer("wer/avhubert-roi", reader=reader, mean_face=m).sha256 for m in (face_a, face_b)}
    assert len(roi) == 2 and all(k.startswith("r" * 64) for k in roi)
    # the synthetic readers are safetensors with their own vocabulary: no side files, keys unchanged
    assert WERScorer("wer/synthetic-avhubert", reader=reader, spm=spm_a).sha256 == "r" * 64


def test_missing_checkpoint_file_is_an_error_naming_it(tmp_path, face_folder):
    from tfgbench.errors import MissingResourceError

    with installed(tmp_path / "site"), pytest.raises(MissingResourceError, match="nowhere.bin"):
        _run(tmp_path, face_folder, checkpoint=str(tmp_path / "nowhere.bin"))
