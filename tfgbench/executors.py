"""``tfgbench run --executor ray``: the samples of a run sharded to Ray actors.

The driver (the ``tfgbench run`` process) does everything it does locally: it builds the keys, reads
the store, and works out which samples still miss rows. Those samples go, in batches of
``--batch-size``, to ``--jobs`` Ray actors. Each actor holds one model instance and one set of
evaluators (built once, like a ``--jobs`` worker process), loads its samples itself from the dataset
root (shared storage on a multi-node cluster, as is the run's video cache), generates and scores them
(:func:`tfgbench.batching.process_batch`) and returns the rows. Results stream back batch by batch and
the driver alone writes the SQLite store, one transaction per sample, as the local executor does: a
re-run resumes exactly as a local one does, and a store never has two writers.

Resources: with ``--device cuda`` each actor asks Ray for one GPU (Ray sets its
``CUDA_VISIBLE_DEVICES``, so the actor runs on ``cuda``), and without ``--jobs`` there is one actor per
GPU of the cluster. On CPU each actor asks for ``cluster CPUs / actors`` CPUs (at least 1, at most the
smallest node's) and uses as many torch threads; without ``--jobs`` there is one actor per 2 CPUs.

Failures: an actor that dies (segfault, OOM kill, a lost node) loses only the batch it held: those
samples become error rows naming the death (``--retry-errors`` re-runs them), a fresh actor takes over
and the run finishes. An actor that cannot start (a missing checkpoint, evaluator weights) stops the
run with its message; after :data:`MAX_START_FAILURES` deaths in a row while starting the run stops too.
A :class:`~tfgbench.errors.ConfigError` raised while processing (a checkpoint the model cannot read)
stops the run too, as with the local executor.

Interrupts: Ctrl-C or SIGTERM (the CLI keeps its SIGTERM handler across ``ray.init``) stores the
batches actors have already returned, kills every actor at once without waiting for the batches in
flight, shuts down the Ray this run started, and the run ends as :class:`tfgbench.runner.RunInterrupted`
(exit status 130 / 143); re-running resumes.

Ray is the optional extra ``tfgbench[ray]``; this module imports it only when a run asks for it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tfgbench.errors import ConfigError, TfgbenchError

if TYPE_CHECKING:
    from tfgbench.runner import RunSpec
    from tfgbench.store import ProtocolResult

INSTALL = "pip install 'tfgbench[ray]'  (or: pip install 'ray>=2.9')"
#: how many actors in a row may die while starting before the run gives up
MAX_START_FAILURES = 3

Record = Callable[[str, "list[ProtocolResult]"], None]
Crashed = Callable[[str, list[str], str], None]


def run_executor(spec: RunSpec, todo: dict[str, list[str]], record: Record, crashed: Crashed,
                 cache_dir: str | None, batch: int, log: Callable[[str], None] = print) -> None:
    """Process ``todo`` (sample id -> protocols) with ``spec.executor``; see the module docstring."""
    if spec.executor == "ray":
        RayExecutor(spec, cache_dir, batch, log).run(todo, record, crashed)
        return
    raise TfgbenchError(f"unknown executor {spec.executor!r}; choose local or ray")


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise TfgbenchError(f"--executor ray needs Ray, which is not installed here. Install it with: {INSTALL}") from e
    return ray


class SampleActor:
    """The body of one Ray actor (wrapped with ``ray.remote`` at run time, so that this module
    imports without Ray): one dataset, model and set of evaluators, built once."""

    def __init__(self, spec: RunSpec, cache_dir: str | None, threads: int) -> None:
        from tfgbench.runner import build_worker

        self.dataset, self.worker = build_worker(spec, cache_dir, threads)

    def ready(self) -> int:
        return os.getpid()

    def process(self, items: list[tuple[str, list[str]]]) -> list[tuple[str, list[ProtocolResult]]]:
        """Load, generate and score a batch of ``(sample_id, protocols)``; rows per sample."""
        from tfgbench.batching import process_batch

        loaded = []
        for sample_id, protocols in items:
            try:
                sample: Any = self.dataset.load(sample_id)
            except Exception as e:  # noqa: BLE001 - the sample's error rows
                sample = e
            loaded.append((sample_id, sample, protocols))
        return process_batch(self.worker, loaded)


@dataclasses.dataclass
class _Slot:
    actor: Any
    started: float = dataclasses.field(default_factory=time.perf_counter)
    ready: bool = False
    batch: list[tuple[str, list[str]]] | None = None


class RayExecutor:
    """Drives the actors: one batch in flight per actor, rows recorded as each batch returns."""

    def __init__(self, spec: RunSpec, cache_dir: str | None, batch: int, log: Callable[[str], None] = print) -> None:
        self.ray = import_ray()
        self.spec, self.cache_dir, self.batch, self.log = spec, cache_dir, max(1, batch), log
        self.started_ray = False
        self.slots: list[_Slot] = []
        self.refs: dict[Any, _Slot] = {}
        self._actor_cls: Any = None
        self._resources = (1, 0)

    # -- cluster and actors ----------------------------------------------------------------------
    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        address = self.spec.address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": True}
        if address is None:
            kwargs["include_dashboard"] = False
        # ray.init replaces the SIGTERM handler with sys.exit; keep the CLI's, which stops the run as an
        # interrupt (stored samples kept, exit status 143; tfgbench.cli)
        main_thread = threading.current_thread() is threading.main_thread()
        sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as e:
            raise ConfigError(f"--address {address}: cannot reach the Ray cluster there: {e} (start one with "
                              "`ray start --head`, or pass --address HOST:6379)") from e
        finally:
            if main_thread and sigterm is not None:
                signal.signal(signal.SIGTERM, sigterm)
        self.started_ray = True

    def _sizes(self, samples: int) -> tuple[int, int, int]:
        """``(actors, CPUs per actor, GPUs per actor)`` for this cluster and run."""
        resources = self.ray.cluster_resources()
        gpus = 1 if self.spec.device.startswith("cuda") else 0
        cpus = int(resources.get("CPU", 1))
        if gpus and int(resources.get("GPU", 0)) < 1:
            raise TfgbenchError(f"--device cuda with --executor ray: the Ray cluster has no GPU (resources: "
                                f"{dict(resources)}); start its nodes with GPUs, or run with --device cpu")
        jobs = self.spec.jobs
        if jobs <= 0:  # not given: one actor per GPU, else per 2 CPUs
            jobs = int(resources.get("GPU", 0)) if gpus else max(1, cpus // 2)
        jobs = max(1, min(jobs, -(-samples // self.batch)))
        node_cpus = [c for n in self.ray.nodes() if n.get("Alive") and (c := int(n["Resources"].get("CPU", 0))) > 0]
        per_actor = max(1, min(cpus // jobs, min(node_cpus) if node_cpus else 1))
        return jobs, per_actor, gpus

    def _start(self) -> _Slot:
        cpus, gpus = self._resources
        spec = self.spec if not gpus else dataclasses.replace(self.spec, device="cuda")  # the actor's own GPU
        if self._actor_cls is None:
            self._actor_cls = self.ray.remote(SampleActor)
        actor = self._actor_cls.options(num_cpus=cpus, num_gpus=gpus, max_restarts=0, max_task_retries=0).remote(
            spec, self.cache_dir, cpus)
        slot = _Slot(actor)
        self.slots.append(slot)
        self.refs[actor.ready.remote()] = slot
        return slot

    # -- the run ---------------------------------------------------------------------------------
    def run(self, todo: dict[str, list[str]], record: Record, crashed: Crashed) -> None:
        ray = self.ray
        from ray.exceptions import RayActorError, RayTaskError

        self._connect()
        items = list(todo.items())
        pending = deque(items[i:i + self.batch] for i in range(0, len(items), self.batch))
        jobs, cpus, gpus = self._sizes(len(items))
        self._resources = (cpus, gpus)
        self.log(f"ray: {jobs} actor(s), {cpus} CPU(s){' and 1 GPU' if gpus else ''} each, batches of {self.batch}")
        start_failures = 0
        try:
            for _ in range(jobs):
                self._start()
            while self.refs:
                done, _ = ray.wait(list(self.refs), num_returns=1)
                slot = self.refs.pop(done[0])
                try:
                    value = ray.get(done[0])
                except RayActorError as e:  # the actor is gone: its batch (if any) becomes error rows
                    reason = _death(e)
                    if not slot.ready:
                        start_failures += 1
                        if _start_error(e) is not None:
                            raise TfgbenchError(f"a Ray actor could not start: {_start_error(e)}") from None
                        if start_failures >= MAX_START_FAILURES:
                            raise TfgbenchError(f"Ray actors keep dying while they start: {reason}") from None
                    for sample_id, protocols in slot.batch or []:
                        crashed(sample_id, protocols, f"the Ray actor died ({reason}) while processing this "
                                "sample; a fresh actor took over")
                    self._retire(slot)
                    if pending:
                        self._start()
                    continue
                except RayTaskError as e:  # a bug outside the per-sample handling; the actor lives on
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, ConfigError) or isinstance(e, ConfigError):  # e.g. an unreadable
                        raise ConfigError(str(cause or e)) from None                  # checkpoint: stop the run
                    for sample_id, protocols in slot.batch or []:
                        crashed(sample_id, protocols, f"the Ray actor failed: {_first_line(e)}")
                else:
                    if not slot.ready:
                        slot.ready, start_failures = True, 0
                        self.log(f"ray: actor ready in {time.perf_counter() - slot.started:.1f} s")
                    else:
                        for sample_id, rows in value:
                            record(sample_id, rows)
                slot.batch = None
                if pending:
                    slot.batch = pending.popleft()
                    self.refs[slot.actor.process.remote(slot.batch)] = slot
                else:
                    self._retire(slot)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as the CLI raises it
            self._drain(record)
            raise
        finally:
            self.close()

    def _drain(self, record: Record) -> None:
        """On an interrupt: store the batches that actors finished but the driver has not read yet;
        nothing waits for a batch still in flight (:meth:`close` kills the actors)."""
        refs = [ref for ref, slot in self.refs.items() if slot.ready and slot.batch]
        try:
            done, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0) if refs else ([], [])
        except Exception:  # noqa: BLE001 - Ray itself is going away: nothing more to keep
            return
        for ref in done:
            try:
                value = self.ray.get(ref, timeout=0)
            except Exception:  # noqa: BLE001, S112 - a failed batch: re-running scores it
                continue
            for sample_id, rows in value:
                record(sample_id, rows)

    def _retire(self, slot: _Slot) -> None:
        try:
            self.ray.kill(slot.actor, no_restart=True)
        except Exception:  # noqa: BLE001, S110 - already gone
            pass

    def close(self) -> None:
        """Stop every actor, and the Ray this run started (never a cluster it joined)."""
        for slot in self.slots:
            self._retire(slot)
        self.slots, self.refs = [], {}
        if self.started_ray:
            self.ray.shutdown()
            self.started_ray = False


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _start_error(e: BaseException) -> str | None:
    """The message of the exception an actor's constructor raised (a configuration error), if that
    is why it died; ``None`` for a process death."""
    cause = getattr(e, "cause", None) or getattr(e, "error_msg", None)
    text = str(cause if cause is not None else e)
    if "error raised in its creation task" not in str(e) and not isinstance(cause, BaseException):
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line or "Exception:" in line]
    return (errors[-1] if errors else lines[-1] if lines else text).strip()


def _death(e: BaseException) -> str:
    """A short reason for an actor's death (Ray's message names the cause: exit, signal, OOM, node lost)."""
    text = str(e)
    for key in ("SIGKILL", "SIGSEGV", "SIGTERM", "OOM", "out of memory", "exit code", "node"):
        if key.lower() in text.lower():
            return f"{key}: {_first_line(e)}"[:300]
    return _first_line(e)[:300]
