"""Who may do what: principals, the policy file, permission checks and the audit log (Streamlit-free).

The library's actions take an optional ``principal`` (the command line's operator when omitted)
and call :func:`require` before they change anything; the app passes the signed-in user.
"""

from anodet.access.audit import record
from anodet.access.identity import ADMIN, ANALYST, ROLES, VIEWER, Principal, cli_principal, local_principal
from anodet.access.permissions import (
    ACTIONS,
    PRIVATE,
    SHARING,
    TEAM,
    AccessDenied,
    allowed,
    may_see,
    refusal,
    require,
)
from anodet.access.policy import Policy, PolicyError, load_policy

__all__ = ["ACTIONS", "ADMIN", "ANALYST", "PRIVATE", "ROLES", "SHARING", "TEAM", "VIEWER", "AccessDenied", "Policy",
           "PolicyError", "Principal", "allowed", "cli_principal", "load_policy", "local_principal", "may_see",
           "record", "refusal", "require"]
