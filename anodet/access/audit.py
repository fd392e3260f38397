"""The audit log: one JSON object per line, appended, never rewritten.

Each line says who (the principal's id, role and source), what (the action), when (UTC, ISO 8601),
the outcome (``ok``, ``denied``, ``failed``, ``started``, ``cancelled``) and on what (``dataset:NAME``, a file
name), with an optional one-sentence detail. The file is ``audit.jsonl`` in the data folder
(:func:`anodet.datasets.kdd.cache_root`), or ``$ANODET_AUDIT_LOG``.

Safe with several writers (app sessions, background trainings, the command line, other processes):
the file is opened with O_APPEND and each line is a single ``write`` of a few hundred bytes, which
the kernel appends whole. Writing never blocks an action: a log that cannot be written is reported
in the server's log. Streamlit-free.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anodet.access.identity import Principal

AUDIT_ENV = "ANODET_AUDIT_LOG"
FILE_NAME = "audit.jsonl"
OK, DENIED, FAILED, STARTED, CANCELLED = "ok", "denied", "failed", "started", "cancelled"
MAX_DETAIL = 500
"""Characters of detail kept per line (lines stay small, so each is one short append)."""

logger = logging.getLogger(__name__)


def log_path() -> Path:
    """``$ANODET_AUDIT_LOG``, else ``audit.jsonl`` in the data folder."""
    named = os.environ.get(AUDIT_ENV)
    if named:
        return Path(named)
    from anodet.datasets.kdd import cache_root

    return cache_root() / FILE_NAME


def record(principal: Principal, action: str, outcome: str, resource: str | None = None,
           detail: str | None = None) -> dict[str, Any]:
    """Append one line (who, what, when, outcome, resource, detail) and return it as written."""
    line: dict[str, Any] = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                            "actor": principal.to_json(), "action": action, "outcome": outcome}
    if resource is not None:
        line["resource"] = str(resource)
    if detail:
        line["detail"] = str(detail)[:MAX_DETAIL]
    data = (json.dumps(line, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        logger.error("the audit log %s cannot be written (%s); lost line: %s", path, exc, data.decode().strip())
    return line


def read(path: Path | None = None) -> list[dict[str, Any]]:
    """Every line of the audit log, oldest first (a torn or foreign line is skipped)."""
    target = path or log_path()
    try:
        text = target.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for raw in text.splitlines():
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out
