"""Audio features as the reference implementations compute them (numpy in, numpy out).

* :func:`mfcc`: syncnet_python's input, ``python_speech_features.mfcc(audio, 16000)`` with the
  library defaults (25 ms window, 10 ms step -> 100 Hz, 13 cepstra, 26 filters, nfft 512,
  preemphasis 0.97, lifter 22, energy in c0).
* :func:`stacked_logfbank`: AV-HuBERT's input, ``logfbank`` (26 filters, 100 Hz) stacked by 4
  -> 104-d at 25 Hz, zero-padded to a multiple of 4, then aligned to the video length (pad zeros
  or cut the end) and, when ``normalize``, layer-normalised per frame over the 104 features.
"""

from __future__ import annotations

import numpy as np

from tfgbench.data.sample import SAMPLE_RATE


def _pcm16_scale(audio: np.ndarray) -> np.ndarray:
    """The reference code reads 16-bit WAV files with scipy, so features see int16-scaled values."""
    return np.asarray(audio, dtype=np.float64) * 32768.0


def mfcc(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(13, T_mfcc)`` float32 MFCCs of float audio in [-1, 1] at 100 Hz (syncnet_python).

    syncnet_python reads the 16-bit WAV with ``scipy.io.wavfile.read`` (int16 values) and passes
    them straight to ``python_speech_features.mfcc``; the same scaling is applied here.
    """
    import python_speech_features as psf

    return psf.mfcc(_pcm16_scale(audio), sample_rate).T.astype(np.float32)


def stacked_logfbank(audio: np.ndarray, num_frames: int | None = None, stack: int = 4,
                     normalize: bool = True, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(T, 26 * stack)`` float32 AV-HuBERT audio features at 25 Hz.

    Args:
        audio: mono float audio in [-1, 1] (scaled to int16 range as AV-HuBERT's wavfile read does).
        num_frames: video length to align to (pad zeros / cut the end), or ``None`` to keep.
        stack: frames of 100 Hz features stacked into one 25 Hz frame.
        normalize: per-frame layer norm over features (``F.layer_norm(x, x.shape[1:])``).
    """
    import python_speech_features as psf

    feats = psf.logfbank(_pcm16_scale(audio), samplerate=sample_rate).astype(np.float32)
    if len(feats) % stack:
        feats = np.concatenate([feats, np.zeros((stack - len(feats) % stack, feats.shape[1]), np.float32)])
    feats = feats.reshape(-1, stack * feats.shape[1])
    if num_frames is not None:
        if len(feats) < num_frames:
            feats = np.concatenate([feats, np.zeros((num_frames - len(feats), feats.shape[1]), np.float32)])
        feats = feats[:num_frames]
    if normalize:
        mean = feats.mean(axis=1, keepdims=True)
        var = feats.var(axis=1, keepdims=True)
        feats = (feats - mean) / np.sqrt(var + 1e-5)
    return feats.astype(np.float32)
