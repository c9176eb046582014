"""One synthetic clip: a GRID sentence spoken by a speaker, rendered as frames with ground truth.

Per clip (all drawn from ``rng = default_rng([seed, 2, speaker_index, utterance])``): the
sentence, leading (0.25..0.5 s) and trailing (0.3..0.5 s) silence, loudness, the head's base
position (centre within +-5 px, scale 0.93..1.02, roll +-3 degrees) and its motion (a sum of
three slow sinusoids: +-2.5 px, +-1.5 px, +-2 degrees, +-1.5 % scale), blinks (about one every
3 s, 5 frames) and gaze drift, background and lighting. The head moves independently of the
speech, so only the mouth carries the sound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfgbench.data.sample import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from tfgbench.data.synthetic import grammar
from tfgbench.data.synthetic.face import FaceRenderer
from tfgbench.data.synthetic.identity import Speaker
from tfgbench.data.synthetic.speech import Phone, synthesize
from tfgbench.data.synthetic.visemes import PARAMS, mouth_track

BLINK_PROFILE = np.array([0.45, 0.9, 1.0, 0.65, 0.25])


@dataclass
class Clip:
    """A rendered clip: frames ``(T, H, W, 3)`` uint8, audio ``(T * 640,)`` float32, and ground
    truth (see :meth:`alignment`)."""

    id: str
    speaker: str
    words: list[str]
    frames: np.ndarray
    audio: np.ndarray
    phones: list[Phone]
    word_times: list[tuple[float, float]]
    boxes: np.ndarray  # (T, 4) int
    mouth: np.ndarray  # (T, 20, 2) float32
    mouth_boxes: np.ndarray  # (T, 4) int
    mouth_params: np.ndarray  # (T, 6) float32
    pose: np.ndarray  # (T, 4)
    blink: np.ndarray  # (T,)

    @property
    def transcript(self) -> str:
        return " ".join(self.words)

    def alignment(self, generator: str) -> dict:
        """The JSON ground truth stored beside the mp4 (times in seconds on the clip's clock)."""
        r2 = lambda a: np.round(np.asarray(a, dtype=np.float64), 2).tolist()  # noqa: E731
        return {
            "generator": generator, "id": self.id, "speaker": self.speaker, "transcript": self.transcript,
            "fps": FPS, "sample_rate": SAMPLE_RATE, "num_frames": int(len(self.frames)),
            "num_samples": int(self.audio.size), "frame_size": [int(self.frames.shape[2]), int(self.frames.shape[1])],
            "words": [{"word": w, "start": round(a, 4), "end": round(b, 4)}
                      for w, (a, b) in zip(self.words, self.word_times)],
            "phonemes": [{"phoneme": p.symbol, "start": round(p.start, 4), "end": round(p.end, 4), "word": p.word}
                         for p in self.phones],
            "face_boxes": self.boxes.tolist(), "mouth_boxes": self.mouth_boxes.tolist(),
            "mouth_landmarks": r2(self.mouth), "mouth_params_names": list(PARAMS),
            "mouth_params": np.round(self.mouth_params.astype(np.float64), 3).tolist(),
            "pose": np.round(self.pose, 3).tolist(), "blink": np.round(self.blink, 3).tolist(),
        }


def _smooth_motion(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
    out = np.zeros_like(t)
    for _ in range(3):
        f, ph, a = rng.uniform(0.1, 0.7), rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.0)
        out += a * np.sin(2 * np.pi * f * t + ph)
    return amplitude * out / 2.0


def clip_rng(seed: int, speaker_index: int, utterance: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2, speaker_index, utterance])


def make_clip(seed: int, speaker: Speaker, speaker_index: int, utterance: int, size: int = 128,
              words: list[str] | None = None) -> Clip:
    """Render utterance ``utterance`` of ``speaker`` (deterministic in its arguments)."""
    rng = clip_rng(seed, speaker_index, utterance)
    sentence = grammar.sample_sentence(rng)
    words = list(words) if words is not None else sentence
    text, starts = grammar.spoken_text(words)
    speech_seed = int(rng.integers(2 ** 31))
    speech = synthesize(text, speaker.voice, starts, seed=speech_seed)
    lead = int(rng.uniform(0.25, 0.5) * SAMPLE_RATE)
    tail = int(rng.uniform(0.3, 0.5) * SAMPLE_RATE)
    voiced = speech.audio / max(float(np.abs(speech.audio).max()), 1e-6) * rng.uniform(0.45, 0.8)
    total = lead + voiced.size + tail
    num_frames = -(-total // SAMPLES_PER_FRAME)
    audio = np.zeros(num_frames * SAMPLES_PER_FRAME, dtype=np.float32)
    audio[lead:lead + voiced.size] = voiced
    audio += rng.normal(0, 3e-4, audio.size).astype(np.float32)  # a quiet room, not digital silence
    offset = lead / SAMPLE_RATE
    phones = [Phone(p.symbol, p.start + offset, p.end + offset, p.word) for p in speech.phones]
    phones = [Phone("_", 0.0, offset, -1)] + phones
    word_times = [(a + offset, b + offset) for a, b in speech.word_times(len(words))]
    params = mouth_track(phones, num_frames, rate_wpm=speaker.voice.rate)

    t = np.arange(num_frames) / FPS
    base = np.array([64 + rng.uniform(-5, 5), 61 + rng.uniform(-3, 3), rng.uniform(-0.05, 0.05),
                     rng.uniform(0.93, 1.02)])
    pose = np.stack([base[0] + _smooth_motion(rng, t, 2.5), base[1] + _smooth_motion(rng, t, 1.5),
                     base[2] + _smooth_motion(rng, t, 0.035), base[3] * (1 + _smooth_motion(rng, t, 0.015))], 1)
    blink = np.zeros(num_frames)
    k = int(rng.integers(0, 40))
    while k < num_frames:
        seg = BLINK_PROFILE[: num_frames - k]
        blink[k:k + seg.size] = np.maximum(blink[k:k + seg.size], seg)
        k += int(rng.integers(45, 110))
    gaze = np.stack([_smooth_motion(rng, t, 1.0), _smooth_motion(rng, t, 0.4)], 1)

    renderer = FaceRenderer(speaker.identity, size, rng)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    mouth = np.empty((num_frames, 20, 2), np.float32)
    boxes = np.empty((num_frames, 4), np.int32)
    mouth_boxes = np.empty((num_frames, 4), np.int32)
    for i in range(num_frames):
        frames[i], mouth[i], boxes[i], mouth_boxes[i] = renderer.render(pose[i], params[i], blink[i], gaze[i])
    return Clip(id=f"{speaker.id}/u{utterance:03d}", speaker=speaker.id, words=words, frames=frames, audio=audio,
                phones=phones, word_times=word_times, boxes=boxes, mouth=mouth, mouth_boxes=mouth_boxes,
                mouth_params=params, pose=pose, blink=blink)
