"""Your data in a real headless Chromium: upload WDBC, confirm its columns, train in the background, leaderboard."""

from __future__ import annotations

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.conftest import wdbc_frame
from tests.e2e.conftest import CHROMIUM, DOCS, screenshot, start_app, stop_app, tall_screenshot, wait_idle

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_app(tmp_path_factory):
    """A server of its own whose data folder is temporary (the page writes datasets there)."""
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (test.sh installs it)")
    folder = tmp_path_factory.mktemp("yd") / "data"
    proc, url = start_app({"ANODET_DATA_DIR": str(folder)})
    yield url
    stop_app(proc)


def wdbc(path):
    wdbc_frame().to_csv(path, index=False)
    return path


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``, as a user does (click, type, Enter)."""
    box = page.locator("[data-testid='stSelectbox']").filter(has_text=label)
    box.locator("input").click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")
    wait_idle(page)


def training_file_input(page):
    """The file input of the "Training file" uploader, found by its label: the page has two uploaders and a
    rerun can briefly remount the first, so "the first file input" once reached the test file's instead."""
    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="Training file (CSV or Parquet)")
    uploader.wait_for(timeout=60_000)
    return uploader.locator("input[type='file']")

def test_add_and_train_wdbc(own_app, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(own_app)
        wait_idle(page, timeout=180_000)
        page.get_by_role("link", name="Your data").click()
        page.get_by_role("heading", name="Your data", exact=True).wait_for(timeout=60_000)
        wait_idle(page)
        page.get_by_text("No dataset yet").wait_for()
        tall_screenshot(page, "your_data_empty")

        src = wdbc(tmp_path / "wdbc.csv")
        training_file_input(page).set_input_files(str(src))
        page.get_by_text("Check the inferred columns").wait_for(timeout=60_000)
        wait_idle(page)
        choose(page, "Label column", "diagnosis")
        normal = page.get_by_role("textbox", name="Normal value(s)")
        expect(normal).to_be_enabled(timeout=30_000)
        normal.fill("B")
        normal.press("Enter")
        wait_idle(page)
        page.get_by_text("Labels in").wait_for()
        assert page.locator("[data-testid='stAlertContentError']").count() == 0
        tall_screenshot(page, "your_data_inspected")

        page.get_by_role("button", name="Confirm and add the dataset").click()
        page.get_by_text("Dataset wdbc added").wait_for(timeout=120_000)
        wait_idle(page)
        page.get_by_role("button", name="Train", exact=True).click()
        page.locator("[data-testid='stProgress']").first.wait_for(timeout=60_000)
        tall_screenshot(page, "your_data_training")
        page.get_by_text("Best test ROC AUC").wait_for(timeout=900_000)
        wait_idle(page)
        best = float(page.locator("[data-testid='stMetricValue']").first.inner_text())
        assert best >= 0.95
        assert page.locator("[data-testid='stException']").count() == 0
        tall_screenshot(page, "your_data_trained")

        # The trained dataset on every page: the button switches the sidebar's dataset and opens the Overview.
        page.get_by_role("button", name="Open wdbc on every page").click()
        page.get_by_role("heading", name="Overview", exact=True).wait_for(timeout=60_000)
        wait_idle(page, timeout=120_000)
        page.get_by_text("Best detector here by ROC AUC").wait_for(timeout=60_000)
        assert "test split of dataset" in page.locator("[data-testid='stMain']").inner_text()
        expect(page.locator("[data-testid='stSidebar']")).to_contain_text("Anomaly detectors on wdbc")
        tall_screenshot(page, "dataset_overview", also=DOCS / "dataset.png")
        page.get_by_role("link", name="Threshold explorer").click()
        page.locator(".adt-slider").first.wait_for(timeout=60_000)
        wait_idle(page)
        assert "Anomaly" in page.locator(".adt").first.inner_text()  # the control speaks of anomalies here
        page.get_by_role("link", name="Flagged records").click()
        page.get_by_role("heading", name="Flagged records").wait_for(timeout=60_000)
        wait_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        # back to KDD from the sidebar switch: its own detectors again
        choose(page, "Dataset", "KDD")
        page.get_by_text("Autoencoder · kdd18").first.wait_for(timeout=120_000)
    finally:
        context.close()


def test_file_without_numbers_is_one_sentence(own_app, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{own_app}/your_data")
        page.get_by_role("heading", name="Add a dataset").wait_for(timeout=120_000)
        wait_idle(page)
        src = tmp_path / "words.csv"
        pd.DataFrame({"proto": ["tcp", "udp", "icmp"] * 20, "flag": ["SF", "REJ"] * 30}).to_csv(src, index=False)
        training_file_input(page).set_input_files(str(src))
        page.get_by_text("words.csv").first.wait_for(timeout=60_000)
        error = page.locator("[data-testid='stAlertContentError']")
        try:
            error.first.wait_for(timeout=60_000)
        except Exception:
            print("DEBUG", page.locator("[data-testid=stMain]").inner_text()[-2500:])
            raise
        wait_idle(page)
        assert error.count() == 1 and "no usable numeric column" in error.inner_text()
        assert page.locator("[data-testid='stException']").count() == 0
        tall_screenshot(page, "your_data_bad_file")
        # a phone-sized window: one column, nothing wider than the window
        page.set_viewport_size({"width": 390, "height": 900})
        page.wait_for_timeout(500)
        too_wide = page.evaluate("""() => { const main = document.querySelector("[data-testid='stMain']");
            return main.scrollWidth - main.clientWidth; }""")
        assert too_wide <= 1, "the page is wider than the window"
        height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
        page.set_viewport_size({"width": 390, "height": min(int(height) + 20, 8000)})
        page.wait_for_timeout(300)
        screenshot(page, "your_data_narrow")
    finally:
        context.close()
