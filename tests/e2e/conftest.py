"""Real-browser fixtures: a Streamlit server on 127.0.0.1 and Debian's headless Chromium.

The server is started by the fixture and stopped by it; screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict[str, str] | None = None, timeout: float = 90.0):
    """Start ``streamlit run app.py`` on 127.0.0.1; return (process, base URL)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else b""
            raise RuntimeError(f"streamlit exited: {output.decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("streamlit did not become healthy in time")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def app_url():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (test.sh installs it)")
    proc, url = start_app()
    yield url
    stop_app(proc)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script (never sleep)."""
    page.wait_for_selector(APP_IDLE, timeout=timeout)


def wait_controls(page, count: int = 1, timeout: float = 120_000) -> None:
    """Wait until ``count`` threshold controls have drawn their charts (they live in shadow roots,
    which Playwright's locators pierce), then until the script is idle."""
    page.locator(".adt .adt-roc polyline.adt-curve").nth(count - 1).wait_for(timeout=timeout)
    wait_idle(page)


DOCS = ROOT / "docs"


def tall_screenshot(page, name: str, also: Path | None = None, width: int | None = None) -> Path:
    """Full-length screenshot: Streamlit scrolls inside its main block, so grow the viewport first.

    ``also``: a README picture (``docs/``) written too, only with ``ANODET_UPDATE_DOCS=1`` (so a test
    run leaves the tree clean).
    """
    width = width or page.viewport_size["width"]
    before = page.viewport_size["height"]
    page.mouse.move(0, 0)  # no tooltip in the picture
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(int(height) + 20, 8000)})
    page.wait_for_timeout(300)  # let plotly re-layout to the new size before the picture
    path = screenshot(page, name)
    if also is not None and os.environ.get("ANODET_UPDATE_DOCS") == "1":
        also.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(also), full_page=True)
    page.set_viewport_size({"width": width, "height": before})
    return path


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
