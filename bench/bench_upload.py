"""Server memory while users upload and score files on the Score a CSV page (real Chromium).

Two cases against a fresh ``streamlit run app.py``:

* one session uploads a small ``.gz`` that expands to about 1 GB of CSV (the reported attack:
  3.3 MB compressed took 16.8 GB of server memory and kept 7.5 GB after the browser closed);
* N sessions (default 20) upload and score a file at the same time.

The server's resident memory (psutil, process and children) is sampled every 0.2 s; the peak,
the level after scoring and the level after the browser closed are printed and written to
``bench/results/upload.md``. The upload inputs repeat KDD test rows (that is what makes a
3 MB .gz expand to 1 GB); what is measured here is memory, not scoring speed.

Usage: ``python bench/bench_upload.py [--gb 1.0] [--sessions 20] [--session-mb 20]``
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from playwright.sync_api import sync_playwright

from anodet.datasets.kdd import load_splits
from anodet.datasets.kdd_schema import FEATURES
from tests.e2e.conftest import APP_IDLE, CHROMIUM, CHROMIUM_FLAGS, start_app, stop_app

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "upload.md"


def make_upload(path: Path, target_bytes: int, seed: int = 0) -> tuple[int, int]:
    """A gzip file of header CSV rows drawn from the test split, ``target_bytes`` once decompressed."""
    test = load_splits().test.rows
    rng = np.random.default_rng(seed)
    block = test.iloc[rng.integers(0, len(test), 20_000)][list(FEATURES)].to_csv(index=False, header=False).encode()
    header = (",".join(FEATURES) + "\n").encode()
    rows_per_block = block.count(b"\n")
    written, rows = 0, 0
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(header)
        while written < target_bytes:
            fh.write(block)
            written += len(block)
            rows += rows_per_block
    return rows, written


class Sampler:
    """Peak resident memory of a process tree, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.2)

    def reset(self) -> None:
        self.peak = self.rss()

    def stop(self) -> None:
        self._stop.set()


def open_score_page(page, url: str) -> None:
    page.goto(url + "/score_csv")
    page.get_by_role("heading", name="Score a CSV").wait_for(timeout=180_000)
    page.wait_for_selector(APP_IDLE, timeout=180_000)


def upload_and_score(page, path: Path, timeout_s: float) -> float:
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for(timeout=600_000)
    page.wait_for_selector(APP_IDLE, timeout=600_000)
    start = time.perf_counter()
    page.get_by_role("button", name="Score the file").click()
    page.get_by_text("Results for").first.wait_for(timeout=timeout_s * 1000)
    page.wait_for_selector(APP_IDLE, timeout=timeout_s * 1000)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=1.0, help="decompressed size of the single upload")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--session-mb", type=float, default=20.0, help="decompressed size of each concurrent upload")
    args = parser.parse_args()
    mb = 1024 * 1024
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.csv.gz"
        rows, text = make_upload(big, int(args.gb * 1e9))
        small = Path(tmp) / "small.csv.gz"
        small_rows, small_text = make_upload(small, int(args.session_mb * 1e6), seed=1)
        big_mb, small_mb = big.stat().st_size / mb, small.stat().st_size / mb
        proc, url = start_app({"ANODET_DATA_DIR": os.environ.get("ANODET_DATA_DIR", str(ROOT / "data"))}, timeout=180)
        sampler = Sampler(proc.pid)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                open_score_page(page, url)
                idle = sampler.rss()
                sampler.reset()
                seconds = upload_and_score(page, big, timeout_s=3600)
                peak_big, after_big = sampler.peak, sampler.rss()
                context.close()
                time.sleep(5)
                closed_big = sampler.rss()
                print(f"1 upload: {big_mb:.1f} MB .gz, {text / 1e9:.2f} GB CSV, {rows:,} rows: "
                      f"scored in {seconds:.0f} s; server RSS idle {idle / mb:,.0f} MB, peak {peak_big / mb:,.0f} MB, "
                      f"after {after_big / mb:,.0f} MB, browser closed {closed_big / mb:,.0f} MB", flush=True)

                sampler.reset()
                before = sampler.rss()
                contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(args.sessions)]
                pages = [c.new_page() for c in contexts]
                for p in pages:
                    open_score_page(p, url)
                start = time.perf_counter()
                for p in pages:
                    p.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(small))
                for p in pages:
                    p.get_by_text(small.name).first.wait_for(timeout=600_000)
                    p.wait_for_selector(APP_IDLE, timeout=600_000)
                for p in pages:
                    p.get_by_role("button", name="Score the file").click()
                for p in pages:
                    p.get_by_text("Results for").first.wait_for(timeout=3_600_000)
                    p.wait_for_selector(APP_IDLE, timeout=3_600_000)
                many_seconds = time.perf_counter() - start
                peak_many, after_many = sampler.peak, sampler.rss()
                for c in contexts:
                    c.close()
                time.sleep(5)
                closed_many = sampler.rss()
                browser.close()
            print(f"{args.sessions} sessions at once, each {small_mb:.2f} MB .gz ({small_text / 1e6:.0f} MB "
                  f"CSV, {small_rows:,} rows): all scored in {many_seconds:.0f} s; server RSS before "
                  f"{before / mb:,.0f} MB, peak {peak_many / mb:,.0f} MB, after {after_many / mb:,.0f} MB, browsers "
                  f"closed {closed_many / mb:,.0f} MB", flush=True)
        finally:
            sampler.stop()
            stop_app(proc)
    lines = [
        "# Score a CSV: server memory under uploads",
        "",
        f"`python bench/bench_upload.py --gb {args.gb} --sessions {args.sessions} --session-mb {args.session_mb}` on "
        f"{platform.machine()}, {os.cpu_count()} cores, real headless Chromium, default detectors.",
        "",
        "| case | input | scoring time | server RSS before | peak | after scoring | after the browser closed |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        f"| 1 session | {big_mb:.1f} MB .gz → {text / 1e9:.2f} GB CSV, {rows:,} rows | {seconds:.0f} s | "
        f"{idle / mb:,.0f} MB | {peak_big / mb:,.0f} MB | {after_big / mb:,.0f} MB | {closed_big / mb:,.0f} MB |",
        f"| {args.sessions} sessions at once | each {small_mb:.2f} MB .gz → {small_text / 1e6:.0f} MB CSV, "
        f"{small_rows:,} rows | {many_seconds:.0f} s (all) | {before / mb:,.0f} MB | {peak_many / mb:,.0f} MB | "
        f"{after_many / mb:,.0f} MB | {closed_many / mb:,.0f} MB |",
        "",
        "The full results of each upload go to a gzip file under `data/uploads/`; a session keeps the summary, a "
        "200,000-row chart sample and the 5,000 top flagged rows per detector, so memory does not grow with the input.",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
