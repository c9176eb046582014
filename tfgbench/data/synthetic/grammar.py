"""GRID grammar: six slots, 51 words (Cooke et al. 2006, "An audio-visual corpus for speech
perception and automatic speech recognition").

A sentence is ``command colour preposition letter digit adverb``, e.g. ``"bin blue at f two now"``.
The transcript uses the lower-case GRID words (the letter slot is the bare letter, ``"a"``);
what espeak-ng is asked to say differs only where it would mis-read a word (:data:`SPOKEN`).
"""

from __future__ import annotations

import numpy as np

COMMANDS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple("abcdefghijklmnopqrstuvxyz")  # 25 letters: GRID leaves out "w"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")

SLOTS: tuple[tuple[str, ...], ...] = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
SLOT_NAMES = ("command", "colour", "preposition", "letter", "digit", "adverb")

#: the 51 words, in slot order (a reader's vocabulary)
VOCABULARY: tuple[str, ...] = tuple(w for slot in SLOTS for w in slot)

#: how espeak-ng is asked to say a word when the word itself would be mis-read. A lone "a"
#: (also "A") is read as the article, a schwa; "eh" is read /eɪ/ by both the en and en-us voices.
SPOKEN = {"a": "eh"}


def sample_sentence(rng: np.random.Generator) -> list[str]:
    """One GRID sentence (six words), each slot drawn uniformly."""
    return [slot[int(rng.integers(len(slot)))] for slot in SLOTS]


def spoken_text(words: list[str]) -> tuple[str, list[int]]:
    """The text handed to espeak-ng and the 1-based character offset where each word starts
    (espeak's event ``text_position`` is 1-based)."""
    parts, starts, pos = [], [], 1
    for w in words:
        s = SPOKEN.get(w, w)
        starts.append(pos)
        parts.append(s)
        pos += len(s) + 1
    return " ".join(parts), starts


def check_words(words: list[str]) -> None:
    """Raise ``ValueError`` unless ``words`` is a GRID sentence."""
    if len(words) != len(SLOTS) or any(w not in slot for w, slot in zip(words, SLOTS)):
        raise ValueError(f"not a GRID sentence: {' '.join(words)!r}")
