"""A strip of generated frames against ground truth: one row per model, sequential frames of one clip.

    python -m synctalklip.strip --out docs/synctalklip-strip.png [--sample ID] [--models synctalklip,talklip,wav2lip]
        [--frames 10] [--start 20] [--step 2] [--crop face|frame]

Row 1 is the ground truth; each further row is a model's output for the same frames, generated from
the clip's own audio (the shipped checkpoints by default, ``--checkpoint model=FILE`` for others).
``--crop face`` shows each frame's face box (mouth visible), ``frame`` the whole frame. Each row is
labelled with the model's name.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def strip_image(rows: list[tuple[str, np.ndarray]], label_width: int = 150) -> np.ndarray:
    """``rows`` of (label, ``(N, h, w, 3)`` uint8 tiles) -> one RGB image, a row per entry."""
    import cv2

    h, w = rows[0][1].shape[1:3]
    n = max(len(t) for _, t in rows)
    out = np.full((len(rows) * (h + 4), label_width + n * (w + 2), 3), 255, np.uint8)
    for r, (label, tiles) in enumerate(rows):
        y = r * (h + 4)
        cv2.putText(out, label, (4, y + h // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for i, tile in enumerate(tiles):
            x = label_width + i * (w + 2)
            out[y:y + h, x:x + w] = tile
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="docs/synctalklip-strip.png")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--sample", help="sample id (default: the test split's first clip)")
    p.add_argument("--models", default="synctalklip,talklip,wav2lip")
    p.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=FILE")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--start", type=int, default=20)
    p.add_argument("--step", type=int, default=2)
    p.add_argument("--crop", choices=["face", "frame"], default="face")
    args = p.parse_args(argv)
    import cv2

    from tfgbench import registry
    from tfgbench.face.crops import crop_faces

    data = registry.load("datasets", args.dataset)(split="test")
    sample = data.load(args.sample or data.ids()[0])
    picks = np.arange(args.start, args.start + args.frames * args.step, args.step)
    picks = picks[picks < sample.num_frames]
    checkpoints = dict(c.split("=", 1) for c in args.checkpoint)

    def tiles(frames: np.ndarray) -> np.ndarray:
        chosen = frames[picks]
        if args.crop == "face" and sample.boxes is not None:
            return crop_faces(chosen, sample.boxes[picks], 96)
        return np.stack([cv2.resize(f, (96, 96), interpolation=cv2.INTER_AREA) for f in chosen])

    rows = [("ground truth", tiles(sample.frames))]
    for name in args.models.split(","):
        model = registry.load("models", name)(checkpoint=checkpoints.get(name))
        rows.append((name, tiles(model.generate(sample))))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(strip_image(rows), cv2.COLOR_RGB2BGR))
    print(f"wrote {out}: {sample.id}, frames {picks.tolist()}, rows {[r[0] for r in rows]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
