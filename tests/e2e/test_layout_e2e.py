"""Layout in a real headless Chromium at 1280 px and 820 px: every page reads, nothing is cut.

Screenshots go to ``artifacts/screenshots/layout-<page>-<width>.png`` for a person to look at;
the assertions catch what a screenshot shows at a glance: metric tiles whose numbers are cut
("0.…"), side-by-side panels that should have become one column, text wider than the page.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import tall_screenshot, wait_controls, wait_idle

pytestmark = pytest.mark.e2e

WIDTHS = (1280, 820)
PAGES = {"overview": ("", 3), "flagged_records": ("flagged_records", 1), "live_monitor": ("live_monitor", 0)}

CUT_TEXT = """() => [...document.querySelectorAll(\
"[data-testid='stMetricValue'] > div, [data-testid='stMetricLabel'] p")]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""
SIDE_BY_SIDE = """() => [...document.querySelectorAll("[data-testid='stMain'] [data-testid='stHorizontalBlock']")]
    .filter(row => !row.querySelector("[data-testid='stMetric']") && !row.querySelector("[data-testid='stButton']"))
    .map(row => [...row.children].filter(c => c.getBoundingClientRect().width > 0)
                 .map(c => Math.round(c.getBoundingClientRect().top)))
    .filter(tops => tops.length > 1 && new Set(tops).size === 1 && tops.length > 1).length"""
TOO_WIDE = """() => { const main = document.querySelector("[data-testid='stMain']");
    return main.scrollWidth - main.clientWidth; }"""


def _open(page, url: str, slug: str, charts: int, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{url}/{slug}")
    page.wait_for_selector("h1", timeout=120_000)
    if charts:
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                               timeout=120_000)
    wait_idle(page)


def _open_a_record(page) -> None:
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection box
    page.get_by_role("heading", name="Every detector on this record").or_(
        page.get_by_text("Every detector on this record")).first.wait_for(timeout=60_000)
    wait_idle(page)


def _start_replay(page) -> None:
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=60_000)
    page.get_by_role("button", name="Pause").click()
    wait_idle(page)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_reads_at_this_width(page, app_url, name, width):
    slug, charts = PAGES[name]
    _open(page, app_url, slug, charts, width)
    if name == "flagged_records":
        _open_a_record(page)
    elif name == "live_monitor":
        _start_replay(page)
    assert page.locator("[data-testid='stException']").count() == 0
    tall_screenshot(page, f"layout-{name}-{width}", width=width)
    assert page.evaluate(CUT_TEXT) == [], "metric tiles cut their text"
    assert page.evaluate(TOO_WIDE) <= 1, "the page is wider than the window"
    side_by_side = page.evaluate(SIDE_BY_SIDE)
    if width < 900:
        assert side_by_side == 0, "panels stay side by side below 900 px"
    else:
        assert side_by_side >= 1, "at 1280 px the panels sit side by side"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_explorer_compares_two_detectors_at_this_width(page, app_url, width):
    """Two panels side by side at 1280 px (their preset buttons readable), one above the other at 820 px."""
    _open(page, app_url, "threshold_explorer", 0, width)
    wait_controls(page, 1)
    page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").nth(1).click()
    page.get_by_role("option").nth(1).click()
    wait_controls(page, 2)
    tall_screenshot(page, f"layout-threshold_explorer-{width}", width=width)
    headings = page.locator("[data-testid='stMain'] h3")
    tops = [round(headings.nth(i).bounding_box()["y"]) for i in range(2)]
    assert (tops[0] == tops[1]) == (width >= 900), tops
    assert page.evaluate(CUT_TEXT) == [], "metric tiles cut their text"
    assert page.evaluate(TOO_WIDE) <= 1, "the page is wider than the window"
    labels = page.locator("[data-testid='stMain'] [data-testid='stButton'] button p")
    cut = [labels.nth(i).inner_text() for i in range(labels.count())
           if labels.nth(i).evaluate("e => e.scrollWidth > e.clientWidth + 1")]
    assert cut == [], f"button labels cut: {cut}"
    tiles = page.locator(".adt-tile-value, .adt-tile-label").evaluate_all(
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)")
    assert tiles == [], f"threshold control tiles cut: {tiles}"
