"""Generate the synthetic corpus on disk: clips in parallel, a manifest, atomic and locked.

Layout of a corpus directory::

    manifest.json            version, seed, sizes, espeak backend, package versions, every clip
                             with the sha256 of its three files
    speakers.json            every speaker's face identity and voice
    <split>/<speaker>/uNNN.mp4   H.264 (yuv444p crf 0, "near-lossless") + AAC 16 kHz mono
    <split>/<speaker>/uNNN.txt   the transcript (lower-case GRID words)
    <split>/<speaker>/uNNN.json  alignment and ground truth (see clip.Clip.alignment)

Split directories: ``train``, ``val``, ``test`` (dataset ``synthetic``) and ``ood`` (dataset
``synthetic-ood``, split ``test``). Every clip is a pure function of (seed, speaker, utterance),
so splits can be generated separately and in any order, by any number of processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tfgbench.data.synthetic.identity import Speaker, make_speaker

GENERATOR_VERSION = "1"
VIDEO_QUALITY = "near-lossless"
FRAME_SIZE = 128

#: split directory -> (speakers, utterances per speaker, style pool, first speaker index, id prefix)
DEFAULT_SIZES: dict[str, tuple[int, int]] = {"train": (32, 60), "val": (4, 20), "test": (8, 25), "ood": (4, 25)}
SPLIT_ORDER = ("train", "val", "test", "ood")


@dataclass(frozen=True)
class ClipSpec:
    split: str
    speaker_index: int
    speaker_id: str
    pool: str
    utterance: int

    @property
    def id(self) -> str:
        return f"{self.speaker_id}/u{self.utterance:03d}"


def corpus_version(seed: int = 0, sizes: dict[str, tuple[int, int]] | None = None, size: int = FRAME_SIZE) -> str:
    """``"synthetic-v<generator>-s<seed>"``, plus a short hash when sizes or frame size differ
    from the defaults. Part of every stored result's key."""
    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    version = f"synthetic-v{GENERATOR_VERSION}-s{seed}"
    if sizes != DEFAULT_SIZES or size != FRAME_SIZE:
        key = json.dumps({"sizes": sorted(sizes.items()), "size": size}, sort_keys=True)
        version += "-" + hashlib.sha1(key.encode()).hexdigest()[:8]
    return version


def speakers(seed: int = 0, sizes: dict[str, tuple[int, int]] | None = None) -> dict[str, list[Speaker]]:
    """The speakers of every split. Main-pool speakers are numbered across train, val and test
    (``s00``...), OOD speakers separately (``o00``...); each is drawn from its own index."""
    sizes = DEFAULT_SIZES if sizes is None else sizes
    out: dict[str, list[Speaker]] = {}
    index = 0
    for split in ("train", "val", "test"):
        n = sizes.get(split, (0, 0))[0]
        out[split] = [make_speaker(seed, index + i, f"s{index + i:02d}", "main") for i in range(n)]
        index += n
    n = sizes.get("ood", (0, 0))[0]
    out["ood"] = [make_speaker(seed, 1000 + i, f"o{i:02d}", "ood") for i in range(n)]
    return out


def _speaker_index(sp: Speaker) -> int:
    return 1000 + int(sp.id[1:]) if sp.pool == "ood" else int(sp.id[1:])


def clip_specs(split: str, seed: int = 0, sizes: dict[str, tuple[int, int]] | None = None) -> list[ClipSpec]:
    sizes = DEFAULT_SIZES if sizes is None else sizes
    n_utt = sizes[split][1]
    return [ClipSpec(split, _speaker_index(sp), sp.id, sp.pool, u)
            for sp in speakers(seed, sizes)[split] for u in range(n_utt)]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_WORKER: dict = {}


def _init_worker(seed: int, sizes: dict, size: int, out: str) -> None:
    import cv2

    cv2.setNumThreads(1)
    by_id = {sp.id: sp for group in speakers(seed, sizes).values() for sp in group}
    _WORKER.update(seed=seed, speakers=by_id, size=size, out=Path(out))


def write_clip(out: Path, spec: ClipSpec, seed: int, speaker: Speaker, size: int = FRAME_SIZE) -> dict:
    """Render one clip and write its mp4, txt and json under ``out/<split>``; return its
    manifest entry."""
    from tfgbench.data.synthetic.clip import make_clip
    from tfgbench.media.io import write_video

    clip = make_clip(seed, speaker, spec.speaker_index, spec.utterance, size)
    base = out / spec.split / spec.speaker_id / f"u{spec.utterance:03d}"
    base.parent.mkdir(parents=True, exist_ok=True)
    mp4, txt, js = base.with_suffix(".mp4"), base.with_suffix(".txt"), base.with_suffix(".json")
    write_video(mp4, clip.frames, clip.audio, quality=VIDEO_QUALITY, threads=1)
    txt.write_text(clip.transcript + "\n")
    js.write_text(json.dumps(clip.alignment(f"tfgbench-synthetic-{GENERATOR_VERSION}"), separators=(",", ":")))
    return {"id": spec.id, "split": spec.split, "speaker": spec.speaker_id, "transcript": clip.transcript,
            "num_frames": int(len(clip.frames)),
            "files": {"mp4": _sha256(mp4), "txt": _sha256(txt), "json": _sha256(js)}}


def _job(spec: ClipSpec) -> dict:
    w = _WORKER
    return write_clip(w["out"], spec, w["seed"], w["speakers"][spec.speaker_id], w["size"])


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tfgbench", "numpy", "opencv-python-headless", "av", "soxr", "espeak-english"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def generate(out: str | Path, seed: int = 0, splits: tuple[str, ...] = SPLIT_ORDER,
             sizes: dict[str, tuple[int, int]] | None = None, size: int = FRAME_SIZE,
             workers: int | None = None, progress: bool = True) -> Path:
    """Generate ``splits`` of the corpus into ``out`` (created if needed); splits already in
    its manifest are kept. Each split is written to a temporary folder and renamed into place,
    then the manifest is replaced atomically. Returns ``out``."""
    from tfgbench.errors import TfgbenchError

    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    unknown = [s for s in splits if s not in sizes]
    if unknown:
        raise TfgbenchError(f"unknown split(s) {', '.join(unknown)}; choose from {', '.join(SPLIT_ORDER)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out.parent / f".{out.name}.lock"):
        _generate_locked(out, seed, splits, sizes, size, workers, progress)
    return out


def _generate_locked(out: Path, seed: int, splits: tuple[str, ...], sizes: dict, size: int,
                     workers: int | None, progress: bool) -> None:
    from tfgbench.data.synthetic.speech import espeak_version, find_backend
    from tfgbench.errors import TfgbenchError

    version = corpus_version(seed, sizes, size)
    manifest_path = out / "manifest.json"
    backend = find_backend()
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("version") != version:
            raise TfgbenchError(f"{out} holds corpus {manifest.get('version')!r}, not {version!r}; "
                                "choose another --out folder or delete it")
    else:
        manifest = {"corpus": "tfgbench-synthetic", "generator_version": GENERATOR_VERSION, "version": version,
                    "seed": seed, "frame_size": size, "fps": 25, "sample_rate": 16000,
                    "video_quality": VIDEO_QUALITY, "sizes": {k: list(v) for k, v in sizes.items()},
                    "espeak": {"backend": backend.name, "version": espeak_version(backend)},
                    "packages": _package_versions(), "splits": [], "clips": []}
    all_speakers = speakers(seed, sizes)
    (out / "speakers.json").write_text(json.dumps(
        {split: [sp.to_dict() for sp in group] for split, group in all_speakers.items()}, indent=1))
    for split in [s for s in SPLIT_ORDER if s in splits and s not in manifest["splits"]]:
        entries = _generate_split(out, split, seed, sizes, size, workers, progress)
        manifest["clips"] = [c for c in manifest["clips"] if c["split"] != split] + entries
        manifest["splits"] = [s for s in SPLIT_ORDER if s in set(manifest["splits"]) | {split}]
        tmp = manifest_path.with_name(f".manifest.{os.getpid()}.json")
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, manifest_path)


def _generate_split(out: Path, split: str, seed: int, sizes: dict, size: int, workers: int | None,
                    progress: bool) -> list[dict]:
    import multiprocessing as mp

    from tqdm import tqdm

    specs = clip_specs(split, seed, sizes)
    tmp = out / f".tmp-{split}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    workers = max(1, min(workers or os.cpu_count() or 1, len(specs)))
    bar = tqdm(total=len(specs), desc=f"synthetic corpus: {split}", unit="clip", disable=not progress)
    entries = []
    try:
        if workers == 1:
            _init_worker(seed, sizes, size, str(tmp))
            for spec in specs:
                entries.append(_job(spec))
                bar.update()
        else:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(workers, _init_worker, (seed, sizes, size, str(tmp))) as pool:
                for entry in pool.imap(_job, specs, chunksize=2):
                    entries.append(entry)
                    bar.update()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    final = out / split
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp / split, final)
    shutil.rmtree(tmp, ignore_errors=True)
    return sorted(entries, key=lambda e: e["id"])


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock on ``path`` (POSIX ``flock``; a no-op where unavailable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover (Windows)
            pass
        yield


def ensure_corpus(root: Path, seed: int = 0, splits: tuple[str, ...] = SPLIT_ORDER, progress: bool = True) -> Path:
    """Make sure the default corpus at ``root`` has ``splits``, generating what is missing under
    a lock (two processes never generate into the same folder at once)."""
    manifest = root / "manifest.json"
    if manifest.is_file() and set(splits) <= set(json.loads(manifest.read_text()).get("splits", [])):
        return root
    start = time.time()
    if progress:
        print(f"tfgbench: generating the synthetic corpus into {root} (once; a few minutes)", flush=True)
    generate(root, seed=seed, splits=splits, progress=progress)  # locked; skips splits already there
    if progress:
        print(f"tfgbench: synthetic corpus ready in {time.time() - start:.0f} s", flush=True)
    return root
