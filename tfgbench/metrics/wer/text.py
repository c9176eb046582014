"""Text normalisation and word-error counts shared by every WER protocol.

Normalisation (:func:`normalize_text`), applied to references and hypotheses alike:

1. Unicode NFKC;
2. lower case (AV-HuBERT lower-cases references before encoding them; TalkLip's observer 2
   upper-cases everything; WER is case-blind in both);
3. whitespace collapsed, words split at whitespace.

Nothing else: punctuation is kept, because the official scripts keep it (LRS2/LRS3 references
contain apostrophes, e.g. ``don't``, and both official scorers count them as part of the word).
On LRS2/LRS3 and GRID transcripts this equals the official text handling.

Counts (:func:`word_errors`): Levenshtein alignment of word lists by jiwer; ``edits`` =
substitutions + deletions + insertions, ``words`` = reference words. Corpus WER =
``sum(edits) / sum(words)`` (AV-HuBERT ``infer_s2s.py``); per-utterance WER = mean of
``edits / words`` (TalkLip ``teacher_force_wer.py``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from tfgbench.errors import TfgbenchError


class EmptyTranscriptError(TfgbenchError):
    """The reference transcript has no words: WER is undefined (would divide by zero)."""


def normalize_text(text: str) -> str:
    """NFKC, lower case, single spaces (see module docstring)."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


@dataclass(frozen=True)
class WordErrors:
    edits: int
    words: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def wer(self) -> float:
        return self.edits / self.words


def word_errors(reference: str | None, hypothesis: str, where: str = "sample") -> WordErrors:
    """Word errors of ``hypothesis`` against ``reference`` after :func:`normalize_text`.

    Raises :class:`EmptyTranscriptError` naming ``where`` when the reference is missing or empty.
    """
    import jiwer

    ref = normalize_text(reference or "")
    if not ref:
        raise EmptyTranscriptError(f"{where}: the reference transcript is empty; WER needs at least one "
                                   "reference word")
    hyp = normalize_text(hypothesis)
    out = jiwer.process_words(ref, hyp)
    edits = out.substitutions + out.deletions + out.insertions
    return WordErrors(edits, out.substitutions + out.deletions + out.hits, out.substitutions,
                      out.deletions, out.insertions)
