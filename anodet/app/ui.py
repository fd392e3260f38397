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
from anodet.evaluation.operating import OperatingPoint, OperatingPointError
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

    A widget's own state is dropped when its page is left; the shared key is not. Until the user chooses, the
    picker follows ``default`` (e.g. the best detector at the operating point, which changes with it).
    """
    names = list(names)
    chosen = st.session_state.get(FOCUS_KEY)
    if chosen not in names:
        st.session_state[key] = default if default in names else names[0]
    elif st.session_state.get(key) not in names:
        st.session_state[key] = chosen

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
    """The session's threshold for a detector under a label view: one moved by hand, else the operating
    point's (chosen on the validation split; the store's default preset until the user chooses a point)."""
    view = view or label_view()
    chosen = session_thresholds(view)
    if name in chosen:
        return float(chosen[name])
    return float(op_thresholds(view).get(name, get_store(loaded=False).default_threshold(name, view)))


def moved(names: Sequence[str], view: str | None = None) -> list[str]:
    """The detectors whose threshold was moved by hand away from the operating point's in this view."""
    chosen = session_thresholds(view)
    return [n for n in names if n in chosen]


OP_KEY = "operating_point"
"""Session key of the operating point (:class:`anodet.evaluation.operating.OperatingPoint`), one per session."""
OP_PARAMS = ("op", "preset", "fpr", "alerts", "records", "share", "cost")


def operating_point() -> OperatingPoint:
    """The session's operating point: the one chosen in the sidebar, else the store's default preset."""
    point = st.session_state.get(OP_KEY)
    if isinstance(point, OperatingPoint):
        if point.kind == "preset" or current_dataset().labelled:
            return point
    return OperatingPoint("preset", preset=get_store(loaded=False).default_preset)


def set_operating_point(point: OperatingPoint) -> None:
    """Make ``point`` the session's operating point: every detector's threshold follows it (hand-moved ones too)."""
    st.session_state[OP_KEY] = point
    st.session_state[THRESHOLDS_KEY] = {}


def op_thresholds(view: str) -> dict[str, float]:
    """Every detector's threshold for the session's operating point under ``view`` (shared by all sessions)."""
    from anodet.app.loaders import get_op_thresholds

    return get_op_thresholds(view, operating_point())


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
    if params.get("op") is not None:
        try:
            st.session_state[OP_KEY] = OperatingPoint.from_params({k: params.get(k) for k in OP_PARAMS
                                                                    if params.get(k) is not None})
        except OperatingPointError as exc:
            problems.append(f"operating point cannot be used ({markdown_text(exc)})")
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
              "threshold": [f"{n}:{get_threshold(n, view)!r}" for n in detectors if n in moved(detectors, view)],
              **{k: [v] for k, v in operating_point().to_params().items()}}
    if all(st.query_params.get_all(k) == v for k, v in wanted.items()) and set(st.query_params) <= set(wanted):
        return
    st.query_params.from_dict({k: v for k, v in wanted.items() if v})


def keep_point_in_url() -> None:
    """Keep the operating point (and the dataset and view) in the page's link, whatever else the page keeps."""
    dataset = current_dataset()
    wanted = {**({"dataset": dataset.key} if not dataset.builtin else {}), "view": label_view(),
              **operating_point().to_params()}
    stale = [k for k in OP_PARAMS if k in st.query_params and k not in wanted]
    if all(st.query_params.get(k) == v for k, v in wanted.items()) and not stale:
        return
    for key in stale:
        del st.query_params[key]
    st.query_params.update(wanted)


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


OP_KINDS = {"preset": "A preset (chosen on validation)", "fpr": "A target false-positive rate",
            "budget": "An alert budget", "cost": "A cost ratio"}


def operating_point_switch() -> OperatingPoint:
    """The sidebar's operating point: one choice for the session, applied to every detector on every page."""
    point = operating_point()
    dataset = current_dataset()
    store = get_store(loaded=False)
    kinds = list(OP_KINDS) if dataset.labelled else ["preset"]
    box = st.sidebar.container(border=True)
    box.markdown("**Operating point**", help="Where you work. Every detector's threshold is chosen for it on the "
                                             "validation split, and every page judges the detectors there. Moving one "
                                             "detector's threshold in the threshold explorer overrides it for that "
                                             "detector only.")
    if st.session_state.get("op_kind") not in kinds:
        st.session_state["op_kind"] = point.kind if point.kind in kinds else "preset"
    kind = box.selectbox("Choose thresholds by", kinds, key="op_kind", format_func=OP_KINDS.__getitem__)
    with box.form("op_form", border=False):
        presets = list(store.thresholds(store.names[0], label_view())) if store.names else [store.default_preset]
        values: dict[str, Any] = {}
        if kind == "preset":
            values["preset"] = st.selectbox("Preset", presets, index=presets.index(point.preset)
                                            if point.kind == "preset" and point.preset in presets else
                                            presets.index(store.default_preset) if store.default_preset in presets
                                            else 0, format_func=lambda p: leaderboard.PRESET_LABELS.get(p, p))
        elif kind == "fpr":
            values["fpr"] = st.number_input("Target FPR (%)", 0.0, 100.0, point.fpr * 100, step=0.01, format="%.4g",
                                            help=metrics.PRESET_HELP["target_fpr"]) / 100
        elif kind == "budget":
            a, r = st.columns(2)
            values["alerts_per_day"] = a.number_input("Alerts/day", 0.0, 1e9, point.alerts_per_day, step=10.0,
                                                      format="%g")
            values["records_per_day"] = r.number_input("Records/day", 1.0, 1e12, point.records_per_day,
                                                       step=10_000.0, format="%g")
            values["attack_share"] = st.number_input(
                f"Expected {dataset.words.positives} (%)", 0.0, 99.0, point.attack_share * 100, step=1.0,
                help=f"The share of the daily records you expect to be {dataset.words.positives}: only the rest can "
                     "raise false alarms.") / 100
        else:
            values["cost_ratio"] = st.number_input(f"A missed {dataset.words.positive} costs × a false alarm", 0.0,
                                                   1e6, point.cost_ratio, step=1.0, format="%g",
                                                   help=metrics.COST_HELP)
        if st.form_submit_button("Apply to every detector", width="stretch"):
            try:
                set_operating_point(OperatingPoint(kind, **values))
            except OperatingPointError as exc:
                st.error(markdown_text(exc))
            else:
                st.rerun()
    box.caption(markdown_text(operating_point().describe().capitalize()) + ".")
    return operating_point()
