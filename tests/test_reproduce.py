"""`tfgbench reproduce`: the stage logic on fake stages (nothing is trained) and the real plan's
commands (read from the shipped checkpoints' metadata, redirected into the reproduction folder)."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from tfgbench.errors import TfgbenchError
from tfgbench.reproduce import Pipeline, Stage
from tfgbench.reproduce_plan import (
    ABLATION_FILE,
    ABLATIONS,
    RECIPE_FLAGS,
    TRAINING,
    argv_of,
    metadata,
    model_file,
    recorded_command,
    shipped_files,
    synthetic_plan,
)


def fake(root: Path, name: str, deps: tuple[str, ...] = (), code: int = 0, sleep: float = 0.0,
         write: bool = True, resource: str | None = None) -> Stage:
    """A stage that appends its name to ``runs.txt``, records its start/end time, writes its output."""
    out = root / f"{name}.out"
    script = (f"import time, pathlib; t0 = time.time(); time.sleep({sleep}); "
              f"open({str(root / 'runs.txt')!r}, 'a').write({name!r} + ' %f %f\\n' % (t0, time.time())); "
              + (f"pathlib.Path({str(out)!r}).write_text('x'); " if write else "") + f"raise SystemExit({code})")
    return Stage(name, [sys.executable, "-c", script], deps=deps, outputs=(out,), resource=resource)


def runs(root: Path) -> list[str]:
    path = root / "runs.txt"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.is_file() else []


def pipeline(root: Path, stages: list[Stage], jobs: int = 1) -> Pipeline:
    return Pipeline(stages, root / "repro", jobs=jobs, progress=False, log=lambda _: None)


def chain(root: Path) -> list[Stage]:
    return [fake(root, "a"), fake(root, "b", ("a",)), fake(root, "c", ("b",)), fake(root, "d")]


def test_resumes_and_reruns_parts(tmp_path):
    assert pipeline(tmp_path, chain(tmp_path)).run() == {"a": "done", "b": "done", "c": "done", "d": "done"}
    assert runs(tmp_path) == ["a", "b", "c", "d"]
    state = json.loads((tmp_path / "repro" / "state.json").read_text())
    assert state["b"]["status"] == "done" and str(tmp_path / "b.out") in state["b"]["outputs"]
    assert pipeline(tmp_path, chain(tmp_path)).run() == {}  # a fresh process resumes: nothing left
    (tmp_path / "c.out").unlink()  # a lost output is made again
    assert pipeline(tmp_path, chain(tmp_path)).run() == {"c": "done"}
    assert pipeline(tmp_path, chain(tmp_path)).run(only=["b"]) == {"b": "done"}
    assert pipeline(tmp_path, chain(tmp_path)).run(start="b") == {"b": "done", "c": "done", "d": "done"}
    assert runs(tmp_path) == ["a", "b", "c", "d", "c", "b", "b", "c", "d"]
    assert (tmp_path / "repro" / "logs" / "b.log").read_text().count("# ") == 3  # one header per run of b


def test_only_needs_finished_dependencies(tmp_path):
    with pytest.raises(TfgbenchError, match="dependencies are not finished: a"):
        pipeline(tmp_path, chain(tmp_path)).run(only=["b"])
    with pytest.raises(TfgbenchError, match="no stage 'zz'"):
        pipeline(tmp_path, chain(tmp_path)).run(start="zz")
    with pytest.raises(TfgbenchError, match="do not come before"):
        pipeline(tmp_path, [fake(tmp_path, "x", ("y",)), fake(tmp_path, "y")])
    assert pipeline(tmp_path, chain(tmp_path)).run(only=["a", "b"]) == {"a": "done", "b": "done"}


def test_a_failure_blocks_its_dependents_only(tmp_path):
    stages = [fake(tmp_path, "a"), fake(tmp_path, "b", ("a",), code=3), fake(tmp_path, "c", ("b",)),
              fake(tmp_path, "d")]
    results = pipeline(tmp_path, stages).run()
    assert results == {"a": "done", "b": "failed: exit status 3", "c": "blocked by b", "d": "done"}
    assert json.loads((tmp_path / "repro" / "state.json").read_text())["b"]["status"] == "failed"
    assert pipeline(tmp_path, chain(tmp_path)).run() == {"b": "done", "c": "done"}  # fixed: resumes at b


def test_declared_outputs_are_checked_and_fallbacks_copied(tmp_path):
    silent = fake(tmp_path, "s", write=False)
    assert pipeline(tmp_path, [silent]).run()["s"].startswith("failed: exited 0 but did not write")
    shipped = tmp_path / "shipped.bin"
    shipped.write_bytes(b"shipped")
    silent.fallbacks = ((silent.outputs[0], shipped, "reused the shipped file"),)
    assert pipeline(tmp_path, [silent]).run() == {"s": "done"}
    assert silent.outputs[0].read_bytes() == b"shipped"
    state = json.loads((tmp_path / "repro" / "state.json").read_text())
    assert "reused the shipped file" in state["s"]["notes"][0]


def test_in_process_stages(tmp_path):
    out = tmp_path / "table.md"
    ok = Stage("tables", call=lambda: out.write_text("t"), outputs=(out,))

    def boom() -> None:
        raise RuntimeError("no rows")

    bad = Stage("bad", call=boom)
    assert pipeline(tmp_path, [ok, bad]).run() == {"tables": "done", "bad": "failed: no rows"}
    assert out.read_text() == "t"


def _intervals(root: Path) -> dict[str, tuple[float, float]]:
    return {n: (float(a), float(b)) for n, a, b in (x.split() for x in (root / "runs.txt").read_text().splitlines())}


def test_independent_stages_run_in_parallel_unless_they_share_a_resource(tmp_path):
    stages = [fake(tmp_path, "p", sleep=1.0), fake(tmp_path, "q", sleep=1.0),
              fake(tmp_path, "r", sleep=0.5, resource="store"), fake(tmp_path, "s", sleep=0.5, resource="store")]
    assert set(pipeline(tmp_path, stages, jobs=4).run().values()) == {"done"}
    t = _intervals(tmp_path)
    assert t["p"][0] < t["q"][1] and t["q"][0] < t["p"][1]  # p and q overlapped
    first, second = sorted((t["r"], t["s"]))
    assert first[1] <= second[0]  # r and s did not


def test_synthetic_plan_runs_the_recorded_commands_into_the_reproduction_folder(tmp_path):
    out = tmp_path / "out"
    stages = synthetic_plan(out, tmp_path / "home", tmp_path / "lb")
    by = {s.name: s for s in stages}
    Pipeline(stages, out, progress=False)  # every dependency comes before its stage
    for name, rel in TRAINING:
        recorded = argv_of(recorded_command(metadata(ROOT / rel)))
        argv = by[name].command
        assert argv[:3] == recorded[:3]  # the same program (python -m module / console script)
        flags = [a for a in recorded if a.startswith("--") and a not in ("--out", "--run-dir", "--pretrained-out",
                                                                            "--expert", "--init-audio")]
        assert all(f in argv for f in flags), (name, flags)
        assert by[name].env["TFGBENCH_HOME"] == str(tmp_path / "home")
    for s in stages:
        argv = s.command or []
        for flag in ("--out", "--run-dir", "--pretrained-out", "--supervisor", "--expert", "--init-audio",
                     "--checkpoint", "--workdir", "--weights"):
            for i, a in enumerate(argv[:-1]):
                if a == flag:
                    value = argv[i + 1].split("=", 1)[-1]
                    assert value.startswith(str(tmp_path)), (s.name, flag, value)  # never a shipped file
    talklip = by["talklip"].command
    assert talklip[talklip.index("--init-audio") + 1] == str(out / "weights" / "avhubert-pretrained-tiny.safetensors")
    assert "expert-avhubert" in by["talklip"].deps and "expert-wav2lip" in by["wav2lip-gan"].deps
    conv = by["synctalklip-conv"].command
    assert conv[conv.index("--supervisor") + 1].endswith("avsyncnet-conv-tiny.safetensors")
    recorded_recipe = json.loads(metadata(ROOT / "synctalklip/weights/synctalklip-conv-tiny.safetensors")["recipe"])
    assert float(conv[conv.index("--lip-w") + 1]) == recorded_recipe["lip_w"]  # the recipe in its metadata
    assert by["synctalklip-avhubert"].command[by["synctalklip-avhubert"].command.index("--supervisor") + 1] \
        .endswith("avsyncnet-plain-tiny.safetensors")
    score = by["score-talklip-synthetic-ood"].command
    assert score[score.index("--checkpoint") + 1] == str(out / "weights" / "talklip-tiny.safetensors")
    assert f"lse/synthetic={out / 'weights' / 'syncnet-synthetic.safetensors'}" in score
    assert {"eval-syncnet", "eval-avhubert", "eval-conformer", "talklip"} <= set(by["score-talklip-synthetic-ood"].deps)
    assert by["expert-avhubert"].fallbacks  # the shipped pre-training shortcut is declared, not hidden
    no_ab = synthetic_plan(out, tmp_path / "home", tmp_path / "lb", ablations=False)
    assert len(stages) - len(no_ab) == 12  # 4 ablation models, each scored on 2 datasets


def test_dry_run_command(tmp_path):
    text = run_cli("reproduce", "--dry-run", "--out", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "lb"),
                   "--no-progress").stdout
    assert "47 of 47 stages to run" in text and "[run] expert-avsyncnet (after corpus): 15.0 min recorded" in text
    line = next(x for x in text.splitlines() if "baselines.wav2lip.train generator --gan" in x)
    assert f"--expert {tmp_path / 'r' / 'weights' / 'syncnet-color-tiny.safetensors'}" in line
    assert shlex.split(line)[0] == sys.executable
    bad = run_cli("reproduce", "--dry-run", "--out", str(tmp_path / "r"), "--only", "talklip", check=False)
    assert bad.returncode == 2 and "--only talklip: its dependencies are not finished: corpus" in bad.stderr


def test_leaderboards_stage_writes_tables_with_command_and_versions(tmp_path):
    from results_factory import fake_store

    from tfgbench.reproduce_plan import write_leaderboards

    work = tmp_path / "work"
    fake_store(work / "results.sqlite", n=12, datasets=("synthetic", "synthetic-ood")).close()
    produced = {}
    for name, rel in TRAINING:
        produced[rel] = (name, tmp_path / Path(rel).name)
        produced[rel][1].write_bytes(name.encode())
    write_leaderboards(work, tmp_path / "lb", "tfgbench reproduce --dataset synthetic", produced, tmp_path)
    names = sorted(p.name for p in (tmp_path / "lb").iterdir())
    assert names == ["leaderboard.md", "table1.md", "table2.md", "table3.md", "table4.md"]
    t1 = (tmp_path / "lb" / "table1.md").read_text()
    assert t1.startswith("Generated ") and "by `tfgbench reproduce --dataset synthetic`" in t1
    assert "torch " in t1 and "numpy " in t1 and "talklip-tiny.safetensors " in t1
    assert "**Table 1" in t1 and "synthetic-ood: LSE-C" in t1
    assert re.search(r"\d \[[-0-9.]+, [-0-9.]+\] +\|", t1)  # values carry intervals
    t2 = (tmp_path / "lb" / "table2.md").read_text()
    assert "avsyncnet-base-tiny.safetensors" in t2  # the reproduced readers, not the shipped ones
    assert "percentile bootstrap" in (tmp_path / "lb" / "leaderboard.md").read_text()


def _fake_repo(root: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """A repository holding an (empty) file at every shipped path the scoring reads, except ``leave_out``."""
    repo = root / "repo"
    for rel in shipped_files(repo):
        if rel not in leave_out:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_bytes(rel.encode())
    return repo


def _values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_shipped_plan_trains_nothing_and_scores_the_shipped_files(tmp_path):
    no_lip = ABLATION_FILE.format("no-lip")
    repo = _fake_repo(tmp_path, leave_out=(no_lip, model_file("wav2lip")))
    notes: list[str] = []
    stages = synthetic_plan(tmp_path / "out", tmp_path / "home", tmp_path / "lb", repo=repo, shipped=True,
                            workdir=tmp_path / "store", note=notes.append)
    by = {s.name: s for s in stages}
    pipe = Pipeline(stages, tmp_path / "out", progress=False)  # every dependency comes before its stage
    trained = {name for name, _ in TRAINING} | {f"synctalklip-{a}" for a in ABLATIONS}
    assert not trained & set(by) and not [s for s in stages if s.kind == "train"]
    assert {s.name for s in stages if not s.name.startswith("score-")} == {"corpus", "figure", "tables"}
    assert all(set(s.deps) <= {"corpus"} for s in stages if s.name.startswith("score-"))
    for s in stages:
        if s.name.startswith("score-"):
            assert _values(s.command, "--workdir") == [str(tmp_path / "store")]
            weights = [w.split("=", 1)[1] for w in _values(s.command, "--weights")]
            assert weights and all(w.startswith(str(repo)) for w in weights), (s.name, weights)
    for model in ("talklip", "synctalklip-freeze", "synctalklip-supcon"):
        argv = by[f"score-{model}-synthetic-ood"].command
        assert _values(argv, "--checkpoint") == [str(repo / model_file(model))]
        assert f"lse/synthetic={repo / 'tfgbench/weights/syncnet-synthetic.safetensors'}" in argv
    assert "--checkpoint" not in by["score-ground-truth-synthetic"].command  # trivial rows read no weights
    reader = by["score-reader-expert-avsyncnet"].command
    assert f"wer/synthetic-avhubert={repo / 'synctalklip/weights/avsyncnet-base-tiny.safetensors'}" in reader
    # a file that is not shipped: its stages are left out with a note naming it; the rest still run
    assert not [n for n in by if "no-lip" in n or n.startswith("score-wav2lip-synthetic")]
    assert "score-wav2lip-gan-synthetic" in by and "score-synctalklip-no-contrastive-synthetic-ood" in by
    note = {rel: next(n for n in notes if rel in n) for rel in (no_lip, model_file("wav2lip"))}
    assert len(notes) == 2 and "score-synctalklip-no-lip-synthetic-ood" in note[no_lip]
    assert "figure3.png" in note[model_file("wav2lip")]
    fig = by["figure"].command
    assert _values(fig, "--models") == ["synctalklip,talklip"]
    assert _values(fig, "--workdir") == [str(tmp_path / "store")]
    assert "26 of 26 stages to run (forced: 2)" in pipe.describe(start="figure")  # --from works on this plan
    assert RECIPE_FLAGS["disc_lr"] == "--disc-lr"


def test_shipped_tables_say_so_and_list_the_files_used(tmp_path):
    from results_factory import fake_store

    repo = _fake_repo(tmp_path, leave_out=(ABLATION_FILE.format("avhubert"),))
    fake_store(tmp_path / "store" / "results.sqlite", n=12, datasets=("synthetic", "synthetic-ood")).close()
    stages = synthetic_plan(tmp_path / "out", tmp_path / "home", tmp_path / "lb", repo=repo, shipped=True,
                            workdir=tmp_path / "store", command="tfgbench reproduce --shipped", note=lambda _: None)
    tables = next(s for s in stages if s.name == "tables")
    assert tables.call is not None
    tables.call()  # reads the --workdir store
    t1 = (tmp_path / "lb" / "table1.md").read_text()
    assert "by `tfgbench reproduce --shipped`" in t1 and "shipped checkpoints with `--shipped`" in t1
    assert "not retrained" in t1 and "Reproduced checkpoints" not in t1
    assert "talklip-tiny.safetensors " in t1 and "syncnet-synthetic.safetensors " in t1
    assert f"Not shipped, left out: {ABLATION_FILE.format('avhubert')}" in t1
    assert "syncnet-color-tiny" not in t1  # a training-only file is not used by the scoring


def test_shipped_dry_run_command(tmp_path):
    out, store = tmp_path / "r", tmp_path / "store"
    text = run_cli("reproduce", "--dry-run", "--shipped", "--out", str(out), "--workdir", str(store),
                   "--leaderboards", str(tmp_path / "lb"), "--no-progress").stdout
    missing = sum(1 for line in text.splitlines() if line.startswith("note: synctalklip/weights/synctalklip-"))
    n = 30 - 2 * missing  # corpus, 2 x (8 + 4 ablations) scorings, 3 readers, figure, tables
    assert f"{n} of {n} stages to run" in text, text[-400:]
    assert " train " not in text and "--run-dir" not in text
    assert text.count(f"--workdir {store} ") == n - 2  # every scoring stage and the figure
    out.mkdir()
    (out / "state.json").write_text("{}")  # a folder of the retraining mode is refused
    bad = run_cli("reproduce", "--dry-run", "--shipped", "--out", str(out), check=False)
    assert bad.returncode == 2 and "without --shipped; give another --out" in bad.stderr
