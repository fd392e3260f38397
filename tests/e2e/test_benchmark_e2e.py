"""The Benchmark page in a real headless Chromium: a finished run's ranks and charts, the link to a declared dataset's
Overview, and a small suite run from the page in the background."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import CHROMIUM, start_app, stop_app, tall_screenshot, wait_idle

pytestmark = pytest.mark.e2e
ADBENCH = Path(os.environ.get("ANODET_ADBENCH", Path(__file__).resolve().parents[2] / ".." / "shared" / "adbench"))
SMALL = ["14_glass", "42_WBC"]


@pytest.fixture(scope="module")
def bench_app(tmp_path_factory):
    """A server of its own on a temporary data folder holding a finished run and a declared, trained dataset."""
    import importlib.util

    from anodet.benchmark import run_benchmark
    from anodet.datasets import userdata
    from anodet.training.datasets import train
    from tests.conftest import wdbc_frame

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (test.sh installs it)")
    if not (ADBENCH / "14_glass.npz").exists():
        pytest.skip("ADBench datasets not found")
    folder = tmp_path_factory.mktemp("bench") / "data"
    env = {"ANODET_DATA_DIR": str(folder), "ANODET_ADBENCH": str(ADBENCH)}
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        wdbc_frame().to_csv(folder.parent / "wdbc.csv", index=False)
        userdata.add("wdbc", folder.parent / "wdbc.csv", label="diagnosis", normal="B")
        train("wdbc", ["pca", "zscore", "ecod"], log=lambda _: None)
        peers = ["pyod:IForest", "pyod:ECOD", "pyod:KNN"] if importlib.util.find_spec("pyod") else []
        run_benchmark([str(ADBENCH / f"{n}.npz") for n in [*SMALL, "39_vertebral", "43_WDBC"]] + ["wdbc"],
                      folder / "benchmarks" / "five-datasets", ["unsupervised", "normal-only"], 2,
                      ["pca", "iforest", "zscore", "ecod", "knn", "ensemble"], peers)
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    proc, url = start_app(env)
    yield url
    stop_app(proc)


def test_a_finished_run_and_the_link_to_a_datasets_overview(bench_app, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{bench_app}/benchmark")
        page.get_by_role("heading", name="Mean rank").wait_for(timeout=120_000)
        wait_idle(page, timeout=120_000)
        main = page.locator("[data-testid='stMain']")
        expect(main.locator(".js-plotly-plot")).to_have_count(3, timeout=60_000)  # CD diagram, heat map, times
        text = main.inner_text()
        assert "Per-dataset choice (family)" in text and "Oracle" in text
        assert "/tmp" not in text and str(ADBENCH) not in text
        assert page.locator("[data-testid='stException']").count() == 0
        tall_screenshot(page, "benchmark_results")
        main.locator("[data-testid='stButtonGroup']").first.get_by_text("normal-only").click()
        wait_idle(page)
        page.get_by_text("best validation ROC AUC").first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Open wdbc on the Overview").click()
        page.get_by_role("heading", name="Overview", exact=True).wait_for(timeout=60_000)
        wait_idle(page, timeout=120_000)
        expect(page.locator("[data-testid='stSidebar']")).to_contain_text("Anomaly detectors on wdbc")
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        context.close()


def open_runner(page, url: str, run: str) -> None:
    """Open the Benchmark page's runner and name the run."""
    page.goto(f"{url}/benchmark")
    page.get_by_role("heading", name="Run a suite").wait_for(timeout=120_000)
    wait_idle(page, timeout=120_000)
    name = page.get_by_role("textbox", name="Run name")
    name.fill(run)
    name.press("Enter")
    wait_idle(page)


def test_a_small_suite_run_from_the_page(bench_app, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    try:
        open_runner(page, bench_app, "from-the-browser")
        page.get_by_text("ADBench datasets", exact=False).first.wait_for()
        page.locator("[data-testid='stCheckbox']").filter(has_text="ADBench datasets").click()
        wait_idle(page)
        box = page.locator("[data-testid='stMultiSelect']").filter(has_text="ADBench datasets")
        for dataset in SMALL:
            box.locator("input").click()
            page.keyboard.type(dataset)
            page.keyboard.press("Enter")
            wait_idle(page)
        page.keyboard.press("Escape")
        seeds = page.get_by_role("spinbutton", name="Seeds")
        seeds.fill("1")
        seeds.press("Enter")
        wait_idle(page)
        page.get_by_text("2 task(s)").wait_for(timeout=30_000)
        page.get_by_role("button", name="Run the benchmark").click()
        page.get_by_text("Run from-the-browser finished").wait_for(timeout=600_000)
        wait_idle(page, timeout=120_000)
        expect(page.locator("[data-testid='stMain'] .js-plotly-plot")).to_have_count(3, timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
        tall_screenshot(page, "benchmark_run_from_page")
    finally:
        context.close()


def test_progress_bar_and_cancel(bench_app, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    try:
        open_runner(page, bench_app, "whole-suite")
        seeds = page.get_by_role("spinbutton", name="Seeds")
        seeds.fill("1")
        seeds.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Run the benchmark").click()
        bar = page.locator("[data-testid='stProgress']")
        page.get_by_text("tasks (dataset × seed × protocol) done").wait_for(timeout=300_000)
        expect(page.get_by_role("button", name="Run the benchmark")).to_be_disabled()
        tall_screenshot(page, "benchmark_running")
        assert bar.count() == 1
        page.get_by_role("button", name="Cancel").click()
        page.get_by_text("Run whole-suite was cancelled after").wait_for(timeout=600_000)
        wait_idle(page)
        expect(page.get_by_role("button", name="Resume")).to_be_visible()
        assert page.locator("[data-testid='stException']").count() == 0
        tall_screenshot(page, "benchmark_cancelled")
    finally:
        context.close()
