"""Synthetic corpus: GRID grammar and espeak-ng speech with phoneme-event timing."""

from __future__ import annotations

import numpy as np
import pytest

from tfgbench.data.synthetic import grammar, speech
from tfgbench.errors import MissingResourceError

MALE = speech.Voice()
FEMALE = speech.Voice(gender="female", pitch_hz=(180, 260), formants=(112, 110, 108, 106, 104))


def say(words: list[str], voice: speech.Voice = MALE, seed: int = 0) -> speech.Speech:
    text, starts = grammar.spoken_text(words)
    return speech.synthesize(text, voice, starts, seed=seed)


def test_grid_grammar_has_51_words_in_six_slots():
    assert len(grammar.VOCABULARY) == 51 == len(set(grammar.VOCABULARY))
    assert [len(s) for s in grammar.SLOTS] == [4, 4, 4, 25, 10, 4]
    assert "w" not in grammar.LETTERS
    rng = np.random.default_rng(0)
    for _ in range(50):
        words = grammar.sample_sentence(rng)
        grammar.check_words(words)
    with pytest.raises(ValueError):
        grammar.check_words(["bin", "blue", "at", "w", "two", "now"])
    text, starts = grammar.spoken_text(["bin", "blue", "at", "a", "two", "now"])
    assert text == "bin blue at eh two now"
    assert [text[s - 1:].split()[0] for s in starts] == ["bin", "blue", "at", "eh", "two", "now"]


def test_phoneme_events_give_word_aligned_uneven_times():
    words = ["bin", "blue", "at", "f", "two", "now"]
    sp = say(words)
    assert sp.audio.dtype == np.float32 and sp.audio.ndim == 1
    dur = sp.audio.size / 16000
    starts = np.array([p.start for p in sp.phones])
    assert np.all(np.diff(starts) >= 0) and starts[0] >= 0 and sp.phones[-1].end <= dur + 1e-6
    spoken = [p.symbol for p in sp.phones if p.word >= 0]
    assert spoken[:3] == ["b", "ɪ", "n"] and "uː" in spoken
    # every word gets its own phonemes, in order
    assert sorted({p.word for p in sp.phones if p.word >= 0}) == list(range(6))
    times = sp.word_times(6)
    assert all(a < b for a, b in times) and all(times[i][1] <= times[i + 1][0] + 1e-9 for i in range(5))
    # real event times, not an even spread: phoneme durations vary a lot
    durs = np.array([p.end - p.start for p in sp.phones if p.word >= 0])
    assert durs.std() / durs.mean() > 0.3


def test_phoneme_times_match_the_sound():
    sp = say(["place", "red", "by", "m", "five", "soon"])
    a = sp.audio.astype(np.float64)

    def rms(t0: float, t1: float) -> float:
        seg = a[int(t0 * 16000):int(t1 * 16000)]
        return float(np.sqrt(np.mean(seg ** 2))) if seg.size else 0.0

    vowels = [p for p in sp.phones if p.symbol in ("eɪ", "ɛ", "aɪ", "uː")]
    assert len(vowels) >= 4
    loud = np.median([rms(p.start, p.end) for p in vowels])
    # the first phoneme starts where the sound starts: near silence before it
    first = sp.phones[0]
    assert rms(0, first.start) < 0.05 * loud if first.start > 0.005 else True
    # vowels are much louder than the stop closure just before a release (p of "place")
    p_release = next(p for p in sp.phones if p.symbol == "p")
    assert rms(max(p_release.start - 0.03, 0), p_release.start) < 0.3 * loud


def test_letter_a_is_said_as_the_letter_name():
    sp = say(["lay", "green", "in", "a", "zero", "please"])
    assert [p.symbol for p in sp.phones if p.word == 3] == ["eɪ"]


def _f0(audio: np.ndarray, sr: int = 16000) -> float:
    """Median autocorrelation pitch over voiced 40 ms windows."""
    out = []
    for i in range(0, audio.size - 640, 320):
        w = audio[i:i + 640].astype(np.float64)
        if np.sqrt(np.mean(w ** 2)) < 0.02:
            continue
        ac = np.correlate(w, w, "full")[639:]
        lo, hi = sr // 400, sr // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            out.append(sr / lag)
    return float(np.median(out))


def test_voices_differ_and_variant_file_is_used():
    words = ["set", "white", "with", "o", "nine", "again"]
    male, female = say(words, MALE), say(words, FEMALE)
    assert _f0(female.audio) > 1.4 * _f0(male.audio)
    slow = say(words, speech.Voice(rate=130))
    assert slow.audio.size > 1.15 * male.audio.size


def test_synthesis_is_deterministic_whatever_was_said_before():
    words = ["bin", "green", "by", "t", "six", "please"]
    breathy = speech.Voice(base="en-us", breath=4, roughness=2)
    first = say(words, breathy, seed=3)
    say(["lay", "red", "at", "k", "one", "soon"], FEMALE, seed=9)  # state that must not leak
    again = say(words, breathy, seed=3)
    assert np.array_equal(first.audio, again.audio)
    assert [(p.symbol, p.start) for p in first.phones] == [(p.symbol, p.start) for p in again.phones]


def test_missing_espeak_names_the_remedy(monkeypatch):
    monkeypatch.setenv("TFGBENCH_ESPEAK", "/nonexistent/libespeak-ng.so")
    with pytest.raises(MissingResourceError, match="espeak-english"):
        speech.find_backend()
