"""Uncertainty of stored results: clip-resampled bootstrap intervals and paired comparisons.

Every number in a tfgbench table is an aggregate over the clips of a split, so the clips are
the unit of resampling:

* :func:`bootstrap_ci` draws the clips with replacement ``resamples`` times and recomputes the
  dataset value of each draw exactly as the table does (:func:`tfgbench.metrics.base.aggregate`):
  the mean of per-clip values, or, for pooled measures (corpus WER, frame-pooled PSNR/SSIM), the
  ratio of the summed sufficient statistics of the drawn clips. The interval is the percentile
  interval of those values (95 % by default).
* :func:`paired_compare` compares two models on the clips both have: the difference of their
  dataset values over those clips, a paired bootstrap interval of that difference (the same
  clips drawn for both models), and a two-sided p-value for "no difference": by default a paired
  permutation (sign-flip) test that swaps the two models' results of each clip at random; or
  ``method="bootstrap"``, the share of centred bootstrap differences at least as large as the
  observed one. Identical models give difference 0 and p = 1.

Everything is seeded (default seed 0), so a table rendered twice shows the same intervals.
numpy is imported inside the functions: ``import tfgbench.stats`` stays light.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tfgbench.errors import TfgbenchError
from tfgbench.store import ERROR_MEASURE, DatasetKey, Row

if TYPE_CHECKING:
    import numpy as np

    from tfgbench.metrics.base import Measure

#: default number of bootstrap resamples / permutations
RESAMPLES = 2000
#: default confidence level
LEVEL = 0.95
#: significance level used to decide "significantly best" in paper tables
ALPHA = 0.05
METHODS = ("permutation", "bootstrap")
_CHUNK = 256

ModelRow = tuple[str, str, str, str]


@dataclass(frozen=True)
class GroupKey:
    """One column of one model on one dataset split: whose rows, scored how."""

    model: ModelRow
    dataset: DatasetKey
    protocol: str
    protocol_version: int
    evaluator_sha256: str
    measure: str


@dataclass
class SampleValues:
    """Per-clip results of one :class:`GroupKey`: ``(value, num, den)`` per sample id, and the ids
    of failed samples (error rows)."""

    values: dict[str, tuple[float, float | None, float | None]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


def group_rows(rows: Iterable[Row], measures: Mapping[tuple[str, str], Measure]) -> dict[GroupKey, SampleValues]:
    """Group stored rows by (model, dataset split, protocol, version, evaluator, measure). An error
    row of a (sample, protocol) marks that sample failed for every measure of the protocol."""
    groups: dict[GroupKey, SampleValues] = defaultdict(SampleValues)
    errors: dict[tuple, set[str]] = defaultdict(set)
    for r in rows:
        dkey = DatasetKey(r.dataset, r.dataset_version, r.split, r.boxes)
        if r.measure == ERROR_MEASURE or r.error is not None:
            errors[(r.model_key, dkey, r.protocol, r.protocol_version, r.evaluator_sha256)].add(r.sample_id)
            continue
        key = GroupKey(r.model_key, dkey, r.protocol, r.protocol_version, r.evaluator_sha256, r.measure)
        groups[key].values[r.sample_id] = (float("nan") if r.value is None else r.value, r.num, r.den)
    for (mkey, dkey, protocol, version, ev), ids in errors.items():
        for (p, m) in measures:
            if p == protocol:
                groups[GroupKey(mkey, dkey, protocol, version, ev, m)].failed |= ids
    return dict(groups)


def _arrays(values: Sequence[tuple[float, float | None, float | None]], pooled: bool) -> tuple[np.ndarray, ...]:
    import numpy as np

    if pooled:
        num = np.array([0.0 if v[1] is None else v[1] for v in values], dtype=np.float64)
        den = np.array([0.0 if v[2] is None else v[2] for v in values], dtype=np.float64)
        return num, den
    return (np.array([v[0] for v in values], dtype=np.float64),)


def _stat(arrays: tuple[np.ndarray, ...], idx: np.ndarray | None = None) -> np.ndarray | float:
    """Dataset value of the (resampled) clips: mean, or pooled ratio. ``idx`` (B, n) gives B draws."""
    import numpy as np

    if idx is None:
        if len(arrays) == 2:
            den = arrays[1].sum()
            return float(arrays[0].sum() / den) if den else math.nan
        return float(arrays[0].mean())
    if len(arrays) == 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            return arrays[0][idx].sum(axis=1) / arrays[1][idx].sum(axis=1)
    return arrays[0][idx].mean(axis=1)


def _draws(rng: np.random.Generator, n: int, resamples: int) -> Iterable[np.ndarray]:
    done = 0
    while done < resamples:
        b = min(_CHUNK, resamples - done)
        done += b
        yield rng.integers(0, n, size=(b, n))


def _interval(stats: np.ndarray, level: float) -> tuple[float, float]:
    import numpy as np

    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def bootstrap_ci(values: Sequence[tuple[float, float | None, float | None]], pooled: bool,
                 resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a dataset value, resampling whole clips.

    ``values``: per-clip ``(value, num, den)``; ``pooled``: recompute ``sum(num) / sum(den)`` per
    draw (else the mean of values). Returns ``(low, high)``; NaN for no clips."""
    import numpy as np

    if not values:
        return (math.nan, math.nan)
    arrays = _arrays(values, pooled)
    rng = np.random.default_rng(seed)
    stats = np.concatenate([np.atleast_1d(_stat(arrays, idx)) for idx in _draws(rng, len(values), resamples)])
    return _interval(stats, level)


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of A and B on one measure over the clips both have (``diff = A - B``)."""

    n: int
    value_a: float
    value_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    resamples: int
    level: float

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def paired_compare(a: Mapping[str, tuple[float, float | None, float | None]],
                   b: Mapping[str, tuple[float, float | None, float | None]], pooled: bool,
                   method: str = "permutation", resamples: int = RESAMPLES, level: float = LEVEL,
                   seed: int = 0) -> Comparison:
    """Paired difference A - B over the sample ids both mappings have; see the module docstring.

    The p-value is ``(1 + #{|d*| >= |d|}) / (1 + resamples)`` with ``d*`` the permuted (or
    centred bootstrap) differences, so it is never 0 and is 1 when nothing differs."""
    import numpy as np

    if method not in METHODS:
        raise TfgbenchError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    ids = sorted(set(a) & set(b))
    if not ids:
        raise TfgbenchError("the two models share no scored sample")
    xa, xb = _arrays([a[i] for i in ids], pooled), _arrays([b[i] for i in ids], pooled)
    va, vb = _stat(xa), _stat(xb)
    diff = float(va) - float(vb)
    n = len(ids)
    rng = np.random.default_rng(seed)
    boot = np.concatenate([np.atleast_1d(_stat(xa, idx) - _stat(xb, idx)) for idx in _draws(rng, n, resamples)])
    ci = _interval(boot, level)
    tol = 1e-9 * max(1.0, abs(diff))
    if method == "bootstrap":
        null = np.abs(boot - diff)
    else:
        null = np.abs(_sign_flips(xa, xb, np.random.default_rng(seed + 1), resamples))
    hits = int(np.count_nonzero(null >= abs(diff) - tol))
    p = min(1.0, (1 + hits) / (1 + resamples))
    return Comparison(n, float(va), float(vb), diff, ci[0], ci[1], p, method, resamples, level)


def _sign_flips(xa: tuple[np.ndarray, ...], xb: tuple[np.ndarray, ...], rng: np.random.Generator,
                resamples: int) -> np.ndarray:
    """Differences A' - B' where each clip's A and B results are swapped with probability 1/2."""
    import numpy as np

    n = xa[0].shape[0]
    out = []
    done = 0
    while done < resamples:
        b = min(_CHUNK, resamples - done)
        done += b
        flip = rng.random((b, n)) < 0.5
        if len(xa) == 2:
            num_a = np.where(flip, xb[0], xa[0]).sum(1)
            den_a = np.where(flip, xb[1], xa[1]).sum(1)
            num_b = np.where(flip, xa[0], xb[0]).sum(1)
            den_b = np.where(flip, xa[1], xb[1]).sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append(num_a / den_a - num_b / den_b)
        else:
            d = xa[0] - xb[0]
            out.append(np.where(flip, -d, d).mean(1))
    return np.concatenate(out)


def complete(group: SampleValues | None, total: int) -> bool:
    """A group counts (has a table value) only when every sample of the split is scored."""
    return group is not None and not group.failed and len(group.values) == total


def attach_cis(tables: Sequence[Any], rows: Sequence[Row], measures: Mapping[tuple[str, str], Measure],
               resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> None:
    """Fill ``cell.ci`` of every complete cell of :func:`tfgbench.tables.build_tables` tables."""
    groups = group_rows(rows, measures)
    for table in tables:
        for (mkey, col), cell in table.cells.items():
            if not cell.complete:
                continue
            key = GroupKey(mkey, table.dataset, col.protocol, col.protocol_version, col.evaluator_sha256,
                           col.measure.key)
            group = groups.get(key)
            if group is None or not group.values:
                continue
            cell.ci = bootstrap_ci(list(group.values.values()), col.measure.pooled, resamples, level, seed)


def format_ci(lo: float, hi: float, measure: Measure) -> str:
    """``[lo, hi]`` with the measure's scale and decimals."""
    if math.isnan(lo) or math.isnan(hi):
        return ""
    scale = 100 if measure.percent else 1
    return f"[{lo * scale:.{measure.digits}f}, {hi * scale:.{measure.digits}f}]"


def ci_note(level: float = LEVEL, resamples: int = RESAMPLES) -> str:
    """The sentence under a table whose cells carry intervals."""
    return (f"[lo, hi]: {round(level * 100)}% percentile bootstrap interval over clips ({resamples} resamples, "
            "seed 0; pooled measures recomputed from the resampled clips' sums).")
