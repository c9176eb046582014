"""``tfgbench calibrate``: how far each metric protocol moves under controlled degradations.

Runs the ``degrade`` model plugin (:mod:`tfgbench.degrade`) over a sweep of amounts per kind on a
spread of clips of a dataset split, stores every result as ordinary rows (model ``degrade:<kind>=<amount>``,
the kind and amount in the settings key; a store of its own by default, so the leaderboard stays
clean), then writes one PNG per kind (each measure against the amount, mean and 95 % CI) and a
Markdown summary (:mod:`tfgbench.calibrate_report`). Resumable like ``tfgbench run``: rows already
stored are not recomputed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, astuple, dataclass, field, replace
from pathlib import Path
from typing import Any

from tfgbench.degrade import KINDS, label, normalise
from tfgbench.errors import TfgbenchError
from tfgbench.store import ModelKey

#: default amounts per kind, mildest first; each kind's identity (shift 0, blur 0...) is added
#: from the shared undegraded row. 37 settings x 24 clips score in about 10 minutes on 2 cores.
DEFAULT_AMOUNTS: dict[str, tuple[float, ...]] = {
    "shift": (-1, 1, -2, 2, -5, 5, -10, 10),
    "freeze": (0.25, 0.5, 1.0),
    "mouth-swap": (0.25, 0.5, 1.0),
    "blur": (0.5, 1, 2, 4),
    "jpeg": (75, 30, 15, 8, 4),
    "h264": (23, 30, 37, 44, 51),
    "downscale": (1.5, 2, 3, 4),
    "noise": (3, 6, 12, 24),
}
DEFAULT_CLIPS = 24
SYNC_KINDS = ("shift", "freeze", "mouth-swap")
NUISANCE_KINDS = ("blur", "jpeg", "h264", "downscale", "noise")


@dataclass
class CalibrationSpec:
    """Everything a calibration needs, as plain data."""

    dataset: str
    split: str = "test"
    data_root: str | None = None
    protocols: list[str] | None = None
    kinds: list[str] = field(default_factory=lambda: list(DEFAULT_AMOUNTS))
    amounts: dict[str, tuple[float, ...]] = field(default_factory=dict)
    clips: int = DEFAULT_CLIPS
    workdir: str = "tfgbench-runs/calibration"
    weights: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    retry_errors: bool = False
    command: str = ""

    def plan(self) -> dict[str, list[float]]:
        """Amounts per kind, each kind's identity amount first where it has one."""
        out = {}
        for kind in self.kinds:
            if kind not in DEFAULT_AMOUNTS:
                raise TfgbenchError(f"calibrate: unknown kind {kind!r}; choose from {', '.join(DEFAULT_AMOUNTS)}")
            amounts = list(self.amounts.get(kind, DEFAULT_AMOUNTS[kind]))
            identity = KINDS[kind].identity
            if identity is not None and identity not in amounts:
                amounts.insert(0, identity)
            out[kind] = amounts
        return out


@dataclass
class Calibration:
    """What a sweep produced: the rows of every (setting, protocol, measure), by sample id."""

    spec: CalibrationSpec
    dataset: Any  # DatasetKey
    ids: list[str]
    plan: dict[str, list[float]]
    labels: dict[tuple[str, float], str]  # (kind, amount) -> model label ("degrade:none" for identities)
    columns: list[tuple[str, str, Any]]  # (protocol, evaluator sha256, Measure)
    values: dict[tuple[str, str, str], dict[str, tuple[float, float | None, float | None]]]
    failed: dict[str, int]  # label -> failed samples
    seconds: float = 0.0

    def series(self, kind: str, protocol: str, measure: str) -> list[tuple[float, dict[str, tuple]]]:
        return [(a, self.values.get((self.labels[(kind, a)], protocol, measure), {})) for a in self.plan[kind]]

    def undegraded(self, protocol: str, measure: str) -> dict[str, tuple]:
        return self.values.get((label({"kind": "none"}), protocol, measure), {})


def pick_ids(ids: Sequence[str], n: int) -> list[str]:
    """``n`` ids spread evenly over the split (all for ``n <= 0``): the split's speakers, not only its first."""
    if n <= 0 or n >= len(ids):
        return list(ids)
    return [ids[(k * len(ids)) // n] for k in range(n)]


def sweep(spec: CalibrationSpec, progress: bool = True, log: Callable[[str], None] = print) -> Calibration:
    """Run (or resume) the sweep and read its rows back; see the module docstring. Keys, resumption
    and rows are the runner's (:func:`tfgbench.keys.model_key`, :func:`tfgbench.runner.dataset_key`,
    :class:`tfgbench.runner.SampleWorker`); each clip is loaded once for all settings."""
    from tqdm import tqdm

    from tfgbench.keys import model_key
    from tfgbench.runner import (
        RunSpec,
        SampleWorker,
        build_dataset,
        build_metrics,
        build_model,
        checked_ids,
        dataset_key,
    )
    from tfgbench.store import Store

    t0 = time.perf_counter()
    plan = spec.plan()
    base = RunSpec(model="degrade", dataset=spec.dataset, split=spec.split, data_root=spec.data_root,
                   metrics=spec.protocols, workdir=spec.workdir, device=spec.device, weights=spec.weights,
                   command=spec.command)
    dataset = build_dataset(base)
    metrics = build_metrics(base, type(dataset), log)
    labels: dict[tuple[str, float], str] = {}
    args: dict[str, dict[str, Any]] = {"degrade:none": {"kind": "none"}}
    for kind, amounts in plan.items():
        for amount in amounts:
            name = label(normalise(kind, amount))
            labels[(kind, amount)] = name
            args.setdefault(name, {"kind": kind, "amount": amount})
    models = {name: build_model(replace(base, model_args=a)) for name, a in args.items()}
    dataset.need_boxes = any("boxes" in m.spec.needs for m in metrics) or \
        any(getattr(m, "uses_boxes", True) for m in models.values())
    keys, key_files = {}, {}
    for name, m in models.items():
        keys[name], key_files[name] = model_key(m, getattr(m, "label", m.name), None, args[name])
    all_ids = checked_ids(dataset)
    ids = pick_ids(all_ids, spec.clips)
    dkey = dataset_key(dataset)
    failed: dict[str, int] = {}
    with Store(Path(spec.workdir) / "results.sqlite") as store:
        for m in metrics:
            store.record_protocol(m.spec)
        store.record_dataset(dkey.sized, len(all_ids))
        todo: dict[str, dict[str, list[str]]] = {}  # sample -> label -> protocols
        for name, key in keys.items():
            for m in metrics:
                done = store.done(key, dkey, m.spec.name, m.evaluator_sha256, include_errors=not spec.retry_errors,
                                  protocol_version=m.spec.version)
                for i in ids:
                    if i not in done:
                        todo.setdefault(i, {}).setdefault(name, []).append(m.spec.name)
        total = sum(len(v) for v in todo.values())
        log(f"calibrate: {len(keys)} settings x {len(ids)} clips of {dataset.name}/{dataset.split}, "
            f"{len(metrics)} protocols; {total} (setting, clip) pairs to score, "
            f"{len(keys) * len(ids) - total} already stored in {store.path}")
        run_ids: dict[str, int] = {}
        workers = {name: SampleWorker(models[name], metrics, None) for name in keys}
        bar = tqdm(total=total, desc="calibrate", unit="pair", disable=not progress or not total, dynamic_ncols=True)
        try:
            for sample_id in [i for i in ids if i in todo]:
                try:
                    sample: Any = dataset.load(sample_id)
                except Exception as e:  # stored as error rows by the worker
                    sample = e
                for name, protocols in todo[sample_id].items():
                    if name not in run_ids:
                        m = models[name]
                        run_ids[name] = store.start_run(spec.command, keys[name], m.settings, asdict(m.info), dkey,
                                                        spec.device, key_files[name])
                    bar.set_postfix_str(name)
                    results = workers[name].process(sample, sample_id, protocols)
                    store.write_sample(keys[name], dkey, sample_id, run_ids[name], results)
                    bar.update(1)
        finally:
            bar.close()
        wanted = set(ids)
        current = {(m.spec.name, m.spec.version, m.evaluator_sha256) for m in metrics}
        by_key = {astuple(k): name for name, k in keys.items()}
        values: dict[tuple[str, str, str], dict[str, tuple]] = {}
        for r in store.rows(dataset.name):
            name = by_key.get(astuple(ModelKey(r.model, r.checkpoint_sha256, r.settings_hash, r.delivery)))
            if name is None or r.sample_id not in wanted or (r.dataset_version, r.split, r.boxes) != \
                    (dkey.dataset_version, dkey.split, dkey.boxes) or \
                    (r.protocol, r.protocol_version, r.evaluator_sha256) not in current:
                continue
            if r.error is not None:
                failed[name] = failed.get(name, 0) + 1
                continue
            values.setdefault((name, r.protocol, r.measure), {})[r.sample_id] = (r.value, r.num, r.den)
        measures = store.measures()
    columns = [(m.spec.name, m.evaluator_sha256, measures.get((m.spec.name, ms.key), ms))
               for m in metrics for ms in m.spec.measures]
    return Calibration(spec, dkey, ids, plan, labels, columns, values, failed, time.perf_counter() - t0)


# -- command line ----------------------------------------------------------------------------------
def _amounts(items: list[str] | None) -> dict[str, tuple[float, ...]]:
    out = {}
    for item in items or []:
        kind, sep, values = item.partition("=")
        if not sep or kind not in DEFAULT_AMOUNTS:
            raise TfgbenchError(f"--amounts must look like KIND=A,B,C with KIND one of {', '.join(DEFAULT_AMOUNTS)}; "
                                f"got {item!r}")
        try:
            out[kind] = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError as e:
            raise TfgbenchError(f"--amounts {item!r}: amounts must be numbers") from e
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    kinds = "\n".join(f"  {k:11s} {KINDS[k].unit}: {', '.join(f'{a:g}' for a in v)}"
                      for k, v in DEFAULT_AMOUNTS.items())
    p.description = (
        "Score controlled degradations of the ground truth (the `degrade` model) with every protocol, to see how\n"
        "far each metric moves with lip-sync errors (audio offset, frozen mouth, another clip's lips) and with\n"
        "nuisances (blur, JPEG, H.264, downscaling, noise). Stores ordinary result rows (resumable), then writes\n"
        "<out>/<kind>.png (each measure vs the amount, mean and 95 % bootstrap CI) and <out>/summary.md (expected\n"
        "directions, and where a protocol reacts more to a nuisance than to sync).")
    p.epilog = (f"default amounts per kind:\n{kinds}\n\nexamples:\n"
                "  tfgbench calibrate --dataset synthetic --out docs/calibration\n"
                "  tfgbench calibrate --dataset lrs2 --data-root /data/lrs2 --weights lse=syncnet_v2.model "
                "--protocols lse,psnr\n"
                "  tfgbench calibrate --dataset synthetic --kinds shift,jpeg --amounts jpeg=50,10 --clips 8")
    p.add_argument("--dataset", required=True, help="dataset name (see `tfgbench list datasets`)")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--data-root", help="dataset folder (or set TFGBENCH_LRS2 / TFGBENCH_LRS3)")
    p.add_argument("--protocols", help="comma-separated metric families or protocols (default: psnr,ssim,lse,wer "
                   "with the dataset's default protocols; those whose weights are missing are skipped)")
    p.add_argument("--kinds", help=f"comma-separated degradation kinds (default: all: {','.join(DEFAULT_AMOUNTS)})")
    p.add_argument("--amounts", action="append", metavar="KIND=A,B,...",
                   help="amounts for one kind instead of its defaults (repeatable)")
    p.add_argument("--clips", type=int, default=DEFAULT_CLIPS,
                   help=f"clips spread evenly over the split (default: {DEFAULT_CLIPS}; 0 = all)")
    p.add_argument("--weights", action="append", metavar="NAME=FILE",
                   help="evaluator weights per metric family or protocol (repeatable), e.g. lse=syncnet_v2.model")
    default_workdir = str(Path(os.environ.get("TFGBENCH_WORKDIR", "tfgbench-runs")) / "calibration")
    p.add_argument("--workdir", default=default_workdir,
                   help=f"results database for the sweep (default: {default_workdir}, apart from the leaderboard's)")
    p.add_argument("--out", help="folder for the PNGs and summary.md (default: <workdir>/<dataset>-<split>)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default: 1; the evaluators are small, and on 2 busy cores one thread "
                   "ran them several times faster than two)")
    p.add_argument("--retry-errors", action="store_true", help="re-score samples stored as errors")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from tfgbench.calibrate_report import write_report

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    weights = {}
    for item in args.weights or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TfgbenchError(f"--weights must look like NAME=FILE, got {item!r}")
        weights[key] = value
    spec = CalibrationSpec(
        dataset=args.dataset, split=args.split, data_root=args.data_root,
        protocols=[t.strip() for t in args.protocols.split(",") if t.strip()] if args.protocols else None,
        kinds=[k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else list(DEFAULT_AMOUNTS),
        amounts=_amounts(args.amounts), clips=args.clips, workdir=args.workdir, weights=weights,
        device=args.device, retry_errors=args.retry_errors, command=shlex.join(["tfgbench", *sys.argv[1:]]))
    cal = sweep(spec, progress=not args.no_progress)
    out = Path(args.out) if args.out else Path(args.workdir) / f"{args.dataset}-{args.split}"
    written = write_report(cal, out)
    print(f"scored in {cal.seconds:.0f} s; rows in {Path(args.workdir) / 'results.sqlite'}")
    for path in written:
        print(f"wrote {path}")
    return 0
