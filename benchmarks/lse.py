"""LSE speed: tfgbench vs the reference implementation, and against the machine's matmul rate.

Prints, on the same clips and the same CPU (or GPU with --device cuda):
* tfgbench seconds per clip (``lse/wav2lip``: in-memory JPEG round trip, batched towers, next clip
  decoded while the network runs),
* the reference implementation's seconds per clip: the official procedure (ffmpeg CLI JPEG + wav
  extraction into a temporary folder, cv2.imread, windows of 20 through the towers, a Python loop
  over windows for the distances); the ffmpeg CLI is needed for this part,
* their ratio, the clip's FLOPs (both towers, counted from the layers), tfgbench's achieved
  FLOP/s, the measured large-matmul FLOP/s, and the bound FLOPs / matmul rate.

    python benchmarks/lse.py --clips 3 --seconds 4 --threads 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_lse_reference import (  # noqa: E402  (the independent reference procedure)
    ffmpeg_extract,
    make_clip,
    make_random_syncnet_file,
    official_s,
    reference_evaluate,
)


def matmul_flops(device: str, n: int = 4096, reps: int = 5) -> float:
    """Best-of FLOP/s of an n x n float32 matmul."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(reps + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def tower_flops() -> tuple[float, float]:
    """Multiply-add FLOPs (x2) of one 5-frame window through the lip and the audio tower."""
    model = official_s().eval()
    counts = {"n": 0.0}

    def hook(mod, inp, out):
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Conv3d)):
            k = mod.weight[0].numel()  # in_channels * kernel volume
            counts["n"] += 2.0 * out.numel() * k
        elif isinstance(mod, torch.nn.Linear):
            counts["n"] += 2.0 * out.numel() * mod.in_features

    for mod in model.modules():
        mod.register_forward_hook(hook)
    with torch.no_grad():
        model.netfclip(model.netcnnlip(torch.zeros(1, 3, 5, 224, 224)).flatten(1))
        lip = counts["n"]
        counts["n"] = 0.0
        model.netfcaud(model.netcnnaud(torch.zeros(1, 1, 13, 20)).flatten(1))
    return lip, counts["n"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0, help="clip length (25 fps)")
    p.add_argument("--size", type=int, default=160, help="frame side (LRS2 is 160)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--syncnet", help="syncnet_v2.model (default: random weights in its format)")
    p.add_argument("--skip-reference", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from tfgbench.media.io import write_video
    from tfgbench.metrics.lse.scorer import SyncScorer

    tmp = Path(tempfile.mkdtemp(prefix="lse-bench-"))
    weights = Path(args.syncnet) if args.syncnet else tmp / "syncnet_v2.model"
    if not args.syncnet:
        make_random_syncnet_file(weights)
    frames_per_clip = int(round(args.seconds * 25))
    videos = []
    for i in range(args.clips):
        frames, audio = make_clip(frames_per_clip, size=args.size, seed=i)
        videos.append(tmp / f"clip{i}.mp4")
        videos[-1].write_bytes(write_video(None, frames, audio, quality="standard"))

    scorer = SyncScorer("lse/wav2lip", weights=weights, device=args.device)
    scorer.score_file(videos[0])  # warm-up (oneDNN kernels, allocator)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    ours = [r for _, r in scorer.score_files(videos)]
    ours_s = (time.perf_counter() - t) / len(videos)

    lip, aud = tower_flops()
    windows = frames_per_clip - 5
    flops = windows * (lip + aud)
    rate = matmul_flops(args.device)
    bound = flops / rate
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, {args.clips} clips of "
          f"{frames_per_clip} frames at {args.size}x{args.size}")
    print(f"FLOPs per window: lip {lip / 1e9:.2f} G, audio {aud / 1e9:.2f} G; per clip {flops / 1e9:.1f} G")
    print(f"matmul rate: {rate / 1e9:.1f} GFLOP/s -> network bound {bound:.2f} s per clip")
    print(f"tfgbench:  {ours_s:.2f} s per clip, {flops / ours_s / 1e9:.1f} GFLOP/s achieved, "
          f"{ours_s / bound:.2f}x the bound")

    if args.skip_reference:
        return
    if shutil.which("ffmpeg") is None:
        print("reference: skipped (needs the ffmpeg CLI for its JPEG extraction)")
        return
    model = official_s()
    model.load_state_dict(torch.load(str(weights), weights_only=True), strict=False)
    model = model.to(args.device).eval()
    t = time.perf_counter()
    refs = []
    for i, v in enumerate(videos):
        images, audio = ffmpeg_extract(v, tmp / f"ref{i}")  # the official folder of JPEGs + wav
        refs.append(reference_evaluate(model, images, audio))
        shutil.rmtree(tmp / f"ref{i}")
    ref_s = (time.perf_counter() - t) / len(videos)
    print(f"reference: {ref_s:.2f} s per clip (ffmpeg JPEG/wav extraction + per-window loop)")
    # agreement with the system ffmpeg (its version's rate control / AAC decoder may differ slightly)
    d_off = sum(r[0] != o.offset for r, o in zip(refs, ours, strict=True))
    d_c = max(abs(r[1] - o.lse_c) for r, o in zip(refs, ours, strict=True))
    d_d = max(abs(r[2] - o.lse_d) for r, o in zip(refs, ours, strict=True))
    print(f"agreement: {d_off} offsets differ, max |dLSE-C| {d_c:.1e}, max |dLSE-D| {d_d:.1e}")
    print(f"speed-up:  {ref_s / ours_s:.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
