"""``tfgbench compare A B --dataset D``: is A better than B, per measure, beyond clip-to-clip noise?

For every (protocol, protocol version, evaluator, measure) both models were scored with on the same
dataset split, over the clips both have: A's and B's dataset value, the difference A - B, its 95 %
paired bootstrap interval and a two-sided p-value (paired permutation test by default; see
:mod:`tfgbench.stats`). Also the helpers that turn a model name (``synctalklip`` or
``synctalklip@2d37c8eb``, a checkpoint sha256 prefix) into the stored model key.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from tfgbench.errors import TfgbenchError
from tfgbench.stats import ALPHA, LEVEL, METHODS, RESAMPLES, GroupKey, ModelRow, SampleValues

DEFAULT_WORKDIR_HELP = "results folder (default: tfgbench-runs, or $TFGBENCH_WORKDIR)"


def model_spec(key: ModelRow) -> str:
    return f"{key[0]}@{key[1][:8]}" if key[1] not in ("none", "external") else f"{key[0]}@{key[2][:8]}"


def resolve_model(spec: str, keys: Iterable[ModelRow], latest: dict[ModelRow, int] | None = None,
                  strict: bool = True) -> ModelRow | None:
    """The stored model key that ``spec`` names: ``name``, ``name@<checkpoint or settings prefix>``
    or ``name@official`` (the official delivery). Several keys for one name: an error listing them
    (``strict``), else the one of the latest run (``latest``: key -> last run id)."""
    name, _, pick = spec.partition("@")
    found = [k for k in set(keys) if k[0] == name]
    if pick:
        found = [k for k in found if k[1].startswith(pick) or k[2].startswith(pick) or k[3] == pick]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    if strict:
        names = ", ".join(sorted(model_spec(k) for k in found))
        raise TfgbenchError(f"{spec!r} names {len(found)} stored models ({names}): add @<checkpoint prefix>")
    return max(found, key=lambda k: ((latest or {}).get(k, -1), k))


def latest_runs(rows: Iterable) -> dict[ModelRow, int]:
    out: dict[ModelRow, int] = {}
    for r in rows:
        if r.run_id is not None and r.run_id > out.get(r.model_key, -1):
            out[r.model_key] = r.run_id
    return out


def compare_groups(groups: dict[GroupKey, SampleValues], a: ModelRow, b: ModelRow, measures: dict,
                   method: str = "permutation", resamples: int = RESAMPLES, level: float = LEVEL,
                   seed: int = 0) -> list[tuple[GroupKey, object]]:
    """Paired comparisons of ``a`` and ``b`` for every group both have (keyed by ``a``'s group)."""
    from tfgbench.stats import paired_compare

    out = []
    for key in sorted(groups, key=lambda k: (k.dataset.dataset, k.dataset.split, k.protocol, k.measure)):
        if key.model != a:
            continue
        other = GroupKey(b, key.dataset, key.protocol, key.protocol_version, key.evaluator_sha256, key.measure)
        measure = measures.get((key.protocol, key.measure))
        if other not in groups or measure is None:
            continue
        ga, gb = groups[key], groups[other]
        va = {i: v for i, v in ga.values.items() if i not in ga.failed and i not in gb.failed}
        vb = {i: v for i, v in gb.values.items() if i not in ga.failed and i not in gb.failed}
        if not set(va) & set(vb):
            continue
        out.append((key, paired_compare(va, vb, measure.pooled, method, resamples, level, seed)))
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Paired comparison of two stored models on the clips both were scored on: per measure the "
                     "difference A - B of the dataset values, its paired bootstrap confidence interval and a "
                     "two-sided p-value (paired permutation test: each clip's A and B results swapped at random). "
                     "Models are names as in `tfgbench table`, or name@<checkpoint sha256 prefix> when one "
                     "name has several stored checkpoints.")
    p.add_argument("a", help="model A (e.g. synctalklip or synctalklip@2d37c8eb)")
    p.add_argument("b", help="model B")
    p.add_argument("--dataset", required=True, help="dataset name, e.g. synthetic")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--protocol", action="append", help="only this protocol (repeatable), e.g. lse/synthetic")
    p.add_argument("--method", choices=METHODS, default="permutation",
                   help="p-value: paired permutation (sign-flip) test, or centred paired bootstrap "
                   "(default: permutation)")
    p.add_argument("--resamples", type=int, default=RESAMPLES,
                   help=f"bootstrap draws and permutations (default: {RESAMPLES})")
    p.add_argument("--level", type=float, default=LEVEL, help=f"confidence level (default: {LEVEL})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--format", choices=["md", "csv", "json"], default="md")
    from tfgbench.cli import DEFAULT_WORKDIR

    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=DEFAULT_WORKDIR_HELP)


def run(args: argparse.Namespace) -> int:
    from tfgbench.stats import group_rows
    from tfgbench.store import Store

    path = Path(args.workdir) / "results.sqlite"
    if not path.is_file():
        raise TfgbenchError(f"no results at {path}: run `tfgbench run ...` first (or pass --workdir)")
    with Store(path) as store:
        rows = [r for r in store.rows(args.dataset) if r.split == args.split]
        measures = store.measures()
    if args.protocol:
        rows = [r for r in rows if r.protocol in args.protocol]
    keys = {r.model_key for r in rows}
    if not rows:
        raise TfgbenchError(f"no stored results for {args.dataset}/{args.split} in {path}")
    ka, kb = resolve_model(args.a, keys), resolve_model(args.b, keys)
    for spec, key in ((args.a, ka), (args.b, kb)):
        if key is None:
            names = ", ".join(sorted({k[0] for k in keys}))
            raise TfgbenchError(f"no stored results for model {spec!r} on {args.dataset}/{args.split}; "
                                f"stored: {names}")
    results = compare_groups(group_rows(rows, measures), ka, kb, measures, args.method, args.resamples,
                             args.level, args.seed)
    if not results:
        raise TfgbenchError(f"{args.a} and {args.b} share no scored clip with the same protocol and evaluator "
                            f"on {args.dataset}/{args.split}")
    print(render(results, measures, args.a, args.b, args.format), end="")
    return 0


def _verdict(key: GroupKey, c, measures: dict, a: str, b: str) -> str:
    better = measures[(key.protocol, key.measure)].higher_is_better
    if better is None or c.p_value >= ALPHA or c.diff == 0:
        return "no significant difference" if better is not None else "(not ranked)"
    return f"{a if (c.diff > 0) == better else b} better"


def render(results: Sequence[tuple[GroupKey, object]], measures: dict, a: str, b: str, fmt: str = "md") -> str:
    """The comparison as a Markdown table, CSV or JSON."""
    if fmt == "json":
        return json.dumps([{"dataset": k.dataset.dataset, "split": k.dataset.split, "protocol": k.protocol,
                            "protocol_version": k.protocol_version, "evaluator_sha256": k.evaluator_sha256,
                            "measure": k.measure, **c.as_dict()} for k, c in results], indent=2) + "\n"
    header = ["dataset", "protocol", "measure", "clips", f"A: {a}", f"B: {b}", "A - B",
              f"{round(results[0][1].level * 100)}% CI", "p", "verdict"]
    body = []
    for key, c in results:
        m = measures[(key.protocol, key.measure)]
        scale, digits = (100 if m.percent else 1), m.digits + 1

        def f(x: float, scale: float = scale, digits: int = digits) -> str:
            return "nan" if math.isnan(x) else f"{x * scale:.{digits}f}"

        label = m.label + (" %" if m.percent else "")
        body.append([f"{key.dataset.dataset}/{key.dataset.split}", key.protocol, label, str(c.n), f(c.value_a),
                     f(c.value_b), f(c.diff), f"[{f(c.ci_low)}, {f(c.ci_high)}]", f"{c.p_value:.4f}",
                     _verdict(key, c, measures, a, b)])
    if fmt == "csv":
        import csv
        import io

        out = io.StringIO()
        csv.writer(out).writerows([header, *body])
        return out.getvalue()
    from tabulate import tabulate

    c0 = results[0][1]
    note = (f"\nPaired over the clips both models have; p: two-sided {c0.method} test with {c0.resamples} "
            f"resamples (seed fixed); CI: paired percentile bootstrap; verdict at p < {ALPHA}.\n")
    return tabulate(body, header, tablefmt="github", disable_numparse=True) + "\n" + note
