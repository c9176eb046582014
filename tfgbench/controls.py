"""Controls for generators: the same clip driven by another clip's audio.

A generator that follows the audio must score clearly worse, against the clip's own audio and
transcript, when it is driven by another clip's speech; one that ignores the audio scores the same.
:func:`with_audio_of` builds the driving sample; :func:`audio_swap_scores` runs a model both ways
and scores both outputs against the real clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from tfgbench.data.sample import Sample


def with_audio_of(sample: Sample, other: Sample) -> Sample:
    """``sample`` with ``other``'s audio, cut or zero-padded to ``sample``'s length."""
    n = sample.audio.size
    audio = np.zeros(n, np.float32)
    audio[: min(n, other.audio.size)] = other.audio[:n]
    return replace(sample, audio=audio)


def audio_swap_scores(model: Any, samples: Sequence[Sample], metrics: Sequence[Any]) -> dict[str, dict[str, float]]:
    """Mean score per measure of ``model`` on ``samples`` driven by their own audio (``"own"``) and by
    the next sample's audio (``"other"``), both scored against the real sample (its audio, its
    transcript, its boxes). Pooled measures (WER) are pooled: sum of edits / sum of words."""
    out: dict[str, dict[str, float]] = {}
    for label, shift in (("own", 0), ("other", 1)):
        sums: dict[str, list[float]] = {}
        for i, s in enumerate(samples):
            driver = s if shift == 0 else with_audio_of(s, samples[(i + shift) % len(samples)])
            frames = model.generate(driver)
            for metric in metrics:
                for name, score in metric.score(s, frames).items():
                    key = f"{metric.spec.name}:{name}"
                    acc = sums.setdefault(key, [0.0, 0.0])
                    if score.den is not None:
                        acc[0] += score.num
                        acc[1] += score.den
                    else:
                        acc[0] += score.value
                        acc[1] += 1
        out[label] = {k: num / den for k, (num, den) in sums.items() if den}
    return out
