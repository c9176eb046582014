"""`tfgbench rate`: blind human ratings in a real headless Chromium, stored and shown as Table 5."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest
from conftest import run_cli
from results_factory import browser, scored_corpus  # noqa: F401 - fixture

from tfgbench.rate import order_for, prepare, serve


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    return scored_corpus(tmp_path_factory.mktemp("rate"))


@pytest.fixture(scope="module")
def server(scored):
    work = scored / "work"
    items = prepare(work, "synthetic", clips=2, log=lambda _: None)
    httpd = serve(work, items, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", items, work
    httpd.shutdown()
    httpd.server_close()


def test_clips_are_blind_and_shuffled_per_rater(server):
    url, items, work = server
    assert len(items) == 4  # 2 samples x (ground truth, static frame)
    assert all("ground" not in i.video.name and "static" not in i.video.name for i in items)
    assert [i.token for i in order_for(items, "a")] != [i.token for i in order_for(items, "b")] or \
        [i.token for i in order_for(items, "a")] != [i.token for i in order_for(items, "c")]
    page = urllib.request.urlopen(f"{url}/?rater=zed").read().decode()
    assert "Clip 1 of 4" in page and "ground-truth" not in page and "static-frame" not in page
    clip = urllib.request.Request(f"{url}/clip/{items[0].token}.mp4", headers={"Range": "bytes=0-99"})
    with urllib.request.urlopen(clip) as r:
        assert r.status == 206 and len(r.read()) == 100
    bad = urllib.request.Request(f"{url}/rate", data=b"rater=zed&token=x&intl=9", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad)
    assert e.value.code == 400


def _rate_all(browser, url: str, rater: str, score_of) -> int:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{url}/?rater={rater}")
    n = 0
    while not browser.find_elements(By.ID, "done"):
        video = browser.find_element(By.ID, "clip")
        end = time.time() + 10
        while browser.execute_script("return arguments[0].readyState", video) < 2 and time.time() < end:
            time.sleep(0.1)
        assert browser.execute_script("return arguments[0].readyState", video) >= 2  # the clip loads
        token = browser.find_element(By.NAME, "token").get_attribute("value")
        for scale in ("intl", "sync", "auth"):
            browser.find_element(By.CSS_SELECTOR, f"input[name={scale}][value='{score_of(token)}']").click()
        browser.find_element(By.ID, "submit").click()
        WebDriverWait(browser, 10).until(_gone(video))  # the next page has loaded
        n += 1
        assert n <= 10
    return n


def _gone(element):
    """``staleness_of`` that also accepts Chromium's 'Node ... does not belong to the document' error,
    which newer drivers raise instead of StaleElementReferenceException while the page is replaced."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.expected_conditions import staleness_of

    def check(_driver) -> bool:
        try:
            return staleness_of(element)(_driver)
        except WebDriverException:
            return True
    return check


def test_ratings_in_the_browser_reach_table5(browser, server, scored):  # noqa: F811
    url, items, work = server
    truth = {i.token: i.model[0] for i in items}
    # both raters give ground truth 5 and the static frame 2 (alice) or 1 (bob)
    assert _rate_all(browser, url, "alice", lambda t: 5 if truth[t] == "ground-truth" else 2) == 4
    assert _rate_all(browser, url, "bob", lambda t: 5 if truth[t] == "ground-truth" else 1) == 4
    assert _rate_all(browser, url, "alice", lambda t: 3) == 0  # alice is done: she resumes at the end
    md = run_cli("table", "--paper", "table5", "--dataset", "synthetic", "--models", "ground-truth,static-frame",
                 "--workdir", str(work)).stdout
    line = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:-1]] for row in md.splitlines()
            if row.startswith("| ")}
    assert line["Ground Truth"] == ["5.00 ± 0.00"] * 3
    assert line["static frame (control)"] == ["1.50 ± 0.50"] * 3
    assert "Inter-rater agreement (Krippendorff's alpha, interval): AUTH 0.9" in md  # raters nearly agree
