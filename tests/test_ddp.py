"""Data-parallel training through ``tfgbench.training.fit``: two CPU processes on gloo (started by
``torchrun``) compute the same gradients and weights as one process on the same global batch."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tfgbench import distributed

REPO = Path(__file__).resolve().parents[1]

# One script, run by torchrun on 2 ranks and in this process on 1: each step takes a fixed global batch
# of 4 and every rank takes its share; two backward passes per step (the second accumulates into the
# first's gradients), clipping that binds, then Adam; the clipped gradients of every step are saved.
WORKER = '''
import json, os, sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tfgbench.training import fit


def run(out: str, world: int = 1, rank: int = 0) -> None:
    out = Path(out)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(),
                              torch.nn.Linear(3 * 5, 2))
    head = torch.nn.Linear(2, 1)
    if rank:                                    # a different start: fit must broadcast rank 0's weights
        torch.nn.init.normal_(head.weight)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    opt_head = torch.optim.SGD(head.parameters(), lr=0.1)
    data = torch.Generator().manual_seed(1)
    xs = torch.randn(3, 4, 2, 5, generator=data)
    ys = torch.randn(3, 4, 2, generator=data)
    grads, draws = [], []

    def step(i: int, rng: np.random.Generator) -> dict[str, float]:
        x, y = xs[i][rank::world], ys[i][rank::world]
        draws.append(float(rng.random()))
        opt.zero_grad()
        opt_head.zero_grad()
        z = net(x)
        loss = F.mse_loss(z, y)
        loss.backward(retain_graph=True)
        second = (head(z) ** 2).mean()
        second.backward()                       # accumulates into net's gradients
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.05)
        grads.append({n: p.grad.clone() for n, p in [*net.named_parameters(), *head.named_parameters()]})
        opt.step()
        opt_head.step()
        return {"loss": loss.item()}

    fit(out / "run", modules={"net": net, "head": head}, optimizers={"net": opt, "head": opt_head},
        step_fn=step, steps=3, seed=5, config={"test": "ddp"}, log_every=1, ckpt_every=2, progress=False)
    from tfgbench.checkpoints import save_checkpoint

    save_checkpoint(out / "model.safetensors", net.state_dict(), {"rank": rank})   # every rank: rank 0's stays
    torch.save({"grads": grads, "draws": draws, "net": net.state_dict(), "head": head.state_dict()},
               out / f"rank{rank}.pt")


if __name__ == "__main__":
    run(sys.argv[1], int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"]))
'''


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path):
    script = tmp_path / "ddp_worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO), env.get("PYTHONPATH", "")]))
    # torchrun -m tfgbench.distributed MODULE: the launcher the README gives for any training module
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "tfgbench.distributed", "ddp_worker", str(tmp_path / "ddp")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    runpy.run_path(str(script))["run"](str(tmp_path / "one"))          # the single-process reference
    one = torch.load(tmp_path / "one" / "rank0.pt")
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in (0, 1)]
    for got in ranks:
        assert len(got["grads"]) == 3
        for step, (g, ref) in enumerate(zip(got["grads"], one["grads"])):
            for name in ref:
                assert torch.allclose(g[name], ref[name], atol=1e-6, rtol=1e-5), (step, name)
        for key in ("net", "head"):
            for name, value in one[key].items():
                assert torch.allclose(got[key][name], value, atol=1e-6, rtol=1e-5), (key, name)
    assert ranks[0]["draws"] == one["draws"]            # rank 0 keeps the single-process data stream
    assert ranks[1]["draws"] != ranks[0]["draws"]       # rank 1 draws its own
    for name, value in ranks[0]["net"].items():          # bit-identical replicas
        assert torch.equal(ranks[1]["net"][name], value)
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]       # rank 0 alone logs
    assert (tmp_path / "ddp" / "run" / "last.safetensors").is_file()
    from tfgbench.checkpoints import load_checkpoint

    assert load_checkpoint(tmp_path / "ddp" / "model.safetensors")[1] == {"rank": 0}
    assert not list((tmp_path / "ddp").glob(".model*"))


def test_single_process_is_untouched(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert distributed.env_world() == (0, 1, 0) and not distributed.launched()
    assert distributed.setup() is False
    distributed.prepare_launch()                         # a no-op outside torchrun
    assert distributed.rank_seed(7, 0) == 7
    assert len({distributed.rank_seed(7, r, s) for r in range(3) for s in (0, 100)}) == 6


def test_other_ranks_leave_rank_0s_model_file(tmp_path, monkeypatch):
    import tfgbench.checkpoints as checkpoints

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "model.safetensors"
    assert checkpoints.save_checkpoint(out, {"w": torch.ones(2)}, {"rank": 1}) == out
    assert checkpoints.load_checkpoint(out)[1] == {"rank": 1}
    checkpoints.save_checkpoint(out, {"w": torch.zeros(2)}, {"rank": "late"})      # rank 0's file stays
    assert checkpoints.load_checkpoint(out)[1] == {"rank": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_synctalklip_train_module_forwards_to_the_cli(capsys):
    from synctalklip import train

    assert train.main([]) == 2
    with pytest.raises(SystemExit) as e:
        train.main(["avsyncnet", "--help"])
    assert e.value.code == 0
    assert "synctalklip train avsyncnet" in capsys.readouterr().out
