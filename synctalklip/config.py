"""Sizes and recipe of AV-SyncNet (SyncTalklip stage 1): one dataclass, ``tiny`` and ``paper``.

``paper`` is the paper's section 4 setting: AV-HuBERT Large (24 layers, 1024-d, 4096 FFN, 16 heads;
9 x 1024 decoder, 8 heads), 96x96 face crops for the generator, five clustering iterations. ``tiny``
is the same code at CPU scale (the shipped evaluator reader's sizes: 3 x 128 encoder, 2 x 128
decoder, quarter-width ResNet-18) with two clustering iterations.

Choices where the paper is silent (all recorded here; the README quotes them):

* ``F`` (eq. 5/11) is a learned ``Linear(D, D)`` on the *audio* embedding, initialised to the
  identity. The official code (``models/learn_sync.py``: ``av_sync.Linearaudio``) has exactly one
  learned linear layer in its L1 sync module and applies it to the audio features before the L1
  distance; a scalar linear map applied *after* the distance would be minimised by a negative slope
  (the loss has no lower bound), so we read ``F(||f^a - f^v||_1 tau)`` as
  ``tau * ||F(f^a) - f^v||_1`` summed over the embedding dimension.
* ``tau``: ``1 / D`` by default (``tau * ||.||_1`` = mean absolute difference per dimension, O(1) at
  every width; the official SupConLoss temperature 0.07 is not used by its L1 branch). Features are
  the raw encoder outputs (no L2 normalisation): encoder outputs of both modalities pass through the
  same final LayerNorm, so its shared bias cancels in ``f^a - f^v`` and cannot be grown to fake
  alignment (with L2-normalised features a large shared bias would make every pair look aligned).
* ``L_av`` reduction: mean over the valid (non-padding) frames of the batch (official code:
  ``sum / N`` frames). ``lambda_av = lambda_lip = 1`` (``plain``: ``lambda_av = 0``).
* ``conv`` variant (section 3.4, "global level"): a depthwise temporal convolution of
  ``conv_kernel`` frames whose taps are a per-channel softmax (a learned convex temporal average),
  applied to ``f^a`` and ``f^v`` (shared weights) before ``F`` and the distance. A free convolution
  trained only by a positive-pair L1 loss collapses to zero weights (distance 0 for every pair); the
  convex taps cannot. Initialised uniform (receptive field ``conv_kernel`` frames from the start).
* eq. 3: ``alpha = 0`` (HuBERT/AV-HuBERT ``pred_nomask_weight`` default), masking and modality
  dropout as AV-HuBERT's ``large_vox_iter*.yaml`` (audio 0.8 x 10 frames, video 0.3 x 5 frames,
  modality dropout 0.5, audio dropout 0.5); k = 50 then 100 at tiny, AV-HuBERT's 100, 500, 1000,
  1000, 2000 at paper size; iteration 1 clusters MFCCs, later ones the layer-``cluster_layer`` output.
* tiny: the video ResNet is pre-trained by AV-sync InfoNCE (:mod:`tfgbench.readers.pretrain`, own
  seed) and frozen afterwards (features cached), as the shipped synthetic reader; paper size trains
  it. Fine-tuning: AdamW (betas 0.9/0.98, weight decay 0.01), one-cycle LR, gradient clip 5,
  dropout 0.1, label smoothing 0.1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

VARIANTS = ("base", "conv", "plain")
SIZES = ("tiny", "paper")


@dataclass
class AVSyncNetConfig:
    """Everything that defines an AV-SyncNet run except data paths and seeds."""

    size: str = "tiny"
    variant: str = "base"
    # --- network (tfgbench.readers.avhubert.AVHubertConfig fields; vocab_size set from the codec)
    encoder: dict[str, Any] = field(default_factory=dict)
    face_size: int = 96                # generator face crops (stage 2); the lip expert reads 44x44 mouth ROIs
    # --- fine-tuning (eq. 4-6)
    tau: float | None = None           # None -> 1 / encoder_embed_dim
    lambda_av: float = 1.0
    lambda_lip: float = 1.0
    conv_kernel: int = 5
    label_smoothing: float = 0.1       # AV-HuBERT's label_smoothed_cross_entropy (fairseq formula)
    finetune_steps: int = 800
    finetune_batch: int = 32
    finetune_lr: float = 1e-3
    dropout: float = 0.1
    freeze_frontend: bool = True       # tiny: the AV-sync pre-trained ResNet stays frozen (features cached)
    crops: int = 2                     # cached front-end crops per clip (centre + random)
    # --- pre-training (eq. 3), AV-HuBERT large_vox_iter*.yaml masking settings
    frontend_pretrain_steps: int = 150   # AV-sync InfoNCE of the ResNet front end (tfgbench.readers.pretrain)
    pretrain_iterations: int = 2
    pretrain_steps: int = 700            # per iteration
    pretrain_batch: int = 16
    pretrain_lr: float = 2e-3
    clusters: tuple[int, ...] = (50, 100)   # k of each iteration (iteration 1: MFCC, then model features)
    cluster_layer: int = 2               # encoder layer whose output is clustered (1-based)
    kmeans_frames: int = 40000           # frames sampled for k-means
    alpha: float = 0.0                   # weight of the unmasked frames in eq. 3 (HuBERT pred_nomask_weight)
    mask_prob_audio: float = 0.8
    mask_length_audio: int = 10
    mask_prob_video: float = 0.3
    mask_length_video: int = 5
    modality_dropout: float = 0.5
    audio_dropout: float = 0.5
    final_dim: int = 64                  # HuBERT-style projection for cosine logits over cluster embeddings
    logit_temp: float = 0.1

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {self.size!r}")
        self.clusters = tuple(int(k) for k in self.clusters)
        if self.variant == "plain":
            self.lambda_av = 0.0

    @classmethod
    def tiny(cls, variant: str = "base", **kw: Any) -> AVSyncNetConfig:
        """3 x 128 encoder, 2 x 128 decoder, quarter-width ResNet-18; two clustering iterations."""
        return cls(size="tiny", variant=variant, **kw)

    @classmethod
    def paper(cls, variant: str = "base", **kw: Any) -> AVSyncNetConfig:
        """AV-HuBERT Large (24 x 1024, FFN 4096, 16 heads; 9 x 1024 decoder), five iterations."""
        d = dict(size="paper", variant=variant, encoder={"size": "large"}, freeze_frontend=False, crops=1,
                 pretrain_iterations=5, clusters=(100, 500, 1000, 1000, 2000), cluster_layer=12,
                 final_dim=256, finetune_batch=8, finetune_lr=1e-4, pretrain_lr=5e-4, kmeans_frames=200000)
        d.update(kw)
        return cls(**d)

    def avhubert_config(self, vocab_size: int) -> Any:
        """The :class:`tfgbench.readers.avhubert.AVHubertConfig` of the network."""
        from tfgbench.readers.avhubert import AVHubertConfig

        enc = dict(self.encoder)
        size = enc.pop("size", "tiny" if self.size == "tiny" else "large")
        return getattr(AVHubertConfig, size)(vocab_size=vocab_size, dropout=self.dropout, **enc)

    def resolved_tau(self, dim: int) -> float:
        return float(self.tau) if self.tau is not None else 1.0 / dim

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["clusters"] = list(self.clusters)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AVSyncNetConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def pretrain_key(self) -> dict[str, Any]:
        """The settings that determine the pre-training result (shared by the three variants)."""
        names = ("size", "encoder", "dropout", "freeze_frontend", "crops", "frontend_pretrain_steps",
                 "pretrain_iterations", "pretrain_steps", "pretrain_batch", "pretrain_lr", "clusters",
                 "cluster_layer", "kmeans_frames", "alpha", "mask_prob_audio", "mask_length_audio",
                 "mask_prob_video", "mask_length_video", "modality_dropout", "audio_dropout", "final_dim",
                 "logit_temp")
        d = self.to_dict()
        return {k: d[k] for k in names}


SyncTalklipConfig = AVSyncNetConfig
