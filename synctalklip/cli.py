"""``synctalklip``: train the paper's two stages and look at their logs.

    synctalklip train avsyncnet --size tiny [--variant base|conv|plain] ...   stage 1 (AV-SyncNet)
    synctalklip train generator --variant base|conv|freeze [--ablation NAME] ...   stage 2
    synctalklip plot-log RUN_DIR [--out losses.png]

Each ``train`` sub-command forwards its remaining arguments to the stage's own parser
(``synctalklip train avsyncnet --help`` lists them). Nothing heavy is imported before a command runs.
"""

from __future__ import annotations

import argparse
import sys

STAGES = {
    "avsyncnet": ("synctalklip.train_avsyncnet", "stage 1: AV-SyncNet (masked cluster pre-training, then lip reading "
                  "+ audio-visual alignment fine-tuning)"),
    "generator": ("synctalklip.train_generator", "stage 2: the SyncTalklip generator (its variants and the paper's "
                  "Table 3 ablations)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="synctalklip", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="SyncTalklip (Highly Synchronized Lip-Readable Speaker Generation with Multi-Task Learning, "
                    "ACM MM 2024): training commands. Score a trained model with `tfgbench run --model synctalklip "
                    "--checkpoint FILE`.",
        epilog="Stages:\n" + "\n".join(f"  train {k:<10} {v[1]}" for k, v in STAGES.items()))
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a stage (arguments after the stage go to its own parser)")
    train.add_argument("stage", choices=sorted(STAGES))
    plot = sub.add_parser("plot-log", help="PNG of a training run's losses and validation figures")
    plot.add_argument("run", help="run directory (holding log.jsonl) or the log.jsonl file")
    plot.add_argument("--out", help="output PNG (default: RUN/losses.png)")
    if argv[:1] == ["train"] and len(argv) >= 2 and argv[1] in STAGES:
        import importlib

        module = importlib.import_module(STAGES[argv[1]][0])
        return int(module.main(argv[2:]) or 0)
    args = parser.parse_args(argv)
    if args.command == "plot-log":
        from tfgbench.errors import TfgbenchError
        from tfgbench.training import plot_log

        try:
            out = plot_log(args.run, args.out)
        except TfgbenchError as e:
            print(f"synctalklip: {e}", file=sys.stderr)
            return 2
        print(out)
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
