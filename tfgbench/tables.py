"""Leaderboard tables: a pure function of the results frame (:func:`tfgbench.results`).

One table per (dataset, dataset version, split, face-box source). A row per model (name,
checkpoint, settings, delivery); a column per (protocol, protocol version, evaluator, measure) with
an arrow for the better direction, so rows of two protocol versions, two evaluators, two
deliveries or two box sources never meet in one cell. A cell is the dataset value of that measure
(:func:`tfgbench.metrics.base.aggregate`); it stands unmarked only when the model has a successful
row for *every* sample of the split. A partial cell (``--limit``, an interrupted run, failed
samples) shows the value over the samples it covers, marked ``⚠ n/N`` (and ``k failed``), so a
10-sample trial prints numbers that cannot pass for a full result. Where the partial cells of one
column cover different samples, each is computed over the samples they all share (``n`` counts
them) and the caption says so. :attr:`Cell.complete` tells full cells from partial ones; only
complete cells get confidence intervals or can be marked best.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tfgbench.metrics.base import Measure
from tfgbench.store import ERROR_MEASURE, DatasetKey, Row

if TYPE_CHECKING:
    import pandas

#: what :func:`render` writes; ``tfgbench table --format csv`` is the results frame itself
#: (:func:`tfgbench.frame.to_csv`), not a rendering of the tables
FORMATS = ("md", "latex", "html", "csv-summary")
_MODEL = ["model", "checkpoint_sha256", "settings_hash", "delivery"]
_DATA = ["dataset", "dataset_version", "split", "boxes"]
_CELL = [*_MODEL, "protocol", "protocol_version", "evaluator_sha256"]
_ORDER_FIRST, _ORDER_LAST = ("ground-truth",), ("static-frame",)


ModelRow = tuple[str, str, str, str]  # (model, checkpoint sha256, settings hash, delivery)


@dataclass(frozen=True)
class Column:
    protocol: str
    evaluator_sha256: str
    measure: Measure
    show_evaluator: bool = False
    protocol_version: int = 1
    show_version: bool = False

    @property
    def header(self) -> str:
        arrow = {True: " ↑", False: " ↓", None: ""}[self.measure.higher_is_better]
        unit = " %" if self.measure.percent else ""
        version = f" v{self.protocol_version}" if self.show_version else ""
        evaluator = f" @{self.evaluator_sha256[:8]}" if self.show_evaluator else ""
        return f"{self.measure.label}{unit}{arrow} ({self.protocol}{version}{evaluator})"


@dataclass
class Cell:
    value: float | None
    covered: int
    failed: int
    total: int
    ci: tuple[float, float] | None = None  # bootstrap interval (tfgbench.stats.attach_cis, `table --ci`)
    #: samples the (partial) value averages: ``covered``, or fewer when compared on shared samples
    used: int | None = None

    @property
    def complete(self) -> bool:
        return self.value is not None and self.covered == self.total and self.failed == 0


@dataclass
class Table:
    dataset: DatasetKey
    total: int
    columns: list[Column]
    models: list[ModelRow]
    cells: dict[tuple[ModelRow, Column], Cell] = field(default_factory=dict)
    #: columns whose partial cells were compared on the samples they share (caption note)
    shared: list[Column] = field(default_factory=list)

    def model_label(self, key: ModelRow) -> str:
        delivery = f" [{key[3]} delivery]" if key[3] == "official" else ""
        same_name = [m for m in self.models if m[0] == key[0] and m[3] == key[3]]
        if len(same_name) == 1:
            return key[0] + delivery
        ckpt = key[1][:8] if key[1] not in ("none", "external") else key[1]
        return f"{key[0]} ({ckpt}, settings {key[2][:6]}){delivery}"


def _model_order(key: ModelRow) -> tuple[int, str, str, str, str]:
    rank = 0 if key[0] in _ORDER_FIRST else 2 if key[0] in _ORDER_LAST else 1
    return (rank, *key)


def build_tables(results: pandas.DataFrame | Sequence[Row], measures: dict[tuple[str, str], Measure],
                 sizes: dict[DatasetKey, int]) -> list[Table]:
    """One :class:`Table` per dataset split (see the module docstring), computed from the results
    frame of :func:`tfgbench.results` (a list of :class:`~tfgbench.store.Row` is turned into one).

    A cell aggregates the model's successful rows of its protocol, version, evaluator and measure
    (:func:`tfgbench.metrics.base.aggregate`): ``sum(num) / sum(den)`` for a pooled measure, the
    mean of the values otherwise; error rows (measure ``*``) count the failed samples."""
    import pandas as pd

    from tfgbench.frame import to_frame

    frame = results if isinstance(results, pd.DataFrame) else to_frame(results)
    tables = []
    for dvalues, drows in frame.groupby(_DATA, sort=False):
        tables.append(_table(DatasetKey(*dvalues), drows, measures, sizes))
    return sorted(tables, key=lambda t: (t.dataset.dataset, t.dataset.split, t.dataset.dataset_version,
                                         t.dataset.boxes))


def _table(dkey: DatasetKey, drows: pandas.DataFrame, measures: dict[tuple[str, str], Measure],
           sizes: dict[DatasetKey, int]) -> Table:
    models = sorted(set(drows[_MODEL].itertuples(index=False, name=None)), key=_model_order)
    variants: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for protocol, version, ev in drows[["protocol", "protocol_version", "evaluator_sha256"]].drop_duplicates() \
            .itertuples(index=False, name=None):
        variants[protocol].add((int(version), ev))
    columns = []
    for protocol in sorted(variants):
        versions = {v for v, _ in variants[protocol]}
        for version, ev in sorted(variants[protocol]):
            show_ev = len({e for v, e in variants[protocol] if v == version}) > 1
            columns += [Column(protocol, ev, m, show_evaluator=show_ev, protocol_version=version,
                               show_version=len(versions) > 1)
                        for (p, _), m in measures.items() if p == protocol]
    ids_total = sizes.get(dkey.sized) or int(drows["sample_id"].nunique())
    table = Table(dkey, ids_total, columns, models)
    ok = drows[drows["error"].isna()]
    sums = ok.groupby([*_CELL, "measure"], sort=False).agg(
        n=("sample_id", "nunique"), num=("num", _total), den=("den", _total), mean=("value", _mean))
    stats = {key: row for key, row in zip(sums.index, sums.itertuples(index=False))}
    errors = drows[drows["measure"] == ERROR_MEASURE].groupby(_CELL, sort=False)["sample_id"].nunique()
    failed = {key: int(n) for key, n in errors.items()}
    for col in columns:
        where = (col.protocol, col.protocol_version, col.evaluator_sha256)
        covered = {m: int(stats[(*m, *where, col.measure.key)].n) if (*m, *where, col.measure.key) in stats else 0
                   for m in models}
        failures = {m: failed.get((*m, *where), 0) for m in models}
        partial = [m for m in models if covered[m] and (covered[m] < ids_total or failures[m])]
        samples = {m: _samples(ok, m, col) for m in partial} if len(partial) > 1 else {}
        shared = frozenset.intersection(*samples.values()) if len(set(samples.values())) > 1 else None
        if shared is not None:
            table.shared.append(col)
        for mkey in models:
            value: float | None = None
            used = covered[mkey]
            if shared is not None and mkey in partial:
                use = ok[_cell_mask(ok, mkey, col) & ok["sample_id"].isin(shared)]
                used = len(use)
                if used:
                    value = _value(col.measure, _total(use["num"]), _total(use["den"]), _mean(use["value"]))
            elif used:
                row = stats[(*mkey, *where, col.measure.key)]
                value = _value(col.measure, row.num, row.den, row.mean)
            table.cells[(mkey, col)] = Cell(value, covered[mkey], failures[mkey], ids_total, used=used)
    return table


def _value(measure: Measure, num: float, den: float, mean: float) -> float:
    """:func:`tfgbench.metrics.base.aggregate` from a group's sums and mean."""
    if measure.pooled:
        return float(num) / float(den) if den else math.nan
    return float(mean)


def _total(values: pandas.Series) -> float:
    """The sum of a group's non-missing values in row order, added one by one like
    :func:`~tfgbench.metrics.base.aggregate` (pandas' own sum compensates rounding, which moves the
    last digits of a ``repr``)."""
    return sum(values.dropna().tolist())


def _mean(values: pandas.Series) -> float:
    return sum(values.tolist()) / len(values) if len(values) else math.nan


def _cell_mask(ok: pandas.DataFrame, mkey: ModelRow, col: Column) -> pandas.Series:
    mask = ok["protocol"] == col.protocol
    for name, value in (*zip(_MODEL, mkey), ("protocol_version", col.protocol_version),
                        ("evaluator_sha256", col.evaluator_sha256), ("measure", col.measure.key)):
        mask &= ok[name] == value
    return mask


def _samples(ok: pandas.DataFrame, mkey: ModelRow, col: Column) -> frozenset[str]:
    return frozenset(ok.loc[_cell_mask(ok, mkey, col), "sample_id"])


def format_cell(cell: Cell, measure: Measure) -> str:
    if cell.complete and cell.value is not None:
        if math.isinf(cell.value) or math.isnan(cell.value):
            return str(cell.value)
        value = cell.value * (100 if measure.percent else 1)
        if cell.ci is not None:
            from tfgbench.stats import format_ci

            return f"{value:.{measure.digits}f} {format_ci(*cell.ci, measure)}".rstrip()
        return f"{value:.{measure.digits}f}"
    if cell.covered == 0 and cell.failed == 0:
        return ""
    used = cell.covered if cell.used is None else cell.used
    note = f"⚠ {used}/{cell.total}" + (f", {cell.failed} failed" if cell.failed else "")
    if cell.value is None or not math.isfinite(cell.value) or used == 0:
        return note
    return f"{cell.value * (100 if measure.percent else 1):.{measure.digits}f} {note}"


def provenance(table: Table) -> str:
    """Where the numbers come from: each model's checkpoint, settings and delivery, each
    evaluator's hash (with its side files), the face-box source."""
    models = "; ".join(f"{table.model_label(m)}: checkpoint {m[1][:12]}, settings {m[2][:8]}, delivery {m[3]}"
                       for m in table.models)
    evaluators = sorted({(c.protocol, c.protocol_version, c.evaluator_sha256[:12]) for c in table.columns
                         if c.evaluator_sha256 != "none"})
    text = f"Models: {models}.\n"
    if evaluators:
        text += "Evaluators: " + "; ".join(f"{p} v{v} weights sha256 {h}" for p, v, h in evaluators) + ".\n"
    if table.dataset.boxes != "dataset":
        text += f"Face boxes: {table.dataset.boxes}.\n"
    return text


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"), ("⚠", r"\textdagger{}")):
        text = text.replace(a, b)
    return text


def render(table: Table, fmt: str = "md") -> str:
    """Render one table as Markdown, LaTeX, HTML or a CSV summary (one line per cell)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r} (the per-sample CSV is "
                         "tfgbench.frame.to_csv(tfgbench.results(...)))")
    if fmt == "csv-summary":
        return _render_csv(table)
    headers = ["Model", *[c.header for c in table.columns]]
    body = [[table.model_label(m), *[format_cell(table.cells[(m, c)], c.measure) for c in table.columns]]
            for m in table.models]
    d = table.dataset
    boxes = "" if d.boxes == "dataset" else ", face boxes " + re.sub(r"([0-9a-f]{12})[0-9a-f]+", r"\1", d.boxes)
    caption = f"{d.dataset} ({d.split} split, version {d.dataset_version}{boxes}, {table.total} samples)."
    if any(not cell.complete and (cell.covered or cell.failed) for cell in table.cells.values()):
        caption += (" ⚠ n/N: partial coverage, the value is the mean over n of the N samples only (a trial with "
                    "--limit, an interrupted run or failed samples): not comparable with full results.")
    if table.shared:
        names = sorted({c.protocol for c in table.shared})
        caption += (f" Partial cells of {', '.join(names)} are compared on the samples all partial models share "
                    "(n counts them).")
    from tabulate import tabulate

    if fmt == "md":
        return f"{tabulate(body, headers, tablefmt='github', disable_numparse=True)}\n\n{caption}\n{provenance(table)}"
    if fmt == "html":
        return f"{tabulate(body, headers, tablefmt='html', disable_numparse=True)}\n<p>{caption}</p>\n"
    escaped = [[_latex_escape(x) for x in row] for row in [headers, *body]]
    latex = tabulate(escaped[1:], escaped[0], tablefmt="latex_raw", disable_numparse=True)
    return ("\\begin{table}\n\\centering\n" + latex + f"\n\\caption{{{_latex_escape(caption)}}}\n\\end{{table}}\n")


def _render_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    with_ci = any(cell.ci is not None for cell in table.cells.values())
    writer.writerow(["dataset", "dataset_version", "split", "boxes", "model", "checkpoint_sha256", "settings_hash",
                     "delivery", "protocol_version", "protocol", "evaluator_sha256", "measure", "value", "covered",
                     "failed", "total", *(["ci_low", "ci_high"] if with_ci else [])])
    d = table.dataset
    for m in table.models:
        for c in table.columns:
            cell = table.cells[(m, c)]
            value = "" if not cell.complete or cell.value is None else repr(cell.value)
            ci = [repr(x) for x in cell.ci] if with_ci and cell.ci is not None else ["", ""] if with_ci else []
            writer.writerow([d.dataset, d.dataset_version, d.split, d.boxes, *m, c.protocol_version, c.protocol,
                             c.evaluator_sha256, c.measure.key, value, cell.covered, cell.failed, cell.total, *ci])
    return out.getvalue()
