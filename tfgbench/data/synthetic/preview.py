"""A contact sheet of synthetic clips (PNG): one row per speaker, frames across the sentence,
each labelled with the phoneme being spoken, the transcript under the row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgbench.data.synthetic.generation import speakers


def _phone_at(clip, t: float) -> str:
    for p in clip.phones:
        if p.start <= t < p.end:
            return p.symbol
    return "_"


def contact_sheet(seed: int = 0, rows: int = 8, columns: int = 10, scale: int = 1) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB: ``rows`` speakers (test speakers, then OOD ones), ``columns``
    frames evenly spread over each clip's speech."""
    import cv2

    from tfgbench.data.synthetic.clip import make_clip
    from tfgbench.data.synthetic.generation import _speaker_index

    groups = speakers(seed)
    chosen = (groups["test"] + groups["train"])[: max(rows - 2, 1)] + groups["ood"][:2]
    sheet_rows = []
    for sp in chosen[:rows]:
        clip = make_clip(seed, sp, _speaker_index(sp), 0)
        start, end = clip.word_times[0][0], clip.word_times[-1][1]
        idx = np.linspace(start * 25, end * 25 - 1, columns).round().astype(int)
        tiles = []
        for i in idx:
            tile = clip.frames[i]
            if scale > 1:
                tile = cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            tile = np.ascontiguousarray(np.pad(tile, ((0, 16), (0, 2), (0, 0)), constant_values=255))
            label = f"{i}:{_phone_at(clip, (i + 0.5) / 25)}"
            _text(tile, label, (3, tile.shape[0] - 4))
            tiles.append(tile)
        row = np.concatenate(tiles, axis=1)
        caption = np.full((18, row.shape[1], 3), 255, np.uint8)
        _text(caption, f"{sp.id} ({sp.pool}, voice {sp.voice.base} {sp.voice.gender}): {clip.transcript}", (4, 13))
        sheet_rows += [row, caption]
    return np.concatenate(sheet_rows, axis=0)


_XSAMPA = {"ɪ": "I", "ʊ": "U", "ə": "@", "ɐ": "6", "ɛ": "E", "æ": "{", "ɑ": "A", "ɒ": "Q", "ɔ": "O",
           "ʌ": "V", "ɜ": "3", "θ": "T", "ð": "D", "ʃ": "S", "ʒ": "Z", "ŋ": "N", "ɹ": "r", "ɾ": "4",
           "ɡ": "g", "ː": ":", "ᵻ": "1", "ɚ": "@`", "ʔ": "?"}


def _text(img: np.ndarray, text: str, org: tuple[int, int]) -> None:
    import cv2

    # cv2's Hershey fonts are ASCII only: IPA is written in X-SAMPA
    ascii_text = "".join(_XSAMPA.get(ch, ch) for ch in text).encode("ascii", "replace").decode()
    cv2.putText(img, ascii_text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.36, (20, 20, 20), 1, cv2.LINE_AA)


def write_contact_sheet(path: str | Path, seed: int = 0, rows: int = 8, columns: int = 10) -> Path:
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(seed, rows, columns)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        from tfgbench.errors import TfgbenchError

        raise TfgbenchError(f"{path}: cannot write the contact sheet (is it a .png path in a writable folder?)")
    return path
