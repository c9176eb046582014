"""``tfgbench run --executor ray``: the rows of the local executor, resumable, and an actor that dies
loses only its samples in flight. One local Ray (``ray.init(num_cpus=2)``) started by this module."""

from __future__ import annotations

import os
import sqlite3
import sys

import pytest

from tfgbench.errors import TfgbenchError
from tfgbench.runner import RunSpec, run

METRICS = ["psnr", "lse"]


def stored(workdir) -> dict[tuple[str, str, str], tuple]:
    con = sqlite3.connect(workdir / "results.sqlite")
    rows = con.execute("SELECT sample_id, protocol, measure, value, num, den, error FROM results").fetchall()
    con.close()
    return {r[:3]: r[3:] for r in rows}


def test_without_ray_the_executor_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    from tfgbench.executors import import_ray

    with pytest.raises(TfgbenchError, match=r"pip install 'tfgbench\[ray\]'"):
        import_ray()


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray of 2 CPUs whose workers can import the test plugins (``forgetful``, which kills its
    own process on one chosen sample) and tfgbench from this checkout."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'tfgbench[ray]' runs these tests")
    from integrity_plugins import install

    import tfgbench

    site = install(tmp_path_factory.mktemp("site"))
    old = os.environ.get("PYTHONPATH")
    root = os.path.dirname(os.path.dirname(tfgbench.__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), root, old) if p)
    sys.path.insert(0, str(site))
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield ray
    finally:
        ray.shutdown()
        sys.path.remove(str(site))
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def corpus(synthetic_test_clips):
    return synthetic_test_clips


def test_ray_rows_equal_local_rows_and_resume(ray_cluster, corpus, tmp_path):
    """Local (one process) and Ray (2 actors) with batches of 2: the same batches reach the same code,
    so every stored number is equal, bit for bit."""
    def spec(executor: str, workdir: str) -> RunSpec:
        return RunSpec(model="wav2lip", dataset="synthetic", data_root=str(corpus), limit=4, metrics=METRICS,
                       workdir=str(tmp_path / workdir), batch_size=2, executor=executor,
                       jobs=2 if executor == "ray" else 1)

    lines: list[str] = []
    local = run(spec("local", "local"), progress=False, log=lambda line: None)
    on_ray = run(spec("ray", "ray"), progress=False, log=lines.append)
    assert any("ray: 2 actor(s)" in line for line in lines), lines
    assert local.samples == on_ray.samples == 4 and not local.failed and not on_ray.failed
    local_rows, ray_rows = stored(tmp_path / "local"), stored(tmp_path / "ray")
    assert len(ray_rows) == 4 * (1 + 3)
    assert ray_rows == local_rows  # same batches, same code: the same numbers, exactly

    # resume: nothing to do; then two samples' rows removed -> only those two run again
    again = run(spec("ray", "ray"), progress=False, log=lambda line: None)
    assert again.samples == 0 and again.skipped == 4
    gone = sorted({k[0] for k in ray_rows})[1:3]
    con = sqlite3.connect(tmp_path / "ray" / "results.sqlite")
    con.execute(f"DELETE FROM results WHERE sample_id IN ({','.join('?' * len(gone))})", gone)
    con.commit()
    con.close()
    resumed = run(spec("ray", "ray"), progress=False, log=lambda line: None)
    assert resumed.samples == 2 and resumed.skipped == 2
    assert stored(tmp_path / "ray") == local_rows


def test_an_actor_that_dies_loses_only_its_samples(ray_cluster, tmp_path):
    """``forgetful`` kills its own process (SIGKILL) on c02: c02 becomes error rows, a fresh actor
    takes over, every other sample is scored; a re-run with --retry-errors meets the same death."""
    from conftest import face_frames, tone

    from tfgbench.media.io import write_video

    data = tmp_path / "clips"
    data.mkdir()
    for k in range(6):
        write_video(data / f"c{k:02d}.mp4", face_frames(8, size=64, shift=k), tone(8), quality="standard")
    spec = RunSpec(model="forgetful", model_args={"die_on": "c02"}, dataset="folder", data_root=str(data),
                   metrics=["psnr", "ssim"], workdir=str(tmp_path / "work"), executor="ray", jobs=2, batch_size=1)
    summary = run(spec, progress=False, log=lambda line: None)
    assert summary.samples == 6 and list(summary.failed) == ["c02"], summary.failed
    rows = stored(tmp_path / "work")
    errors = {k[1]: v[3] for k, v in rows.items() if k[0] == "c02"}
    assert set(errors) == {"psnr/talklip", "ssim/talklip"}
    assert all("the Ray actor died" in e and "a fresh actor took over" in e for e in errors.values()), errors
    assert {k[0] for k, v in rows.items() if v[3] is None} == {"c00", "c01", "c03", "c04", "c05"}
    con = sqlite3.connect(tmp_path / "work" / "results.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    retry = RunSpec(**{**spec.__dict__, "retry_errors": True})
    again = run(retry, progress=False, log=lambda line: None)
    assert again.samples == 1 and again.skipped == 5 and list(again.failed) == ["c02"]



def test_an_unreadable_checkpoint_found_by_an_actor_stops_the_run(ray_cluster, corpus, tmp_path):
    """Wav2Lip reads its weights on first use, inside an actor's batch: the run stops with the flag named
    (as with the local executor), instead of storing one error row per sample."""
    from tfgbench.errors import ConfigError

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    spec = RunSpec(model="wav2lip", checkpoint=str(garbage), dataset="synthetic", data_root=str(corpus), limit=2,
                   metrics=["psnr"], workdir=str(tmp_path / "work"), executor="ray", jobs=1, batch_size=2)
    with pytest.raises(ConfigError, match=f"--checkpoint {garbage}: model 'wav2lip' cannot use it"):
        run(spec, progress=False, log=lambda line: None)
    con = sqlite3.connect(tmp_path / "work" / "results.sqlite")
    assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    con.close()
