"""Per-user quotas on a team server: disk, datasets, trainings queued and file-inspection work.

The limits are the policy file's ``[quotas]`` table (:mod:`anodet.access.policy`)::

    [quotas]
    disk_mb = 2000              # a user's datasets on disk: kept input files, splits and model stores
    uploads_mb = 1000           # a user's uploaded files not yet confirmed as a dataset
    datasets = 10               # datasets a user owns
    trainings = 2               # trainings a user has queued or running at once
    inspection_seconds = 120    # seconds of file inspection a user may spend in any 10 minutes

They bind signed-in users; the command line and a local single user are the operator and have
none. A refusal is a :class:`QuotaExceeded` (an :class:`~anodet.access.AccessDenied`): one
sentence, also in the audit log. The checks take the usage the caller measured (datasets and
uploads know their own files), so this module stays Streamlit- and dataset-free.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, fields
from typing import Any, NoReturn

from anodet.access import audit
from anodet.access.identity import OIDC, Principal
from anodet.access.permissions import AccessDenied

MB = 2**20
INSPECTION_WINDOW_S = 600.0
"""The window over which a user's inspection seconds are counted."""


@dataclass(frozen=True)
class Quotas:
    """The limits of one user (see the module's docstring)."""

    disk_mb: float = 2000
    uploads_mb: float = 1000
    datasets: int = 10
    trainings: int = 2
    inspection_seconds: float = 120


class QuotaExceeded(AccessDenied):
    """An action that would take a user past a quota; the message is one sentence saying which and what to do."""


def parse_quotas(table: Any, path: str) -> Quotas:
    """Validate a policy file's ``[quotas]`` table (a PolicyError, one sentence, for a bad one)."""
    from anodet.access.policy import PolicyError

    if not isinstance(table, dict):
        raise PolicyError(f"The access policy {path} has quotas = {table!r}; write it as a [quotas] table.")
    known = {f.name: f for f in fields(Quotas)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise PolicyError(f"The access policy {path} has an unknown quota {key!r}; the quotas are "
                              f"{', '.join(known)}.")
        whole = known[key].type in ("int", int)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (whole and value % 1):
            raise PolicyError(f"The access policy {path} has quotas.{key} = {value!r}; give a "
                              f"{'whole number' if whole else 'number'} of at least 0.")
        values[key] = int(value) if whole else float(value)
    return Quotas(**values)


def limits() -> Quotas:
    """The quotas of the policy in force (the defaults without a policy file or when it cannot be read: the
    sign-in gate then keeps everyone out anyway)."""
    from anodet.access.policy import PolicyError, load_policy

    try:
        return load_policy().quotas
    except PolicyError:
        return Quotas()


def bound(principal: Principal | None) -> bool:
    """Do quotas apply to ``principal``: signed-in users, not the operator (command line, local single user)?"""
    return principal is not None and principal.source == OIDC


def _refuse(principal: Principal, action: str, resource: str | None, message: str) -> NoReturn:
    audit.record(principal, action, audit.DENIED, resource=resource, detail=message)
    raise QuotaExceeded(message, principal, action, resource)


def _mb(n: float) -> str:
    return f"{n / MB:,.0f} MB" if n >= 10 * MB else f"{n / MB:,.1f} MB"


def check_datasets(principal: Principal | None, owned: int, resource: str | None = None) -> None:
    """Refuse a new dataset to a user who already owns the most they may."""
    if not bound(principal):
        return
    assert principal is not None
    limit = limits().datasets
    if owned >= limit:
        _refuse(principal, "declare", resource,
                f"{principal.id} owns {owned} dataset(s), the most one user may have on this server ({limit}); "
                "delete one on Your data, or ask an admin to raise the quota.")


def check_disk(principal: Principal | None, owner: str, used: int, adding: int, action: str,
               resource: str | None = None) -> None:
    """Refuse what would take ``owner``'s datasets past the disk quota (``used`` + ``adding`` bytes)."""
    if not bound(principal):
        return
    assert principal is not None
    limit = limits().disk_mb * MB
    if used + adding > limit:
        whose = "your" if owner == principal.id else f"{owner}'s"
        now = (f"This would bring {whose} datasets to {_mb(used + adding)}" if adding else
               f"{whose.capitalize()} datasets take {_mb(used)}")
        _refuse(principal, action, resource,
                f"{now} on this server, over the quota of {_mb(limit)}; delete a dataset on Your data, or ask an "
                "admin to raise the quota.")


def check_uploads(principal: Principal | None, used: int, adding: int, resource: str | None = None) -> None:
    """Refuse an upload that would take a user's unconfirmed uploads past their quota."""
    if not bound(principal):
        return
    assert principal is not None
    limit = limits().uploads_mb * MB
    if used + adding > limit:
        _refuse(principal, "upload", resource,
                f"This upload would bring your unconfirmed uploads to {_mb(used + adding)}, over the quota of "
                f"{_mb(limit)}; confirm or remove the files you uploaded before (they go when you close the page), "
                "or ask an admin to raise the quota.")


def check_trainings(principal: Principal | None, active: int, resource: str | None = None) -> None:
    """Refuse a training to a user who already has the most queued or running."""
    if not bound(principal):
        return
    assert principal is not None
    limit = limits().trainings
    if active >= limit:
        _refuse(principal, "train", resource,
                f"You already have {active} training(s) queued or running, the most one user may have at once "
                f"({limit}); wait for one to end or cancel it.")


class InspectionBudget:
    """Seconds of file inspection each user spent in the last :data:`INSPECTION_WINDOW_S` (this server process)."""

    def __init__(self) -> None:
        self._spent: dict[str, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def used(self, who: str, now: float | None = None) -> tuple[float, float]:
        """(seconds spent in the window, seconds until the oldest of them leaves it)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            spent = self._spent.get(who)
            if not spent:
                return 0.0, 0.0
            while spent and now - spent[0][0] > INSPECTION_WINDOW_S:
                spent.popleft()
            total = sum(s for _, s in spent)
            return total, (INSPECTION_WINDOW_S - (now - spent[0][0])) if spent else 0.0

    def charge(self, who: str, seconds: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._spent.setdefault(who, deque()).append((now, float(seconds)))
            if len(self._spent) > 10_000:  # forget users idle longest: the budget is a guard, not a ledger
                for key in list(self._spent)[:1000]:
                    del self._spent[key]

    def check(self, principal: Principal | None, resource: str | None = None) -> None:
        """Refuse a new (uncached) inspection to a user who spent their inspection seconds in the window."""
        if not bound(principal):
            return
        assert principal is not None
        limit = limits().inspection_seconds
        used, wait = self.used(principal.id)
        if used >= limit:
            _refuse(principal, "inspect", resource,
                    f"You have used {used:.0f} s of file inspection in the last {INSPECTION_WINDOW_S / 60:.0f} "
                    f"minutes, the most one user may ({limit:.0f} s); try again in {max(wait, 1):.0f} s (options you "
                    "chose before are kept and cost nothing).")


BUDGET = InspectionBudget()
"""The server's inspection budget (one per process)."""
