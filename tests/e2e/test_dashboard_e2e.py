"""The dashboard in a real headless Chromium: overview, threshold slider, record detail, label view."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import screenshot, wait_idle

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
METRIC = "[data-testid='stMetricValue']"
THRESHOLD_LABEL = ".js-plotly-plot .annotation-text"


def open_page(page, url: str, slug: str = "", charts: int = 1) -> None:
    """Go to a page and wait until it has run and drawn at least ``charts`` plotly charts."""
    page.goto(f"{url}/{slug}")
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                           timeout=120_000)
    wait_idle(page)


def texts(page, selector: str) -> list[str]:
    """Text of every match (``textContent``: plotly draws its labels in SVG, which has no innerText)."""
    return page.locator(selector).all_text_contents()


def wait_changed(page, selector: str, before: list[str], timeout: float = 20_000) -> list[str]:
    """Wait until the texts under ``selector`` differ from ``before`` (never sleep)."""
    page.wait_for_function(
        "([sel, old]) => { const now = [...document.querySelectorAll(sel)].map(e => e.textContent);"
        " return now.length > 0 && JSON.stringify(now) !== JSON.stringify(old); }",
        arg=[selector, before], timeout=timeout)
    wait_idle(page)
    return texts(page, selector)


def drag_slider(page, fraction: float) -> None:
    """Drag the first slider's thumb to ``fraction`` of its track, then release it."""
    thumb = page.locator("[data-testid='stSlider'] input[type='range']").first.locator("xpath=../..")
    track = page.locator("[data-testid='stSlider'] [role='group'] > div").first
    tb, box = thumb.bounding_box(), track.bounding_box()
    page.mouse.move(tb["x"] + tb["width"] / 2, tb["y"] + tb["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, tb["y"] + tb["height"] / 2, steps=8)
    page.mouse.up()


def tall_screenshot(page, name: str, also: Path | None = None) -> Path:
    """Full-length screenshot: Streamlit scrolls inside its main block, so grow the viewport."""
    page.mouse.move(0, 0)  # no tooltip in the picture
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": int(height) + 20})
    page.wait_for_timeout(300)  # let plotly re-layout to the new size before the picture
    path = screenshot(page, name)
    # The README's pictures are refreshed on request only, so a test run leaves the tree clean.
    if also is not None and os.environ.get("ANODET_UPDATE_DOCS") == "1":
        also.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(also), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1000})
    return path


def test_overview_draws_every_chart(page, app_url):
    open_page(page, app_url, charts=3)
    assert page.get_by_text("Leaderboard", exact=True).is_visible()
    assert page.locator("[data-testid='stDataFrame']").count() >= 1
    assert page.locator("[data-testid='stException']").count() == 0
    tall_screenshot(page, "overview", also=DOCS / "overview.png")


def test_slider_moves_the_histogram_line_and_the_metrics(page, app_url):
    open_page(page, app_url, "threshold_explorer", charts=4)
    metrics, line = texts(page, METRIC), texts(page, THRESHOLD_LABEL)
    drag_slider(page, 0.35)
    new_metrics = wait_changed(page, METRIC, metrics)
    new_line = wait_changed(page, THRESHOLD_LABEL, line)
    assert new_line != line and new_metrics != metrics
    # The flagged share reported follows the slider (about 65% flagged at the 35th percentile).
    assert page.get_by_text("test records (6").count() or page.get_by_text("test records (7").count()
    tall_screenshot(page, "threshold_explorer")

    # A preset is one click and moves everything again.
    page.get_by_role("button", name="Mean + 3σ").first.click()
    wait_changed(page, METRIC, new_metrics)
    tall_screenshot(page, "threshold_explorer_preset", also=DOCS / "explorer.png")

    # The label-view switch in the sidebar changes the numbers too.
    before = texts(page, METRIC)
    page.locator("[data-testid='stSidebar']").get_by_text("true", exact=True).click()
    assert wait_changed(page, METRIC, before) != before


def test_selecting_a_record_opens_its_detail(page, app_url):
    open_page(page, app_url, "flagged_records", charts=1)
    grid = page.locator("[data-testid='stDataFrame']").first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection box
    heading = page.get_by_role("heading", name=re.compile(r"^Record \d+$"))
    heading.wait_for(timeout=30_000)
    wait_idle(page)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3")
    assert page.get_by_text("Every detector on this record").is_visible()
    assert page.locator("[data-testid='stException']").count() == 0
    tall_screenshot(page, "flagged_records")
