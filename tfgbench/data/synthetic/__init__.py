"""The synthetic talking-face corpus: tfgbench's embedded default dataset (no downloads).

GRID sentences (command colour preposition letter digit adverb; 51 words) spoken by espeak-ng
(C API through ctypes, per-phoneme times from its phoneme events) and "said" by procedural 2D
faces whose mouths follow the phonemes (viseme table + coarticulation), with head motion and
blinks. Speakers (face identity + voice) are disjoint across splits. Deterministic from a seed.

Datasets (entry points ``synthetic`` and ``synthetic-ood``)::

    SyntheticDataset(root=None, split="train" | "val" | "test", *, seed=0)
    SyntheticOODDataset(root=None, split="test", *, seed=0)   # unseen voices and face styles

``root=None`` means ``$TFGBENCH_HOME/synthetic/<version>`` (default ``~/.cache/tfgbench``),
generated on first use (all splits, a few minutes, progress bar, under a file lock with
per-split atomic renames so concurrent processes never see a half-written split).
``version`` is the corpus version, e.g. ``"synthetic-v2-s0"`` (generator version, seed, and a
hash of the sizes when they are not the defaults); it is part of every result's key.

Default sizes (speakers x utterances): train 32 x 60, val 4 x 20, test 8 x 25, ood 4 x 25
(48 identities, 2,300 clips, about 2.4 s each).

``load(id)`` returns a :class:`~tfgbench.data.sample.Sample` (ids look like ``"s36/u007"``):

* ``frames``: ``(T, 128, 128, 3)`` uint8 RGB at 25 fps; ``audio``: float32 at 16 kHz, exactly
  ``T * 640`` samples; ``transcript``: lower-case GRID words (the letter slot is the bare letter).
* ``boxes``: ``(T, 4)`` int32 face box ``x1, y1, x2, y2`` (x2/y2 exclusive) of the face oval
  (forehead to chin, cheek to cheek, no hair or ears).
* ``meta["mouth"]``: ``(T, 20, 2)`` float32 mouth landmarks in pixels, iBUG-68 points 48..67
  order: 0 left corner, 1-5 upper outer lip left to right (3 = centre), 6 right corner, 7-11
  lower outer lip right to left (9 = centre), 12 left inner corner, 13-15 upper inner lip
  (14 = centre), 16 right inner corner, 17-19 lower inner lip right to left (18 = centre).
  Mouth opening = ``mouth[:, 18, 1] - mouth[:, 14, 1]``.
* ``meta["mouth_box"]``: ``(T, 4)`` int32 square box centred on the mouth, side 2x the mouth's
  rest width; it follows the head, not the lips (at the widest opening the lips part by about
  a third of its height).
* ``meta["alignment"]``: ``{"words": [{"word", "start", "end"}], "phonemes": [{"phoneme",
  "start", "end", "word"}]}``, seconds on the clip's clock (``"_"`` phonemes are pauses, word -1).
* ``meta["speaker"]``: speaker id (``s00``.. main pool, ``o00``.. OOD pool);
  ``meta["mouth_params"]``: ``(T, 6)`` float32 open, spread, round, teeth, tongue, tuck.

``alignment(id)`` returns the JSON ground truth without decoding the video. A missing or
corrupt video, broken audio, or a missing/mismatched alignment raises ``MediaError`` /
``SampleError`` naming the file. Generate elsewhere with ``tfgbench data synthetic --out DIR``.
"""

from tfgbench.data.synthetic.dataset import SyntheticDataset, SyntheticOODDataset, default_root
from tfgbench.data.synthetic.generation import GENERATOR_VERSION, corpus_version, generate

__all__ = ["SyntheticDataset", "SyntheticOODDataset", "default_root", "GENERATOR_VERSION", "corpus_version",
           "generate"]
