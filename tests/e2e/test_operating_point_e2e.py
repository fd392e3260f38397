"""The operating point and the thresholds file in a real Chromium (issue 27): chosen once in the sidebar, it
ranks every detector; a threshold moved by hand is what Export writes, and `score --thresholds` uses it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import DOCS, ROOT, tall_screenshot, wait_controls, wait_idle
from tests.e2e.test_dashboard_e2e import hold_and_drag, open_page, shown

pytestmark = pytest.mark.e2e


def test_an_operating_point_chosen_in_the_sidebar_ranks_every_detector(page, app_url):
    open_page(page, app_url, charts=2)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Choose thresholds by").click()
    page.get_by_role("option", name="A target false-positive rate").click()
    wait_idle(page)
    field = sidebar.get_by_role("spinbutton", name="Target FPR (%)")
    field.fill("0.01")
    field.press("Tab")
    sidebar.get_by_role("button", name="Apply to every detector").click()
    page.get_by_text("catches the most").wait_for(timeout=60_000)
    wait_idle(page)
    headline = page.locator("[data-testid='stMarkdown']", has_text="catches the most").first.inner_text()
    assert "PCA · kdd18" in headline and "163 of 2,000 attacks" in headline and "0 of 8,000" in headline
    assert "fpr=0.0001" in page.url.replace("%2E", ".") or "fpr=0.0001" in page.url  # the link keeps the point
    assert page.get_by_text("is finer than the 8,000 normal test records").count() == 1
    assert page.locator("[data-testid='stException']").count() == 0
    tall_screenshot(page, "overview_operating_point", also=DOCS / "overview.png")
    # One click writes the decision report on the detector that catches most there
    report = page.locator("[data-testid='stDownloadButton']", has_text="Decision report for")
    report.wait_for(timeout=120_000)
    name = report.inner_text().split("Decision report for ", 1)[1].removesuffix(" (HTML)").strip()
    with page.expect_download(timeout=120_000) as got:
        report.get_by_role("button").click()
    html = got.value.path().read_text()
    assert name in html and "<script" in html and "operating point" in html.lower()


def test_export_writes_the_thresholds_in_force_and_score_uses_them(page, app_url, tmp_path, splits):
    page.goto(f"{app_url}/threshold_explorer")
    wait_controls(page)
    hold_and_drag(page, 0.3, 0.45, steps=6)
    page.mouse.up()
    released = float(shown(page)["threshold"])
    page.get_by_text(f"In force on every page: threshold {released:.6g} (moved by hand").wait_for(timeout=30_000)
    wait_idle(page)
    page.get_by_text("Share these thresholds").click()
    with page.expect_download(timeout=30_000) as got:
        page.get_by_role("button", name="Export thresholds").click()
    path = tmp_path / "thresholds.json"
    got.value.save_as(path)
    document = json.loads(path.read_text())
    assert document["thresholds"]["autoencoder"] == pytest.approx(released, rel=1e-12)
    assert document["moved_by_hand"] == ["autoencoder"] and "best-F1" in document["operating_point"]
    assert len(document["thresholds"]) == 26  # every detector's threshold in force, not only the moved one

    rows = splits.test.rows.iloc[:500]
    rows.to_csv(tmp_path / "records.csv", index=False)
    done = subprocess.run([sys.executable, "-m", "anodet", "score", str(tmp_path / "records.csv"), "-o",
                           str(tmp_path / "out.csv"), "--detectors", "autoencoder", "--thresholds", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_array_equal(out["flag_autoencoder"], out["score_autoencoder"] >= released)
