"""The sign-in gate: with ``[auth]`` in Streamlit's secrets, every page needs sign-in and nothing of the data
shows before it.

app.py calls :func:`gate` right after ``st.set_page_config``, before its navigation and sidebar.
Sign-in is Streamlit's own OpenID Connect (``st.login`` / ``st.logout`` / ``st.user``, configured
in ``.streamlit/secrets.toml`` as Streamlit documents it). The gate

* without ``[auth]`` (local single-user mode): lets the local user in as an admin, unless the
  server listens beyond this machine without ``--no-auth`` (then it shows one sentence only);
* before sign-in, after the session expired (the ID token's ``exp``, or the policy's
  ``session_hours`` from ``iat``) and for a user the policy keeps out: shows a sign-in page and
  stops the run, so no page, sidebar or dataset name is drawn;
* after sign-in: maps the ID token's claims to a :class:`~anodet.access.Principal` through the
  policy file, records the sign-in in the audit log once (not per reload or tab), and keeps the principal
  in the session for the pages (:func:`current_principal`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import streamlit as st

from anodet.access import audit, identity
from anodet.access.identity import Principal
from anodet.access.policy import Policy, PolicyError, load_policy
from anodet.access.serving import NO_AUTH_ENV, is_loopback

logger = logging.getLogger(__name__)

PRINCIPAL_KEY = "anodet_principal"
"""Session key of the acting principal, set by :func:`gate` on every run."""
_AUDITED_KEY = "anodet_signin_audited"
_SEEN: OrderedDict[tuple[Any, ...], None] = OrderedDict()
"""Sign-ins already in the audit log (this server process): a reload or a second tab adds no line."""
_SEEN_LOCK = threading.Lock()
_SEEN_MAX = 10_000
SIGN_IN, SIGN_OUT = "sign-in", "sign-out"


def auth_section() -> Mapping[str, Any] | None:
    """The ``[auth]`` table of Streamlit's secrets, or None when sign-in is not configured."""
    try:
        if not st.secrets.load_if_toml_exists():
            return None
        section = st.secrets.get("auth")
    except FileNotFoundError:
        return None
    return section if isinstance(section, Mapping) and section else None


def providers(section: Mapping[str, Any]) -> list[str | None]:
    """Providers to offer, one Sign-in button each: None for the one configured directly in ``[auth]``, then each
    ``[auth.NAME]`` section."""
    named = [name for name, value in section.items() if isinstance(value, Mapping) and value.get("client_id")]
    return ([None] if section.get("client_id") else []) + named


def session_end(claims: Mapping[str, Any], policy: Policy) -> float | None:
    """When this sign-in ends (epoch seconds): ``iat`` + the policy's ``session_hours``, else the ID token's ``exp``."""
    iat, exp = claims.get("iat"), claims.get("exp")
    if policy.session_hours is not None and isinstance(iat, (int, float)):
        return float(iat) + policy.session_hours * 3600
    return float(exp) if isinstance(exp, (int, float)) else None


def _user_claims() -> dict[str, Any]:
    claims = dict(st.user.to_dict())
    claims.pop("tokens", None)  # never kept or shown
    return claims


def _sign_in_page(note: str | None, section: Mapping[str, Any], paths: Iterable[str] = ()) -> NoReturn:
    """The only page a visitor sees before sign-in: a sentence and the sign-in button(s), nothing of the data."""

    def page() -> None:
        st.title("anodet")
        st.markdown("This server needs you to sign in before it shows anything.")
        if note:
            st.warning(note, icon=":material/lock_clock:")
        for provider in providers(section):
            label = "Sign in" if provider is None else f"Sign in with {provider.capitalize()}"
            st.button(label, type="primary", icon=":material/login:", key=f"anodet_sign_in_{provider or 'default'}",
                      on_click=st.login, args=() if provider is None else (provider,))

    _only_page(page, "Sign in", paths)


def _stop_page(message: str, principal: Principal | None = None, paths: Iterable[str] = ()) -> NoReturn:
    """One sentence instead of the app (refused account, unusable policy, exposed server without sign-in)."""

    def page() -> None:
        st.title("anodet")
        st.error(message)
        if principal is not None:
            _sign_out_button(principal, st)

    _only_page(page, "anodet", paths)


def _only_page(body: Any, title: str, paths: Iterable[str]) -> NoReturn:
    """Run ``body`` as the only page, also at the app's page URLs (a shared deep link gets it, not "page not found")."""
    aliases = [st.Page(body, title=title, url_path=p) for p in dict.fromkeys(paths) if p and p != "sign-in"]
    st.navigation([st.Page(body, title=title, url_path="sign-in", default=True), *aliases], position="hidden").run()
    st.stop()


def _sign_out(principal: Principal) -> None:
    audit.record(principal, SIGN_OUT, audit.OK)
    st.session_state.pop(_AUDITED_KEY, None)
    st.logout()


def _sign_out_button(principal: Principal, where: Any) -> None:
    where.button("Sign out", icon=":material/logout:", key="anodet_sign_out", on_click=_sign_out, args=(principal,))


def _audit_once(principal: Principal, action: str, outcome: str, claims: Mapping[str, Any],
                detail: str | None = None) -> None:
    """One audit line per sign-in (its ID token's ``iat`` and ``nonce``), not one per rerun, reload or tab."""
    key = (principal.id, action, outcome, claims.get("iat"), claims.get("nonce"))
    if st.session_state.get(_AUDITED_KEY) == key:
        return
    st.session_state[_AUDITED_KEY] = key
    with _SEEN_LOCK:
        if key in _SEEN:
            return
        _SEEN[key] = None
        while len(_SEEN) > _SEEN_MAX:
            _SEEN.popitem(last=False)
    audit.record(principal, action, outcome, detail=detail)


def _local_gate(paths: list[str]) -> Principal:
    address = st.get_option("server.address")
    if address and not is_loopback(str(address)) and os.environ.get(NO_AUTH_ENV) != "1":
        _stop_page(f"This server listens on {address} without sign-in, so it shows nothing: configure sign-in "
                   "([auth] in .streamlit/secrets.toml) or start it with `bash run.sh --no-auth`.", None, paths)
    return identity.local_principal()


def _url_paths(pages: Mapping[str, Iterable[Any]] | Iterable[Any]) -> list[str]:
    groups = pages.values() if isinstance(pages, Mapping) else [pages]
    return [str(getattr(p, "url_path", "") or "") for group in groups for p in group]


def gate(pages: Mapping[str, Iterable[Any]] | Iterable[Any] = ()) -> Principal:
    """Return the acting principal, or draw the sign-in page and stop the run; call before anything else is drawn.

    ``pages``: the app's ``st.Page`` objects (as given to ``st.navigation``); their URLs show the
    sign-in page too before sign-in.
    """
    paths = _url_paths(pages)
    section = auth_section()
    if section is None:
        local = _local_gate(paths)
        st.session_state[PRINCIPAL_KEY] = local
        return local
    st.session_state.pop(PRINCIPAL_KEY, None)
    try:
        policy = load_policy()
    except PolicyError as exc:
        logger.error("sign-in refused to everyone: %s", exc)
        _stop_page("Sign-in is unavailable: the server's access policy cannot be used; the operator's log says why.",
                   None, paths)
    if not st.user.get("is_logged_in", False):
        _sign_in_page(None, section, paths)
    claims = _user_claims()
    principal = identity.from_claims(claims, policy)
    if principal is None:
        who = identity.Principal(id=str(claims.get("email") or claims.get("sub") or "unknown"), name="",
                                 role=identity.VIEWER, source=identity.OIDC)
        _audit_once(who, SIGN_IN, audit.DENIED, claims, "the access policy gives this account no role")
        from anodet.textsafe import markdown_text

        _stop_page(f"The account {markdown_text(who.id)} may not use this server; ask its operator to add it to the "
                   "access policy.", who, paths)
    end = session_end(claims, policy)
    if end is None or time.time() >= end:
        _audit_once(principal, "session-expired", audit.OK, claims)
        _sign_in_page("Your sign-in has expired; sign in again.", section, paths)
    _audit_once(principal, SIGN_IN, audit.OK, claims)
    st.session_state[PRINCIPAL_KEY] = principal
    return principal


def current_principal() -> Principal:
    """The principal of this session (as :func:`gate` found it on this run)."""
    principal = st.session_state.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else gate()


def account_box(principal: Principal) -> None:
    """The sidebar's account: who is signed in, their role, and Sign out (or a warning when nobody needs to sign in)."""
    from anodet.textsafe import markdown_text

    if principal.source == identity.OIDC:
        box = st.sidebar.container(border=True)
        name = "" if principal.name == principal.id else f"{markdown_text(principal.name)} · "
        box.caption(f"Signed in: {name}**{markdown_text(principal.id)}** · {principal.role}")
        _sign_out_button(principal, box)
    elif os.environ.get(NO_AUTH_ENV) == "1" and not is_loopback(str(st.get_option("server.address") or "")):
        st.sidebar.caption("No sign-in on this server (--no-auth): everyone who can reach it is an admin.")
