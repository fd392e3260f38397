"""How long the Overview takes to redraw after the user chooses another operating point (issue 27: ≤ 1 s warm).

A fresh ``streamlit run app.py`` and headless Chromium; the Overview is opened once (the warm-up), then the
sidebar's operating point is changed by typing a target FPR and pressing "Apply to every detector", and the
time is measured from the click to the page drawn again with the new headline and the script idle. Each FPR
is applied twice: the first time the server chooses every detector's threshold for it and computes the
partial-AUC intervals (a new point), the second time it reads them back (a point seen before by any session).

Usage: ``python bench/bench_operating_point.py [--rounds 3]``; writes ``bench/results/operating_point.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "operating_point.md"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
FPRS = ("0.01", "0.1", "1", "0.05", "0.5")


def start(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def apply(page, fpr: str) -> float:
    """Type a target FPR (%) in the sidebar and apply it; seconds from the click to the page drawn anew."""
    sidebar = page.locator("[data-testid='stSidebar']")
    field = sidebar.get_by_role("spinbutton", name="Target FPR (%)")
    field.fill(fpr)
    field.press("Tab")
    page.wait_for_selector(IDLE, timeout=60_000)
    start = time.perf_counter()
    sidebar.get_by_role("button", name="Apply to every detector").click()
    wanted = f"At a false-positive rate of {float(fpr):g} %"
    page.wait_for_function("""(t) => [...document.querySelectorAll("[data-testid='stMarkdown']")]
        .some(e => e.textContent.replace(/\\\\/g, '').includes(t))
        && !!document.querySelector("[data-testid='stApp'][data-test-script-state='notRunning']")
        && document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2""", arg=wanted, timeout=120_000)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the FPRs (each FPR new, then seen)")
    args = parser.parse_args()
    port = 8700 + os.getpid() % 200
    proc = start(port)
    new: list[float] = []
    seen: list[float] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2",
                                   timeout=300_000)
            page.wait_for_selector(IDLE, timeout=120_000)
            sidebar = page.locator("[data-testid='stSidebar']")
            sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Choose thresholds by").click()
            page.get_by_role("option", name="A target false-positive rate").click()
            page.wait_for_selector(IDLE, timeout=60_000)
            apply(page, "0.2")  # warm-up: the page's charts, the validation curves
            for round_ in range(args.rounds):
                for fpr in FPRS:
                    (new if round_ == 0 else seen).append(apply(page, fpr))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    load = os.getloadavg()[0]
    lines = ["# Switching the operating point (`bench/bench_operating_point.py`)", "",
             f"Target: the Overview redrawn ≤ 1 s after a new operating point, warm. {platform.machine()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}, real headless Chromium on the same cores; "
             f"load average {load:.1f} at the end.", "",
             "| operating point | switches | median | p90 | max |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, values in (("a target FPR new to the server", new), ("a target FPR seen before", seen)):
        values = sorted(values)
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        lines.append(f"| {label} | {len(values)} | {statistics.median(values):.2f} s | {p90:.2f} s | "
                     f"{values[-1]:.2f} s |")
    lines += ["", "From the click on *Apply to every detector* to the Overview drawn again (new headline, every chart, "
              "script idle). A new point: every detector's threshold chosen on the validation split and the partial "
              "AUC's bootstrap intervals computed; a point seen before: both read from the server's cache."]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
