"""The ``tfgbench`` command. Starts fast: torch and plugins are imported only by the
subcommand that needs them (``tfgbench --help`` imports neither)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from tfgbench import __version__
from tfgbench.errors import TfgbenchError

DEFAULT_WORKDIR = os.environ.get("TFGBENCH_WORKDIR", "tfgbench-runs")

#: exit statuses of ``run`` and ``score`` (also printed by ``tfgbench run --help``)
EXIT_OK, EXIT_CONFIG, EXIT_FAILED_SAMPLES = 0, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143
EXIT_STATUS_HELP = """exit status:
  0    every requested sample was scored (or --allow-failures was given)
  2    configuration error (unknown name, bad value, missing file): nothing was generated
  3    the run finished, but some samples are stored as error rows (see the summary; the
       error column of the results); --allow-failures exits 0 instead
  130  interrupted by Ctrl-C, 143 by SIGTERM: finished samples are stored, re-run to resume
"""

#: subcommands implemented in other modules: name -> (module, one-line help)
EXTERNAL = {
    "lse": ("tfgbench.metrics.lse.cli", "score one video's lip sync: offset, LSE-C, LSE-D"),
    "wer": ("tfgbench.metrics.wer.cli", "lip-read one video and score it against its transcript (WER)"),
    "calibrate": ("tfgbench.calibrate", "how far each metric moves under controlled degradations (plots, summary)"),
    "compare": ("tfgbench.compare", "paired comparison of two models: difference, confidence interval, p-value"),
    "figure": ("tfgbench.figures", "figures: snapshot strips (paper Figure 3) and per-model distributions (PNG)"),
    "report": ("tfgbench.report", "static HTML leaderboard: sortable tables with CIs, model pages with clips"),
    "reproduce": ("tfgbench.reproduce", "retrain (--shipped: rescore) and tabulate everything on the synthetic corpus"),
    "rate": ("tfgbench.rate", "serve a local page that records blind 1-5 human ratings (paper Table 5)"),
}
DATA_COMMANDS = {
    "synthetic": ("tfgbench.data.synthetic.cli", "generate the synthetic talking-face corpus"),
}

EPILOG = """examples:
  tfgbench run --model static-frame --dataset synthetic          score a model on the built-in corpus
  tfgbench run --model ground-truth --dataset folder --data-root DIR --metrics psnr,ssim
  tfgbench score --videos OUT/ --dataset lrs2 --name my-model    score videos generated elsewhere
  tfgbench table --format latex                                  render the leaderboard
  tfgbench list protocols                                        what each metric protocol pins
"""


def _key_values(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TfgbenchError(f"{what} must look like KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _add_run_arguments(p: argparse.ArgumentParser, with_model: bool = True) -> None:
    if with_model:
        p.add_argument("--model", required=True,
                       help="model plugin name, or several separated by commas (see `tfgbench list models`)")
        p.add_argument("--checkpoint", help="model checkpoint file (default: the model's shipped one)")
        p.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                       help="model setting (repeatable); values are JSON when they parse, e.g. reference=0")
        p.add_argument("--delivery", default="lossless", choices=["lossless", "official"],
                       help="frames scored as generated (lossless, default) or after the DIVX + H.264 "
                       "encode of the official inference scripts (official); part of the results key")
    p.add_argument("--dataset", required=True, help="dataset name (see `tfgbench list datasets`)")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--data-root", help="dataset folder (or set TFGBENCH_LRS2 / TFGBENCH_LRS3)")
    p.add_argument("--limit", type=int, help="only the first N samples (tables flag partial coverage)")
    p.add_argument("--metrics", help="comma-separated metric families or protocols, e.g. psnr,ssim,lse/wav2lip "
                   "(default: psnr,ssim,lse,wer with the dataset's default protocols; those whose weights "
                   "are missing are skipped)")
    p.add_argument("--weights", action="append", metavar="NAME=FILE",
                   help="evaluator weights per metric family or protocol (repeatable), e.g. lse=syncnet_v2.model "
                   "or wer/talklip-conformer=observer2.pth; a protocol's own entry wins over its family's")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR,
                   help=f"results database and video cache (default: {DEFAULT_WORKDIR}, or $TFGBENCH_WORKDIR)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes (default: 1), or Ray actors with --executor ray (default: one per GPU "
                   "of the cluster with --device cuda, else one per 2 CPUs)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="samples per generate/score call for models and metrics that declare batch support "
                   "(default: the largest any of them declares, e.g. 4 for wav2lip/talklip/lse, 8 for wer; "
                   "1 = one at a time). Results do not depend on it")
    if with_model:
        p.add_argument("--executor", default="local", choices=["local", "ray"],
                       help="local (this machine; default) or ray (samples sharded to Ray actors; needs "
                       "pip install 'tfgbench[ray]')")
        p.add_argument("--address", help="Ray cluster to join with --executor ray (default: $RAY_ADDRESS, else a "
                       "Ray started on this machine)")
    p.add_argument("--retry-errors", action="store_true", help="re-score samples stored as errors")
    p.add_argument("--allow-failures", action="store_true",
                   help=f"exit 0 even when samples are stored as error rows (default: exit {EXIT_FAILED_SAMPLES})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfgbench", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Talking-face generation benchmark: LSE-C/LSE-D, lip-reading WER, PSNR and SSIM computed "
                    "as the official scripts compute them, stored per sample, rendered as leaderboards.")
    parser.add_argument("--version", action="version", version=f"tfgbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="generate a dataset split with a model, score it, store and print results",
                       description="Generate, cache, score and store; re-running resumes where it stopped.",
                       epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_arguments(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("score", help="score videos generated elsewhere, matched to a dataset by file name",
                       description="Score a folder of generated mp4s (named <id>.mp4, <id with / as _>.mp4 or "
                                   "<utterance>.mp4) against a dataset's samples.",
                       epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", required=True, help="folder of generated .mp4 files")
    p.add_argument("--name", required=True, help="the model name shown in tables")
    _add_run_arguments(p, with_model=False)
    p.set_defaults(handler=cmd_score)

    p = sub.add_parser("table", help="render stored results as leaderboard tables")
    p.add_argument("--dataset", help="only this dataset")
    p.add_argument("--split", help="only this split")
    p.add_argument("--format", default="md", choices=["md", "latex", "html", "csv", "csv-summary"],
                   help="md, latex, html: the tables; csv: every stored row as it is (tfgbench.results(), one "
                   "line per model, dataset, split, sample, protocol and measure); csv-summary: one line per "
                   "table cell (with --ci: its interval)")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"(default: {DEFAULT_WORKDIR})")
    p.add_argument("--output", help="write to this file instead of stdout")
    from tfgbench.paper import add_table_arguments

    add_table_arguments(p)
    p.set_defaults(handler=cmd_table)

    p = sub.add_parser("list", help="list installed models, datasets, metrics or protocols")
    p.add_argument("what", choices=["models", "datasets", "metrics", "protocols"])
    p.set_defaults(handler=cmd_list)

    data = sub.add_parser("data", help="make datasets (the synthetic corpus)")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATASET", required=True)
    for name, (module, help_text) in DATA_COMMANDS.items():
        dp = data_sub.add_parser(name, help=help_text, description=help_text)
        if argv[:2] == ["data", name]:
            _attach(dp, module)

    for name, (module, help_text) in EXTERNAL.items():
        ep = sub.add_parser(name, help=help_text, description=help_text)
        if argv[:1] == [name]:
            _attach(ep, module)
    return parser


def _attach(parser: argparse.ArgumentParser, module_name: str) -> None:
    module = importlib.import_module(module_name)
    module.add_arguments(parser)
    parser.set_defaults(handler=module.run)


def _spec(args: argparse.Namespace, model: str) -> object:
    from tfgbench.runner import RunSpec

    return RunSpec(
        model=model, dataset=args.dataset, split=args.split, data_root=args.data_root, limit=args.limit,
        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None,
        workdir=args.workdir, device=args.device,
        jobs=args.jobs if args.jobs is not None else 0 if getattr(args, "executor", "local") == "ray" else 1,
        checkpoint=getattr(args, "checkpoint", None),
        model_args={k: _parse_value(v)
                    for k, v in _key_values(getattr(args, "model_arg", None), "--model-arg").items()},
        weights=_key_values(args.weights, "--weights"), retry_errors=args.retry_errors,
        command=shlex.join(["tfgbench", *sys.argv[1:]]), delivery=getattr(args, "delivery", "lossless"),
        batch_size=args.batch_size, executor=getattr(args, "executor", "local"),
        address=getattr(args, "address", None))


def _report(summaries: list, workdir: str, allow_failures: bool = False) -> int:
    from tfgbench.store import Store
    from tfgbench.tables import build_tables, render

    print()
    for summary in summaries:
        print(f"{summary.model.model}: {summary.samples} samples scored, {summary.skipped} already stored, "
              f"{len(summary.failed)} failed ({summary.seconds:.1f} s)")
        if summary.stored_failures > len(summary.failed):
            print(f"  {summary.stored_failures} of its {summary.requested} samples are stored as error rows "
                  "(--retry-errors scores them again)")
        for sample_id, error in list(summary.failed.items())[:5]:
            print(f"  failed {sample_id}: {error.splitlines()[0]}")
        if len(summary.failed) > 5:
            print(f"  ... and {len(summary.failed) - 5} more (see the error column of the results table)")
    print(f"Results: {Path(workdir) / 'results.sqlite'}")
    with Store(Path(workdir) / "results.sqlite") as store:
        tables = build_tables(store.rows(summaries[0].dataset.dataset), store.measures(), store.dataset_sizes())
    for table in tables:
        if table.dataset == summaries[0].dataset:
            print()
            print(render(table, "md"))
    failing = [s for s in summaries if s.stored_failures]
    if failing and not allow_failures:
        print(f"tfgbench: {sum(s.stored_failures for s in failing)} sample(s) are error rows "
              f"({', '.join(s.model.model for s in failing)}): exit status {EXIT_FAILED_SAMPLES} "
              "(--allow-failures exits 0)", file=sys.stderr)
        return EXIT_FAILED_SAMPLES
    return EXIT_OK


def _interrupted(e: BaseException, done: list) -> int:
    """What a Ctrl-C or SIGTERM left behind, and how to resume; the exit status."""
    from tfgbench.runner import RunInterrupted

    # a SIGTERM can reach here as a plain KeyboardInterrupt (Ray's blocking calls re-raise any exception
    # a signal handler raised as one), so the handler's own record decides
    name = "SIGTERM" if _SIGNALS else getattr(e, "signal_name", None) or "SIGINT"
    lines = [f"\ninterrupted ({name}): every finished sample is stored; nothing in flight was kept."]
    for s in done:
        lines.append(f"  {s.model.model}: complete ({s.samples} scored, {s.skipped} already stored)")
    if isinstance(e, RunInterrupted):
        s = e.summary
        lines.append(f"  {s.model.model}: {s.samples} samples scored and stored by this run, {s.skipped} stored "
                     f"before, {s.remaining} of {s.requested} still to do")
        lines.append(f"  results: {s.dataset.dataset}/{s.dataset.split} in the store of this --workdir")
    lines.append("Run the same command again to resume: stored samples are skipped.")
    print("\n".join(lines), file=sys.stderr)
    return EXIT_SIGTERM if name == "SIGTERM" else EXIT_SIGINT


def cmd_run(args: argparse.Namespace) -> int:
    from tfgbench.preflight import check_spec
    from tfgbench.runner import run

    models = [m.strip() for m in args.model.split(",") if m.strip()]
    check_spec(_spec(args, args.model))  # every model, flag and file, before the first sample
    summaries: list = []
    try:
        for model in models:
            summaries.append(run(_spec(args, model), progress=not args.no_progress))
    except KeyboardInterrupt as e:
        return _interrupted(e, summaries)
    return _report(summaries, args.workdir, args.allow_failures)


def cmd_score(args: argparse.Namespace) -> int:
    from tfgbench.preflight import ConfigError, check_spec
    from tfgbench.runner import build_dataset, checked_ids, run
    from tfgbench.videos import ExternalVideos, match_videos

    spec = _spec(args, args.name)
    check_spec(spec, with_model=False)
    if not Path(args.videos).is_dir():
        raise ConfigError(f"--videos {args.videos}: no such folder")
    dataset = build_dataset(spec)
    all_ids = checked_ids(dataset)
    ids = all_ids[: spec.limit] if spec.limit else all_ids
    matched = match_videos(Path(args.videos), dataset, ids, all_ids)
    videos = matched.videos
    print(f"matched {len(videos)} of {len(ids)} samples to videos in {args.videos}")
    if matched.unmatched_files:
        names = [str(p.relative_to(args.videos)) for p in matched.unmatched_files]
        print(f"warning: {len(names)} file(s) in {args.videos} match no sample of {dataset.name}/{dataset.split} "
              f"and are not scored: {', '.join(names[:10])}" + (" ..." if len(names) > 10 else ""))
    if not videos:
        raise TfgbenchError(f"no video in {args.videos} matches a sample id of {dataset.name}/{dataset.split} "
                            f"(e.g. {ids[0]}.mp4)")
    model = ExternalVideos(videos, args.name, Path(args.videos))
    try:
        summary = run(spec, model=model, progress=not args.no_progress)
    except KeyboardInterrupt as e:
        return _interrupted(e, [])
    return _report([summary], args.workdir, args.allow_failures)


def cmd_table(args: argparse.Namespace) -> int:
    path = Path(args.workdir) / "results.sqlite"
    if args.format == "csv-summary" and args.paper:
        raise TfgbenchError("--format csv-summary is the leaderboard's one line per cell; --paper tables "
                            "have --format csv")
    if args.format == "csv" and not args.paper:
        return _csv_dump(args, path)
    if args.paper or args.ci:
        from tfgbench.paper import cmd_table as paper_table

        return paper_table(args)
    from tfgbench.frame import results
    from tfgbench.store import Store
    from tfgbench.tables import build_tables, render

    if not path.is_file():
        raise TfgbenchError(f"no results at {path}: run `tfgbench run ...` first (or pass --workdir)")
    frame = results(path, dataset=args.dataset, split=args.split)
    with Store(path) as store:
        tables = build_tables(frame, store.measures(), store.dataset_sizes())
    if not tables:
        raise TfgbenchError(f"no stored results{' for ' + args.dataset if args.dataset else ''} in {path}")
    return _write("\n".join(render(t, args.format) for t in tables), args.output)


def _csv_dump(args: argparse.Namespace, path: Path) -> int:
    """``tfgbench table --format csv``: the results frame as it is, one line per stored row."""
    from tfgbench.frame import results, to_csv

    if args.ci:
        raise TfgbenchError("--ci puts intervals on table cells, and --format csv is the per-sample dump of "
                            "the results: use --format csv-summary --ci")
    if not path.is_file():
        raise TfgbenchError(f"no results at {path}: run `tfgbench run ...` first (or pass --workdir)")
    frame = results(path, dataset=args.dataset, split=args.split)
    if frame.empty:
        raise TfgbenchError(f"no stored results{' for ' + args.dataset if args.dataset else ''} in {path}")
    return _write(to_csv(frame), args.output)


def _write(text: str, output: str | None) -> int:
    if output:
        Path(output).write_text(text)
        print(f"wrote {output}")
    else:
        print(text, end="")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from tfgbench import registry

    if args.what != "protocols":
        for name, entry in registry.entries(args.what).items():
            print(f"{name:24s} {entry.target}  [{entry.distribution}]")
        return 0
    for family, entry in registry.entries("metrics").items():
        try:
            cls = entry.load()
        except TfgbenchError as e:
            print(f"{family}: unavailable ({e})")
            continue
        for spec in cls.protocols:
            arrows = {True: " ↑", False: " ↓", None: ""}
            measures = ", ".join(f"{m.label}{arrows[m.higher_is_better]}" for m in spec.measures)
            print(f"{spec.name:26s} {measures:28s} {spec.summary}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 1
    main_thread = threading.current_thread() is threading.main_thread()
    _SIGNALS.clear()
    previous = signal.signal(signal.SIGTERM, _raise_sigterm) if main_thread else None  # Slurm pre-emption
    try:
        return int(args.handler(args) or 0)
    except TfgbenchError as e:
        print(f"tfgbench: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as e:
        return _interrupted(e, [])
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so cleanup runs as for Ctrl-C."""

    signal_name = "SIGTERM"


#: the SIGTERMs :func:`_raise_sigterm` received during this :func:`main`
_SIGNALS: list[str] = []


def _raise_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough; cleanup must not be interrupted again
    _SIGNALS.append("SIGTERM")
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
