"""`tfgbench report`: the static HTML leaderboard, checked in a real headless Chromium (selenium).

Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`) and the
`selenium` package (the `test` extra); the browser tests skip, saying so, when either is missing.
"""

from __future__ import annotations

import os
import time

import pytest
from conftest import run_cli
from results_factory import browser, fake_store, scored_corpus  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    return scored_corpus(tmp_path_factory.mktemp("report"))


def _wait(predicate, timeout: float = 10.0):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def test_report_files_and_provenance(tmp_path):
    fake_store(tmp_path / "results.sqlite").close()
    out = tmp_path / "site"
    res = run_cli("report", "--out", str(out), "--workdir", str(tmp_path), "--no-media", "--resamples", "200")
    assert f"wrote {out / 'index.html'}" in res.stdout
    index = (out / "index.html").read_text()
    assert "http://" not in index and "https://" not in index and "<script src" not in index  # no network
    assert 'class="sortable"' in index and "lse/synthetic v1" in index
    assert "evaluator sha256 ev-lse" in index and "checkpoint sha256 ckwav2lip" in index  # per-cell provenance
    pages = sorted(p.name for p in (out / "models").iterdir())
    assert len(pages) == 5 and any(p.startswith("wav2lip-") for p in pages)
    wav = next((out / "models").glob("wav2lip-*.html")).read_text()
    assert "../index.html" in wav and "<td data-value=\"wav2lip\">wav2lip</td>" in wav
    assert wav.count("<tr><td data-value=") == 1  # only its own row


def test_report_in_chromium(browser, scored):  # noqa: F811 - the fixture imported above
    from selenium.webdriver.common.by import By

    from tfgbench.store import Store
    from tfgbench.tables import build_tables

    out = scored / "site"
    run_cli("report", "--out", str(out), "--workdir", str(scored / "work"), "--resamples", "200", "--clips", "1")
    with Store(scored / "work" / "results.sqlite") as store:
        (table,) = build_tables(store.rows(), store.measures(), store.dataset_sizes())
    col = next(c for c in table.columns if c.protocol == "psnr/talklip")
    static = next(m for m in table.models if m[0] == "static-frame")
    expected = f"{table.cells[(static, col)].value:.2f}"

    browser.get((out / "index.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#t0 tbody tr")
    names = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
    assert names == ["ground-truth", "static-frame"]
    headers = [h.text.split("\n")[0] for h in browser.find_elements(By.CSS_SELECTOR, "#t0 thead th")]
    j = headers.index("PSNR")
    cell = rows[1].find_elements(By.TAG_NAME, "td")[j]
    assert cell.text.startswith(expected + " [")  # the stored number, with its interval
    assert "psnr/talklip v1" in cell.get_attribute("title") and "clips 2/2" in cell.get_attribute("title")

    header = browser.find_elements(By.CSS_SELECTOR, "#t0 thead th")[j]
    header.click()  # PSNR: higher is better, so the first click puts the best first

    def first_row() -> str:
        return browser.find_element(By.CSS_SELECTOR, "#t0 tbody tr td").text

    assert first_row() == "ground-truth" and header.get_attribute("aria-sort") == "descending"
    header.click()
    assert first_row() == "static-frame" and header.get_attribute("aria-sort") == "ascending"
    browser.find_element(By.CSS_SELECTOR, "#t0 thead th").click()  # by name
    assert first_row() in ("ground-truth", "static-frame")

    rows = browser.find_elements(By.CSS_SELECTOR, "#t0 tbody tr")
    link = next(r for r in rows if r.text.startswith("static-frame")).find_element(By.TAG_NAME, "a")
    link.click()
    assert _wait(lambda: "static-frame" in browser.title)
    img = browser.find_element(By.CSS_SELECTOR, "img.strip")
    assert _wait(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)) > 100
    videos = browser.find_elements(By.TAG_NAME, "video")
    assert len(videos) == 2  # ground truth and the model, side by side
    for v in videos:
        assert _wait(lambda v=v: browser.execute_script("return arguments[0].readyState", v) >= 2), \
            browser.execute_script("return arguments[0].error && arguments[0].error.message", v)
        assert browser.execute_script("return arguments[0].duration", v) == pytest.approx(2.4, abs=0.5)
        browser.execute_script("arguments[0].play()", v)
        assert _wait(lambda v=v: browser.execute_script("return arguments[0].currentTime", v) > 0.2)
        # the open-format source comes first, so a browser with VP9 plays the WebM; the mp4 is the fallback
        assert browser.execute_script("return arguments[0].currentSrc", v).endswith(".webm")
    media = out / "media"
    stems = {ext: {p.relative_to(media).with_suffix("") for p in media.rglob(f"*{ext}")} for ext in (".webm", ".mp4")}
    assert len(stems[".mp4"]) >= 2 and stems[".webm"] == stems[".mp4"]  # every clip in both formats
    assert os.path.getsize(next((out / "media").rglob("*-strip.png"))) > 1000
