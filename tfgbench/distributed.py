"""Data-parallel training (PyTorch DDP semantics) for :func:`tfgbench.training.fit`.

Launched under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set, ``WORLD_SIZE > 1``),
``fit`` trains the same networks in every process on different data and keeps them identical:

- the process group is initialised (``gloo`` for CPU parameters, ``nccl`` for CUDA ones) unless it
  already is (:func:`setup`);
- every module's parameters and buffers are broadcast from rank 0 at the start (after a resume) and
  again at the end, so every rank returns the same networks (and rank 0's last losses and validation figures);
- after every ``backward()`` the gradients of every optimizer's parameters are averaged over the
  processes (:class:`GradientSync`: one all-reduce per dtype and device at the end of each backward,
  before the step function's gradient clipping and ``optimizer.step()``, as
  ``DistributedDataParallel`` does). Step functions need no change: they call ``backward()``
  themselves, as they do in one process;
- each rank draws its own batches: rank 0 keeps the single-process streams (``seed``), rank ``r``
  seeds numpy and torch from ``(seed, r)``, so the global batch is ``WORLD_SIZE`` times the per-step
  batch;
- only rank 0 writes ``config.json``, ``log.jsonl``, ``last.safetensors`` and shows the progress bar;
  logged losses are rank 0's.

Not covered: buffers such as BatchNorm running statistics follow each rank's own data during the
run (rank 0's are saved and broadcast at the end); a resumed multi-process run restarts the other
ranks' random streams from ``(seed, rank, step)`` instead of their saved state; work a training
script does outside ``fit`` (data caches, pre-training loops of its own, test-split scoring) runs on
every rank. Without ``WORLD_SIZE > 1`` nothing here runs and ``fit`` is the single-process loop, bit
for bit.

``python -m tfgbench.distributed MODULE [ARGS...]`` (under ``torchrun``) pins each rank to GPU
``LOCAL_RANK`` before running ``python -m MODULE ARGS``; this is needed on GPUs
(a training script that builds its networks on ``--device cuda`` before ``fit`` starts would put every
rank on GPU 0). On CPU, ``torchrun -m MODULE`` works as it is (``fit`` starts the group). Either way,
the ranks' final model files do not collide: ``tfgbench.checkpoints.save_checkpoint`` writes through a
per-process temporary name and keeps rank 0's file.

Importing this module does not import torch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tfgbench.errors import TfgbenchError

if TYPE_CHECKING:
    import torch


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the ``torchrun`` environment (``(0, 1, 0)`` without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    local = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
    return rank, world, local


def launched() -> bool:
    """True when this process is one of several started by ``torchrun`` (``WORLD_SIZE > 1``)."""
    return env_world()[1] > 1


def is_main_process() -> bool:
    """True in one process only: rank 0, or the only process."""
    return env_world()[0] == 0


def _wants_cuda(device: str | None) -> bool:
    import torch

    if device is None:
        return torch.cuda.is_available()
    return str(device).startswith("cuda")


def setup(device: str | None = None) -> bool:
    """Initialise the default process group from the ``torchrun`` environment (idempotent).

    ``device``: the training device (``cuda``/``cpu``; default: CUDA when available) picks the backend,
    ``nccl`` for CUDA and ``gloo`` for CPU; on CUDA the process is pinned to GPU ``LOCAL_RANK`` first so
    that ``"cuda"`` means its own GPU. Returns whether a multi-process group is active.
    """
    if not launched():
        return False
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return True
    rank, world, local = env_world()
    cuda = _wants_cuda(device)
    if cuda:
        if not torch.cuda.is_available():
            raise TfgbenchError("distributed training on cuda was asked for, but torch sees no GPU")
        if local >= torch.cuda.device_count():
            raise TfgbenchError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs here; "
                                "use --nproc-per-node <= the number of GPUs")
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    import atexit

    atexit.register(_teardown)
    return True


def _teardown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def trained_params(optimizers: Mapping[str, Any]) -> list[torch.Tensor]:
    """The optimizers' parameters in a fixed order (the same on every rank), without duplicates."""
    seen: set[int] = set()
    params = []
    for name in sorted(optimizers):
        for group in optimizers[name].param_groups:
            for p in group["params"]:
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
    return params


def setup_for_fit(optimizers: Mapping[str, Any]) -> None:
    """Called by ``fit`` under ``torchrun``: initialise the group from where the parameters live, and
    refuse GPU parameters that are not on this rank's GPU (the rank must be pinned to its GPU before
    the networks are built: :func:`prepare_launch`, ``torchrun ... -m tfgbench.distributed MODULE``)."""
    import torch

    params = trained_params(optimizers)
    devices = {p.device for p in params}
    cuda = any(d.type == "cuda" for d in devices)
    _, _, local = env_world()
    if cuda:
        wrong = sorted(str(d) for d in devices if d.type == "cuda" and d.index not in (None, local))
        if wrong:
            raise TfgbenchError(
                f"rank with LOCAL_RANK {local} trains parameters on {', '.join(wrong)}: every rank would share "
                "one GPU. Launch through `torchrun ... -m synctalklip.train ...` or "
                "`torchrun ... -m tfgbench.distributed MODULE ...`, which pin each rank to its GPU before the "
                "networks are built")
        if not torch.cuda.is_available():   # pragma: no cover - cuda parameters imply a GPU
            raise TfgbenchError("cuda parameters but no GPU")
        torch.cuda.set_device(local)
    setup("cuda" if cuda else "cpu")


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """A 63-bit seed for rank ``rank``'s own random streams (rank 0 without a step keeps ``seed``)."""
    import numpy as np

    if rank == 0 and step == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def broadcast_state(modules: Iterable[torch.nn.Module], src: int = 0) -> None:
    """Copy every parameter and buffer of ``modules`` from rank ``src`` to all ranks (in place)."""
    import torch
    import torch.distributed as dist

    nccl = dist.get_backend() == "nccl"
    with torch.no_grad():
        for module in modules:
            for t in module.state_dict(keep_vars=False).values():
                if not torch.is_tensor(t):
                    continue
                if nccl and t.device.type != "cuda":
                    buf = t.to(torch.device("cuda", torch.cuda.current_device()))
                    dist.broadcast(buf, src)
                    t.copy_(buf)
                else:
                    dist.broadcast(t, src)


def all_reduce_mean_(tensors: Sequence[torch.Tensor]) -> None:
    """Average ``tensors`` over all ranks, in place; one flat all-reduce per (device, dtype)."""
    import torch
    import torch.distributed as dist

    world = dist.get_world_size()
    groups: dict[tuple[str, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((str(t.device), t.dtype), []).append(t)
    for key in sorted(groups, key=str):
        group = groups[key]
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for t in group:
            n = t.numel()
            t.copy_(flat[offset:offset + n].view_as(t))
            offset += n


class GradientSync:
    """Average the gradients of ``params`` over all ranks at the end of every ``backward()``.

    A hook after each parameter's gradient accumulation marks it; the first mark of a backward pass
    queues a callback on the autograd engine that runs once the pass is over and all-reduces the
    marked gradients (in ``params`` order, so every rank issues the same collectives). A gradient
    already averaged by an earlier backward stays exact: ``mean(g_avg + g_r) = g_avg + mean(g_r)``.
    As with ``DistributedDataParallel`` (without ``find_unused_parameters``), every rank must give
    gradients to the same parameters in each backward.
    """

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self.params = list(params)
        self._index = {id(p): i for i, p in enumerate(self.params)}
        self._pending: set[int] = set()
        self._queued = False
        self._handles = [p.register_post_accumulate_grad_hook(self._mark) for p in self.params if p.requires_grad]

    def _mark(self, p: torch.Tensor) -> None:
        from torch.autograd import Variable

        self._pending.add(self._index[id(p)])
        if not self._queued:
            self._queued = True
            Variable._execution_engine.queue_callback(self._flush)

    def _flush(self) -> None:
        order = sorted(self._pending)
        self._pending.clear()
        self._queued = False
        grads = [self.params[i].grad for i in order]
        all_reduce_mean_([g for g in grads if g is not None])

    def remove(self) -> None:
        """Take the hooks off (``fit`` does at its end)."""
        for h in self._handles:
            h.remove()
        self._handles = []


def prepare_launch() -> None:
    """What a ``torchrun`` entry point does before the training script builds its networks: pin this
    rank to GPU ``LOCAL_RANK`` when there are GPUs (so that ``--device cuda`` means its own GPU). The process
    group itself starts in ``fit``, with the backend that suits the parameters' device."""
    if not launched():
        return
    import torch

    _, _, local = env_world()
    if torch.cuda.is_available() and local < torch.cuda.device_count():
        torch.cuda.set_device(local)


def main(argv: list[str] | None = None) -> int:
    """``python -m tfgbench.distributed MODULE [ARGS...]``: run ``python -m MODULE ARGS`` as one rank."""
    import runpy

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: torchrun --nproc-per-node N -m tfgbench.distributed MODULE [ARGS...]\n"
              "  e.g. torchrun --nproc-per-node 2 -m tfgbench.distributed baselines.talklip.train --size tiny ...")
        return 0 if argv else 2
    module, rest = argv[0], argv[1:]
    prepare_launch()
    sys.argv = [module, *rest]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
