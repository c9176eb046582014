"""``tfgbench report --out DIR``: a static HTML leaderboard of a results store.

``DIR/index.html`` has one sortable table per dataset split (click a header: best first, click again
to reverse), each value with its 95 % clip bootstrap interval and, on hover (the cell's title), its
provenance: protocol and version, evaluator sha256, the model's checkpoint sha256, settings hash and
delivery, the clips it covers and the run commands that produced it. ``DIR/models/<model>.html``
repeats the model's numbers with its recorded settings and runs, a snapshot strip (ground truth
above the model) and short clips that play in the browser (H.264/AAC mp4, ground truth beside the
model), made from the frames the run scored. Pages are self-contained (inline CSS and JavaScript,
no network); media files sit beside them in ``DIR/media``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from tfgbench.errors import TfgbenchError
from tfgbench.report.pages import HCell, HColumn, HTable, definition_list, esc, page, render_table


def _cell_provenance(table, mkey, col, cell, runs: list[dict]) -> str:
    commands = "; ".join(sorted({r["command"] for r in runs if r["dataset"] == table.dataset.dataset}))
    d = table.dataset
    return (f"{col.protocol} v{col.protocol_version}, {col.measure.key}; evaluator sha256 {col.evaluator_sha256}; "
            f"model {mkey[0]}, checkpoint sha256 {mkey[1]}, settings {mkey[2]}, delivery {mkey[3]}; "
            f"{d.dataset} {d.split} version {d.dataset_version}, boxes {d.boxes}; clips {cell.covered}/{cell.total}"
            + (f", {cell.failed} failed" if cell.failed else "") + f"; runs: {commands or 'not recorded'}")


def _html_table(table, runs_by_key: dict, links: dict, table_id: str) -> HTable:
    from tfgbench.stats import format_ci
    from tfgbench.tables import format_cell

    d = table.dataset
    caption = f"{d.dataset} ({d.split} split, version {d.dataset_version}, {table.total} clips)"
    cols = [HColumn(f"{c.measure.label}{' %' if c.measure.percent else ''}", f"{c.protocol} v{c.protocol_version}",
                    c.measure.higher_is_better) for c in table.columns]
    out = HTable(caption, cols, table_id=table_id)
    for m in table.models:
        cells = []
        for c in table.columns:
            cell = table.cells[(m, c)]
            ci, cell.ci = cell.ci, None
            text = format_cell(cell, c.measure)
            cell.ci = ci
            value = cell.value * (100 if c.measure.percent else 1) if cell.complete and cell.value is not None \
                else None
            cells.append(HCell(text, value, format_ci(*ci, c.measure) if ci and cell.complete else "",
                               _cell_provenance(table, m, c, cell, runs_by_key.get(m, [])), not cell.complete))
        out.rows.append((table.model_label(m), links.get(m), cells))
    return out


def build_report(workdir: Path, out: Path, datasets: Sequence[str] | None = None, clips: int = 2,
                 media: bool = True, resamples: int = 2000, data_root: dict[str, str] | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """Write the report; returns ``out/index.html``."""
    from tfgbench import __version__
    from tfgbench.report.media import data_roots, model_media, slug
    from tfgbench.stats import attach_cis, ci_note
    from tfgbench.store import Store
    from tfgbench.tables import build_tables, provenance

    path = workdir / "results.sqlite"
    if not path.is_file():
        raise TfgbenchError(f"no results at {path}: run `tfgbench run ...` first (or pass --workdir)")
    with Store(path) as store:
        rows = [r for r in store.rows() if not datasets or r.dataset in datasets]
        measures, sizes, runs = store.measures(), store.dataset_sizes(), store.runs()
    if not rows:
        raise TfgbenchError(f"no stored results{' for ' + ', '.join(datasets) if datasets else ''} in {path}")
    tables = build_tables(rows, measures, sizes)
    attach_cis(tables, rows, measures, resamples=resamples)
    runs_by_key: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        runs_by_key[(r["model"], r["checkpoint_sha256"], r["settings_hash"], r.get("delivery", "lossless"))].append(r)
    keys = sorted({m for t in tables for m in t.models})
    pages = {k: f"models/{slug(k[0])}-{slug(k[1][:8])}-{slug(k[2][:8])}.html" for k in keys}
    out.mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir(exist_ok=True)
    body = [f"<p>Generated {esc(time.strftime('%Y-%m-%d %H:%M'))} by tfgbench {esc(__version__)} from "
            f"<code>{esc(path)}</code> (<code>tfgbench report --out DIR --workdir WORKDIR</code>). Click a column "
            "header to sort (best first, again to reverse); hover a number for its provenance. "
            f"{esc(ci_note(resamples=resamples))} Cells marked with a warning cover only part of the split and show "
            "no average.</p>"]
    for n, t in enumerate(tables):
        body.append(f"<h2>{esc(t.dataset.dataset)} / {esc(t.dataset.split)}</h2>")
        body.append(render_table(_html_table(t, runs_by_key, pages, f"t{n}")))
        body.append("<p class='note'>" + "<br>".join(esc(x) for x in provenance(t).splitlines()) + "</p>")
    body.append("<h2>Runs</h2>" + _runs_table(runs, keys))
    index = out / "index.html"
    index.write_text(page("tfgbench leaderboard", "\n".join(body)))
    roots = {**data_roots(runs), **(data_root or {})}
    for k in keys:
        log(f"model page {pages[k]}")
        parts = [definition_list(_model_facts(k, runs_by_key.get(k, [])))]
        for n, t in enumerate(tables):
            if k not in t.models:
                continue
            ht = _html_table(t, runs_by_key, {}, f"m{n}")
            ht.rows = [r for r, m in zip(ht.rows, t.models) if m == k]
            parts.append(f"<h2>{esc(t.dataset.dataset)} / {esc(t.dataset.split)}</h2>" + render_table(ht))
            if media and clips > 0:
                ids = sorted({r.sample_id for r in rows if r.model_key == k and r.dataset == t.dataset.dataset
                              and r.split == t.dataset.split})[:clips]
                parts.append(model_media(k, t.dataset.dataset, t.dataset.split, ids, out / "media",
                                         out / "models", workdir, roots.get(t.dataset.dataset)))
        (out / pages[k]).write_text(page(f"{k[0]} (checkpoint {k[1][:12]})", "\n".join(parts), up="../index.html"))
    return index


def _model_facts(key: tuple, runs: list[dict]) -> list[tuple[str, str]]:
    facts = [("model", esc(key[0])), ("checkpoint sha256", f"<code>{esc(key[1])}</code>"),
             ("settings hash", f"<code>{esc(key[2])}</code>"), ("delivery", esc(key[3]))]
    if runs:
        last = runs[-1]
        facts += [("model settings", f"<code>{esc(last['model_settings'])}</code>"),
                  ("model info", f"<code>{esc(last['model_info'])}</code>")]
        try:
            files = json.loads(last.get("key_files") or "{}")
        except json.JSONDecodeError:
            files = {}
        if files:
            facts.append(("hashed files", "<br>".join(f"{esc(k)}: <code>{esc(v)}</code>" for k, v in files.items())))
        facts.append(("runs", "<br>".join(
            f"#{r['id']} {esc(time.strftime('%Y-%m-%d %H:%M', time.localtime(r['started'])))}, tfgbench "
            f"{esc(r['tfgbench_version'])}, {esc(r['device'])}: <code>{esc(r['command'])}</code>" for r in runs)))
    return facts


def _runs_table(runs: list[dict], keys: list[tuple]) -> str:
    wanted = set(keys)
    rows = [r for r in runs if (r["model"], r["checkpoint_sha256"], r["settings_hash"],
                                r.get("delivery", "lossless")) in wanted]
    body = "".join(f"<tr><td>{r['id']}</td><td>{esc(r['model'])}</td><td>{esc(r['dataset'])}/{esc(r['split'])}</td>"
                   f"<td><code>{esc(r['command'])}</code></td><td>{esc(r['tfgbench_version'])}</td></tr>" for r in rows)
    return ("<table><thead><tr><th>run</th><th>model</th><th>dataset</th><th>command</th><th>tfgbench</th></tr>"
            f"</thead><tbody>{body}</tbody></table>")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tfgbench.cli import DEFAULT_WORKDIR

    p.description = __doc__.split("\n\n")[1]
    p.add_argument("--out", required=True, help="folder to write (index.html, models/, media/)")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"results folder (default: {DEFAULT_WORKDIR})")
    p.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    p.add_argument("--clips", type=int, default=2, help="clips per model and dataset on the model pages (default: 2)")
    p.add_argument("--no-media", action="store_true", help="no snapshot strips or clips (tables only)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples for the intervals")
    p.add_argument("--data-root", action="append", metavar="DATASET=DIR",
                   help="dataset folder for the media (default: the --data-root of the recorded runs)")


def run(args: argparse.Namespace) -> int:
    from tfgbench.cli import _key_values

    index = build_report(Path(args.workdir), Path(args.out), args.dataset, args.clips, not args.no_media,
                         args.resamples, _key_values(args.data_root, "--data-root"))
    print(f"wrote {index}")
    return 0
