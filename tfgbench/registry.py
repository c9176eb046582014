"""Plugin discovery through entry points: ``tfgbench.models``, ``tfgbench.datasets``,
``tfgbench.metrics``.

Built-ins register through the same entry points as third-party packages (see pyproject.toml).
Listing names imports nothing; a plugin is imported only when asked for, so a broken plugin fails
only then, with the name of the distribution it came from. Two distributions declaring the same
name in a group is an error; an unknown name gets a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from tfgbench.errors import RegistryError

GROUPS = {"models": "tfgbench.models", "datasets": "tfgbench.datasets", "metrics": "tfgbench.metrics"}


@dataclass(frozen=True)
class Entry:
    """One registered plugin: its name, its ``"module:attr"`` target and its distribution."""

    kind: str
    name: str
    target: str
    distribution: str

    def load(self) -> type:
        module_name, _, attr = self.target.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except Exception as e:  # a broken plugin must say where it came from
            raise RegistryError(
                f"{self.kind[:-1]} plugin {self.name!r} ({self.target}, from the distribution "
                f"{self.distribution!r}) failed to load: {type(e).__name__}: {e}") from e
        return obj


def entries(kind: str) -> dict[str, Entry]:
    """All plugins of ``kind`` (``models``, ``datasets`` or ``metrics``) by name, without importing them."""
    if kind not in GROUPS:
        raise RegistryError(f"unknown plugin kind {kind!r}; choose from {', '.join(GROUPS)}")
    found: dict[str, Entry] = {}
    for ep in entry_points(group=GROUPS[kind]):
        dist = ep.dist.name if ep.dist is not None else "<unknown distribution>"
        entry = Entry(kind, ep.name, ep.value, dist)
        previous = found.get(ep.name)
        if previous is not None and previous != entry:
            raise RegistryError(
                f"two plugins are registered as {kind[:-1]} {ep.name!r}: {previous.target} (from "
                f"{previous.distribution!r}) and {entry.target} (from {entry.distribution!r}); "
                "uninstall one of the distributions")
        found[ep.name] = entry
    return dict(sorted(found.items()))


def names(kind: str) -> list[str]:
    return list(entries(kind))


def get(kind: str, name: str) -> Entry:
    """The entry for ``name``; an unknown name raises with the closest known names."""
    known = entries(kind)
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(known) or "(none installed)"
    raise RegistryError(f"unknown {kind[:-1]} {name!r}.{hint} Known {kind}: {listing}.")


def load(kind: str, name: str) -> type:
    """Import and return the plugin class registered as ``name``."""
    return get(kind, name).load()
