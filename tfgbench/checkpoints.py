"""Our own checkpoints: safetensors files whose metadata carries the model's JSON config.

A checkpoint is self-describing (nanoGPT style): ``load_checkpoint`` returns the tensors and the
config that rebuilds the model, plus free-form metadata (the command that trained it, the corpus
version, figures measured at the end of training). State-dict keys carry no wrapper prefixes
(``module.``, ``_orig_mod.``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tfgbench.errors import MissingResourceError, TfgbenchError

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_wrappers(state: dict[str, Any]) -> dict[str, Any]:
    """Remove DDP / torch.compile prefixes from state-dict keys."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def save_checkpoint(path: str | Path, state_dict: dict[str, Any], config: dict[str, Any],
                    **metadata: Any) -> Path:
    """Write ``state_dict`` (tensors) with ``config`` and ``metadata`` (JSON-serialisable) to a
    safetensors file. Tensors are made contiguous and detached to CPU.

    The file is written through a temporary name of this process's own, so that the ranks of a
    ``torchrun`` job saving the same (identical) networks never collide; a rank other than 0 leaves
    an existing file in place, so rank 0's file is the one that stays."""
    from safetensors.torch import save_file

    from tfgbench.distributed import env_world

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in strip_wrappers(state_dict).items()}
    meta = {"config": json.dumps(config, sort_keys=True)}
    meta.update({k: json.dumps(v, sort_keys=True, default=str) for k, v in metadata.items()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    rank, world, _ = env_world()
    if world > 1 and rank and path.exists():
        tmp.unlink()
    else:
        tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(state_dict, config, metadata)``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise TfgbenchError(f"{path}: not a readable safetensors checkpoint ({e})") from e
    if "config" not in raw:
        raise TfgbenchError(f"{path}: safetensors file has no 'config' metadata; "
                            "it was not written by tfgbench.checkpoints.save_checkpoint")
    meta = {k: json.loads(v) for k, v in raw.items()}
    config = meta.pop("config")
    return state, config, meta
