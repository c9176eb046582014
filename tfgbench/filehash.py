"""sha256 of files the harness puts in result keys (checkpoints, files named by ``--model-arg``,
evaluator side files), cached by path, size and modification time so a multi-GB checkpoint is
hashed once, not on every run.

The cache is a JSON file, ``$TFGBENCH_HOME/cache/sha256.json``, mapping an absolute path to
``[size, mtime_ns, sha256]``; an entry is used only while the file's size and mtime_ns are
unchanged. It is written atomically (temporary file + rename); concurrent writers can lose each
other's new entries, never corrupt the file, and a lost entry only costs a re-hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from tfgbench.errors import MissingResourceError

#: above this many entries, entries whose file no longer exists are dropped when the cache is read
PRUNE_ABOVE = 256
_LOCK = threading.Lock()
_MEMORY: dict[str, list] = {}
_LOADED: set[Path] = set()


def cache_path() -> Path:
    from tfgbench.paths import home

    return home() / "cache" / "sha256.json"


def _hash_bytes(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _load(cache: Path) -> None:
    if cache in _LOADED:
        return
    _LOADED.add(cache)
    try:
        data = json.loads(cache.read_text())
        if isinstance(data, dict):
            entries = {k: v for k, v in data.items() if isinstance(v, list) and len(v) == 3}
            if len(entries) > PRUNE_ABOVE:  # forget files that are gone (temporary checkpoints, tests)
                entries = {k: v for k, v in entries.items() if os.path.exists(k)}
            _MEMORY.update(entries)
    except (OSError, ValueError):
        pass  # no cache yet, or a damaged one: start afresh


def _save(cache: Path) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(_MEMORY, sort_keys=True))
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home: hashing still works, just uncached


def file_sha256(path: str | Path, what: str = "file") -> str:
    """Hex sha256 of a file's bytes, from the cache while its size and mtime are unchanged.
    Raises :class:`MissingResourceError` naming ``what`` and the path when it is not a file."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError as e:
        raise MissingResourceError(f"{what} {path}: not found ({e.strerror or e})") from e
    if not p.is_file():
        raise MissingResourceError(f"{what} {path}: not a file")
    key = str(p.resolve())
    cache = cache_path()
    with _LOCK:
        _load(cache)
        entry = _MEMORY.get(key)
        if entry is not None and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return str(entry[2])
    digest = _hash_bytes(p)
    with _LOCK:
        _MEMORY[key] = [st.st_size, st.st_mtime_ns, digest]
        _save(cache)
    return digest


def path_sha256(path: str | Path, what: str = "file") -> str:
    """:func:`file_sha256` for a file; for a folder, the sha256 of every file below it (relative
    path and content hash, sorted), so a checkpoint folder is keyed by everything in it."""
    p = Path(path).expanduser()
    if not p.is_dir():
        return file_sha256(p, what)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(f"{f.relative_to(p).as_posix()}\0{file_sha256(f, what)}\n".encode())
    return h.hexdigest()
