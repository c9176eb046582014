"""The results store: SQLite, one row per sample, metric protocol and measure.

Key of a result row: (model, checkpoint sha256, model settings hash, delivery, dataset, dataset
version, split, face-box source, sample id, protocol, protocol version, evaluator sha256,
measure). A row holds the value, the sufficient statistics of pooled measures (``num``/``den``:
WER edits and reference words, summed frame values and frame counts), the seconds spent, the face
boxes this sample actually used (``sample_boxes``), and, for a failed sample, the error text
(value NULL). Every write of one sample's rows is one transaction, so killing the process loses
at most the samples in flight. Runs record the command line, versions, settings and the files
hashed into the key; protocols and measures record what the numbers mean, so tables are a pure
function of the database.

The file carries a schema version (``PRAGMA user_version``, :data:`SCHEMA_VERSION`). A store
written before schema 2 is migrated in place, in one transaction: its rows keep their numbers and
get the key columns they lacked, with values that keep them apart from new rows where the old key
could not tell (face boxes ``unknown`` outside the synthetic corpus). A store written by a newer
tfgbench is refused with a message saying so.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tfgbench.errors import TfgbenchError
from tfgbench.metrics.base import Measure, ProtocolSpec, Score

#: version of the file layout; bump it (and add a migration) whenever a table changes
SCHEMA_VERSION = 2

#: boxes value of rows migrated from a schema-1 store outside the synthetic corpus
UNKNOWN_BOXES = "unknown (stored before tfgbench recorded face-box sources)"

_RESULTS = """
CREATE TABLE IF NOT EXISTS results (
    model TEXT NOT NULL, checkpoint_sha256 TEXT NOT NULL, settings_hash TEXT NOT NULL, delivery TEXT NOT NULL,
    dataset TEXT NOT NULL, dataset_version TEXT NOT NULL, split TEXT NOT NULL, boxes TEXT NOT NULL,
    sample_id TEXT NOT NULL, protocol TEXT NOT NULL, protocol_version INTEGER NOT NULL,
    evaluator_sha256 TEXT NOT NULL, measure TEXT NOT NULL,
    value REAL, num REAL, den REAL,
    error TEXT, seconds REAL, run_id INTEGER, created REAL NOT NULL, sample_boxes TEXT,
    PRIMARY KEY (model, checkpoint_sha256, settings_hash, delivery, dataset, dataset_version, split, boxes,
                 sample_id, protocol, protocol_version, evaluator_sha256, measure)
);
"""
_PROTOCOLS = """
CREATE TABLE IF NOT EXISTS protocols (
    protocol TEXT NOT NULL, version INTEGER NOT NULL, summary TEXT NOT NULL, settings TEXT NOT NULL,
    PRIMARY KEY (protocol, version)
);
"""
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    command TEXT NOT NULL,
    tfgbench_version TEXT NOT NULL,
    model TEXT NOT NULL, checkpoint_sha256 TEXT NOT NULL, settings_hash TEXT NOT NULL,
    model_settings TEXT NOT NULL, model_info TEXT NOT NULL,
    dataset TEXT NOT NULL, dataset_version TEXT NOT NULL, split TEXT NOT NULL,
    device TEXT NOT NULL,
    delivery TEXT NOT NULL DEFAULT 'lossless', boxes TEXT NOT NULL DEFAULT 'unknown',
    key_files TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS datasets (
    dataset TEXT NOT NULL, dataset_version TEXT NOT NULL, split TEXT NOT NULL,
    num_samples INTEGER NOT NULL,
    PRIMARY KEY (dataset, dataset_version, split)
);
CREATE TABLE IF NOT EXISTS measures (
    protocol TEXT NOT NULL, measure TEXT NOT NULL, label TEXT NOT NULL,
    higher_is_better INTEGER, pooled INTEGER NOT NULL, percent INTEGER NOT NULL,
    digits INTEGER NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (protocol, measure)
);
""" + _RESULTS + _PROTOCOLS

#: measure name of the row that records a failed (sample, protocol)
ERROR_MEASURE = "*"


class StoreVersionError(TfgbenchError):
    """The results file was written by a newer tfgbench, or is not a results store."""


@dataclass(frozen=True)
class ModelKey:
    model: str
    checkpoint_sha256: str
    settings_hash: str
    delivery: str = "lossless"


@dataclass(frozen=True)
class DatasetKey:
    dataset: str
    dataset_version: str
    split: str
    boxes: str = "dataset"

    @property
    def sized(self) -> DatasetKey:
        """The key of the ``datasets`` table (sample counts do not depend on the face boxes)."""
        return DatasetKey(self.dataset, self.dataset_version, self.split)


@dataclass(frozen=True)
class ProtocolResult:
    """What one protocol produced for one sample: scores per measure, or the error text."""

    protocol: str
    evaluator_sha256: str
    scores: dict[str, Score]
    error: str | None = None
    seconds: float | None = None
    protocol_version: int = 1
    sample_boxes: str | None = None


@dataclass(frozen=True)
class Row:
    """One stored result row (see module docstring)."""

    model: str
    checkpoint_sha256: str
    settings_hash: str
    delivery: str
    dataset: str
    dataset_version: str
    split: str
    boxes: str
    sample_id: str
    protocol: str
    protocol_version: int
    evaluator_sha256: str
    measure: str
    value: float | None
    num: float | None
    den: float | None
    error: str | None
    seconds: float | None
    run_id: int | None
    sample_boxes: str | None = None

    @property
    def model_key(self) -> tuple[str, str, str, str]:
        return (self.model, self.checkpoint_sha256, self.settings_hash, self.delivery)


_ROW_COLUMNS = ", ".join(f.name for f in fields(Row))
_MODEL_COLS = "model=? AND checkpoint_sha256=? AND settings_hash=? AND delivery=?"
_DATA_COLS = "dataset=? AND dataset_version=? AND split=? AND boxes=?"


def _model_args(m: ModelKey) -> tuple[str, ...]:
    return (m.model, m.checkpoint_sha256, m.settings_hash, m.delivery)


def _data_args(d: DatasetKey) -> tuple[str, ...]:
    return (d.dataset, d.dataset_version, d.split, d.boxes)


class Store:
    """A SQLite results database (``<workdir>/results.sqlite``), single writer, WAL mode."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60)
        try:
            self._open()
        except sqlite3.DatabaseError as e:
            self.db.close()
            raise StoreVersionError(f"{self.path}: not a tfgbench results store ({e})") from e
        except BaseException:
            self.db.close()
            raise

    def _open(self) -> None:
        from tfgbench import __version__

        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version > SCHEMA_VERSION:
            written = self._meta("last_written_by") or "an unknown version"
            raise StoreVersionError(
                f"{self.path}: this results store was written by a newer tfgbench ({written}; store schema "
                f"{version}). This tfgbench ({__version__}) reads schema {SCHEMA_VERSION} and older and will not "
                "touch it: upgrade tfgbench, or point --workdir at another folder.")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        if version < SCHEMA_VERSION and "results" in tables:
            from tfgbench.store_migrate import migrate

            migrate(self.db, version, self.path)
        self.db.executescript(SCHEMA)
        with self.db:
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('created_by', ?)", (f"tfgbench {__version__}",))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('last_written_by', ?)", (f"tfgbench {__version__}",))

    def _meta(self, key: str) -> str | None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else str(row[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.db:
            yield self.db

    # -- what results mean ------------------------------------------------------------------
    def record_protocol(self, spec: ProtocolSpec) -> None:
        with self.transaction() as db:
            settings = json.dumps(dict(spec.settings), sort_keys=True, default=str)
            db.execute("INSERT OR REPLACE INTO protocols VALUES (?, ?, ?, ?)",
                       (spec.name, spec.version, spec.summary, settings))
            for position, m in enumerate(spec.measures):
                better = None if m.higher_is_better is None else int(m.higher_is_better)
                db.execute("INSERT OR REPLACE INTO measures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (spec.name, m.key, m.label, better, int(m.pooled),
                            int(m.percent), m.digits, position))

    def measures(self) -> dict[tuple[str, str], Measure]:
        rows = self.db.execute("SELECT protocol, measure, label, higher_is_better, pooled, percent, digits "
                               "FROM measures ORDER BY protocol, position").fetchall()
        return {(r[0], r[1]): Measure(r[1], r[2], None if r[3] is None else bool(r[3]), bool(r[4]), bool(r[5]), r[6])
                for r in rows}

    def record_dataset(self, key: DatasetKey, num_samples: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?)",
                       (key.dataset, key.dataset_version, key.split, num_samples))

    def dataset_sizes(self) -> dict[DatasetKey, int]:
        rows = self.db.execute("SELECT dataset, dataset_version, split, num_samples FROM datasets")
        return {DatasetKey(r[0], r[1], r[2]): r[3] for r in rows}

    def start_run(self, command: str, model: ModelKey, settings: dict[str, Any], info: dict[str, Any],
                  dataset: DatasetKey, device: str, key_files: dict[str, str] | None = None) -> int:
        from tfgbench import __version__

        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (started, command, tfgbench_version, model, checkpoint_sha256,"
                " settings_hash, model_settings, model_info, dataset, dataset_version, split, device,"
                " delivery, boxes, key_files) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), command, __version__, model.model, model.checkpoint_sha256, model.settings_hash,
                 json.dumps(settings, sort_keys=True, default=str), json.dumps(info, sort_keys=True),
                 dataset.dataset, dataset.dataset_version, dataset.split, device, model.delivery, dataset.boxes,
                 json.dumps(key_files or {}, sort_keys=True)))
            return int(cur.lastrowid)

    # -- results ------------------------------------------------------------------------------
    def done(self, model: ModelKey, dataset: DatasetKey, protocol: str, evaluator_sha256: str,
             include_errors: bool = True, protocol_version: int = 1) -> set[str]:
        """Sample ids that already have rows for this model, dataset split, protocol (version) and
        evaluator (with ``include_errors=False``, failed samples are not counted as done)."""
        sql = (f"SELECT DISTINCT sample_id FROM results WHERE {_MODEL_COLS} AND {_DATA_COLS} AND protocol=? "
               "AND protocol_version=? AND evaluator_sha256=?")
        if not include_errors:
            sql += " AND error IS NULL"
        args = (*_model_args(model), *_data_args(dataset), protocol, protocol_version, evaluator_sha256)
        return {r[0] for r in self.db.execute(sql, args)}

    def failed_samples(self, model: ModelKey, dataset: DatasetKey, protocols: Sequence[tuple[str, int, str]],
                       sample_ids: Sequence[str]) -> int:
        """How many of ``sample_ids`` have an error row for one of ``protocols`` (``(protocol,
        version, evaluator sha256)``) under this model and dataset key."""
        wanted = set(sample_ids)
        failed: set[str] = set()
        for protocol, version, evaluator in protocols:
            sql = (f"SELECT DISTINCT sample_id FROM results WHERE {_MODEL_COLS} AND {_DATA_COLS} AND protocol=? "
                   "AND protocol_version=? AND evaluator_sha256=? AND error IS NOT NULL")
            args = (*_model_args(model), *_data_args(dataset), protocol, version, evaluator)
            failed.update(r[0] for r in self.db.execute(sql, args) if r[0] in wanted)
        return len(failed)

    def write_sample(self, model: ModelKey, dataset: DatasetKey, sample_id: str, run_id: int | None,
                     results: Sequence[ProtocolResult]) -> None:
        """Store one sample's results atomically. Each protocol's earlier rows for this sample
        (an earlier error, say) are replaced by the new ones."""
        now = time.time()
        head = (*_model_args(model), *_data_args(dataset), sample_id)
        with self.transaction() as db:
            for r in results:
                key = (*head, r.protocol, r.protocol_version, r.evaluator_sha256)
                db.execute(f"DELETE FROM results WHERE {_MODEL_COLS} AND {_DATA_COLS} AND sample_id=? AND "
                           "protocol=? AND protocol_version=? AND evaluator_sha256=?", key)
                if r.error is not None:
                    entries = [(ERROR_MEASURE, None, None, None, r.error)]
                else:
                    entries = [(k, s.value, s.num, s.den, None) for k, s in r.scores.items()]
                for measure, value, num, den, error in entries:
                    db.execute("INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                               (*key, measure, value, num, den, error, r.seconds, run_id, now, r.sample_boxes))

    def rows(self, dataset: str | None = None, where: str = "", args: Iterable[Any] = ()) -> list[Row]:
        sql = f"SELECT {_ROW_COLUMNS} FROM results"
        clauses, params = [], list(args)
        if dataset is not None:
            clauses.append("dataset = ?")
            params.insert(0, dataset)
        if where:
            clauses.append(where)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY model, dataset, split, protocol, measure, sample_id"
        return [Row(*r) for r in self.db.execute(sql, params)]

    def runs(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM runs ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
