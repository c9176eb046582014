"""The model-plugin contract.

A talking-face model takes a sample (frames, audio, transcript) and returns new frames of the
same length and size whose lips follow the sample's audio. Plugins register a subclass under the
``tfgbench.models`` entry-point group.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tfgbench.data.sample import Sample


@dataclass(frozen=True)
class ModelInfo:
    """What a results row records about the model that produced it.

    ``checkpoint_sha256`` is ``"none"`` for models without weights. ``reference_frame`` is the
    model's declared convention for the identity frame (``"first"``, ``"random"``, ``"same"``...).
    """

    checkpoint_sha256: str = "none"
    training_data: str = ""
    licence: str = ""
    reference_frame: str = "first"


class TalkingFaceModel(ABC):
    """Base class for model plugins.

    Subclasses set ``name`` (lowercase kebab-case) and implement :meth:`generate`. Constructor
    keyword arguments are the model's settings: they are hashed into every result's key, so
    changing one never mixes results.
    """

    name: ClassVar[str]
    #: how many samples :meth:`generate_batch` likes at once (1 = no batching benefit: the runner then
    #: calls :meth:`generate` per sample); the default of ``tfgbench run --batch-size``
    batch_size: ClassVar[int] = 1
    #: keep generated videos in the run's cache (off for models cheaper to rerun than to decode)
    cache_outputs: ClassVar[bool] = True
    #: whether the model reads weights; ``False``: ``--checkpoint`` is refused instead of ignored
    takes_checkpoint: ClassVar[bool] = True

    def __init__(self, device: str = "cpu", checkpoint: str | Path | None = None, **settings: Any) -> None:
        self.device = device
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.settings: dict[str, Any] = dict(settings)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo()

    def settings_hash(self) -> str:
        """sha256 (16 hex) of the settings and the declared info, excluding the device."""
        blob = json.dumps({"settings": self.settings, "info": asdict(self.info)}, sort_keys=True,
                          default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @abstractmethod
    def generate(self, sample: Sample) -> np.ndarray:
        """Return ``(T, H, W, 3)`` uint8 RGB frames, same shape as ``sample.frames``."""

    def generate_batch(self, samples: Sequence[Sample]) -> list[np.ndarray]:
        """Batched variant; the default calls :meth:`generate` per sample. Samples may differ in
        length; each output must equal what :meth:`generate` gives that sample alone (pad with a
        mask, or bucket equal lengths, so that no sample depends on its neighbours). If it raises,
        the runner generates each sample alone, so one bad sample fails only itself."""
        return [self.generate(s) for s in samples]
