"""Stored results as a pandas DataFrame: :func:`results` (``tfgbench.results(...)``).

One row per stored result row, that is per model, dataset, split, sample, protocol and measure,
with the key columns: model, checkpoint sha256, settings hash, delivery, dataset, dataset version,
split, face-box source (``boxes``), sample id, protocol, protocol version, evaluator sha256 and
measure; then the value, the pooled sufficient statistics (``num``/``den``), the error text of a
failed sample (value NaN, measure ``*``), seconds, run id and the face boxes the sample used.

This frame is what ``tfgbench table`` renders (:func:`tfgbench.tables.build_tables`) and what
``tfgbench table --format csv`` writes (:func:`to_csv`); :func:`read_csv` reads that file back into
an equal frame. pandas is imported when these are called, never by ``import tfgbench``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from tfgbench.errors import TfgbenchError

if TYPE_CHECKING:
    import pandas

    from tfgbench.store import Row

#: dtypes of the numeric columns; every other column (the fields of :class:`tfgbench.store.Row`, in
#: order) is text, pandas' ``"string"`` dtype (missing values are ``pd.NA``) with pandas 2 and 3 alike
NUMERIC = {"protocol_version": "int64", "value": "float64", "num": "float64", "den": "float64",
           "seconds": "float64", "run_id": "Int64"}
#: text columns that may be empty (written as an empty CSV field)
OPTIONAL_TEXT = ("error", "sample_boxes")


def columns() -> list[str]:
    from tfgbench.store import Row

    return [f.name for f in fields(Row)]


def to_frame(rows: Sequence[Row]) -> pandas.DataFrame:
    """Rows of :meth:`tfgbench.store.Store.rows` as the results frame (same order)."""
    import pandas as pd

    names = columns()
    frame = pd.DataFrame([tuple(getattr(r, n) for n in names) for r in rows], columns=names)
    return frame.astype(dtypes())


def dtypes() -> dict[str, str]:
    return {n: NUMERIC.get(n, "string") for n in columns()}


def results(workdir: str | Path = "tfgbench-runs", *, dataset: str | None = None, split: str | None = None,
            model: str | None = None, protocol: str | None = None, errors: bool = True) -> pandas.DataFrame:
    """The rows of ``<workdir>/results.sqlite`` (or of the ``.sqlite`` file given) as a DataFrame,
    filtered by ``dataset``, ``split``, ``model`` and ``protocol`` when given; ``errors=False`` drops
    error rows. Raises :class:`~tfgbench.errors.TfgbenchError` when there is no store there."""
    from tfgbench.store import Store

    path = Path(workdir)
    path = path if path.suffix == ".sqlite" else path / "results.sqlite"
    if not path.is_file():
        raise TfgbenchError(f"no results at {path}: run `tfgbench run ...` first (or pass the workdir)")
    clauses, args = [], []
    for column, value in (("split", split), ("model", model), ("protocol", protocol)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if not errors:
        clauses.append("error IS NULL")
    with Store(path) as store:
        rows = store.rows(dataset, " AND ".join(clauses), args)
    return to_frame(rows)


def to_csv(frame: pandas.DataFrame) -> str:
    """The frame as CSV text: a header of the column names, one line per row, floats at full
    precision (``repr``), empty fields for missing values."""
    return frame.to_csv(index=False, lineterminator="\n")


def read_csv(path: str | Path) -> pandas.DataFrame:
    """Read a file written by ``tfgbench table --format csv`` back into the frame :func:`results`
    returns (ids and hashes stay text even when they look like numbers)."""
    import pandas as pd

    names = columns()
    missing = {n: [""] for n in (*NUMERIC, *OPTIONAL_TEXT)}
    frame = pd.read_csv(path, dtype=dtypes(), keep_default_na=False, na_values=missing)
    if list(frame.columns) != names:
        raise TfgbenchError(f"{path}: not a `tfgbench table --format csv` file (columns {list(frame.columns)})")
    return frame
