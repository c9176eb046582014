"""``tfgbench reproduce --dataset synthetic``: the whole benchmark from scratch, as one resumable
pipeline of stages.

Stages (the plan is :func:`tfgbench.reproduce_plan.synthetic_plan`): the corpus; the evaluators;
the lip and sync experts; every model (shipped checkpoints and the Table 3 ablations), each with
the training command its shipped checkpoint records in its metadata, outputs redirected into the
reproduction folder; scoring of every model on ``synthetic`` and ``synthetic-ood`` with the
reproduced evaluators; the leaderboards and the figure. Nothing is written into the shipped
weights.

``--shipped`` trains nothing: it scores the shipped checkpoints and evaluators (the same scoring,
Table 2, figure and tables stages) into the same leaderboards, headed as made with ``--shipped``.

* **Resumable.** ``<out>/state.json`` records each finished stage (time taken, output sha256);
  re-running the command skips finished stages whose outputs still exist. Training commands are
  resumable themselves (``--run-dir``), so an interrupted stage continues where it stopped.
* ``--only STAGE[,STAGE]`` reruns just those stages (their dependencies must be finished);
  ``--from STAGE`` reruns that stage and every stage after it in pipeline order.
* ``--jobs N`` runs up to N independent stages at once (stages that write the results store run
  one at a time). ``--dry-run`` prints the plan with each stage's state, command and time (measured
  when it ran, else the time recorded in the shipped checkpoint's metadata).
* ``--workdir DIR`` is the results store of the scoring stages (default ``<out>/work``); ``tfgbench
  run`` resumes by key, so rows already stored there (e.g. in ``tfgbench-runs``) are reused.
* One progress display: a bar over the stages with the running ones named, a line per finished
  stage; each stage's output goes to ``<out>/logs/<stage>.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tfgbench.errors import TfgbenchError


@dataclass
class Stage:
    """One step: a subprocess (``command``) or an in-process function (``call``)."""

    name: str
    command: list[str] | None = None
    call: Callable[[], None] | None = None
    deps: tuple[str, ...] = ()
    outputs: tuple[Path, ...] = ()
    kind: str = "train"
    estimate_min: float | None = None
    source: str = ""
    resource: str | None = None  # stages sharing a resource never run at the same time
    #: (output, copy-from, why): when the command succeeds without writing ``output``, copy it
    fallbacks: tuple[tuple[Path, Path, str], ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def shown(self) -> str:
        if self.command is None:
            return f"(in-process) {self.source}"
        return shlex.join(self.command)


class Pipeline:
    """Runs :class:`Stage` lists; see the module docstring."""

    def __init__(self, stages: Sequence[Stage], root: Path, jobs: int = 1, progress: bool = True,
                 log: Callable[[str], None] = print) -> None:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise TfgbenchError("duplicate stage names")
        seen: set[str] = set()
        for s in stages:
            missing = [d for d in s.deps if d not in seen]
            if missing:
                raise TfgbenchError(f"stage {s.name} depends on {', '.join(missing)}, which do not come before it")
            seen.add(s.name)
        self.stages, self.root, self.jobs, self.progress, self.log = list(stages), root, max(1, jobs), progress, log
        self.by_name = {s.name: s for s in stages}
        self.state_path = root / "state.json"
        self.state: dict[str, dict] = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        self._lock = threading.Lock()

    # -- state -----------------------------------------------------------------------------------
    def done(self, name: str) -> bool:
        entry = self.state.get(name, {})
        return entry.get("status") == "done" and all(Path(p).exists() for p in self.by_name[name].outputs)

    def _save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))
        tmp.replace(self.state_path)

    def select(self, only: Sequence[str] | None = None, start: str | None = None) -> tuple[list[Stage], set[str]]:
        """The stages to run, in order, and those forced to rerun although finished."""
        for name in [*(only or []), *([start] if start else [])]:
            if name not in self.by_name:
                raise TfgbenchError(f"no stage {name!r}; stages: {', '.join(self.by_name)}")
        if only:
            chosen = [s for s in self.stages if s.name in only]
            for s in chosen:
                missing = [d for d in s.deps if d not in only and not self.done(d)]
                if missing:
                    raise TfgbenchError(f"--only {s.name}: its dependencies are not finished: {', '.join(missing)} "
                                        "(run them first, or use --from)")
            return chosen, {s.name for s in chosen}
        if start:
            i = [s.name for s in self.stages].index(start)
            forced = {s.name for s in self.stages[i:]}
            return [s for s in self.stages if s.name in forced or not self.done(s.name)], forced
        return [s for s in self.stages if not self.done(s.name)], set()

    def describe(self, only: Sequence[str] | None = None, start: str | None = None) -> str:
        """The plan: each stage's state, time and command (``--dry-run``)."""
        todo, forced = self.select(only, start)
        run = {s.name for s in todo}
        lines, total = [], 0.0
        for s in self.stages:
            entry = self.state.get(s.name, {})
            minutes = entry["seconds"] / 60 if self.done(s.name) and "seconds" in entry else s.estimate_min
            how = "measured" if self.done(s.name) and "seconds" in entry else "recorded" if minutes else "unknown"
            total += minutes or 0
            mark = "run" if s.name in run else "done" if self.done(s.name) else "skip"
            deps = f" (after {', '.join(s.deps)})" if 0 < len(s.deps) <= 6 else \
                f" (after {len(s.deps)} stages)" if s.deps else ""
            time_text = f"{minutes:.1f} min {how}" if minutes else "time unknown"
            lines.append(f"[{mark}] {s.name}{deps}: {time_text}\n      {s.shown()}")
        unknown = sum(1 for s in self.stages if not (self.state.get(s.name, {}).get("seconds") or s.estimate_min))
        forced_text = f" (forced: {len(forced)})" if forced else ""
        lines.append(f"{len(run)} of {len(self.stages)} stages to run{forced_text}; sum of known stage times "
                     f"{total / 60:.1f} h on the machines that measured them, one stage at a time ({unknown} stages "
                     "without a known time)")
        return "\n".join(lines)

    # -- running -----------------------------------------------------------------------------------
    def run(self, only: Sequence[str] | None = None, start: str | None = None) -> dict[str, str]:
        """Run the selected stages; returns ``{stage: "done" | "failed: ..." | "blocked by ..."}``."""
        from tqdm import tqdm

        todo, forced = self.select(only, start)
        for name in forced:
            self.state.pop(name, None)
        self._save()
        results: dict[str, str] = {}
        pending = list(todo)
        running: dict[str, tuple[subprocess.Popen | None, float, object]] = {}
        bar = tqdm(total=len(todo), desc="reproduce", unit="stage", disable=not self.progress, file=sys.stderr)
        try:
            while pending or running:
                for s in list(pending):
                    blocked = [d for d in s.deps if d in results and results[d] != "done"]
                    if blocked:
                        pending.remove(s)
                        results[s.name] = f"blocked by {blocked[0]}"
                        bar.update(1)
                        self._say(bar, f"skipped {s.name}: {results[s.name]}")
                        continue
                    ready = all(self.done(d) or results.get(d) == "done" for d in s.deps if d in self.by_name)
                    busy = s.resource is not None and any(self.by_name[r].resource == s.resource for r in running)
                    if ready and not busy and len(running) < self.jobs:
                        pending.remove(s)
                        running[s.name] = self._start(s, bar)
                if pending and not running:  # nothing can start: dependencies outside this run are missing
                    for s in pending:
                        results[s.name] = "blocked: dependencies not finished"
                    break
                for name, (proc, t0, handle) in list(running.items()):
                    code = proc.poll() if proc is not None else 0
                    if code is None:
                        continue
                    if handle is not None and hasattr(handle, "close"):
                        handle.close()
                    del running[name]
                    results[name] = self._finish(self.by_name[name], code, time.time() - t0, bar)
                    bar.update(1)
                bar.set_postfix_str(", ".join(f"{n} {int(time.time() - t) // 60}:{int(time.time() - t) % 60:02d}"
                                              for n, (_, t, _) in running.items()), refresh=False)
                if running:
                    time.sleep(0.2)
        except KeyboardInterrupt:
            for proc, _, _ in running.values():
                if proc is not None:
                    proc.terminate()
            raise
        finally:
            bar.close()
        return results

    def _say(self, bar, text: str) -> None:
        (bar.write if self.progress else self.log)(text)

    def _start(self, s: Stage, bar) -> tuple[subprocess.Popen | None, float, object]:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{s.name}.log"
        t0 = time.time()
        self._say(bar, f"start {s.name}")
        if s.command is None:
            try:
                assert s.call is not None
                s.call()
            except Exception as e:  # noqa: BLE001 - a failed stage is reported, the others go on
                log_path.write_text(f"{type(e).__name__}: {e}\n")
                self.state[s.name] = {"status": "failed", "error": str(e)}
                return (_Failed(), t0, None)
            return (None, t0, None)
        handle = open(log_path, "a")
        handle.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {s.shown()}\n")
        handle.flush()
        proc = subprocess.Popen(s.command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **s.env},
                                start_new_session=True)
        return (proc, t0, handle)

    def _finish(self, s: Stage, code: int, seconds: float, bar) -> str:
        from tfgbench.filehash import file_sha256

        log_path = self.root / "logs" / f"{s.name}.log"
        notes = []
        if code == 0:
            for out, src, why in s.fallbacks:
                if not out.exists() and src.is_file():
                    import shutil

                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, out)
                    notes.append(f"{out.name} copied from {src}: {why}")
            missing = [str(p) for p in s.outputs if not p.exists()]
            if missing:
                code, error = -1, f"exited 0 but did not write {', '.join(missing)}"
        else:
            error = self.state.get(s.name, {}).get("error") or f"exit status {code}"
        if code != 0:
            self.state[s.name] = {"status": "failed", "error": error, "seconds": round(seconds, 1)}
            self._save()
            self._say(bar, f"FAILED {s.name} after {_duration(seconds)}: {error} (log: {log_path})")
            return f"failed: {error}"
        outputs = {str(p): file_sha256(p) for p in s.outputs if p.is_file()}
        self.state[s.name] = {"status": "done", "seconds": round(seconds, 1), "finished": time.time(),
                              "outputs": outputs, **({"notes": notes} if notes else {})}
        self._save()
        self._say(bar, f"done {s.name} in {_duration(seconds)}" + "".join(f"; note: {n}" for n in notes))
        return "done"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class _Failed:
    """Stands in for the process of an in-process stage that raised."""

    def poll(self) -> int:
        return 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.split("\n\n")[1]
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "\n\n".join(__doc__.split("\n\n")[2:])
    p.add_argument("--dataset", default="synthetic", choices=["synthetic"],
                   help="what to reproduce (the synthetic corpus: LRS2/LRS3 need data and GPUs)")
    p.add_argument("--out", help="folder for the reproduced weights, runs, results and logs (default: "
                   "reproduce-synthetic; with --shipped: reproduce-synthetic-shipped)")
    p.add_argument("--shipped", action="store_true",
                   help="train nothing: score and tabulate the checkpoints and evaluators shipped in the repository")
    p.add_argument("--workdir", help="results store of the scoring stages (default: <out>/work); an existing store "
                   "(e.g. tfgbench-runs) is resumed: rows stored under the same key are reused")
    p.add_argument("--home", help="TFGBENCH_HOME of the stages: corpus and caches (default: <out>/home, so nothing "
                   "cached by earlier runs is reused)")
    p.add_argument("--leaderboards", default="leaderboards/synthetic",
                   help="where the tables and the figure go (default: leaderboards/synthetic)")
    p.add_argument("--only", help="run only these stages (comma-separated); their dependencies must be finished")
    p.add_argument("--from", dest="start", metavar="STAGE", help="rerun this stage and every stage after it")
    p.add_argument("--jobs", type=int, default=1, help="stages run at once (default: 1)")
    p.add_argument("--no-ablations", action="store_true", help="skip the four Table 3 ablation models")
    p.add_argument("--dry-run", action="store_true", help="print the plan (state, time, command of each stage)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from tfgbench.reproduce_plan import synthetic_plan

    mode = "shipped" if args.shipped else "retrain"
    out = Path(args.out or ("reproduce-synthetic-shipped" if args.shipped else "reproduce-synthetic")).resolve()
    _check_mode(out, mode)
    home = Path(args.home).resolve() if args.home else out / "home"
    stages = synthetic_plan(out, home, Path(args.leaderboards).resolve(), ablations=not args.no_ablations,
                            command=shlex.join(["tfgbench", *sys.argv[1:]]), shipped=args.shipped,
                            workdir=Path(args.workdir).resolve() if args.workdir else None)
    pipe = Pipeline(stages, out, jobs=args.jobs, progress=not args.no_progress)
    only = [x.strip() for x in args.only.split(",") if x.strip()] if args.only else None
    if args.dry_run:
        print(pipe.describe(only, args.start))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    (out / "mode").write_text(mode + "\n")
    results = pipe.run(only, args.start)
    failed = {k: v for k, v in results.items() if v != "done"}
    print(f"{len(results) - len(failed)} stage(s) finished, {len(failed)} not: "
          + ("; ".join(f"{k} {v}" for k, v in failed.items()) or "none") + f". State: {pipe.state_path}")
    return 1 if failed else 0


def _check_mode(out: Path, mode: str) -> None:
    """Refuse a folder made by the other mode: its finished scoring and table stages have the same
    names but used other checkpoints, so they would be skipped as finished."""
    marker = out / "mode"
    made = marker.read_text().strip() if marker.is_file() else "retrain" if (out / "state.json").is_file() else None
    if made is not None and made != mode:
        flag = "with --shipped" if made == "shipped" else "without --shipped"
        raise TfgbenchError(f"--out {out} was made {flag}; give another --out")
