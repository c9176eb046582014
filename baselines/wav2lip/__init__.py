"""Wav2Lip (Prajwal et al. 2020) for tfgbench: official layouts, checkpoint loading, mel features,
inference, a CPU training recipe and the ``wav2lip`` / ``wav2lip-gan`` plugins.

Exports (imported lazily, so that importing the package does not import torch): ``Wav2Lip``,
``Wav2LipDiscQual``, ``SyncNetColor`` (:mod:`.model`) and ``melspectrogram`` (:mod:`.audio`).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {"Wav2Lip": "model", "Wav2LipDiscQual": "model", "SyncNetColor": "model", "melspectrogram": "audio"}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
