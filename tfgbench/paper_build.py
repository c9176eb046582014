"""Build the paper tables of :mod:`tfgbench.paper` from a results store (cells, notes, bold)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from tfgbench.compare import latest_runs, resolve_model
from tfgbench.metrics.base import Measure, aggregate
from tfgbench.paper import (
    COLUMNS,
    CONTROLS,
    LABELS,
    MEASURES,
    PARTNER,
    READERS,
    ROWS,
    TITLES,
    PaperTable,
    PCell,
    PCol,
    protocol_for,
)
from tfgbench.stats import ALPHA, GroupKey, SampleValues, bootstrap_ci, group_rows, paired_compare
from tfgbench.store import DatasetKey, Row, Store

_DEFAULTS = {"lse_c": True, "lse_d": False, "psnr": True, "ssim": True, "wer": False,
             "intl": True, "sync": True, "auth": True}
REPO = Path(__file__).resolve().parents[1]


def _measure(measures: dict, protocol: str, key: str, label: str) -> Measure:
    m = measures.get((protocol, key))
    if m is not None:
        return m
    return Measure(key, label, _DEFAULTS.get(key), pooled=key in ("psnr", "ssim"), percent=key == "wer",
                   digits=1 if key == "wer" else 3 if key == "ssim" else 2)


class _Notes:
    def __init__(self, table: PaperTable) -> None:
        self.table = table

    def add(self, cell: PCell, text: str) -> None:
        if text not in self.table.notes:
            self.table.notes.append(text)
        cell.note = chr(ord("a") + self.table.notes.index(text)) if len(self.table.notes) <= 26 else \
            str(self.table.notes.index(text) + 1)


def _dataset_key(rows: list[Row], dataset: str, split: str, table: PaperTable) -> DatasetKey | None:
    counts = Counter(DatasetKey(r.dataset, r.dataset_version, r.split, r.boxes) for r in rows
                     if r.dataset == dataset and r.split == split)
    if not counts:
        return None
    chosen = max(counts, key=lambda k: (counts[k], k.dataset_version))
    for other in counts:
        if other != chosen:
            table.sources.append(f"{dataset}: also stored under version {other.dataset_version}, boxes "
                                 f"{other.boxes[:24]} (not shown)")
    return chosen


def build_paper_table(store: Store, name: str, dataset: str, split: str = "test", ci: bool = False,
                      resamples: int = 2000, second: str | None = None, models: list[str] | None = None,
                      overrides: dict[str, str] | None = None, readers: dict[str, str] | None = None) -> PaperTable:
    """One paper table from the store; see :mod:`tfgbench.paper`."""
    datasets = [dataset]
    if name in ("table1", "table4"):
        partner = PARTNER.get(dataset) if second is None else (None if second == "none" else second)
        if partner and partner != dataset:
            datasets.append(partner)
    all_rows = [r for d in datasets for r in store.rows(d)]
    measures, sizes = store.measures(), store.dataset_sizes()
    table = PaperTable(name, TITLES[name], [], [], ci=ci, resamples=resamples)
    dkeys = {d: _dataset_key(all_rows, d, split, table) for d in datasets}
    rows = [r for r in all_rows if DatasetKey(r.dataset, r.dataset_version, r.split, r.boxes) in dkeys.values()]
    groups = group_rows(rows, measures)
    latest = latest_runs(rows)
    stored = {r.model_key for r in rows}
    ctx = _Ctx(table, groups, dkeys, sizes, split, ci, resamples, _Notes(table))
    if name == "table2":
        _table2(ctx, dataset, stored, latest, readers, overrides)
    else:
        specs = [(LABELS.get(m, m), m) for m in models] if models else list(ROWS[name])
        if name == "table1" and not models:
            listed = {m for t in ("table1", "table3", "table4") for _, m in ROWS[t]}
            extra = sorted({k[0] for k in stored if k[0] not in listed and not k[0].startswith("degrade")},
                           key=lambda n: (n in CONTROLS, n))
            specs += [(LABELS.get(n, n), n) for n in extra]
        table.rows = [(label, spec) for label, spec in specs]
        for d in datasets:
            for code in COLUMNS[name]:
                kind, label = MEASURES[code]
                protocol = protocol_for(kind, d, overrides)
                key = "wer" if code == "wer3" else code
                table.columns.append(PCol(f"{d}:{code}", label, d, protocol, _measure(measures, protocol, key, label)))
        used: dict[tuple[str, str], tuple] = {}
        for j, col in enumerate(table.columns):
            _choose_evaluator(ctx, col)
            for i, (_, spec) in enumerate(table.rows):
                mkey = resolve_model(spec, {k for k in stored if _on(k, dkeys[col.dataset], groups)}, latest,
                                     strict=False) if dkeys[col.dataset] else None
                table.cells[(i, j)] = _rating_cell(ctx, spec, mkey, col) if name == "table5" else \
                    _cell(ctx, spec, mkey, col)
                if mkey is not None:
                    used[(spec, str(col.dataset))] = mkey
        for (spec, d), mkey in used.items():
            table.sources.append(f"{spec} on {d}: checkpoint {mkey[1][:12]}, settings {mkey[2][:8]}"
                                 + (f", delivery {mkey[3]}" if mkey[3] != "lossless" else ""))
    if name == "table5":
        _agreement(ctx, stored)
    else:
        _bold(ctx, resamples)
    for d, k in dkeys.items():
        n = sizes.get(k.sized) if k else None
        table.sources.insert(0, f"{d}: no stored results for split {split}" if k is None else
                             f"{d}: {k.split} split, version {k.dataset_version}, {n or '?'} clips"
                             + (f", face boxes {k.boxes[:24]}" if k.boxes != "dataset" else ""))
    evaluators = sorted({f"{c.protocol} ({c.dataset}): evaluator {c.evaluator[:12]}" for c in table.columns
                         if c.evaluator and c.evaluator != "none" and c.protocol})
    table.sources += evaluators
    return table


class _Ctx:
    def __init__(self, table: PaperTable, groups: dict[GroupKey, SampleValues], dkeys: dict, sizes: dict,
                 split: str, ci: bool, resamples: int, notes: _Notes) -> None:
        self.table, self.groups, self.dkeys, self.sizes = table, groups, dkeys, sizes
        self.split, self.ci, self.resamples, self.notes = split, ci, resamples, notes

    def total(self, dkey: DatasetKey) -> int:
        n = self.sizes.get(dkey.sized)
        if n:
            return n
        return len({i for k, g in self.groups.items() if k.dataset == dkey for i in (*g.values, *g.failed)})


def _on(key: tuple, dkey: DatasetKey | None, groups: dict) -> bool:
    return dkey is not None and any(g.model == key and g.dataset == dkey for g in groups)


def _choose_evaluator(ctx: _Ctx, col: PCol) -> None:
    """The newest protocol version, then the evaluator most models of the table were scored with."""
    dkey = ctx.dkeys.get(col.dataset)
    names = {spec.partition("@")[0] for _, spec in ctx.table.rows}
    found = Counter((g.protocol_version, g.evaluator_sha256) for g in ctx.groups
                    if g.dataset == dkey and g.protocol == col.protocol and g.measure == col.measure.key
                    and g.model[0] in names)
    if found:
        version = max(v for v, _ in found)
        col.evaluator = max(((n, e) for (v, e), n in found.items() if v == version))[1]
        col.key += f"@{version}"


def _version(col: PCol) -> int:
    return int(col.key.rpartition("@")[2]) if "@" in col.key else 1


def _run_hint(spec: str, dataset: str, protocol: str) -> str:
    return f"`tfgbench run --model {spec.partition('@')[0]} --dataset {dataset} --metrics {protocol}`"


def _cell(ctx: _Ctx, spec: str, mkey: tuple | None, col: PCol) -> PCell:
    cell = PCell()
    dkey = ctx.dkeys.get(col.dataset)
    if mkey is None or dkey is None:
        ctx.notes.add(cell, f"{spec}: no results on {col.dataset}/{ctx.split}; "
                            f"`tfgbench run --model {spec.partition('@')[0]} --dataset {col.dataset}`")
        return cell
    group = ctx.groups.get(GroupKey(mkey, dkey, col.protocol, _version(col), col.evaluator or "", col.measure.key))
    if group is None:
        other = [g for g in ctx.groups if g.model == mkey and g.dataset == dkey and g.protocol == col.protocol]
        if other:
            ctx.notes.add(cell, f"{spec}: {col.protocol} on {col.dataset} scored only with another evaluator or "
                                f"protocol version (evaluator {other[0].evaluator_sha256[:12]}, "
                                f"v{other[0].protocol_version}) than the other rows")
        else:
            ctx.notes.add(cell, f"{spec}: not scored with {col.protocol} on {col.dataset}; "
                                f"{_run_hint(spec, col.dataset, col.protocol)}")
        return cell
    total = ctx.total(dkey)
    ok = {i: v for i, v in group.values.items() if i not in group.failed}
    if group.failed or len(ok) != total:
        failed = f", {len(group.failed)} failed" if group.failed else ""
        ctx.notes.add(cell, f"{spec}: {len(ok)}/{total} clips scored with {col.protocol} on {col.dataset}{failed}; "
                            "a partial average is not shown (rerun `tfgbench run` to finish, --retry-errors for "
                            "failures)")
        return cell
    cell.values = ok
    cell.value = aggregate(col.measure, ok.values())
    if ctx.ci:
        cell.ci = bootstrap_ci(list(ok.values()), col.measure.pooled, ctx.resamples)
    return cell


def _bold(ctx: _Ctx, resamples: int) -> None:
    table = ctx.table
    who = ("the readers: lower than every other reader's WER" if table.name == "table2" else
           "the generated rows (ground truth and the static-frame control are references): better than every "
           "other generated row of its column")
    table.bold_rule = (f"Bold: the value is significantly best among {who} in a paired permutation test over the "
                       f"clips both share ({resamples} permutations, p < {ALPHA} for each). A column without bold has "
                       "no significantly best value.")
    for j, col in enumerate(table.columns):
        if col.measure is None or col.measure.higher_is_better is None:
            continue
        cand = [(i, c) for i, c in ((i, table.cells.get((i, j))) for i in range(len(table.rows)))
                if c is not None and c.value is not None and c.values
                and str(table.rows[i][1]).partition("@")[0] not in CONTROLS and not math.isnan(c.value)]
        if len(cand) < 2:
            continue
        sign = 1 if col.measure.higher_is_better else -1
        best_i, best = max(cand, key=lambda ic: sign * ic[1].value)
        wins = True
        for i, c in cand:
            if i == best_i:
                continue
            cmp = paired_compare(best.values, c.values, col.measure.pooled, "permutation", resamples)
            if not (sign * cmp.diff > 0 and cmp.p_value < ALPHA):
                wins = False
                break
        best.bold = wins


# -- Table 2 -------------------------------------------------------------------------------------
def _reader_meta(path: Path) -> str:
    import json

    try:
        from safetensors import safe_open

        with safe_open(str(path), "np") as f:
            md = f.metadata() or {}
    except Exception:  # noqa: BLE001 - a file that is not safetensors has no metadata to show
        return "?"
    corpus = md.get("corpus") or md.get("training_data") or ""
    try:
        corpus = json.loads(corpus)
    except (json.JSONDecodeError, TypeError):
        pass
    clips = md.get("train_clips")
    return f"{corpus or '?'} train" + (f" ({clips} clips)" if clips else "")


def _table2(ctx: _Ctx, dataset: str, stored: set, latest: dict, readers: dict[str, str] | None,
            overrides: dict[str, str] | None) -> None:
    from tfgbench.filehash import file_sha256

    table = ctx.table
    dkey = ctx.dkeys[dataset]
    table.columns = [PCol("train", "Train"), PCol("align", "AV-Align"), PCol("protocol", "Protocol")]
    wer = PCol(f"{dataset}:wer", "WER", dataset, "wer/*", _measure({}, "", "wer", "WER"))
    table.columns.append(wer)
    entries = [(label, REPO / f, align, kind) for label, f, align, kind in READERS] if not readers else \
        [(label, Path(f), "?", "wer3" if "conformer" in label.lower() else "wer") for label, f in readers.items()]
    gt = resolve_model("ground-truth", {k for k in stored if _on(k, dkey, ctx.groups)}, latest, strict=False)
    for i, (label, path, align, kind) in enumerate(entries):
        protocol = protocol_for(kind, dataset, overrides)
        table.rows.append((label, None))
        sha = file_sha256(path, label) if path.is_file() else None
        table.cells[(i, 0)] = PCell(text=_reader_meta(path) if sha else "?")
        table.cells[(i, 1)] = PCell(text=align)
        cell = PCell()
        table.cells[(i, 3)] = cell
        if sha is None:
            table.cells[(i, 2)] = PCell(text=protocol)
            ctx.notes.add(cell, f"{label}: reader file {path} not found")
            continue
        found = [g for g in ctx.groups if gt is not None and g.model == gt and g.dataset == dkey
                 and g.protocol.startswith("wer/") and g.evaluator_sha256.startswith(sha) and g.measure == "wer"]
        if not found:
            table.cells[(i, 2)] = PCell(text=protocol)
            ctx.notes.add(cell, f"{label}: no ground-truth rows on {dataset} read by {path.name} (sha256 {sha[:12]}); "
                                f"`tfgbench run --model ground-truth --dataset {dataset} --metrics {protocol} "
                                f"--weights {protocol}={_shown(path)}`")
            continue
        g = max(found, key=lambda k: k.protocol_version)
        table.cells[(i, 2)] = PCell(text=g.protocol)
        col = PCol(wer.key, "WER", dataset, g.protocol, wer.measure, g.evaluator_sha256)
        col.key = f"{wer.key}@{g.protocol_version}"
        table.cells[(i, 3)] = _cell(ctx, "ground-truth", gt, col)
        table.sources.append(f"{label}: {path.name}, sha256 {sha[:12]}")
    table.rows = [(label, "reader") for label, _ in table.rows]


def _shown(path: Path) -> str:
    import os

    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else rel


# -- Table 5 -------------------------------------------------------------------------------------
def _rating_cell(ctx: _Ctx, spec: str, mkey: tuple | None, col: PCol) -> PCell:
    """Mean ± std over every stored rating of the model (all raters, all clips)."""
    import statistics

    cell = PCell()
    dkey = ctx.dkeys.get(col.dataset)
    scores = [v[0] for g, sv in ctx.groups.items() if mkey is not None and g.model == mkey and g.dataset == dkey
              and g.protocol == col.protocol and g.measure == col.measure.key for v in sv.values.values()]
    if not scores:
        ctx.notes.add(cell, f"no {col.protocol} rows for {spec} on {col.dataset}: collect human ratings with "
                            f"`tfgbench rate --dataset {col.dataset}`")
        return cell
    cell.value = statistics.fmean(scores)
    cell.std = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    return cell


def krippendorff_alpha_interval(units: dict[Any, list[float]]) -> float:
    """Krippendorff's alpha for interval data; ``units``: unit -> the raters' values (units with one
    value are not pairable and are ignored). NaN when nothing is pairable or all values agree."""
    pairable = [v for v in units.values() if len(v) >= 2]
    n = sum(len(v) for v in pairable)
    if n < 2:
        return math.nan
    d_o = sum(sum((a - b) ** 2 for a in v for b in v) / (len(v) - 1) for v in pairable) / n
    flat = [x for v in pairable for x in v]
    d_e = sum((a - b) ** 2 for a in flat for b in flat) / (n * (n - 1))
    return math.nan if d_e == 0 else 1 - d_o / d_e


def _agreement(ctx: _Ctx, stored: set) -> None:
    units: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    for g, sv in ctx.groups.items():
        if g.protocol == "rating/human":
            for sid, v in sv.values.items():
                units[g.measure][(g.model, sid)].append(v[0])
    if not units:
        return
    parts = [f"{m.upper()} {krippendorff_alpha_interval(u):.2f}" for m, u in sorted(units.items())]
    ctx.table.sources.append("Inter-rater agreement (Krippendorff's alpha, interval): " + ", ".join(parts))
