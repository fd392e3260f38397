"""Sign-in end to end in a real headless Chromium, against a real OpenID Connect provider on 127.0.0.1.

The provider is PyPI's ``oidc-provider-mock`` (discovery, authorization, token, JWKS and end-session
endpoints; its authorization form asks for the user's ``sub``, which becomes their e-mail). Two run:
one issuing hour-long ID tokens, one (``[auth.short]``) issuing tokens that expire in seconds. The app
runs with ``[auth]`` in a secrets file of the test's own (``STREAMLIT_SECRETS_FILES``), a policy
file (``ANODET_POLICY``) and an audit log (``ANODET_AUDIT_LOG``) under the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from anodet.access import audit
from tests.e2e.conftest import CHROMIUM, screenshot, start_app, stop_app, wait_idle
from tests.e2e.signin import (
    FILE_INPUT,
    SIDEBAR,
    SIGN_IN_NOTE,
    Team,
    assert_shows_nothing_of_the_data,
    on_sign_in_page,
    provider,
    secrets_toml,
    shown_text,
    sign_in,
)

pytestmark = pytest.mark.e2e
pytest.importorskip("authlib", reason="Streamlit's st.login needs Authlib (requirements.txt)")
oidc_provider_mock = pytest.importorskip("oidc_provider_mock", reason="the test provider (requirements-dev.txt)")

SHORT_SECONDS = 30
"""Lifetime of the short provider's ID tokens: long enough to see the app once on a loaded machine."""


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> Iterator[Team]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (test.sh installs it)")
    folder = tmp_path_factory.mktemp("team")
    with provider(timedelta(hours=1)) as main, provider(timedelta(seconds=SHORT_SECONDS)) as short:
        (folder / "secrets.toml").write_text(secrets_toml(main, short))
        (folder / "policy.toml").write_text(
            'default_role = "viewer"\n[users]\n"admin@example.com" = "admin"\n'
            '[domains]\n"analysts.example.com" = "analyst"\n')
        log = folder / "audit.jsonl"
        proc, url = start_app({"STREAMLIT_SECRETS_FILES": str(folder / "secrets.toml"),
                               "ANODET_POLICY": str(folder / "policy.toml"), "ANODET_AUDIT_LOG": str(log)})
        try:
            yield Team(url, log, folder / "policy.toml")
        finally:
            stop_app(proc)


def test_unsigned_visitor_sees_only_the_sign_in_page(team, page):
    for path in ("", "/score_csv", "/your_data", "/flagged_records"):
        page.goto(team.url + path)
        text = on_sign_in_page(page)
        assert_shows_nothing_of_the_data(text)
        assert page.locator(SIDEBAR).count() == 0 or not shown_text(page, SIDEBAR).strip()
    screenshot(page, "auth_sign_in_page")


def test_sign_in_shows_the_overview_and_sign_out_comes_back_to_sign_in(team, page):
    page.goto(team.url)
    on_sign_in_page(page)
    sign_in(page, team, "viewer@example.com")
    page.get_by_role("heading", name="Overview").wait_for(timeout=180_000)
    wait_idle(page, timeout=180_000)
    sidebar = shown_text(page, SIDEBAR)
    assert "viewer@example.com" in sidebar and "viewer" in sidebar.replace("viewer@example.com", "")
    screenshot(page, "auth_signed_in_overview")

    page.locator(SIDEBAR).get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()  # the provider's own end-session form
    assert_shows_nothing_of_the_data(on_sign_in_page(page))
    page.reload()  # the identity cookie is gone: still signed out
    assert_shows_nothing_of_the_data(on_sign_in_page(page))

    lines = [(e["actor"]["id"], e["action"], e["outcome"]) for e in audit.read(team.audit_log)]
    assert ("viewer@example.com", "sign-in", "ok") in lines
    assert ("viewer@example.com", "sign-out", "ok") in lines


def test_removed_identity_cookie_is_signed_out(team, page):
    page.goto(team.url)
    on_sign_in_page(page)
    sign_in(page, team, "someone@example.com")
    page.context.clear_cookies(name=re.compile(r"^_streamlit_user"))
    page.reload()
    assert_shows_nothing_of_the_data(on_sign_in_page(page))


def test_expired_id_token_leads_back_to_the_sign_in_page(team, page):
    page.goto(team.url)
    on_sign_in_page(page)
    sign_in(page, team, "brief@example.com", button="Sign in with Short")  # signed in: the sidebar shows the account
    expires = time.time() + SHORT_SECONDS  # the token was issued before this point, so it expires before this
    expired = page.get_by_text("Your sign-in has expired; sign in again.")
    either = page.get_by_text(SIGN_IN_NOTE).or_(page.locator(SIDEBAR).get_by_role("button", name="Sign out"))
    while not expired.is_visible():
        assert time.time() < expires + 120, "the expired sign-in was never noticed"
        if time.time() < expires:  # the state waited for is a clock reading: the token's exp has passed
            page.wait_for_timeout(500)
            continue
        page.reload()
        either.first.wait_for(timeout=120_000)
    assert_shows_nothing_of_the_data(on_sign_in_page(page).replace("Short", ""))
    screenshot(page, "auth_expired")
    lines = [(e["actor"]["id"], e["action"]) for e in audit.read(team.audit_log)]
    assert ("brief@example.com", "session-expired") in lines


def test_viewer_cannot_score_a_file(team, page, tmp_path):
    page.goto(team.url)
    on_sign_in_page(page)
    sign_in(page, team, "reader@example.com")
    page.get_by_role("link", name="Score a CSV").click()
    page.get_by_role("heading", name="Score a CSV").wait_for(timeout=120_000)
    wait_idle(page, timeout=120_000)
    refused = "reader@example.com is a viewer and may not score files"
    assert refused in shown_text(page, "[data-testid='stMain']")  # said before anything is tried
    assert page.locator(FILE_INPUT).is_disabled()  # no file of theirs reaches the server

    page.get_by_role("button", name="Try the example file").click()  # pressing Score anyway
    page.locator("[data-testid='stAlertContentError']").wait_for(timeout=120_000)
    wait_idle(page)
    assert refused in shown_text(page, "[data-testid='stAlertContentError']")
    assert page.locator("[data-testid='stMetricValue']").count() == 0  # nothing was scored
    screenshot(page, "auth_viewer_score_csv")
    denied = [e for e in audit.read(team.audit_log) if e["outcome"] == "denied"]
    assert [(e["actor"]["id"], e["action"], e["resource"]) for e in denied] == [
        ("reader@example.com", "score", "file:anodet-example.csv")]
    assert refused in denied[0]["detail"]

    policy = team.policy.read_text()
    try:  # the admin makes the reader an analyst: the next run of the app finds the new role
        team.policy.write_text(policy.replace('[users]\n', '[users]\n"reader@example.com" = "analyst"\n'))
        os.utime(team.policy, ns=(time.time_ns(), time.time_ns() + 10**9))
        page.reload()
        page.get_by_role("heading", name="Score a CSV").wait_for(timeout=120_000)
        wait_idle(page, timeout=120_000)
        assert "analyst" in shown_text(page, SIDEBAR).replace("reader@example.com", "")
        assert not page.locator(FILE_INPUT).is_disabled()
        assert "may not score files" not in shown_text(page, "[data-testid='stMain']")
    finally:
        team.policy.write_text(policy)
