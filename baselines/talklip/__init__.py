"""TalkLip (Wang et al., CVPR 2023) as a tfgbench baseline: networks with the official key layout
(:mod:`.model`), official and tfgbench checkpoints (:mod:`.checkpoint`), losses (:mod:`.losses`),
the reusable training loop (:mod:`.recipe`, command :mod:`.train`) and the ``talklip`` plugin
(:mod:`.plugin`). Names are imported lazily so that importing the package does not import torch."""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "TalkLip": "baselines.talklip.model",
    "TalkLipConfig": "baselines.talklip.model",
    "TalkLipDiscQual": "baselines.talklip.model",
    "build_talklip": "baselines.talklip.model",
    "load_talklip": "baselines.talklip.checkpoint",
    "Recipe": "baselines.talklip.recipe",
    "train_talking_face": "baselines.talklip.recipe",
    "TalkLipModel": "baselines.talklip.plugin",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'baselines.talklip' has no attribute {name!r}")
