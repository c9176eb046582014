"""How much does the delivery move each metric? Every clip scored twice: the generated frames as they
are (``--delivery lossless``) and after the official inference scripts' encode (``--delivery
official``: OpenCV DIVX .avi, then ffmpeg's default libx264 CRF 23; see tfgbench.delivery).

    python benchmarks/delivery.py [--models ground-truth,wav2lip] [--clips 200] [--dataset synthetic]

Prints, per model and measure, the dataset value under each delivery (computed as tables compute it),
the difference, and the mean absolute per-clip change; plus the PSNR of the encode itself (official
frames against the generated frames). Uses the shipped checkpoints and the synthetic evaluators.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="ground-truth,wav2lip")
    p.add_argument("--clips", type=int, default=200, help="first N clips of the split (default: 200, all of test)")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--split", default="test")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    import numpy as np
    import torch

    from tfgbench import registry
    from tfgbench.delivery import official_roundtrip
    from tfgbench.metrics.base import aggregate
    from tfgbench.metrics.quality import psnr

    torch.set_num_threads(args.threads)
    data = registry.load("datasets", args.dataset)(split=args.split)
    ids = data.ids()[: args.clips]
    protocols = (("psnr", "psnr/talklip"), ("ssim", "ssim/talklip"), ("lse", "lse/synthetic"),
                 ("wer", "wer/synthetic-avhubert"), ("wer", "wer/synthetic-conformer"))
    metrics = [registry.load("metrics", fam)(proto) for fam, proto in protocols]
    print(f"{len(ids)} {args.dataset}/{args.split} clips; each scored lossless and after the official encode")
    print("| model | measure | lossless | official | official - lossless | mean abs. per-clip change |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        model = registry.load("models", name)()
        rows: dict[tuple[str, str], dict[str, list]] = {}
        encode_psnr, t0 = [], time.perf_counter()
        for sample_id in ids:
            sample = data.load(sample_id)
            frames = model.generate(sample)
            delivered = {"lossless": frames, "official": official_roundtrip(frames, sample.where())}
            encode_psnr.append(np.mean([psnr(a, b) for a, b in zip(frames, delivered["official"])]))
            for metric in metrics:
                for delivery, f in delivered.items():
                    for key, s in metric.score(sample, f).items():
                        rows.setdefault((metric.spec.name, key), {}).setdefault(delivery, []).append(
                            (s.value, s.num, s.den))
        for metric in metrics:
            for measure in metric.spec.measures:
                got = rows[(metric.spec.name, measure.key)]
                a, b = (aggregate(measure, got[d]) for d in ("lossless", "official"))
                change = np.mean([abs(y[0] - x[0]) for x, y in zip(got["lossless"], got["official"])])
                scale = 100 if measure.percent else 1
                label = f"{measure.label}{' %' if measure.percent else ''} ({metric.spec.name})"
                print(f"| {name} | {label} | {a * scale:.3f} | {b * scale:.3f} | {(b - a) * scale:+.3f} | "
                      f"{change * scale:.3f} |")
        print(f"| {name} | encode PSNR (official vs generated frames, dB, mean over clips) | | "
              f"{np.mean(encode_psnr):.2f} | | |")
        print(f"<!-- {name}: {time.perf_counter() - t0:.0f} s -->")


if __name__ == "__main__":
    main()
