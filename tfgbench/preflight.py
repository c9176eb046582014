"""Configuration checks that run before any sample is generated (``tfgbench run`` / ``score``).

A mistake in the command line must stop the run at once, with a message that names the flag and
the bad value (and the close matches, where there are some), never become one error row per
sample that later runs skip. :func:`check_spec` checks, without loading any weights:

* ``--model`` / ``--dataset`` / ``--metrics`` names against the installed plugins and protocols;
* ``--model-arg`` keys against the model's constructor, ``--checkpoint`` against a model that takes
  none, and that every ``--checkpoint`` / ``--weights`` / ``--model-arg`` path that is meant as a
  file exists and can be read;
* ``--weights`` names (a metric family or protocol that the run scores);
* ``--jobs``, ``--limit``, ``--device`` and ``--delivery`` values;
* ``--batch-size``, ``--executor`` and ``--address`` (:func:`check_scale`): a batch of 1 or more, a
  known executor, an address only with ``--executor ray`` and in a form Ray accepts, and Ray
  installed (looked up without importing it) when the run asks for it.

Missing or unreadable evaluator weights are found when the metrics are built, still before the
first sample (:func:`tfgbench.runner.build_metrics`); their messages then name ``run``'s own flag
(``--weights lse=FILE``), not the flag of ``tfgbench lse``.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import os
import re
from pathlib import Path
from typing import Any

from tfgbench import registry
from tfgbench.errors import ConfigError, MissingResourceError, RegistryError

__all__ = ["ConfigError", "MissingFileError", "check_spec", "check_model", "check_metrics", "check_values",
           "check_scale"]


class MissingFileError(ConfigError, MissingResourceError):
    """A file named on the command line that does not exist or cannot be read."""


def _close(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _entry(kind: str, name: str, flag: str) -> registry.Entry:
    try:
        return registry.get(kind, name)
    except RegistryError as e:
        raise ConfigError(f"{flag} {name}: {e}") from None


def _readable(path: str | Path, flag: str, folder_ok: bool = False) -> None:
    p = Path(path).expanduser()
    shown = f"{flag}{path}" if flag.endswith("=") else f"{flag} {path}"
    if folder_ok and p.is_dir():
        return
    if not p.exists():
        raise MissingFileError(f"{shown}: no such file")
    if not p.is_file():
        raise MissingFileError(f"{shown}: not a file")
    if not os.access(p, os.R_OK):
        raise MissingFileError(f"{shown}: the file cannot be read (permission denied)")


def check_model(name: str, checkpoint: str | None, model_args: dict[str, Any]) -> None:
    """Model name, ``--checkpoint`` and ``--model-arg`` keys (the constructor's signature)."""
    cls = _entry("models", name, "--model").load()
    if checkpoint is not None:
        if not getattr(cls, "takes_checkpoint", True):
            raise ConfigError(f"--checkpoint {checkpoint}: model {name!r} takes no checkpoint (it has no weights); "
                              "drop --checkpoint")
        _readable(checkpoint, "--checkpoint", folder_ok=True)
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted = None
    else:
        accepted = [k for k, p in params.items() if k not in ("self", "device", "checkpoint")
                    and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    for key, value in model_args.items():
        if accepted is not None and key not in accepted:
            known = ", ".join(accepted) or "none"
            raise ConfigError(f"--model-arg {key}={value}: model {name!r} has no setting {key!r}."
                              f"{_close(key, accepted)} Its settings: {known}.")


def check_metrics(tokens: list[str] | None, weights: dict[str, str]) -> None:
    """``--metrics`` families and protocols, ``--weights`` names and files."""
    families = registry.names("metrics")
    requested: set[str] = set()
    for token in tokens or []:
        family, _, variant = token.partition("/")
        cls = _entry("metrics", family, "--metrics").load()
        names = [s.name for s in cls.protocols]
        requested.add(family)
        if variant:
            if token not in names:
                raise ConfigError(f"--metrics {token}: metric {family!r} has no protocol {token!r}."
                                  f"{_close(token, names)} Its protocols: {', '.join(names)}.")
            requested.add(token)
    for name, path in weights.items():
        family = name.partition("/")[0]
        if family not in families:
            raise ConfigError(f"--weights {name}={path}: no metric family {family!r}.{_close(family, families)} "
                              f"Known families: {', '.join(families)}.")
        if "/" in name:
            protocols = [s.name for s in registry.load("metrics", family).protocols]
            if name not in protocols:
                raise ConfigError(f"--weights {name}={path}: no protocol {name!r}.{_close(name, protocols)}")
        if tokens is not None and name not in requested and family not in requested:
            raise ConfigError(f"--weights {name}={path}: the run does not score {name!r} "
                              f"(--metrics {','.join(tokens)})")
        if not path:
            raise ConfigError(f"--weights {name}=: no file given")
        _readable(path, f"--weights {name}=", folder_ok=True)


_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def check_values(jobs: int, limit: int | None, device: str, delivery: str | None = None,
                 executor: str = "local") -> None:
    if executor == "ray" and jobs < 0:  # 0: not given, one actor per GPU or per 2 CPUs
        raise ConfigError(f"--jobs {jobs}: must be 1 or more (Ray actors), or left out for one actor per GPU "
                          "(--device cuda) or per 2 CPUs")
    if executor != "ray" and jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be 1 or more (worker processes)")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit {limit}: must be 1 or more (the first N samples)")
    if not _DEVICE.match(device):
        raise ConfigError(f"--device {device}: must be cpu, cuda, cuda:N or mps")
    if delivery is not None and delivery not in ("lossless", "official"):
        raise ConfigError(f"--delivery {delivery}: must be lossless or official")


#: what ``ray.init(address=...)`` accepts: auto, local, HOST:PORT or ray://HOST:PORT (IPv6 in brackets)
_ADDRESS = re.compile(r"^(auto|local|(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5})$")


def check_scale(batch_size: int | None, executor: str, address: str | None) -> None:
    """``--batch-size``, ``--executor`` and ``--address`` (:mod:`tfgbench.batching`, :mod:`tfgbench.executors`)."""
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be 1 or more (samples per generate/score call; "
                          "1 = one at a time; leave it out for the largest the model or a metric declares)")
    if executor not in ("local", "ray"):
        raise ConfigError(f"--executor {executor}: must be local or ray")
    if address is not None:
        if executor != "ray":
            raise ConfigError(f"--address {address}: only --executor ray joins a cluster; add --executor ray "
                              "or drop --address")
        if not _ADDRESS.match(address):
            raise ConfigError(f"--address {address}: not a Ray cluster address; give HOST:PORT (the head node's "
                              "GCS port, e.g. 10.0.0.1:6379), ray://HOST:10001 or auto")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        from tfgbench.executors import INSTALL

        raise ConfigError(f"--executor ray: Ray is not installed here. Install it with: {INSTALL}")


def check_spec(spec: Any, with_model: bool = True) -> None:
    """Every check above for a :class:`tfgbench.runner.RunSpec` (``with_model=False``: ``score``)."""
    executor = getattr(spec, "executor", "local") if with_model else "local"
    check_values(spec.jobs, spec.limit, spec.device, spec.delivery if with_model else None, executor)
    check_scale(getattr(spec, "batch_size", None), executor, getattr(spec, "address", None) if with_model else None)
    _entry("datasets", spec.dataset, "--dataset")
    if spec.data_root is not None and not Path(spec.data_root).expanduser().is_dir():
        raise MissingFileError(f"--data-root {spec.data_root}: no such folder")
    check_metrics(spec.metrics, spec.weights)
    if with_model:
        for name in [m.strip() for m in spec.model.split(",") if m.strip()]:
            check_model(name, spec.checkpoint, spec.model_args)


def name_run_flags(e: MissingResourceError, family: str, protocol: str | None) -> MissingResourceError:
    """A missing-weights message as ``run`` users need it: ``pass --weights lse=FILE``, not the
    ``--syncnet`` of ``tfgbench lse``. Side files without a ``--weights`` entry keep their environment
    variables (the message lists them)."""
    text = str(e)
    for flag in ("--syncnet", "--reader"):
        text = text.replace(f"pass {flag} FILE", f"pass --weights {family}=FILE (or --weights {protocol}=FILE)"
                            if protocol else f"pass --weights {family}=FILE")
        text = text.replace(f"  {flag}:", f"  --weights {family}=")
    for flag in ("--s3fd", "--mean-face", "--spm"):
        text = text.replace(f"pass {flag} FILE, or ", "")
    return type(e)(text)
