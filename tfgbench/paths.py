"""Where tfgbench keeps its files, and how it finds weights and data that users provide."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tfgbench.errors import MissingResourceError


class BadPathError(MissingResourceError):
    """A path the user gave (a flag or an environment variable) that is not a readable file."""


def home() -> Path:
    """``$TFGBENCH_HOME``, default ``~/.cache/tfgbench``: generated corpora, user weights."""
    return Path(os.environ.get("TFGBENCH_HOME", Path.home() / ".cache" / "tfgbench")).expanduser()


def find_file(
    what: str,
    given: str | Path | None,
    env: str,
    filename: str,
    origin: str,
    flag: str | None = None,
) -> Path:
    """Find a user-provided file: ``given`` (a command-line flag), then ``$env``, then
    ``$TFGBENCH_HOME/weights/<filename>``.

    Raises :class:`MissingResourceError` naming what is missing, every place it was looked for,
    the flag and environment variable that point to it, and where the official file comes from.
    A path the user gave (``given``, or ``$env`` when set) that is not a readable file raises
    :class:`BadPathError` at once: it never falls through to another file silently.
    """
    looked: list[str] = []
    candidates: list[tuple[str, Path]] = []
    if given is not None:
        candidates.append((flag or "argument", Path(given).expanduser()))
    if os.environ.get(env):
        candidates.append((f"${env}", Path(os.environ[env]).expanduser()))
    candidates.append(("default location", home() / "weights" / filename))
    for source, path in candidates:
        if path.is_file():
            if source != "default location" and not os.access(path, os.R_OK):
                raise BadPathError(f"{what}: {source} {path} cannot be read (permission denied)")
            return path
        if source != "default location":
            raise BadPathError(f"{what} ({filename}): {source} points to {path}, which is not a file.\n"
                               f"Point it at the file (the others looked at, when it is not given: ${env}, then "
                               f"{home() / 'weights' / filename}).\nThe official file comes from: {origin}")
        looked.append(f"  {source}: {path} (not found)")
    how = f"pass {flag} FILE, or " if flag else ""
    raise MissingResourceError(
        f"{what} is missing ({filename}).\nLooked for it at:\n" + "\n".join(looked)
        + f"\nTo use it, {how}set {env}=FILE, or copy it to {home() / 'weights' / filename}."
        + f"\nThe official file comes from: {origin}"
    )


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
