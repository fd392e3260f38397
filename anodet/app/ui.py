"""Shared widgets and the session's choices that pages set: thresholds per detector and label view, the
detector in focus, links that carry them, failures shown as one sentence.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import streamlit as st

from anodet.app.loaders import DATA_FIX, get_store, name_format
from anodet.app.state import DATASET_KEY, LABEL_VIEW_KEY, current_dataset, label_view, principal
from anodet.datasets import catalog
from anodet.datasets.errors import DatasetError
from anodet.datasets.kdd import DataError
from anodet.evaluation import leaderboard, metrics
from anodet.store.core import StoreError
from anodet.textsafe import markdown_text, without_paths

logger = logging.getLogger(__name__)


FOCUS_KEY = "focus_detector"
"""Session key of the detector the user is looking at; shared by the explorer and flagged records."""


def get_thresholds(names: Sequence[str]) -> dict[str, float]:
    """The session's threshold of every named detector."""
    return {n: get_threshold(n) for n in names}


def detector_picker(label: str, names: Sequence[str], key: str, help: str | None = None,
                    default: str | None = None) -> str:
    """A detector selectbox that remembers the choice across pages (under :data:`FOCUS_KEY`).

    A widget's own state is dropped when its page is left; the shared key is not.
    """
    names = list(names)
    focus = st.session_state.get(FOCUS_KEY, default or names[0])
    if st.session_state.get(key) not in names:
        st.session_state[key] = focus if focus in names else names[0]

    def _remember() -> None:
        st.session_state[FOCUS_KEY] = st.session_state[key]

    return st.selectbox(label, names, key=key, format_func=name_format(names), on_change=_remember, help=help)


def metric_tiles(values: dict[str, float], keys: Sequence[str], columns: int | None = None) -> None:
    """One ``st.metric`` per metric, each with its help text from :data:`metrics.METRIC_HELP`."""
    cols = st.columns(columns or len(keys))
    for i, k in enumerate(keys):
        value = values.get(k, float("nan"))
        cols[i % len(cols)].metric(leaderboard.METRIC_LABELS.get(k, k), "–" if np.isnan(value) else f"{value:.3f}",
                                   help=metrics.METRIC_HELP.get(k))


TIMING_ENV = "ANODET_UI_TIMING"


@contextmanager
def timed(label: str) -> Iterator[None]:
    """With ``$ANODET_UI_TIMING`` set, print how long a block of a page took on the server.

    ``bench/bench_ui.py`` reads these lines from the server's output to report server-side
    rerun times next to what the browser measures.
    """
    if not os.environ.get(TIMING_ENV):
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        print(f"anodet-timing {label} {(time.perf_counter() - start) * 1000:.2f} ms", file=sys.stderr, flush=True)


THRESHOLDS_KEY = "thresholds"
"""Session key of the chosen thresholds: ``{label view: {detector: threshold}}``.

A threshold is kept per detector *and* label view: the validation-chosen defaults differ
between the views, so switching the view must not carry one view's threshold into the other.
"""


def session_thresholds(view: str | None = None) -> dict[str, float]:
    """The session's chosen thresholds of one label view (default: the current one), editable."""
    return st.session_state.setdefault(THRESHOLDS_KEY, {}).setdefault(view or label_view(), {})


def get_threshold(name: str, view: str | None = None) -> float:
    """The session's threshold for a detector under a label view; the validation best-F1 one until set."""
    view = view or label_view()
    chosen = session_thresholds(view)
    if name not in chosen:
        chosen[name] = get_store(loaded=False).default_threshold(name, view)
    return float(chosen[name])


def set_threshold(name: str, value: float, view: str | None = None) -> None:
    """Keep ``value`` as the detector's threshold for this session and label view (every page uses it)."""
    session_thresholds(view)[name] = float(value)


URL_APPLIED_KEY = "_anodet_url_applied"


URL_PROBLEMS_KEY = "_anodet_url_problems"


EXPLORER_KEYS = ("explorer_detector", "explorer_compare")
"""Session keys of the explorer's two detector pickers, which a shared link can preset."""


def apply_url_state() -> None:
    """Once per session, before any widget is drawn: the label view, detectors and thresholds a link names.

    A link is ``?view=true&detector=pca&compare=ocsvm&threshold=pca:0.51&threshold=ocsvm:1.2``
    (what :func:`set_explorer_url` writes). What cannot be used is listed for the page to say.
    """
    if st.session_state.get(URL_APPLIED_KEY):
        return
    st.session_state[URL_APPLIED_KEY] = True
    params = st.query_params
    problems: list[str] = []
    key = params.get("dataset")
    if key is not None:
        if key in catalog.available(principal()):
            st.session_state[DATASET_KEY] = key
        else:
            problems.append(f"the dataset {markdown_text(key)} is not one this server has trained")
    views = current_dataset().view_keys
    view = params.get("view")
    if view is not None:
        if view in views:
            st.session_state[LABEL_VIEW_KEY] = view
        else:
            problems.append(f"the label view {markdown_text(view)} is not one of {', '.join(views)}")
    wanted = [params.get("detector"), params.get("compare")]
    thresholds = params.get_all("threshold")
    if not any(wanted) and not thresholds:
        st.session_state[URL_PROBLEMS_KEY] = problems
        return
    names = get_store(loaded=False).names
    for key, name in zip(EXPLORER_KEYS, wanted, strict=True):
        if name is None:
            continue
        if name in names:
            st.session_state[key] = name
            if key == EXPLORER_KEYS[0]:
                st.session_state[FOCUS_KEY] = name
        else:
            problems.append(f"the detector {markdown_text(name)} is not in the model store")
    for item in thresholds:
        name, _, text = item.rpartition(":")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if name not in names:
            problems.append(f"the threshold {markdown_text(item)} names no detector of the model store")
        elif not np.isfinite(value):
            problems.append(f"the threshold of {markdown_text(name)} ({markdown_text(text)}) is not a finite number")
        else:
            set_threshold(name, value, view if view in views else None)
    st.session_state[URL_PROBLEMS_KEY] = problems


def url_problems() -> list[str]:
    """What the session's opening link named that could not be used (each a phrase), once."""
    return st.session_state.pop(URL_PROBLEMS_KEY, [])


def set_explorer_url(detectors: Sequence[str], view: str) -> None:
    """Keep the explorer's detectors, label view and thresholds in the URL, so a link reproduces them."""
    dataset = current_dataset()
    wanted = {"dataset": [] if dataset.builtin else [dataset.key], "view": [view], "detector": [detectors[0]],
              "compare": list(detectors[1:2]),
              "threshold": [f"{n}:{get_threshold(n, view)!r}" for n in detectors]}
    if all(st.query_params.get_all(k) == v for k, v in wanted.items()) and set(st.query_params) <= set(wanted):
        return
    st.query_params.from_dict({k: v for k, v in wanted.items() if v})


def show_failure(exc: Exception) -> None:
    """One sentence on what is wrong and what to do; never a stack trace, never a server path (names instead)."""
    said = without_paths(exc)
    if isinstance(exc, DataError):
        st.error(f"The KDD data is not available: {said}\n\n{DATA_FIX}")  # our sentence
    elif isinstance(exc, DatasetError):
        st.error(f"The dataset cannot be used: {markdown_text(said)}")
    elif isinstance(exc, StoreError):
        st.error(f"The model store cannot be used: {said}")
    else:
        logger.error("unexpected error on a page", exc_info=exc)
        st.error(f"Something went wrong: {type(exc).__name__}: {markdown_text(said)}. Reload the page; if it "
                 "persists, report it with the steps that led here (the server's log has the details).")


def selected(event: Any, kind: str) -> list[Any]:
    """The selected ``kind`` ("rows" or "points") of a dataframe's or chart's selection event ([] when none)."""
    selection = (event or {}).get("selection") or {}
    return list(selection.get(kind) or [])
