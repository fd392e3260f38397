"""Benchmark the dashboard in a real headless Chromium and print (and save) the figures.

Measures, against a fresh ``streamlit run app.py``:

* cold start: process spawn → Overview fully drawn (3 charts, leaderboard, script idle) for the
  first session. Run it twice: the very first run scores the test split with every detector
  and keeps the scores on disk (``data/cache``); later server starts read them back and load
  the detectors in the background;
* warm start: a new tab (a new Streamlit session) on the running server → Overview fully drawn;
* page switch: a click in the sidebar → the next page fully drawn;
* slider: mouse release on the threshold slider → histogram line, ROC point and metrics all
  updated in the page (timed inside the page from the ``pointerup`` event), and the server-side
  time of the fragment rerun (``ANODET_UI_TIMING`` lines printed by the server);
* memory: the server's RSS (psutil) with 1, 5 and 10 sessions open.

Usage: ``python bench/bench_ui.py [--moves 25] [--sessions 10]``; writes ``bench/results/ui.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ui.md"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
DRAWN_JS = """(n) => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n
    && !!document.querySelector("[data-testid='stApp'][data-test-script-state='notRunning']")"""
# What a slider move must change: the metrics, the histogram's threshold label, the ROC marker.
SIGNATURE_JS = """() => [...document.querySelectorAll("[data-testid='stMetricValue']")].map(e => e.textContent).join('|')
    + '#' + [...document.querySelectorAll('.js-plotly-plot .annotation-text')].map(e => e.textContent).join('|')
    + '#' + [...document.querySelectorAll('.js-plotly-plot .scatterlayer .points path')].map(
        e => e.getAttribute('transform')).join('|')"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``streamlit run app.py`` with server-side timing lines collected from its output."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timings: list[float] = []
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(self.port), "--server.headless", "true"],
            cwd=ROOT, env={**os.environ, "ANODET_UI_TIMING": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("streamlit did not start")

    def _read(self) -> None:
        pattern = re.compile(r"anodet-timing explorer_panel \S+ ([0-9.]+) ms")
        for line in self.proc.stdout:
            match = pattern.search(line)
            if match:
                self.timings.append(float(match.group(1)))

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def open_drawn(page, url: str, charts: int) -> None:
    page.goto(url)
    page.wait_for_function(DRAWN_JS, arg=charts, timeout=180_000)


def switch_to(page, title: str, charts: int) -> float:
    """Click a page in the sidebar; seconds until it is fully drawn."""
    start = time.perf_counter()
    page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=30_000)
    page.wait_for_function(DRAWN_JS, arg=charts, timeout=30_000)
    return time.perf_counter() - start


def slider_move(page, fraction: float) -> float:
    """Drag the slider thumb to ``fraction`` and release; ms from release to everything updated."""
    thumb = page.locator("[data-testid='stSlider'] input[type='range']").first.locator("xpath=../..")
    track = page.locator("[data-testid='stSlider'] [role='group'] > div").first
    tb, box = thumb.bounding_box(), track.bounding_box()
    before = page.evaluate(SIGNATURE_JS)
    page.mouse.move(tb["x"] + tb["width"] / 2, tb["y"] + tb["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, tb["y"] + tb["height"] / 2, steps=5)
    page.evaluate("() => { window.__released = null; document.addEventListener('pointerup', "
                  "() => { window.__released = performance.now(); }, {capture: true, once: true}); }")
    page.mouse.up()
    return page.evaluate(
        """async ([sigSource, before, idle]) => {
            const sig = eval(sigSource);
            const deadline = performance.now() + 30000;
            while (performance.now() < deadline) {
                await new Promise(r => requestAnimationFrame(r));
                if (window.__released !== null && sig() !== before && document.querySelector(idle)) {
                    return performance.now() - window.__released;
                }
            }
            throw new Error('the page did not update within 30 s');
        }""", [SIGNATURE_JS, before, IDLE])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=25, help="slider moves to time")
    parser.add_argument("--sessions", type=int, default=10, help="browser sessions for the memory figure")
    args = parser.parse_args()
    random.seed(3)
    load_before = os.getloadavg()[0]
    cached = any((ROOT / "data" / "cache").glob("test-scores-*.npz"))

    server = Server()
    rows: list[tuple[str, str, str]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        open_drawn(page, server.url, 3)
        cold = time.perf_counter() - server.started
        print(f"cold start (spawn → Overview drawn): {cold:.1f} s")

        warm = []
        for _ in range(3):  # a new tab is a new Streamlit session; the browser keeps its HTTP cache
            tab = ctx.new_page()
            start = time.perf_counter()
            open_drawn(tab, server.url, 3)
            warm.append(time.perf_counter() - start)
            tab.close()
        print(f"warm start (new tab → Overview drawn): median {statistics.median(warm):.2f} s")

        switches = []
        for _ in range(3):
            switches.append(switch_to(page, "Threshold explorer", 4))
            switches.append(switch_to(page, "Flagged records", 1))
            switches.append(switch_to(page, "Overview", 3))
        print(f"page switch: median {statistics.median(switches):.2f} s, max {max(switches):.2f} s")

        switch_to(page, "Threshold explorer", 4)
        server.timings.clear()
        moves = []
        for i in range(args.moves):
            fraction = 0.15 + 0.8 * random.random() if i % 2 else 0.05 + 0.6 * random.random()
            moves.append(slider_move(page, fraction))
        time.sleep(0.5)
        server_side = list(server.timings)
        print(f"slider release → page updated: median {statistics.median(moves):.0f} ms, "
              f"p90 {pct(moves, 0.9):.0f} ms (n={len(moves)})")
        if server_side:
            print(f"server-side fragment rerun: median {statistics.median(server_side):.1f} ms, "
                  f"p90 {pct(server_side, 0.9):.1f} ms (n={len(server_side)})")

        contexts = [ctx]
        rss = {1: server.rss_mb()}
        for i in range(2, args.sessions + 1):
            extra = browser.new_context(viewport={"width": 1440, "height": 1000})
            open_drawn(extra.new_page(), f"{server.url}/threshold_explorer", 4)
            contexts.append(extra)
            if i in (5, args.sessions):
                rss[i] = server.rss_mb()
        per_session = (rss[args.sessions] - rss[1]) / max(args.sessions - 1, 1)
        print("server RSS: " + ", ".join(f"{k} session(s) {v:.0f} MB" for k, v in rss.items())
              + f"; {per_session:.1f} MB per extra session")
        for c in contexts:
            c.close()
        browser.close()
    server.stop()

    store_mb = sum(f.stat().st_size for f in (ROOT / "models_store").rglob("*") if f.is_file()) / 2**20
    rows = [
        ("`streamlit run` → Overview drawn, cold (fresh server process"
         + (", scores cached on disk)" if cached else ", first run: no score cache)"), f"{cold:.1f} s", "≤ 15 s"),
        ("New tab (new session) → Overview drawn, warm (server running)", f"{statistics.median(warm):.2f} s (median of 3)", "≤ 5 s"),
        ("Switch page (sidebar click → page drawn)", f"{statistics.median(switches):.2f} s median, "
         f"{max(switches):.2f} s max (n={len(switches)})", "≤ 1 s"),
        ("Slider release → histogram line, ROC point and metrics updated",
         f"{statistics.median(moves):.0f} ms median, {pct(moves, 0.9):.0f} ms p90 (n={len(moves)})", "median ≤ 150 ms"),
        ("Server-side fragment rerun per slider move",
         (f"{statistics.median(server_side):.1f} ms median, {pct(server_side, 0.9):.1f} ms p90 (n={len(server_side)})"
          if server_side else "not captured"), "≤ 30 ms"),
        ("Server RSS, 1 → 5 → 10 sessions", " → ".join(f"{v:.0f} MB" for v in rss.values())
         + f" ({per_session:.1f} MB per extra session; model store on disk {store_mb:.0f} MB)", "no per-session copy"),
    ]
    table = ["| measure | result | target |", "| --- | --- | --- |", *[f"| {a} | {b} | {c} |" for a, b, c in rows]]
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
               f"load average {load_before:.1f} when the run started")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "Dashboard benchmark (`python bench/bench_ui.py`)\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} in headless Chromium on {machine}.\n\n"
        + "\n".join(table) + "\n\n"
        f"Cold start: {'the test scores were read from the on-disk cache (data/cache), detectors loaded in the background' if cached else 'no score cache yet: imports scikit-learn, loads the 12 detectors (numpy forward passes; no TensorFlow) and scores the 10,000 test records'}; "
        "later sessions share everything (`st.cache_resource`). Slider times run "
        "from the `pointerup` event to the moment the page shows the new metrics, histogram line and ROC "
        "marker with the script idle.\n")
    print("\n".join(table))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
