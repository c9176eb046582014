"""The stages of ``tfgbench reproduce --dataset synthetic`` (see :mod:`tfgbench.reproduce`).

Every training stage runs the command recorded in the ``command`` metadata field of the shipped
checkpoint it reproduces (the commands of the README's training table), rewritten so that it
writes into the reproduction folder: ``--out`` (and ``--pretrained-out``, ``--run-dir``) point into
``<out>/weights`` and ``<out>/runs``, and every shipped file the command reads (an expert, an
initialisation, a supervisor) is replaced by its reproduced copy, which makes that stage a
dependency. Generators also pin the training recipe recorded in their metadata (loss weights,
learning rate, clips per step, window, steps), so a later change of the defaults does not change
what is reproduced. Scoring runs every model on ``synthetic`` and ``synthetic-ood`` with the
reproduced checkpoints and evaluators (``--checkpoint``, ``--weights``) into ``<out>/work``
(``--workdir``).

``--shipped``: no training stage; the scoring stages name the shipped files themselves
(``--checkpoint``/``--weights`` with their paths in the repository). Rows are keyed by the sha256
of the file's content (:mod:`tfgbench.keys`, the metrics' ``evaluator_sha256``), so they get the
same keys as ``tfgbench run`` with its defaults, and a shared ``--workdir`` reuses stored rows. A
shipped file that is missing leaves out the stages that need it, with a note naming it.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from tfgbench.reproduce import Stage

REPO = Path(__file__).resolve().parents[1]

#: stage -> shipped checkpoint whose metadata holds the command (training order)
TRAINING = [
    ("eval-syncnet", "tfgbench/weights/syncnet-synthetic.safetensors"),
    ("eval-avhubert", "tfgbench/weights/avhubert-synthetic.safetensors"),
    ("eval-conformer", "tfgbench/weights/conformer-synthetic.safetensors"),
    ("expert-avhubert", "synctalklip/weights/avsyncnet-plain-tiny.safetensors"),
    ("expert-avsyncnet", "synctalklip/weights/avsyncnet-base-tiny.safetensors"),
    ("expert-avsyncnet-conv", "synctalklip/weights/avsyncnet-conv-tiny.safetensors"),
    ("expert-wav2lip", "baselines/wav2lip/weights/syncnet-color-tiny.safetensors"),
    ("wav2lip", "baselines/wav2lip/weights/wav2lip-tiny.safetensors"),
    ("wav2lip-gan", "baselines/wav2lip/weights/wav2lip-gan-tiny.safetensors"),
    ("talklip", "baselines/talklip/weights/talklip-tiny.safetensors"),
    ("synctalklip", "synctalklip/weights/synctalklip-tiny.safetensors"),
    ("synctalklip-conv", "synctalklip/weights/synctalklip-conv-tiny.safetensors"),
    ("synctalklip-freeze", "synctalklip/weights/synctalklip-freeze-tiny.safetensors"),
]
PRETRAINED = "synctalklip/weights/avhubert-pretrained-tiny.safetensors"
ABLATIONS = ("supcon", "avhubert", "no-contrastive", "no-lip")
#: the shipped checkpoint of a Table 3 ablation model
ABLATION_FILE = "synctalklip/weights/synctalklip-{}-tiny.safetensors"
#: recipe key -> training flag (generators)
RECIPE_FLAGS = {"lip_w": "--lip-w", "cont_w": "--cont-w", "perp_w": "--perp-w", "lr": "--lr",
                "clips_per_step": "--clips-per-step", "window": "--window", "val_every": "--val-every",
                "steps": "--steps", "disc_lr": "--disc-lr"}
EVALUATORS = {"eval-syncnet": "lse/synthetic", "eval-avhubert": "wer/synthetic-avhubert",
              "eval-conformer": "wer/synthetic-conformer"}
#: Table 2 readers: stage of the reproduced file
READERS = ("expert-avhubert", "expert-avsyncnet", "expert-avsyncnet-conv")
MODELS = ("ground-truth", "static-frame", "wav2lip", "wav2lip-gan", "talklip", "synctalklip", "synctalklip-conv",
          "synctalklip-freeze")


def metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return dict(f.metadata() or {})


def recorded_command(md: dict[str, str]) -> str:
    """The ``command`` metadata field (stored JSON-encoded)."""
    text = md["command"]
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, str) else text


def _minutes(md: dict[str, str]) -> float | None:
    for key, scale in (("minutes", 1.0), ("train_seconds", 1 / 60), ("training_seconds", 1 / 60)):
        if md.get(key):
            try:
                return round(float(json.loads(md[key])) * scale, 1)
            except (ValueError, TypeError):
                pass
    return None


def argv_of(command: str) -> list[str]:
    """A recorded command as an argv for this interpreter (``python -m X``, ``synctalklip ...``)."""
    argv = shlex.split(command)
    if argv[0].startswith("python"):
        return [sys.executable, *argv[1:]]
    if argv[0] in ("synctalklip", "tfgbench"):
        return [sys.executable, "-m", f"{argv[0]}.cli", *argv[1:]]
    return argv


def set_option(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with ``flag value`` replaced (or appended)."""
    out = list(argv)
    for i, a in enumerate(out):
        if a == flag and i + 1 < len(out):
            out[i + 1] = value
            return out
        if a.startswith(flag + "="):
            out[i] = f"{flag}={value}"
            return out
    return [*out, flag, value]


def option(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv[:-1]):
        if a == flag:
            return argv[i + 1]
    return None


def synthetic_plan(out: Path, home: Path, leaderboards: Path, ablations: bool = True, command: str = "",
                   repo: Path = REPO, shipped: bool = False, workdir: Path | None = None,
                   note: Callable[[str], None] = print) -> list[Stage]:
    """Every stage of the synthetic reproduction, in order. ``shipped``: no training stage; the
    scoring stages use the shipped files (a missing one leaves out the stages that need it, with a
    ``note``). ``workdir``: the scoring stages' results store (default ``<out>/work``)."""
    env = {"TFGBENCH_HOME": str(home)}
    stages = [Stage("corpus", [sys.executable, "-m", "tfgbench.cli", "data", "synthetic", "--quiet"],
                    kind="data", env=env, estimate_min=2.8, outputs=(home / "synthetic",),
                    source="README: `tfgbench data synthetic` (whole corpus about 2.8 min on 2 cores)")]
    files = shipped_files(repo, ablations) if shipped else _training(stages, out, env, repo, ablations)
    return stages + _scoring(files, workdir or out / "work", env, ablations, leaderboards, command, home, shipped,
                             note)


def model_file(model: str) -> str | None:
    """The shipped checkpoint (path in the repository) of a model; ``None`` for the trivial rows."""
    if model.removeprefix("synctalklip-") in ABLATIONS:
        return ABLATION_FILE.format(model.removeprefix("synctalklip-"))
    return next((rel for name, rel in TRAINING if name == model), None)


def shipped_files(repo: Path = REPO, ablations: bool = True) -> dict[str, tuple[str | None, Path]]:
    """``{shipped path: (None, file)}`` for every file the scoring stages read: the evaluators, the
    Table 2 readers, every model's checkpoint (present or not)."""
    models = [*MODELS, *(f"synctalklip-{a}" for a in ABLATIONS if ablations)]
    rels = [_rel(s) for s in (*EVALUATORS, *READERS)] + [r for m in models if (r := model_file(m))]
    return {rel: (None, repo / rel) for rel in rels}


def _training(stages: list[Stage], out: Path, env: dict[str, str], repo: Path,
              ablations: bool) -> dict[str, tuple[str | None, Path]]:
    """Appends the training stages; returns ``{shipped path: (stage, reproduced file)}``."""
    weights, runs = out / "weights", out / "runs"
    produced: dict[str, tuple[str | None, Path]] = {}
    for name, rel in TRAINING:
        md = metadata(repo / rel)
        argv = argv_of(recorded_command(md))
        target = weights / Path(rel).name
        deps = {"corpus"}
        for i, a in enumerate(list(argv)):
            if a in produced and argv[i - 1] != "--out":
                stage, file = produced[a]
                argv[i] = str(file)
                deps.add(stage)
        argv = set_option(argv, "--out", str(target))
        if option(argv, "--run-dir") or "synctalklip.cli" in argv or "baselines.wav2lip.train" in argv \
                or "synctalklip.train_avsyncnet" in argv:
            argv = set_option(argv, "--run-dir", str(runs / name))
        outputs = [target]
        fallbacks = ()
        if option(argv, "--pretrained-out"):
            pre = weights / Path(PRETRAINED).name
            argv = set_option(argv, "--pretrained-out", str(pre))
            produced[PRETRAINED] = (name, pre)
            outputs.append(pre)
            why = ("synctalklip.train_avsyncnet loads the shipped pre-training instead of pre-training again when "
                   "its settings match, so this file is the shipped one, not retrained")
            fallbacks = ((pre, repo / PRETRAINED, why),)
        if md.get("supervisor"):
            sup = Path(json.loads(md["supervisor"])).name
            key = next(k for k in produced if Path(k).name == sup)
            argv = set_option(argv, "--supervisor", str(produced[key][1]))
            deps.add(produced[key][0])
        if md.get("recipe"):
            recipe = json.loads(md["recipe"])
            for k, flag in RECIPE_FLAGS.items():
                if k in recipe and recipe[k] is not None:
                    argv = set_option(argv, flag, str(recipe[k]))
        if md.get("sync_head"):     # SyncTalklip generators: which head scored the contrastive term
            argv = set_option(argv, "--sync-head", str(json.loads(md["sync_head"])))
        produced[rel] = (name, target)
        stages.append(Stage(name, argv, deps=tuple(sorted(deps, key=[s.name for s in stages].index)),
                            outputs=tuple(outputs), estimate_min=_minutes(md), env=env, fallbacks=fallbacks,
                            source=f"metadata of {rel}: {recorded_command(md)}"))
    if ablations:
        base = next(s for s in stages if s.name == "synctalklip")
        for ab in ABLATIONS:
            name = f"synctalklip-{ab}"
            sup = produced["synctalklip/weights/avsyncnet-plain-tiny.safetensors" if ab == "avhubert" else
                           "synctalklip/weights/avsyncnet-base-tiny.safetensors"]
            argv = [*base.command[:base.command.index("train") + 2], "--ablation", ab]
            argv += [a for a in base.command[base.command.index("train") + 2:]]
            argv = set_option(set_option(set_option(set_option(argv, "--variant", "base"), "--out",
                                                    str(weights / f"{name}-tiny.safetensors")),
                                         "--run-dir", str(runs / name)), "--supervisor", str(sup[1]))
            stages.append(Stage(name, argv, deps=("corpus", sup[0]), outputs=(weights / f"{name}-tiny.safetensors",),
                                estimate_min=base.estimate_min, env=env,
                                source=f"`synctalklip train generator --ablation {ab}` with synctalklip's recipe"))
            produced[ABLATION_FILE.format(ab)] = (name, weights / f"{name}-tiny.safetensors")
    return produced


def _scoring(files: dict[str, tuple[str | None, Path]], work: Path, env: dict[str, str], ablations: bool,
             leaderboards: Path, command: str, home: Path, shipped: bool, note: Callable[[str], None]) -> list[Stage]:
    """The scoring, Table 2 reader, figure and tables stages over ``files`` (see :func:`synthetic_plan`)."""
    stages: list[Stage] = []
    left_out: dict[str, list[str]] = {}

    def usable(name: str, rels: list[str]) -> bool:
        """Whether ``rels`` will exist (made by a stage, or shipped); else ``name`` is left out."""
        missing = [r for r in rels if files[r][0] is None and not files[r][1].is_file()]
        for r in missing:
            left_out.setdefault(r, []).append(name)
        return not missing

    def deps(rels: list[str]) -> tuple[str, ...]:
        return ("corpus", *(s for r in rels if (s := files[r][0]) is not None))

    evaluators = [_rel(stage) for stage in EVALUATORS]
    evaluator_args = [a for stage, proto in EVALUATORS.items()
                      for a in ("--weights", f"{proto}={files[_rel(stage)][1]}")]
    # --allow-failures: a failed clip shows as a flagged cell in the tables; it must not stop the pipeline
    score = [sys.executable, "-m", "tfgbench.cli", "run", "--workdir", str(work), "--no-progress", "--allow-failures",
             *evaluator_args]
    scored = []
    for dataset in ("synthetic", "synthetic-ood"):
        for model in [*MODELS, *(f"synctalklip-{a}" for a in ABLATIONS if ablations)]:
            name = f"score-{model}-{dataset}"
            rel = model_file(model)
            needs = [*evaluators, *([rel] if rel else [])]
            if not usable(name, needs):
                continue
            ckpt = ["--checkpoint", str(files[rel][1])] if rel else []
            minutes = (4.0 if rel else 1.5) * (0.5 if dataset == "synthetic-ood" else 1.0)
            stages.append(Stage(name, [*score, "--model", model, "--dataset", dataset, *ckpt], deps=deps(needs),
                                kind="score", resource="store", env=env, estimate_min=minutes,
                                source="tfgbench run; time: the README's figures (about 4 min per generator and "
                                       "1.5 per trivial row for the 200 test clips)"))
            scored.append(name)
    which = "shipped" if shipped else "reproduced"
    for stage in READERS:
        name, rel = f"score-reader-{stage}", _rel(stage)
        if not usable(name, [rel]):
            continue
        stages.append(Stage(name, [sys.executable, "-m", "tfgbench.cli", "run", "--workdir", str(work), "--no-progress",
                                   "--model", "ground-truth", "--dataset", "synthetic", "--metrics",
                                   "wer/synthetic-avhubert", "--weights", f"wer/synthetic-avhubert={files[rel][1]}"],
                            deps=deps([rel]), kind="score", resource="store", env=env,
                            source=f"Table 2: ground truth read by the {which} expert"))
        scored.append(name)
    fig = leaderboards / "figure3.png"
    shown = [m for m in ("synctalklip", "talklip", "wav2lip") if usable("figure", [_rel(m)])]
    if shown:
        stages.append(Stage("figure", [sys.executable, "-m", "tfgbench.cli", "figure", "snapshots", "--dataset",
                                       "synthetic", "--sample", "s36/u000", "--models", ",".join(shown), "--workdir",
                                       str(work), "--out", str(fig),
                                       *[a for m in shown for a in ("--checkpoint", f"{m}={files[_rel(m)][1]}")]],
                            deps=tuple(scored), kind="tables", outputs=(fig,),
                            env=env, source="Figure 3 from the scored videos"))
    tables = tuple(leaderboards / f"table{n}.md" for n in (1, 2, 3, 4)) + (leaderboards / "leaderboard.md",)
    stages.append(Stage("tables", call=lambda: write_leaderboards(work, leaderboards, command, files, home, shipped),
                        deps=tuple(scored), kind="tables", outputs=tables,
                        source=f"tfgbench table --paper table1..4 --ci and tfgbench table --ci into {leaderboards}"))
    for rel, names in left_out.items():
        note(f"note: {rel} is not shipped ({files[rel][1]} not found): left out "
             f"{', '.join('its panel of figure3.png' if n == 'figure' else n for n in names)}; "
             "its table cells say there are no results")
    return stages


def _rel(stage: str) -> str:
    return next(rel for name, rel in TRAINING if name == stage)


def write_leaderboards(work: Path, out: Path, command: str, produced: dict, home: Path, shipped: bool = False) -> None:
    """Tables 1-4 and the full leaderboard (with CIs) as Markdown, each headed by the command and
    the package versions that made it and the sha256 of every reproduced checkpoint (``shipped``:
    of every shipped file the scoring used, and the ones not shipped)."""
    import importlib.metadata as im
    import platform
    import time

    from tfgbench import __version__
    from tfgbench.filehash import file_sha256
    from tfgbench.paper_build import build_paper_table
    from tfgbench.paper_render import render_paper
    from tfgbench.stats import attach_cis, ci_note
    from tfgbench.store import Store
    from tfgbench.tables import build_tables, render

    versions = [f"tfgbench {__version__}", f"python {platform.python_version()}"]
    for pkg in ("torch", "numpy", "scipy", "av", "scikit-image", "opencv-python-headless"):
        try:
            versions.append(f"{pkg} {im.version(pkg)}")
        except im.PackageNotFoundError:
            pass
    files = "; ".join(f"{Path(rel).name} {file_sha256(f)[:12]}" for rel, (_, f) in produced.items() if f.is_file())
    if shipped:
        absent = ", ".join(rel for rel, (_, f) in produced.items() if not f.is_file())
        what = ("Produced from the shipped checkpoints with `--shipped` (scored, not retrained). Shipped files used "
                f"(sha256): {files}." + (f" Not shipped, left out: {absent}." if absent else ""))
    else:
        what = f"Reproduced checkpoints (sha256): {files}."
    default = "tfgbench reproduce --dataset synthetic" + (" --shipped" if shipped else "")
    head = (f"Generated {time.strftime('%Y-%m-%d')} by `{command or default}` (stage tables) with "
            f"{', '.join(versions)}. {what}\n\n")
    out.mkdir(parents=True, exist_ok=True)
    with Store(work / "results.sqlite") as store:
        for n in (1, 2, 3, 4):
            readers = {label: str(produced[_rel(stage)][1]) for label, stage in
                       (("AV-HuBERT", "expert-avhubert"), ("AV-SyncNet", "expert-avsyncnet"),
                        ("AV-SyncNet(conv)", "expert-avsyncnet-conv"), ("Conformer", "eval-conformer"))} \
                if n == 2 else None
            table = build_paper_table(store, f"table{n}", "synthetic", ci=True, readers=readers)
            (out / f"table{n}.md").write_text(head + render_paper(table, "md"))
        rows, measures = store.rows(), store.measures()
        tables = [t for t in build_tables(rows, measures, store.dataset_sizes())
                  if t.dataset.dataset in ("synthetic", "synthetic-ood")]
    attach_cis(tables, rows, measures)
    (out / "leaderboard.md").write_text(head + "\n".join(render(t, "md") for t in tables) + "\n" + ci_note() + "\n")
