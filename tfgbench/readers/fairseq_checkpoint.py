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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tfgbench.errors import MissingResourceError, TfgbenchError
from tfgbench.readers.fairseq_pickle import (
    ADMITTED_GLOBALS,
    CheckpointFormatError,
    OmegaContainer,
    OmegaNode,
    PickledObject,
    RestrictedUnpickler,
    Storage,
    StorageType,
    UnsafeCheckpointError,
)

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


def _storage_dtype(storage_type: Any, where: str) -> torch.dtype:
    if isinstance(storage_type, StorageType):
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
        storages: dict[str, Storage] = {}

        def load(pid: tuple) -> Storage:
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
                storages[key] = Storage(flat)
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
        roots: dict[str, Storage] = {}
        views: dict[str, Storage] = {}

        def load(pid: tuple) -> Storage:
            _, storage_type, root_key, _location, numel, view = pid
            dtype = _storage_dtype(storage_type, where)
            root_key = str(root_key)
            if root_key not in roots:
                roots[root_key] = Storage(torch.empty(int(numel), dtype=dtype))
            if view is None:
                return roots[root_key]
            view_key, offset, size = view
            if view_key not in views:
                views[view_key] = Storage(roots[root_key].flat[int(offset):int(offset) + int(size)])
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
    if isinstance(obj, OmegaContainer):
        state = obj.state if isinstance(obj.state, dict) else {}
        plain = to_plain(state.get("_content"))
        if plain == "???":
            return None
        return _resolve(plain, plain) if state.get("_parent") is None else plain
    if isinstance(obj, OmegaNode):
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
