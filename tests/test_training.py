"""The shared training loop: it learns, resumes to the same numbers, logs, and refuses a mixed run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tfgbench.errors import TfgbenchError
from tfgbench.training import fit, plot_log, read_log


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)
    w_true = torch.tensor([[1.0, -2.0, 0.5]])

    def step(i: int, rng: np.random.Generator) -> dict[str, float]:
        x = torch.from_numpy(rng.standard_normal((16, 3)).astype(np.float32))
        noise = torch.randn(16, 1) * 0.01           # torch RNG: must resume too
        loss = ((model(x) - (x @ w_true.t() + noise)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"mse": loss.item()}

    return model, opt, sched, step


def _run(run_dir, steps, **kw):
    model, opt, sched, step = _setup()
    res = fit(run_dir, modules={"m": model}, optimizers={"m": opt}, schedulers={"s": sched}, step_fn=step,
              steps=steps, seed=3, config={"lr": 0.05}, log_every=5, ckpt_every=10, progress=False, **kw)
    return model, res


def test_fit_learns_and_logs(tmp_path):
    model, res = _run(tmp_path / "run", 60)
    rows = read_log(tmp_path / "run")
    assert rows[0]["step"] == 5 and rows[-1]["step"] == 60
    assert rows[-1]["mse"] < rows[0]["mse"] / 10          # it learned
    assert res.steps == 60 and res.last_losses["mse"] == rows[-1]["mse"]
    assert (tmp_path / "run" / "last.safetensors").is_file()


def test_resume_gives_the_same_weights_as_one_run(tmp_path):
    straight, _ = _run(tmp_path / "a", 30)
    _run(tmp_path / "b", 20)                  # "killed" after step 20 (checkpoint at 20)
    resumed, _ = _run(tmp_path / "b", 30)     # same command again resumes at 20
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    steps = [r["step"] for r in read_log(tmp_path / "b")]
    assert steps == [5, 10, 15, 20, 25, 30]


def test_validation_is_logged(tmp_path):
    model, opt, sched, step = _setup()
    calls = []

    def validate(s):
        calls.append(s)
        return {"bias": float(model.bias.item())}

    fit(tmp_path / "v", modules={"m": model}, optimizers={"m": opt}, step_fn=step, steps=25, validate=validate,
        val_every=10, progress=False, log_every=5)
    assert calls == [10, 20, 25]
    val = [r for r in read_log(tmp_path / "v") if "val" in r]
    assert [r["step"] for r in val] == [10, 20, 25] and "bias" in val[0]["val"]


def test_a_run_dir_with_another_config_is_refused(tmp_path):
    _run(tmp_path / "r", 5)
    model, opt, sched, step = _setup()
    with pytest.raises(TfgbenchError, match="another config"):
        fit(tmp_path / "r", modules={"m": model}, optimizers={"m": opt}, step_fn=step, steps=5,
            config={"lr": 0.1}, progress=False)
    assert json.loads((tmp_path / "r" / "config.json").read_text()) == {"lr": 0.05}


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TfgbenchError, match="loss 'x' is nan at step 0"):
        fit(tmp_path / "n", modules={"m": model}, optimizers={"m": opt}, step_fn=lambda i, r: {"x": float("nan")},
            steps=3, progress=False)


def test_plot_log_writes_a_png(tmp_path):
    _run(tmp_path / "p", 10)
    out = plot_log(tmp_path / "p")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
