"""The official SyncNet scoring, vectorised (torch; see :mod:`tfgbench.metrics.lse.protocols`).

Shapes: a clip ``(T, C, S, S)`` float BGR, MFCC ``(13, M)``, ``n = min(T, floor(N/640)) - 5``
windows, features ``(n, D)``, distances ``(n, 2 vshift + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tfgbench.data.sample import SAMPLES_PER_FRAME
from tfgbench.metrics.lse.protocols import ClipTooShortError, DegenerateSyncError, SilentAudioError

SILENCE_PEAK = 1e-4


@dataclass
class SyncResult:
    """One clip's scores: ``offset`` (frames), ``lse_c`` (median - min), ``lse_d`` (min mean
    distance), ``num_windows`` and the mean distance per shift ``mean_dists`` ``(2 vshift + 1,)``."""

    offset: int
    lse_c: float
    lse_d: float
    num_windows: int
    mean_dists: np.ndarray

    def as_dict(self) -> dict:
        return {"offset": self.offset, "lse_c": self.lse_c, "lse_d": self.lse_d}


def num_windows(num_frames: int, num_samples: int) -> int:
    """``lastframe = min(T, floor(N / 640)) - 5``: the official window count (may be <= 0)."""
    return min(num_frames, num_samples // SAMPLES_PER_FRAME) - 5


def quantize_audio(audio: np.ndarray) -> np.ndarray:
    """float audio in [-1, 1] -> the int16 values ffmpeg's ``pcm_s16le`` extraction writes
    (``lrintf(x * 32768)`` clipped), returned as float32 ``k / 32768``."""
    q = np.clip(np.rint(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767)
    return (q / 32768.0).astype(np.float32)


def check_audio(audio: np.ndarray, where: str) -> None:
    """Raise :class:`SilentAudioError` for silent audio (peak below ``SILENCE_PEAK``)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if not peak >= SILENCE_PEAK:
        raise SilentAudioError(f"{where}: the audio is silent (peak {peak:.2g} < {SILENCE_PEAK:g} "
                               "full scale); lip sync cannot be measured")


def audio_windows(mfcc: np.ndarray, n: int) -> torch.Tensor:
    """``(n, 1, 13, 20)`` MFCC windows: window ``v`` = columns ``4v .. 4v+19``."""
    m = torch.from_numpy(np.ascontiguousarray(mfcc, dtype=np.float32))
    return m.unfold(1, 20, 4)[:, :n].permute(1, 0, 2).unsqueeze(1).contiguous()


def shift_distances(vfeat: torch.Tensor, afeat: torch.Tensor, vshift: int, block: int = 256) -> torch.Tensor:
    """``d[v, j] = pairwise_distance(vfeat[v], pad(afeat)[v + j])``, ``(n, 2 vshift + 1)``."""
    win = 2 * vshift + 1
    padded = F.pad(afeat, (0, 0, vshift, vshift))
    offsets = torch.arange(win)
    out = []
    for start in range(0, len(vfeat), block):
        v = vfeat[start:start + block]
        idx = torch.arange(start, start + len(v))[:, None] + offsets[None, :]
        out.append(F.pairwise_distance(v[:, None, :].expand(-1, win, -1), padded[idx]))
    return torch.cat(out) if out else vfeat.new_zeros(0, win)


def summarize(dists: torch.Tensor, vshift: int, where: str = "clip") -> SyncResult:
    """Mean distance per shift -> offset, LSE-C, LSE-D (official ``torch.min`` / ``median``).

    A degenerate result raises :class:`DegenerateSyncError` instead of returning numbers that carry
    no information: non-finite distances, or LSE-C exactly 0 (at least half of the shifts tie at the
    minimum distance, e.g. every shift at one distance, where the official code reports offset
    ``vshift`` from the first index: a boundary value that looks like a measurement)."""
    mdist = dists.mean(0)
    if not bool(torch.isfinite(mdist).all()):
        raise DegenerateSyncError(f"{where}: SyncNet distances are not finite (NaN or infinite); no LSE score")
    minval, minidx = torch.min(mdist, 0)
    conf = torch.median(mdist) - minval
    if float(conf) == 0.0:
        ties = int((mdist == minval).sum())
        raise DegenerateSyncError(
            f"{where}: degenerate sync score: {ties} of {len(mdist)} shifts give the same minimum mean distance "
            f"({float(minval):.6g}), so LSE-C is exactly 0 and the offset is arbitrary; no LSE score")
    return SyncResult(offset=int(vshift - int(minidx)), lse_c=float(conf), lse_d=float(minval),
                      num_windows=len(dists), mean_dists=mdist.numpy().copy())


@torch.no_grad()
def evaluate_clip(model, clip: torch.Tensor, audio: np.ndarray, vshift: int = 15,
                  where: str = "clip", audio_batch: int = 256) -> SyncResult:
    """Score one clip with a SyncNet (:class:`~tfgbench.metrics.lse.syncnet.SyncNetS`).

    Args:
        model: in eval mode.
        clip: ``(T, C, S, S)`` float frames as the network expects them (BGR 0-255 officially).
        audio: ``(N,)`` float32 at 16 kHz, already int16-quantised (:func:`quantize_audio`).
        vshift: shifts ``-vshift .. +vshift`` frames.
    """
    result = evaluate_clips(model, [clip], [audio], vshift, [where], audio_batch)[0]
    if isinstance(result, Exception):
        raise result
    return result


def _audio_windows(clip_len: int, audio: np.ndarray, where: str) -> torch.Tensor:
    """The clip's MFCC windows ``(n, 1, 13, 20)``; raises for a clip too short or silent audio."""
    from tfgbench.media.features import mfcc

    n = num_windows(clip_len, len(audio))
    if n < 1:
        raise ClipTooShortError(
            f"{where}: {clip_len} frames and {len(audio) / 16000:.2f} s of audio give "
            f"{min(clip_len, len(audio) // SAMPLES_PER_FRAME)} usable frames; LSE needs at least 6 "
            "(5-frame windows under the official lastframe rule)")
    check_audio(audio, where)
    feats = mfcc(audio[: (n + 5) * SAMPLES_PER_FRAME + 400])  # enough samples for every window
    return audio_windows(feats, n)


@torch.no_grad()
def evaluate_clips(model, clips: list[torch.Tensor], audios: list[np.ndarray], vshift: int = 15,
                   wheres: list[str] | None = None, audio_batch: int = 256) -> list[SyncResult | Exception]:
    """:func:`evaluate_clip` of several clips whose windows share the network passes (both towers);
    a clip that cannot be scored yields its exception, the others are scored. One clip runs exactly
    :func:`evaluate_clip`'s passes; in a batch a window's embedding can differ from its one-clip value
    by float rounding (another batch shape for the same convolution), never more."""
    wheres = wheres or ["clip"] * len(clips)
    out: list[SyncResult | Exception | None] = [None] * len(clips)
    ready: list[tuple[int, torch.Tensor]] = []
    for i, (clip, audio, where) in enumerate(zip(clips, audios, wheres, strict=True)):
        try:
            ready.append((i, _audio_windows(len(clip), audio, where)))
        except Exception as e:  # noqa: BLE001 - this clip's error; the others go on
            out[i] = e
    if ready:
        device = next(model.parameters()).device
        nums = [len(w) for _, w in ready]
        windows = torch.cat([w for _, w in ready]).to(device)
        afeat = torch.cat([model.forward_aud(windows[i:i + audio_batch])
                           for i in range(0, len(windows), audio_batch)]).float().cpu().split(nums)
        vfeats = model.embed_videos([clips[i].to(device) for i, _ in ready], nums)
        for (i, _), v, a in zip(ready, vfeats, afeat):
            try:  # a degenerate clip (DegenerateSyncError) fails alone
                out[i] = summarize(shift_distances(v.float().cpu(), a, vshift), vshift, wheres[i])
            except Exception as e:  # noqa: BLE001 - this clip's error; the others go on
                out[i] = e
    return out  # type: ignore[return-value]
