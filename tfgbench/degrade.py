"""Controlled degradations of the ground truth, as a model plugin (``degrade``) for metric calibration.

A degradation is a model that transforms the sample's own frames: scoring it shows how far each
metric moves with things that are lip sync (an audio offset, a frozen mouth, lips that say
something else) and with things that are not (blur, JPEG/H.264 compression, resolution, noise).
``tfgbench calibrate`` sweeps the amounts; ``tfgbench run --model degrade --model-arg kind=blur
--model-arg amount=2`` runs one.

Kinds (``--model-arg kind=K amount=A``; each is a pure function of its inputs, seeded where random):

=============  ===============================================================================
``none``       the ground truth unchanged (every kind's identity amount is stored as ``none``)
``shift``      audio offset in frames, in the convention of the LSE offset: frame ``i`` shows
               ground-truth frame ``i - A`` (edges hold the first/last frame), so a sound SyncNet
               reports offset ``A``; positive: the audio leads. Integer, -15..15 is LSE's range.
``freeze``     a fraction ``A`` (0..1) of the clip, one contiguous run starting at a seeded frame
               (frame 0 when ``A`` = 1), shows the run's first frame in the mouth region
               (``region=mouth``, default) or in the whole frame (``region=frame``)
``blur``       Gaussian blur of the whole frame, sigma ``A`` pixels (OpenCV, kernel from sigma)
``jpeg``       JPEG round trip of each frame at quality ``A`` (1..100, OpenCV/libjpeg, 4:2:0)
``h264``       H.264 round trip of the clip at crf ``A`` (0..51; libx264, yuv420p, preset medium,
               one thread: ffmpeg's defaults, as official inference scripts deliver their videos)
``downscale``  each frame resized down by factor ``A`` (>= 1; cv2 INTER_AREA) and back (bilinear)
``noise``      additive Gaussian noise, sigma ``A`` in 0-255 units, seeded per clip, clipped
``mouth-swap`` the mouth region of a fraction ``A`` (0..1) of the frames taken from another clip
               of the same speaker (another ``.mp4`` in the sample's folder: a speaker in the
               synthetic corpus and LRS3, a source video in LRS2), frame for frame: real lips
               that say something else
=============  ===============================================================================

Mouth regions: the synthetic corpus's ``meta["mouth_box"]``; otherwise the face boxes' lower
centre (:func:`tfgbench.face.crops.mouth_from_face`), detected when the sample has no boxes.
Region pastes are feathered over a fifth of the box so no hard seam is added.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfgbench.data.sample import Sample
from tfgbench.errors import SampleError, TfgbenchError
from tfgbench.model import ModelInfo, TalkingFaceModel


@dataclass(frozen=True)
class Kind:
    """One degradation: what its amount means, the amount that changes nothing, the default."""

    name: str
    unit: str
    short: str
    identity: float | None
    default: float
    integer: bool = False
    low: float = -np.inf
    high: float = np.inf
    seeded: bool = False


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("none", "", "", None, 0),
    Kind("shift", "audio offset (frames)", "frames", 0, 5, integer=True),
    Kind("freeze", "fraction of the clip frozen", "fraction", 0, 1.0, low=0, high=1, seeded=True),
    Kind("blur", "Gaussian sigma (px)", "sigma", 0, 2.0, low=0),
    Kind("jpeg", "JPEG quality", "quality", None, 20, integer=True, low=1, high=100),
    Kind("h264", "H.264 crf", "crf", None, 35, integer=True, low=0, high=51),
    Kind("downscale", "downscale factor", "factor", 1, 2.0, low=1),
    Kind("noise", "noise sigma (0-255)", "sigma", 0, 10.0, low=0, seeded=True),
    Kind("mouth-swap", "fraction of frames with another clip's mouth", "fraction", 0, 1.0, low=0, high=1,
         seeded=True),
)}
REGIONS = ("mouth", "frame")


# -- the pure functions --------------------------------------------------------------------------
def shift_frames(frames: np.ndarray, offset: int) -> np.ndarray:
    """Frame ``i`` becomes frame ``i - offset`` (clamped to the clip): the video lags the audio by
    ``offset`` frames, which SyncNet reports as offset ``+offset``."""
    t = len(frames)
    return frames[np.clip(np.arange(t) - int(offset), 0, t - 1)]


def _feather(h: int, w: int) -> np.ndarray:
    """``(h, w, 1)`` weights: 1 inside, linear ramps over a fifth of each side to the edge."""
    def ramp(n: int) -> np.ndarray:
        edge = max(1, n // 5)
        x = np.arange(n, dtype=np.float32)
        return np.clip(np.minimum(x + 1, n - x) / edge, 0, 1)

    return (ramp(h)[:, None] * ramp(w)[None, :])[..., None]


def paste_region(dst: np.ndarray, src: np.ndarray, src_box: np.ndarray, dst_box: np.ndarray) -> np.ndarray:
    """A copy of frame ``dst`` with ``src``'s ``src_box`` resized into ``dst_box`` (feathered edges;
    the parts of either box outside its frame are dropped/edge-padded)."""
    import cv2

    x1, y1, x2, y2 = (int(v) for v in dst_box)
    sx1, sy1, sx2, sy2 = (int(v) for v in src_box)
    if x2 <= x1 or y2 <= y1 or sx2 <= sx1 or sy2 <= sy1:
        raise SampleError(f"empty region box {list(dst_box)} / {list(src_box)}")
    pad = max(0, -sx1, -sy1, sx2 - src.shape[1], sy2 - src.shape[0])
    padded = np.pad(src, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else src
    patch = padded[sy1 + pad:sy2 + pad, sx1 + pad:sx2 + pad]
    patch = cv2.resize(patch, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    alpha = _feather(y2 - y1, x2 - x1)
    h, w = dst.shape[:2]
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    out = dst.copy()
    if cx2 <= cx1 or cy2 <= cy1:
        return out
    a = alpha[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]
    p = patch[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]
    region = out[cy1:cy2, cx1:cx2].astype(np.float32)
    out[cy1:cy2, cx1:cx2] = np.rint(a * p + (1 - a) * region).clip(0, 255).astype(np.uint8)
    return out


def run_length(num_frames: int, fraction: float) -> int:
    return int(round(float(fraction) * num_frames))


def freeze_frames(frames: np.ndarray, fraction: float, start: int = 0, boxes: np.ndarray | None = None) -> np.ndarray:
    """Frames ``start .. start + n - 1`` (``n = round(fraction * T)``) show frame ``start``: the
    whole frame when ``boxes`` is ``None``, else its region ``boxes[start]`` pasted into each
    frame's ``boxes[i]`` (the head keeps moving, the mouth does not)."""
    n = run_length(len(frames), fraction)
    out = frames.copy()
    if n == 0:
        return out
    if not 0 <= start <= len(frames) - n:
        raise ValueError(f"a run of {n} frames cannot start at frame {start} of {len(frames)}")
    for i in range(start, start + n):
        out[i] = frames[start] if boxes is None else paste_region(frames[i], frames[start], boxes[start], boxes[i])
    return out


def mouth_swap_frames(frames: np.ndarray, boxes: np.ndarray, donor: np.ndarray, donor_boxes: np.ndarray,
                      fraction: float = 1.0, start: int = 0) -> np.ndarray:
    """Frames ``start .. start + n - 1`` get the mouth region of ``donor`` frame ``i`` (the donor
    clip looped when shorter), from ``donor_boxes[i]`` into ``boxes[i]``."""
    n = run_length(len(frames), fraction)
    out = frames.copy()
    for i in range(start, start + n):
        j = i % len(donor)
        out[i] = paste_region(frames[i], donor[j], donor_boxes[j], boxes[i])
    return out


def blur_frames(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur, sigma in pixels (kernel size chosen by OpenCV from sigma); 0 is a copy."""
    import cv2

    if sigma <= 0:
        return frames.copy()
    return np.stack([cv2.GaussianBlur(f, (0, 0), float(sigma)) for f in frames])


def jpeg_frames(frames: np.ndarray, quality: int) -> np.ndarray:
    """Each frame through a JPEG encode/decode at ``quality`` (OpenCV, BGR order as cv2 expects)."""
    import cv2

    out = np.empty_like(frames)
    for i, f in enumerate(frames):
        ok, buf = cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise SampleError(f"JPEG encoding failed at quality {quality}")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return out


def h264_frames(frames: np.ndarray, crf: int, preset: str = "medium") -> np.ndarray:
    """The clip through libx264 (yuv420p, ``crf``, ``preset``, one thread) and back, in memory.
    Odd sizes are edge-padded to even for the encode and cropped back."""
    import io
    from fractions import Fraction

    import av

    t, h, w = frames.shape[:3]
    padded = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = padded.shape[2], padded.shape[1], "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": preset, "threads": "1"}
        for i, image in enumerate(padded):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            container.mux(stream.encode(vf))
        container.mux(stream.encode())
    buf.seek(0)
    with av.open(buf, "r") as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if len(decoded) != t:
        raise SampleError(f"H.264 round trip returned {len(decoded)} frames for {t}")
    return np.stack(decoded)[:, :h, :w]


def downscale_frames(frames: np.ndarray, factor: float) -> np.ndarray:
    """Each frame resized to ``1/factor`` of its size (INTER_AREA) and back (bilinear)."""
    import cv2

    if factor <= 1:
        return frames.copy()
    h, w = frames.shape[1:3]
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    return np.stack([cv2.resize(cv2.resize(f, small, interpolation=cv2.INTER_AREA), (w, h),
                                interpolation=cv2.INTER_LINEAR) for f in frames])


def noise_frames(frames: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Additive Gaussian noise (sigma in 0-255 units) from ``numpy.random.default_rng(seed)``."""
    if sigma <= 0:
        return frames.copy()
    noise = np.random.default_rng(seed).normal(0.0, float(sigma), frames.shape)
    return np.rint(frames.astype(np.float64) + noise).clip(0, 255).astype(np.uint8)


def clip_seed(seed: int, sample_id: str) -> int:
    """A per-clip seed: the same for the same (seed, sample id) on every machine."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()[:8], "little")


def run_start(num_frames: int, fraction: float, seed: int, sample_id: str) -> int:
    """Seeded start of a run of ``round(fraction * T)`` frames (0 for the whole clip)."""
    n = run_length(num_frames, fraction)
    return int(np.random.default_rng(clip_seed(seed, sample_id)).integers(0, num_frames - n + 1))


# -- boxes and donors ----------------------------------------------------------------------------
def mouth_boxes(sample: Sample) -> np.ndarray:
    """``(T, 4)`` mouth boxes: the synthetic corpus's own, else from the (detected) face boxes."""
    from tfgbench.face.crops import mouth_from_face

    box = sample.meta.get("mouth_box")
    if box is not None:
        return np.asarray(box, dtype=np.int64).reshape(-1, 4)
    faces = sample.boxes
    if faces is None:
        from tfgbench.data.boxes import detect_face_boxes

        faces = detect_face_boxes(sample.frames)
    return mouth_from_face(faces)


def donor_candidates(path: Path) -> list[Path]:
    """Other clips of the same speaker: the other ``.mp4`` files in the clip's folder, sorted."""
    return sorted(p for p in path.parent.glob("*.mp4") if p.name != path.name)


def load_donor(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frames and mouth boxes of a donor clip: boxes from the synthetic alignment JSON or a
    TalkLip ``.npy`` face-box file beside it, else detected."""
    from tfgbench.data.boxes import boxes_beside, detect_face_boxes, load_box_file
    from tfgbench.face.crops import mouth_from_face
    from tfgbench.media.io import read_video

    frames = read_video(path, audio=False).frames
    boxes = boxes_beside(path, "mouth_boxes")
    if boxes is None:
        npy = path.with_suffix(".npy")
        faces = load_box_file(npy, len(frames)) if npy.is_file() else detect_face_boxes(frames)
        boxes = mouth_from_face(faces)
    if len(boxes) < len(frames):
        raise SampleError(f"{path}: {len(boxes)} mouth boxes for {len(frames)} frames")
    return frames, boxes[: len(frames)]


# -- the plugin ----------------------------------------------------------------------------------
def normalise(kind: str, amount: Any = None, region: str = "mouth", seed: int = 0) -> dict[str, Any]:
    """The settings that define a degradation's output, validated: only those the kind uses,
    and ``{"kind": "none"}`` for an amount that changes nothing (so equal outputs share a key)."""
    if kind not in KINDS:
        raise TfgbenchError(f"degrade: unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    spec = KINDS[kind]
    if kind == "none":
        return {"kind": "none"}
    value = spec.default if amount is None else amount
    try:
        value = float(value)
    except (TypeError, ValueError) as e:
        raise TfgbenchError(f"degrade: amount for {kind} must be a number, got {amount!r}") from e
    if spec.integer:
        if value != int(value):
            raise TfgbenchError(f"degrade: amount for {kind} ({spec.unit}) must be an integer, got {amount!r}")
        value = int(value)
    if not spec.low <= value <= spec.high:
        raise TfgbenchError(f"degrade: amount for {kind} ({spec.unit}) must lie in [{spec.low}, {spec.high}], "
                            f"got {amount!r}")
    if spec.identity is not None and value == spec.identity:
        return {"kind": "none"}
    settings: dict[str, Any] = {"kind": kind, "amount": value}
    if kind == "freeze":
        if region not in REGIONS:
            raise TfgbenchError(f"degrade: region must be one of {', '.join(REGIONS)}, got {region!r}")
        settings["region"] = region
    if spec.seeded:
        settings["seed"] = int(seed)
    return settings


def label(settings: dict[str, Any]) -> str:
    """``degrade:blur=2``, ``degrade:freeze=0.5,region=frame``, ``degrade:none``."""
    if settings["kind"] == "none":
        return "degrade:none"
    extra = [f"region={settings['region']}"] if settings.get("region", "mouth") != "mouth" else []
    extra += [f"seed={settings['seed']}"] if settings.get("seed", 0) else []
    return f"degrade:{settings['kind']}={settings['amount']:g}" + "".join("," + e for e in extra)


class Degrade(TalkingFaceModel):
    """The ground truth, degraded in one controlled way (see the module docstring).

    Settings (``--model-arg``): ``kind`` (default ``none``), ``amount`` (default per kind),
    ``region`` (``freeze`` only: ``mouth`` or ``frame``), ``seed`` (``freeze``, ``noise``,
    ``mouth-swap``). They form the settings key; the model name in results is the label, e.g.
    ``degrade:jpeg=20``.
    """

    name = "degrade"
    cache_outputs = False  # cheaper to recompute than to decode from the cache
    takes_checkpoint = False

    def __init__(self, device: str = "cpu", checkpoint: str | Path | None = None, kind: str = "none",
                 amount: Any = None, region: str = "mouth", seed: int = 0) -> None:
        if checkpoint is not None:
            raise TfgbenchError("model 'degrade' takes no checkpoint (it transforms the ground truth); "
                                "drop --checkpoint")
        super().__init__(device, None, **normalise(str(kind), amount, str(region), int(seed)))
        self.label = label(self.settings)
        self._donors: dict[Path, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(training_data="none", licence="n/a", reference_frame="none")

    @property
    def uses_boxes(self) -> bool:
        """Mouth regions come from the sample's boxes (the runner loads them only when asked)."""
        return self.settings["kind"] == "mouth-swap" or self.settings.get("region") == "mouth"

    def generate(self, sample: Sample) -> np.ndarray:
        s = self.settings
        kind, frames = s["kind"], sample.frames
        amount = s.get("amount")
        if kind == "none":
            return frames.copy()
        if kind == "shift":
            return shift_frames(frames, amount)
        if kind == "blur":
            return blur_frames(frames, amount)
        if kind == "jpeg":
            return jpeg_frames(frames, amount)
        if kind == "h264":
            return h264_frames(frames, amount)
        if kind == "downscale":
            return downscale_frames(frames, amount)
        if kind == "noise":
            return noise_frames(frames, amount, clip_seed(s["seed"], sample.id))
        start = run_start(sample.num_frames, amount, s["seed"], sample.id)
        if kind == "freeze":
            boxes = mouth_boxes(sample) if s["region"] == "mouth" else None
            return freeze_frames(frames, amount, start, boxes)
        donor, donor_boxes = self._donor(sample)
        return mouth_swap_frames(frames, mouth_boxes(sample), donor, donor_boxes, amount, start)

    def _donor(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        if sample.path is None:
            raise SampleError(f"{sample.where()}: mouth-swap needs the sample's file to find another clip "
                              "of the same speaker beside it")
        candidates = donor_candidates(Path(sample.path))
        if not candidates:
            raise SampleError(f"{sample.path}: mouth-swap found no other clip of the same speaker in "
                              f"{Path(sample.path).parent}")
        path = candidates[clip_seed(self.settings["seed"], sample.id) % len(candidates)]
        if path not in self._donors:
            if len(self._donors) >= 4:
                self._donors.pop(next(iter(self._donors)))
            self._donors[path] = load_donor(path)
        return self._donors[path]
