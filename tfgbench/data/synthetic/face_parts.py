"""The parts of a procedural face other than the mouth: background, hair, ears, eyes, brows,
nose, beard, glasses. Each ``draw_*`` takes the supersampled image, the identity and ``tf``, the
face-local -> supersampled-pixel map of the current frame (see :mod:`face`)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from tfgbench.data.synthetic.identity import Identity

Tf = Callable[[np.ndarray], np.ndarray]
_SHIFT = 3  # fractional bits of cv2 polygon coordinates


def poly(img: np.ndarray, pts: np.ndarray, colour) -> None:
    """Fill a polygon given in (supersampled) pixels, anti-aliased."""
    cv2.fillPoly(img, [np.round(np.asarray(pts) * (1 << _SHIFT)).astype(np.int32)], colour, cv2.LINE_AA, _SHIFT)


def line(img: np.ndarray, pts: np.ndarray, colour, thickness: float, closed: bool = False) -> None:
    cv2.polylines(img, [np.round(np.asarray(pts) * (1 << _SHIFT)).astype(np.int32)], closed, colour,
                  max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24, a0: float = 0.0,
            a1: float = 2 * np.pi) -> np.ndarray:
    t = np.linspace(a0, a1, n, endpoint=a1 - a0 < 2 * np.pi - 1e-9)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def draw_background(ident: Identity, size: int, rng: np.random.Generator) -> np.ndarray:
    """A per-clip background ``(size, size, 3)`` uint8 in the identity's style."""
    c1 = np.clip(np.asarray(ident.bg_colours[0], float) + rng.normal(0, 8, 3), 0, 255)
    c2 = np.clip(np.asarray(ident.bg_colours[1], float) + rng.normal(0, 8, 3), 0, 255)
    yy, xx = np.mgrid[0:size, 0:size] / size
    style = ident.background
    if style == "studio":
        r = np.sqrt((xx - 0.5 - rng.uniform(-0.2, 0.2)) ** 2 + (yy - 0.4) ** 2)
        t = np.clip(r / 0.75, 0, 1)[..., None]
    elif style == "wall":
        band = rng.uniform(0.55, 0.8)
        t = (yy > band).astype(float)[..., None] * 0.9 + 0.1 * yy[..., None]
    elif style == "outdoor":
        sky = np.array([150, 190, 235]) + rng.normal(0, 10, 3)
        t = np.clip((yy - rng.uniform(0.45, 0.7)) * 8, 0, 1)[..., None]
        img = sky * (1 - t) + c2 * t
        for _ in range(6):  # blurred foliage blobs
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.08, 0.2)
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r ** 2)[..., None]
            img = img * (1 - 0.8 * blob) + np.array([60, 120, 50]) * 0.8 * blob
        return np.clip(img, 0, 255).astype(np.uint8)
    elif style == "stripes":
        period = rng.uniform(0.12, 0.25)
        t = (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (xx + 0.2 * yy) / period)))[..., None]
        img = c1 * (1 - t) + c2 * t
        return cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (0, 0), 1.2)
    else:  # plain vertical gradient
        t = yy[..., None]
    img = c1 * (1 - t) + c2 * t
    return np.clip(img, 0, 255).astype(np.uint8)


def _cap(ident: Identity, grow: float = 1.07) -> np.ndarray:
    """The top of the head (left to right over the crown) slightly outside the face oval."""
    return ellipse(0, 0, ident.face_w * grow, ident.face_h * grow * 1.02, 25, np.pi, 2 * np.pi)


def draw_hair_back(img: np.ndarray, ident: Identity, tf: Tf) -> None:
    a, b, c = ident.face_w, ident.face_h, ident.hair_colour
    style = ident.hair
    if style in ("bob", "long"):
        bottom = ident.mouth_y + 8 if style == "bob" else 140.0
        top = ellipse(0, 0, a * 1.22, b * 1.12, 25, np.pi, 2 * np.pi)
        pts = np.concatenate([[[-a * 1.25, bottom]], top, [[a * 1.25, bottom]]])
        poly(img, tf(pts), _mix(c, (0, 0, 0), 0.15))
    elif style == "afro":
        poly(img, tf(ellipse(0, -b * 0.35, a * 1.5, b * 1.05, 40)), c)
    elif style == "bun":
        poly(img, tf(ellipse(0, -b * 1.12, 13, 11)), c)


def draw_hair_front(img: np.ndarray, ident: Identity, tf: Tf) -> None:
    a, b, c = ident.face_w, ident.face_h, ident.hair_colour
    style = ident.hair
    if style == "bald":
        for sgn in (-1, 1):
            side = np.array([[sgn * a * 1.02, ident.eye_y - 12], [sgn * a * 0.9, ident.eye_y - 10],
                             [sgn * a * 0.92, ident.eye_y + 6], [sgn * a * 1.03, ident.eye_y + 8]])
            poly(img, tf(side), _mix(c, ident.skin, 0.3))
        return
    if style == "hat":
        brim_y = ident.hairline * b + 2
        crown = np.concatenate([[[-a * 1.05, brim_y]], ellipse(0, brim_y, a * 1.05, b * 0.85, 20, np.pi, 2 * np.pi),
                                [[a * 1.05, brim_y]]])
        hat = _mix(ident.clothes, (255, 255, 255), 0.25)
        poly(img, tf(crown), hat)
        poly(img, tf(ellipse(0, brim_y, a * 1.4, 5.5, 30)), _mix(hat, (0, 0, 0), 0.25))
        return
    grow = {"crop": 1.03, "curly": 1.14, "afro": 1.12}.get(style, 1.07)
    top = _cap(ident, grow)
    hl = ident.hairline * b
    side_y = ident.eye_y - 5
    xs = np.linspace(a * grow, -a * grow, 25)
    u = xs / (a * grow)
    if style == "fringe":
        edge = np.full_like(xs, ident.eye_y - ident.brow_gap - 3.5) + 1.5 * np.sin(u * 9)
        edge = np.maximum(edge, edge) + (side_y + 8 - edge) * np.abs(u) ** 6
    elif style == "side":
        edge = hl + 5 * ident.part * u + (side_y - hl) * np.abs(u) ** 3
        edge = edge + 4 * np.clip(ident.part * u, 0, None) ** 2
    else:
        edge = hl + (side_y - hl) * np.abs(u) ** 3.5
    if style in ("curly", "afro"):
        edge = edge + 2.2 * np.sin(u * 20)
        top = top + np.stack([np.zeros(len(top)), 2.5 * np.sin(np.linspace(0, 24, len(top)))], 1)
    if style == "mohawk":
        crest = np.array([[-7, hl + 2], [-9, -b * 1.25], [9, -b * 1.25], [7, hl + 2]])
        poly(img, tf(np.concatenate([top, np.stack([xs, edge], 1)])), _mix(c, ident.skin, 0.55))
        poly(img, tf(crest), c)
        return
    colour = _mix(c, ident.skin, 0.4) if style == "crop" else c
    poly(img, tf(np.concatenate([top, np.stack([xs, edge], 1)])), colour)
    if style == "bun":
        poly(img, tf(ellipse(0, -b * 1.12, 13, 11)), c)


def draw_ears(img: np.ndarray, ident: Identity, tf: Tf, shade) -> None:
    for sgn in (-1, 1):
        e = ellipse(sgn * ident.face_w * 0.97, ident.eye_y + 7, 5.0 * ident.ear, 9.0 * ident.ear, 16)
        poly(img, tf(e), shade)


def draw_brows(img: np.ndarray, ident: Identity, tf: Tf) -> None:
    colour = _mix(ident.hair_colour, (0, 0, 0), 0.2)
    if ident.hair_colour[0] > 180:  # blond / grey hair: brows a little darker than the hair
        colour = _mix(ident.hair_colour, (60, 45, 30), 0.5)
    for sgn in (-1, 1):
        u = np.linspace(0, 1, 9)
        x = sgn * (ident.eye_dx - ident.eye_w * 1.05 + u * ident.eye_w * 2.4)
        y = ident.eye_y - ident.eye_h - ident.brow_gap + 3 - ident.brow_arch * np.sin(np.pi * u) \
            - ident.brow_tilt * 6 * (u - 0.5)
        th = ident.brow_thick * (1.0 - 0.5 * u)
        pts = np.concatenate([np.stack([x, y - th / 2], 1), np.stack([x[::-1], (y + th / 2)[::-1]], 1)])
        poly(img, tf(pts), colour)


def eye_contours(ident: Identity, sgn: int, blink: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid contours of the eye on side ``sgn`` (-1 left, +1 right)."""
    t = np.linspace(np.pi, 0, 13)
    x = ident.eye_w * np.cos(t)
    upper = -ident.eye_h * np.sin(t) ** 0.8
    lower = 0.7 * ident.eye_h * np.sin(t) ** 0.9
    upper = upper + (lower * 0.85 - upper) * blink
    tilt = -ident.eye_tilt * x * sgn  # outer corners up
    cx = sgn * ident.eye_dx
    return (np.stack([cx + x, ident.eye_y + upper + tilt], 1), np.stack([cx + x, ident.eye_y + lower + tilt], 1))


def draw_eyes(img: np.ndarray, ident: Identity, tf: Tf, blink: float, gaze, ss: int) -> None:
    lash = (35, 28, 28)
    for sgn in (-1, 1):
        upper, lower = eye_contours(ident, sgn, blink)
        crease = upper.copy()
        crease[:, 1] -= ident.eye_h * 0.6 + 1.8 - blink * ident.eye_h * 0.5
        line(img, tf(crease[2:-2]), _mix(ident.skin, (0, 0, 0), 0.25), 0.6 * ss)
        if blink < 0.9:
            outline = tf(np.concatenate([upper, lower[::-1]]))
            lo = np.maximum(np.floor(outline.min(0)).astype(int) - 2, 0)
            hi = np.minimum(np.ceil(outline.max(0)).astype(int) + 2, [img.shape[1], img.shape[0]])
            if (hi > lo).all():
                roi = img[lo[1]:hi[1], lo[0]:hi[0]]
                layer = np.empty_like(roi)
                layer[:] = (236, 232, 226)
                cx, cy = sgn * ident.eye_dx + gaze[0], ident.eye_y + gaze[1] - 0.2 * ident.eye_h
                r = min(ident.eye_h * 1.05, ident.eye_w * 0.55)
                poly(layer, tf(ellipse(cx, cy, r, r, 16)) - lo, ident.iris)
                poly(layer, tf(ellipse(cx, cy, r * 0.45, r * 0.45, 12)) - lo, (15, 12, 12))
                poly(layer, tf(ellipse(cx + r * 0.3, cy - r * 0.35, r * 0.2, r * 0.2, 8)) - lo, (250, 250, 250))
                mask = np.zeros(roi.shape[:2], np.uint8)
                poly(mask, outline - lo, 255)
                m = mask[..., None].astype(np.uint16)
                roi[:] = ((roi.astype(np.uint16) * (255 - m) + layer.astype(np.uint16) * m + 127) // 255)
        line(img, tf(upper), lash, 1.1 * ss)


def draw_nose(img: np.ndarray, ident: Identity, tf: Tf, shade, ss: int) -> None:
    tip = min(ident.eye_y + ident.nose_len, ident.mouth_y - ident.lip_up - 7)
    w = ident.nose_w
    ridge = np.array([[w * 0.25, ident.eye_y + 3], [w * 0.35, tip - 5], [w * 0.6, tip - 1]])
    line(img, tf(ridge), _mix(ident.skin, (0, 0, 0), 0.18), 0.7 * ss)
    base = ellipse(0, tip, w * 0.55, 2.6, 14, 0.15 * np.pi, 0.85 * np.pi)
    line(img, tf(base), _mix(ident.skin, (0, 0, 0), 0.28), 0.7 * ss)
    for sgn in (-1, 1):
        poly(img, tf(ellipse(sgn * w * 0.3, tip + 1.2, 1.3, 0.8, 10)), _mix(shade, (0, 0, 0), 0.45))


def draw_beard(img: np.ndarray, ident: Identity, tf: Tf, outline: np.ndarray) -> None:
    top = ident.mouth_y - ident.lip_up - 5
    n = len(outline)
    lower = outline[1:n // 2]  # the outline runs from the right cheek under the chin to the left
    below = lower[lower[:, 1] > top]
    if len(below) < 2:
        return
    colour = ident.hair_colour if ident.beard == "beard" else _mix(ident.hair_colour, ident.skin, 0.6)
    pts = np.concatenate([[[below[0, 0], top]], below, [[below[-1, 0], top]]])
    poly(img, tf(pts), colour)


def draw_moustache(img: np.ndarray, ident: Identity, tf: Tf, shape: dict) -> None:
    x = shape["x"]
    keep = np.abs(x) <= shape["half"] * 1.05
    lower = np.stack([x[keep] * 1.1, shape["outer_up"][keep] + ident.mouth_y - 0.3], 1)
    upper = lower[::-1].copy()
    upper[:, 1] -= 3.5 + 1.5 * np.cos(np.linspace(-1.3, 1.3, len(upper)))
    poly(img, tf(np.concatenate([lower, upper])), ident.hair_colour)


def draw_glasses(img: np.ndarray, ident: Identity, tf: Tf, ss: int) -> None:
    frame = (30, 30, 35)
    for sgn in (-1, 1):
        rim = ellipse(sgn * ident.eye_dx, ident.eye_y, ident.eye_w * 1.55, ident.eye_h * 2.0 + 1.5, 24)
        line(img, tf(rim), frame, 1.2 * ss, closed=True)
    bridge = np.array([[-ident.eye_dx + ident.eye_w * 1.5, ident.eye_y - 1],
                       [ident.eye_dx - ident.eye_w * 1.5, ident.eye_y - 1]])
    line(img, tf(bridge), frame, 1.0 * ss)
