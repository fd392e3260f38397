"""What each role may do: one table, one check (:func:`require`) that the library's actions call.

* viewer: reads every page, moves thresholds, downloads reports ("view");
* analyst: also uploads and scores files and declares datasets; replaces, trains, deletes and
  shares the datasets they own, and cancels the trainings they started;
* admin: everything, including training and managing other people's datasets.

Who sees a dataset at all is :func:`may_see`: its owner and the admins, and everyone when its
owner shares it with the team.

A refusal is an :class:`AccessDenied` whose message is one sentence, and a line in the audit log.
Streamlit-free.
"""

from __future__ import annotations

from anodet.access import audit
from anodet.access.identity import ADMIN, ANALYST, ROLES, VIEWER, Principal, cli_principal

ACTIONS = ("view", "upload", "score", "declare", "replace", "train", "delete", "share", "cancel")
MIN_ROLE: dict[str, str] = {"view": VIEWER, "upload": ANALYST, "score": ANALYST, "declare": ANALYST,
                            "replace": ANALYST, "train": ANALYST, "delete": ANALYST, "share": ANALYST,
                            "cancel": ANALYST}
"""The least role an action needs."""
OWNER_ONLY = frozenset({"replace", "train", "delete", "share", "cancel"})
"""Actions on a resource that a non-admin may take only on what they own (an unknown owner: admins only);
a training's owner is whoever started it."""
VERBS = {"view": "view this server's data", "upload": "upload files", "score": "score files",
         "declare": "declare datasets", "replace": "replace", "train": "train", "delete": "delete",
         "share": "share", "cancel": "cancel"}
PRIVATE, TEAM = "private", "team"
SHARING = (PRIVATE, TEAM)
"""Who sees a dataset besides its owner and the admins: nobody (private, the default) or every signed-in user."""


class AccessDenied(PermissionError):
    """An action its actor may not take; the message is one sentence saying who, what, and what would allow it."""

    def __init__(self, message: str, principal: Principal, action: str, resource: str | None = None) -> None:
        super().__init__(message)
        self.principal, self.action, self.resource = principal, action, resource


def _check_action(action: str) -> None:
    if action not in MIN_ROLE:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")


def _named(resource: str | None) -> str:
    """``dataset:flows`` as a sentence says it: ``dataset 'flows'``."""
    if not resource:
        return "it"
    kind, sep, name = resource.partition(":")
    return f"{kind} {name!r}" if sep else resource


def refusal(principal: Principal, action: str, resource: str | None = None,
            resource_owner: str | None = None) -> str | None:
    """Why ``principal`` may not take ``action`` (one sentence), or None when they may."""
    _check_action(action)
    need = MIN_ROLE[action]
    article = "an" if principal.role[0] in "aeiou" else "a"
    what = VERBS[action] + (f" {_named(resource)}" if action in OWNER_ONLY else "")
    if principal.rank < ROLES.index(need):
        return (f"{principal.id} is {article} {principal.role} and may not {what}: that needs the {need} role, "
                "which an admin gives in the access policy.")
    if action in OWNER_ONLY and principal.role != ADMIN and resource_owner != principal.id:
        whose = f"it belongs to {resource_owner}" if resource_owner else "it has no recorded owner"
        return f"{principal.id} may not {what}: {whose}, and only its owner or an admin may."
    return None


def may_see(principal: Principal | None, owner: str | None, sharing: str | None) -> bool:
    """Does ``principal`` (the command line's operator when None) see a dataset at all: an admin, its owner, or
    anyone when it is shared with the team. One without a recorded owner is seen by admins only."""
    actor = principal if principal is not None else cli_principal()
    return actor.role == ADMIN or sharing == TEAM or (owner is not None and owner == actor.id)


def allowed(principal: Principal, action: str, resource_owner: str | None = None) -> bool:
    """May ``principal`` take ``action`` (on a resource owned by ``resource_owner``)?
    No audit line: for drawing pages."""
    return refusal(principal, action, None, resource_owner) is None


def require(principal: Principal | None, action: str, resource_owner: str | None = None,
            resource: str | None = None) -> Principal:
    """Return the acting principal (the command line's operator when None) if they may take ``action``.

    Otherwise record the refusal in the audit log and raise :class:`AccessDenied`. ``resource``
    names what the action is on (``dataset:flows``) for the message and the audit line.
    """
    actor = principal if principal is not None else cli_principal()
    why = refusal(actor, action, resource, resource_owner)
    if why is None:
        return actor
    audit.record(actor, action, audit.DENIED, resource=resource, detail=why)
    raise AccessDenied(why, actor, action, resource)
