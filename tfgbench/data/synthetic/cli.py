"""``tfgbench data synthetic``: generate the synthetic corpus, or a contact sheet of it."""

from __future__ import annotations

import argparse
from pathlib import Path

SPLIT_CHOICES = ("train", "val", "test", "ood")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Generate the synthetic talking-face corpus (GRID sentences spoken by espeak-ng, procedural "
        "faces whose mouths follow the phonemes). Without --out it goes to $TFGBENCH_HOME/synthetic/"
        "<version>, where `--dataset synthetic` finds it (and generates it itself on first use).")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="corpus folder (default: $TFGBENCH_HOME/synthetic/<version>)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0; part of the version)")
    parser.add_argument("--splits", default="train,val,test,ood",
                        help="comma-separated splits to generate: train, val, test, ood (default: all)")
    parser.add_argument("--sizes", default=None, metavar="SPLIT=NxM,...",
                        help="override speakers x utterances per split, e.g. 'train=8x10,test=2x5' "
                             "(default train=32x60, val=4x20, test=8x25, ood=4x25; other sizes get "
                             "their own corpus version)")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel processes (default: one per CPU core)")
    parser.add_argument("--preview", nargs="?", const="synthetic-preview.png", default=None, metavar="PNG",
                        help="write a contact sheet of frames (default synthetic-preview.png); with no "
                             "--out, only the sheet is made")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tfgbench.errors import TfgbenchError

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    bad = [s for s in splits if s not in SPLIT_CHOICES]
    if bad or not splits:
        raise TfgbenchError(f"--splits: unknown split(s) {', '.join(bad) or '(none)'}; "
                            f"choose from {', '.join(SPLIT_CHOICES)}")
    if args.preview is not None:
        from tfgbench.data.synthetic.preview import write_contact_sheet

        path = write_contact_sheet(args.preview, seed=args.seed)
        print(f"contact sheet: {path}")
        if args.out is None:
            return 0
    from tfgbench.data.synthetic.generation import DEFAULT_SIZES, corpus_version, generate
    from tfgbench.paths import home

    sizes = parse_sizes(args.sizes) if args.sizes else dict(DEFAULT_SIZES)
    version = corpus_version(args.seed, sizes)
    out = args.out if args.out is not None else home() / "synthetic" / version
    generate(out, seed=args.seed, splits=splits, sizes=sizes, workers=args.workers, progress=not args.quiet)
    print(f"synthetic corpus {version} ({', '.join(splits)}) in {out}")
    return 0


def parse_sizes(text: str) -> dict[str, tuple[int, int]]:
    """``"train=8x10,test=2x5"`` -> the default sizes with those splits replaced."""
    from tfgbench.data.synthetic.generation import DEFAULT_SIZES
    from tfgbench.errors import TfgbenchError

    sizes = dict(DEFAULT_SIZES)
    for item in filter(None, (t.strip() for t in text.split(","))):
        split, _, dims = item.partition("=")
        try:
            n, m = (int(v) for v in dims.lower().split("x"))
        except ValueError:
            n = m = -1
        if split not in sizes or n < 1 or m < 1:
            raise TfgbenchError(f"--sizes: cannot read {item!r}; write SPLIT=SPEAKERSxUTTERANCES with "
                                f"SPLIT one of {', '.join(sizes)}, e.g. train=8x10")
        sizes[split] = (n, m)
    return sizes
