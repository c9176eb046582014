"""Results stores made of synthetic rows, for tests of tables, statistics and reports (no scoring)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tfgbench.metrics.base import Score
from tfgbench.store import DatasetKey, ModelKey, ProtocolResult, Store


def protocol_specs() -> dict:
    from tfgbench.metrics.lse.protocols import PROTOCOLS as LSE
    from tfgbench.metrics.quality import PSNR, SSIM
    from tfgbench.metrics.wer.protocols import PROTOCOLS as WER

    return {s.name: s for s in (*LSE, *WER, *PSNR.protocols, *SSIM.protocols)}


#: model -> (LSE-C shift, PSNR shift, WER edits probability)
DEFAULT_MODELS = {
    "ground-truth": (0.6, 75.0, 0.05),
    "wav2lip": (0.2, 2.0, 0.6),
    "talklip": (0.05, 0.0, 0.75),
    "synctalklip": (0.0, 0.0, 0.8),
    "static-frame": (0.0, -1.0, 0.8),
}


def sample_scores(rng: np.random.Generator, shift: tuple[float, float, float], base: dict) -> list[ProtocolResult]:
    """One clip's results for the synthetic protocols; ``base`` holds the clip's own difficulty."""
    lse_c, psnr, p_err = shift
    frames = 60
    words = 6
    edits = int(rng.binomial(words, p_err))
    edits3 = int(rng.binomial(words * 3, min(1.0, p_err + 0.05)))
    c = base["lse_c"] + lse_c + rng.normal(0, 0.02)
    frame_psnr = base["psnr"] + psnr + rng.normal(0, 0.1)
    return [
        ProtocolResult("lse/synthetic", "ev-lse", {"lse_c": Score(c), "lse_d": Score(1.3 - c), "offset": Score(0.0)}),
        ProtocolResult("psnr/talklip", "none", {"psnr": Score.ratio(frame_psnr * frames, frames)}),
        ProtocolResult("ssim/talklip", "none", {"ssim": Score.ratio(min(1.0, 0.8 + psnr / 100) * frames, frames)}),
        ProtocolResult("wer/synthetic-avhubert", "ev-avh", {"wer": Score.ratio(edits, words)}),
        ProtocolResult("wer/synthetic-conformer", "ev-conf", {"wer": Score(edits3 / (words * 3))}),
    ]


def fake_store(path: Path, models: dict[str, tuple[float, float, float]] | None = None, n: int = 40,
               datasets: tuple[str, ...] = ("synthetic",), seed: int = 0,
               edit: Callable[[str, str, list[ProtocolResult]], list[ProtocolResult]] | None = None) -> Store:
    """A store with ``n`` clips per dataset and one row set per model (see :data:`DEFAULT_MODELS`).
    ``edit(model, sample_id, results)`` may change or drop a clip's results."""
    store = Store(path)
    specs = protocol_specs()
    for name in ("lse/synthetic", "psnr/talklip", "ssim/talklip", "wer/synthetic-avhubert", "wer/synthetic-conformer"):
        store.record_protocol(specs[name])
    for d in datasets:
        rng = np.random.default_rng(seed)
        dkey = DatasetKey(d, "v1", "test")
        store.record_dataset(dkey, n)
        bases = [{"lse_c": rng.uniform(0.05, 0.3), "psnr": rng.uniform(20, 25)} for _ in range(n)]
        for model, shift in (models or DEFAULT_MODELS).items():
            mkey = ModelKey(model, "none" if model in ("ground-truth", "static-frame") else f"ck{model}" * 4,
                            f"set{model}")
            run = store.start_run("test", mkey, {}, {}, dkey, "cpu")
            for i in range(n):
                sid = f"s{i // 10}/u{i % 10:03d}"
                results = sample_scores(rng, shift, bases[i])
                if edit is not None:
                    results = edit(model, sid, results)
                if results:
                    store.write_sample(mkey, dkey, sid, run, results)
    return store


def small_corpus(root: Path, clips: int = 2) -> Path:
    """A synthetic corpus with a test split of ``clips`` clips (one speaker), generated in seconds."""
    from tfgbench.data.synthetic.generation import DEFAULT_SIZES, generate

    return generate(root, splits=("test",), sizes={**DEFAULT_SIZES, "test": (1, clips)}, workers=1, progress=False)


def scored_corpus(root: Path) -> Path:
    """``root/corpus``: two synthetic clips; ``root/work``: ground truth and the static frame scored on
    them (PSNR, SSIM), with the run commands recorded."""
    from tfgbench.runner import RunSpec, run

    corpus = small_corpus(root / "corpus")
    for model in ("ground-truth", "static-frame"):
        run(RunSpec(model=model, dataset="synthetic", data_root=str(corpus), metrics=["psnr", "ssim"],
                    workdir=str(root / "work"), command=f"tfgbench run --model {model} --dataset synthetic "
                    f"--data-root {corpus} --metrics psnr,ssim"), progress=False, log=lambda _: None)
    return root


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver): "
                    "the browser tests (HTML report, rating page) are skipped")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()
