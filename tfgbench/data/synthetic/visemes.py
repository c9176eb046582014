"""From timed phonemes to per-frame mouth parameters: a viseme table plus coarticulation.

Mouth parameters (each in [0, 1]), the columns of :func:`mouth_track`'s output:

    0 open    lip opening (jaw drop follows it)       3 teeth   upper lip raised / teeth shown
    1 spread  lip corners pulled apart                4 tongue  tongue tip raised / visible
    2 round   lips rounded and protruded              5 tuck    lower lip tucked under the upper teeth (f, v)

Timing. Phone times are the acoustic ones from espeak's phoneme events, with one correction:
espeak's event for a stop (p b t d k g, affricates) marks roughly the release, and the closure
is the ~40 ms of near silence before it (measured on espeak 1.51 output), so a stop's visual
segment starts ``closure`` seconds earlier, taken from the end of the preceding segment.
Diphthongs (``aɪ``, ``əʊ``...) are split into their parts, each a target over an equal share.

Coarticulation (Cohen & Massaro 1993 dominance model). Every target ``i`` has a value ``v_i``,
a centre ``c_i``, a half-length ``h_i`` and dominances ``alpha_i`` (one for the opening group
open/teeth/tongue/tuck, one for the shape group spread/round). Its dominance over time is

    D_i(t) = alpha_i * exp(-(max(|t - c_i| - h_i, 0) / tau_i) ** 1.5)

with ``tau_i = 60 ms`` before the segment (anticipation) and ``20 ms`` after it (carry-over),
both scaled by 4/7 for the quick, strongly dominant lip gestures (p b m f v). Anticipation
reaches further than carry-over, as in real speech, where the lips move towards a sound before
it is heard; with symmetric reach the mouth lagged the sound energy by about 12 ms (v1),
``tau = 60/20 ms`` centres the opening-energy cross-correlation on zero.

and the trajectory is ``p(t) = sum_i D_i(t) v_i / sum_i D_i(t)``. Weakly dominant segments
(t, d, k, h, schwa) take their shape from their neighbours (the "t" of "two" is rounded),
bilabials dominate the opening. p/b/m then get a hard closure (open = 0) over the middle of
their visual segment, the track is blended with a Gaussian of sigma 8 ms (about 15 ms
transitions), and each 40 ms frame ``k`` gets the mean over ``[40k, 40k + 40)`` ms: the audio
that the frame is shown with.
"""

from __future__ import annotations

import numpy as np

from tfgbench.data.synthetic.speech import Phone

PARAMS = ("open", "spread", "round", "teeth", "tongue", "tuck")
_OPEN_GROUP = np.array([1, 0, 0, 1, 1, 1], dtype=bool)
STEP = 0.001  # trajectory resolution, s
TAU_BEFORE, TAU_AFTER = 0.060, 0.020  # anticipatory and carry-over reach of a segment (s)
#: lip gestures are quick: strongly dominant labials reach less far
SHORT_REACH = {"p": 4 / 7, "b": 4 / 7, "m": 4 / 7, "f": 4 / 7, "v": 4 / 7}
STOPS = {"p", "b", "t", "d", "k", "ɡ", "g", "tʃ", "dʒ"}
BILABIAL = {"p", "b", "m"}

# symbol: (open, spread, round, teeth, tongue, tuck, dominance of opening group, of shape group)
_V = {
    "_": (0.00, 0.30, 0.00, 0.0, 0.0, 0.0, 0.6, 0.6),
    # vowels
    "i": (0.28, 1.00, 0.00, 0.8, 0.0, 0.0, 1.0, 1.3),
    "ɪ": (0.33, 0.75, 0.00, 0.6, 0.0, 0.0, 1.0, 1.1),
    "ᵻ": (0.33, 0.70, 0.00, 0.6, 0.0, 0.0, 0.8, 0.8),
    "e": (0.48, 0.70, 0.00, 0.5, 0.0, 0.0, 1.0, 1.1),
    "ɛ": (0.55, 0.60, 0.00, 0.5, 0.0, 0.0, 1.0, 1.1),
    "æ": (0.80, 0.60, 0.00, 0.4, 0.0, 0.0, 1.0, 1.1),
    "a": (0.88, 0.50, 0.00, 0.3, 0.0, 0.0, 1.0, 1.1),
    "ɑ": (1.00, 0.35, 0.05, 0.2, 0.0, 0.0, 1.0, 1.1),
    "ɒ": (0.78, 0.15, 0.50, 0.2, 0.0, 0.0, 1.0, 1.2),
    "ɔ": (0.62, 0.00, 0.80, 0.1, 0.0, 0.0, 1.0, 1.4),
    "o": (0.50, 0.00, 0.85, 0.1, 0.0, 0.0, 1.0, 1.4),
    "ʊ": (0.30, 0.05, 0.75, 0.2, 0.0, 0.0, 1.0, 1.3),
    "u": (0.20, 0.00, 1.00, 0.1, 0.0, 0.0, 1.0, 1.6),
    "ʌ": (0.62, 0.40, 0.05, 0.3, 0.0, 0.0, 1.0, 1.0),
    "ɐ": (0.52, 0.40, 0.05, 0.3, 0.0, 0.0, 0.8, 0.6),
    "ə": (0.40, 0.40, 0.05, 0.3, 0.0, 0.0, 0.5, 0.4),
    "ɜ": (0.42, 0.30, 0.30, 0.3, 0.0, 0.0, 1.0, 1.0),
    "ɚ": (0.38, 0.20, 0.45, 0.3, 0.0, 0.0, 0.8, 1.0),
    "ɝ": (0.40, 0.20, 0.45, 0.3, 0.0, 0.0, 1.0, 1.0),
    # consonants
    "p": (0.00, 0.35, 0.10, 0.0, 0.0, 0.0, 5.0, 0.3),
    "b": (0.00, 0.35, 0.10, 0.0, 0.0, 0.0, 5.0, 0.3),
    "m": (0.00, 0.35, 0.10, 0.0, 0.0, 0.0, 5.0, 0.3),
    "f": (0.12, 0.45, 0.00, 1.0, 0.0, 1.0, 4.0, 0.5),
    "v": (0.12, 0.45, 0.00, 1.0, 0.0, 1.0, 4.0, 0.5),
    "θ": (0.22, 0.45, 0.00, 0.9, 1.0, 0.0, 3.0, 0.4),
    "ð": (0.22, 0.45, 0.00, 0.9, 1.0, 0.0, 3.0, 0.4),
    "t": (0.17, 0.50, 0.00, 0.7, 0.35, 0.0, 1.5, 0.25),
    "d": (0.17, 0.50, 0.00, 0.7, 0.35, 0.0, 1.5, 0.25),
    "n": (0.18, 0.50, 0.00, 0.6, 0.35, 0.0, 1.2, 0.25),
    "ɾ": (0.25, 0.45, 0.00, 0.5, 0.30, 0.0, 0.7, 0.2),
    "s": (0.10, 0.60, 0.00, 1.0, 0.0, 0.0, 2.5, 0.5),
    "z": (0.10, 0.60, 0.00, 1.0, 0.0, 0.0, 2.5, 0.5),
    "ʃ": (0.16, 0.00, 0.75, 0.9, 0.0, 0.0, 2.0, 2.0),
    "ʒ": (0.16, 0.00, 0.75, 0.9, 0.0, 0.0, 2.0, 2.0),
    "tʃ": (0.16, 0.00, 0.70, 0.9, 0.2, 0.0, 2.0, 2.0),
    "dʒ": (0.16, 0.00, 0.70, 0.9, 0.2, 0.0, 2.0, 2.0),
    "l": (0.32, 0.45, 0.00, 0.5, 0.9, 0.0, 1.0, 0.3),
    "ɹ": (0.22, 0.10, 0.55, 0.3, 0.0, 0.0, 1.0, 1.5),
    "r": (0.22, 0.10, 0.55, 0.3, 0.0, 0.0, 1.0, 1.5),
    "w": (0.10, 0.00, 1.00, 0.0, 0.0, 0.0, 3.0, 4.0),
    "j": (0.18, 0.80, 0.00, 0.6, 0.0, 0.0, 1.0, 1.2),
    "k": (0.28, 0.45, 0.00, 0.3, 0.0, 0.0, 0.5, 0.15),
    "ɡ": (0.28, 0.45, 0.00, 0.3, 0.0, 0.0, 0.5, 0.15),
    "g": (0.28, 0.45, 0.00, 0.3, 0.0, 0.0, 0.5, 0.15),
    "ŋ": (0.25, 0.45, 0.00, 0.3, 0.0, 0.0, 0.5, 0.15),
    "x": (0.28, 0.45, 0.00, 0.3, 0.0, 0.0, 0.5, 0.15),
    "h": (0.35, 0.40, 0.00, 0.3, 0.0, 0.0, 0.2, 0.1),
    "ʔ": (0.20, 0.40, 0.00, 0.2, 0.0, 0.0, 0.3, 0.1),
}
_UNKNOWN = (0.30, 0.40, 0.10, 0.3, 0.0, 0.0, 0.3, 0.3)
_MULTI = ("tʃ", "dʒ")
_IGNORED = set("ːˑʲʰʷ̩̃ˈˌ")


def split_symbol(symbol: str) -> list[str]:
    """An espeak IPA phoneme name as the viseme-table symbols it is made of
    (``"aɪ"`` -> ``["a", "ɪ"]``, ``"tʃ"`` -> ``["tʃ"]``, ``"ɑːɹ"`` -> ``["ɑ", "ɹ"]``)."""
    if symbol == "_":
        return ["_"]
    out, i = [], 0
    while i < len(symbol):
        two = symbol[i:i + 2]
        if two in _MULTI:
            out.append(two)
            i += 2
            continue
        ch = symbol[i]
        if ch not in _IGNORED:
            out.append(ch)
        i += 1
    return out or ["_"]


def target(symbol: str) -> tuple[float, ...]:
    """The table row of one symbol (unknown symbols get a neutral, weakly dominant shape)."""
    return _V.get(symbol, _UNKNOWN)


def visual_segments(phones: list[Phone], rate_wpm: float = 170.0) -> list[tuple[str, float, float]]:
    """``(symbol, start, end)`` visual targets: stops moved earlier by their closure, diphthongs split."""
    closure = 0.040 * 170.0 / max(rate_wpm, 60.0)
    segs: list[list] = [[p.symbol, p.start, p.end] for p in phones if p.end > p.start]
    for i in range(1, len(segs)):
        sym = segs[i][0]
        if sym in STOPS:
            prev = segs[i - 1]
            shift = min(closure, 0.6 * (prev[2] - prev[1]))
            segs[i][1] -= shift
            prev[2] -= shift
    out = []
    for sym, start, end in segs:
        parts = split_symbol(sym)
        step = (end - start) / len(parts)
        out += [(p, start + k * step, start + (k + 1) * step) for k, p in enumerate(parts)]
    return out


def trajectory(segments: list[tuple[str, float, float]], duration: float) -> np.ndarray:
    """``(N, 6)`` mouth parameters on a 1 ms grid covering ``[0, duration)`` (see module docstring)."""
    n = max(1, int(round(duration / STEP)))
    t = (np.arange(n) + 0.5) * STEP
    if not segments:
        return np.tile(np.asarray(_V["_"][:6], dtype=np.float64), (n, 1))
    rows = np.array([target(s) for s, _, _ in segments], dtype=np.float64)  # (S, 8)
    centre = np.array([(a + b) / 2 for _, a, b in segments])
    half = np.array([(b - a) / 2 for _, a, b in segments])
    reach = np.array([SHORT_REACH.get(s, 1.0) for s, _, _ in segments])
    offset = t[:, None] - centre[None]
    tau = np.where(offset < 0, TAU_BEFORE, TAU_AFTER) * reach[None]
    dist = np.maximum(np.abs(offset) - half[None], 0.0) / tau
    decay = np.exp(-dist ** 1.5)  # (N, S)
    out = np.empty((n, 6))
    for group, col in ((True, 6), (False, 7)):
        d = decay * rows[None, :, col]
        vals = (d @ rows[:, :6]) / np.maximum(d.sum(1, keepdims=True), 1e-12)
        out[:, _OPEN_GROUP == group] = vals[:, _OPEN_GROUP == group]
    for (sym, a, b) in segments:
        if sym in BILABIAL:
            # the lips must really meet: hard closure over the middle 60% of the segment
            lo, hi = int((a + 0.2 * (b - a)) / STEP), int(np.ceil((b - 0.2 * (b - a)) / STEP))
            out[max(lo, 0):max(hi, 0), 0] = 0.0
            out[max(lo, 0):max(hi, 0), 3:] = 0.0
    return _gaussian_blur(out, sigma=0.008 / STEP)


def _gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    r = int(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(x, ((r, r), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(x.shape[1])], axis=1)


def frame_average(track: np.ndarray, num_frames: int, fps: int = 25) -> np.ndarray:
    """``(num_frames, 6)``: frame ``k`` is the mean of ``track`` over ``[k / fps, (k + 1) / fps)``."""
    per = int(round(1.0 / fps / STEP))
    need = num_frames * per
    if track.shape[0] < need:
        track = np.concatenate([track, np.repeat(track[-1:], need - track.shape[0], axis=0)])
    return track[:need].reshape(num_frames, per, -1).mean(axis=1)


def mouth_track(phones: list[Phone], num_frames: int, rate_wpm: float = 170.0, fps: int = 25) -> np.ndarray:
    """``(num_frames, 6)`` float32 per-frame mouth parameters for timed phones (times in s on
    the clip's clock; gaps before the first and after the last phone are rest)."""
    duration = num_frames / fps
    segs = visual_segments(phones, rate_wpm)
    first = segs[0][1] if segs else duration
    last = segs[-1][2] if segs else duration
    segs = [("_", 0.0, first)] * (first > 0) + segs + [("_", last, duration)] * (last < duration)
    return frame_average(trajectory(segs, duration), num_frames, fps).astype(np.float32)
