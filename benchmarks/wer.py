"""WER readers: seconds per clip and peak memory on CPU, AV-HuBERT and Conformer, tiny and paper sizes.

Each reader runs in its own subprocess (so peak RSS is its own) on random weights, except the tiny
readers, which use the shipped synthetic checkpoints when present. One "clip" is ``--frames``
frames (default 75 = 3 s at 25 fps, a typical LRS2 test utterance) at the reader's input size.

* AV-HuBERT: encoder + batched beam search (beam 50, lenpen 1). Random weights never stop early, so
  the hypothesis length is capped at ``--tokens`` (default 20, a typical LRS2 sentence in
  SentencePiece units); a trained checkpoint decodes its own length.
* Conformer: teacher-forced decoding of a reference of ``--tokens`` words (observer 2 reads
  characters: the reference is a 90-character sentence for the observer size).

    python benchmarks/wer.py --threads 2 --clips 3
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READERS = [("avhubert", "tiny"), ("avhubert", "base"), ("conformer", "tiny"), ("conformer", "observer")]
REFERENCE = ("place blue at f two now",
             "there is a lot of people who would like to see this happen in the next few years")


def build(kind: str, size: str, tokens: int):
    import torch  # noqa: F401

    if kind == "avhubert":
        from tfgbench.metrics.wer.scorer import SYNTHETIC_AVHUBERT
        from tfgbench.readers.avhubert_reader import load_avhubert_reader, random_avhubert_reader

        if size == "tiny" and SYNTHETIC_AVHUBERT.is_file():
            reader, src = load_avhubert_reader(SYNTHETIC_AVHUBERT), "shipped synthetic checkpoint"
        else:
            reader, src = random_avhubert_reader(size), "random weights"
            reader.decode.max_len_a, reader.decode.max_len_b = 0.0, tokens
        side = 44 if size == "tiny" else 88
        return reader, (side, side), src, REFERENCE[0 if size == "tiny" else 1]
    from tfgbench.readers import conformer_reader as cr

    if size == "tiny" and cr.SYNTHETIC_WEIGHTS.is_file():
        reader, src = cr.load_synthetic_reader(), "shipped synthetic checkpoint"
    else:
        reader, src = cr.random_conformer_reader(size), "random weights"
    return reader, tuple(reader.input_size), src, REFERENCE[0 if size == "tiny" else 1]


def run_one(kind: str, size: str, frames: int, clips: int, threads: int, tokens: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    reader, (h, w), src, ref = build(kind, size, tokens)
    load_s = time.perf_counter() - t0
    params = sum(p.numel() for p in reader.model.parameters())
    g = torch.Generator().manual_seed(0)
    video = [torch.randn(frames, h, w, generator=g) for _ in range(clips)]
    reader.transcribe(video[:1], [ref])                       # warm-up
    t = time.perf_counter()
    for v in video:
        reader.transcribe([v], [ref])
    single = (time.perf_counter() - t) / clips
    t = time.perf_counter()
    hyps = reader.transcribe(video, [ref] * clips)
    batched = (time.perf_counter() - t) / clips
    return {"reader": f"{kind}/{size}", "weights": src, "params_M": round(params / 1e6, 2),
            "input": f"{frames}x{h}x{w}", "load_s": round(load_s, 2), "s_per_clip": round(single, 3),
            "s_per_clip_batched": round(batched, 3), "hyp_words": len(hyps[0].split()),
            "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=75)
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--only", help="one reader, e.g. avhubert/base (internal: runs in-process)")
    args = p.parse_args()
    if args.only:
        kind, size = args.only.split("/")
        print(json.dumps(run_one(kind, size, args.frames, args.clips, args.threads, args.tokens)))
        return 0
    rows = []
    for kind, size in READERS:
        cmd = [sys.executable, __file__, "--only", f"{kind}/{size}", "--frames", str(args.frames),
               "--clips", str(args.clips), "--threads", str(args.threads), "--tokens", str(args.tokens)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            print(f"{kind}/{size}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    from tabulate import tabulate

    print(f"CPU, {args.threads} threads, {args.clips} clips of {args.frames} frames; AV-HuBERT beam 50")
    print(tabulate(rows, headers="keys"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
