"""N browser sessions opening the Threshold explorer at the same moment (real headless Chromium).

Reported problem: 20 sessions opening the explorer at once each took 36–74 s to become ready
(one alone: 3–10 s). What every session repeats (loading the store, scoring the test split,
sorting scores, binning histograms, curves) is computed once per server and shared
(``st.cache_resource``, keyed by the manifest's hash); a session only lays out its widgets and
builds its own figures. This script measures, against a fresh ``streamlit run app.py``:

* **cold**: N sessions open the explorer at once on a server that has served nobody yet;
* **warm**: N more sessions open it at once afterwards.

For each: per-session time from ``goto`` to the page drawn (its threshold control drawn, script idle), median and
max, and the server's RSS. Writes ``bench/results/sessions.md``.

Usage: ``python bench/bench_sessions.py [--sessions 20]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_ui import DRAWN_JS  # noqa: E402
from tests.e2e.conftest import APP_IDLE, CHROMIUM, CHROMIUM_FLAGS, start_app, stop_app  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "sessions.md"


def rss(pid: int) -> int:
    proc = psutil.Process(pid)
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process tree so far."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def browser_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("chromium")]


def browser_cpu() -> float:
    total = 0.0
    for pid in browser_pids():
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def open_all(browser, url: str, n: int) -> list[float]:
    """Open the explorer in n new sessions at once; seconds until each is drawn."""
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(n)]
    pages = [c.new_page() for c in contexts]
    start = time.perf_counter()
    for p in pages:  # navigation is asynchronous once started: all sessions load at the same time
        p.evaluate(f"() => {{ window.location.href = '{url}/threshold_explorer'; }}")
    times = []
    for p in pages:
        p.wait_for_function(DRAWN_JS, arg=[0, 1], timeout=600_000, polling=100)  # its threshold control drawn
        times.append(time.perf_counter() - start)
    for p in pages:
        p.wait_for_selector(APP_IDLE, timeout=600_000)
    for c in contexts:
        c.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    proc, url = start_app(timeout=180)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss(proc.pid))
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    try:
        with sync_playwright() as pw:
            # Each session stands for a user's own foreground tab: no background-tab throttling.
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                *CHROMIUM_FLAGS, "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                "--disable-backgrounding-occluded-windows"])
            cpu = {}
            s0, b0 = cpu_seconds(proc.pid), browser_cpu()
            cold = open_all(browser, url, args.sessions)
            s1, b1 = cpu_seconds(proc.pid), browser_cpu()
            after_cold = rss(proc.pid)
            warm = open_all(browser, url, args.sessions)
            s2, b2 = cpu_seconds(proc.pid), browser_cpu()
            after_warm = rss(proc.pid)
            cpu = {"cold server": (s1 - s0, b1 - b0), "warm server": (s2 - s1, b2 - b1)}
            browser.close()
    finally:
        stop.set()
        stop_app(proc)
    mb = 2**20
    rows = []
    for label, times in (("cold server", cold), ("warm server", warm)):
        server_cpu, chromium_cpu = cpu[label]
        line = (f"{args.sessions} sessions at once, {label}: median {statistics.median(times):.1f} s, "
                f"max {max(times):.1f} s to the explorer drawn; CPU: server {server_cpu:.1f} s, Chromium "
                f"{chromium_cpu:.1f} s")
        print(line, flush=True)
        rows.append(f"| {label} | {args.sessions} | {statistics.median(times):.1f} s | {max(times):.1f} s | "
                    f"{server_cpu:.1f} s ({server_cpu / args.sessions:.2f} s per session) | {chromium_cpu:.1f} s |")
    text = "\n".join([
        "# Many sessions opening the Threshold explorer at once",
        "",
        f"`python bench/bench_sessions.py --sessions {args.sessions}` on {platform.machine()}, {os.cpu_count()} cores, "
        "real headless Chromium (the browser's tabs and the server share the cores).",
        "",
        "| server | sessions at once | median time to drawn | slowest | server CPU | Chromium CPU (all tabs) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Server RSS: {after_cold / mb:,.0f} MB after the cold wave, {after_warm / mb:,.0f} MB after the warm one "
        f"(peak {peak[0] / mb:,.0f} MB).",
    ])
    RESULTS.write_text(text + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
