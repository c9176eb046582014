"""Speakers: a procedural face identity plus a voice, drawn deterministically from a seed.

Styles come from two disjoint pools. ``"main"`` (train, val and test speakers) and ``"ood"``
(the ``synthetic-ood`` speakers): the OOD pool has face styles never seen in training (hats,
afro and bun hair, glasses, beards and moustaches, outdoor backgrounds) and voices never heard
in training (the American ``en-us`` voice instead of British ``en``, and formant, breathiness
and roughness settings outside the main pool's ranges). Main-pool splits differ only in their
speakers, like LRS2's test set; the OOD pool is the analogue of testing an LRS2 model on LRS3.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tfgbench.data.synthetic.speech import Voice

RGB = tuple[int, int, int]

# skin tones, light to dark (sRGB)
SKINS: tuple[RGB, ...] = ((247, 218, 196), (240, 200, 170), (232, 190, 150), (224, 172, 130),
                          (205, 150, 110), (190, 135, 95), (160, 110, 75), (135, 90, 60),
                          (110, 72, 48), (85, 56, 38))
HAIR_COLOURS: tuple[RGB, ...] = ((25, 20, 18), (60, 40, 25), (95, 62, 35), (140, 95, 50),
                                 (200, 160, 95), (170, 75, 35), (120, 120, 120), (220, 215, 205))
IRIS: tuple[RGB, ...] = ((70, 45, 25), (40, 30, 20), (80, 110, 150), (90, 120, 80), (120, 95, 55))
MAIN_HAIR = ("short", "side", "bob", "long", "bald", "curly", "crop", "fringe")
OOD_HAIR = ("afro", "bun", "hat", "mohawk")
MAIN_BACKGROUND = ("plain", "studio", "wall")
OOD_BACKGROUND = ("outdoor", "stripes")


@dataclass(frozen=True)
class Identity:
    """Face geometry in output pixels of a 128x128 frame (face-local coordinates: x right,
    y down, origin at the face centre), colours in RGB."""

    face_w: float  # half width of the face oval
    face_h: float  # half height
    jaw: float  # 0.6 (narrow, pointed) .. 1.0 (square)
    chin: float  # exponent shaping the chin: < 1 flat, > 1 pointed
    skin: RGB
    eye_y: float
    eye_dx: float  # half the distance between the eye centres
    eye_w: float  # half width of an eye
    eye_h: float  # half height of an open eye
    eye_tilt: float  # radians, outer corners up when positive
    iris: RGB
    brow_gap: float  # brow height above the eye
    brow_thick: float
    brow_arch: float
    brow_tilt: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float  # full width of the mouth at rest
    lip_up: float  # upper lip thickness
    lip_lo: float  # lower lip thickness
    lip: RGB
    hair: str
    hair_colour: RGB
    hairline: float  # y of the hairline (negative: above the face centre)
    part: float  # -1..1, side of the parting / fringe slant
    ear: float
    glasses: bool
    beard: str  # "", "moustache", "beard", "stubble"
    clothes: RGB
    background: str
    bg_colours: tuple[RGB, RGB]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Speaker:
    """A speaker id, its split pool, its face and its voice."""

    id: str
    pool: str
    identity: Identity
    voice: Voice

    def to_dict(self) -> dict:
        return {"id": self.id, "pool": self.pool, "identity": self.identity.to_dict(),
                "voice": self.voice.to_dict()}


def _jitter(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    c = np.asarray(colour, dtype=float) * (1 + rng.uniform(-amount, amount)) + rng.normal(0, 4, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def sample_identity(rng: np.random.Generator, pool: str = "main") -> Identity:
    """A random face identity from the ``"main"`` or ``"ood"`` style pool."""
    u = rng.uniform
    skin = _jitter(rng, SKINS[int(rng.integers(len(SKINS)))], 0.05)
    hair_colour = _jitter(rng, HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))], 0.08)
    face_w = u(38.0, 44.0)
    mouth_w = face_w * u(0.68, 0.80)
    redness = np.array([1.05, 0.62, 0.66]) * u(0.75, 0.95)
    lip = tuple(int(v) for v in np.clip(np.asarray(skin) * redness + rng.normal(0, 6, 3) + [18, 0, 4], 0, 255))
    if pool == "ood":
        hair = OOD_HAIR[int(rng.integers(len(OOD_HAIR)))]
        glasses = bool(rng.random() < 0.5)
        beard = ("moustache", "beard", "stubble", "")[int(rng.integers(4))] if not glasses else \
            ("moustache", "beard", "stubble")[int(rng.integers(3))]
        background = OOD_BACKGROUND[int(rng.integers(len(OOD_BACKGROUND)))]
    else:
        hair = MAIN_HAIR[int(rng.integers(len(MAIN_HAIR)))]
        glasses, beard = False, ""
        background = MAIN_BACKGROUND[int(rng.integers(len(MAIN_BACKGROUND)))]
    bg1 = tuple(int(v) for v in rng.integers(40, 230, 3))
    bg2 = tuple(int(v) for v in np.clip(np.asarray(bg1) * u(0.55, 0.9) + rng.normal(0, 15, 3), 0, 255))
    return Identity(
        face_w=face_w, face_h=u(47.0, 54.0), jaw=u(0.62, 0.95), chin=u(0.8, 1.3), skin=skin,
        eye_y=u(-9.0, -3.0), eye_dx=u(13.0, 17.5), eye_w=u(5.5, 8.0), eye_h=u(2.8, 4.3),
        eye_tilt=u(-0.12, 0.15), iris=IRIS[int(rng.integers(len(IRIS)))],
        brow_gap=u(6.5, 10.0), brow_thick=u(1.3, 3.2), brow_arch=u(0.5, 3.0), brow_tilt=u(-0.15, 0.2),
        nose_len=u(13.0, 19.0), nose_w=u(5.0, 8.5), mouth_y=u(26.0, 30.0), mouth_w=mouth_w,
        lip_up=u(2.6, 4.4), lip_lo=u(3.4, 6.0), lip=lip, hair=hair, hair_colour=hair_colour,
        hairline=u(-0.62, -0.42), part=u(-1.0, 1.0), ear=u(0.8, 1.2), glasses=glasses, beard=beard,
        clothes=tuple(int(v) for v in rng.integers(20, 235, 3)), background=background,
        bg_colours=(bg1, bg2))


def sample_voice(rng: np.random.Generator, pool: str = "main", female: bool | None = None) -> Voice:
    """A random voice. Main pool: British ``en``, formant scales 88..112 %, no breathiness;
    OOD pool: American ``en-us``, formant scales 80..88 % or 112..125 %, breathy or rough.
    ``female`` picks the pitch and formant ranges (default: a coin toss)."""
    toss = bool(rng.random() < 0.5)
    female = toss if female is None else female
    if female:
        pitch_hz = (int(rng.integers(150, 190)), int(rng.integers(220, 280)))
    else:
        pitch_hz = (int(rng.integers(75, 110)), int(rng.integers(115, 160)))
    if pool == "ood":
        lo, hi = (112, 125) if female else (80, 88)
        formants = tuple(int(rng.integers(lo, hi + 1)) for _ in range(5))
        breath, roughness, base = int(rng.integers(2, 6)), int(rng.integers(0, 4)), "en-us"
    else:
        lo, hi = (100, 112) if female else (88, 102)
        formants = tuple(int(rng.integers(lo, hi + 1)) for _ in range(5))
        breath, roughness, base = 0, 0, "en"
    return Voice(base=base, gender="female" if female else "male", pitch_hz=pitch_hz,
                 formants=formants, breath=breath, roughness=roughness,
                 flutter=int(rng.integers(20, 90)), pitch=int(rng.integers(35, 66)),
                 range=int(rng.integers(30, 81)), rate=int(rng.integers(150, 196)),
                 wordgap=int(rng.integers(0, 3)))


def make_speaker(seed: int, index: int, speaker_id: str, pool: str) -> Speaker:
    """Speaker ``index`` of the corpus drawn from ``seed`` (independent of the other speakers).
    Odd indices get female voices, even ones male, so every split is balanced."""
    rng = np.random.default_rng([seed, 1, index])
    return Speaker(speaker_id, pool, sample_identity(rng, pool), sample_voice(rng, pool, female=index % 2 == 1))
