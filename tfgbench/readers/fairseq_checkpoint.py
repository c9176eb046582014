"""Read fairseq checkpoint files (``.pt``) without fairseq, omegaconf or unsafe unpickling.

A fairseq checkpoint is a ``torch.save`` pickle of a dict ``{args, cfg, model, task_state, ...}``.
``torch.load(weights_only=True)`` refuses it because it references fairseq's ``Dictionary``,
``SentencepieceBPE``, ``sentencepiece.SentencePieceProcessor`` and, for some fairseq versions,
omegaconf ``DictConfig`` / ``ListConfig`` or ``argparse.Namespace``. Plain ``pickle.load`` would
run any code the file names. :class:`RestrictedUnpickler` admits exactly the globals the format
needs and maps each to a plain stand-in; every other global is refused with
:class:`UnsafeCheckpointError`. Nothing is imported by name from the file.

Both torch containers are read here without ``torch.load``:

* zip (torch >= 1.6): ``<root>/data.pkl`` plus one raw little-endian blob per storage
  ``<root>/data/<key>``; the pickle's persistent ids are ``('storage', type, key, location, numel)``.
* legacy (``_use_new_zipfile_serialization=False``): pickles of the magic number, protocol version
  and sys info, then the object pickle (persistent ids ``('storage', type, root_key, location,
  numel, view)``), then the pickled list of storage keys, then per key an int64 element count
  followed by the raw bytes.

After unpickling, :func:`to_plain` turns omegaconf containers into dicts/lists (resolving simple
``${a.b}`` interpolations), ``Namespace`` into a dict, and fairseq objects into
:class:`PickledObject` records (class name + state) that :mod:`tfgbench.readers.tokenizer` reads.
"""

from __future__ import annotations

import io
import pickle
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tfgbench.errors import MissingResourceError, TfgbenchError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class UnsafeCheckpointError(TfgbenchError):
    """The file references a global that a checkpoint does not need (possibly malicious)."""


class CheckpointFormatError(TfgbenchError):
    """The file is not a readable torch/fairseq checkpoint."""


# ---------------------------------------------------------------------------------------------
# stand-ins
# ---------------------------------------------------------------------------------------------

class PickledObject:
    """Plain record of an object of an admitted class: its dotted class name and pickled state.

    Pickle restores it with ``NEWOBJ`` (``__new__``) then ``BUILD`` (``__setstate__``), or with
    ``REDUCE`` (``__init__(*args)``); neither runs any of the original class's code.
    """

    qualname: str = "object"
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state: Any = dict(kwargs) if kwargs else None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"PickledObject({self.qualname})"


def _record_class(qualname: str) -> type:
    """A fresh PickledObject subclass per admitted class, so records keep their origin's name."""
    return type(qualname.rsplit(".", 1)[-1], (PickledObject,), {"qualname": qualname, "args": (),
                                                                   "state": None})


class _OmegaContainer(PickledObject):
    """omegaconf DictConfig / ListConfig: ``state['_content']`` holds the children."""


class _OmegaNode(PickledObject):
    """omegaconf value node (AnyNode, StringNode...): ``state['_val']`` holds the value."""


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> str:  # pragma: no cover - never pickled back
        return self.name


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    """Protocol-2 pickles store bytes as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1",
                                                                               "utf-8", "utf8"):
        raise UnsafeCheckpointError(f"_codecs.encode called with unexpected arguments ({encoding!r})")
    return text.encode(encoding)


def _copyreg_reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    """Protocol 0/1 pickles rebuild objects with ``copyreg._reconstructor``: admitted only for
    the stand-in classes (which run no code of the original class)."""
    if isinstance(cls, type) and issubclass(cls, PickledObject):
        return cls.__new__(cls)
    raise UnsafeCheckpointError(f"copyreg._reconstructor of {cls!r} (only admitted classes can be rebuilt)")


def _defaultdict(factory: Any = None, *args: Any) -> dict:
    """``collections.defaultdict`` as a plain dict (the factory is never called)."""
    return dict(*args)


def _fairseq_enum(value: Any = None, *args: Any) -> Any:
    """fairseq's ``ChoiceEnum`` members reduce to ``Enum(value)``: keep the value string."""
    return value


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafeCheckpointError(f"numpy scalar of unsupported dtype {dtype!r}")
    return np.frombuffer(data or b"", dtype=dtype)[0]


def _numpy_reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise UnsafeCheckpointError(f"numpy _reconstruct of {cls!r} (only ndarray is admitted)")
    return np.ndarray.__new__(np.ndarray, shape, typecode)


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}
_TORCH_DTYPES = {str(d).split(".")[1]: d for d in set(_STORAGE_DTYPES.values())}


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: torch.dtype


class _Storage:
    """A flat tensor standing for one torch storage (filled in place for the legacy format)."""

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *rest: Any) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise CheckpointFormatError("tensor rebuilt from something that is not a storage")
    return torch.as_strided(storage.flat, tuple(size), tuple(stride), int(offset))


def _rebuild_tensor_v3(storage: _Storage, offset: int, size: tuple, stride: tuple, requires_grad: bool,
                       hooks: Any, dtype: torch.dtype, *rest: Any) -> torch.Tensor:
    flat = storage.flat if storage.flat.dtype == dtype else storage.flat.view(torch.uint8).view(dtype)
    return torch.as_strided(flat, tuple(size), tuple(stride), int(offset))


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, hooks: Any = None,
                       *rest: Any) -> torch.Tensor:
    return data


# (module, name) -> object. Module aliases are normalised by _MODULE_ALIASES first.
_MODULE_ALIASES = {"__builtin__": "builtins", "numpy._core.multiarray": "numpy.core.multiarray",
                   "copy_reg": "copyreg"}
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): dict,
    ("collections", "defaultdict"): _defaultdict,
    ("builtins", "long"): int,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "bool"): bool,
    ("builtins", "str"): str,
    ("builtins", "bytes"): bytes,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "dict"): dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "object"): _Sentinel("object"),
    ("builtins", "NoneType"): _Sentinel("NoneType"),
    ("_codecs", "encode"): _codecs_encode,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("typing", "Any"): _Sentinel("typing.Any"),
    ("typing", "Dict"): _Sentinel("typing.Dict"),
    ("typing", "List"): _Sentinel("typing.List"),
    ("typing", "Union"): _Sentinel("typing.Union"),
    ("typing", "Optional"): _Sentinel("typing.Optional"),
    ("argparse", "Namespace"): _record_class("argparse.Namespace"),
    ("fairseq.data.dictionary", "Dictionary"): _record_class("fairseq.data.dictionary.Dictionary"),
    ("fairseq.data.encoders.sentencepiece_bpe", "SentencepieceBPE"):
        _record_class("fairseq.data.encoders.sentencepiece_bpe.SentencepieceBPE"),
    ("sentencepiece", "SentencePieceProcessor"): _record_class("sentencepiece.SentencePieceProcessor"),
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
}
for _name, _dtype in _STORAGE_DTYPES.items():
    _ALLOWED[("torch", _name)] = _StorageType(_name, _dtype)
for _name, _dtype in _TORCH_DTYPES.items():
    _ALLOWED[("torch", _name)] = _dtype
for _cls in ("DictConfig", "ListConfig"):
    _ALLOWED[(f"omegaconf.{_cls.lower()}", _cls)] = type(_cls, (_OmegaContainer,),
                                                         {"qualname": f"omegaconf.{_cls}"})
for _cls in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "EnumNode",
             "ValueNode", "PathNode", "BytesNode"):
    _ALLOWED[("omegaconf.nodes", _cls)] = type(_cls, (_OmegaNode,), {"qualname": f"omegaconf.{_cls}"})
for _cls in ("ContainerMetadata", "Metadata"):
    _ALLOWED[("omegaconf.base", _cls)] = _record_class(f"omegaconf.base.{_cls}")

ADMITTED_GLOBALS: tuple[str, ...] = tuple(sorted(f"{m}.{n}" for m, n in _ALLOWED))


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` admits only :data:`ADMITTED_GLOBALS` (plus fairseq's
    ``fairseq.dataclass.constants`` enums, read as their value strings) and whose
    ``persistent_load`` resolves torch storages through ``storage_loader``."""

    def __init__(self, file: io.BufferedIOBase, where: str,
                 storage_loader: Callable[[tuple], _Storage] | None = None) -> None:
        super().__init__(file, encoding="latin1")
        self.where = where
        self.storage_loader = storage_loader

    def find_class(self, module: str, name: str) -> Any:
        mod = _MODULE_ALIASES.get(module, module)
        found = _ALLOWED.get((mod, name))
        if found is not None:
            return found
        if mod == "fairseq.dataclass.constants" and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            return _fairseq_enum
        raise UnsafeCheckpointError(
            f"{self.where}: refusing to unpickle the global {module}.{name}. A fairseq checkpoint "
            "only needs tensors, containers, the fairseq Dictionary, SentencePiece and "
            "omegaconf/argparse configs; this file asks for something else (it may be malicious, "
            "or not a fairseq checkpoint).")

    def persistent_load(self, pid: Any) -> Any:
        if self.storage_loader is None or not isinstance(pid, tuple) or not pid:
            raise CheckpointFormatError(f"{self.where}: unexpected persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind != "storage":
            raise UnsafeCheckpointError(f"{self.where}: refusing persistent object of kind {kind!r}")
        return self.storage_loader(pid)


def _storage_dtype(storage_type: Any, where: str) -> torch.dtype:
    if isinstance(storage_type, _StorageType):
        return storage_type.dtype
    if isinstance(storage_type, torch.dtype):
        return storage_type
    raise CheckpointFormatError(f"{where}: unknown storage type {storage_type!r}")


def _load_zip(path: Path, where: str) -> Any:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointFormatError(f"{where}: zip file without a torch data.pkl (not a torch checkpoint)")
        root = pkl[0].split("/")[0]
        byteorder = "little"
        if f"{root}/byteorder" in names:
            byteorder = zf.read(f"{root}/byteorder").decode().strip()
        storages: dict[str, _Storage] = {}

        def load(pid: tuple) -> _Storage:
            _, storage_type, key, _location, numel = pid[:5]
            key = key.decode() if isinstance(key, bytes) else str(key)
            if key not in storages:
                dtype = _storage_dtype(storage_type, where)
                try:
                    raw = bytearray(zf.read(f"{root}/data/{key}"))
                except KeyError as e:
                    raise CheckpointFormatError(f"{where}: storage {key} missing from the archive") from e
                flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
                if byteorder != "little" and flat.element_size() > 1:
                    flat = torch.from_numpy(flat.numpy().byteswap())
                storages[key] = _Storage(flat)
            return storages[key]

        with zf.open(pkl[0]) as f:
            return RestrictedUnpickler(io.BufferedReader(f), where, load).load()


def _load_legacy(path: Path, where: str) -> Any:
    with open(path, "rb") as f:
        try:
            magic = RestrictedUnpickler(f, where).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise CheckpointFormatError(f"{where}: not a torch checkpoint ({e})") from e
        if magic != LEGACY_MAGIC:
            raise CheckpointFormatError(f"{where}: not a torch checkpoint (bad magic number)")
        if RestrictedUnpickler(f, where).load() != LEGACY_PROTOCOL:
            raise CheckpointFormatError(f"{where}: unsupported legacy torch protocol version")
        sys_info = RestrictedUnpickler(f, where).load()
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise CheckpointFormatError(f"{where}: big-endian legacy checkpoints are not supported")
        roots: dict[str, _Storage] = {}
        views: dict[str, _Storage] = {}

        def load(pid: tuple) -> _Storage:
            _, storage_type, root_key, _location, numel, view = pid
            dtype = _storage_dtype(storage_type, where)
            root_key = str(root_key)
            if root_key not in roots:
                roots[root_key] = _Storage(torch.empty(int(numel), dtype=dtype))
            if view is None:
                return roots[root_key]
            view_key, offset, size = view
            if view_key not in views:
                views[view_key] = _Storage(roots[root_key].flat[int(offset):int(offset) + int(size)])
            return views[view_key]

        obj = RestrictedUnpickler(f, where, load).load()
        keys = RestrictedUnpickler(f, where).load()
        for key in keys:
            storage = roots.get(str(key))
            if storage is None:
                raise CheckpointFormatError(f"{where}: storage {key} is listed but never used")
            (numel,) = struct.unpack("<q", f.read(8))
            nbytes = numel * storage.flat.element_size()
            raw = f.read(nbytes)
            if numel != storage.flat.numel() or len(raw) != nbytes:
                raise CheckpointFormatError(f"{where}: truncated or corrupt storage data")
            if nbytes:
                storage.flat.copy_(torch.frombuffer(bytearray(raw), dtype=storage.flat.dtype))
    return obj


def restricted_load(path: str | Path) -> Any:
    """Unpickle a torch checkpoint file (zip or legacy container) with :class:`RestrictedUnpickler`.

    Returns the raw object graph (stand-ins not yet converted; see :func:`to_plain`).
    Raises :class:`MissingResourceError` for a missing file, :class:`UnsafeCheckpointError` for a
    refused global, :class:`CheckpointFormatError` for anything unreadable.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise MissingResourceError(f"{where}: no such checkpoint file")
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path, where)
        return _load_legacy(path, where)
    except TfgbenchError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, AttributeError,
            IndexError, struct.error, zipfile.BadZipFile, RuntimeError) as e:
        raise CheckpointFormatError(f"{where}: corrupt or unsupported checkpoint "
                                    f"({type(e).__name__}: {e})") from e


# ---------------------------------------------------------------------------------------------
# conversion to plain data
# ---------------------------------------------------------------------------------------------

_INTERP = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")


def _resolve(root: Any, node: Any, depth: int = 0) -> Any:
    """Resolve whole-string ``${a.b}`` interpolations against ``root`` (others stay strings)."""
    if isinstance(node, dict):
        return {k: _resolve(root, v, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(root, v, depth) for v in node]
    if isinstance(node, str) and depth < 10:
        m = _INTERP.match(node)
        if m:
            cur: Any = root
            for part in m.group(1).split("."):
                if not isinstance(cur, dict) or part not in cur:
                    return node
                cur = cur[part]
            return _resolve(root, cur, depth + 1)
    return node


def to_plain(obj: Any) -> Any:
    """Convert unpickled stand-ins to plain data: omegaconf containers -> dict/list (simple
    interpolations resolved against their root config), ``Namespace`` -> dict, value nodes ->
    values; fairseq objects stay :class:`PickledObject` records with their state converted."""
    if isinstance(obj, _OmegaContainer):
        state = obj.state if isinstance(obj.state, dict) else {}
        plain = to_plain(state.get("_content"))
        if plain == "???":
            return None
        return _resolve(plain, plain) if state.get("_parent") is None else plain
    if isinstance(obj, _OmegaNode):
        state = obj.state if isinstance(obj.state, dict) else {}
        value = to_plain(state.get("_val"))
        return None if value == "???" else value
    if isinstance(obj, PickledObject) and obj.qualname == "argparse.Namespace":
        state = obj.state if isinstance(obj.state, dict) else {}
        return {k: to_plain(v) for k, v in state.items()}
    if isinstance(obj, PickledObject):
        obj.state = to_plain(obj.state)
        return obj
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    return obj


@dataclass
class FairseqCheckpoint:
    """A fairseq checkpoint as plain data.

    Attributes:
        path: the file.
        cfg: the training config as nested dicts (from ``cfg``, or from ``args`` when only a
            Namespace was saved), with simple interpolations resolved.
        model: the state dict, name -> tensor (no copy; tensors share the file's storages).
        task_state: e.g. ``{'target_dictionary': PickledObject, 's2s_tokenizer': PickledObject}``.
        extra: every other top-level entry, converted.
    """

    path: Path
    cfg: dict[str, Any]
    model: dict[str, torch.Tensor]
    task_state: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def load_fairseq_checkpoint(path: str | Path) -> FairseqCheckpoint:
    """Read a fairseq ``.pt`` file safely (see module docstring) into a :class:`FairseqCheckpoint`."""
    path = Path(path)
    raw = restricted_load(path)
    if not isinstance(raw, dict) or "model" not in raw:
        raise CheckpointFormatError(f"{path}: not a fairseq checkpoint (no 'model' entry at the top level)")
    model = raw["model"]
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise CheckpointFormatError(f"{path}: 'model' is not a state dict of tensors")
    cfg = to_plain(raw.get("cfg"))
    args = to_plain(raw.get("args"))
    if not isinstance(cfg, dict):
        cfg = {"model": args} if isinstance(args, dict) else {}
    task_state = to_plain(raw.get("task_state")) or {}
    extra = {k: to_plain(v) for k, v in raw.items() if k not in ("cfg", "model", "task_state")}
    return FairseqCheckpoint(path=path, cfg=cfg, model=dict(model), task_state=dict(task_state), extra=extra)


__all__ = ["ADMITTED_GLOBALS", "CheckpointFormatError", "FairseqCheckpoint", "PickledObject",
           "RestrictedUnpickler", "UnsafeCheckpointError", "load_fairseq_checkpoint", "restricted_load",
           "to_plain"]
