"""Harness overhead per sample and start-up time of `tfgbench --help`.

Overhead = wall time of a run minus the time spent inside the metric (stored per row) divided by
the number of samples: decoding the sample, face boxes, the model call of a trivial model and the SQLite rows;
the lossless cache write that models with ``cache_outputs`` add is timed on its own. Run:

    python benchmarks/harness.py [--clips 20] [--seconds 3] [--size 160]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import face_frames, tone  # noqa: E402

from tfgbench.media.io import write_video  # noqa: E402
from tfgbench.runner import RunSpec, run  # noqa: E402


def startup(repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tfgbench.cli", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--size", type=int, default=160)
    args = ap.parse_args()
    frames_per_clip = int(args.seconds * 25)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "clips"
        for k in range(args.clips):
            write_video(root / f"c{k:03d}.mp4", face_frames(frames_per_clip, args.size, shift=k),
                        tone(frames_per_clip), quality="standard")
        for model in ("ground-truth", "static-frame"):
            work = Path(tmp) / f"work-{model}"
            spec = RunSpec(model=model, dataset="folder", data_root=str(root), metrics=["psnr"], workdir=str(work))
            t0 = time.perf_counter()
            summary = run(spec, progress=False, log=lambda _: None)
            wall = time.perf_counter() - t0
            metric = sqlite3.connect(work / "results.sqlite").execute("SELECT SUM(seconds) FROM results").fetchone()[0]
            per = (wall - metric) / summary.samples
            print(f"{model:13s} {summary.samples} clips x {frames_per_clip} frames {args.size}x{args.size}: "
                  f"wall {wall:.2f} s, metric {metric:.2f} s, harness overhead {per * 1000:.0f} ms/clip "
                  f"({per / frames_per_clip * 1000:.2f} ms/frame)")
        # models that cache their outputs (every real model) also pay for one lossless write per clip
        frames = face_frames(frames_per_clip, args.size)
        t0 = time.perf_counter()
        for _ in range(5):
            write_video(Path(tmp) / "cache.mp4", frames, tone(frames_per_clip), quality="lossless", fast_audio=True)
        print(f"cache write per clip (lossless H.264 + fast AAC): {(time.perf_counter() - t0) / 5 * 1000:.0f} ms")
    print(f"tfgbench --help start-up: {startup() * 1000:.0f} ms (median of 7)")


if __name__ == "__main__":
    main()
