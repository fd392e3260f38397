"""A session's unconfirmed uploads, removed when the session ends.

Streamlit releases a session-scoped resource when its browser tab disconnects (closed, reloaded,
gone) and when the session shuts down; the release removes the upload folders the session wrote
(:func:`anodet.datasets.uploads.discard`). A tab that reconnects to the same session still has
its files in Streamlit's memory, and the page writes them again on its next run. Uploads of
sessions that end without Streamlit noticing (a server killed mid-session) are the sweeper's
(:func:`anodet.datasets.uploads.start_sweeper`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import streamlit as st

from anodet.datasets import uploads

logger = logging.getLogger(__name__)


class SessionFiles:
    """The upload files one session wrote and has not confirmed (thread-safe)."""

    def __init__(self) -> None:
        self._paths: set[Path] = set()
        self._lock = threading.Lock()

    def add(self, path: Path) -> None:
        with self._lock:
            self._paths.add(Path(path))

    def drop(self, paths: list[Path | None]) -> None:
        with self._lock:
            self._paths.difference_update(Path(p) for p in paths if p is not None)

    def paths(self) -> list[Path]:
        with self._lock:
            return sorted(self._paths)

    def remove_all(self) -> None:
        """Remove every upload folder of the session (only folders under ``data/uploads/``)."""
        with self._lock:
            paths, self._paths = list(self._paths), set()
        try:
            uploads.discard(paths)
        except OSError as exc:  # never fail a disconnect; the sweeper removes what is left
            logger.warning("removing a closed session's uploads failed: %s", exc)


def _release(files: SessionFiles) -> None:
    files.remove_all()


@st.cache_resource(scope="session", on_release=_release, show_spinner=False)
def _files() -> SessionFiles:
    return SessionFiles()


def track(path: Path | None) -> Path | None:
    """Remember an upload file of this session (removed when the session ends); returns ``path``."""
    if path is not None:
        _files().add(path)
    return path


def confirmed(paths: list[Path | None]) -> None:
    """Uploads confirmed as a dataset (moved, already removed): nothing to remove for them at the end."""
    _files().drop(paths)
