"""Stored results as a pandas DataFrame: :func:`results` (``tfgbench.results(...)``).

One row per stored result row: model, checkpoint sha256, settings hash, delivery, dataset,
dataset version, split, face-box source, sample id, protocol, protocol version, evaluator sha256,
measure, with the value, the pooled sufficient statistics (``num``/``den``), the error text of a
failed sample (value NaN, measure ``*``), seconds, run id and the face boxes the sample used.
pandas is optional: ``pip install pandas`` (or the ``pandas`` extra) when this is called without it.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfgbench.errors import TfgbenchError

if TYPE_CHECKING:
    import pandas

def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise TfgbenchError("tfgbench.results() returns a pandas DataFrame, and pandas is not installed: "
                            "pip install pandas (or pip install 'tfgbench[pandas]')") from None
    return pandas


def results(workdir: str | Path = "tfgbench-runs", *, dataset: str | None = None, split: str | None = None,
            model: str | None = None, protocol: str | None = None, errors: bool = True) -> pandas.DataFrame:
    """The rows of ``<workdir>/results.sqlite`` (or of the ``.sqlite`` file given) as a DataFrame,
    filtered by ``dataset``, ``split``, ``model`` and ``protocol`` when given; ``errors=False`` drops
    error rows. Raises :class:`~tfgbench.errors.TfgbenchError` when there is no store there or
    pandas is missing."""
    pd = _pandas()
    from tfgbench.store import Row, Store

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
    names = [f.name for f in fields(Row)]
    frame = pd.DataFrame([tuple(getattr(r, n) for n in names) for r in rows], columns=names)
    return frame.astype({"value": "float64", "num": "float64", "den": "float64", "seconds": "float64"})
