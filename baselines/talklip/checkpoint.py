"""Loading TalkLip generators: official ``.pth`` files and our safetensors.

Official (``train.py::save_checkpoint``): ``torch.save({"state_dict", "optimizer", "global_step",
"global_epoch"})``, read here with ``torch.load(weights_only=True)`` (a bare state dict is accepted
too); ``module.`` prefixes are stripped. Sizes are read from the tensor shapes: the face-network
width from the first convolution, the AV-HuBERT encoder (depth, width, FFN, positional
convolution, ResNet widths) from ``audio_encoder.w2v_model.*``. The encoder that TalkLip builds
from the pre-trained ``base_vox_iter5.pt`` keeps its pre-training ``label_embs_concat`` ([2004, 256]
with the repository's ``task_state.pt``); it is unused and dropped, as are ``final_proj`` /
``target_glu`` if present. Official generators were trained on OpenCV (BGR) crops, so their config
says ``channel_order="bgr"``.

Ours: :func:`tfgbench.checkpoints.save_checkpoint` with :class:`TalkLipConfig` as the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from baselines.talklip.model import TalkLip, TalkLipConfig, build_talklip
from tfgbench.errors import MissingResourceError, TfgbenchError
from tfgbench.readers.avhubert import AVHubertConfig
from tfgbench.readers.avhubert_reader import load_state_strict

ENCODER = "audio_encoder.w2v_model."
#: pre-training tensors an official generator may carry and inference never uses
PRETRAIN_ONLY = (ENCODER + "label_embs_concat", ENCODER + "final_proj.", ENCODER + "target_glu.")
#: heads cannot be read from shapes; released sizes, else 32-d heads (our tiny encoder)
_HEADS = {768: 12, 1024: 16}


def read_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The generator state dict of an official TalkLip checkpoint, ``module.``-free, without the
    pre-training-only tensors."""
    from tfgbench.checkpoints import strip_wrappers

    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"TalkLip checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise TfgbenchError(f"{path}: not a loadable TalkLip checkpoint (torch.load with weights_only=True "
                            f"failed: {type(e).__name__}: {e})") from e
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise TfgbenchError(f"{path}: expected a dict with a 'state_dict' of tensors (TalkLip's train.py "
                            "format) or a bare state dict")
    return {k: v for k, v in strip_wrappers(state).items() if not k.startswith(PRETRAIN_ONLY)}


def encoder_config_from_state(state: dict[str, torch.Tensor], prefix: str, where: str) -> AVHubertConfig:
    """AV-HuBERT encoder sizes from the shapes of the keys under ``prefix`` (``...w2v_model.``)."""
    try:
        d = state[prefix + "post_extract_proj.weight"].shape[0]
        layers = 1 + max(int(k[len(prefix) + len("encoder.layers."):].split(".")[0])
                         for k in state if k.startswith(prefix + "encoder.layers."))
        conv = state[prefix + "encoder.pos_conv.0.weight_v"].shape
        widths = tuple(state[prefix + f"feature_extractor_video.resnet.trunk.layer{i}.0.conv1.weight"].shape[0]
                       for i in range(1, 5))
        return AVHubertConfig(
            encoder_layers=layers, encoder_embed_dim=d,
            encoder_ffn_embed_dim=state[prefix + "encoder.layers.0.fc1.weight"].shape[0],
            encoder_attention_heads=_HEADS.get(d, max(1, d // 32)), conv_pos=conv[2], conv_pos_groups=d // conv[1],
            audio_feat_dim=state[prefix + "feature_extractor_audio.proj.weight"].shape[1], resnet_widths=widths,
            decoder_embed_dim=d)
    except (KeyError, ValueError, IndexError) as e:
        raise TfgbenchError(f"{where}: no AV-HuBERT audio encoder under '{prefix}*' (missing {e}); "
                            "not a TalkLip generator checkpoint") from e


def config_from_state(state: dict[str, torch.Tensor], where: str) -> TalkLipConfig:
    """A :class:`TalkLipConfig` from an official generator's shapes (``channel_order="bgr"``)."""
    first = state.get("face_encoder_blocks.0.0.conv_block.0.weight")
    if first is None:
        raise TfgbenchError(f"{where}: no 'face_encoder_blocks.0.0.conv_block.0.weight'; not a TalkLip generator")
    audio = encoder_config_from_state(state, ENCODER, where)
    return TalkLipConfig(width=first.shape[0] / 16, audio=audio.to_dict(), channel_order="bgr")


def generator_from_state(state: dict[str, torch.Tensor], config: TalkLipConfig, where: str) -> TalkLip:
    """Build at ``config`` and load ``state`` strictly: missing, unexpected and mis-shaped keys are
    named in the error, with ``where``."""
    model = build_talklip(config)
    load_state_strict(model, state, where)
    return model


def load_official_talklip(path: str | Path) -> tuple[TalkLip, TalkLipConfig]:
    """An official TalkLip generator (sizes read from the file)."""
    state = read_official_state(path)
    config = config_from_state(state, str(path))
    return generator_from_state(state, config, str(path)), config


def save_talklip(path: str | Path, model: TalkLip, config: TalkLipConfig, half: bool = False,
                 **metadata: Any) -> Path:
    """Our checkpoint: the generator's state dict (floating tensors stored as float16 when ``half``:
    half the file; loading casts back to float32), its config and free-form metadata."""
    from tfgbench.checkpoints import save_checkpoint

    state = {k: v.half() if half and v.is_floating_point() else v for k, v in model.state_dict().items()}
    return save_checkpoint(path, state, config.to_dict(), stored_dtype="float16" if half else "float32", **metadata)


def load_talklip(path: str | Path) -> tuple[TalkLip, TalkLipConfig, dict[str, Any]]:
    """A generator from our safetensors or an official ``.pth`` (by content, not by name).
    Returns the model (eval mode), its config and the metadata (empty for official files)."""
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"TalkLip checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(9)
    if path.suffix == ".safetensors" or head[8:9] == b"{":
        from tfgbench.checkpoints import load_checkpoint

        state, config_dict, meta = load_checkpoint(path)
        config = TalkLipConfig.from_dict(config_dict)
        model = generator_from_state(state, config, str(path))
    else:
        model, config = load_official_talklip(path)
        meta = {"training_data": "official TalkLip checkpoint (LRS2)"}
    return model.eval(), config, meta


def audio_encoder_init(path: str | Path) -> tuple[dict[str, torch.Tensor], AVHubertConfig]:
    """Encoder weights to start a generator's audio encoder from -> (``w2v_model.*`` state for
    ``TalkLip.audio_encoder``, its config).

    Accepts a tfgbench AV-HuBERT safetensors (pre-trained or seq2seq: ``encoder.w2v_model.*``,
    ``w2v_model.*`` or bare encoder keys) or a fairseq ``.pt`` (the official start is the pre-trained
    ``base_vox_iter5.pt``, bare ``AVHubertModel`` keys; read with the restricted unpickler). Decoder,
    pre-training-only (``label_embs_concat``, ``final_proj``, ``target_glu``) and other heads' keys
    (``avsync.*``) are left out."""
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"audio-encoder initialisation not found: {path}")
    with open(path, "rb") as f:
        head = f.read(9)
    heads = None
    if path.suffix == ".safetensors" or head[8:9] == b"{":
        from tfgbench.checkpoints import load_checkpoint

        state, config, _ = load_checkpoint(path)
    else:
        from tfgbench.readers.fairseq_checkpoint import load_fairseq_checkpoint

        ckpt = load_fairseq_checkpoint(path)
        state, config = ckpt.model, {}
        model_cfg = ckpt.cfg.get("model") or {}
        model_cfg = model_cfg.get("w2v_args", {}).get("model", model_cfg) if isinstance(model_cfg, dict) else {}
        heads = model_cfg.get("encoder_attention_heads") if isinstance(model_cfg, dict) else None
    out = {}
    for key, value in state.items():
        for prefix in ("encoder.w2v_model.", "w2v_model.", ""):
            if key.startswith(prefix):
                rest = key[len(prefix):]
                break
        if prefix == "" and key.startswith(("decoder.", "avsync.")):
            continue
        if rest.startswith(("label_embs_concat", "final_proj.", "target_glu.")):
            continue
        out["w2v_model." + rest] = value
    if "w2v_model.post_extract_proj.weight" not in out:
        raise TfgbenchError(f"{path}: no AV-HuBERT encoder weights in this file (expected "
                            "encoder.w2v_model.*, w2v_model.* or bare AVHubertModel keys)")
    if "encoder_embed_dim" in config:
        cfg = AVHubertConfig.from_dict(config)
    else:
        cfg = encoder_config_from_state(out, "w2v_model.", str(path))
        if heads:
            cfg.encoder_attention_heads = int(heads)
    return out, cfg
