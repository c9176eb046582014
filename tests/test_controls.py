"""The audio-swap control: the driving sample and the own/other comparison."""

from __future__ import annotations

import numpy as np

from tfgbench.controls import audio_swap_scores, with_audio_of
from tfgbench.data.sample import Sample
from tfgbench.metrics.base import Score


def _sample(i: int, n_audio: int) -> Sample:
    return Sample(id=str(i), frames=np.full((2, 4, 4, 3), i, np.uint8), audio=np.full(n_audio, i + 1, np.float32))


def test_with_audio_of_cuts_and_pads_to_the_clip():
    a, b = _sample(0, 5), _sample(1, 3)
    assert with_audio_of(a, b).audio.tolist() == [2, 2, 2, 0, 0]
    assert with_audio_of(b, a).audio.tolist() == [1, 1, 1]
    assert with_audio_of(a, b).frames is a.frames


class _AudioLevel:
    """A "metric" that reads the level the model painted against the real sample's audio level."""

    class spec:
        name = "toy/level"

    def score(self, sample, frames):
        err = float(abs(frames.mean() - sample.audio.mean()))
        return {"err": Score(err), "pooled": Score.ratio(err, 2.0)}


class _Follows:
    def generate(self, sample):
        return np.full_like(sample.frames, int(sample.audio.mean()))


class _Ignores:
    def generate(self, sample):
        return np.full_like(sample.frames, 7)


def test_audio_swap_separates_a_model_that_follows_the_audio_from_one_that_ignores_it():
    samples = [_sample(i, 4) for i in range(3)]
    follows = audio_swap_scores(_Follows(), samples, [_AudioLevel()])
    assert follows["own"]["toy/level:err"] == 0
    # other audio: levels 2,3,1 painted for clips with audio 1,2,3 -> errors 1,1,2
    assert follows["other"]["toy/level:err"] == 4 / 3 and follows["other"]["toy/level:pooled"] == 4 / 6
    ignores = audio_swap_scores(_Ignores(), samples, [_AudioLevel()])
    assert ignores["own"] == ignores["other"]
