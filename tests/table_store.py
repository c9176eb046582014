"""A results store that exercises every table feature, for the golden-output tests of
``tfgbench table`` (tests/test_tables_frame.py; expected outputs in tests/fixtures/tables/).

On top of :func:`results_factory.fake_store` (five models, two datasets, 40 clips, pooled and
per-clip measures): partial models covering different samples (shared-sample comparison), failed
samples, a second checkpoint of one model, the official delivery, a second protocol version, a
second evaluator, a face-box source other than the dataset's, an infinite PSNR, a second split and
a dataset whose size was never recorded.
"""

from __future__ import annotations

import math
from pathlib import Path

from results_factory import DEFAULT_MODELS, fake_store

from tfgbench.metrics.base import Score
from tfgbench.store import DatasetKey, ModelKey, ProtocolResult, Store

BOXES = "s3fd:" + "ab12" * 16


def _edit(model: str, sample_id: str, results: list[ProtocolResult]) -> list[ProtocolResult]:
    i = int(sample_id[1]) * 10 + int(sample_id[-3:])
    if model == "part-a":  # samples 0-29; sample 3 fails PSNR
        if i >= 30:
            return []
        if i == 3:
            return [r if r.protocol != "psnr/talklip" else ProtocolResult("psnr/talklip", "none", {}, "decode failed")
                    for r in results]
    if model == "part-b" and i < 10:  # samples 10-39: shares 10-29 with part-a
        return []
    if model == "trial":  # samples 10-14, but 0-4 for the Conformer WER (no sample shared by all three)
        conformer = [r for r in results if r.protocol == "wer/synthetic-conformer"]
        others = [r for r in results if r.protocol != "wer/synthetic-conformer"]
        return (others if 10 <= i < 15 else []) + (conformer if i < 5 else [])
    return results


def build(workdir: Path) -> Path:
    """Write ``workdir/results.sqlite``; returns its path."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "results.sqlite"
    models = {**DEFAULT_MODELS, "part-a": (0.1, 1.0, 0.7), "part-b": (0.15, 0.5, 0.65), "trial": (0.3, 1.5, 0.5)}
    store: Store = fake_store(path, models=models, datasets=("synthetic", "synthetic-ood"), edit=_edit)
    dkey = DatasetKey("synthetic", "v1", "test")
    ids = [f"s{i // 10}/u{i % 10:03d}" for i in range(40)]
    for i, sid in enumerate(ids):
        x = 0.1 + i / 7.0
        # a second checkpoint of synctalklip, under protocol versions 1 and 2 of LSE
        ck2 = ModelKey("synctalklip", "ck2" * 20, "set2")
        store.write_sample(ck2, dkey, sid, None, [
            ProtocolResult("lse/synthetic", "ev-lse", {"lse_c": Score(x / 3), "lse_d": Score(1.1 - x / 5),
                                                        "offset": Score(float(i % 3 - 1))}),
            ProtocolResult("lse/synthetic", "ev-lse", {"lse_c": Score(x / 2.9), "lse_d": Score(1.0 - x / 5),
                                                        "offset": Score(0.0)}, protocol_version=2)])
        # wav2lip through the official encode; talklip read by a second WER evaluator
        store.write_sample(ModelKey("wav2lip", "ckwav2lip" * 4, "setwav2lip", "official"), dkey, sid, None,
                           [ProtocolResult("psnr/talklip", "none", {"psnr": Score.ratio((21 + x / 11) * 60, 60)})])
        store.write_sample(ModelKey("talklip", "cktalklip" * 4, "settalklip"), dkey, sid, None,
                           [ProtocolResult("wer/synthetic-avhubert", "ev-avh2", {"wer": Score.ratio(i % 4, 6)})])
    # S3FD boxes: ground truth scores an infinite PSNR, static frame a finite one
    boxed = DatasetKey("synthetic", "v1", "test", BOXES)
    for i, sid in enumerate(ids):
        for model, psnr in (("ground-truth", math.inf), ("static-frame", 18.0 + i / 13.0)):
            mkey = ModelKey(model, "none", f"set{model}")
            store.write_sample(mkey, boxed, sid, None, [ProtocolResult(
                "psnr/talklip", "none", {"psnr": Score(psnr, psnr * 60, 60.0)}, sample_boxes="s3fd")])
    # a val split of 5 with one failure, and a dataset whose size was never recorded
    val = DatasetKey("synthetic", "v1", "val")
    store.record_dataset(val, 5)
    for i in range(5):
        results = [ProtocolResult("ssim/talklip", "none", {"ssim": Score.ratio((0.5 + i / 17) * 30, 30)})] \
            if i != 2 else [ProtocolResult("ssim/talklip", "none", {}, "no face")]
        store.write_sample(ModelKey("static-frame", "none", "setstatic-frame"), val, f"v{i}", None, results)
    for i in range(3):
        store.write_sample(ModelKey("static-frame", "none", "setstatic-frame"), DatasetKey("unsized", "u1", "test"),
                           f"c{i}", None, [ProtocolResult("ssim/talklip", "none", {"ssim": Score.ratio(0.25 + i, 4)})])
    store.close()
    return path
