"""The threshold control: a Streamlit Components v2 element that answers any threshold in the browser.

While its handle is dragged (pointer, touch or keyboard), the browser redraws the histogram's
threshold line, the ROC and PR operating points, the metric tiles and the confusion matrix in
the same frame, from what :func:`anodet.app.threshold_control.payload.static_parts` sent once. Only the
released value comes back to Python, where it becomes the session's threshold for that
detector and label view, as every page uses it.

``control.js`` and ``control.css`` sit next to this file and are read at import: no iframe,
no npm build, no CDN, so the app works with no internet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from anodet.app.threshold_control.payload import without_static_parts

_HERE = Path(__file__).resolve().parent
COMPONENT_NAME = "anodet_threshold_control"

_mount = st.components.v2.component(
    COMPONENT_NAME,
    js=(_HERE / "control.js").read_text(encoding="utf-8"),
    css=(_HERE / "control.css").read_text(encoding="utf-8"),
)


def released_value(state: Any) -> float | None:
    """The threshold a release sent (``{"value": v, "at": ms}``), or None when there is none or it is unusable."""
    if isinstance(state, Mapping):
        state = state.get("threshold")
    if isinstance(state, Mapping):
        state = state.get("value")
    if isinstance(state, bool) or not isinstance(state, (int, float)):
        return None
    value = float(state)
    return value if value == value and abs(value) != float("inf") else None


SENT_KEY = "_anodet_threshold_control_sent"
"""Session key: the payload versions this session's browser already holds (it keeps them per tab)."""


def threshold_control(payload: dict[str, Any], key: str, on_release: Callable[[float], None]) -> None:
    """Draw the control for one detector; ``on_release(value)`` runs when a new threshold comes back.

    ``payload`` is :func:`anodet.app.threshold_control.payload.control_payload`'s result; its ``threshold``
    is where the handle is put whenever the server's value changed (a preset, an import). The
    static parts (scores grid, histogram, curves: ~120 kB) go to the browser once per version;
    later reruns send only the rest, which keeps a release's round trip short. A browser that
    lacks them (a reloaded module) asks again with the ``missing`` trigger.
    """
    sent: set[str] = st.session_state.setdefault(SENT_KEY, set())
    version = payload["version"]

    def _released() -> None:
        value = released_value(st.session_state.get(key))
        if value is not None:
            on_release(value)

    def _missing() -> None:
        sent.discard(version)

    data = without_static_parts(payload) if version in sent else payload
    sent.add(version)
    _mount(key=key, data=data, on_threshold_change=_released, on_missing_change=_missing)
