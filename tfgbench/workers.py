"""Worker processes for ``tfgbench run --jobs N`` that survive a worker's death.

Each worker is a spawned process with its own dataset, model and metrics that processes one
sample at a time, sent over its own pipe, so the parent always knows which sample every worker
holds. When a worker dies (segfault, OOM kill, ``os._exit``), the parent stores its sample as error
rows with the reason (exit code or signal), starts a fresh worker and goes on; the run finishes.
A worker that fails or dies while *starting* (model or metric cannot load) is a configuration
error: the run stops with its message instead of respawning forever.

Workers ignore Ctrl-C and SIGTERM (the parent decides: a Slurm pre-emption or a Ctrl-C in a
terminal signals the whole process group, and a worker that died of it would look like a crash),
and exit when the parent goes away (their pipe closes). On any exit of :meth:`WorkerPool.run`
(done, error) every worker is stopped; on an interrupt (Ctrl-C, or SIGTERM turned into
:class:`KeyboardInterrupt` by the CLI) the parent first stores the results workers have already
sent, then kills every worker at once, without waiting for the samples in flight: the run stops
within about a second and leaves no process behind.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from tfgbench.errors import ConfigError, TfgbenchError

#: how many workers in a row may die while starting before the run gives up
MAX_START_FAILURES = 3


def describe_exit(code: int | None) -> str:
    """``-9`` -> ``"killed by signal SIGKILL"``; ``3`` -> ``"exit code 3"``."""
    if code is None:
        return "unknown exit status"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _worker_main(conn: Connection, build: Callable[..., Any], build_args: tuple) -> None:
    """Process body: build the per-process worker, then answer ``(sample_id, todo)`` requests
    with ``("done", (sample_id, results))`` until told to stop or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        process = build(*build_args)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which stops the run
        text = str(e) if isinstance(e, TfgbenchError) else f"{type(e).__name__}: {e}"
        conn.send(("start-error", text))
        return
    conn.send(("ready", None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        sample_id, todo = task
        try:
            results = process(sample_id, todo)
        except ConfigError as e:  # e.g. a checkpoint the model cannot read: the parent stops the run
            conn.send(("fatal", str(e)))
            return
        try:
            conn.send(("done", (sample_id, results)))
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Slot:
    process: mp.process.BaseProcess
    conn: Connection
    task: tuple[str, list[str]] | None = None
    ready: bool = False
    dead: bool = False


class WorkerPool:
    """``jobs`` worker processes, each built by ``build(*build_args)`` (a picklable, module-level
    function returning ``process(sample_id, todo) -> results``)."""

    def __init__(self, jobs: int, build: Callable[..., Any], build_args: tuple) -> None:
        self.jobs, self.build, self.build_args = jobs, build, build_args
        self.ctx = mp.get_context("spawn")
        self.slots: list[_Slot] = []

    def _start(self) -> _Slot:
        parent, child = self.ctx.Pipe()
        process = self.ctx.Process(target=_worker_main, args=(child, self.build, self.build_args), daemon=True)
        process.start()
        child.close()
        slot = _Slot(process, parent)
        self.slots.append(slot)
        return slot

    def run(self, tasks: dict[str, list[str]], record: Callable[[str, Any], None],
            crashed: Callable[[str, list[str], str], None]) -> None:
        """Process every task; ``record(sample_id, results)`` for each finished sample,
        ``crashed(sample_id, todo, reason)`` for a sample whose worker died."""
        pending = deque(tasks.items())
        start_failures = 0
        try:
            for _ in range(min(self.jobs, len(pending))):
                self._start()
            while pending or any(s.task is not None for s in self.slots if not s.dead):
                live = [s for s in self.slots if not s.dead]
                if not live:
                    self._start()
                    continue
                handles: dict[Any, _Slot] = {}
                for s in live:
                    handles[s.conn] = s
                    handles[s.process.sentinel] = s
                for handle in wait(list(handles)):
                    slot = handles[handle]
                    if slot.dead:
                        continue
                    message = self._receive(slot)
                    if message is None:  # the process died, and left no answer behind
                        reason = f"the worker process died ({describe_exit(slot.process.exitcode)})"
                        if not slot.ready:
                            start_failures += 1
                            if start_failures >= MAX_START_FAILURES:
                                raise TfgbenchError(f"worker processes keep dying while they start: {reason}")
                        elif slot.task is not None:
                            crashed(slot.task[0], slot.task[1], f"{reason} while processing this sample; "
                                    "a fresh worker took over")
                        slot.task = None
                        self._retire(slot)
                        if pending:
                            self._start()
                        continue
                    kind, payload = message
                    if kind == "start-error":
                        raise TfgbenchError(f"a worker process could not start: {payload}")
                    if kind == "fatal":
                        raise ConfigError(payload)
                    if kind == "ready":
                        slot.ready, start_failures = True, 0
                    elif kind == "done":
                        slot.task = None
                        record(*payload)
                    if slot.task is None:
                        if pending:
                            slot.task = pending.popleft()
                            slot.conn.send(slot.task)
                        else:
                            self._stop(slot)
        except KeyboardInterrupt:
            self._drain(record)
            self.close(now=True)
            raise
        finally:
            self.close()

    def _drain(self, record: Callable[[str, Any], None]) -> None:
        """On an interrupt: store the results that workers finished and sent but the parent has not
        read yet (at most one per worker); nothing waits for a sample still in flight."""
        for slot in self.slots:
            if slot.dead:
                continue
            try:
                while slot.conn.poll(0):
                    kind, payload = slot.conn.recv()
                    if kind == "done":
                        slot.task = None
                        record(*payload)
            except (EOFError, OSError):
                continue

    def _receive(self, slot: _Slot) -> tuple[str, Any] | None:
        """The worker's next message, or ``None`` when it has none because it died (a readable
        pipe holds a message or end-of-file; a ready sentinel means the process ended)."""
        try:
            if slot.conn.poll():
                return slot.conn.recv()
        except (EOFError, OSError):
            pass
        slot.process.join(timeout=5)
        return None

    def _retire(self, slot: _Slot) -> None:
        slot.dead = True
        slot.process.join(timeout=1)
        slot.conn.close()

    def _stop(self, slot: _Slot) -> None:
        try:
            slot.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._retire(slot)

    def close(self, now: bool = False) -> None:
        """Stop every worker: ask, then terminate, then kill; leaves no process behind. ``now``
        (an interrupt): kill at once, without waiting for the samples in flight."""
        if now:
            for slot in self.slots:
                if slot.process.is_alive():
                    slot.process.kill()
            for slot in self.slots:
                slot.process.join(timeout=5)
                if not slot.dead:
                    slot.dead = True
                    slot.conn.close()
            return
        for slot in self.slots:
            if not slot.dead:
                try:
                    slot.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        for slot in self.slots:
            slot.process.join(timeout=0.5 if not slot.dead else 0)
            if slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(timeout=2)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=2)
            if not slot.dead:
                slot.dead = True
                slot.conn.close()
