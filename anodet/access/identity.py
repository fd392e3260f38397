"""Who is acting: a signed-in user, the local single user, or the command line (the operator).

A :class:`Principal` is what every permission check and audit line is about. It is built from
the ID token's claims (``st.user``) and the policy file (:mod:`anodet.access.policy`) for a
signed-in user, and stands for the operator on the command line and in local single-user mode
(no ``[auth]`` configured), where it is an admin. Streamlit-free.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anodet.access.policy import Policy

VIEWER, ANALYST, ADMIN = "viewer", "analyst", "admin"
ROLES = (VIEWER, ANALYST, ADMIN)
"""From least to most trusted: each role may do what the ones before it may."""
OIDC, LOCAL, CLI = "oidc", "local", "cli"
SOURCES = (OIDC, LOCAL, CLI)


@dataclass(frozen=True)
class Principal:
    """One actor. ``id`` is the lower-case e-mail of a signed-in user (their ``sub`` when the provider sends
    no e-mail), ``local`` or ``cli:<account>``; it is what audit lines and dataset owners hold."""

    id: str
    name: str
    role: str
    groups: tuple[str, ...] = ()
    source: str = OIDC
    subject: str = ""
    """The provider's ``iss`` and ``sub`` (stable even when an e-mail changes); empty outside OIDC."""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {self.source!r}")

    @property
    def rank(self) -> int:
        return ROLES.index(self.role)

    def describe(self) -> str:
        """``alice@example.com (analyst)``: how sentences and the sidebar name the actor."""
        return f"{self.id} ({self.role})"

    def to_json(self) -> dict[str, Any]:
        """What an audit line records about the actor."""
        out: dict[str, Any] = {"id": self.id, "role": self.role, "source": self.source}
        if self.subject:
            out["subject"] = self.subject
        return out


def cli_principal() -> Principal:
    """The command line: the operator who runs it, with full access (admin) to the data folder."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        account = "operator"
    return Principal(id=f"cli:{account}", name=f"command line ({account})", role=ADMIN, source=CLI)


def as_user(email: str, policy: Policy) -> Principal | None:
    """The command line acting as the signed-in user ``email`` would (their role from ``policy``, their datasets
    and quotas), or None when the policy gives them no role; audit lines name the operator's account as the
    subject, so they say who really acted."""
    ident = email.strip().lower()
    role = policy.role_for(ident or None)
    if role is None or not ident:
        return None
    operator = cli_principal().id
    return Principal(id=ident, name=ident, role=role, source=OIDC, subject=f"{operator} acting as {ident}")


def local_principal() -> Principal:
    """The one user of an app started without sign-in (no ``[auth]`` in secrets.toml): an admin."""
    return Principal(id="local", name="local user", role=ADMIN, source=LOCAL)


def claim_list(value: object) -> tuple[str, ...]:
    """A groups claim as a tuple of names: providers send a list, a space- or comma-separated string, or nothing."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.replace(",", " ").split() if v)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if isinstance(v, (str, int)) and str(v))
    return ()


def from_claims(claims: Mapping[str, Any], policy: Policy) -> Principal | None:
    """The principal for a signed-in user's ID-token claims, or None when the policy gives them no role.

    An e-mail the provider marks unverified (``email_verified`` false) is neither matched against the
    policy's users and domains nor used as the id, so nobody becomes someone else by typing their address.
    """
    verified = claims.get("email_verified")
    email = str(claims.get("email") or "").strip().lower()
    if verified is False or str(verified).lower() == "false":
        email = ""
    sub = str(claims.get("sub") or "").strip()
    groups = claim_list(claims.get(policy.groups_claim))
    role = policy.role_for(email or None, groups)
    if role is None:
        return None
    ident = email or (f"sub:{sub}" if sub else "unknown")
    name = str(claims.get("name") or claims.get("preferred_username") or email or sub or "signed-in user")
    iss = str(claims.get("iss") or "")
    return Principal(id=ident, name=name, role=role, groups=groups, source=OIDC, subject=f"{iss}|{sub}" if sub else "")
