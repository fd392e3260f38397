"""The dashboard in a real headless Chromium: overview, threshold control, record detail, label view."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DOCS, screenshot, tall_screenshot, wait_controls, wait_idle

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
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


SHOWN = """(c) => ({threshold: c.dataset.threshold, line: c.querySelector('.adt-threshold-line').getAttribute('x1'),
    roc: c.querySelector('.adt-roc .adt-marker').getAttribute('transform'),
    tiles: [...c.querySelectorAll('.adt-tile-value')].map(e => e.textContent),
    cells: [...c.querySelectorAll('[data-cell]')].map(e => e.textContent)})"""


def shown(page, index: int = 0) -> dict:
    """What a threshold control shows now: its threshold, histogram line, ROC marker, tiles and matrix."""
    return page.locator(".adt").nth(index).evaluate(SHOWN)


def hold_and_drag(page, start: float, end: float, steps: int = 10, index: int = 0) -> list[dict]:
    """Press the control's handle at ``start`` and move to ``end`` (track fractions) without releasing;
    what the control showed after each move."""
    box = page.locator(".adt-slider").nth(index).bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    seen = []
    for i in range(1, steps + 1):
        page.mouse.move(box["x"] + box["width"] * (start + (end - start) * i / steps), y)
        seen.append(shown(page, index))
    return seen


def test_overview_draws_a_light_first_screen_and_each_section_on_demand(page, app_url):
    open_page(page, app_url, charts=1)  # the ROC overlay; the leaderboard and what the best detector misses
    assert page.get_by_role("heading", name="Leaderboard at the operating point").is_visible()
    assert page.locator("[data-testid='stDataFrame']").count() >= 3  # leaderboard, caught/missed, names missed
    assert page.locator(".js-plotly-plot").count() == 1
    for section, charts in (("Detection rate per category", 2), ("Agreement", 2), ("Compare two detectors", 2)):
        page.get_by_role("tab", name=section).click()
        expect(page.locator(".js-plotly-plot")).to_have_count(charts, timeout=60_000)
        wait_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0, section
    assert "overview_section=Compare" in page.url  # the open section is in the link
    tall_screenshot(page, "overview")


def test_dragging_the_handle_moves_every_view_before_the_release(page, app_url):
    page.goto(f"{app_url}/threshold_explorer")
    wait_controls(page)
    assert page.get_by_role("slider", name=re.compile("Threshold for Autoencoder")).count() == 1  # accessible name
    before = shown(page)
    seen = hold_and_drag(page, 0.2, 0.6, steps=12)
    # Still held: the line, the ROC marker, the tiles and the matrix have all moved, once per move.
    assert len({s["threshold"] for s in seen}) == 12
    for key in ("line", "roc", "tiles", "cells"):
        assert seen[-1][key] != before[key], key
    assert page.get_by_text(f"In force on every page: threshold {float(before['threshold']):.6g} (").count() == 1
    page.mouse.up()
    released = float(seen[-1]["threshold"])
    # On release the server takes the value: the line under the control, and every other page, agree.
    page.get_by_text(f"In force on every page: threshold {released:.6g} (").wait_for(timeout=20_000)
    wait_idle(page)
    assert "threshold=autoencoder" in page.url  # the link keeps it
    tall_screenshot(page, "threshold_explorer")

    # The keyboard moves it too (the control keeps its focus), and settles on the server.
    page.locator(".adt-slider").first.focus()
    page.keyboard.press("End")
    assert shown(page)["tiles"][-1] == "0"  # above the highest score: nothing flagged
    page.keyboard.press("PageDown")
    after_keys = float(shown(page)["threshold"])
    page.get_by_text(f"In force on every page: threshold {after_keys:.6g} (").wait_for(timeout=20_000)

    # A preset is one click in the control: it moves at once, is marked, and the server follows.
    preset_button = page.get_by_role("button", name="Mean + 3σ").first
    preset_button.click()
    assert float(shown(page)["threshold"]) != after_keys and preset_button.get_attribute("aria-pressed") == "true"
    page.get_by_text(f"In force on every page: threshold {float(shown(page)['threshold']):.6g} (").wait_for(
        timeout=20_000)
    wait_idle(page)
    tall_screenshot(page, "threshold_explorer_preset", also=DOCS / "explorer.png")
    preset = float(shown(page)["threshold"])

    # The Overview's leaderboard uses the threshold set here.
    page.locator("[data-testid='stSidebarNav']").get_by_text("Overview", exact=True).click()
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=60_000)
    wait_idle(page)
    assert page.get_by_text(f"Autoencoder · kdd18 (threshold {preset:.6g})").count() == 1

    # The label-view switch in the sidebar changes the numbers too.
    page.locator("[data-testid='stSidebarNav']").get_by_text("Threshold explorer", exact=True).click()
    wait_controls(page)
    before = shown(page)
    page.locator("[data-testid='stSidebar']").get_by_text("true", exact=True).click()
    page.locator(".adt").first.evaluate("(c, t) => new Promise(r => { const check = () => JSON.stringify("
                                        "[...c.querySelectorAll('[data-cell]')].map(e => e.textContent)) !== t "
                                        "? r() : requestAnimationFrame(check); check(); })",
                                        json.dumps(before["cells"]))


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


def _click_tallest_bar(page, chart) -> None:
    """Click inside the tallest bar of a plotly bar chart.

    On a log count axis a bar's path reaches far below the plot (log 0) and is clipped there,
    so the visible bar runs from the path's top to the plot's bottom.
    """
    plot = chart.locator(".nsewdrag").first.bounding_box()
    bottom = plot["y"] + plot["height"]
    bars = chart.locator(".barlayer .point path")
    boxes = [b for b in (bars.nth(i).bounding_box() for i in range(bars.count()))
             if b and b["width"] > 1 and plot["y"] - 1 <= b["y"] < bottom - 10]
    box = min(boxes, key=lambda b: b["y"])
    page.mouse.click(box["x"] + box["width"] / 2, (box["y"] + bottom) / 2)


def test_clicking_a_histogram_bar_lists_its_records_and_opens_one(page, app_url):
    """Issue 15, bug 1: this click crashed the page with "unhashable type: 'slice'"."""
    open_page(page, app_url, "flagged_records", charts=1)
    caption = page.get_by_text(re.compile(r"^[\d,]+ records, highest score first"))
    before = caption.text_content()
    chart = page.locator(".js-plotly-plot").first
    chart.scroll_into_view_if_needed()
    _click_tallest_bar(page, chart)
    page.get_by_role("heading", name=re.compile(r"^Record \d+$")).wait_for(timeout=30_000)
    wait_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert not page.get_by_text("Something went wrong").count()
    after = caption.text_content()
    assert int(after.split()[0].replace(",", "")) < int(before.split()[0].replace(",", "")), (before, after)

    # The download names the threshold and label view its outcomes were computed with.
    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile("Download these")).click()
    lines = Path(info.value.path()).read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    assert header[:4] == ["record", "detector", "threshold", "label_view"]
    assert first[1] == "autoencoder" and first[3] == "reference" and float(first[2]) > 0
    assert len(lines) - 1 == int(after.split()[0].replace(",", ""))
    tall_screenshot(page, "flagged_records_bar")


def test_clicking_an_agreement_cell_compares_that_pair(page, app_url):
    open_page(page, app_url, charts=1)
    page.get_by_role("tab", name="Agreement").click()
    expect(page.locator(".js-plotly-plot")).to_have_count(2, timeout=60_000)
    wait_idle(page)
    heat = page.locator(".js-plotly-plot").nth(1)
    heat.scroll_into_view_if_needed()
    names = heat.locator(".xaxislayer-above .xtick text").all_text_contents()  # left to right; rows: the same order
    n = len(names)
    box = heat.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 1.5 / n, box["y"] + box["height"] * 4.5 / n)  # row 4, column 1
    expect(page.get_by_role("tab", name="Compare two detectors")).to_have_attribute("aria-selected", "true",
                                                                                    timeout=30_000)
    page.get_by_text(re.compile(r" flags, .* passes")).first.wait_for(timeout=30_000)
    wait_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    pair = [box.evaluate("el => [...el.querySelectorAll('input')].map(i => i.value || i.getAttribute('aria-label'))"
                         ".join(' ')")
            for box in page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").filter(
                has_text=re.compile("Detector [AB]")).all()]
    assert len(pair) == 2 and names[4] in pair[0] and names[1] in pair[1], (pair, names)


def test_the_live_replay_survives_a_visit_to_another_page(page, app_url):
    """Issue 15, bug 3 in the browser: detector, speed and place are kept (the pause itself is
    checked with an injected clock in tests/test_app_live.py)."""
    page.goto(f"{app_url}/live_monitor")
    page.get_by_role("heading", name="Live monitor").wait_for(timeout=120_000)
    wait_idle(page)
    page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="BiGAN").click()
    wait_idle(page)
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=60_000)
    page.get_by_role("button", name="Pause").click()
    wait_idle(page)
    records = texts(page, METRIC)[0]
    page.locator("[data-testid='stSidebarNav']").get_by_text("Overview").click()
    page.get_by_role("heading", name="Leaderboard").wait_for(timeout=60_000)
    wait_idle(page)
    page.locator("[data-testid='stSidebarNav']").get_by_text("Live monitor").click()
    page.get_by_role("button", name="Resume").wait_for(timeout=60_000)
    wait_idle(page)
    shown = page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.evaluate(
        "el => el.innerText + ' ' + [...el.querySelectorAll('input')].map(i => i.value || i.getAttribute('aria-label')"
        " || '').join(' ')")
    assert "BiGAN" in shown, shown
    assert texts(page, METRIC)[0] == records
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_live_alert_opens_its_record_in_flagged_records(page, app_url):
    """Switching page from inside the replay's fragment left a blank page; AppTest did not show it."""
    page.goto(f"{app_url}/live_monitor")
    page.get_by_role("heading", name="Live monitor").wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=60_000)
    grid = page.locator("[data-testid='stDataFrame']").last
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the newest alert, while the replay runs
    button = page.get_by_role("button", name=re.compile(r"Open record \d+ in Flagged records"))
    button.wait_for(timeout=30_000)
    record = re.search(r"Open record (\d+)", button.text_content()).group(1)
    wait_changed(page, METRIC, texts(page, METRIC))  # a tick later the choice is still there
    button.click()
    try:
        page.get_by_role("heading", name=f"Record {record}").wait_for(timeout=60_000)
    except Exception:
        screenshot(page, "debug-live-alert")
        raise
    wait_idle(page)
    assert urlparse(page.url).path.endswith("/flagged_records")
    assert page.get_by_text("Every detector on this record").is_visible()


def test_a_leaderboard_row_opens_that_detector_in_the_explorer(page, app_url):
    open_page(page, app_url, charts=3)
    grid = page.locator("[data-testid='stDataFrame']").first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 * 3 + 17)  # the third row's selection box
    page.wait_for_url(re.compile(r"/threshold_explorer(\?|$)"), timeout=60_000)
    wait_controls(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.get_by_role("heading", name="Threshold explorer").is_visible()
