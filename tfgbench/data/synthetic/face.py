"""Procedural 2D face rendering (OpenCV polygons, anti-aliased by 2x supersampling).

Everything is drawn from points in *face-local* coordinates (pixels of a 128x128 frame, x right,
y down, origin at the face centre), mapped to the image by the frame's head pose: scale ``s``,
rotation ``r`` and centre ``(cx, cy)``: ``p_img = k * (s R(r) p + c)`` with ``k = size / 128``.
Because the renderer places every point itself, face boxes and mouth landmarks are exact.

Mouth landmarks: ``K = 20`` points in the order of iBUG-68 points 48..67 (image left to right
as seen by the viewer): 0 left corner, 1-5 upper outer lip (left to right, 3 = centre, at
x = -2/3, -1/3, 0, 1/3, 2/3 of the half width), 6 right corner, 7-11 lower outer lip (right to
left, 9 = centre), 12 left inner corner, 13-15 upper inner lip (left to right, 14 = centre),
16 right inner corner, 17-19 lower inner lip (right to left, 18 = centre).
"""

from __future__ import annotations

import cv2
import numpy as np

from tfgbench.data.synthetic.face_parts import (
    draw_background,
    draw_beard,
    draw_brows,
    draw_ears,
    draw_eyes,
    draw_glasses,
    draw_hair_back,
    draw_hair_front,
    draw_moustache,
    draw_nose,
    poly,
)
from tfgbench.data.synthetic.identity import Identity

SS = 2  # supersampling factor
BASE = 128.0
NUM_MOUTH_LANDMARKS = 20

INTERIOR = (70, 20, 30)
TEETH = (226, 222, 208)
TONGUE = (196, 86, 96)


def _lerp_colour(a, b, t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def mouth_shape(ident: Identity, params: np.ndarray) -> dict[str, np.ndarray | float]:
    """Lip contours in mouth-local coordinates (origin at the mouth centre at rest) for the
    mouth parameters ``(open, spread, round, teeth, tongue, tuck)``.

    Returns outer upper/lower and inner upper/lower contours as ``(N, 2)`` arrays sampled left
    to right, the jaw drop (px) and the teeth/tongue geometry.
    """
    o, spread, rnd, teeth, tongue, tuck = (float(v) for v in params)
    w0 = ident.mouth_w / 2
    half = w0 * (1 + 0.22 * spread - 0.36 * rnd)
    height = o * 0.9 * ident.mouth_w  # inner opening at the centre
    up = -(0.24 * height + 0.8 * teeth * (0.3 + o))  # upper lip raise shows the upper teeth
    lo = 0.76 * height + 0.6 * teeth * o
    teeth_bottom = 1.1  # bottom edge of the upper teeth, fixed to the skull
    lo = lo + (teeth_bottom + 0.3 - lo) * tuck  # f/v: lower lip against the upper teeth
    up = up - 1.5 * tuck
    jaw = 0.6 * max(lo, 0.0) * (1 - 0.6 * tuck)
    inner_half = half * (0.93 - 0.42 * rnd)
    n = 21
    x = np.linspace(-half, half, n)
    u = np.abs(x) / half
    ui = np.clip(np.abs(x) / inner_half, 0, 1)
    p = 2.0 - 0.6 * rnd  # rounder opening when rounded
    shape = np.clip(1 - ui ** p, 0, None) ** 0.75
    inner_up = up * shape
    inner_lo = lo * shape
    thick_u = ident.lip_up * (1 + 0.35 * rnd)
    thick_l = ident.lip_lo * (1 + 0.3 * rnd) * (1 - 0.35 * tuck)
    bow = 0.9 * np.exp(-(x / (0.1 * half)) ** 2) - 0.4 * np.exp(-((np.abs(x) - 0.28 * half) / (0.12 * half)) ** 2)
    outer_up = inner_up - thick_u * (0.3 + 0.7 * np.sqrt(np.clip(1 - u ** 2, 0, 1))) + bow * thick_u * 0.35
    outer_lo = inner_lo + thick_l * (0.25 + 0.75 * np.clip(1 - u ** 2, 0, 1) ** 0.8)
    return {"x": x, "outer_up": outer_up, "outer_lo": outer_lo, "inner_up": inner_up, "inner_lo": inner_lo,
            "half": half, "inner_half": inner_half, "jaw": jaw, "open": lo - up, "teeth_bottom": teeth_bottom,
            "tongue": tongue, "teeth": teeth, "up": up, "lo": lo}


def mouth_landmarks(shape: dict, mouth_y: float) -> np.ndarray:
    """The 20 landmarks (see module docstring) in face-local coordinates."""
    x = shape["x"]
    half, ih = shape["half"], shape["inner_half"]

    def at(curve, xs):
        return np.stack([xs, np.interp(xs, x, shape[curve]) + mouth_y], axis=1)

    fr = np.array([-2 / 3, -1 / 3, 0, 1 / 3, 2 / 3]) * half
    ifr = np.array([-0.5, 0, 0.5]) * ih
    pts = [np.array([[-half, mouth_y]]), at("outer_up", fr), np.array([[half, mouth_y]]),
           at("outer_lo", fr[::-1]), np.array([[-ih, mouth_y]]), at("inner_up", ifr),
           np.array([[ih, mouth_y]]), at("inner_lo", ifr[::-1])]
    return np.concatenate(pts).astype(np.float32)


def face_outline(ident: Identity, jaw_drop: float, n: int = 48) -> np.ndarray:
    """``(n, 2)`` face oval (forehead, cheeks, jaw, chin); the part below the mouth corners
    stretches down with the jaw."""
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    s, c = np.sin(phi), np.cos(phi)
    lower = s > 0
    x = ident.face_w * c * np.where(lower, 1 - (1 - ident.jaw) * s, 1.0)
    y = np.where(lower, ident.face_h * np.abs(s) ** ident.chin, -ident.face_h * 1.02 * np.abs(s) ** 0.9)
    y0 = ident.mouth_y - 4
    y = y + jaw_drop * np.clip((y - y0) / (ident.face_h - y0), 0, 1)
    return np.stack([x, y], axis=1)


class FaceRenderer:
    """Renders one identity; ``render`` draws a frame for a head pose, mouth parameters and
    eyelid closure. ``clip_rng`` varies the per-clip background and lighting."""

    def __init__(self, ident: Identity, size: int = 128, clip_rng: np.random.Generator | None = None) -> None:
        self.ident = ident
        self.size = size
        self.k = size / BASE
        rng = clip_rng if clip_rng is not None else np.random.default_rng(0)
        bg = draw_background(ident, size, rng)
        self.background = cv2.resize(bg, (size * SS, size * SS), interpolation=cv2.INTER_LINEAR)
        # soft directional light: a gain map in [0.86, 1.1]
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
        gain = 1.0 + 0.12 * (np.cos(angle) * xx + np.sin(angle) * yy) * 2 - 0.06 * (xx ** 2 + yy ** 2) * 2
        self.gain = np.repeat(np.clip(gain * 128, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        self.skin_dark = tuple(int(v * 0.82) for v in ident.skin)

    def transform(self, pose: np.ndarray) -> np.ndarray:
        """The 2x3 face-local -> output-pixel affine map of a pose ``(cx, cy, rotation, scale)``."""
        cx, cy, rot, scale = (float(v) for v in pose)
        c, s = np.cos(rot) * scale * self.k, np.sin(rot) * scale * self.k
        return np.array([[c, -s, cx * self.k], [s, c, cy * self.k]])

    def render(self, pose: np.ndarray, params: np.ndarray, blink: float, gaze: tuple[float, float] = (0.0, 0.0)):
        """One frame.

        Args:
            pose: ``(cx, cy, rotation, scale)``: face centre in 128-frame pixels, radians, scale.
            params: ``(6,)`` mouth parameters (see :mod:`visemes`).
            blink: eyelid closure, 0 open .. 1 closed.
            gaze: iris offset in pixels.

        Returns:
            frame ``(size, size, 3)`` uint8 RGB, mouth landmarks ``(20, 2)`` float32 (pixels),
            face box ``(4,)`` int ``x1, y1, x2, y2``, mouth box ``(4,)`` int.
        """
        ident = self.ident
        m = self.transform(pose)
        ms = m * SS  # to supersampled pixels

        def tf(pts: np.ndarray) -> np.ndarray:
            return pts @ ms[:, :2].T + ms[:, 2]

        img = self.background.copy()
        shape = mouth_shape(ident, params)
        jaw = float(shape["jaw"])
        outline = face_outline(ident, jaw)
        # body: follows the head's translation, not its rotation
        t0 = np.array([[SS * self.k, 0, ms[0, 2]], [0, SS * self.k, ms[1, 2]]])
        body = np.array([[-ident.face_w * 1.9, 140], [-ident.face_w * 1.6, ident.face_h + 28],
                         [-ident.face_w * 0.5, ident.face_h + 14], [ident.face_w * 0.5, ident.face_h + 14],
                         [ident.face_w * 1.6, ident.face_h + 28], [ident.face_w * 1.9, 140]])
        draw_hair_back(img, ident, tf)
        neck = np.array([[-ident.face_w * 0.45, 0.2 * ident.face_h], [ident.face_w * 0.45, 0.2 * ident.face_h],
                         [ident.face_w * 0.5, ident.face_h + 30], [-ident.face_w * 0.5, ident.face_h + 30]])
        poly(img, neck @ t0[:, :2].T + t0[:, 2], self.skin_dark)
        poly(img, body @ t0[:, :2].T + t0[:, 2], ident.clothes)
        draw_ears(img, ident, tf, self.skin_dark)
        poly(img, tf(outline), ident.skin)
        if ident.beard in ("beard", "stubble"):
            draw_beard(img, ident, tf, outline)
        draw_hair_front(img, ident, tf)
        draw_brows(img, ident, tf)
        draw_eyes(img, ident, tf, blink, gaze, SS)
        draw_nose(img, ident, tf, self.skin_dark, SS)
        self._draw_mouth(img, shape, tf)
        if ident.beard == "moustache" or ident.beard == "beard":
            draw_moustache(img, ident, tf, shape)
        if ident.glasses:
            draw_glasses(img, ident, tf, SS)
        frame = cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA)
        frame = cv2.multiply(frame, self.gain, scale=1 / 128)
        local = mouth_landmarks(shape, ident.mouth_y)
        marks = (local @ m[:, :2].T + m[:, 2]).astype(np.float32)
        box = _box(outline @ m[:, :2].T + m[:, 2], self.size)
        centre = np.array([0.0, ident.mouth_y + 3.0]) @ m[:, :2].T + m[:, 2]
        half = ident.mouth_w * float(pose[3]) * self.k
        mouth_box = _box(np.array([centre - half, centre + half]), self.size)
        return frame, marks, box, mouth_box

    def _draw_mouth(self, img: np.ndarray, shape: dict, tf) -> None:
        ident = self.ident
        x = shape["x"]
        y0 = ident.mouth_y

        def pts(xs, ys):
            return tf(np.stack([xs, ys + y0], axis=1))

        outer = np.concatenate([pts(x, shape["outer_up"]), pts(x[::-1], shape["outer_lo"][::-1])])
        poly(img, outer, ident.lip)
        # lower-lip highlight
        hl = np.abs(x) < 0.45 * shape["half"]
        mid_lo = (shape["inner_lo"] + shape["outer_lo"]) / 2
        hl_pts = np.concatenate([pts(x[hl], mid_lo[hl] - 0.4), pts(x[hl][::-1], mid_lo[hl][::-1] + 0.5)])
        poly(img, hl_pts, _lerp_colour(ident.lip, (255, 235, 230), 0.22))
        dark = _lerp_colour(ident.lip, (20, 5, 10), 0.55)
        ih = shape["inner_half"]
        inside = np.abs(x) <= ih
        if shape["open"] < 0.35:
            seam = pts(x, (shape["inner_up"] + shape["inner_lo"]) / 2)
            cv2.polylines(img, [np.round(seam * 8).astype(np.int32)], False, dark, max(1, SS), cv2.LINE_AA, 3)
            return
        xi = x[inside]
        inner = np.concatenate([[[-ih, 0.0]], np.stack([xi, shape["inner_up"][inside]], 1), [[ih, 0.0]],
                                np.stack([xi[::-1], shape["inner_lo"][inside][::-1]], 1)])
        inner_img = tf(inner + [0.0, y0])
        lo_x, lo_y = np.floor(inner_img.min(0)).astype(int) - 2
        hi_x, hi_y = np.ceil(inner_img.max(0)).astype(int) + 2
        lo_x, lo_y = max(lo_x, 0), max(lo_y, 0)
        hi_x, hi_y = min(hi_x, img.shape[1]), min(hi_y, img.shape[0])
        if hi_x <= lo_x or hi_y <= lo_y:
            return
        roi = img[lo_y:hi_y, lo_x:hi_x]
        layer = np.empty_like(roi)
        layer[:] = INTERIOR
        off = np.array([lo_x, lo_y], dtype=float)
        tw = 0.62 * ident.mouth_w / 2
        tongue_top = shape["lo"] - (1.5 + 4.5 * shape["tongue"]) - 0.25 * shape["tongue"] * shape["open"]
        tongue = _ellipse(0.0, shape["lo"] + 1.0, 0.62 * ih, shape["lo"] + 1.0 - tongue_top)
        upper_teeth = np.array([[-tw, shape["up"] - 6], [tw, shape["up"] - 6], [tw, shape["teeth_bottom"] - 0.6],
                                [tw * 0.6, shape["teeth_bottom"]], [-tw * 0.6, shape["teeth_bottom"]],
                                [-tw, shape["teeth_bottom"] - 0.6]])
        top = 0.4 + 0.85 * max(shape["lo"], 0.0) - 1.5 * shape["teeth"]  # mostly behind the lower lip
        lower_teeth = np.array([[-tw * 0.9, top], [tw * 0.9, top], [tw * 0.9, top + 8], [-tw * 0.9, top + 8]])
        draws = [(lower_teeth, TEETH), (upper_teeth, TEETH), (tongue, TONGUE)] if shape["tongue"] > 0.75 else \
            [(tongue, TONGUE), (lower_teeth, TEETH), (upper_teeth, TEETH)]
        for shp, colour in draws:
            poly(layer, tf(shp + [0.0, y0]) - off, colour)
        mask = np.zeros(roi.shape[:2], np.uint8)
        poly(mask, inner_img - off, 255)
        a = mask[..., None].astype(np.uint16)
        roi[:] = ((roi.astype(np.uint16) * (255 - a) + layer.astype(np.uint16) * a + 127) // 255).astype(np.uint8)
        cv2.polylines(img, [np.round(inner_img * 8).astype(np.int32)], True, dark, 1, cv2.LINE_AA, 3)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 20) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _box(points: np.ndarray, size: int) -> np.ndarray:
    lo = np.floor(points.min(0)).astype(int)
    hi = np.ceil(points.max(0)).astype(int)
    lo = np.clip(lo, 0, size - 1)
    hi = np.clip(hi, lo + 1, size)
    return np.array([lo[0], lo[1], hi[0], hi[1]], dtype=np.int32)
