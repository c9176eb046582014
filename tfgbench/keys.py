"""What keys a model's rows: computed by the harness, so no plugin can forget or fake it.

* **Checkpoint**: the sha256 of the file (or of every file in the folder) given with
  ``--checkpoint``, computed by the harness (:func:`tfgbench.filehash.path_sha256`, cached by path,
  size and mtime). Without ``--checkpoint``: the sha256 of ``model.checkpoint`` when the plugin set
  it to a file it resolved itself, else what the plugin declares in ``ModelInfo.checkpoint_sha256``
  (a model with no weights declares ``"none"``).
* **Settings**: :meth:`TalkingFaceModel.settings_hash`, extended with the sha256 of every file or
  folder a ``--model-arg`` value names (a reference image, a second checkpoint, a config file), so
  editing such a file never reuses rows or cached videos.
* **Delivery**: how generated frames reach the metrics (:mod:`tfgbench.delivery`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfgbench.errors import MissingResourceError
from tfgbench.filehash import path_sha256
from tfgbench.model import TalkingFaceModel
from tfgbench.store import ModelKey


def _named_file(value: Any) -> Path | None:
    """The existing file or folder a ``--model-arg`` value names, if any."""
    if not isinstance(value, str) or not value or "\n" in value or len(value) > 4096:
        return None
    try:
        p = Path(value).expanduser()
        return p if p.exists() else None
    except (OSError, ValueError):
        return None


def model_key(model: TalkingFaceModel, label: str, checkpoint: str | None = None,
              model_args: Mapping[str, Any] | None = None, delivery: str = "lossless"
              ) -> tuple[ModelKey, dict[str, str]]:
    """The :class:`ModelKey` of a run and the files hashed for it (``{what: sha256}``, recorded
    with the run). See the module docstring."""
    files: dict[str, str] = {}
    ckpt = model.info.checkpoint_sha256
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.exists():
            raise MissingResourceError(f"--checkpoint {checkpoint}: no such file or folder")
        ckpt = path_sha256(path, "--checkpoint")
        files[f"--checkpoint {checkpoint}"] = ckpt
    elif isinstance(model.checkpoint, Path) and model.checkpoint.exists():
        ckpt = path_sha256(model.checkpoint, "model checkpoint")
        files[f"checkpoint {model.checkpoint}"] = ckpt
    settings = model.settings_hash()
    arg_files = {}
    for key, value in sorted((model_args or {}).items()):
        path = _named_file(value)
        if path is not None:
            arg_files[key] = path_sha256(path, f"--model-arg {key}")
            files[f"--model-arg {key}={value}"] = arg_files[key]
    if arg_files:
        blob = json.dumps({"settings": settings, "files": arg_files}, sort_keys=True)
        settings = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return ModelKey(label, ckpt, settings, delivery), files
