"""N signed-in sessions at once on a team server: every page, all sessions opening it at the same moment.

The app runs with sign-in (``[auth]``) through a real OpenID Connect provider on 127.0.0.1 (PyPI's
``oidc-provider-mock``) and an access policy; N users (a mix of viewers, analysts and an admin) sign in
through the provider's form in headless Chromium, each in a browser context of its own. Then, for each
page of the app, all N sessions open it at once, measured two ways:

* **browser**: each Chromium tab opens the page from the sidebar, as a signed-in user does; ready =
  the page's heading shown, the script idle and every chart drawn. \
All tabs share the server's 2 cores with the browser, which renders them
  all (on a team server each user's browser runs on their own machine);
* **server**: the same N signed-in users (their identity cookies, taken from the browser contexts) each
  open a websocket session of their own and ask for the page as the browser does; ready = the server
  has sent the whole page (its ``script_finished``). No rendering: what the server itself delivers.

Prints one line per page and way and writes ``bench/results/team.md``.

Usage: ``python bench/bench_team.py [--sessions 20] [--rounds 1]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_sessions import cpu_seconds  # noqa: E402  # the same CPU count as the anonymous sessions' bench

from bench.bench_ui import CONTROLS_JS  # noqa: E402
from tests.e2e.conftest import APP_IDLE, CHROMIUM, CHROMIUM_FLAGS, start_app, stop_app  # noqa: E402
from tests.e2e.signin import SIGN_IN_NOTE, provider, secrets_toml  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "team.md"
PAGES = [("threshold_explorer", "Threshold explorer"), ("flagged_records", "Flagged records"),
         ("score_csv", "Score a CSV"), ("live_monitor", "Live monitor"), ("your_data", "Your data"), ("", "Overview")]
"""Every page; the sessions start on the Overview (after sign-in), so it comes last."""
TARGET_S = 15.0
READY = ("""([title, controls]) => {
    const idle = !!document.querySelector(`""" + APP_IDLE + """`);
    const heading = [...document.querySelectorAll("[data-testid='stMain'] h1")].some(h => h.innerText.trim() === title);
    const charts = [...document.querySelectorAll("[data-testid='stPlotlyChart']")];
    const drawn = charts.every(c => c.querySelector('.main-svg'));
    const controlsDrawn = (""" + CONTROLS_JS + """)().filter(c => c.querySelectorAll('.adt-svg polyline, .adt-svg rect')
        .length > 10).length >= controls;
    return idle && heading && drawn && controlsDrawn;
}""")
"""A page is ready when its title shows, the script is idle, every Plotly chart and every threshold control (the
explorer's, in its shadow root) is drawn."""
CONTROLS = {"Threshold explorer": 1}
POLICY = ('default_role = "viewer"\n[users]\n"user0@example.com" = "admin"\n'
          '[domains]\n"analysts.example.com" = "analyst"\n')


def user(i: int) -> str:
    """Users 0 (admin), odd ones analysts, even ones viewers."""
    return f"user{i}@example.com" if i % 2 == 0 else f"user{i}@analysts.example.com"


async def sign_in(browser, url: str, i: int):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(url, timeout=600_000)
    await page.get_by_text(SIGN_IN_NOTE).wait_for(timeout=300_000)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.locator("input[name='sub']").fill(user(i))
    await page.get_by_role("button", name="Authorize").click()
    await page.locator("[data-testid='stSidebar']").get_by_role("button", name="Sign out").wait_for(timeout=300_000)
    await page.wait_for_selector(APP_IDLE, timeout=300_000)
    return context, page


async def browser_wave(pages, path: str, title: str) -> list[float]:
    """All tabs open the page from the sidebar at once (as a signed-in user does); seconds until each is ready."""
    start = time.perf_counter()

    async def one(page) -> float:
        await page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=title, exact=True).click(
            timeout=600_000)
        await page.wait_for_function(READY, arg=[title, CONTROLS.get(title, 0)], timeout=600_000, polling=100)
        return time.perf_counter() - start

    return list(await asyncio.gather(*(one(p) for p in pages)))


async def server_session(url: str, cookies: dict[str, str], path: str, title: str) -> float:
    """One websocket session asking for the page as the browser does; seconds until the server finished it."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    start = time.perf_counter()
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), "Origin": url}
    xsrf = cookies.get("_streamlit_xsrf", "")
    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    protocols = [websockets.Subprotocol("streamlit"), websockets.Subprotocol(xsrf)]
    async with websockets.connect(ws_url, subprotocols=protocols, additional_headers=headers,
                                  max_size=None, open_timeout=600) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_name = path
        msg.rerun_script.page_script_hash = ""
        await ws.send(msg.SerializeToString())
        titles: list[str] = []
        while True:
            data = await asyncio.wait_for(ws.recv(), timeout=600)
            fm = ForwardMsg()
            fm.ParseFromString(data)
            kind = fm.WhichOneof("type")
            if kind == "delta" and fm.delta.new_element.WhichOneof("type") == "heading":
                titles.append(fm.delta.new_element.heading.body)
            if kind == "script_finished" and fm.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                elapsed = time.perf_counter() - start
                break
        if title in titles:
            return elapsed
        raise RuntimeError(f"the session did not get {title!r} (signed out? headings: {titles[:3]})")


async def server_wave(url: str, jars: list[dict[str, str]], path: str, title: str) -> list[float]:
    return list(await asyncio.gather(*(server_session(url, jar, path, title) for jar in jars)))


async def run(args: argparse.Namespace) -> list[str]:
    from playwright.async_api import async_playwright

    folder = Path(tempfile.mkdtemp(prefix="anodet-team-bench-"))
    (folder / "policy.toml").write_text(POLICY)
    lines: list[str] = []
    with provider(timedelta(hours=2)) as issuer:
        (folder / "secrets.toml").write_text(secrets_toml(issuer))
        env = {"STREAMLIT_SECRETS_FILES": str(folder / "secrets.toml"), "ANODET_POLICY": str(folder / "policy.toml"),
               "ANODET_AUDIT_LOG": str(folder / "audit.jsonl")}
        proc, url = start_app(env, timeout=300)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[
                    *CHROMIUM_FLAGS, "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                    "--disable-backgrounding-occluded-windows"])
                start = time.perf_counter()
                signed = await asyncio.gather(*(sign_in(browser, url, i) for i in range(args.sessions)))
                took = time.perf_counter() - start
                lines.append(f"sign-in | {args.sessions} users through the provider at once | all signed in after "
                             f"{took:.1f} s")
                print(lines[-1], flush=True)
                pages = [p for _, p in signed]
                jars = []
                for context, _ in signed:
                    jars.append({c["name"]: c["value"] for c in await context.cookies()})
                assert all("_streamlit_user" in j for j in jars), "a session has no identity cookie"
                for _ in range(args.rounds):
                    for path, title in PAGES:
                        c0 = cpu_seconds(proc.pid)
                        srv = await server_wave(url, jars, path, title)
                        c1 = cpu_seconds(proc.pid)
                        lines.append(_line(title, "server", srv, c1 - c0, args.sessions))
                        print(lines[-1], flush=True)
                    for path, title in PAGES:
                        c0 = cpu_seconds(proc.pid)
                        times = await browser_wave(pages, path, title)
                        c1 = cpu_seconds(proc.pid)
                        lines.append(_line(title, "browser", times, c1 - c0, args.sessions))
                        print(lines[-1], flush=True)
                await browser.close()
        finally:
            stop_app(proc)
    return lines


def _line(title: str, way: str, times: list[float], cpu: float, n: int) -> str:
    verdict = "yes" if max(times) <= TARGET_S else "**no**"
    return (f"{title} | {way} | {statistics.median(times):.1f} s | {max(times):.1f} s | {verdict} | "
            f"{cpu:.1f} s ({cpu / n:.2f} s per session)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="waves per page and way (the first warms the caches)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"needs Debian chromium at {CHROMIUM}")
    lines = asyncio.run(run(args))
    load = os.getloadavg()
    text = "\n".join([
        "# Signed-in sessions at once on a team server",
        "",
        f"`python bench/bench_team.py --sessions {args.sessions} --rounds {args.rounds}` on {platform.machine()}, "
        f"{os.cpu_count()} cores (load average {load[0]:.1f} at the end: the machine is shared), the app with "
        "sign-in through a real OpenID Connect provider on 127.0.0.1, KDD Cup 99, a warm data folder.",
        "",
        f"Each row: all {args.sessions} signed-in sessions open that page at the same moment; time from the request "
        f"to the page ready, median and slowest; target: every session ready in {TARGET_S:.0f} s or less.",
        "",
        "| page | measured by | median | slowest | ≤ 15 s | server CPU |",
        "| --- | --- | ---: | ---: | --- | ---: |",
        *[f"| {line} |" for line in lines if not line.startswith("sign-in")],
        "",
        *[line.replace(" | ", ": ", 1).replace(" | ", "; ") for line in lines if line.startswith("sign-in")],
    ])
    RESULTS.write_text(text + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
