"""`tfgbench table --paper tableN`: layouts, protocol-named columns, significance-only bold, notes."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from conftest import run_cli
from results_factory import fake_store, protocol_specs

from tfgbench.metrics.base import Measure, ProtocolSpec, Score
from tfgbench.paper_build import build_paper_table, krippendorff_alpha_interval
from tfgbench.paper_render import render_paper
from tfgbench.store import DatasetKey, ModelKey, ProtocolResult, Store

N = 30


def _lse_store(path, lse_c: dict[str, np.ndarray], n: int = N, total: int | None = None) -> Store:
    """A store with only lse/synthetic rows: model -> per-clip LSE-C."""
    store = Store(path)
    store.record_protocol(protocol_specs()["lse/synthetic"])
    dkey = DatasetKey("synthetic", "v1", "test")
    store.record_dataset(dkey, total or n)
    for model, values in lse_c.items():
        mkey = ModelKey(model, "none" if model == "ground-truth" else "c" * 64, "s")
        for i, v in enumerate(values):
            store.write_sample(mkey, dkey, f"c{i:03d}", 1, [ProtocolResult(
                "lse/synthetic", "ev", {"lse_c": Score(float(v)), "lse_d": Score(1 - float(v)), "offset": Score(0.0)})])
    return store


def _row(md: str, label: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {label} "))
    return [c.strip() for c in line.split("|")[2:-1]]


def test_bold_only_for_a_significantly_best_value(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.3, N)
    store = _lse_store(tmp_path / "r.sqlite", {
        "ground-truth": base + 0.5,           # best of all, but a reference: never bold
        "wav2lip": base + 0.1 + rng.normal(0, 0.01, N),
        "talklip": base.copy(),
        "synctalklip": base.copy(),
    })
    table = build_paper_table(store, "table1", "synthetic", second="none", resamples=500)
    md = render_paper(table, "md")
    assert _row(md, "Wav2Lip")[0].startswith("**") and _row(md, "Wav2Lip")[1].startswith("**")
    assert "**" not in _row(md, "Ground Truth")[0]
    assert "significantly best" in md and "paired permutation test" in md
    # the same store without Wav2Lip: TalkLip and SyncTalklip tie, so nothing is bold
    store.db.execute("DELETE FROM results WHERE model='wav2lip'")
    store.db.commit()
    md = render_paper(build_paper_table(store, "table1", "synthetic", second="none", resamples=500), "md")
    assert "**" not in md.split("\n\n", 2)[1]
    # a small shift (0.002 on clips spread 0.1 wide) is significant because it is paired
    store.db.execute("UPDATE results SET value = value + 0.002 WHERE model='talklip' AND measure='lse_c'")
    store.db.commit()
    md = render_paper(build_paper_table(store, "table1", "synthetic", second="none", resamples=500), "md")
    assert _row(md, "TalkLip")[0].startswith("**") and "**" not in _row(md, "SyncTalklip")[0]
    store.close()


def test_columns_name_protocols_and_missing_cells_say_why(tmp_path):
    def edit(model, sid, results):
        if model == "talklip" and sid >= "s1":  # TalkLip scored on 10 clips of 40 only
            return []
        if model == "synctalklip" and sid == "s0/u003":
            return [ProtocolResult(r.protocol, r.evaluator_sha256, {}, error="boom") if r.protocol == "psnr/talklip"
                    else r for r in results]
        return results

    fake_store(tmp_path / "results.sqlite", datasets=("synthetic", "synthetic-ood"), edit=edit).close()
    md = run_cli("table", "--paper", "table1", "--dataset", "synthetic", "--workdir", str(tmp_path),
                 "--resamples", "200").stdout
    header = md.splitlines()[2]
    for name in ("synthetic: LSE-C ↑ (lse/synthetic)", "synthetic: PSNR ↑ (psnr/talklip)",
                 "synthetic: WER % ↓ (wer/synthetic-avhubert)", "synthetic-ood: SSIM ↑ (ssim/talklip)"):
        assert name in header
    assert [r.split("|")[1].strip() for r in md.splitlines()[4:9]] == \
        ["Ground Truth", "Wav2Lip", "TalkLip", "SyncTalklip", "static frame (control)"]
    talklip = _row(md, "TalkLip")
    assert all(c.startswith("–(") for c in talklip)
    note = talklip[0][2]
    assert f"({note}) talklip: 10/40 clips scored with lse/synthetic on synthetic" in md
    sync = _row(md, "SyncTalklip")
    assert sync[2].startswith("–(") and sync[0][0].isdigit()  # one failed clip blanks PSNR only
    assert "39/40 clips scored with psnr/talklip on synthetic, 1 failed" in md
    assert "synthetic-ood: test split, version v1, 40 clips" in md
    md3 = run_cli("table", "--paper", "table3", "--dataset", "synthetic", "--workdir", str(tmp_path)).stdout
    assert "WER (Conformer) % ↓ (wer/synthetic-conformer)" in md3
    assert "synctalklip-no-lip: no results on synthetic/test; `tfgbench run --model synctalklip-no-lip " \
           "--dataset synthetic`" in md3


def test_ci_and_every_format(tmp_path):
    fake_store(tmp_path / "results.sqlite", datasets=("synthetic", "synthetic-ood")).close()
    args = ["table", "--paper", "table4", "--dataset", "synthetic", "--workdir", str(tmp_path), "--ci",
            "--resamples", "300"]
    md = run_cli(*args).stdout
    value, lo, hi = (float(x.strip("*[],")) for x in _row(md, "TalkLip")[0].split())
    assert lo <= value <= hi and hi - lo < 0.05
    assert "(300 resamples" in md
    latex = run_cli(*args, "--format", "latex").stdout
    assert r"\multicolumn{5}{c}{synthetic}" in latex and r"\multicolumn{5}{c}{synthetic-ood}" in latex
    assert r"\textbf{" in latex and r"{\scriptsize wer/synthetic-conformer}" in latex
    assert r"$^{\mathrm{a}}$" in latex  # the variants have no rows
    html = run_cli(*args, "--format", "html").stdout
    assert '<th colspan="5">synthetic</th>' in html and "<b>" in html and "<sup>a</sup>" in html
    rows = list(csv.DictReader(io.StringIO(run_cli(*args, "--format", "csv").stdout)))
    talk = [r for r in rows if r["model"] == "talklip" and r["dataset"] == "synthetic" and r["column"] == "LSE-C"][0]
    assert float(talk["ci_low"]) <= float(talk["value"]) <= float(talk["ci_high"]) and talk["bold"] == "1"
    conv = [r for r in rows if r["model"] == "synctalklip-conv"][0]
    assert conv["value"] == "" and "no results" in conv["note"]
    bad = run_cli("table", "--paper", "table1", "--workdir", str(tmp_path), check=False)
    assert bad.returncode == 2 and "--paper needs --dataset" in bad.stderr


def test_table2_rows_are_readers_matched_by_file_hash(tmp_path):
    from tfgbench.paths import sha256_file

    files = {}
    for name in ("a", "b", "c"):
        files[name] = tmp_path / f"{name}.bin"
        files[name].write_bytes(name.encode() * 100)
    store = Store(tmp_path / "r.sqlite")
    store.record_protocol(protocol_specs()["wer/synthetic-avhubert"])
    dkey = DatasetKey("synthetic", "v1", "test")
    store.record_dataset(dkey, 20)
    gt = ModelKey("ground-truth", "none", "s")
    rng = np.random.default_rng(5)
    for name, p in (("a", 0.05), ("b", 0.5)):
        sha = sha256_file(files[name])
        for i in range(20):
            store.write_sample(gt, dkey, f"c{i}", 1, [ProtocolResult(
                "wer/synthetic-avhubert", sha, {"wer": Score.ratio(int(rng.binomial(6, p)), 6)})])
    table = build_paper_table(store, "table2", "synthetic", resamples=300,
                              readers={"Reader A": str(files["a"]), "Reader B": str(files["b"]),
                                       "Reader C": str(files["c"])})
    md = render_paper(table, "md")
    a, b, c = _row(md, "Reader A"), _row(md, "Reader B"), _row(md, "Reader C")
    assert a[2] == "wer/synthetic-avhubert" and a[3].startswith("**")  # far fewer errors: significantly best
    assert float(b[3]) > 30 and c[3].startswith("–(")
    assert "Reader C: no ground-truth rows on synthetic read by c.bin" in md
    assert "--weights wer/synthetic-avhubert=" in md
    store.close()


def test_table5_ratings_mean_std_and_agreement(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    measures = tuple(Measure(k, k.upper(), True) for k in ("intl", "sync", "auth"))
    store.record_protocol(ProtocolSpec("rating/human", measures, "human 1-5 ratings"))
    dkey = DatasetKey("synthetic", "v1", "test")
    store.record_dataset(dkey, 2)
    for model, scores in (("wav2lip", (2, 4)), ("synctalklip", (4, 4))):
        mkey = ModelKey(model, "c" * 64, "s")
        for rater in ("r1", "r2"):
            for i, s in enumerate(scores):
                store.write_sample(mkey, dkey, f"c{i}", 1, [ProtocolResult(
                    "rating/human", rater, {k: Score(float(s)) for k in ("intl", "sync", "auth")})])
    md = render_paper(build_paper_table(store, "table5", "synthetic"), "md")
    assert _row(md, "Wav2Lip")[0] == "3.00 ± 1.00" and _row(md, "SyncTalklip")[0] == "4.00 ± 0.00"
    assert _row(md, "TalkLip")[0].startswith("–(") and "`tfgbench rate --dataset synthetic`" in md
    assert "Krippendorff's alpha, interval): AUTH 1.00, INTL 1.00, SYNC 1.00" in md  # raters agree exactly
    store.close()


def test_krippendorff_alpha_known_values():
    assert krippendorff_alpha_interval({"u1": [1, 1], "u2": [3, 3]}) == 1.0
    # D_o = 16 / 4 = 4, D_e = 32 / 12: alpha = 1 - 4 / (8 / 3) = -0.5
    assert krippendorff_alpha_interval({"u1": [1, 3], "u2": [3, 1]}) == pytest.approx(-0.5)
    assert np.isnan(krippendorff_alpha_interval({"u1": [2]}))
