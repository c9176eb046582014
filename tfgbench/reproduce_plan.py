"""The stages of ``tfgbench reproduce --dataset synthetic`` (see :mod:`tfgbench.reproduce`).

Every training stage runs the command recorded in the ``command`` metadata field of the shipped
checkpoint it reproduces (the commands of the README's training table), rewritten so that it
writes into the reproduction folder: ``--out`` (and ``--pretrained-out``, ``--run-dir``) point into
``<out>/weights`` and ``<out>/runs``, and every shipped file the command reads (an expert, an
initialisation, a supervisor) is replaced by its reproduced copy, which makes that stage a
dependency. Generators also pin the training recipe recorded in their metadata (loss weights,
learning rate, clips per step, window, steps), so a later change of the defaults does not change
what is reproduced. Scoring runs every model on ``synthetic`` and ``synthetic-ood`` with the
reproduced checkpoints and evaluators (``--checkpoint``, ``--weights``) into ``<out>/work``.
"""

from __future__ import annotations

import json
import shlex
import sys
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
#: recipe key -> training flag (generators)
RECIPE_FLAGS = {"lip_w": "--lip-w", "cont_w": "--cont-w", "perp_w": "--perp-w", "lr": "--lr",
                "clips_per_step": "--clips-per-step", "window": "--window", "val_every": "--val-every",
                "steps": "--steps"}
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
                   repo: Path = REPO) -> list[Stage]:
    """Every stage of the synthetic reproduction, in order."""
    weights, runs, work = out / "weights", out / "runs", out / "work"
    env = {"TFGBENCH_HOME": str(home)}
    produced: dict[str, tuple[str, Path]] = {}  # shipped relative path -> (stage, reproduced file)
    stages = [Stage("corpus", [sys.executable, "-m", "tfgbench.cli", "data", "synthetic", "--quiet"],
                    kind="data", env=env, estimate_min=2.8, outputs=(home / "synthetic",),
                    source="README: `tfgbench data synthetic` (whole corpus about 2.8 min on 2 cores)")]
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
        produced[rel] = (name, target)
        stages.append(Stage(name, argv, deps=tuple(sorted(deps, key=[s.name for s in stages].index)),
                            outputs=tuple(outputs), estimate_min=_minutes(md), env=env, fallbacks=fallbacks,
                            source=f"metadata of {rel}: {recorded_command(md)}"))
    models = {n: produced[rel] for n, rel in ((Path(r).name.replace("-tiny.safetensors", ""), r) for _, r in TRAINING)
              if n in MODELS}
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
            models[name] = (name, weights / f"{name}-tiny.safetensors")
    evaluator_args = [a for stage, proto in EVALUATORS.items()
                      for a in ("--weights", f"{proto}={produced[_rel(stage)][1]}")]
    # --allow-failures: a failed clip shows as a flagged cell in the tables; it must not stop the pipeline
    score = [sys.executable, "-m", "tfgbench.cli", "run", "--workdir", str(work), "--no-progress", "--allow-failures",
             *evaluator_args]
    scored = []
    for dataset in ("synthetic", "synthetic-ood"):
        for model in [*MODELS, *(f"synctalklip-{a}" for a in ABLATIONS if ablations)]:
            name = f"score-{model}-{dataset}"
            ckpt = ["--checkpoint", str(models[model][1])] if model in models else []
            deps = ["corpus", *EVALUATORS, *([models[model][0]] if model in models else [])]
            trivial = model in ("ground-truth", "static-frame")
            minutes = (1.5 if trivial else 4.0) * (0.5 if dataset == "synthetic-ood" else 1.0)
            stages.append(Stage(name, [*score, "--model", model, "--dataset", dataset, *ckpt], deps=tuple(deps),
                                kind="score", resource="store", env=env, estimate_min=minutes,
                                source="tfgbench run; time: the README's figures (about 4 min per generator and "
                                       "1.5 per trivial row for the 200 test clips)"))
            scored.append(name)
    for stage in READERS:
        name = f"score-reader-{stage}"
        file = produced[_rel(stage)][1]
        stages.append(Stage(name, [sys.executable, "-m", "tfgbench.cli", "run", "--workdir", str(work), "--no-progress",
                                   "--model", "ground-truth", "--dataset", "synthetic", "--metrics",
                                   "wer/synthetic-avhubert", "--weights", f"wer/synthetic-avhubert={file}"],
                            deps=("corpus", stage), kind="score", resource="store", env=env,
                            source="Table 2: ground truth read by the reproduced expert"))
        scored.append(name)
    fig = leaderboards / "figure3.png"
    shown = ("synctalklip", "talklip", "wav2lip")
    stages.append(Stage("figure", [sys.executable, "-m", "tfgbench.cli", "figure", "snapshots", "--dataset",
                                   "synthetic", "--sample", "s36/u000", "--models", ",".join(shown), "--workdir",
                                   str(work), "--out", str(fig),
                                   *[a for m in shown for a in ("--checkpoint", f"{m}={models[m][1]}")]],
                        deps=tuple(scored), kind="tables", outputs=(fig,),
                        env=env, source="Figure 3 from the scored videos"))
    tables = tuple(leaderboards / f"table{n}.md" for n in (1, 2, 3, 4)) + (leaderboards / "leaderboard.md",)
    stages.append(Stage("tables", call=lambda: write_leaderboards(work, leaderboards, command, produced, home),
                        deps=tuple(scored), kind="tables", outputs=tables,
                        source=f"tfgbench table --paper table1..4 --ci and tfgbench table --ci into {leaderboards}"))
    return stages


def _rel(stage: str) -> str:
    return next(rel for name, rel in TRAINING if name == stage)


def write_leaderboards(work: Path, out: Path, command: str, produced: dict, home: Path) -> None:
    """Tables 1-4 and the full leaderboard (with CIs) as Markdown, each headed by the command and
    the package versions that made it and the sha256 of every reproduced checkpoint."""
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
    head = (f"Generated {time.strftime('%Y-%m-%d')} by `{command or 'tfgbench reproduce --dataset synthetic'}` "
            f"(stage tables) with {', '.join(versions)}. Reproduced checkpoints (sha256): {files}.\n\n")
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
