"""The results store: SQLite, one row per sample, metric protocol and measure.

Key of a result row: (model, checkpoint sha256, model settings hash, dataset, dataset version,
split, sample id, protocol, evaluator sha256, measure). A row holds the value, the sufficient
statistics of pooled measures (``num``/``den``: WER edits and reference words, summed frame
values and frame counts), the seconds spent, and, for a failed sample, the error text (value
NULL). Every write of one sample's rows is one transaction, so killing the process loses at most
the samples in flight. Runs record the command line, versions and settings; protocols and
measures record what the numbers mean, so tables are a pure function of the database.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tfgbench.metrics.base import Measure, ProtocolSpec, Score

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    command TEXT NOT NULL,
    tfgbench_version TEXT NOT NULL,
    model TEXT NOT NULL, checkpoint_sha256 TEXT NOT NULL, settings_hash TEXT NOT NULL,
    model_settings TEXT NOT NULL, model_info TEXT NOT NULL,
    dataset TEXT NOT NULL, dataset_version TEXT NOT NULL, split TEXT NOT NULL,
    device TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    dataset TEXT NOT NULL, dataset_version TEXT NOT NULL, split TEXT NOT NULL,
    num_samples INTEGER NOT NULL,
    PRIMARY KEY (dataset, dataset_version, split)
);
CREATE TABLE IF NOT EXISTS protocols (
    protocol TEXT PRIMARY KEY, summary TEXT NOT NULL, settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS measures (
    protocol TEXT NOT NULL, measure TEXT NOT NULL, label TEXT NOT NULL,
    higher_is_better INTEGER, pooled INTEGER NOT NULL, percent INTEGER NOT NULL,
    digits INTEGER NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (protocol, measure)
);
CREATE TABLE IF NOT EXISTS results (
    model TEXT NOT NULL, checkpoint_sha256 TEXT NOT NULL, settings_hash TEXT NOT NULL,
    dataset TEXT NOT NULL, dataset_version TEXT NOT NULL, split TEXT NOT NULL,
    sample_id TEXT NOT NULL, protocol TEXT NOT NULL, evaluator_sha256 TEXT NOT NULL,
    measure TEXT NOT NULL,
    value REAL, num REAL, den REAL,
    error TEXT, seconds REAL, run_id INTEGER, created REAL NOT NULL,
    PRIMARY KEY (model, checkpoint_sha256, settings_hash, dataset, dataset_version, split,
                 sample_id, protocol, evaluator_sha256, measure)
);
"""

#: measure name of the row that records a failed (sample, protocol)
ERROR_MEASURE = "*"


@dataclass(frozen=True)
class ModelKey:
    model: str
    checkpoint_sha256: str
    settings_hash: str


@dataclass(frozen=True)
class DatasetKey:
    dataset: str
    dataset_version: str
    split: str


@dataclass(frozen=True)
class ProtocolResult:
    """What one protocol produced for one sample: scores per measure, or the error text."""

    protocol: str
    evaluator_sha256: str
    scores: dict[str, Score]
    error: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Row:
    """One stored result row (see module docstring)."""

    model: str
    checkpoint_sha256: str
    settings_hash: str
    dataset: str
    dataset_version: str
    split: str
    sample_id: str
    protocol: str
    evaluator_sha256: str
    measure: str
    value: float | None
    num: float | None
    den: float | None
    error: str | None
    seconds: float | None
    run_id: int | None


class Store:
    """A SQLite results database (``<workdir>/results.sqlite``), single writer, WAL mode."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.db.commit()

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
            db.execute("INSERT OR REPLACE INTO protocols VALUES (?, ?, ?)", (spec.name, spec.summary, settings))
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
                  dataset: DatasetKey, device: str) -> int:
        from tfgbench import __version__

        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (started, command, tfgbench_version, model, checkpoint_sha256,"
                " settings_hash, model_settings, model_info, dataset, dataset_version, split, device)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), command, __version__, model.model, model.checkpoint_sha256, model.settings_hash,
                 json.dumps(settings, sort_keys=True, default=str), json.dumps(info, sort_keys=True),
                 dataset.dataset, dataset.dataset_version, dataset.split, device))
            return int(cur.lastrowid)

    # -- results ------------------------------------------------------------------------------
    def done(self, model: ModelKey, dataset: DatasetKey, protocol: str, evaluator_sha256: str,
             include_errors: bool = True) -> set[str]:
        """Sample ids that already have rows for this model, dataset split, protocol and evaluator
        (with ``include_errors=False``, failed samples are not counted as done)."""
        sql = ("SELECT DISTINCT sample_id FROM results WHERE model=? AND checkpoint_sha256=? AND "
               "settings_hash=? AND dataset=? AND dataset_version=? AND split=? AND protocol=? AND "
               "evaluator_sha256=?")
        if not include_errors:
            sql += " AND error IS NULL"
        args = (*asdict(model).values(), *asdict(dataset).values(), protocol, evaluator_sha256)
        return {r[0] for r in self.db.execute(sql, args)}

    def write_sample(self, model: ModelKey, dataset: DatasetKey, sample_id: str, run_id: int | None,
                     results: Sequence[ProtocolResult]) -> None:
        """Store one sample's results atomically. Each protocol's earlier rows for this sample
        (an earlier error, say) are replaced by the new ones."""
        now = time.time()
        base = (*asdict(model).values(), *asdict(dataset).values(), sample_id)
        with self.transaction() as db:
            for r in results:
                db.execute("DELETE FROM results WHERE model=? AND checkpoint_sha256=? AND settings_hash=? AND "
                           "dataset=? AND dataset_version=? AND split=? AND sample_id=? AND protocol=? AND "
                           "evaluator_sha256=?", (*base, r.protocol, r.evaluator_sha256))
                if r.error is not None:
                    entries = [(ERROR_MEASURE, None, None, None, r.error)]
                else:
                    entries = [(k, s.value, s.num, s.den, None) for k, s in r.scores.items()]
                for measure, value, num, den, error in entries:
                    db.execute("INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                               (*base, r.protocol, r.evaluator_sha256, measure, value, num, den, error,
                                r.seconds, run_id, now))

    def rows(self, dataset: str | None = None, where: str = "", args: Iterable[Any] = ()) -> list[Row]:
        sql = ("SELECT model, checkpoint_sha256, settings_hash, dataset, dataset_version, split, sample_id, "
               "protocol, evaluator_sha256, measure, value, num, den, error, seconds, run_id FROM results")
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
