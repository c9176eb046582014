"""The bad-input corpus: a folder dataset with one clip per way an input can be wrong (issue 10),
and what each must end as. Small frames and few frames, so a run over all of it stays fast.

:func:`make_corpus` writes the folder and returns ``{sample id: Case}``. Each case lists, per
metric family, ``OK`` (a score; ``check`` then verifies it) or a piece of the error text the row
must carry. Models: cases ``model_*`` are good clips on which the test model ``bad-output``
(:mod:`integrity_plugins`) returns NaN, the wrong shape or the wrong frame count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from tfgbench.media.io import write_video

OK = "ok"
FAMILIES = ("psnr", "ssim", "lse", "wer")
SIZE = 64
FRAMES = 25
WORDS = "Text:  BIN BLUE AT F TWO NOW\nConf:  5\n"
#: WER error on a clip with a good transcript: the folder dataset has no mouth boxes for the
#: synthetic reader (a clear error naming the file; the transcript checks come first)
NO_MOUTH = "mouth"


@dataclass
class Case:
    what: str
    expect: dict[str, str]  # family -> OK or a piece of the error text
    run_only: bool = False  # model cases: `score` sees the good clip
    check: Callable | None = field(default=None, repr=False)  # (sample, rows) -> None for OK cases


def face(num: int = FRAMES, width: int = SIZE, height: int = SIZE, shift: int = 0) -> np.ndarray:
    import cv2
    import skimage.data

    img = cv2.resize(skimage.data.astronaut()[0:300, 100:400], (width, height), interpolation=cv2.INTER_AREA)
    return np.stack([np.roll(img, (i % 5) - 2 + shift, axis=1) for i in range(num)])


def speech(seconds: float, rate: int = 16_000, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    wave = (0.2 * np.sin(2 * np.pi * freq * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return np.stack([wave * (1 - 0.3 * c) for c in range(channels)]) if channels > 1 else wave


def _write(path: Path, frames: np.ndarray | None, audio: np.ndarray | None = None, *, fps: int = 25,
           rate: int = 16_000, pix_fmt: str = "yuv444p", codec: str = "libx264", rotation: int = 0,
           pts: list[int] | None = None, time_base: Fraction | None = None) -> None:
    """A general mp4 writer (the package's writer is mono and constant-rate by design)."""
    import av

    with av.open(str(path), "w", format="mp4") as c:
        vs = as_ = None
        if frames is not None:
            vs = c.add_stream(codec, rate=fps)
            vs.height, vs.width = frames.shape[1:3]
            vs.pix_fmt = pix_fmt
            vs.options = {"crf": "0", "preset": "ultrafast", "threads": "1"}
            if time_base is not None:
                vs.time_base = time_base
            if rotation:
                vs.set_display_rotation(rotation)
        if audio is not None:
            channels = 1 if audio.ndim == 1 else audio.shape[0]
            as_ = c.add_stream("aac", rate=rate)
            as_.layout = "mono" if channels == 1 else "stereo"
        if vs is not None:
            for i, img in enumerate(frames):
                f = av.VideoFrame.from_ndarray(img, format="rgb24")
                f.pts, f.time_base = (pts[i], time_base) if pts else (i, Fraction(1, fps))
                c.mux(vs.encode(f))
            c.mux(vs.encode())
        if as_ is not None:
            pcm = audio.reshape(1, -1) if audio.ndim == 1 else audio
            for start in range(0, pcm.shape[1], 1024):
                chunk = np.ascontiguousarray(pcm[:, start:start + 1024], dtype=np.float32)
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=as_.layout.name)
                af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
                c.mux(as_.encode(af))
            c.mux(as_.encode())


def _frames_check(count: int | None = None, shape: tuple[int, int] | None = None, gray: bool = False,
                  audio_s: float | None = None) -> Callable:
    def check(sample, rows) -> None:
        if count is not None:
            assert sample.num_frames == count, (sample.id, sample.num_frames, count)
        if shape is not None:
            assert sample.frames.shape[1:3] == shape, (sample.id, sample.frames.shape)
        if gray:
            assert np.array_equal(sample.frames[..., 0], sample.frames[..., 1]), sample.id
        if audio_s is not None:
            assert abs(sample.audio.size / 16_000 - audio_s) < 0.1, (sample.id, sample.audio.size)
    return check


def make_corpus(root: Path) -> dict[str, Case]:
    """Write every case under ``root`` (with a transcript for each unless the case is about it)."""
    root.mkdir(parents=True, exist_ok=True)
    good = {f: OK for f in FAMILIES} | {"wer": NO_MOUTH}
    seconds = FRAMES / 25
    cases: dict[str, Case] = {}

    def add(name: str, case: Case, writer: Callable[[Path], None], transcript: bytes | None = WORDS.encode()) -> None:
        writer(root / f"{name}.mp4")
        if transcript is not None:
            (root / f"{name}.txt").write_bytes(transcript)
        cases[name] = case

    fail = dict.fromkeys(FAMILIES)
    add("zero_byte", Case("zero-byte file", {f: "zero_byte.mp4: cannot be opened" for f in fail}),
        lambda p: p.write_bytes(b""))

    def truncated(p: Path) -> None:
        _write(p, face(), speech(seconds))
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    add("truncated", Case("truncated mp4", {f: "truncated.mp4" for f in fail}), truncated)
    add("text_named_mp4", Case("text file named .mp4", {f: "text_named_mp4.mp4: cannot be opened" for f in fail}),
        lambda p: p.write_text("this is not a video\n"))
    add("no_audio", Case("video with no audio", good | {"lse": "no_audio.mp4: the video has no audio track"},
                         check=_frames_check(FRAMES)), lambda p: _write(p, face(), None))
    add("audio_only", Case("audio with no video", {f: "audio_only.mp4: has no video stream" for f in fail}),
        lambda p: _write(p, None, speech(seconds)))
    add("one_frame", Case("1 frame", good | {"lse": "usable frames; LSE needs at least 6"},
                          check=_frames_check(1)), lambda p: _write(p, face(1), speech(0.04)))
    add("fps30", Case("30 fps", good, check=_frames_check(25)), lambda p: _write(p, face(30), speech(1.0), fps=30))
    add("fps60", Case("60 fps", good, check=_frames_check(25)), lambda p: _write(p, face(60), speech(1.0), fps=60))
    vfr_pts = [0, 30, 70, 100, 160, 200, 230, 290, 330, 400, 440, 470, 520, 560, 600, 660, 700, 760, 800, 840]
    add("vfr", Case("variable frame rate", good, check=_frames_check(22)),
        lambda p: _write(p, face(len(vfr_pts)), speech(0.88), pts=vfr_pts, time_base=Fraction(1, 1000)))
    add("audio_8k_mono", Case("8 kHz mono audio", good, check=_frames_check(FRAMES, audio_s=seconds)),
        lambda p: _write(p, face(), speech(seconds, 8000), rate=8000))
    add("audio_48k_stereo", Case("48 kHz stereo audio", good, check=_frames_check(FRAMES, audio_s=seconds)),
        lambda p: _write(p, face(), speech(seconds, 48_000, channels=2), rate=48_000))
    add("silent", Case("silent audio", good | {"lse": "silent.mp4: the audio is silent"}),
        lambda p: _write(p, face(), np.zeros(int(seconds * 16_000), np.float32)))
    add("hd_1080p", Case("1080p frames", good, check=_frames_check(FRAMES, (1080, 1920))),
        lambda p: write_video(p, face(FRAMES, 1920, 1080), speech(seconds), quality="standard", threads=1))
    add("odd_size", Case("odd frame size 63x47", good, check=_frames_check(FRAMES, (47, 63))),
        lambda p: write_video(p, face(FRAMES, 63, 47), speech(seconds), quality="lossless", threads=1))
    add("grayscale", Case("grayscale pixel format", good, check=_frames_check(FRAMES, gray=True)),
        lambda p: _write(p, face(), speech(seconds), pix_fmt="gray"))
    add("rotated", Case("rotated 90 degrees (display matrix)", good, check=_frames_check(FRAMES, (64, 48))),
        lambda p: _write(p, face(FRAMES, 64, 48), speech(seconds), rotation=90))
    add("long_audio", Case("audio 10x longer than the video", good, check=_frames_check(FRAMES, audio_s=10 * seconds)),
        lambda p: _write(p, face(), speech(10 * seconds)))
    add("no_transcript", Case("missing transcript", good | {"wer": "no_transcript.txt: no transcript file"}),
        lambda p: _write(p, face(), speech(seconds)), transcript=None)
    add("empty_transcript", Case("empty transcript", good | {"wer": "empty_transcript.txt: the transcript is empty"}),
        lambda p: _write(p, face(), speech(seconds)), transcript=b"Text:  \nConf:  5\n")
    add("latin1_transcript", Case("non-UTF-8 transcript",
                                  good | {"wer": "latin1_transcript.txt: the transcript is not valid UTF-8"}),
        lambda p: _write(p, face(), speech(seconds)), transcript="Text:  CAFÉ AT F TWO\n".encode("latin-1"))
    model_cases = (("nan", "contains NaN"), ("shape", "output has shape"), ("frames", f"has {FRAMES - 1} frames"))
    for kind, needle in model_cases:
        add(f"model_{kind}", Case(f"model returns {kind}", {f: needle for f in FAMILIES}, run_only=True),
            lambda p: _write(p, face(), speech(seconds)))
    return cases
