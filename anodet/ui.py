"""The only Streamlit-aware module of the library: cached loaders and shared widgets.

Heavy objects (the store with its detectors, the splits, the test scores) are loaded once per
server process and shared by all sessions, keyed by the manifest's hash; a session holds only
its choices (label view, thresholds, selections, uploads).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from anodet import dashboard, dataset_view, evaluate, figures, threshold_payload
from anodet.data import DataError, Splits
from anodet.dataset_view import KDD, DatasetView
from anodet.datasets import DatasetError
from anodet.evaluate import ThresholdCurve
from anodet.scoring import cache as score_cache
from anodet.scoring.core import score_frame
from anodet.store import MANIFEST, Store, StoreError

logger = logging.getLogger("anodet.ui")

NORMAL_COLOUR = figures.NORMAL_COLOUR
ATTACK_COLOUR = figures.ATTACK_COLOUR
"""The two colours for normal and attack records, everywhere (defined in :mod:`anodet.figures`)."""

FOCUS_KEY = "focus_detector"
"""Session key of the detector the user is looking at; shared by the explorer and flagged records."""

DATA_FIX = "Run `python -m anodet data` (with `ANODET_KDD_SOURCE` naming the folder or URL of the raw KDD files) to build it."


_hash_memo: dict[tuple[str, int, int], str] = {}


DATASET_KEY = "dataset"
"""Session key of the dataset every page shows (:data:`anodet.dataset_view.KDD` or a user dataset's name)."""


def current_dataset() -> DatasetView:
    """The dataset the session looks at (the sidebar switch); KDD until another is chosen."""
    key = st.session_state.get(DATASET_KEY, KDD)
    if key != KDD:
        try:
            return _user_view(key, _declaration_stamp(key))
        except DatasetError:  # removed since it was chosen: back to the built-in one
            st.session_state[DATASET_KEY] = KDD
    return dataset_view.kdd()


@functools.lru_cache(maxsize=16)
def _user_view(key: str, declaration: tuple[str | int, ...]) -> DatasetView:
    """A user dataset's view, read from its declaration once per version of the file (pages ask for it
    dozens of times a rerun; a stat tells whether it changed)."""
    return dataset_view.view_of(key)


def dataset_switch() -> DatasetView:
    """The sidebar's dataset switch (shown once a user dataset is trained); every page reads :func:`current_dataset`."""
    choices = dataset_view.available()
    if st.session_state.get(DATASET_KEY, KDD) not in choices:
        st.session_state[DATASET_KEY] = KDD
    if len(choices) > 1:
        st.sidebar.selectbox("Dataset", choices, key=DATASET_KEY, format_func=dataset_view.describe,
                             help="Every page shows the chosen dataset: its detectors, splits and labels. Add and "
                                  "train your own on the Your data page.")
    return current_dataset()


def keyed(key: str) -> str:
    """A widget key of its own per dataset (options differ between datasets); KDD's keys stay as they were."""
    dataset = current_dataset()
    return key if dataset.builtin else f"{key}@{dataset.key}"


def has_labels() -> bool:
    """Does the session's dataset have labels (so ROC/PR curves, confusion matrices and outcomes)?"""
    return current_dataset().labelled


def _root() -> str:
    return str(current_dataset().store_root)


def _manifest_hash() -> str:
    """sha256 of the current store's manifest, recomputed only when the file changes (read on every rerun).

    The store is written by replacing ``manifest.json``, which changes its mtime and size.
    """
    root = Path(_root())
    path = root / MANIFEST
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _hash_memo:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            for old in [k for k in _hash_memo if k[0] == str(path)]:
                del _hash_memo[old]
            _hash_memo[key] = digest
        return _hash_memo[key]
    except OSError:
        dataset = current_dataset()
        how = "python -m anodet train" + ("" if dataset.builtin else f" --dataset {dataset.key}")
        raise StoreError(f"No model store at {root}. Run `{how}` to build it.") from None


@st.cache_resource(max_entries=2)
def _open_store(root: str, manifest_hash: str) -> Store:
    return Store.open(Path(root))


@st.cache_resource(show_spinner="Loading the pretrained detectors…", max_entries=2)
def _load_store(root: str, manifest_hash: str) -> Store:
    store = _open_store(root, manifest_hash)
    # Every detector's state is numpy arrays (or JSON): loading is file reads, ~0.4 s for the 26.
    for name in store.names:  # an ensemble after its members (Store.detector loads members first anyway)
        store.detector(name)
    return store


def get_store(loaded: bool = True) -> Store:
    """The model store (shared by all sessions).

    ``loaded=True`` (the default) waits until every detector is loaded; ``loaded=False`` returns
    the same store as soon as its manifest is read, for pages that need only names, thresholds
    and quantiles (and the test scores, which :func:`get_test_scores` keeps on disk).
    """
    if loaded:
        return _load_store(_root(), _manifest_hash())
    return _open_store(_root(), _manifest_hash())


@st.cache_resource(show_spinner="Loading the dataset's splits…", max_entries=3)
def _load_splits(key: str, declaration: str) -> Splits:
    return dataset_view.view_of(key).load()


def get_splits() -> Splits:
    """The session's dataset's splits (shared by all sessions), shaped as :mod:`anodet.dataset_view` says."""
    dataset = current_dataset()
    declaration = "" if dataset.builtin else json.dumps(list(_declaration_stamp(dataset.key)))
    return _load_splits(dataset.key, declaration)


def _declaration_stamp(key: str) -> tuple[str | int, ...]:
    """Where a dataset's declaration is and its version: changes when the dataset is declared again (or the
    data folder moves), so its view and splits are then read anew."""
    from anodet.datasets import DECLARATION, dataset_dir

    path = dataset_dir(key) / DECLARATION
    try:
        stat = path.stat()
        return (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return (str(path),)


def _readonly(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


@st.cache_resource(show_spinner="Scoring the test split…", max_entries=2)
def _test_scores(root: str, manifest_hash: str) -> dict[str, np.ndarray]:
    scores = _split_scores(root, manifest_hash, "test")
    _warm_up(root, manifest_hash)
    return scores


@st.cache_resource(show_spinner="Scoring the validation split…", max_entries=2)
def _validation_scores(root: str, manifest_hash: str) -> dict[str, np.ndarray]:
    return _split_scores(root, manifest_hash, "validation")


def _split_scores(root: str, manifest_hash: str, split: str) -> dict[str, np.ndarray]:
    """Every detector's scores on one split, read from the disk cache or computed and kept there."""
    scores, _ = score_cache.split_scores(_open_store(root, manifest_hash), get_splits(), split,
                                         lambda frame: score_frame(_load_store(root, manifest_hash), frame))
    return {n: _readonly(s) for n, s in scores.items()}


_warming: set[tuple[str, str]] = set()
_page_drawn = threading.Event()
WARM_UP_WAIT_S = 20.0
"""How long the background loading waits for the first page to be drawn before it starts anyway."""


def page_drawn() -> None:
    """Called by app.py after a page has run: background loading may start now without slowing it."""
    _page_drawn.set()


def _warm_up(root: str, manifest_hash: str) -> None:
    """Load the detectors in the background once per store, so pages that need them find them ready.

    It starts after the first page is drawn (or after :data:`WARM_UP_WAIT_S`): run at once, its
    imports and loads held the interpreter lock the first page needed, and a fresh server drew
    its first page seconds later. A failure here is not lost: the page that needs the detectors
    loads them again and shows the error in its own words.
    """
    if (root, manifest_hash) in _warming:
        return
    _warming.add((root, manifest_hash))

    def load() -> None:
        _page_drawn.wait(WARM_UP_WAIT_S)
        try:
            _load_store(root, manifest_hash)
        except Exception:  # reported again by the page that needs the detectors
            _warming.discard((root, manifest_hash))

    threading.Thread(target=load, name="anodet-load-detectors", daemon=True).start()


def _labels(split: str, view: str) -> np.ndarray:
    """0/1 labels of a split; curves need them (pages check :func:`has_labels` first)."""
    y = dataset_view.labels(get_splits(), split, view)
    if y is None:
        raise DatasetError(f"Dataset {current_dataset().key!r} has no labels: ROC and precision-recall curves need "
                           "a label column (declare the dataset again with --label COLUMN).")
    return y


def labels_or_normal(split: str, view: str) -> np.ndarray:
    """0/1 labels of a split; on a dataset without labels every record counts as normal (histograms, tables)."""
    y = dataset_view.labels(get_splits(), split, view)
    return np.zeros(len(getattr(get_splits(), split)), dtype=np.int8) if y is None else y


def get_test_scores() -> dict[str, np.ndarray]:
    """Every detector's scores on the test split, read-only (shared by all sessions)."""
    return _test_scores(_root(), _manifest_hash())


@st.cache_resource(max_entries=4)
def _test_curves(root: str, manifest_hash: str, view: str) -> dict[str, ThresholdCurve]:
    y = _labels("test", view)
    return {n: ThresholdCurve.from_scores(y, s) for n, s in _test_scores(root, manifest_hash).items()}


def get_test_curves(view: str) -> dict[str, ThresholdCurve]:
    """Per detector, the sorted test scores that make metrics at any threshold O(log n)."""
    return _test_curves(_root(), _manifest_hash(), view)


@st.cache_resource(max_entries=4)
def _curve_summaries(root: str, manifest_hash: str, view: str) -> dict[str, dashboard.CurveSummary]:
    y = _labels("test", view)
    return {n: dashboard.curve_summary(y, s) for n, s in _test_scores(root, manifest_hash).items()}


@st.cache_resource(max_entries=4, show_spinner=False)
def _validation_curves(root: str, manifest_hash: str, view: str) -> dict[str, ThresholdCurve]:
    y = _labels("validation", view)
    return {n: ThresholdCurve.from_scores(y, s) for n, s in _validation_scores(root, manifest_hash).items()}


def get_validation_curves(view: str) -> dict[str, ThresholdCurve]:
    """Per detector, the sorted validation scores: what the cost and alert-budget presets are chosen on."""
    return _validation_curves(_root(), _manifest_hash(), view)


def get_curve_summaries(view: str) -> dict[str, dashboard.CurveSummary]:
    """Per detector, ROC/PR AUCs and light curves on the test split (shared by all sessions)."""
    return _curve_summaries(_root(), _manifest_hash(), view)


@st.cache_resource(max_entries=4)
def _histograms(root: str, manifest_hash: str, view: str) -> dict[str, figures.HistogramBins]:
    y = labels_or_normal("test", view)
    return {n: figures.histogram_bins(s, y) for n, s in _test_scores(root, manifest_hash).items()}


@st.cache_resource(max_entries=256, show_spinner=False)
def _control_static(root: str, manifest_hash: str, view: str, name: str) -> dict[str, Any]:
    return threshold_payload.static_parts(name, display_name(name), view, _test_curves(root, manifest_hash, view)[name],
                                          _histograms(root, manifest_hash, view)[name],
                                          _curve_summaries(root, manifest_hash, view)[name],
                                          current_dataset().anomaly_word)  # the root is the dataset's store


def get_control_static(name: str, view: str) -> dict[str, Any]:
    """A detector's threshold-control payload parts that never change for this store and view (built once)."""
    return _control_static(_root(), _manifest_hash(), view, name)


@st.cache_resource(max_entries=3)
def _sorted_train(key: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    train = get_splits().train
    return {c: _readonly(np.sort(train[c].to_numpy(dtype=np.float64))) for c in columns}


@st.cache_resource(max_entries=4)
def _reference_record(key: str, columns: tuple[str, ...]) -> Any:
    return dashboard.reference_record(get_splits().train, columns)


def get_reference_record(columns: Sequence[str]) -> Any:
    """A typical normal training record over ``columns`` (medians and most common categories), as a one-row DataFrame."""
    return _reference_record(current_dataset().key, tuple(columns))


def get_sorted_train() -> dict[str, np.ndarray]:
    """Each numeric column of the normal training records, sorted (for percentiles)."""
    dataset = current_dataset()
    return _sorted_train(dataset.key, dataset.numeric_columns)


def display_name(name: str) -> str:
    """A detector's display name from the manifest (its key when unknown)."""
    try:
        return get_store(loaded=False).entry(name).get("display_name", name)
    except StoreError:
        return name


def name_format(names: Sequence[str]) -> Any:
    """A widget's ``format_func`` showing detectors by display name, fixed when the widget is drawn.

    (A lookup built now, not :func:`display_name` itself: Streamlit may format values later, outside
    this session's run, where the session's dataset is unknown.)
    """
    labels = {n: display_name(n) for n in names}
    return lambda name: labels.get(name, name)


def is_supervised(name: str) -> bool:
    """Is ``name`` the supervised ceiling (trained on labels: a reference, never a detector)?"""
    try:
        return get_store(loaded=False).uses_labels(name)
    except StoreError:
        return False


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


def metric_tiles(metrics: dict[str, float], keys: Sequence[str], columns: int | None = None) -> None:
    """One ``st.metric`` per metric, each with its help text from :data:`evaluate.METRIC_HELP`."""
    cols = st.columns(columns or len(keys))
    for i, k in enumerate(keys):
        value = metrics.get(k, float("nan"))
        cols[i % len(cols)].metric(dashboard.METRIC_LABELS.get(k, k), "–" if np.isnan(value) else f"{value:.3f}",
                                   help=evaluate.METRIC_HELP.get(k))


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


LABEL_VIEW_KEY = "label_view"


def label_view() -> str:
    """The session's label view: on KDD "reference" or "true"; a user dataset has one, "label"."""
    views = current_dataset().label_views
    chosen = st.session_state.get(LABEL_VIEW_KEY)
    return chosen if chosen in views else views[0]


def label_view_switch() -> str:
    """The sidebar switch between label views (only where a dataset has two); every page reads :func:`label_view`."""
    dataset = current_dataset()
    if len(dataset.label_views) < 2:
        return label_view()
    if st.session_state.get(LABEL_VIEW_KEY) not in dataset.label_views:
        st.session_state[LABEL_VIEW_KEY] = dataset.label_views[0]
    return st.sidebar.radio(
        "Label view", dataset.label_views, key=LABEL_VIEW_KEY, horizontal=True,
        help="  \n".join(f"**{v}**: {dataset.view_help[v]}" for v in dataset.label_views),
    )


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
        if key in dataset_view.available():
            st.session_state[DATASET_KEY] = key
        else:
            problems.append(f"the dataset {markdown_text(key)} is not one this server has trained")
    views = current_dataset().label_views
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


def markdown_text(text: object) -> str:
    """User-controlled text (file names, cells, column names, alert fields) made safe for Markdown.

    Every character Markdown or Streamlit would interpret (links, emphasis, code, HTML, LaTeX,
    emoji and colour directives) is backslash-escaped, so the text shows exactly as typed and
    nothing in it becomes a link or formatting. Streamlit also turns bare URLs, ``www.`` names
    and e-mail addresses in the rendered text into links, which no escape prevents, so a
    zero-width space breaks those patterns without changing what the reader sees.
    """
    raw = str(text).replace("\n", " ")
    raw = _AUTOLINK.sub(lambda m: m.group(0)[:-1] + "\u200b" + m.group(0)[-1], raw)
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", raw)


_AUTOLINK = re.compile(r"(?i)(:/|www\.|\w@)")
"""The starts of what the renderer would auto-link: ``scheme://``, ``www.``, ``name@``."""
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_{}\[\]()<>#+\-.!|~:$=&\"']")


def show_failure(exc: Exception) -> None:
    """One sentence on what is wrong and what to do; never a stack trace."""
    if isinstance(exc, DataError):
        st.error(f"The KDD data is not available: {exc}\n\n{DATA_FIX}")  # our sentence, operator-chosen paths
    elif isinstance(exc, DatasetError):
        st.error(f"The dataset cannot be used: {markdown_text(exc)}")
    elif isinstance(exc, StoreError):
        st.error(f"The model store cannot be used: {exc}")
    else:
        logger.error("unexpected error on a page", exc_info=exc)
        st.error(f"Something went wrong: {type(exc).__name__}: {markdown_text(exc)}. Reload the page; if it persists, "
                 "report it with the steps that led here (the server's log has the details).")


APP_FRAME_KEY = "_anodet_app_frame"
APP_SCRIPT = Path(__file__).resolve().parent.parent / "app.py"


def mark_app_frame() -> None:
    """Called by app.py before it runs a page: the page is inside the app's navigation."""
    st.session_state[APP_FRAME_KEY] = True


def ensure_app_frame() -> None:
    """Run this page inside app.py even when its URL is the first one a fresh server serves.

    With a ``pages/`` folder, Streamlit runs a page's file on its own until some session has
    run ``st.navigation``: no wide layout, no label-view switch, no error handler. Running
    app.py here switches the server to app.py's navigation, which then runs this page.
    """
    if st.session_state.get(APP_FRAME_KEY):
        return
    import runpy

    runpy.run_path(str(APP_SCRIPT), run_name="__main__")
    st.stop()
