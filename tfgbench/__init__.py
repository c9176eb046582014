"""tfgbench: the talking-face generation benchmark.

``import tfgbench`` is deliberately light: it imports neither torch nor any plugin.
The public API for plugin authors is re-exported here lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Sample": "tfgbench.data.sample",
    "FPS": "tfgbench.data.sample",
    "SAMPLE_RATE": "tfgbench.data.sample",
    "TalkingFaceModel": "tfgbench.model",
    "ModelInfo": "tfgbench.model",
    "Dataset": "tfgbench.data.base",
    "Metric": "tfgbench.metrics.base",
    "Measure": "tfgbench.metrics.base",
    "ProtocolSpec": "tfgbench.metrics.base",
    "TfgbenchError": "tfgbench.errors",
    "results": "tfgbench.frame",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfgbench' has no attribute {name!r}")
