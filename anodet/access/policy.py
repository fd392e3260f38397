"""The access policy: which signed-in user gets which role, read from a small TOML file.

The file is ``$ANODET_POLICY`` when set, else ``.streamlit/anodet-policy.toml`` in the folder the app
runs from (beside Streamlit's own ``secrets.toml``). Without a file every signed-in user is a viewer.
Format (every key optional)::

    default_role = "viewer"     # users no rule names: viewer, analyst, admin, or "none" to keep them out
    groups_claim = "groups"     # the ID-token claim that lists a user's groups
    session_hours = 8           # a sign-in lasts at most this long (default: until the ID token expires)

    [users]                     # by e-mail: the most specific rule, it wins over domains and groups
    "alice@example.com" = "admin"
    "mallory@example.com" = "none"

    [domains]                   # by e-mail domain
    "example.com" = "analyst"

    [groups]                    # by a name in the groups claim
    "secops" = "analyst"

    [quotas]                    # per signed-in user (see anodet.access.quotas for every key)
    disk_mb = 2000
    datasets = 10

A user named in ``[users]`` gets that role; otherwise the highest role among their domain and
groups; otherwise ``default_role``. Every problem with the file is a :class:`PolicyError` whose
message is one sentence naming the file and the key. Streamlit-free.
"""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anodet.access.identity import ROLES, VIEWER
from anodet.access.quotas import Quotas, parse_quotas

POLICY_ENV = "ANODET_POLICY"
DEFAULT_FILE = Path(".streamlit") / "anodet-policy.toml"
NONE = "none"
"""A role value that keeps a user out (signed in, but refused)."""
_KEYS = {"default_role", "groups_claim", "session_hours", "users", "domains", "groups", "quotas"}
_TABLES = ("users", "domains", "groups")


class PolicyError(ValueError):
    """The policy file cannot be used; the message is one sentence saying where and how to fix it."""


@dataclass(frozen=True)
class Policy:
    """Rules from e-mail, domain and group to role; ``None`` as a role means "not let in"."""

    users: dict[str, str | None] = field(default_factory=dict)
    domains: dict[str, str | None] = field(default_factory=dict)
    groups: dict[str, str | None] = field(default_factory=dict)
    default_role: str | None = VIEWER
    groups_claim: str = "groups"
    session_hours: float | None = None
    source: Path | None = None
    quotas: Quotas = field(default_factory=Quotas)

    def role_for(self, email: str | None, groups: tuple[str, ...] = ()) -> str | None:
        """The role of a user with this (verified, lower-case) e-mail and these groups; None: not let in."""
        if email and email in self.users:
            return self.users[email]
        found: list[str] = []
        if email and "@" in email:
            domain = email.rsplit("@", 1)[1]
            role = self.domains.get(domain)
            if role is not None:
                found.append(role)
        found += [r for g in groups if (r := self.groups.get(g)) is not None]
        if found:
            return max(found, key=ROLES.index)
        return self.default_role


def policy_path() -> Path | None:
    """The policy file in force: ``$ANODET_POLICY``, else ``.streamlit/anodet-policy.toml`` when it exists."""
    named = os.environ.get(POLICY_ENV)
    if named:
        return Path(named)
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


def load_policy(path: Path | str | None = None) -> Policy:
    """The policy from ``path`` (default :func:`policy_path`); the built-in one (everyone a viewer) without a file.

    A file named by ``$ANODET_POLICY`` that does not exist is an error: the operator meant one.
    Parsed once per file version (path and modification time).
    """
    target = Path(path) if path is not None else policy_path()
    if target is None:
        return Policy()
    try:
        stamp = target.stat().st_mtime_ns
    except OSError:
        raise PolicyError(f"The access policy {target} cannot be read; create it or unset {POLICY_ENV}.") from None
    return _load(str(target), stamp)


@functools.lru_cache(maxsize=4)
def _load(path: str, stamp: int) -> Policy:
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"The access policy {path} cannot be read ({exc.strerror}).") from None
    except UnicodeDecodeError:
        raise PolicyError(f"The access policy {path} is not UTF-8 text; save it as a TOML file.") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"The access policy {path} is not valid TOML ({exc}).") from None
    return parse_policy(doc, path)


def _role(value: Any, where: str, path: str) -> str | None:
    if value == NONE:
        return None
    if value not in ROLES:
        raise PolicyError(f"The access policy {path} gives {where} the role {value!r}; use one of "
                          f"{', '.join(ROLES)} or {NONE!r}.")
    return str(value)


def parse_policy(doc: dict[str, Any], path: str = "(policy)") -> Policy:
    """Validate a parsed policy document (see the module's docstring for the format)."""
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise PolicyError(f"The access policy {path} has an unknown key {unknown[0]!r}; the keys are "
                          f"{', '.join(sorted(_KEYS))}.")
    tables: dict[str, dict[str, str | None]] = {}
    for name in _TABLES:
        table = doc.get(name, {})
        if not isinstance(table, dict):
            raise PolicyError(f"The access policy {path} has {name} = {table!r}; write it as a [{name}] table of "
                              "\"name\" = \"role\" lines.")
        entries: dict[str, str | None] = {}
        for key, value in table.items():
            if not isinstance(value, str):
                raise PolicyError(f"The access policy {path} gives {name}.{key!r} the value {value!r}; give a role "
                                  f"as text, one of {', '.join(ROLES)} or {NONE!r}.")
            norm = key if name == "groups" else key.strip().lower().lstrip("@")
            if name == "users" and "@" not in norm:
                raise PolicyError(f"The access policy {path} lists {key!r} under [users], which is not an e-mail "
                                  "address; put domains under [domains] and groups under [groups].")
            entries[norm] = _role(value, f"{name}.{key!r}", path)
        tables[name] = entries
    default = _role(doc.get("default_role", VIEWER), "default_role", path)
    claim = doc.get("groups_claim", "groups")
    if not isinstance(claim, str) or not claim:
        raise PolicyError(f"The access policy {path} has groups_claim = {claim!r}; give the claim's name as text, "
                          "e.g. \"groups\".")
    hours = doc.get("session_hours")
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, (int, float)) or not hours > 0):
        raise PolicyError(f"The access policy {path} has session_hours = {hours!r}; give a positive number of hours, "
                          "e.g. 8.")
    quotas = parse_quotas(doc.get("quotas", {}), path)
    return Policy(tables["users"], tables["domains"], tables["groups"], default, claim,
                  float(hours) if hours is not None else None, Path(path), quotas)
