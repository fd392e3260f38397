"""Column names, numeric and text columns, the reference's 18 features, label views and attack categories
of KDD Cup 99."""

from __future__ import annotations

RAW_COLUMNS: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
"""The 41 feature columns of a raw KDD line, in file order (the label follows them)."""

TEXT_COLUMNS: tuple[str, ...] = ("protocol_type", "service", "flag")

NUMERIC_COLUMNS: tuple[str, ...] = tuple(c for c in RAW_COLUMNS if c not in TEXT_COLUMNS)
"""The 38 numeric columns of a KDD record: parsed as numbers wherever an input names them."""

FEATURES: tuple[str, ...] = (
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
"""The 18 continuous features of the reference prototype (the ``kdd18`` feature set)."""

NORMAL = "normal"
NOVEL = "novel"
CATEGORIES: tuple[str, ...] = (NORMAL, "dos", "probe", "r2l", "u2r", NOVEL)
"""Attack categories; ``novel`` holds the attack types that appear only in the test file."""

ATTACK_CATEGORIES: tuple[str, ...] = CATEGORIES[1:]

LABEL_VIEWS: tuple[str, ...] = ("reference", "true")
"""``reference``: as the prototype published it (novel attacks count as normal).
``true``: every non-normal record is an attack."""

LABEL_VIEW_HELP = {
    "reference": "As the reference prototype labelled it: the 17 attack types seen only in "
    "the test file count as normal.",
    "true": "Every non-normal record counts as an attack, novel types included.",
}


TRAINING_ATTACK_TYPES: dict[str, str] = {
    "back": "dos", "land": "dos", "neptune": "dos", "pod": "dos", "smurf": "dos", "teardrop": "dos",
    "ipsweep": "probe", "nmap": "probe", "portsweep": "probe", "satan": "probe",
    "ftp_write": "r2l", "guess_passwd": "r2l", "imap": "r2l", "multihop": "r2l", "phf": "r2l",
    "spy": "r2l", "warezclient": "r2l", "warezmaster": "r2l",
    "buffer_overflow": "u2r", "loadmodule": "u2r", "perl": "u2r", "rootkit": "u2r",
}
"""The 22 attack types of KDD's ``training_attack_types`` file and their categories.

Kept here so that labelling a user's file needs no raw data; a test checks it against the file.
"""

LABEL_COLUMN_NAMES: tuple[str, ...] = ("label", "attack", "class", "attack_type")
"""Header names recognised (case-insensitively) as a label column, in every input path."""


def label_column(view: str) -> str:
    """Name of the 0/1 label column for a label view."""
    if view not in LABEL_VIEWS:
        raise ValueError(f"unknown label view {view!r}; choose one of {', '.join(LABEL_VIEWS)}")
    return f"label_{view}"
