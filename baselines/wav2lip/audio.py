"""Wav2Lip's audio features: the official ``audio.py`` mel spectrogram and ``inference.py`` chunking.

``melspectrogram(wav)`` follows the official pipeline with the official ``hparams.py`` values:

1. pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]`` (``scipy.signal.lfilter([1, -0.97], [1], x)``);
2. ``|STFT|`` with n_fft = win = 800 (50 ms), hop 200 (12.5 ms -> 80 frames/s), periodic Hann
   window, centred frames padded by **reflection** (librosa 0.7's default, which the official
   models were trained with; librosa >= 0.10 pads with zeros and changes the first and last two
   frames by up to ~2 after normalisation);
3. Slaney mel basis, 80 bands, 55-7600 Hz (the official positional ``librosa.filters.mel`` call
   fails on librosa >= 0.10; the same basis is requested here by keyword);
4. ``S = 20 log10(max(1e-5, mel)) - 20`` (min_level_db -100, ref_level_db 20);
5. ``clip(8 (S + 100) / 100 - 4, -4, 4)`` (symmetric, max_abs_value 4).

Result: ``(80, 1 + len(wav) // 200)`` float32 in [-4, 4].
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 800
HOP = 200
WIN = 800
NUM_MELS = 80
FMIN, FMAX = 55.0, 7600.0
PREEMPHASIS = 0.97
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS_VALUE = 4.0
#: mel frames per second (16000 / 200)
MEL_FPS = SAMPLE_RATE / HOP
#: columns of one mel chunk fed with one video frame (0.2 s)
MEL_STEP = 16

_mel_basis: np.ndarray | None = None


def mel_basis() -> np.ndarray:
    """``(80, 401)`` Slaney-normalised mel filter bank, 55-7600 Hz (cached)."""
    global _mel_basis
    if _mel_basis is None:
        import librosa

        _mel_basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=NUM_MELS, fmin=FMIN, fmax=FMAX)
    return _mel_basis


def preemphasis(wav: np.ndarray, k: float = PREEMPHASIS) -> np.ndarray:
    """``y[n] = x[n] - k x[n-1]`` (y[0] = x[0])."""
    from scipy import signal

    return signal.lfilter([1, -k], [1], wav)


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """Official Wav2Lip mel spectrogram of 16 kHz mono ``wav`` (N,): ``(80, 1 + N // 200)`` float32
    in [-4, 4] (see the module docstring for the formula)."""
    import librosa

    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"melspectrogram expects mono audio of shape (N,), got {wav.shape}")
    stft = librosa.stft(y=preemphasis(wav), n_fft=N_FFT, hop_length=HOP, win_length=WIN,
                        center=True, pad_mode="reflect")
    mel = np.dot(mel_basis(), np.abs(stft))
    min_level = np.exp(MIN_LEVEL_DB / 20 * np.log(10))
    db = 20 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    norm = (2 * MAX_ABS_VALUE) * ((db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB)) - MAX_ABS_VALUE
    return np.clip(norm, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)


def chunk_starts(num_mel_frames: int, fps: float = 25.0) -> list[int]:
    """Start columns of the official inference chunks: ``int(i * 80 / fps)`` while a full
    16-column chunk fits, then one last chunk taken from the end (``num_mel_frames - 16``).
    The number of chunks follows the audio length, not the video's (1.2 s -> 97 mel frames -> 27)."""
    if num_mel_frames < MEL_STEP:
        raise ValueError(f"audio too short for one mel chunk: {num_mel_frames} mel frames < {MEL_STEP}")
    step = MEL_FPS / fps
    starts = []
    i = 0
    while True:
        start = int(i * step)
        if start + MEL_STEP > num_mel_frames:
            starts.append(num_mel_frames - MEL_STEP)
            return starts
        starts.append(start)
        i += 1


def mel_chunks(mel: np.ndarray, fps: float = 25.0) -> np.ndarray:
    """``(80, M)`` mel -> ``(K, 80, 16)`` chunks at :func:`chunk_starts`."""
    return np.stack([mel[:, s:s + MEL_STEP] for s in chunk_starts(mel.shape[1], fps)])
