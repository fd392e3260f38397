"""Score a CSV in a real headless Chromium: upload a file, see the results, download them."""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pytest

from anodet.datasets.kdd_schema import FEATURES
from tests.conftest import kdd_frame
from tests.e2e.conftest import screenshot, tall_screenshot, wait_idle

pytestmark = pytest.mark.e2e

METRIC = "[data-testid='stMetricValue']"


def make_csv(splits, n: int = 120) -> bytes:
    test = kdd_frame(splits.test)
    rows = test.iloc[np.r_[0:n // 2, len(test) - n // 2:len(test)]]
    frame = rows[list(FEATURES)].copy()
    frame.insert(0, "id", [f"=HYPERLINK(\"x{i}\")" if i == 0 else f"id{i}" for i in range(n)])
    frame["label"] = rows["attack"].to_numpy()
    text = frame.to_csv(index=False).splitlines()
    cells = text[7].split(",")
    cells[3] = "not-a-number"  # row 7 cannot be scored
    text[7] = ",".join(cells)
    return ("\n".join(text) + "\n").encode()


def open_score_page(page, app_url: str) -> None:
    """Open the app and follow the sidebar link, as a user does."""
    page.goto(app_url)
    wait_idle(page, timeout=180_000)
    page.get_by_role("link", name="Score a CSV").click()
    page.get_by_role("heading", name="Score a CSV").wait_for(timeout=60_000)
    wait_idle(page)


def test_upload_score_and_download(app_url, page, splits, tmp_path):
    open_score_page(page, app_url)
    screenshot(page, "score_csv_empty")

    src = tmp_path / "mine.csv"
    src.write_bytes(make_csv(splits))
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(src))
    page.get_by_text("mine.csv").first.wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Score the file").click()
    page.get_by_text("Results for mine.csv").wait_for(timeout=180_000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=60_000)
    wait_idle(page)

    page.locator(METRIC).nth(2).wait_for()
    values = page.locator(METRIC).all_text_contents()
    if values[:3] != ["120", "119", "1"]:
        tall_screenshot(page, "score_csv_unexpected")
    assert values[:3] == ["120", "119", "1"], values
    warning = page.locator("[data-testid='stAlertContentWarning']").first.text_content()
    assert "row 7:" in warning and "not-a-number" in warning
    tall_screenshot(page, "score_csv_results")

    wait_idle(page)
    with page.expect_download(timeout=90_000) as info:
        page.get_by_role("button", name="Download the results").click()
    path = tmp_path / "out.csv.gz"
    info.value.save_as(path)
    assert info.value.suggested_filename == "mine.scored.csv.gz"
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))
    assert [int(r["row"]) for r in rows] == list(range(1, 121))  # every row once, in order
    assert rows[6]["status"].startswith("skipped:") and rows[6]["score_pca"] == ""
    assert rows[0]["id"].startswith("'=")  # a formula cell is neutralised in the download
    assert all(f"score_{n}" in rows[0] and f"flag_{n}" in rows[0] for n in ("pca", "ensemble", "iforest"))
    assert float(rows[1]["score_pca"]) >= 0


def test_bad_file_gets_a_sentence(app_url, page, tmp_path):
    open_score_page(page, app_url)
    src = tmp_path / "book.csv"
    src.write_bytes(b"PK\x03\x04" + bytes(500))
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(src))
    page.get_by_text("book.csv").first.wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Score the file").click()
    error = page.locator("[data-testid='stAlertContentError']").first
    error.wait_for(timeout=60_000)
    assert "Excel" in error.text_content() and "Traceback" not in page.content()
    screenshot(page, "score_csv_bad_file")


HOSTILE_NAME = "[fname](evil.example) **fbold**.csv"  # a file name cannot hold a slash


def test_hostile_file_names_and_cells_render_as_text(app_url, page, splits, tmp_path):
    """User-controlled text (a file name, a malformed row) never becomes a link or formatting."""
    open_score_page(page, app_url)
    lines = make_csv(splits, 20).decode().splitlines()
    lines[3] = "[click me](https://evil.example/phish) **URGENT**,1,2"
    src = tmp_path / HOSTILE_NAME
    src.write_text("\n".join(lines) + "\n")
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(src))
    page.get_by_text("fname").first.wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Score the file").click()
    page.get_by_text("could not be scored").first.wait_for(timeout=120_000)
    wait_idle(page)
    screenshot(page, "score_csv_hostile_text")
    links = page.locator("a[href*='evil.example']")
    assert links.count() == 0, [links.nth(i).evaluate("a => a.outerHTML + ' IN ' + a.parentElement.textContent")
                                for i in range(links.count())]
    assert page.locator("strong", has_text="fbold").count() == 0
    assert page.locator("strong", has_text="URGENT").count() == 0
    assert page.get_by_text("[click me](https://evil.example/phish)").count() >= 1
