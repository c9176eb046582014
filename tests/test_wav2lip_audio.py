"""Wav2Lip mel spectrogram against an independent numpy computation, and the chunk indexing."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.wav2lip.audio import chunk_starts, mel_basis, mel_chunks, melspectrogram


def reference_mel(wav: np.ndarray, pad_mode: str) -> np.ndarray:
    """hparams.py + audio.py written out with numpy: pre-emphasis, centred |STFT| (n_fft = win = 800,
    hop 200, periodic Hann), mel basis, dB, symmetric normalisation to [-4, 4]."""
    x = wav.astype(np.float64)
    y = x.copy()
    y[1:] -= 0.97 * x[:-1]
    padded = np.pad(y, 400, mode=pad_mode)
    frames = 1 + (len(padded) - 800) // 200
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 800)
    spec = np.stack([np.abs(np.fft.rfft(padded[i * 200:i * 200 + 800] * window)) for i in range(frames)], axis=1)
    db = 20 * np.log10(np.maximum(1e-5, mel_basis().astype(np.float64) @ spec)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4)


@pytest.fixture(scope="module")
def speechlike() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(19200) / 16000     # 1.2 s
    wav = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t)) + 0.05 * rng.standard_normal(t.size)
    return wav.astype(np.float32)


def test_mel_matches_independent_numpy_computation(speechlike):
    mel = melspectrogram(speechlike)
    assert mel.shape == (80, 97) and mel.dtype == np.float32
    np.testing.assert_allclose(mel, reference_mel(speechlike, "reflect"), atol=2e-3)


def test_stft_padding_is_reflect_not_librosa_0_10_zeros(speechlike):
    mel = melspectrogram(speechlike)
    zeros = reference_mel(speechlike, "constant")
    edges = [0, 1, 95, 96]
    # zero padding (librosa >= 0.10's default) changes the first and last two frames ...
    assert np.abs(mel[:, edges] - zeros[:, edges]).max() > 0.1
    # ... and nothing in between
    np.testing.assert_allclose(mel[:, 2:95], zeros[:, 2:95], atol=2e-3)


def test_silence_is_the_floor():
    assert np.all(melspectrogram(np.zeros(16000, np.float32)) == -4.0)


def test_mel_basis_is_slaney_55_to_7600():
    basis = mel_basis()
    assert basis.shape == (80, 401)
    freqs = np.arange(401) * 8000 / 400
    used = freqs[basis.sum(axis=0) > 0]
    assert 55 <= used.min() < 80 and 7500 < used.max() <= 7600


def test_chunks_follow_the_audio_length():
    starts = chunk_starts(97)   # 1.2 s of audio -> 1 + 19200 // 200 mel frames
    assert len(starts) == 27
    assert starts[:6] == [0, 3, 6, 9, 12, 16]
    assert starts[:26] == [int(i * 80 / 25) for i in range(26)]
    assert starts[-1] == 97 - 16            # last chunk from the end
    assert chunk_starts(16) == [0, 0]        # as the official loop: the end chunk is always appended
    with pytest.raises(ValueError, match="too short"):
        chunk_starts(15)
    mel = np.arange(80 * 97, dtype=np.float32).reshape(80, 97)
    chunks = mel_chunks(mel)
    assert chunks.shape == (27, 80, 16)
    assert np.array_equal(chunks[5], mel[:, 16:32]) and np.array_equal(chunks[-1], mel[:, 81:97])
