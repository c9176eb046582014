"""``SyncScorer``: one protocol's frame preparation + SyncNet + official scoring, for arrays and
files; many files are scored with the next clip decoded while the network runs on the current one.

Frame preparation per protocol (:mod:`tfgbench.metrics.lse.protocols`):

* ``frame``: (JPEG round trip ->) BGR -> ``cv2.resize`` to ``size`` x ``size`` (bilinear).
* ``tracks``: ``-qscale:v 2`` JPEG round trip, face detection, IOU tracks, crop_scale crops resized
  to 224, default JPEG round trip of the crop sequence; each track scored with its own audio span,
  LSE-C / LSE-D averaged over tracks, offset ``int(mean)``.
* ``boxes``: crops around the sample's face boxes (see :func:`box_crops`).
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tfgbench.data.sample import SAMPLES_PER_FRAME
from tfgbench.errors import MediaError, TfgbenchError
from tfgbench.metrics.lse.protocols import CONFIGS, NoFaceError
from tfgbench.metrics.lse.scoring import SyncResult, evaluate_clip, evaluate_clips, quantize_audio

SYNTHETIC_WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "syncnet-synthetic.safetensors"


@dataclass
class Prepared:
    """A clip ready for the network: one ``(L, S, S, 3)`` uint8 BGR array per face track, the
    first frame of each, and the int16-quantised audio of the whole clip."""

    clips: list[np.ndarray]
    starts: list[int]
    audio: np.ndarray
    where: str


def box_crops(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Lower-face crops for the synthetic protocol: per frame a square of side ``0.7 w`` (``w`` =
    face-box width, median over the clip: a steady crop) centred at ``(cx, y1 + 0.8 h)`` (the mouth
    region), edge-padded, resized to ``size``. ``frames`` uint8 ``(T, H, W, C)``, ``boxes`` ``(T, 4)``."""
    import cv2

    b = np.asarray(boxes, dtype=np.float64)
    w = float(np.median(b[:, 2] - b[:, 0]))
    side = max(8, int(round(0.7 * w)))
    half = side // 2
    cx = np.rint((b[:, 0] + b[:, 2]) / 2).astype(int)
    cy = np.rint(b[:, 1] + 0.8 * (b[:, 3] - b[:, 1])).astype(int)
    pad = side
    out = np.empty((len(frames), size, size, frames.shape[3]), dtype=np.uint8)
    for i, frame in enumerate(frames):
        padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        y0, x0 = cy[i] - half + pad, cx[i] - half + pad
        out[i] = cv2.resize(padded[y0:y0 + side, x0:x0 + side], (size, size), interpolation=cv2.INTER_AREA)
    return out


def _resize_all(frames: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if frames.shape[1:3] == (size, size):
        return frames
    return np.stack([cv2.resize(f, (size, size)) for f in frames])


class SyncScorer:
    """Scores clips under one LSE protocol.

    Args:
        protocol: ``lse/wav2lip``, ``lse/wav2lip-nojpeg``, ``lse/syncnet-python`` or ``lse/synthetic``.
        weights: SyncNet weights: ``syncnet_v2.model`` for the official protocols (else
            ``$TFGBENCH_SYNCNET``, then ``$TFGBENCH_HOME/weights/syncnet_v2.model``); a tfgbench
            safetensors checkpoint for ``lse/synthetic`` (default: the shipped one).
        device: torch device.
        s3fd: ``sfd_face.pth`` for ``lse/syncnet-python`` (else ``$TFGBENCH_S3FD``, the home
            folder, then the offline Haar detector).
        threads: torch intra-op threads (``None``: leave as is).
    """

    def __init__(self, protocol: str = "lse/wav2lip", weights: str | Path | None = None,
                 device: str = "cpu", s3fd: str | Path | None = None, threads: int | None = None) -> None:
        from tfgbench.paths import find_file, sha256_file

        if protocol not in CONFIGS:
            raise TfgbenchError(f"unknown LSE protocol {protocol!r}; choose from {', '.join(CONFIGS)}")
        if threads:
            torch.set_num_threads(threads)
        self.protocol, self.config, self.device = protocol, CONFIGS[protocol], device
        if self.config.weights == "official":
            from tfgbench.metrics.lse.syncnet import SYNCNET_ORIGIN, load_syncnet_v2

            path = find_file("SyncNet weights", weights, "TFGBENCH_SYNCNET", "syncnet_v2.model",
                             SYNCNET_ORIGIN, flag="--syncnet")
            self.model = load_syncnet_v2(path, device)
        else:
            from tfgbench.metrics.lse.syncnet import load_synthetic

            path = Path(weights) if weights is not None else SYNTHETIC_WEIGHTS
            self.model = load_synthetic(path, device)
        self.weights_path = path
        self.sha256 = sha256_file(path)
        self.detector = None
        if self.config.crop == "tracks":
            from tfgbench.face import get_detector

            self.detector = get_detector(s3fd, device)
            self.sha256 = f"{self.sha256}+{self.detector.name}:{self.detector.sha256}"

    # ---------------- preparation (numpy / OpenCV / PyAV, no network) ----------------
    def prepare(self, frames: np.ndarray, audio: np.ndarray, boxes: np.ndarray | None = None,
                where: str = "clip") -> Prepared:
        """Prepare RGB uint8 frames ``(T, H, W, 3)`` and float32 16 kHz audio."""
        from tfgbench.metrics.lse.jpeg import roundtrip_rgb

        cfg = self.config
        audio = quantize_audio(audio)
        if cfg.crop == "frame":
            bgr = roundtrip_rgb(frames) if cfg.jpeg else np.ascontiguousarray(frames[..., ::-1])
            return Prepared([_resize_all(bgr, cfg.size)], [0], audio, where)
        if cfg.crop == "boxes":
            if boxes is None:
                from tfgbench.data.boxes import detect_face_boxes

                boxes = detect_face_boxes(frames)
            bgr = np.ascontiguousarray(frames[..., ::-1])
            return Prepared([box_crops(bgr, boxes, cfg.size)], [0], audio, where)
        return self._prepare_tracks(roundtrip_rgb(frames, qscale=2), audio, where)

    def prepare_file(self, path: str | Path) -> Prepared:
        """Decode a video file (in memory) and prepare it; JPEG round trips start from the
        decoded pixel format exactly as the ffmpeg CLI does."""
        from tfgbench.media.io import read_video
        from tfgbench.metrics.lse.jpeg import decode_roundtrip

        where = str(path)
        media = read_video(path, video=not self.config.jpeg, audio=True)
        if media.audio is None or media.audio.size == 0:
            raise MediaError(f"{where}: has no audio track; LSE needs the driving audio")
        boxes = None
        if self.config.crop == "boxes":  # a synthetic clip carries its exact face boxes beside it
            from tfgbench.data.boxes import boxes_beside

            boxes = boxes_beside(path, "face_boxes")
        if not self.config.jpeg:
            return self.prepare(media.frames, media.audio, boxes, where=where)
        try:
            bgr = np.stack(list(decode_roundtrip(path, qscale=2 if self.config.crop == "tracks" else None)))
        except Exception as e:
            raise MediaError(f"{where}: cannot decode the video frames ({e})") from e
        audio = quantize_audio(media.audio)
        if self.config.crop == "frame":
            return Prepared([_resize_all(bgr, self.config.size)], [0], audio, where)
        return self._prepare_tracks(bgr, audio, where)

    def _prepare_tracks(self, bgr: np.ndarray, audio: np.ndarray, where: str) -> Prepared:
        from tfgbench.face.track import crop_track, track_faces
        from tfgbench.metrics.lse.jpeg import roundtrip_rgb

        t, h, w = bgr.shape[:3]
        detections = self.detector.detect(np.ascontiguousarray(bgr[..., ::-1]))
        min_track = max(6, min(100, math.ceil(t / 2)))
        tracks = track_faces(detections, min_track=min_track - 1, min_face_size=min(100, min(h, w) / 8))
        if not tracks:
            found = sum(len(d) > 0 for d in detections)
            raise NoFaceError(f"{where}: no face track of at least {min_track} frames "
                              f"({self.detector.name} found faces in {found} of {t} frames)")
        clips, starts = [], []
        for tr in tracks:
            crops = crop_track(bgr, tr, self.config.crop_scale, self.config.size)
            # the official evaluate() re-extracts the crop video's frames as default-quality JPEGs
            clips.append(roundtrip_rgb(crops[..., ::-1]))
            starts.append(int(tr.frames[0]))
        return Prepared(clips, starts, audio, where)

    # ---------------- scoring (network) ----------------
    def _tensor(self, clip: np.ndarray) -> torch.Tensor:
        # (L, S, S, 3) uint8 -> (L, 3, S, S) float, channels-last memory (what embed_video wants)
        return torch.from_numpy(clip).permute(0, 3, 1, 2).float()

    def _track_audio(self, prep: Prepared, clip: np.ndarray, start: int) -> np.ndarray:
        return prep.audio[start * SAMPLES_PER_FRAME:(start + len(clip)) * SAMPLES_PER_FRAME] \
            if len(prep.clips) > 1 or start else prep.audio

    @staticmethod
    def _combine(results: list[SyncResult]) -> SyncResult:
        """One clip's result from its tracks' (the mean over tracks, offset ``int(mean)``)."""
        if len(results) == 1:
            return results[0]
        return SyncResult(offset=int(np.mean([r.offset for r in results])),
                          lse_c=float(np.mean([r.lse_c for r in results])),
                          lse_d=float(np.mean([r.lse_d for r in results])),
                          num_windows=sum(r.num_windows for r in results),
                          mean_dists=np.mean([r.mean_dists for r in results], 0))

    def score_prepared(self, prep: Prepared) -> SyncResult:
        results = [evaluate_clip(self.model, self._tensor(clip), self._track_audio(prep, clip, start),
                                 self.config.vshift, prep.where)
                   for clip, start in zip(prep.clips, prep.starts, strict=True)]
        return self._combine(results)

    def score_prepared_many(self, preps: Sequence[Prepared | Exception]) -> list[SyncResult | Exception]:
        """Score several prepared clips with shared network passes (:func:`evaluate_clips`); an
        exception in ``preps``, or one a clip raises, is that clip's result."""
        clips, audios, wheres, owner = [], [], [], []
        for k, prep in enumerate(preps):
            if isinstance(prep, Exception):
                continue
            for clip, start in zip(prep.clips, prep.starts, strict=True):
                clips.append(self._tensor(clip))
                audios.append(self._track_audio(prep, clip, start))
                wheres.append(prep.where)
                owner.append(k)
        results = evaluate_clips(self.model, clips, audios, self.config.vshift, wheres)
        out: list[SyncResult | Exception] = []
        for k, prep in enumerate(preps):
            mine = [r for o, r in zip(owner, results) if o == k]
            errors = [r for r in mine if isinstance(r, Exception)]
            out.append(prep if isinstance(prep, Exception) else errors[0] if errors else self._combine(mine))
        return out

    def score_frames(self, frames: np.ndarray, audio: np.ndarray, boxes: np.ndarray | None = None,
                     where: str = "clip") -> SyncResult:
        """Score RGB uint8 frames ``(T, H, W, 3)`` at 25 fps against float32 16 kHz audio."""
        return self.score_prepared(self.prepare(frames, audio, boxes, where))

    def score_file(self, path: str | Path) -> SyncResult:
        return self.score_prepared(self.prepare_file(path))

    def score_files(self, paths: Iterable[str | Path], depth: int = 2
                    ) -> Iterator[tuple[Path, SyncResult | TfgbenchError]]:
        """Score many files; a background thread decodes and prepares up to ``depth`` clips ahead
        while the network runs. Yields ``(path, result or the TfgbenchError it raised)``."""
        q: queue.Queue = queue.Queue(maxsize=depth)
        paths = [Path(p) for p in paths]

        def work() -> None:
            for p in paths:
                try:
                    q.put((p, self.prepare_file(p)))
                except TfgbenchError as e:
                    q.put((p, e))
                except Exception as e:  # keep the consumer alive; report as a media error
                    q.put((p, MediaError(f"{p}: {type(e).__name__}: {e}")))

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        for _ in paths:
            p, item = q.get()
            if isinstance(item, TfgbenchError):
                yield p, item
                continue
            try:
                yield p, self.score_prepared(item)
            except TfgbenchError as e:
                yield p, e
        thread.join()
