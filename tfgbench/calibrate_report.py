"""Figures and summary of a calibration sweep (:mod:`tfgbench.calibrate`).

Statistics: a measure's value over the clips is computed as its protocol aggregates it (mean of
per-clip values, or ``sum(num) / sum(den)`` for pooled measures such as corpus WER); 95 % intervals
are percentile bootstraps over clips (2,000 resamples, seed 0). Changes against the undegraded clips
are paired: each resample draws the same clips for both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfgbench.calibrate import NUISANCE_KINDS, SYNC_KINDS, Calibration
from tfgbench.degrade import KINDS

REPS = 2000
#: mild lip-sync errors each nuisance is compared with: (kind, |amount|) per measure key
SYNC_REFERENCE = {"wer": ("mouth-swap", 0.25)}
DEFAULT_REFERENCE = ("shift", 2)
#: share of clips at the expected offset for the offset to count as followed / unchanged
OFFSET_OK = 0.8
#: PSNR of identical frames (the TalkLip protocols' cap)
PSNR_IDENTICAL = 100.0


# -- statistics --------------------------------------------------------------------------------------
def _arrays(rows: dict[str, tuple], ids: Sequence[str], pooled: bool) -> tuple[np.ndarray, np.ndarray]:
    if pooled:
        return (np.array([rows[i][1] for i in ids], float), np.array([rows[i][2] for i in ids], float))
    return np.array([rows[i][0] for i in ids], float), np.ones(len(ids))


def _value(num: np.ndarray, den: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray | float:
    if idx is None:
        return float(num.sum() / den.sum()) if den.sum() else math.nan
    d = den[idx].sum(-1)
    return np.where(d > 0, num[idx].sum(-1) / np.where(d > 0, d, 1), np.nan)


def estimate(groups: Sequence[dict[str, tuple]], pooled: bool, baseline: dict[str, tuple] | None = None,
             reps: int = REPS, seed: int = 0) -> tuple[float, float, float, int]:
    """``(value, low, high, clips)``: the mean over ``groups`` (settings, e.g. shift +2 and -2) of the
    measure's dataset value, minus ``baseline``'s when given, with its 95 % bootstrap interval over
    the clips that every group (and the baseline) has."""
    sets = [set(g) for g in groups] + ([set(baseline)] if baseline is not None else [])
    ids = sorted(set.intersection(*sets)) if sets else []
    if not ids:
        return math.nan, math.nan, math.nan, 0
    arrays = [_arrays(g, ids, pooled) for g in groups]
    base = _arrays(baseline, ids, pooled) if baseline is not None else None
    idx = np.random.default_rng(seed).integers(0, len(ids), (reps, len(ids)))

    def stat(i: np.ndarray | None) -> Any:
        v = sum(_value(n, d, i) for n, d in arrays) / len(arrays)
        return v - _value(*base, i) if base is not None else v

    boot = stat(idx)
    low, high = np.nanpercentile(boot, [2.5, 97.5]) if np.isfinite(boot).any() else (math.nan, math.nan)
    return float(stat(None)), float(low), float(high), len(ids)


def severity(kind: str, amount: float) -> float:
    """Larger is a stronger degradation (lower JPEG quality, larger |shift|...)."""
    return -amount if kind == "jpeg" else abs(amount)


def _groups(cal: Calibration, kind: str, level: float) -> list[float]:
    """The amounts of ``kind`` at severity ``level`` (shift: both signs)."""
    return [a for a in cal.plan[kind] if severity(kind, a) == level]


def _levels(cal: Calibration, kind: str) -> list[float]:
    identity = KINDS[kind].identity
    return sorted({severity(kind, a) for a in cal.plan[kind] if a != identity})


def delta(cal: Calibration, kind: str, level: float, protocol: str, measure: Any) -> tuple[float, float, float, int]:
    groups = [cal.values.get((cal.labels[(kind, a)], protocol, measure.key), {}) for a in _groups(cal, kind, level)]
    return estimate(groups, measure.pooled, cal.undegraded(protocol, measure.key))


def value_at(cal: Calibration, kind: str, level: float, protocol: str, measure: Any) -> float:
    """The measure's value at ``kind``'s severity ``level`` (shift: mean over both signs)."""
    groups = [cal.values.get((cal.labels[(kind, a)], protocol, measure.key), {}) for a in _groups(cal, kind, level)]
    return estimate(groups, measure.pooled, reps=1)[0]


def offset_share(cal: Calibration, kind: str, amounts: Sequence[float], protocol: str) -> tuple[float, int]:
    """Share of (clip, amount) pairs whose offset equals the applied shift (0 for non-shift kinds)."""
    hits = total = 0
    for a in amounts:
        rows = cal.values.get((cal.labels[(kind, a)], protocol, "offset"), {})
        want = a if kind == "shift" else 0
        hits += sum(1 for r in rows.values() if round(r[0]) == want)
        total += len(rows)
    return (hits / total if total else math.nan), total


# -- formatting ------------------------------------------------------------------------------------------
def _scale(measure: Any) -> float:
    return 100.0 if measure.percent else 1.0


def _fmt(x: float, measure: Any, signed: bool = False) -> str:
    """A value with the measure's digits, a change (``signed``) with one more (WER: percent, 1 digit)."""
    if math.isnan(x):
        return "n/a"
    digits = 1 if measure.percent else measure.digits + (1 if signed else 0)
    text = f"{x * _scale(measure):{'+' if signed else ''}.{digits}f}"
    return text.replace("-", "−")


def _amount(kind: str, level: float) -> str:
    prefix = "±" if kind == "shift" else ""
    value = -level if kind == "jpeg" else level
    return f"{prefix}{value:g}"


def _header(protocol: str, measure: Any) -> str:
    arrow = {True: " ↑", False: " ↓", None: ""}[measure.higher_is_better]
    return f"{measure.label}{' %' if measure.percent else ''}{arrow} ({protocol})"


def _worse(d: float, measure: Any) -> float:
    """Positive when the change is for the worse (lower LSE-C, higher WER...)."""
    return -d if measure.higher_is_better else d


def expected(kind: str, measure: Any) -> str | None:
    """``worse``, ``same``, or ``None`` (no expectation) for ``kind`` on ``measure``."""
    if measure.key == "offset":
        return None if kind in ("freeze", "mouth-swap") else "follow" if kind == "shift" else "same"
    if measure.key in ("psnr", "ssim"):
        return "worse"
    if kind in SYNC_KINDS:
        return None if (kind == "shift" and measure.key == "wer") else "worse"
    return "same"


def _cell(cal: Calibration, kind: str, protocol: str, measure: Any) -> str:
    """``undegraded → degraded`` at the kind's strongest amount, with a mark (see :func:`summary`)."""
    levels = _levels(cal, kind)
    if not levels:
        return "n/a"
    want = expected(kind, measure)
    if measure.key == "offset":
        if want is None:
            return "—"
        share, n = offset_share(cal, kind, _groups(cal, kind, levels[-1]), protocol)
        target = "= shift" if want == "follow" else "0"
        mark = "✓" if share >= OFFSET_OK else "⚠" if want == "same" else "✗"
        return f"{target} on {share:.0%} {mark}" if n else "n/a"
    d, low, high, n = delta(cal, kind, levels[-1], protocol, measure)
    if not n:
        return "n/a"
    before = estimate([cal.undegraded(protocol, measure.key)], measure.pooled, reps=1)[0]
    after = value_at(cal, kind, levels[-1], protocol, measure)
    worse_low, worse_high = sorted((_worse(low, measure), _worse(high, measure)))
    moved = "worse" if worse_low > 0 else "better" if worse_high < 0 else "same"
    if want is None:
        mark = ""
    elif want == "same":
        mark = " ✓" if moved == "same" else " ⚠"
    else:
        mark = " ✓" if moved == want else " ✗"
    return f"{_fmt(before, measure)} → {_fmt(after, measure)}{mark}"


# -- figures ---------------------------------------------------------------------------------------------
def plot_kind(cal: Calibration, kind: str, path: Path) -> Path:
    """One PNG: a panel per measure, the value against the amount (mean and 95 % CI), the undegraded
    value as a dashed line with its band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = cal.columns
    ncols = min(4, len(cols))
    nrows = math.ceil(len(cols) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False)
    for ax, (protocol, _, measure) in zip(axes.flat, cols):
        s = _scale(measure)
        xs, ys, lows, highs = [], [], [], []
        for amount, rows in cal.series(kind, protocol, measure.key):
            v, lo, hi, n = estimate([rows], measure.pooled)
            if n:
                xs.append(amount)
                ys.append(v * s)
                lows.append(lo * s)
                highs.append(hi * s)
        base, blo, bhi, bn = estimate([cal.undegraded(protocol, measure.key)], measure.pooled)
        capped = measure.key == "psnr" and bn and base >= PSNR_IDENTICAL
        if capped:  # identical frames score the 100 dB cap: leave it out so the curve stays readable
            keep = [k for k, y in enumerate(ys) if y < PSNR_IDENTICAL]
            xs, ys, lows, highs = ([v[k] for k in keep] for v in (xs, ys, lows, highs))
        elif bn:
            ax.axhline(base * s, color="0.4", ls="--", lw=1, label="undegraded")
            ax.axhspan(blo * s, bhi * s, color="0.85", zorder=0)
        if xs:
            order = np.argsort(xs)
            x, y = np.asarray(xs)[order], np.asarray(ys)[order]
            lo, hi = np.asarray(lows)[order], np.asarray(highs)[order]
            ax.fill_between(x, lo, hi, color="tab:blue", alpha=0.2, lw=0)
            ax.plot(x, y, "o-", color="tab:blue", ms=3.5, lw=1.3)
        if kind == "shift" and measure.key == "offset" and xs:
            ax.plot(xs, xs, ":", color="tab:red", lw=1, label="offset = shift")
            ax.legend(fontsize=7, loc="upper left")
        if kind == "jpeg":
            ax.invert_xaxis()
        ax.set_title(_header(protocol, measure) + (" (undegraded: 100)" if capped else ""), fontsize=8.5)
        ax.set_xlabel(KINDS[kind].unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    d = cal.dataset
    fig.suptitle(f"{kind}: {d.dataset}/{d.split} ({d.dataset_version}), {len(cal.ids)} clips; "
                 "mean and 95 % CI; dashed: undegraded", fontsize=9.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- summary ---------------------------------------------------------------------------------------------
def reference(cal: Calibration, measure: Any) -> tuple[str, float] | None:
    """The mild sync error that ``measure``'s nuisances are compared with: the configured level, else
    the mildest swept one; ``None`` when the sweep has no such kind."""
    kind, level = SYNC_REFERENCE.get(measure.key, DEFAULT_REFERENCE)
    if kind not in cal.plan or not _levels(cal, kind):
        return None
    levels = _levels(cal, kind)
    return kind, level if level in levels else levels[0]


def _describe(kind: str, level: float) -> str:
    if kind == "shift":
        return f"a ±{level:g}-frame ({level * 40:g} ms) audio offset"
    if kind == "mouth-swap":
        return f"another clip's mouth on {level:.0%} of the frames"
    return f"{kind} {level:g}"


def _shown(value: float, d: float, measure: Any, capped: bool) -> str:
    """A value and its change (the value alone where the undegraded one is the PSNR cap)."""
    return _fmt(value, measure) + ("" if capped else f" ({_fmt(d, measure, True)})")


def _change(d: float, low: float, high: float, measure: Any) -> str:
    return f"{_fmt(d, measure, True)} [{_fmt(low, measure, True)}, {_fmt(high, measure, True)}]"


def sensitivity(cal: Calibration) -> tuple[list[str], list[str]]:
    """Table rows and one sentence per sync or lip-reading measure: the mildest amount of each
    nuisance that moves the measure at least as much (for the worse, point estimates) as the
    measure's sync reference does."""
    rows, bullets = [], []
    nuisances = [k for k in NUISANCE_KINDS if k in cal.plan and _levels(cal, k)]
    for protocol, _, measure in cal.columns:
        if measure.key == "offset":
            continue
        ref = reference(cal, measure)
        if ref is None:
            continue
        rd, rlo, rhi, rn = delta(cal, ref[0], ref[1], protocol, measure)
        if not rn:
            continue
        base = estimate([cal.undegraded(protocol, measure.key)], measure.pooled, reps=1)[0]
        capped = measure.key == "psnr" and base >= PSNR_IDENTICAL  # changes from the cap mean nothing

        cells, hits = [], []
        for kind in nuisances:
            hit, worst = None, math.nan
            for level in _levels(cal, kind):
                d, lo, hi, n = delta(cal, kind, level, protocol, measure)
                if not n:
                    continue
                if math.isnan(worst) or _worse(d, measure) > _worse(worst, measure):
                    worst = d
                if _worse(d, measure) > 0 and _worse(d, measure) >= _worse(rd, measure):
                    hit = (level, d, lo, hi)
                    break
            if hit is None:
                cells.append(f"— (at most {_fmt(worst, measure, True)})" if not math.isnan(worst) else "n/a")
                continue
            level, d, lo, hi = hit
            value = value_at(cal, kind, level, protocol, measure)
            cells.append(f"**{_amount(kind, level)}**: {_shown(value, d, measure, capped)}")
            hits.append(f"{kind} {KINDS[kind].short} {_amount(kind, level)} ({_change(d, lo, hi, measure)})")
        if hits and measure.key in ("lse_c", "lse_d", "wer"):
            bullets.append(f"**{_header(protocol, measure)}**: {_describe(*ref)} changes it by "
                           f"{_change(rd, rlo, rhi, measure)}; as much or more: " + ", ".join(hits) + ".")
        ref_value = _shown(value_at(cal, *ref, protocol, measure), rd, measure, capped)
        rows.append(f"| {_header(protocol, measure)} | {_fmt(base, measure)} | {_describe(*ref)}: {ref_value} | "
                    + " | ".join(cells) + " |")
    header = ("| measure | undegraded | sync reference | " + " | ".join(nuisances) + " |\n|---|---|---|"
              + "---|" * len(nuisances))
    return ([header, *rows] if rows else []), bullets


def summary(cal: Calibration, figures: dict[str, str]) -> str:
    d = cal.dataset
    evaluators = sorted({(p, e) for p, e, _ in cal.columns})
    lines = [
        f"# Metric calibration: {d.dataset}/{d.split}",
        "",
        f"Produced by `{cal.spec.command or 'tfgbench calibrate'}` on {len(cal.ids)} clips spread over the "
        f"split (corpus version `{d.dataset_version}`); evaluators: "
        + ", ".join(f"`{p}` {e[:12]}" for p, e in evaluators) + ".",
        "Each degradation is the `degrade` model applied to the ground truth; rows are stored like any run. "
        "Values are the protocols' dataset values (mean over clips, or pooled sums for WER and the frame-pooled "
        "PSNR/SSIM); brackets are 95 % bootstrap intervals over clips, paired with the undegraded clips.",
    ]
    if cal.failed:
        lines += ["", "Failed samples (error rows, left out): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(cal.failed.items())) + "."]
    lines += ["", "## Expected directions", "",
              "Undegraded → degraded value at each kind's strongest swept amount. Sync errors (shift, freeze, "
              "mouth-swap) should make sync and lip-reading measures worse; nuisances (blur, compression, "
              "resolution, noise) should make PSNR/SSIM worse and leave sync and lip-reading measures where they "
              "are. ✓: as expected (for the worse: the paired 95 % interval of the change lies on the worse side; "
              "unchanged: it contains 0); ✗: a sync error that the measure does not see; ⚠: a nuisance that moves "
              "a measure it should leave alone; no mark: no expectation (a lip reader sees no audio, so an offset "
              "is not its business). Offset cells: share of clips at the applied shift (at 0 for nuisances); ✓ "
              f"from {OFFSET_OK:.0%}.", ""]
    head = [_header(p, m) for p, _, m in cal.columns]
    lines.append("| kind (strongest amount) | " + " | ".join(head) + " |")
    lines.append("|---|" + "---|" * len(head))
    for kind in cal.plan:
        levels = _levels(cal, kind)
        title = f"{kind} ({_amount(kind, levels[-1])})" if levels else kind
        lines.append(f"| {title} | " + " | ".join(_cell(cal, kind, p, m) for p, _, m in cal.columns) + " |")
    offsets = [p for p, _, m in cal.columns if m.key == "offset"]
    if "shift" in cal.plan and offsets:
        lines += ["", "## The offset follows the shift", "",
                  "| shift (frames) | " + " | ".join(f"mean offset ({p}) | at the shift" for p in offsets) + " |",
                  "|---|" + "---|---|" * len(offsets)]
        for a in sorted(cal.plan["shift"]):
            cells = []
            for p in offsets:
                rows = cal.values.get((cal.labels[("shift", a)], p, "offset"), {})
                v, lo, hi, n = estimate([rows], False)
                share, _ = offset_share(cal, "shift", [a], p)
                cells.append(f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}] | {share:.0%}" if n else "n/a | n/a")
            lines.append(f"| {a:+g} | " + " | ".join(cells) + " |")
    table, bullets = sensitivity(cal)
    if table:
        lines += ["", "## Nuisances against sync", "",
                  "For each measure, the mildest swept amount of each nuisance that moves it at least as much, for "
                  "the worse, as a mild lip-sync error does (the sync reference: a ±2-frame audio offset; for WER, "
                  "whose readers see no audio, another clip's mouth on a quarter of the frames), with the change; "
                  "— where no swept amount does (with the largest change seen).", "", *table]
        lines += ["", "Where a sync or lip-reading protocol reacts as much or more to a nuisance as to sync (point "
                  "estimates; the change at the mildest such amount, with its 95 % interval):", ""]
        lines += [f"- {b}" for b in bullets] or ["- nowhere in this sweep."]
    lines += ["", "## Figures", ""]
    lines += [f"![{kind}]({name})" for kind, name in figures.items()]
    return "\n".join(lines) + "\n"


def write_report(cal: Calibration, out: Path) -> list[Path]:
    """``<out>/<kind>.png`` per kind and ``<out>/summary.md``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    figures = {kind: plot_kind(cal, kind, out / f"{kind}.png").name for kind in cal.plan}
    path = out / "summary.md"
    path.write_text(summary(cal, figures))
    return [out / f for f in figures.values()] + [path]
