"""One small training loop for every network tfgbench or a plugin trains.

The sync experts, lip-reading experts, discriminators, generators and synthetic evaluators all
train the same way: a fixed number of steps, a seed, a progress bar, periodic validation, a loss
log and resumable checkpoints. Each model's file keeps only its model and its losses; the recipe is
a ``step_fn`` that does one optimisation step (forward, backward, ``optimizer.step()``; several
optimizers for GANs) and returns the scalars to log::

    def step(i: int, rng: np.random.Generator) -> dict[str, float]:
        x, y = batch(rng)
        loss = F.l1_loss(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        return {"l1": loss.item()}

    result = fit("runs/mine", modules={"model": model}, optimizers={"model": opt}, step_fn=step,
                 steps=1000, seed=0, config=cfg, validate=val, val_every=200)

Files in ``run_dir``:

- ``last.safetensors``: every module, optimizer and scheduler state, the step, and the numpy and
  torch random states (tensors in safetensors, the rest as JSON metadata). Written atomically every
  ``ckpt_every`` steps and at the end; re-running the same command resumes from it and produces the
  same numbers as an uninterrupted run (same seed, same data order).
- ``log.jsonl``: ``{"step", "seconds", **losses}`` every ``log_every`` steps (means since the last
  line) and ``{"step", "seconds", "val": {...}}`` after each validation.
- ``config.json``: the run's config; a ``run_dir`` holding another config is refused (start a new
  run directory instead of silently mixing two recipes).

Under ``torchrun`` (``WORLD_SIZE > 1``) the same call trains data-parallel: gradients are averaged over
the processes after every ``backward()``, each rank draws its own batches, and rank 0 alone writes the
files above (:mod:`tfgbench.distributed`). Without it nothing changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tfgbench.errors import TfgbenchError

StepFn = Callable[[int, np.random.Generator], Mapping[str, float]]


@dataclass
class TrainResult:
    """What :func:`fit` returns: steps done in total, wall seconds of this process (plus the
    seconds of earlier, resumed processes), the mean losses of the last logged window, and the
    last validation figures."""

    steps: int
    seconds: float
    last_losses: dict[str, float] = field(default_factory=dict)
    last_val: dict[str, float] = field(default_factory=dict)
    log_path: Path | None = None


def _flatten_optimizer(prefix: str, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Tensors of an optimizer state dict go to ``tensors``; the rest is returned as JSON data."""
    plain: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for idx, per_param in state["state"].items():
        entry = {}
        for key, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}/{idx}/{key}"] = value.detach().cpu().contiguous()
                entry[key] = {"tensor": f"{prefix}/{idx}/{key}"}
            else:
                entry[key] = value
        plain["state"][str(idx)] = entry
    return plain


def _unflatten_optimizer(plain: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    state = {}
    for idx, entry in plain["state"].items():
        state[int(idx)] = {k: (tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v)
                           for k, v in entry.items()}
    return {"state": state, "param_groups": plain["param_groups"]}


def save_training_state(path: Path, *, step: int, seconds: float, modules: Mapping[str, torch.nn.Module],
                        optimizers: Mapping[str, torch.optim.Optimizer], schedulers: Mapping[str, Any],
                        rng: np.random.Generator) -> None:
    """Write everything needed to resume (atomic: a kill mid-write keeps the previous file)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module/{name}/{key}"] = value.detach().cpu().contiguous()
    optim_plain = {name: _flatten_optimizer(f"optim/{name}", opt.state_dict(), tensors)
                   for name, opt in optimizers.items()}
    tensors["rng/torch"] = torch.get_rng_state()
    meta = {"step": str(step), "seconds": repr(seconds), "optimizers": json.dumps(optim_plain),
            "schedulers": json.dumps({k: s.state_dict() for k, s in schedulers.items()}, default=str),
            "numpy_rng": json.dumps(rng.bit_generator.state)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_training_state(path: Path, *, modules: Mapping[str, torch.nn.Module],
                        optimizers: Mapping[str, torch.optim.Optimizer], schedulers: Mapping[str, Any],
                        rng: np.random.Generator) -> tuple[int, float]:
    """Restore a state written by :func:`save_training_state`; returns ``(step, seconds)``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for name, module in modules.items():
        prefix = f"module/{name}/"
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    optim_plain = json.loads(meta["optimizers"])
    for name, opt in optimizers.items():
        opt.load_state_dict(_unflatten_optimizer(optim_plain[name], tensors))
    sched_states = json.loads(meta["schedulers"])
    for name, sched in schedulers.items():
        sched.load_state_dict(sched_states[name])
    torch.set_rng_state(tensors["rng/torch"])
    rng.bit_generator.state = json.loads(meta["numpy_rng"])
    return int(meta["step"]), float(meta["seconds"])


def _check_config(run_dir: Path, config: Mapping[str, Any]) -> None:
    path = run_dir / "config.json"
    text = json.dumps(config, sort_keys=True, indent=1, default=str)
    if path.is_file():
        if json.loads(path.read_text()) != json.loads(text):
            raise TfgbenchError(f"{run_dir}: this run directory holds a run with another config "
                                f"({path}); use a new --run-dir, or delete it to start over")
    else:
        path.write_text(text)


def fit(run_dir: str | Path, *, modules: Mapping[str, torch.nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer], step_fn: StepFn, steps: int, seed: int = 0,
        config: Mapping[str, Any] | None = None, validate: Callable[[int], Mapping[str, float]] | None = None,
        val_every: int = 0, ckpt_every: int = 200, log_every: int = 10, desc: str = "train",
        schedulers: Mapping[str, Any] | None = None, progress: bool = True) -> TrainResult:
    """Run ``step_fn`` for steps ``[resumed step, steps)``; see the module docstring.

    Args:
        run_dir: where ``last.safetensors``, ``log.jsonl`` and ``config.json`` live.
        modules / optimizers / schedulers: everything whose state a resume needs, by name.
        step_fn: one optimisation step ``(step, rng) -> {loss name: float}``.
        steps: total steps of the run (not of this call).
        seed: seeds torch and the numpy generator passed to ``step_fn`` (fresh runs only).
        validate: ``step -> {name: float}``, run every ``val_every`` steps and after the last one.
    """
    from tqdm import tqdm

    from tfgbench import distributed

    multi = distributed.launched()          # under torchrun: see tfgbench.distributed
    rank = 0
    if multi:
        distributed.setup_for_fit(optimizers)
        rank = distributed.env_world()[0]
    main = rank == 0
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        _check_config(run_dir, dict(config or {}))
    if multi:
        torch.distributed.barrier()
        if not main:
            _check_config(run_dir, dict(config or {}))     # rank 0 wrote it: compare only
    schedulers = dict(schedulers or {})
    own_seed = distributed.rank_seed(seed, rank) if multi else seed
    torch.manual_seed(own_seed)
    rng = np.random.default_rng(own_seed)
    state_path = run_dir / "last.safetensors"
    log_path = run_dir / "log.jsonl"
    start, earlier_seconds = 0, 0.0
    if state_path.is_file():
        start, earlier_seconds = load_training_state(state_path, modules=modules, optimizers=optimizers,
                                                     schedulers=schedulers, rng=rng)
        if main:
            print(f"{desc}: resumed from {state_path} at step {start}/{steps}")
        else:                               # the file holds rank 0's streams: start this rank's own
            own_seed = distributed.rank_seed(seed, rank, start)
            torch.manual_seed(own_seed)
            rng = np.random.default_rng(own_seed)
    sync = None
    if multi:
        distributed.broadcast_state(modules.values())
        sync = distributed.GradientSync(distributed.trained_params(optimizers))
    for m in modules.values():
        m.train()
    t0 = time.time()
    window: dict[str, list[float]] = {}
    last_losses: dict[str, float] = {}
    last_val: dict[str, float] = {}

    def seconds() -> float:
        return round(earlier_seconds + time.time() - t0, 1)

    def checkpoint(step: int) -> None:
        if not main:
            return
        save_training_state(state_path, step=step, seconds=seconds(), modules=modules, optimizers=optimizers,
                            schedulers=schedulers, rng=rng)

    def run_validation(step: int) -> None:
        nonlocal last_val
        if not main:
            return
        with torch.no_grad():
            last_val = {k: float(v) for k, v in validate(step).items()}
        for m in modules.values():
            m.train()
        with open(log_path, "a") as f:
            f.write(json.dumps({"step": step, "seconds": seconds(), "val": last_val}) + "\n")
        bar.write(f"{desc} step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in last_val.items()))

    bar = tqdm(range(start, steps), desc=desc, initial=start, total=steps, disable=not (progress and main))
    try:
        for step in bar:
            losses = step_fn(step, rng)
            for k, v in losses.items():
                if not np.isfinite(v):
                    raise TfgbenchError(f"{desc}: loss {k!r} is {v} at step {step} (run {run_dir}); "
                                        "the last good state is in last.safetensors")
                window.setdefault(k, []).append(float(v))
            done = step + 1
            if done % log_every == 0 or done == steps:
                last_losses = {k: float(np.mean(v)) for k, v in window.items()}
                window = {}
                if main:
                    with open(log_path, "a") as f:
                        f.write(json.dumps({"step": done, "seconds": seconds(), **last_losses}) + "\n")
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(last_losses.items())[:4]})
            if validate is not None and val_every and done % val_every == 0 and done != steps:
                run_validation(done)
            if ckpt_every and done % ckpt_every == 0:
                checkpoint(done)
    finally:
        if sync is not None:
            sync.remove()
    if start < steps or not state_path.is_file():
        if validate is not None:
            run_validation(steps)
        checkpoint(steps)
    if multi:                               # every rank returns rank 0's networks and figures
        distributed.broadcast_state(modules.values())
        shared: list[Any] = [last_losses, last_val]
        torch.distributed.broadcast_object_list(shared, src=0)
        last_losses, last_val = shared
        torch.distributed.barrier()
    return TrainResult(steps=steps, seconds=seconds(), last_losses=last_losses, last_val=last_val,
                       log_path=log_path)


def read_log(run: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``log.jsonl`` (``run`` is the run directory or the file)."""
    path = Path(run)
    path = path / "log.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise TfgbenchError(f"{path}: no training log here (expected a run directory with log.jsonl)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_log(run: str | Path, out: str | Path | None = None) -> Path:
    """PNG of every logged loss against the step (one panel per loss) and the validation figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(run)
    train = [r for r in rows if "val" not in r]
    val = [r for r in rows if "val" in r]
    names = sorted({k for r in train for k in r if k not in ("step", "seconds")})
    val_names = sorted({k for r in val for k in r["val"]})
    panels = names + val_names
    if not panels:
        raise TfgbenchError(f"{run}: the training log has no losses yet")
    cols = min(3, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, panels):
        if name in names:
            pts = [(r["step"], r[name]) for r in train if name in r]
            ax.set_title(name)
        else:
            pts = [(r["step"], r["val"][name]) for r in val if name in r["val"]]
            ax.set_title(f"val: {name}")
        ax.plot(*zip(*pts), marker="." if name not in names else None)
        ax.set_xlabel("step")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    run_path = Path(run)
    out = Path(out) if out is not None else (run_path if run_path.is_dir() else run_path.parent) / "losses.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
