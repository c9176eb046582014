"""Bootstrap intervals and paired comparisons against cases with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import run_cli
from results_factory import fake_store

from tfgbench.compare import resolve_model
from tfgbench.errors import TfgbenchError
from tfgbench.stats import bootstrap_ci, paired_compare


def _clips(values, num=None, den=None):
    if num is None:
        return {f"c{i}": (float(v), None, None) for i, v in enumerate(values)}
    return {f"c{i}": (n / d, float(n), float(d)) for i, (n, d) in enumerate(zip(num, den))}


def test_bootstrap_ci_covers_the_mean_and_shrinks_with_more_clips():
    rng = np.random.default_rng(1)
    small = list(_clips(rng.normal(5, 1, 30)).values())
    large = list(_clips(rng.normal(5, 1, 600)).values())
    lo_s, hi_s = bootstrap_ci(small, pooled=False)
    lo_l, hi_l = bootstrap_ci(large, pooled=False)
    assert lo_s < np.mean([v[0] for v in small]) < hi_s
    assert lo_l < 5 < hi_l
    # width ~ 2 * 1.96 / sqrt(n): 0.72 for 30 clips, 0.16 for 600
    assert 0.5 < hi_s - lo_s < 0.95 and 0.12 < hi_l - lo_l < 0.2
    assert bootstrap_ci(small, pooled=False) == (lo_s, hi_s)  # seeded: the same interval twice


def test_bootstrap_pooled_recomputes_the_ratio_per_resample():
    # one long clip with many errors dominates a pooled WER; the mean of per-clip WERs ignores its length
    num, den = [50] + [0] * 9, [100] + [5] * 9
    clips = list(_clips(None, num, den).values())
    pooled = bootstrap_ci(clips, pooled=True)
    means = bootstrap_ci(clips, pooled=False)
    # k draws of the long clip (Binomial(10, 0.1); its 97.5 % quantile is 3, its 2.5 % quantile 0):
    # pooled 50k / (100k + 5(10 - k)), mean of per-clip values 0.5k / 10
    assert pooled == (0.0, pytest.approx(150 / 335))
    assert means == (0.0, pytest.approx(0.15))
    assert bootstrap_ci([(1.0, 2.0, 2.0)] * 5, pooled=True) == (1.0, 1.0)


@pytest.mark.parametrize("method", ["permutation", "bootstrap"])
@pytest.mark.parametrize("pooled", [False, True])
def test_identical_models_differ_by_zero_with_p_one(method, pooled):
    rng = np.random.default_rng(2)
    num, den = rng.integers(0, 6, 50), rng.integers(4, 9, 50)
    a = _clips(rng.normal(0, 1, 50)) if not pooled else _clips(None, num, den)
    c = paired_compare(a, dict(a), pooled=pooled, method=method)
    assert c.diff == 0 and c.p_value == 1.0 and c.ci_low == 0 and c.ci_high == 0 and c.n == 50


@pytest.mark.parametrize("method", ["permutation", "bootstrap"])
def test_an_injected_shift_is_recovered(method):
    rng = np.random.default_rng(3)
    base = rng.normal(0, 1, 200)  # large clip-to-clip spread, shared by both models (paired)
    a = _clips(base + 0.3 + rng.normal(0, 0.1, 200))
    b = _clips(base)
    c = paired_compare(a, b, pooled=False, method=method)
    assert c.ci_low < 0.3 < c.ci_high and abs(c.diff - 0.3) < 0.03
    assert c.p_value < 0.001
    # the unpaired spread (sd 1) would hide it: the interval is from the paired differences (sd 0.1)
    assert c.ci_high - c.ci_low < 0.06


def test_no_shift_is_not_significant_and_p_is_roughly_uniform():
    ps = []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        base = rng.normal(0, 1, 60)
        ps.append(paired_compare(_clips(base + rng.normal(0, 0.2, 60)), _clips(base + rng.normal(0, 0.2, 60)),
                                 pooled=False, resamples=500, seed=seed).p_value)
    assert 0.3 < float(np.mean(ps)) < 0.7  # uniform p under the null: mean 0.5
    assert sum(p < 0.05 for p in ps) <= 6  # about 5 % false positives (2 expected of 40)


def test_pooled_shift_on_wer_counts():
    rng = np.random.default_rng(4)
    words = rng.integers(4, 10, 150)
    edits_b = rng.binomial(words, 0.3)
    edits_a = np.minimum(words, edits_b + rng.binomial(words, 0.2))
    c = paired_compare(_clips(None, edits_a, words), _clips(None, edits_b, words), pooled=True)
    assert c.value_a == pytest.approx(edits_a.sum() / words.sum())
    assert c.diff == pytest.approx((edits_a.sum() - edits_b.sum()) / words.sum())
    assert c.ci_low < c.diff < c.ci_high and c.ci_low > 0 and c.p_value < 0.001


def test_compare_pairs_only_shared_clips():
    a = _clips([1.0, 2.0, 3.0, 100.0])
    b = {k: v for k, v in _clips([1.0, 2.0, 3.0]).items()}
    c = paired_compare(a, b, pooled=False)
    assert c.n == 3 and c.diff == 0 and c.value_a == 2.0
    with pytest.raises(TfgbenchError, match="share no"):
        paired_compare({"x": (1.0, None, None)}, {"y": (1.0, None, None)}, pooled=False)


def test_resolve_model_by_checkpoint_prefix():
    keys = {("m", "aaaa1111", "s1", "lossless"), ("m", "bbbb2222", "s2", "lossless"), ("n", "none", "s", "lossless")}
    assert resolve_model("n", keys) == ("n", "none", "s", "lossless")
    assert resolve_model("m@bbbb", keys)[1] == "bbbb2222"
    assert resolve_model("zzz", keys) is None
    with pytest.raises(TfgbenchError, match="m@aaaa1111"):
        resolve_model("m", keys)
    latest = {("m", "aaaa1111", "s1", "lossless"): 9, ("m", "bbbb2222", "s2", "lossless"): 3}
    assert resolve_model("m", keys, latest, strict=False)[1] == "aaaa1111"


def test_compare_command_on_a_store(tmp_path):
    fake_store(tmp_path / "results.sqlite").close()
    out = run_cli("compare", "wav2lip", "synctalklip", "--dataset", "synthetic", "--workdir", str(tmp_path),
                  "--format", "json", "--resamples", "500").stdout
    rows = {(r["protocol"], r["measure"]): r for r in json.loads(out)}
    lse = rows[("lse/synthetic", "lse_c")]
    assert lse["n"] == 40 and lse["diff"] == pytest.approx(0.2, abs=0.02) and lse["p_value"] < 0.01
    assert lse["ci_low"] < 0.2 < lse["ci_high"]
    assert rows[("lse/synthetic", "offset")]["diff"] == 0 and rows[("lse/synthetic", "offset")]["p_value"] == 1
    md = run_cli("compare", "synctalklip", "synctalklip", "--dataset", "synthetic", "--workdir", str(tmp_path),
                 "--resamples", "200").stdout
    assert "no significant difference" in md and "better" not in md.split("verdict")[1].split("Paired")[0]
    md = run_cli("compare", "wav2lip", "synctalklip", "--dataset", "synthetic", "--workdir", str(tmp_path),
                 "--resamples", "200", "--protocol", "lse/synthetic").stdout
    assert "wav2lip better" in md and "psnr" not in md
    bad = run_cli("compare", "nobody", "wav2lip", "--dataset", "synthetic", "--workdir", str(tmp_path), check=False)
    assert bad.returncode == 2 and "no stored results for model 'nobody'" in bad.stderr


def test_table_ci_option_adds_intervals(tmp_path):
    fake_store(tmp_path / "results.sqlite").close()
    md = run_cli("table", "--workdir", str(tmp_path), "--ci", "--resamples", "300").stdout
    line = next(x for x in md.splitlines() if x.startswith("| wav2lip"))
    cells = [c.strip() for c in line.split("|")[2:-1]]
    value, lo, hi = (float(x.strip("[],")) for x in cells[0].split())
    assert lo < value < hi and hi - lo < 0.05
    assert "percentile bootstrap interval over clips" in md
    csv_text = run_cli("table", "--workdir", str(tmp_path), "--ci", "--resamples", "300", "--format",
                       "csv-summary").stdout
    header, *lines = csv_text.splitlines()
    assert header.endswith("ci_low,ci_high")
    row = next(x.split(",") for x in lines if ",wav2lip," in x and ",lse_c," in x)
    assert float(row[-2]) < float(row[12]) < float(row[-1])
    assert not math.isnan(float(row[-1]))
