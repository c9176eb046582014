"""The restricted unpickler behind :mod:`tfgbench.readers.fairseq_checkpoint`.

``find_class`` admits only the globals a fairseq checkpoint needs (:data:`ADMITTED_GLOBALS`) and
maps each to a plain stand-in that runs none of the original class's code:

* containers and scalars (``collections.OrderedDict`` -> dict, ``__builtin__.long`` -> int, ...),
  ``_codecs.encode`` (protocol-2 bytes), ``copyreg._reconstructor`` (stand-ins only);
* tensors: ``torch._utils._rebuild_tensor_v2`` / ``_v3`` / ``_rebuild_parameter`` and the
  ``torch.*Storage`` types, rebuilt by our own functions on storages the caller provides
  (``persistent_load``);
* fairseq's ``Dictionary`` and ``SentencepieceBPE``, ``sentencepiece.SentencePieceProcessor``,
  ``argparse.Namespace``, omegaconf ``DictConfig``/``ListConfig``/value nodes/metadata:
  :class:`PickledObject` records (class name + pickled state);
* numpy scalars, dtypes and plain arrays (``extra_state``).

Anything else raises :class:`UnsafeCheckpointError` naming the global. Nothing is imported.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tfgbench.errors import TfgbenchError


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


class OmegaContainer(PickledObject):
    """omegaconf DictConfig / ListConfig: ``state['_content']`` holds the children."""


class OmegaNode(PickledObject):
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
class StorageType:
    name: str
    dtype: torch.dtype


class Storage:
    """A flat tensor standing for one torch storage (filled in place for the legacy format)."""

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat


def _rebuild_tensor(storage: Storage, offset: int, size: tuple, stride: tuple, *rest: Any) -> torch.Tensor:
    if not isinstance(storage, Storage):
        raise CheckpointFormatError("tensor rebuilt from something that is not a storage")
    return torch.as_strided(storage.flat, tuple(size), tuple(stride), int(offset))


def _rebuild_tensor_v3(storage: Storage, offset: int, size: tuple, stride: tuple, requires_grad: bool,
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
    _ALLOWED[("torch", _name)] = StorageType(_name, _dtype)
for _name, _dtype in _TORCH_DTYPES.items():
    _ALLOWED[("torch", _name)] = _dtype
for _cls in ("DictConfig", "ListConfig"):
    _ALLOWED[(f"omegaconf.{_cls.lower()}", _cls)] = type(_cls, (OmegaContainer,),
                                                         {"qualname": f"omegaconf.{_cls}"})
for _cls in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "EnumNode",
             "ValueNode", "PathNode", "BytesNode"):
    _ALLOWED[("omegaconf.nodes", _cls)] = type(_cls, (OmegaNode,), {"qualname": f"omegaconf.{_cls}"})
for _cls in ("ContainerMetadata", "Metadata"):
    _ALLOWED[("omegaconf.base", _cls)] = _record_class(f"omegaconf.base.{_cls}")

ADMITTED_GLOBALS: tuple[str, ...] = tuple(sorted(f"{m}.{n}" for m, n in _ALLOWED))


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` admits only :data:`ADMITTED_GLOBALS` (plus fairseq's
    ``fairseq.dataclass.constants`` enums, read as their value strings) and whose
    ``persistent_load`` resolves torch storages through ``storage_loader``."""

    def __init__(self, file: io.BufferedIOBase, where: str,
                 storage_loader: Callable[[tuple], Storage] | None = None) -> None:
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
