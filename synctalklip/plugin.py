"""The SyncTalklip model plugins: the paper's model, its two variants and the Table 3 ablations.

Inference is TalkLip's (:class:`baselines.talklip.plugin.TalkLipModel`; SyncTalklip is a fork of
TalkLip): face boxes from the dataset or the detector, 96x96 crops with the lower half masked,
frame 0 as the reference, AV-HuBERT audio features per frame, batched on CPU or CUDA, the generated
faces pasted back into the full frames. Each plugin defaults to its shipped tiny checkpoint in
``synctalklip/weights/`` (trained on the synthetic corpus); ``--checkpoint FILE`` takes a generator
written by ``synctalklip train generator`` (any size).

=============================  ===============================================================
plugin                         model
=============================  ===============================================================
``synctalklip``                the paper's model (AV-SyncNet supervisor, novel contrastive loss)
``synctalklip-conv``           AV-SyncNet(conv) supervisor, alignment through a temporal conv
``synctalklip-freeze``         frozen AV-SyncNet audio encoder + an extra trainable one
``synctalklip-supcon``         Table 3 "w/o novel contrastive": TalkLip's SupCon instead
``synctalklip-avhubert``       Table 3 "w/o AV-SyncNet": a plain AV-HuBERT lip reader supervises
``synctalklip-no-contrastive``  Table 3 "w/o contrastive loss"
``synctalklip-no-lip``         Table 3 "w/o lip-reading loss"
=============================  ===============================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from baselines.talklip.plugin import TalkLipModel

WEIGHTS = Path(__file__).resolve().parent / "weights"


def load_synctalklip_generator(path: str | Path) -> tuple[Any, Any, dict[str, Any]]:
    """``(generator, TalkLipConfig, metadata)`` from a ``synctalklip train generator`` file; the
    variant recorded in its metadata picks the class (``freeze`` has a second audio encoder)."""
    from baselines.talklip.model import TalkLipConfig
    from synctalklip.generator import SyncTalklipVariant, build_generator
    from tfgbench.checkpoints import load_checkpoint
    from tfgbench.errors import TfgbenchError
    from tfgbench.readers.avhubert import AVHubertConfig
    from tfgbench.readers.avhubert_reader import load_state_strict

    state, config_dict, meta = load_checkpoint(path)
    if "synctalklip" not in meta:
        raise TfgbenchError(f"{path}: not a SyncTalklip generator (no 'synctalklip' variant in its metadata); "
                            "TalkLip checkpoints run with --model talklip")
    spec = SyncTalklipVariant.from_dict(meta["synctalklip"])
    config = TalkLipConfig.from_dict(config_dict)
    generator, _ = build_generator(spec, AVHubertConfig.from_dict(config.audio))
    load_state_strict(generator, state, str(path))
    return generator.eval(), config, meta


class SyncTalklip(TalkLipModel):
    """SyncTalklip (ACM MM 2024), the paper's model; see the module docstring."""

    name = "synctalklip"
    official_licence: ClassVar[str] = "SyncTalklip: see github.com/Yangxiaoda1/SyncTalkLip"

    @property
    def default_checkpoint(self) -> Path:  # type: ignore[override]
        return WEIGHTS / f"{self.name}-tiny.safetensors"

    def load_generator(self, path: Path) -> tuple[Any, Any, dict[str, Any]]:
        return load_synctalklip_generator(path)


class SyncTalklipConv(SyncTalklip):
    name = "synctalklip-conv"


class SyncTalklipFreeze(SyncTalklip):
    name = "synctalklip-freeze"


class SyncTalklipSupCon(SyncTalklip):
    name = "synctalklip-supcon"


class SyncTalklipAVHubert(SyncTalklip):
    name = "synctalklip-avhubert"


class SyncTalklipNoContrastive(SyncTalklip):
    name = "synctalklip-no-contrastive"


class SyncTalklipNoLip(SyncTalklip):
    name = "synctalklip-no-lip"
