"""Signing in through a real OpenID Connect provider on 127.0.0.1 (PyPI's ``oidc-provider-mock``), for the Chromium
tests and the sessions benchmark: the provider, the app's secrets and policy, and the sign-in steps."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from anodet.detectors import REGISTRY, display_name
from tests.e2e.conftest import wait_idle

SIGN_IN_NOTE = "This server needs you to sign in before it shows anything."
SIDEBAR = "[data-testid='stSidebar']"
FILE_INPUT = "[data-testid='stFileUploader'] input[type='file']"
POLICY = ('default_role = "viewer"\n[users]\n"admin@example.com" = "admin"\n"vera@example.com" = "viewer"\n'
          '[domains]\n"analysts.example.com" = "analyst"\n')
"""The tests' access policy: one admin, analysts by domain, everyone else a viewer."""


@contextmanager
def provider(max_age: timedelta) -> Iterator[str]:
    """An OpenID Connect provider on 127.0.0.1 in a thread; yields its base URL, stops it after."""
    import oidc_provider_mock
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, oidc_provider_mock.app(access_token_max_age=max_age), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def secrets_toml(main: str, short: str | None = None) -> str:
    """``[auth]`` for the app: the provider at ``main`` (and ``[auth.short]`` at ``short``); the port is the app's."""
    text = ("[auth]\n"
            'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(32)}"\n'
            'client_id = "anodet-e2e"\nclient_secret = "e2e-secret"\n'
            f'server_metadata_url = "{main}/.well-known/openid-configuration"\n')
    if short:
        text += ("[auth.short]\n"
                 'client_id = "anodet-e2e-short"\nclient_secret = "e2e-secret"\n'
                 f'server_metadata_url = "{short}/.well-known/openid-configuration"\n')
    return text


@dataclass
class Team:
    url: str
    audit_log: Path
    policy: Path


def shown_text(page, where: str = "[data-testid='stApp']") -> str:
    """What the reader sees (the app breaks e-mail autolinks with zero-width spaces; they are invisible)."""
    return page.locator(where).inner_text().replace("\u200b", "")


def on_sign_in_page(page, timeout: float = 120_000) -> str:
    page.get_by_text(SIGN_IN_NOTE).wait_for(timeout=timeout)
    page.get_by_role("button", name="Sign in", exact=True).wait_for()
    wait_idle(page)
    return shown_text(page, "body")


def assert_shows_nothing_of_the_data(text: str) -> None:
    assert not re.search(r"\d", text), text  # no count, score, threshold or date
    for word in ["not found", "KDD", "Overview", "Score a CSV", "Your data", "Dataset",
                 *(display_name(k) for k in REGISTRY)]:
        assert word.lower() not in text.lower(), (word, text)


def sign_in(page, team: Team, user: str, button: str = "Sign in") -> None:
    """From the sign-in page through the provider's authorization form and back."""
    page.get_by_role("button", name=button, exact=True).click()
    page.locator("input[name='sub']").fill(user)
    page.get_by_role("button", name="Authorize").click()
    page.locator(SIDEBAR).get_by_role("button", name="Sign out").wait_for(timeout=120_000)
    assert user in shown_text(page, SIDEBAR)


