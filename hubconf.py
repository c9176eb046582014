"""torch.hub entry points: ``torch.hub.load(<checkout>, 'syncnet', source='local', weights=FILE)``.

Returns a :class:`tfgbench.metrics.lse.scorer.SyncScorer`: ``scorer.score_file('video.mp4')`` or
``scorer.score_frames(rgb_frames, audio_16k)`` give ``offset``, ``lse_c``, ``lse_d``;
``scorer.model`` is the SyncNet (``forward_aud``, ``forward_lip``, ``embed_video``). Nothing is
downloaded: ``weights`` is the local ``syncnet_v2.model`` (or a tfgbench checkpoint for the
synthetic protocol).
"""

dependencies = ["torch", "numpy", "av", "cv2", "python_speech_features"]


def syncnet(weights=None, protocol: str = "lse/wav2lip", device: str = "cpu", s3fd=None):
    """The LSE scorer for ``protocol`` with SyncNet ``weights`` (``syncnet_v2.model``)."""
    from tfgbench.metrics.lse.scorer import SyncScorer

    return SyncScorer(protocol, weights=weights, device=device, s3fd=s3fd)


def syncnet_synthetic(weights=None, device: str = "cpu"):
    """The scorer of the synthetic corpus (its shipped SyncNet unless ``weights`` is given)."""
    from tfgbench.metrics.lse.scorer import SyncScorer

    return SyncScorer("lse/synthetic", weights=weights, device=device)
