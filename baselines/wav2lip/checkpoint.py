"""Read Wav2Lip-family weights from every container they are published in, without running code.

Containers:

* the training scripts' dict ``{"state_dict", "optimizer", "global_step", "global_epoch"}``
  (``torch.save``; keys possibly prefixed ``module.`` by DataParallel), read with
  ``torch.load(weights_only=True)``;
* a bare state dict (name -> tensor), same reader;
* a TorchScript archive (``torch.jit.save``; the files behind Wav2Lip's current download links).
  torch >= 2.6 refuses these under ``weights_only=True`` and ``torch.jit.load`` would run the
  archive's code, so :func:`read_torchscript_tensors` reads the zip itself: ``data.pkl`` is
  unpickled by a restricted unpickler that only rebuilds tensors, containers and inert stand-ins
  for the scripted module objects, and tensor bytes come from the ``data/<key>`` records;
* our own safetensors (:mod:`tfgbench.checkpoints`), which also carry the model config.

:func:`match_state_dict` checks the keys and shapes against a model and raises an error that names
the file and every missing, unexpected or misshapen key.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from tfgbench.errors import MissingResourceError, TfgbenchError

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _ScriptObject:
    """Inert stand-in for a pickled TorchScript module object: keeps its attribute dict only
    (pickle's NEWOBJ creates it without arguments, BUILD hands it the attribute dict)."""

    type_name = ""

    def __setstate__(self, state: Any) -> None:
        self.attributes = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    return storage.as_strided(tuple(size), tuple(stride), offset).clone()


def _identity(value: Any, *_: Any) -> Any:
    return value


class _TorchScriptUnpickler(pickle.Unpickler):
    """Allows only tensor rebuilding, storages, OrderedDict, TorchScript's list builders, and
    ``__torch__.*`` module classes (replaced by :class:`_ScriptObject`); anything else is refused."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str, path: Path) -> None:
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module == "torch.jit._pickle" and name.startswith(("build_", "restore_type_tag")):
            return _identity
        if module.startswith("__torch__."):
            return type(name, (_ScriptObject,), {"type_name": f"{module}.{name}"})
        raise TfgbenchError(f"{self.path}: refusing to unpickle {module}.{name} from a TorchScript archive "
                            "(only tensors and module containers are read)")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or storage_type not in _STORAGE_DTYPES:
            raise TfgbenchError(f"{self.path}: unsupported persistent record {pid!r}")
        dtype = _STORAGE_DTYPES[storage_type]
        raw = bytearray(self.archive.read(f"{self.prefix}data/{key}"))
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        if flat.numel() != numel:
            raise TfgbenchError(f"{self.path}: tensor record data/{key} holds {flat.numel()} values, "
                                f"expected {numel}")
        return flat


def _flatten(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """Collect the tensors of a tree of script objects as dotted state-dict keys."""
    for name, value in getattr(obj, "attributes", {}).items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, _ScriptObject):
            _flatten(value, f"{prefix}{name}.", out)


def is_torchscript_archive(path: str | Path) -> bool:
    """A zip whose records include ``<dir>/data.pkl`` and ``<dir>/code/`` (TorchScript layout)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/data.pkl") for n in names) and any("/code/" in n for n in names)


def read_torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of a TorchScript archive as ``{dotted name: tensor}``, read
    without executing the archive's code (see the module docstring)."""
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pickles:
            raise TfgbenchError(f"{path}: zip archive without a top-level <dir>/data.pkl; not a TorchScript file")
        prefix = pickles[0][:-len("data.pkl")]
        # archives without a byteorder record predate it and are little-endian
        if prefix + "byteorder" in archive.namelist() and archive.read(prefix + "byteorder").strip() != b"little":
            raise TfgbenchError(f"{path}: big-endian TorchScript archives are not supported")
        with archive.open(pickles[0]) as f:
            root = _TorchScriptUnpickler(f, archive, prefix, path).load()
    if not isinstance(root, _ScriptObject):
        raise TfgbenchError(f"{path}: TorchScript data.pkl does not hold a module")
    out: dict[str, torch.Tensor] = {}
    _flatten(root, "", out)
    return out


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The name -> tensor mapping in any supported container, ``module.`` prefixes removed, plus
    the container's name (``"torch-dict"``, ``"state-dict"``, ``"torchscript"``, ``"safetensors"``)."""
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state, container = load_file(str(path)), "safetensors"
    elif is_torchscript_archive(path):
        state, container = read_torchscript_tensors(path), "torchscript"
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # the restricted unpickler names the offending global
            raise TfgbenchError(f"{path}: cannot read it as a weights-only torch checkpoint ({e})") from e
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            state, container = obj["state_dict"], "torch-dict"
        elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            state, container = obj, "state-dict"
        else:
            raise TfgbenchError(f"{path}: expected a dict with 'state_dict' or a name -> tensor dict, "
                                f"got {type(obj).__name__} with keys {list(obj)[:8] if isinstance(obj, dict) else ''}")
    return {_strip_module(k): v for k, v in state.items()}, container


def _strip_module(key: str) -> str:
    # DataParallel prefixes (the official loaders do k.replace('module.', ''))
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def match_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load ``state`` into ``model`` requiring exactly the same keys and shapes; otherwise raise a
    :class:`TfgbenchError` naming the file and the missing / unexpected / misshapen keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    misshapen = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
                 if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or extra or misshapen:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:12]) + (f" ... (+{len(keys) - 12})" if len(keys) > 12 else "")
        parts = [f"{len(missing)} missing: {show(missing)}" if missing else "",
                 f"{len(extra)} unexpected: {show(extra)}" if extra else "",
                 f"{len(misshapen)} misshapen: {show(misshapen)}" if misshapen else ""]
        raise TfgbenchError(f"{path}: does not fit {type(model).__name__} "
                            f"({len(expected)} keys): " + "; ".join(p for p in parts if p))
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})


def strip_common_prefix(state: dict[str, torch.Tensor], anchor: str) -> dict[str, torch.Tensor]:
    """``state`` without a wrapper prefix shared by every key (e.g. ``model.`` when a TorchScript
    archive was saved from a module holding the network), found by locating ``anchor`` (a key the
    network must have); unchanged when ``anchor`` is present or no single prefix explains it."""
    if anchor in state:
        return state
    prefixes = {k[:-len(anchor)] for k in state if k.endswith("." + anchor)}
    if len(prefixes) != 1:
        return state
    prefix = prefixes.pop()
    if not all(k.startswith(prefix) for k in state):
        return state
    return {k[len(prefix):]: v for k, v in state.items()}


def detect_width(state: dict[str, torch.Tensor], first_key: str, official_channels: int) -> float:
    """Channel multiplier of a checkpoint from the output channels of its first conv
    (``official_channels`` at width 1): 16 -> 1.0, 4 -> 0.25."""
    if first_key not in state:
        raise TfgbenchError(f"checkpoint has no {first_key}; not a Wav2Lip-family state dict")
    return state[first_key].shape[0] / official_channels
