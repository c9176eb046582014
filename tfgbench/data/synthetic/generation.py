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

#: 1: first release. 2: anticipatory coarticulation (the mouth no longer lags the sound by ~12 ms),
#: voices alternate male/female by speaker index.
GENERATOR_VERSION = "2"
REFERENCE_ESPEAK = "1.51"
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


def corpus_version(seed: int = 0, sizes: dict[str, tuple[int, int]] | None = None, size: int = FRAME_SIZE,
                   espeak: str | None = None) -> str:
    """``"synthetic-v<generator>-s<seed>"``, plus a short hash when sizes or frame size differ
    from the defaults, plus ``-espeak<version>`` when espeak-ng is not the reference 1.51 (the
    wheel and Debian 12's system library are both 1.51 and give identical audio; other releases
    pronounce differently). ``espeak=None`` asks the installed library. Part of every result's key."""
    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    version = f"synthetic-v{GENERATOR_VERSION}-s{seed}"
    if sizes != DEFAULT_SIZES or size != FRAME_SIZE:
        key = json.dumps({"sizes": sorted(sizes.items()), "size": size}, sort_keys=True)
        version += "-" + hashlib.sha1(key.encode()).hexdigest()[:8]
    if espeak is None:
        from tfgbench.data.synthetic.speech import installed_espeak_version

        espeak = installed_espeak_version()
    if espeak not in (REFERENCE_ESPEAK, ""):
        version += f"-espeak{espeak}"
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
    todo = [s for s in SPLIT_ORDER if s in splits and s not in manifest["splits"]]
    if not todo:
        return
    tmp = out / f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for split, entries in _render(tmp, todo, seed, sizes, size, workers, progress):
            final = out / split
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp / split, final)
            manifest["clips"] = [c for c in manifest["clips"] if c["split"] != split] + entries
            manifest["splits"] = [s for s in SPLIT_ORDER if s in set(manifest["splits"]) | {split}]
            part = manifest_path.with_name(f".manifest.{os.getpid()}.json")
            part.write_text(json.dumps(manifest, indent=1))
            os.replace(part, manifest_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _render(tmp: Path, splits: list[str], seed: int, sizes: dict, size: int, workers: int | None,
            progress: bool):
    """Render the clips of ``splits`` into ``tmp/<split>/``; yield ``(split, manifest entries)``
    as each split completes.

    Workers are fresh interpreters (``python -m tfgbench.data.synthetic.worker``), not forks:
    forking a process that has threads (tqdm's monitor, OpenCV's or BLAS's pools, a caller's
    threads) can deadlock the child, and multiprocessing's spawn would re-run an unguarded
    ``__main__`` that asked for the dataset. Each worker renders every ``workers``-th clip."""
    from tqdm import tqdm

    specs = [spec for split in splits for spec in clip_specs(split, seed, sizes)]
    remaining = {split: sum(1 for sp in specs if sp.split == split) for split in splits}
    workers = max(1, min(workers or os.cpu_count() or 1, len(specs)))
    bar = tqdm(total=len(specs), desc=f"synthetic corpus ({', '.join(splits)})", unit="clip",
               disable=not progress)
    done: dict[str, list[dict]] = {split: [] for split in splits}
    try:
        if workers == 1:
            _init_worker(seed, sizes, size, str(tmp))
            results = (_job(spec) for spec in specs)
        else:
            results = _subprocess_results(tmp, specs, seed, sizes, size, workers)
        for entry in results:
            bar.update()
            split = entry["split"]
            done[split].append(entry)
            remaining[split] -= 1
            if remaining[split] == 0:
                yield split, sorted(done[split], key=lambda e: e["id"])
    finally:
        bar.close()


def _subprocess_results(tmp: Path, specs: list[ClipSpec], seed: int, sizes: dict, size: int, workers: int):
    """Manifest entries from ``workers`` worker processes, as they finish clips."""
    import selectors
    import subprocess
    import sys
    import tempfile
    from dataclasses import asdict

    from tfgbench.errors import TfgbenchError

    package_root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    procs = []
    sel = selectors.DefaultSelector()
    try:
        for w in range(workers):
            err = tempfile.TemporaryFile()
            proc = subprocess.Popen([sys.executable, "-m", "tfgbench.data.synthetic.worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, env=env)
            job = {"seed": seed, "sizes": {k: list(v) for k, v in sizes.items()}, "size": size, "out": str(tmp),
                   "specs": [asdict(s) for s in specs[w::workers]]}
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
            procs.append((proc, err))
            sel.register(proc.stdout, selectors.EVENT_READ, (proc, err))
        open_streams = len(procs)
        while open_streams:
            for key, _ in sel.select():
                proc, err = key.data
                line = key.fileobj.readline()
                if line:
                    yield json.loads(line)
                    continue
                sel.unregister(key.fileobj)
                open_streams -= 1
                if proc.wait() != 0:
                    err.seek(0)
                    tail = err.read().decode(errors="replace").strip().splitlines()[-8:]
                    raise TfgbenchError(f"{tmp.parent}: a corpus generator process failed (exit {proc.returncode}):\n"
                                        + "\n".join(tail) + "\nThe splits finished so far are kept; run again.")
    finally:
        for proc, err in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            err.close()
        sel.close()


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
