"""Load Conformer lip-reader weights: official ``.pt``/``.pth`` files and our safetensors.

Official files (no unsafe unpickling: ``torch.load(weights_only=True)``):

- TalkLip "Lip reading observer 2" (``conformer.pt``): ``teacher_force_wer.py`` does
  ``model.load_state_dict(torch.load(ckpt_path))``, so the file is a plain state dict (an
  ``OrderedDict`` of tensors) with keys ``visual_frontend.*``, ``encoder.*``, ``decoder.*``,
  ``ctc.ctc_lo.*`` (755 keys, about 52.5M values).
- Auto-AVSR ``vsr_*.pth``: ``ModelModule`` does ``self.model.load_state_dict(torch.load(path))``,
  a plain state dict with ``frontend.*``, ``proj_encoder.*``, ``encoder.*``, ``decoder.*``,
  ``ctc.ctc_lo.*`` (767 keys, about 250M values).

Wrapped files (``{"state_dict": ...}``, ``{"model": ...}``, ``{"model_state_dict": ...}``, keys
prefixed ``module.``/``model.``) are unwrapped too, since people re-save checkpoints that way.

The architecture is read from the tensors' shapes (widths, units, block counts, vocabulary,
heads from ``pos_bias_u``), so any size of either layout loads; the decoder is assumed to have
as many heads as the encoder (true of both official models; heads leave no trace in shapes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from tfgbench.checkpoints import load_checkpoint, strip_wrappers
from tfgbench.errors import MissingResourceError, TfgbenchError
from tfgbench.readers.conformer import ConformerConfig, ConformerVSR

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict")


def read_torch_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official ``.pt``/``.pth`` state dict safely and unwrap common containers."""
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"conformer checkpoint not found: {path}")
    try:
        obj: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise TfgbenchError(
            f"{path}: cannot be read as a PyTorch state dict with weights_only=True ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Expected TalkLip's conformer.pt or an "
            "Auto-AVSR vsr_*.pth (a plain state dict).") from e
    for _ in range(2):  # {"state_dict": {...}} or {"model": {"state_dict": ...}}
        if isinstance(obj, dict) and not _is_tensor_dict(obj):
            inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not _is_tensor_dict(obj):
        what = type(obj).__name__ if not isinstance(obj, dict) else f"dict with keys {list(obj)[:6]}"
        raise TfgbenchError(f"{path}: expected a state dict of tensors, found a {what}")
    state = strip_wrappers(dict(obj))
    if not any(k.startswith(("visual_frontend.", "frontend.")) for k in state) and all(
            k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}  # a Lightning-style wrapper
    return state


def _is_tensor_dict(d: dict) -> bool:
    return len(d) > 0 and all(isinstance(v, torch.Tensor) for v in d.values())


def sniff_layout(state: dict[str, torch.Tensor], where: str) -> str:
    """``"talklip"`` or ``"auto-avsr"`` from the key names; a clear error otherwise."""
    if "visual_frontend.frontend3D.0.weight" in state:
        return "talklip"
    if "frontend.frontend3D.0.weight" in state and "proj_encoder.weight" in state:
        return "auto-avsr"
    sample = ", ".join(sorted(state)[:5])
    raise TfgbenchError(
        f"{where}: not a Conformer lip-reader state dict (no 'visual_frontend.frontend3D.0.weight' "
        f"(TalkLip observer 2) nor 'frontend.frontend3D.0.weight' + 'proj_encoder.weight' "
        f"(Auto-AVSR)); first keys: {sample}")


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    idx = {int(m.group(1)) for k in state if (m := rx.match(k))}
    return max(idx) + 1 if idx else 0


def infer_config(state: dict[str, torch.Tensor], where: str) -> ConformerConfig:
    """Rebuild the :class:`ConformerConfig` of an official state dict from its tensor shapes."""
    layout = sniff_layout(state, where)
    try:
        if layout == "talklip":
            fe = "visual_frontend."
            stages = [state[f"{fe}resnet.layer{i}.conv1a.weight"].shape[0] for i in range(1, 5)]
            adim = state["encoder.embed.0.weight"].shape[0]
        else:
            fe = "frontend."
            stages = [state[f"{fe}trunk.layer{i}.0.conv1.weight"].shape[0] for i in range(1, 5)]
            adim = state["proj_encoder.weight"].shape[0]
        stem = state[f"{fe}frontend3D.0.weight"].shape[0]
        block = "encoder.encoders.0."
        aheads = state[f"{block}self_attn.pos_bias_u"].shape[0]
        cfg = ConformerConfig(
            layout=layout, frontend_channels=(stem, *stages), adim=adim, aheads=aheads,
            eunits=state[f"{block}feed_forward.w_1.weight"].shape[0],
            elayers=_count(state, r"encoder\.encoders\.(\d+)\."),
            dheads=aheads, dunits=state["decoder.decoders.0.feed_forward.w_1.weight"].shape[0],
            dlayers=_count(state, r"decoder\.decoders\.(\d+)\."),
            odim=state["decoder.output_layer.weight"].shape[0],
            cnn_kernel=state[f"{block}conv_module.depthwise_conv.weight"].shape[-1],
            **({} if layout == "talklip" else
               {"input_size": 88, "mean": 0.421, "std": 0.165, "mtlalpha": 0.1}))
    except KeyError as e:
        raise TfgbenchError(f"{where}: {layout} layout, but the key {e} is missing") from e
    if cfg.adim % cfg.aheads:
        raise TfgbenchError(f"{where}: width {cfg.adim} is not divisible by {cfg.aheads} heads")
    return cfg


def build_from_state(state: dict[str, torch.Tensor], cfg: ConformerConfig, where: str) -> ConformerVSR:
    """Instantiate the model and load ``state`` strictly; names every missing/unexpected key."""
    model = ConformerVSR(cfg)
    own = model.state_dict()
    # Files written by old PyTorch versions may lack BatchNorm's counter; it is not used in eval.
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        for name, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{len(items)} {name}: {', '.join(items[:5])}{more}")
        raise TfgbenchError(f"{where}: does not match the {cfg.layout} conformer layout: "
                            + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    return model.eval()


def is_safetensors(path: Path) -> bool:
    """Our checkpoints: an 8-byte little-endian header length then a JSON header."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def load_model(path: str | Path) -> tuple[ConformerVSR, dict[str, Any]]:
    """Load any supported file: ``(model in eval mode, metadata)``. ``metadata["format"]`` is
    ``"talklip"``, ``"auto-avsr"`` or ``"tfgbench"`` (our safetensors, config in its metadata)."""
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"conformer checkpoint not found: {path}")
    if is_safetensors(path):
        state, config, meta = load_checkpoint(path)
        if config.get("model") != "conformer-vsr":
            raise TfgbenchError(f"{path}: a tfgbench checkpoint, but of {config.get('model')!r}, "
                                "not of the conformer lip reader")
        cfg = ConformerConfig.from_dict(config["conformer"])
        meta = {**meta, "format": "tfgbench", "config": config}
        return build_from_state(state, cfg, str(path)), meta
    state = read_torch_state_dict(path)
    cfg = infer_config(state, str(path))
    return build_from_state(state, cfg, str(path)), {"format": cfg.layout}


def checkpoint_config(cfg: ConformerConfig, vocab: str = "talklip-chars") -> dict[str, Any]:
    """The ``config`` stored in our safetensors files for a conformer reader."""
    return {"model": "conformer-vsr", "vocab": vocab, "conformer": cfg.to_dict()}
