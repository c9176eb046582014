"""Speech with per-phoneme timing from libespeak-ng's C API (ctypes).

Backends: the ``espeak-english`` wheel (bundles libespeak-ng 1.51 and its English data; the
default, pip alone) or the system ``espeak-ng`` (Debian ``libespeak-ng1``). ``$TFGBENCH_ESPEAK``
picks one: ``wheel``, ``system``, or the path of a ``libespeak-ng.so``.

Timing: ``espeak_Initialize`` gets ``espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA``
(0x1 | 0x2); the synth callback receives a PHONEME event at the start of every phoneme, with its
position in the output in samples at 22050 Hz (``sample``; ``audio_position`` is the same in
whole ms). A phoneme ends where the next event starts. Each event also carries the text
position of the word it belongs to, which is how phonemes are assigned to words (WORD events
are not used: espeak sometimes places them at the previous word's last phoneme). Empty-named
events are pauses.

Voices: a speaker's voice is an espeak language voice (``en`` British, ``en-us``) plus a voice
*variant* file that tfgbench writes (formant scaling, pitch range in Hz, breathiness,
roughness, flutter) and the ``pitch``/``range``/``rate``/``wordgap`` parameters.

Determinism (measured, espeak-ng 1.51): libespeak-ng keeps synthesis state in C statics
(glottal phase, flutter, echo buffers) that ``espeak_Initialize`` does not reset, so the same
sentence comes out differently depending on what the process said before; breathy variants also
call libc ``rand()``. Each utterance is therefore synthesised by a freshly loaded private copy of
the library (``dlopen`` of a copy in a work directory, ``dlclose`` after: about 3 ms) with
``srand(seed)``. The same text, voice and seed then give identical samples in any process.
"""

from __future__ import annotations

import _ctypes
import ctypes
import ctypes.util
import glob
import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tfgbench.data.sample import SAMPLE_RATE
from tfgbench.errors import MissingResourceError, TfgbenchError

ESPEAK_RATE = 22050
_INIT_OPTIONS = 0x1 | 0x2  # phoneme events, with IPA names
_EV_LIST_TERMINATED, _EV_PHONEME = 0, 7
_PARAM = {"rate": 1, "pitch": 3, "range": 4, "wordgap": 7}
_LOCK = threading.Lock()


class SpeechError(TfgbenchError):
    """espeak-ng failed or returned something unusable."""


class _Event(ctypes.Structure):
    # espeak_EVENT from speak_lib.h (x86-64 and aarch64 layout)
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


class _VoiceStruct(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte),
                ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int),
                ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """An espeak voice: language voice + variant file + synthesis parameters.

    ``formants`` are per-formant (F1..F5) frequency scales in percent; ``pitch_hz`` is the
    variant's pitch base and top in Hz, which ``pitch``/``range`` (0..100) then modulate;
    ``rate`` is in words per minute; ``wordgap`` in units of 10 ms.
    """

    base: str = "en"
    gender: str = "male"
    pitch_hz: tuple[int, int] = (82, 118)
    formants: tuple[int, int, int, int, int] = (100, 100, 100, 100, 100)
    breath: int = 0
    roughness: int = 0
    flutter: int = 64
    pitch: int = 50
    range: int = 50
    rate: int = 170
    wordgap: int = 0

    def variant_text(self) -> str:
        lines = ["language variant", f"name tfgbench-{self.gender}", f"gender {self.gender}",
                 f"pitch {self.pitch_hz[0]} {self.pitch_hz[1]}", f"flutter {self.flutter}",
                 f"roughness {self.roughness}"]
        lines += [f"formant {i + 1} {f} 100 100" for i, f in enumerate(self.formants)]
        if self.breath:
            b = self.breath
            lines.append(f"breath 0 {b} {b} {b} {b} {2 * b} {2 * b}")
            lines.append("breathw 0 150 150 150 100 100 100")
        return "\n".join(lines) + "\n"

    def variant_name(self) -> str:
        return "tfg" + hashlib.sha1(self.variant_text().encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Phone:
    """A phoneme (IPA as espeak names it, ``"_"`` for a pause) with start/end seconds and the
    index of its word (``-1`` for pauses)."""

    symbol: str
    start: float
    end: float
    word: int


@dataclass
class Speech:
    """Synthesised speech: ``audio`` float32 mono at 16 kHz and its phones (times in s)."""

    audio: np.ndarray
    phones: list[Phone]

    def word_times(self, num_words: int) -> list[tuple[float, float]]:
        """(start, end) of every word: its first phone's start, its last phone's end."""
        out = []
        for i in range(num_words):
            ph = [p for p in self.phones if p.word == i]
            if not ph:
                raise SpeechError(f"espeak produced no phonemes for word {i}")
            out.append((ph[0].start, ph[-1].end))
        return out


@dataclass(frozen=True)
class Backend:
    """Where libespeak-ng and its data live."""

    name: str
    library: Path
    data: Path  # the espeak-ng-data directory

    def describe(self) -> str:
        return f"{self.name} ({self.library})"


def _wheel_backend() -> Backend | None:
    try:
        import espeak_english
    except ImportError:
        return None
    return Backend("wheel", espeak_english.library_path(), espeak_english.data_path())


def _system_backend(library: str | None = None) -> Backend | None:
    if library is None:
        found = []
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                  "/usr/local/lib", "/opt/homebrew/lib"):
            found += sorted(glob.glob(f"{d}/libespeak-ng.so*")) + sorted(glob.glob(f"{d}/libespeak-ng*.dylib"))
        if not found:
            return None
        library = found[0]
    lib = Path(library).resolve()
    for d in (lib.parent / "espeak-ng-data", Path("/usr/share/espeak-ng-data"),
              Path("/usr/local/share/espeak-ng-data"), lib.parent.parent / "share" / "espeak-ng-data"):
        if (d / "phontab").is_file():
            return Backend("system", lib, d)
    return None


def find_backend() -> Backend:
    """The espeak-ng to use: ``$TFGBENCH_ESPEAK`` (wheel, system or a library path), else the
    wheel, else the system library. Raises :class:`MissingResourceError` when there is none."""
    choice = os.environ.get("TFGBENCH_ESPEAK", "").strip()
    if choice == "wheel":
        backend = _wheel_backend()
    elif choice == "system":
        backend = _system_backend()
    elif choice:
        backend = _system_backend(choice) if Path(choice).is_file() else None
    else:
        backend = _wheel_backend() or _system_backend()
    if backend is None:
        raise MissingResourceError(
            "espeak-ng is missing (the synthetic corpus speaks with it)"
            + (f"; TFGBENCH_ESPEAK={choice!r} found nothing" if choice else "")
            + ".\nInstall it with `pip install espeak-english` (bundles libespeak-ng 1.51), or the "
            "system package (`apt install libespeak-ng1`), or set TFGBENCH_ESPEAK to the path of "
            "libespeak-ng.so.")
    return backend


def _workdir(backend: Backend) -> Path:
    """A short-pathed directory with a private copy of the library and an espeak-ng-data that
    links to the backend's data and adds tfgbench's voice variants (espeak truncates data paths
    longer than ~150 characters)."""
    st = backend.library.stat()
    key = hashlib.sha1(f"{backend.library}|{st.st_size}|{st.st_mtime_ns}|{backend.data}".encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir())
    if len(str(base)) > 60:
        base = Path("/tmp")
    work = base / f"tfgbench-espeak-{os.getuid() if hasattr(os, 'getuid') else 0}-{key}"
    if (work / "ready").is_file():
        return work
    tmp = Path(tempfile.mkdtemp(prefix=work.name + ".", dir=base))
    shutil.copy2(backend.library, tmp / "libespeak-ng.so")
    data = tmp / "espeak-ng-data"
    variants = data / "voices" / "!v"
    variants.mkdir(parents=True)
    for entry in backend.data.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    voices = backend.data / "voices"
    if voices.is_dir():
        for entry in voices.iterdir():
            if entry.name != "!v":
                (data / "voices" / entry.name).symlink_to(entry)
    (tmp / "ready").write_text("ok\n")
    try:
        os.rename(tmp, work)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return work


def _write_variant(work: Path, voice: Voice) -> str:
    name = voice.variant_name()
    path = work / "espeak-ng-data" / "voices" / "!v" / name
    if not path.is_file():
        tmp = path.with_name(f".{name}.{os.getpid()}")
        tmp.write_text(voice.variant_text())
        os.replace(tmp, path)
    return name


_STATE: dict = {}


def _sanitize(name: str) -> str:
    # stress marks and espeak's ASCII-mnemonic markers (linking r "r-", ";") carry no mouth shape
    return name.replace("ˈ", "").replace("ˌ", "").replace(";", "").replace("-", "")


def synthesize(text: str, voice: Voice, word_starts: list[int], seed: int = 0,
               backend: Backend | None = None) -> Speech:
    """Say ``text`` with ``voice``; ``word_starts`` are the 1-based character offsets of the
    words in ``text`` (see :func:`grammar.spoken_text`). Returns 16 kHz audio and timed phones."""
    backend = backend or find_backend()
    with _LOCK:
        work = _STATE.get(backend)
        if work is None:
            work = _STATE[backend] = _workdir(backend)
        variant = _write_variant(work, voice)
        pcm, events = _run(work, text, f"{voice.base}+{variant}", voice, seed)
    return _to_speech(pcm, events, word_starts, text)


def _run(work: Path, text: str, voice_name: str, voice: Voice, seed: int):
    chunks: list[np.ndarray] = []
    events: list[tuple[int, int, int, str]] = []

    def callback(wav, n, ev):  # called synchronously from espeak_Synth
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while ev[i].type != _EV_LIST_TERMINATED:
            e = ev[i]
            if e.type == _EV_PHONEME:
                name = bytes(e.id).split(b"\0")[0].decode("utf-8", "replace")
                events.append((e.text_position, e.sample, e.audio_position, name))
            i += 1
        return 0

    cb = _CALLBACK(callback)
    lib = ctypes.CDLL(str(work / "libespeak-ng.so"))
    try:
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        rate = lib.espeak_Initialize(2, 0, str(work).encode(), _INIT_OPTIONS)  # 2: synchronous
        if rate != ESPEAK_RATE:
            raise SpeechError(f"espeak_Initialize failed ({rate}) with data in {work}")
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback(cb)
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        if lib.espeak_SetVoiceByName(voice_name.encode()) != 0:
            raise SpeechError(f"espeak-ng has no voice {voice_name!r}")
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_VoiceStruct)
        ident = (lib.espeak_GetCurrentVoice().contents.identifier or b"").decode()
        if not ident.endswith(voice_name.split("+")[1]):
            # espeak silently keeps the language voice when it cannot read a variant file
            raise SpeechError(f"espeak-ng did not load the voice variant {voice_name!r} (got {ident!r})")
        for key, code in _PARAM.items():
            lib.espeak_SetParameter(code, int(getattr(voice, key)), 0)
        ctypes.CDLL(None).srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
                                     ctypes.c_void_p]
        err = lib.espeak_Synth(buf, len(data), 0, 0, 0, 1, None, None)  # 1: espeakCHARS_UTF8
        if err != 0:
            raise SpeechError(f"espeak_Synth failed ({err}) on {text!r}")
        lib.espeak_Terminate()
    finally:
        handle = lib._handle
        del lib
        _ctypes.dlclose(handle)  # next utterance starts from fresh C statics
    if not chunks or not events:
        raise SpeechError(f"espeak-ng produced no audio or no phoneme events for {text!r}")
    return np.concatenate(chunks), events


def _to_speech(pcm: np.ndarray, events, word_starts: list[int], text: str) -> Speech:
    from tfgbench.media.resample import resample_audio

    audio = resample_audio(pcm.astype(np.float32) / 32768.0, ESPEAK_RATE, SAMPLE_RATE)
    total = pcm.size / ESPEAK_RATE
    times = []
    for _, sample, ms, _name in events:
        t = sample / ESPEAK_RATE
        times.append(t if abs(t * 1000 - ms) < 2.0 else ms / 1000)  # `sample` is finer when sane
    starts = np.asarray(word_starts)
    phones: list[Phone] = []
    for i, (pos, _, _, name) in enumerate(events):
        end = times[i + 1] if i + 1 < len(events) else total
        sym = _sanitize(name)
        if end <= times[i] and sym:
            continue  # a zero-length marker
        if not sym:
            phones.append(Phone("_", times[i], end, -1))
        else:
            word = int(np.searchsorted(starts, pos, side="right")) - 1
            phones.append(Phone(sym, times[i], end, max(word, 0)))
    if phones and phones[-1].end < total:
        phones.append(Phone("_", phones[-1].end, total, -1))
    if not any(p.word >= 0 for p in phones):
        raise SpeechError(f"espeak-ng gave no phonemes for {text!r}")
    return Speech(audio=audio, phones=phones)


def espeak_version(backend: Backend | None = None) -> str:
    """libespeak-ng's version string (e.g. ``"1.51"``)."""
    backend = backend or find_backend()
    lib = ctypes.CDLL(str(backend.library))
    lib.espeak_Info.restype = ctypes.c_char_p
    return (lib.espeak_Info(None) or b"?").decode()


def installed_espeak_version() -> str:
    """The version of the espeak-ng :func:`find_backend` picks, or ``""`` when there is none."""
    try:
        return espeak_version(find_backend())
    except (MissingResourceError, OSError):
        return ""
