"""Migrations of older results stores to :data:`tfgbench.store.SCHEMA_VERSION`, in one transaction.

Schema 1 (tfgbench before result keys carried delivery, face-box source and protocol version) ->
schema 2. Every stored number is kept; the new key columns get the only values that are true of
the old rows, or a value that keeps them apart from new rows where the old key cannot tell:

* ``delivery``: ``file`` for rows of ``tfgbench score`` runs (videos scored as they were given),
  ``lossless`` for the rest (the only delivery tfgbench had);
* ``boxes``: ``dataset`` on the synthetic corpus (its exact boxes, covered by its version), and
  :data:`tfgbench.store.UNKNOWN_BOXES` elsewhere: S3FD, Haar and box-file rows cannot be told apart,
  so they never join a table cell with rows whose box source is known;
* ``protocol_version``: 1, the version of every protocol when schema 2 was introduced.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tfgbench.errors import TfgbenchError


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    from tfgbench.store import _PROTOCOLS, _RESULTS, UNKNOWN_BOXES

    db.execute("ALTER TABLE results RENAME TO results_v1")
    db.execute(_RESULTS)
    db.execute(
        "INSERT INTO results SELECT model, checkpoint_sha256, settings_hash, "
        "CASE WHEN run_id IN (SELECT id FROM runs WHERE command LIKE 'tfgbench score%') THEN 'file' "
        "ELSE 'lossless' END, dataset, dataset_version, split, "
        "CASE WHEN dataset LIKE 'synthetic%' THEN 'dataset' ELSE ? END, "
        "sample_id, protocol, 1, evaluator_sha256, measure, value, num, den, error, seconds, run_id, created, NULL "
        "FROM results_v1", (UNKNOWN_BOXES,))
    db.execute("DROP TABLE results_v1")
    db.execute("ALTER TABLE protocols RENAME TO protocols_v1")
    db.execute(_PROTOCOLS)
    db.execute("INSERT INTO protocols SELECT protocol, 1, summary, settings FROM protocols_v1")
    db.execute("DROP TABLE protocols_v1")
    for column, default in (("delivery", "'lossless'"), ("boxes", "'unknown'"), ("key_files", "'{}'")):
        db.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT NOT NULL DEFAULT {default}")
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('migrated_from_schema', '1')")


MIGRATIONS = {0: _migrate_1_to_2, 1: _migrate_1_to_2}  # schema 1 files carry user_version 0


def migrate(db: sqlite3.Connection, version: int, path: Path) -> None:
    """Bring a store at ``version`` (``PRAGMA user_version``) up to date, all or nothing."""
    from tfgbench.store import SCHEMA_VERSION

    step = MIGRATIONS.get(version)
    if step is None:
        raise TfgbenchError(f"{path}: no migration from results-store schema {version} to {SCHEMA_VERSION}")
    if db.in_transaction:
        db.commit()
    try:
        db.execute("BEGIN IMMEDIATE")
        step(db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    except sqlite3.Error as e:
        db.rollback()
        raise TfgbenchError(f"{path}: could not migrate this results store to schema {SCHEMA_VERSION} ({e}); "
                            "the file is unchanged") from e
