"""Synthetic corpus speed: generation time per split and for the whole default corpus, per-stage
cost of one clip, load time, size on disk.

    python benchmarks/synthetic.py                 # test split + per-stage figures, 2 workers
    python benchmarks/synthetic.py --full          # also the whole default corpus (~3-5 min)
    python benchmarks/synthetic.py --workers 2 --out /tmp/synthetic-bench

Targets (issue 3): test split <= 60 s and the whole default corpus <= 5 minutes on 2 cores.
Wall times depend on what else runs on the machine; the workers' CPU time divided by 2 is what
the generation takes on 2 free cores, and is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def stages(n: int = 20) -> dict[str, float]:
    """Mean seconds per clip of each stage, single process."""
    from tfgbench.data.synthetic import grammar, visemes
    from tfgbench.data.synthetic.clip import make_clip
    from tfgbench.data.synthetic.generation import speakers
    from tfgbench.data.synthetic.speech import synthesize
    from tfgbench.media.io import write_video

    sps = speakers(0)["test"]
    rng = np.random.default_rng(0)
    t = {"espeak": 0.0, "visemes": 0.0, "clip (speech+render)": 0.0, "encode mp4": 0.0}
    frames = 0
    for k in range(n):
        sp = sps[k % len(sps)]
        text, starts = grammar.spoken_text(grammar.sample_sentence(rng))
        t0 = time.perf_counter()
        speech = synthesize(text, sp.voice, starts, seed=k)
        t1 = time.perf_counter()
        visemes.mouth_track(speech.phones, int(speech.audio.size / 640) + 1, sp.voice.rate)
        t2 = time.perf_counter()
        clip = make_clip(0, sp, int(sp.id[1:]), 100 + k)
        t3 = time.perf_counter()
        write_video(None, clip.frames, clip.audio, quality="near-lossless", threads=1)
        t4 = time.perf_counter()
        t["espeak"] += t1 - t0
        t["visemes"] += t2 - t1
        t["clip (speech+render)"] += t3 - t2
        t["encode mp4"] += t4 - t3
        frames += len(clip.frames)
    out = {k: v / n for k, v in t.items()}
    out["render per frame"] = (t["clip (speech+render)"] - t["espeak"]) / frames
    out["frames per clip"] = frames / n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also generate the whole default corpus")
    parser.add_argument("--out", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    from tfgbench.data.synthetic import SyntheticDataset
    from tfgbench.data.synthetic.generation import DEFAULT_SIZES, generate

    scratch = args.out or Path(tempfile.mkdtemp(prefix="synthetic-bench-"))
    print(f"machine: {os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f}; "
          f"workers {args.workers}")
    for name, value in stages().items():
        unit = "" if name == "frames per clip" else " ms"
        print(f"  {name:>22}: {value * (1 if unit == '' else 1000):8.2f}{unit}")
    root = scratch / "test-only"
    shutil.rmtree(root, ignore_errors=True)
    t0, c0 = time.perf_counter(), _children_cpu()
    generate(root, splits=("test",), workers=args.workers, progress=False)
    dt, cpu = time.perf_counter() - t0, _children_cpu() - c0
    n = DEFAULT_SIZES["test"][0] * DEFAULT_SIZES["test"][1]
    print(f"test split ({n} clips): {dt:.1f} s wall ({n / dt:.1f} clips/s), worker CPU {cpu:.1f} s "
          f"(= {cpu / 2:.1f} s on 2 free cores), {_du(root) / 2 ** 20:.1f} MiB")
    ds = SyntheticDataset(root, split="test")
    ids = ds.ids()[:40]
    t0 = time.perf_counter()
    for i in ids:
        ds.load(i)
    print(f"load (decode mp4 + checks): {(time.perf_counter() - t0) / len(ids) * 1000:.1f} ms per clip")
    if args.full:
        root = scratch / "full"
        shutil.rmtree(root, ignore_errors=True)
        t0, c0 = time.perf_counter(), _children_cpu()
        generate(root, workers=args.workers, progress=False)
        dt, cpu = time.perf_counter() - t0, _children_cpu() - c0
        total = sum(a * b for a, b in DEFAULT_SIZES.values())
        print(f"whole default corpus ({total} clips): {dt:.1f} s wall ({total / dt:.1f} clips/s), worker CPU "
              f"{cpu:.1f} s (= {cpu / 2:.1f} s on 2 free cores), {_du(root) / 2 ** 20:.0f} MiB")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (wall times grow when other jobs share the cores)")
    if args.out is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
