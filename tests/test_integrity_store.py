"""Protocol versions, face-box sources and the store's schema: rows that differ in any of them never
share a table cell; old stores are migrated, newer ones refused."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from tfgbench.metrics.base import Measure, ProtocolSpec, Score
from tfgbench.store import DatasetKey, ModelKey, ProtocolResult, Store
from tfgbench.tables import build_tables, render

MEASURE = Measure("psnr", "PSNR", True, pooled=True)

# the schema of tfgbench's first store (no schema version, no delivery / boxes / protocol version)
SCHEMA_1 = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, command TEXT NOT NULL,
    tfgbench_version TEXT NOT NULL, model TEXT NOT NULL, checkpoint_sha256 TEXT NOT NULL,
    settings_hash TEXT NOT NULL, model_settings TEXT NOT NULL, model_info TEXT NOT NULL, dataset TEXT NOT NULL,
    dataset_version TEXT NOT NULL, split TEXT NOT NULL, device TEXT NOT NULL);
CREATE TABLE datasets (dataset TEXT NOT NULL, dataset_version TEXT NOT NULL, split TEXT NOT NULL,
    num_samples INTEGER NOT NULL, PRIMARY KEY (dataset, dataset_version, split));
CREATE TABLE protocols (protocol TEXT PRIMARY KEY, summary TEXT NOT NULL, settings TEXT NOT NULL);
CREATE TABLE measures (protocol TEXT NOT NULL, measure TEXT NOT NULL, label TEXT NOT NULL,
    higher_is_better INTEGER, pooled INTEGER NOT NULL, percent INTEGER NOT NULL, digits INTEGER NOT NULL,
    position INTEGER NOT NULL, PRIMARY KEY (protocol, measure));
CREATE TABLE results (model TEXT NOT NULL, checkpoint_sha256 TEXT NOT NULL, settings_hash TEXT NOT NULL,
    dataset TEXT NOT NULL, dataset_version TEXT NOT NULL, split TEXT NOT NULL, sample_id TEXT NOT NULL,
    protocol TEXT NOT NULL, evaluator_sha256 TEXT NOT NULL, measure TEXT NOT NULL, value REAL, num REAL,
    den REAL, error TEXT, seconds REAL, run_id INTEGER, created REAL NOT NULL,
    PRIMARY KEY (model, checkpoint_sha256, settings_hash, dataset, dataset_version, split, sample_id, protocol,
                 evaluator_sha256, measure));
"""


def test_protocol_versions_never_share_a_cell(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    dkey, mkey = DatasetKey("d", "v1", "test"), ModelKey("m", "none", "h")
    for version in (1, 2):
        store.record_protocol(ProtocolSpec("psnr/x", (MEASURE,), "test", version=version))
    store.record_dataset(dkey, 2)
    for i, (v1, v2) in enumerate(((20.0, 30.0), (22.0, 32.0))):
        store.write_sample(mkey, dkey, f"s{i}", None, [
            ProtocolResult("psnr/x", "none", {"psnr": Score.ratio(v1, 1)}, protocol_version=1),
            ProtocolResult("psnr/x", "none", {"psnr": Score.ratio(v2, 1)}, protocol_version=2)])
    assert store.done(mkey, dkey, "psnr/x", "none", protocol_version=2) == {"s0", "s1"}
    assert store.done(mkey, dkey, "psnr/x", "none", protocol_version=3) == set()
    (table,) = build_tables(store.rows(), store.measures(), store.dataset_sizes())
    md = render(table, "md")
    assert "(psnr/x v1)" in md and "(psnr/x v2)" in md
    assert "21.00" in md and "31.00" in md and "26.00" not in md  # no cell averages the two versions
    assert ",1,psnr/x,none,psnr,21.0," in render(table, "csv-summary")


def test_rows_from_two_box_sources_or_deliveries_never_share_a_cell(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    store.record_protocol(ProtocolSpec("psnr/x", (MEASURE,), "test"))
    for boxes, delivery, value in (("s3fd:aa", "lossless", 30.0), ("opencv-haar:bb", "lossless", 20.0),
                                   ("s3fd:aa", "official", 25.0)):
        dkey = DatasetKey("d", "v1", "test", boxes)
        store.record_dataset(dkey.sized, 1)
        store.write_sample(ModelKey("m", "none", "h", delivery), dkey, "s0", None,
                           [ProtocolResult("psnr/x", "none", {"psnr": Score.ratio(value, 1)})])
    tables = build_tables(store.rows(), store.measures(), store.dataset_sizes())
    assert sorted(t.dataset.boxes for t in tables) == ["opencv-haar:bb", "s3fd:aa"]
    s3fd = next(t for t in tables if t.dataset.boxes == "s3fd:aa")
    md = render(s3fd, "md")
    assert "m [official delivery]" in md and "| 30.00" in md and "| 25.00" in md
    assert "face boxes s3fd:aa" in md


def test_face_box_source_keys_rows_and_is_recorded_per_sample(tmp_path, face_folder, monkeypatch):
    from tfgbench.runner import RunSpec, run

    monkeypatch.delenv("TFGBENCH_S3FD", raising=False)
    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path / "home"))  # no sfd_face.pth there: Haar boxes
    spec = RunSpec(model="ground-truth", dataset="folder", data_root=str(face_folder), metrics=["psnr"],
                   workdir=str(tmp_path / "work"))
    detected = run(spec, progress=False, log=lambda _: None)
    assert detected.dataset.boxes.startswith("opencv-haar:")
    for k in range(2):
        np.save(face_folder / f"clip{k}.npy", np.tile([20, 20, 100, 100], (30, 1)))
    from_files = run(spec, progress=False, log=lambda _: None)
    assert from_files.dataset.boxes.startswith("box-files:2:")
    assert from_files.samples == 2, "rows scored with detected boxes were reused for box-file boxes"
    con = sqlite3.connect(tmp_path / "work" / "results.sqlite")
    per_sample = dict(con.execute("SELECT boxes, sample_boxes FROM results WHERE sample_id='clip0'"))
    assert per_sample[detected.dataset.boxes].startswith("opencv-haar:")
    assert per_sample[from_files.dataset.boxes].startswith("box-file:") and "clip0.npy" in \
        per_sample[from_files.dataset.boxes]
    # an S3FD weights file changes the key again (the detector is keyed by its weights' sha256)
    from tfgbench.data.folder import FolderDataset

    (face_folder / "clip1.npy").unlink()
    (tmp_path / "sfd_face.pth").write_bytes(b"not really S3FD, but a file with a hash")
    haar_key = FolderDataset(face_folder).boxes_key()
    monkeypatch.setenv("TFGBENCH_S3FD", str(tmp_path / "sfd_face.pth"))
    s3fd_key = FolderDataset(face_folder).boxes_key()
    assert "opencv-haar:" in haar_key and "s3fd:" in s3fd_key and s3fd_key.startswith("box-files:1:")


def test_old_store_is_migrated_and_its_rows_kept_apart(tmp_path):
    path = tmp_path / "results.sqlite"
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_1)
    con.execute("INSERT INTO runs VALUES (1, 0, 'tfgbench score --videos x', '0.1.0', 'ext', 'e', 'h', '{}', '{}',"
                " 'lrs2', 'v', 'test', 'cpu')")
    con.execute("INSERT INTO protocols VALUES ('psnr/talklip', 'old', '{}')")
    for dataset, run_id in (("lrs2", 1), ("synthetic", None)):
        con.execute("INSERT INTO results VALUES ('m', 'c', 'h', ?, 'v', 'test', 's0', 'psnr/talklip', 'none', "
                    "'psnr', 30.0, 30.0, 1.0, NULL, 0.1, ?, 0)", (dataset, run_id))
    con.commit()
    con.close()
    with Store(path) as store:
        rows = {r.dataset: r for r in store.rows()}
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert rows["synthetic"].boxes == "dataset" and rows["synthetic"].delivery == "lossless"
    assert rows["lrs2"].boxes.startswith("unknown") and rows["lrs2"].delivery == "file"
    assert all(r.protocol_version == 1 and r.value == 30.0 for r in rows.values())
    # new lrs2 rows (known box source) land in another table than the migrated ones
    with Store(path) as store:
        dkey = DatasetKey("lrs2", "v", "test", "s3fd:aa")
        store.write_sample(ModelKey("m", "c", "h", "file"), dkey, "s0", None,
                           [ProtocolResult("psnr/talklip", "none", {"psnr": Score.ratio(20, 1)})])
        tables = build_tables(store.rows("lrs2"), {("psnr/talklip", "psnr"): MEASURE}, store.dataset_sizes())
    assert len(tables) == 2


def test_store_from_a_newer_tfgbench_is_refused(tmp_path):
    from tfgbench.store import StoreVersionError

    path = tmp_path / "results.sqlite"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.execute("INSERT OR REPLACE INTO meta VALUES ('last_written_by', 'tfgbench 9.0')")
    con.commit()
    con.close()
    with pytest.raises(StoreVersionError) as e:
        Store(path)
    msg = str(e.value)
    assert str(path) in msg and "newer tfgbench" in msg and "tfgbench 9.0" in msg and "--workdir" in msg
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(StoreVersionError, match="junk.sqlite"):
        Store(tmp_path / "junk.sqlite")
