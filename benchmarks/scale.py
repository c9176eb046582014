"""Throughput of ``tfgbench run`` on the same clips: local one at a time, local batched, Ray 1 and 2 workers.

    python benchmarks/scale.py [--model wav2lip] [--clips 16] [--metrics psnr,ssim,lse] [--batch-size N]
                               [--configs local-1,local-batched,ray-1,ray-2] [--data-root DIR]

Every configuration runs the whole job (load, generate, cache, score, store) on the first ``--clips``
clips of the synthetic test split into a fresh work folder, so none reuses another's cached videos or
rows; it checks that all configurations stored the same numbers (to float rounding). Each worker has
one CPU and one torch thread: the local executor runs with one thread, and Ray is started on this
machine with ``num_cpus`` = its workers, so 1 vs 2 workers is 1 vs 2 cores.

Printed per configuration: wall time (everything, the Ray actors' start included), clips/s, frames/s,
the speed-up over one at a time, the Ray actors' start (import, model and evaluators loaded: the
slowest actor's), and the overhead per sample: ((wall time - actor start) x workers - pure compute) /
clips, where pure compute is the time the model and the metrics take on the already-loaded clips in
this process with the same batch size; the overhead is everything else (decoding, face boxes, the
lossless video cache, SQLite, Ray's transfers, idle workers) and is only meaningful when each worker
has a core to itself. Ray's own start (``ray.init``) is printed separately and not counted.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import tempfile
import time
from pathlib import Path


def pure_compute(model_name: str, metrics: list[str], data_root: str | None, clips: int, batch: int) -> float:
    """Seconds the model and metrics take on preloaded clips (batch ``batch``), after one warm-up."""
    from tfgbench.batching import chunks
    from tfgbench.runner import RunSpec, build_dataset, build_metrics, build_model

    spec = RunSpec(model=model_name, dataset="synthetic", data_root=data_root, metrics=metrics)
    dataset = build_dataset(spec)
    model = build_model(spec)
    scorers = build_metrics(spec, type(dataset), log=lambda _: None)
    samples = [dataset.load(i) for i in dataset.ids()[:clips]]

    def once(group: list) -> None:
        frames = model.generate_batch(group) if batch > 1 else [model.generate(s) for s in group]
        for m in scorers:
            if batch > 1 and m.batch_size > 1:
                m.score_batch(group, frames)
            else:
                for s, f in zip(group, frames):
                    m.score(s, f)

    once(samples[:1])
    t0 = time.perf_counter()
    for group in chunks(samples, batch):
        once(group)
    return time.perf_counter() - t0


def stored(workdir: Path) -> dict:
    con = sqlite3.connect(workdir / "results.sqlite")
    rows = {r[:3]: r[3] for r in con.execute("SELECT sample_id, protocol, measure, value FROM results")}
    con.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="wav2lip")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--metrics", default="psnr,ssim,lse")
    p.add_argument("--batch-size", type=int, default=None, help="batched configurations (default: the run's default)")
    p.add_argument("--configs", default="local-1,local-batched,ray-1,ray-2")
    p.add_argument("--data-root", default=None, help="synthetic corpus folder (default: the generated one)")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from tfgbench.batching import default_batch_size
    from tfgbench.data.synthetic import SyntheticDataset
    from tfgbench.runner import RunSpec, build_dataset, build_metrics, build_model, run

    metrics = [m for m in args.metrics.split(",") if m]
    probe = RunSpec(model=args.model, dataset="synthetic", data_root=args.data_root, metrics=metrics)
    batch = args.batch_size or default_batch_size(build_model(probe), build_metrics(probe, SyntheticDataset))
    dataset = build_dataset(probe)
    frames = sum(dataset.load(i).num_frames for i in dataset.ids()[: args.clips])
    compute = {1: pure_compute(args.model, metrics, args.data_root, args.clips, 1),
               batch: pure_compute(args.model, metrics, args.data_root, args.clips, batch)}
    print(f"{args.model} on {args.clips} synthetic test clips ({frames} frames), metrics {args.metrics}; "
          f"batch size {batch}; pure compute: one at a time {compute[1]:.1f} s, batched {compute[batch]:.1f} s")

    results: dict[str, dict] = {}
    base = None
    header = (f"{'configuration':<16}{'wall s':>8}{'clips/s':>9}{'frames/s':>10}{'speed-up':>10}{'actor start s':>14}"
              f"{'overhead/sample':>17}")
    lines = [header]
    with tempfile.TemporaryDirectory(prefix="tfgb-scale-") as tmp:
        for config in [c for c in args.configs.split(",") if c]:
            executor, _, what = config.partition("-")
            workers = int(what) if executor == "ray" else 1
            size = 1 if what == "1" and executor == "local" else batch
            ray_start = None
            if executor == "ray":
                import ray

                t0 = time.perf_counter()
                ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
                ray_start = time.perf_counter() - t0
            spec = RunSpec(model=args.model, dataset="synthetic", data_root=args.data_root, limit=args.clips,
                           metrics=metrics, workdir=str(Path(tmp) / config), batch_size=size, executor=executor,
                           jobs=workers)
            said: list[str] = []
            t0 = time.perf_counter()
            summary = run(spec, progress=False, log=said.append)
            wall = time.perf_counter() - t0
            starts = [float(line.split()[-2]) for line in said if line.startswith("ray: actor ready in")]
            start = max(starts, default=0.0)
            if executor == "ray":
                ray.shutdown()
            assert summary.samples == args.clips and not summary.failed, summary.failed
            results[config] = stored(Path(tmp) / config)
            base = base or wall
            overhead = ((wall - start) * workers - compute[size]) / args.clips
            lines.append(f"{config:<16}{wall:>8.1f}{args.clips / wall:>9.2f}{frames / wall:>10.1f}"
                         f"{base / wall:>9.2f}x{start:>13.1f}{overhead * 1000:>14.0f} ms"
                         + (f"   (ray.init {ray_start:.1f} s, not counted)" if ray_start is not None else ""))
    print("\n".join(lines))
    first = next(iter(results.values()))
    worst = max(abs(v - first[k]) / max(1e-12, abs(first[k])) for r in results.values() for k, v in r.items()
                if v is not None and first.get(k) is not None and not math.isnan(v))
    same = all(r.keys() == first.keys() for r in results.values())
    print(f"same rows in every configuration: {same}; largest relative difference of a value: {worst:.1e}")


if __name__ == "__main__":
    main()
