"""generate -> cache -> score -> store, resumable.

:func:`run` loads a model, a dataset split and metric protocols, works out which (sample,
protocol) results are missing from the store, and for each such sample: loads it (a background
thread decodes the next samples while the current one is generated and scored), generates the
video (or reads it from the cache), scores it with each missing protocol and stores the sample's
rows in one transaction. A failure (corrupt file, model error, NaN or wrong-shape output, a
metric that cannot score the sample) becomes an error row with its reason and the run goes on.
Killing the process loses at most the samples in flight. ``jobs > 1`` runs samples in worker
processes (each with its own model and metrics, :mod:`tfgbench.workers`); a worker that dies turns
its sample into error rows and is replaced. Samples go to the model and to metrics that declare
batch support in batches (``--batch-size``, :mod:`tfgbench.batching`; each sample ends exactly as
it would alone), and ``--executor ray`` shards them to Ray actors (:mod:`tfgbench.executors`). The
store stays a single writer, and Ctrl-C / SIGTERM keep every stored sample (:class:`RunInterrupted`).

Keys are computed by the harness, never taken on trust from a plugin: the model key
(:mod:`tfgbench.keys`: checkpoint and ``--model-arg`` files hashed here, delivery), the dataset
key (version, face-box source), each protocol's version and evaluator hash. Sample ids are checked
(:func:`tfgbench.data.base.check_sample_id`) before any is used as a file name.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tfgbench import registry
from tfgbench.batching import chunks, default_batch_size, process_batch
from tfgbench.data.base import Dataset, check_sample_id
from tfgbench.data.sample import Sample
from tfgbench.delivery import check_delivery
from tfgbench.errors import MissingResourceError, TfgbenchError
from tfgbench.metrics.base import Metric
from tfgbench.model import TalkingFaceModel
from tfgbench.preflight import ConfigError, check_spec, name_run_flags
from tfgbench.sample_worker import SampleWorker, failure
from tfgbench.store import DatasetKey, ModelKey, ProtocolResult, Store
from tfgbench.videos import VideoCache

__all__ = ["RunSpec", "RunSummary", "RunInterrupted", "SampleWorker", "run", "build_dataset", "build_model",
           "build_metrics", "checked_ids", "dataset_key", "resolve_protocols", "synthetic_weights_warning"]

DEFAULT_METRICS = ("psnr", "ssim", "lse", "wer")


@dataclass
class RunSpec:
    """Everything a run needs, as plain data (it travels to worker processes)."""

    model: str
    dataset: str
    split: str = "test"
    data_root: str | None = None
    limit: int | None = None
    metrics: list[str] | None = None
    workdir: str = "tfgbench-runs"
    device: str = "cpu"
    jobs: int = 1
    checkpoint: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)
    retry_errors: bool = False
    command: str = ""
    delivery: str = "lossless"
    batch_size: int | None = None      # None: the largest the model or a metric declares (tfgbench.batching)
    executor: str = "local"            # local | ray (tfgbench.executors)
    address: str | None = None         # Ray cluster address (--address); None: $RAY_ADDRESS, else a local Ray


@dataclass
class RunSummary:
    dataset: DatasetKey
    model: ModelKey
    protocols: list[str]
    samples: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # sample id -> first error
    seconds: float = 0.0
    #: samples the run covered (after --limit), and those of them that have error rows in the store
    #: for a requested protocol after the run (this run's failures and earlier ones it skipped)
    requested: int = 0
    stored_failures: int = 0
    #: set when the run was interrupted (the signal's name): what is stored is kept
    interrupted: str | None = None

    @property
    def remaining(self) -> int:
        """Samples still to score when the run was interrupted."""
        return max(0, self.requested - self.skipped - self.samples)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; ``summary`` says what was stored before it stopped."""

    def __init__(self, summary: RunSummary, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.summary, self.signal_name = summary, signal_name


def resolve_protocols(tokens: list[str] | None, dataset_cls: type[Dataset]) -> list[tuple[str, str | None]]:
    """``["psnr", "lse/wav2lip"]`` -> ``[("psnr", protocol or None), ...]``. A bare family takes the
    dataset's default protocol(s) for it (``default_protocols`` on the dataset class: a name or a tuple
    of names) or else the metric's own default (``None`` here)."""
    defaults: dict[str, str | tuple[str, ...]] = getattr(dataset_cls, "default_protocols", {})
    out: list[tuple[str, str | None]] = []
    for token in tokens or list(DEFAULT_METRICS):
        family, _, variant = token.partition("/")
        if variant:
            out.append((family, token))
            continue
        chosen = defaults.get(family)
        names = (chosen,) if isinstance(chosen, str) or chosen is None else chosen
        out.extend((family, name) for name in names)
    return out


def build_metrics(spec: RunSpec, dataset_cls: type[Dataset], log: Callable[[str], None] = print) -> list[Metric]:
    """Construct the requested metrics. Explicitly requested metrics must work; metrics taken by
    default are skipped with a message when their weights are missing."""
    from tfgbench.paths import BadPathError

    metrics = []
    for family, protocol in resolve_protocols(spec.metrics, dataset_cls):
        cls = registry.load("metrics", family)
        try:
            weights = spec.weights.get(protocol or "") or spec.weights.get(family)  # a protocol's own file first
            metrics.append(cls(protocol=protocol, device=spec.device, weights=weights))
        except MissingResourceError as e:
            if spec.metrics is not None or isinstance(e, BadPathError):
                raise name_run_flags(e, family, protocol) from None
            log(f"skipping metric {family!r}: {str(e).splitlines()[0]} (see `tfgbench run --help`)")
    if not metrics:
        raise TfgbenchError("no metric can run: name some with --metrics (e.g. --metrics psnr,ssim)")
    return metrics


def build_model(spec: RunSpec) -> TalkingFaceModel:
    from tfgbench.preflight import check_model

    check_model(spec.model, spec.checkpoint, spec.model_args)
    cls = registry.load("models", spec.model)
    try:
        return cls(device=spec.device, checkpoint=spec.checkpoint, **spec.model_args)
    except TfgbenchError:
        raise
    except (TypeError, ValueError) as e:  # a bad --model-arg value, as the plugin sees it
        args = " ".join(f"--model-arg {k}={v}" for k, v in spec.model_args.items())
        raise ConfigError(f"model {spec.model!r} refused its settings ({args or 'no --model-arg'}"
                          f"{', --checkpoint ' + spec.checkpoint if spec.checkpoint else ''}): "
                          f"{type(e).__name__}: {e}") from None


def synthetic_weights_warning(model: TalkingFaceModel, dataset_name: str) -> str | None:
    """A warning when weights trained on the synthetic corpus (``ModelInfo.training_data`` says
    so) generate a dataset of real faces: their scores there measure the domain gap, not the method."""
    trained_on = model.info.training_data
    if "synthetic" in trained_on.lower() and not dataset_name.startswith("synthetic"):
        return (f"warning: model {model.name!r} runs weights trained on {trained_on} (procedural 2D faces) on "
                f"{dataset_name!r}; its scores there do not represent the method. Pass --checkpoint FILE with "
                "weights trained on real video (e.g. the official release) to benchmark it on real faces.")
    return None


def build_dataset(spec: RunSpec) -> Dataset:
    cls = registry.load("datasets", spec.dataset)
    if spec.split not in getattr(cls, "splits", (spec.split,)):
        raise ConfigError(f"--split {spec.split}: dataset {spec.dataset!r} has no such split; it has: "
                          f"{', '.join(cls.splits)}")
    return cls(root=spec.data_root, split=spec.split)


def checked_ids(dataset: Dataset) -> list[str]:
    """The split's ids, each checked with :func:`check_sample_id` (datasets that read id lists
    check them with the file and line; this catches every other source, plugins included)."""
    where = f"dataset {dataset.name!r} split {dataset.split!r} (data at {dataset.root})"
    return [check_sample_id(i, where) for i in dataset.ids()]


def dataset_key(dataset: Dataset) -> DatasetKey:
    return DatasetKey(dataset.name, dataset.version, dataset.split, dataset.boxes_key())


def _prefetch(dataset: Dataset, ids: list[str], depth: int = 2) -> Iterator[tuple[str, Sample | BaseException]]:
    """Load samples in a background thread, ``depth`` ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def load_all() -> None:
        for sample_id in ids:
            if stop.is_set():
                return
            try:
                item: Sample | BaseException = dataset.load(sample_id)
            except Exception as e:
                item = e
            q.put((sample_id, item))
        q.put(None)

    thread = threading.Thread(target=load_all, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            yield item
    finally:
        stop.set()


# -- worker processes ----------------------------------------------------------------------------
def build_worker(spec: RunSpec, cache_dir: str | None, threads: int) -> tuple[Dataset, SampleWorker]:
    """A worker process's (or Ray actor's) own dataset and :class:`SampleWorker`."""
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    dataset = build_dataset(spec)
    model = build_model(spec)
    metrics = build_metrics(spec, type(dataset), log=lambda _: None)
    dataset.need_boxes = _need_boxes(model, metrics)
    worker = SampleWorker(model, metrics, VideoCache(Path(cache_dir)) if cache_dir else None,
                          delivery=spec.delivery)
    return dataset, worker


def _build_process(spec: RunSpec, cache_dir: str | None, threads: int
                   ) -> Callable[[str, list[str]], list[ProtocolResult]]:
    """Runs in each worker process (:class:`tfgbench.workers.WorkerPool`): its own dataset, model
    and metrics; returns the function that processes one sample."""
    dataset, worker = build_worker(spec, cache_dir, threads)

    def process(sample_id: str, todo: list[str]) -> list[ProtocolResult]:
        try:
            sample: Sample | BaseException = dataset.load(sample_id)
        except Exception as e:
            sample = e
        return worker.process(sample, sample_id, todo)

    return process


def _need_boxes(model: TalkingFaceModel, metrics: list[Metric]) -> bool:
    """Load face boxes when a protocol or the model uses them (generators crop faces with
    ``sample.boxes``; a model declares ``uses_boxes = False`` when it never reads them)."""
    return any("boxes" in m.spec.needs for m in metrics) or bool(getattr(model, "uses_boxes", True))


def _cache(spec: RunSpec, dkey: DatasetKey, model: TalkingFaceModel, mkey: ModelKey) -> VideoCache | None:
    from tfgbench.videos import cache_for

    if not model.cache_outputs:
        return None
    return cache_for(Path(spec.workdir), mkey, dkey)


def run(spec: RunSpec, model: TalkingFaceModel | None = None, progress: bool = True,
        log: Callable[[str], None] = print) -> RunSummary:
    """Run (or resume) a benchmark; see the module docstring. ``model`` overrides ``spec.model``
    (used by ``tfgbench score`` for externally generated videos)."""
    from tqdm import tqdm

    t_start = time.perf_counter()
    external = model is not None
    check_spec(spec, with_model=not external)  # a bad flag stops the run before anything is loaded
    dataset = build_dataset(spec)
    model = model or build_model(spec)
    warning = synthetic_weights_warning(model, dataset.name)
    if warning:
        log(warning)
    metrics = build_metrics(spec, type(dataset), log)
    dataset.need_boxes = _need_boxes(model, metrics)
    model_name = getattr(model, "label", model.name)
    if external:
        mkey, key_files = ModelKey(model_name, model.info.checkpoint_sha256, model.settings_hash(), "file"), {}
    else:
        from tfgbench.keys import model_key

        mkey, key_files = model_key(model, model_name, spec.checkpoint, spec.model_args, check_delivery(spec.delivery))
    all_ids = checked_ids(dataset)
    dkey = dataset_key(dataset)
    ids = all_ids[: spec.limit] if spec.limit else all_ids
    summary = RunSummary(dkey, mkey, [m.spec.name for m in metrics])
    with Store(Path(spec.workdir) / "results.sqlite") as store:
        for m in metrics:
            store.record_protocol(m.spec)
        store.record_dataset(dkey.sized, len(all_ids))
        todo: dict[str, list[str]] = {i: [] for i in ids}
        for m in metrics:
            done = store.done(mkey, dkey, m.spec.name, m.evaluator_sha256, include_errors=not spec.retry_errors,
                              protocol_version=m.spec.version)
            for i in ids:
                if i not in done:
                    todo[i].append(m.spec.name)
        todo = {i: p for i, p in todo.items() if p}
        summary.skipped = len(ids) - len(todo)
        if not todo:
            log(f"all {len(ids)} samples already scored for {mkey.model}; nothing to do")
            summary.requested = len(ids)
            summary.stored_failures = store.failed_samples(
                mkey, dkey, [(m.spec.name, m.spec.version, m.evaluator_sha256) for m in metrics], ids)
            summary.seconds = time.perf_counter() - t_start
            return summary
        run_id = store.start_run(spec.command, mkey, model.settings, asdict(model.info), dkey, spec.device,
                                 key_files)
        bar = tqdm(total=len(todo), desc=f"{mkey.model} on {dataset.name}/{dataset.split}", unit="sample",
                   disable=not progress, dynamic_ncols=True)

        def record(sample_id: str, results: list[ProtocolResult]) -> None:
            store.write_sample(mkey, dkey, sample_id, run_id, results)
            errors = [r.error for r in results if r.error]
            if errors and sample_id not in summary.failed:
                summary.failed[sample_id] = errors[0]
            summary.samples += 1
            bar.set_postfix(failed=len(summary.failed))
            bar.update(1)

        cache = None if external else _cache(spec, dkey, model, mkey)
        by_name = {m.spec.name: m for m in metrics}

        def crashed(sample_id: str, protocols: list[str], reason: str) -> None:
            record(sample_id, [failure(by_name[p], reason) for p in protocols])

        cache_dir = None if cache is None else str(cache.root)
        batch = max(1, spec.batch_size or default_batch_size(model, metrics))
        summary.requested = len(ids)
        try:
            if spec.executor != "local" and not external:
                from tfgbench.executors import run_executor

                run_executor(spec, todo, record, crashed, cache_dir, batch, log)
            elif spec.jobs <= 1 or external:
                worker = SampleWorker(model, metrics, cache, strict_shape=not external,
                                      delivery="lossless" if external else spec.delivery)
                loaded = _prefetch(dataset, list(todo), depth=max(2, batch))
                for group in chunks(loaded, batch):
                    for sample_id, rows in process_batch(worker, [(i, s, todo[i]) for i, s in group]):
                        record(sample_id, rows)
            else:
                from tfgbench.workers import WorkerPool

                threads = max(1, (os.cpu_count() or 1) // spec.jobs)
                WorkerPool(spec.jobs, _build_process, (spec, cache_dir, threads)).run(todo, record, crashed)
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM as the CLI raises it: stored rows stay
            bar.close()
            summary.interrupted = getattr(e, "signal_name", None) or "SIGINT"
            summary.seconds = time.perf_counter() - t_start
            raise RunInterrupted(summary, summary.interrupted) from None
        finally:
            bar.close()
        summary.stored_failures = store.failed_samples(mkey, dkey, [(m.spec.name, m.spec.version,
                                                                     m.evaluator_sha256) for m in metrics], ids)
    summary.seconds = time.perf_counter() - t_start
    return summary
