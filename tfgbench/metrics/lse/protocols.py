"""LSE-C / LSE-D protocols: every choice that changes the numbers, pinned and named.

Common scoring procedure (joonson/syncnet_python ``SyncNetInstance.evaluate``, number for number):

* frames: BGR, raw 0-255 floats, no mean/std; audio: 16 kHz mono quantised to int16 (ffmpeg's
  ``pcm_s16le`` extraction), MFCC by ``python_speech_features.mfcc`` with library defaults
  (13 x 100 Hz).
* ``min_length = min(T, floor(N / 640))``, ``lastframe = min_length - 5``; window ``v`` in
  ``0 .. lastframe - 1`` pairs frames ``v .. v+4`` with MFCC columns ``4v .. 4v+19``.
* video features ``f_v`` and audio features ``g_v`` (N x D); audio zero-padded by ``vshift``
  rows at both ends; ``d[v, j] = || f_v - g'_{v+j} + 1e-6 ||_2`` for ``j = 0 .. 2 vshift``
  (``torch.nn.functional.pairwise_distance``); ``m_j = mean_v d[v, j]``.
* **LSE-D** = ``min_j m_j``; **LSE-C** = ``median_j m_j - min_j m_j``; **offset** =
  ``vshift - argmin_j m_j`` (frames; positive: audio leads). Dataset value = mean over videos.

Bad input (each raises a :class:`~tfgbench.errors.TfgbenchError` subclass, stored by the runner as
an error row with its message, or gives the documented value):

* fewer than 6 usable frames (``min_length - 5 < 1``: the official code has no window and
  crashes): :class:`ClipTooShortError`.
* silent audio (peak below 1e-4 full scale, about -80 dBFS): :class:`SilentAudioError`; the
  official code would return a number computed from constant MFCCs, which measures nothing.
* audio and video lengths that disagree: the official rule, scored over the common part
  ``min_length`` (documented value, no error); a video with no audio at all is a MediaError.
* a degenerate score (LSE-C exactly 0: half the shifts or more tie at the minimum distance, e.g.
  a constant video against constant features; or non-finite distances):
  :class:`DegenerateSyncError`, never a stored 0.
* no face found (``lse/syncnet-python``): :class:`NoFaceError`. ``lse/synthetic`` uses the
  sample's face boxes; without boxes (``tfgbench lse FILE``) it detects them with OpenCV's Haar
  cascade, centred 96x96 box where none is found (:func:`tfgbench.data.boxes.detect_face_boxes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfgbench.errors import MediaError, TfgbenchError
from tfgbench.metrics.base import Measure, ProtocolSpec

MEASURES = (
    Measure("lse_c", "LSE-C", higher_is_better=True),
    Measure("lse_d", "LSE-D", higher_is_better=False),
    # the AV offset in frames: 0 is in sync and both signs are off, so it is shown but not ranked
    Measure("offset", "Offset", higher_is_better=None, digits=2),
)

_COMMON = {
    "colour": "BGR 0-255 floats, no normalisation",
    "audio": "16 kHz mono, int16-quantised; python_speech_features.mfcc defaults (13 x 100 Hz)",
    "window": "5 frames vs 20 MFCC frames (step 1 frame = 4 MFCC frames)",
    "length rule": "min_length = min(T, floor(samples/640)); windows 0..min_length-6",
    "distance": "pairwise_distance (eps 1e-6) to audio zero-padded by vshift",
    "lse_d": "min over shifts of the mean distance", "lse_c": "median minus min",
    "offset": "vshift - argmin", "dataset value": "mean over videos",
    "bad input": "<6 usable frames: error; silent audio: error; A/V length mismatch: common part",
}

OFFICIAL_ORIGIN = "syncnet_v2.model"


@dataclass(frozen=True)
class LSEConfig:
    """How one protocol prepares frames. ``crop``: ``"frame"`` (whole frame), ``"tracks"`` (face
    tracks, syncnet_python pipeline), ``"boxes"`` (the sample's face boxes). ``jpeg``: default
    mjpeg round trip before scoring. ``weights``: ``"official"`` (user's syncnet_v2.model) or
    ``"synthetic"`` (the shipped evaluator)."""

    crop: str
    jpeg: bool
    vshift: int = 15
    size: int = 224
    weights: str = "official"
    crop_scale: float = 0.4


CONFIGS = {
    "lse/wav2lip": LSEConfig(crop="frame", jpeg=True),
    "lse/wav2lip-nojpeg": LSEConfig(crop="frame", jpeg=False),
    "lse/syncnet-python": LSEConfig(crop="tracks", jpeg=True),
    "lse/synthetic": LSEConfig(crop="boxes", jpeg=False, size=64, weights="synthetic"),
}

PROTOCOLS = (
    ProtocolSpec(
        "lse/wav2lip", MEASURES,
        "Wav2Lip/TalkLip LSE: whole frame -> 224x224, ffmpeg JPEG round trip, SyncNet v2, vshift 15",
        {**_COMMON, "evaluator": "official syncnet_v2.model (user-provided)",
         "frames": "ffmpeg default mjpeg round trip (rate control 200 kb/s), cv2 decode, "
                   "cv2.resize whole frame to 224x224 (bilinear)", "vshift": 15,
         "reference": "Wav2Lip evaluation/scores_LSE/calculate_scores_LRS.py"},
        frozenset({"audio"})),
    ProtocolSpec(
        "lse/wav2lip-nojpeg", MEASURES,
        "as lse/wav2lip without the JPEG round trip (decoded frames straight to 224x224)",
        {**_COMMON, "evaluator": "official syncnet_v2.model (user-provided)",
         "frames": "decoded RGB -> BGR, cv2.resize whole frame to 224x224 (bilinear)", "vshift": 15},
        frozenset({"audio"})),
    ProtocolSpec(
        "lse/syncnet-python", MEASURES,
        "syncnet_python pipeline: face detection + IOU tracks, crop_scale 0.4 -> 224x224, mean over tracks",
        {**_COMMON, "evaluator": "official syncnet_v2.model (user-provided)",
         "detector": "S3FD with the user's sfd_face.pth (conf 0.9, scale 0.25, NMS 0.1) when found, "
                     "else OpenCV Haar cascade; the detector is part of the evaluator hash",
         "frames": "-qscale:v 2 JPEG round trip for detection and crops; crops resized to 224x224, "
                   "then the default JPEG round trip (the XVID crop re-encode is not reproduced)",
         "tracking": "IOU > 0.5, up to 25 missed frames, boxes interpolated, median filter 13",
         "crop": "crop_scale 0.4, pad value 110",
         "min_track": "min(100, ceil(T/2)) frames, at least 6 (official 100 drops clips < 4 s; "
                      "tfgbench scores short clips)",
         "min_face_size": "min(100, shorter frame side / 8) px", "scenes": "one shot (no scene detection)",
         "per video": "LSE-C, LSE-D: mean over tracks; offset: int(mean) (LatentSync)", "vshift": 15},
        frozenset({"audio"})),
    ProtocolSpec(
        "lse/synthetic", MEASURES,
        "synthetic corpus: tfgbench's SyncNet trained on its train split; own scale, not comparable "
        "with official LSE",
        {**_COMMON, "evaluator": "tfgbench/weights/syncnet-synthetic.safetensors (shipped)",
         "frames": "square crop around the sample's ground-truth face box (lower face), resized to "
                   "64x64 BGR; generated videos keep the head pose, so the sample's boxes apply",
         "embeddings": "unit length: distances in [0, 2]", "vshift": 15},
        frozenset({"audio", "boxes"})),
)


class LSEError(TfgbenchError):
    """A clip that LSE cannot score."""


class ClipTooShortError(LSEError):
    """Fewer than 6 usable frames: no 5-frame window under the official ``lastframe`` rule."""


class SilentAudioError(LSEError, MediaError):
    """The driving audio is silent: lip sync cannot be measured."""


class NoFaceError(LSEError):
    """No usable face track in the video."""


class DegenerateSyncError(LSEError):
    """The distances carry no sync information (all shifts tie, or NaN): no score is stored."""
