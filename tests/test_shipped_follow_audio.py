"""The shipped tiny generators follow the audio: driven by another clip's audio, scored against the real
clip, their lip sync (LSE-C, the synthetic SyncNet evaluator) is worse than with the clip's own audio.
A generator that ignores the audio scores the same both ways (tests/test_controls.py); the earlier
SyncTalklip checkpoints did (README, "Does the model follow the audio?")."""

from __future__ import annotations

import pytest

#: the least own-minus-other LSE-C gap, averaged over the 8 clips, that counts as following the audio
#: (on these 8 clips: synctalklip 0.079, synctalklip-conv 0.040, talklip 0.028, wav2lip 0.066; a generator
#: that ignores the audio has 0)
MIN_GAP = 0.02


@pytest.fixture(scope="module")
def clips(synthetic_test_clips):
    from tfgbench.data.synthetic import SyntheticDataset

    data = SyntheticDataset(synthetic_test_clips, split="test")
    return [data.load(i) for i in data.ids()]


@pytest.fixture(scope="module")
def lse():
    from tfgbench import registry

    return registry.load("metrics", "lse")("lse/synthetic")


@pytest.mark.parametrize("model", ["synctalklip", "synctalklip-conv", "synctalklip-freeze", "talklip", "wav2lip"])
def test_shipped_generator_loses_sync_with_another_clips_audio(model, clips, lse):
    from tfgbench import registry
    from tfgbench.controls import audio_swap_scores

    scores = audio_swap_scores(registry.load("models", model)(), clips, [lse])
    own, other = scores["own"]["lse/synthetic:lse_c"], scores["other"]["lse/synthetic:lse_c"]
    assert own - other > MIN_GAP, f"{model}: LSE-C {own:.3f} with its own audio, {other:.3f} with another clip's"
