"""Heavy objects loaded once per server and shared by every session: the store with its detectors, the
splits, the scores, curves and histograms, keyed by the store's manifest hash and its dataset's external
detectors (a session holds only its choices).

The store pages see is :func:`anodet.external.view.with_externals` of the model store: its dataset's
external detectors (scores made elsewhere) sit beside the stored ones on every page.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from anodet.app import figures
from anodet.app.state import current_dataset, declaration_stamp
from anodet.app.threshold_control import payload
from anodet.datasets import catalog
from anodet.datasets.errors import DatasetError
from anodet.datasets.model import Splits
from anodet.detectors import explain
from anodet.evaluation import comparison, intervals, leaderboard, operating
from anodet.evaluation.metrics import ThresholdCurve
from anodet.evaluation.operating import OperatingPoint
from anodet.external import kept as external_kept
from anodet.external.view import with_externals
from anodet.scoring import cache as score_cache
from anodet.scoring import core as scorer
from anodet.store.core import MANIFEST, Store, StoreError

DATA_FIX = ("Run `python -m anodet data` (with `ANODET_KDD_SOURCE` naming the folder or URL of the raw KDD files) "
            "to build it.")


_hash_memo: dict[tuple[str, int, int], str] = {}


def _root() -> str:
    return str(current_dataset().store_root)


def _manifest_hash() -> str:
    """The key of what pages see: the sha256 of the current store's manifest (recomputed only when the file
    changes; read on every rerun), and a stamp of its dataset's external detectors when it has any.

    The store is written by replacing ``manifest.json``, which changes its mtime and size; external
    detectors are added and removed by replacing their folders, which changes the stamp.
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
        stamp = external_kept.stamp(current_dataset().key)
        return _hash_memo[key] + (f"+{stamp}" if stamp else "")
    except OSError:
        dataset = current_dataset()
        how = "python -m anodet train" + ("" if dataset.builtin else f" --dataset {dataset.key}")
        raise StoreError(f"No model store at {root}. Run `{how}` to build it.") from None


def _store_hash(key: str) -> str:
    """The model store's own manifest hash in a key of :func:`_manifest_hash` (without the external stamp)."""
    return key.split("+", 1)[0]


@st.cache_resource(max_entries=2)
def _base_store(root: str, manifest_hash: str) -> Store:
    return Store.open(Path(root))


@st.cache_resource(max_entries=4)
def _open_store(root: str, key: str) -> Store:
    return with_externals(_base_store(root, _store_hash(key)))


@st.cache_resource(show_spinner="Loading the pretrained detectors…", max_entries=2)
def _loaded_base(root: str, manifest_hash: str) -> Store:
    store = _base_store(root, manifest_hash)
    # Every detector's state is numpy arrays (or JSON): loading is file reads, ~0.4 s for the 26.
    for name in store.names:  # an ensemble after its members (Store.detector loads members first anyway)
        store.detector(name)
    return store


def _load_store(root: str, key: str) -> Store:
    _loaded_base(root, _store_hash(key))  # the view shares the loaded detectors with its store
    return _open_store(root, key)


def get_store(loaded: bool = True) -> Store:
    """The model store with its dataset's external detectors (shared by all sessions).

    ``loaded=True`` (the default) waits until every stored detector is loaded; ``loaded=False`` returns
    the same store as soon as its manifest is read, for pages that need only names, thresholds
    and quantiles (and the test scores, which :func:`get_test_scores` keeps on disk).
    """
    if loaded:
        return _load_store(_root(), _manifest_hash())
    return _open_store(_root(), _manifest_hash())


def is_external(name: str) -> bool:
    """Is ``name`` an external detector (scores made elsewhere: no model to explain or score new records with)?"""
    return get_store(loaded=False).is_external(name)


@st.cache_resource(show_spinner="Loading the dataset's splits…", max_entries=3)
def _load_splits(key: str, declaration: str) -> Splits:
    return catalog.get(key).load_splits()


def get_splits() -> Splits:
    """The session's dataset's splits (shared by all sessions), in the one dataset model
    (:mod:`anodet.datasets.model`)."""
    dataset = current_dataset()
    declaration = "" if dataset.builtin else json.dumps(list(declaration_stamp(dataset.key)))
    return _load_splits(dataset.key, declaration)


def _readonly(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


@st.cache_resource(show_spinner="Scoring the test split…", max_entries=2)
def _test_scores(root: str, manifest_hash: str) -> dict[str, np.ndarray]:
    scores = _split_scores(root, manifest_hash, "test")
    _warm_up(root, manifest_hash)
    return scores


@st.cache_resource(show_spinner="Scoring the validation split…", max_entries=2)
def _validation_scores(root: str, manifest_hash: str, _splits: Splits | None = None) -> dict[str, np.ndarray]:
    return _split_scores(root, manifest_hash, "validation", _splits)


def _split_scores(root: str, key: str, split: str, splits: Splits | None = None) -> dict[str, np.ndarray]:
    """Every detector's scores on one split: the stored ones from the disk cache (or computed and kept there), the
    external ones as they were added (an external detector without validation scores is absent from that split).
    ``splits`` default: the session's dataset's."""
    base = _base_store(root, _store_hash(key))
    splits = splits if splits is not None else get_splits()
    scores, _ = score_cache.split_scores(base, splits, split,
                                         lambda frame: scorer.score_frame(_loaded_base(root, _store_hash(key)), frame))
    out = {n: _readonly(s) for n, s in scores.items()}
    out.update(_open_store(root, key).external_scores(split, splits.part(split).record_id))
    return out


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
    y = get_splits().labels(split, view)
    if y is None:
        raise DatasetError(f"Dataset {current_dataset().key!r} has no labels: ROC and precision-recall curves need "
                           "a label column (declare the dataset again with --label COLUMN).")
    return y


def labels_or_normal(split: str, view: str) -> np.ndarray:
    """0/1 labels of a split; on a dataset without labels every record counts as normal (histograms, tables)."""
    y = get_splits().labels(split, view)
    return np.zeros(len(get_splits().part(split)), dtype=np.int8) if y is None else y


def get_test_scores() -> dict[str, np.ndarray]:
    """Every detector's scores on the test split, read-only (shared by all sessions)."""
    return _test_scores(_root(), _manifest_hash())


def validation_scores_later() -> Callable[[], dict[str, np.ndarray]]:
    """A call returning every detector's scores on the validation split (read-only, shared by all sessions), bound
    now to the session's dataset, for work done outside the script run (a download built when it is clicked): a
    first page that may never need them does not score them."""
    root, manifest_hash, splits = _root(), _manifest_hash(), get_splits()
    return lambda: _validation_scores(root, manifest_hash, splits)


@st.cache_resource(max_entries=4)
def _test_curves(root: str, manifest_hash: str, view: str) -> dict[str, ThresholdCurve]:
    y = _labels("test", view)
    return {n: ThresholdCurve.from_scores(y, s) for n, s in _test_scores(root, manifest_hash).items()}


def get_test_curves(view: str) -> dict[str, ThresholdCurve]:
    """Per detector, the sorted test scores that make metrics at any threshold O(log n)."""
    return _test_curves(_root(), _manifest_hash(), view)


@st.cache_resource(max_entries=4)
def _curve_summaries(root: str, manifest_hash: str, view: str) -> dict[str, leaderboard.CurveSummary]:
    y = _labels("test", view)
    return {n: leaderboard.curve_summary(y, s) for n, s in _test_scores(root, manifest_hash).items()}


@st.cache_resource(max_entries=4, show_spinner=False)
def _validation_curves(root: str, manifest_hash: str, view: str) -> dict[str, ThresholdCurve]:
    y = _labels("validation", view)
    return {n: ThresholdCurve.from_scores(y, s) for n, s in _validation_scores(root, manifest_hash).items()}





def get_curve_summaries(view: str) -> dict[str, leaderboard.CurveSummary]:
    """Per detector, ROC/PR AUCs and light curves on the test split (shared by all sessions)."""
    return _curve_summaries(_root(), _manifest_hash(), view)


@st.cache_resource(max_entries=32, show_spinner="Choosing each detector's threshold for the operating point…")
def _op_thresholds(root: str, manifest_hash: str, view: str, point: OperatingPoint) -> dict[str, float]:
    store = _open_store(root, manifest_hash)
    validation = None if point.kind == "preset" else _validation_curves(root, manifest_hash, view)
    return operating.thresholds_for(point, store.names, validation,
                                    {n: store.thresholds(n, view) for n in store.names})


def get_op_thresholds(view: str, point: OperatingPoint) -> dict[str, float]:
    """Every detector's threshold for an operating point, chosen on the validation split (shared by all sessions)."""
    return _op_thresholds(_root(), _manifest_hash(), view, point)


@st.cache_resource(max_entries=16, show_spinner="Computing intervals and ties…")
def _threshold_free(root: str, manifest_hash: str, view: str, max_fpr: float | None) -> pd.DataFrame:
    store = _open_store(root, manifest_hash)
    scores = _test_scores(root, manifest_hash)
    modules = [Path(comparison.__file__), Path(intervals.__file__)]
    return score_cache.kept_table(
        store, get_splits(), "threshold-free", {"view": view, "max_fpr": max_fpr}, modules,
        lambda: comparison.threshold_free(_labels("test", view), scores, {n: store.uses_labels(n) for n in scores},
                                          max_fpr))


def get_threshold_free(view: str, max_fpr: float | None) -> pd.DataFrame:
    """Per detector: ROC AUC and PR AUC intervals, ties with the best, partial AUC intervals up to ``max_fpr``
    (:func:`anodet.evaluation.comparison.threshold_free`), computed once per store, view and FPR and kept on disk
    beside the scores (:func:`anodet.scoring.cache.kept_table`)."""
    return _threshold_free(_root(), _manifest_hash(), view, max_fpr)


@st.cache_resource(max_entries=4)
def _histograms(root: str, manifest_hash: str, view: str) -> dict[str, figures.HistogramBins]:
    y = labels_or_normal("test", view)
    return {n: figures.histogram_bins(s, y) for n, s in _test_scores(root, manifest_hash).items()}


@st.cache_resource(max_entries=256, show_spinner=False)
def _control_static(root: str, manifest_hash: str, view: str, name: str) -> dict[str, Any]:
    return payload.static_parts(name, display_name(name), view, _test_curves(root, manifest_hash, view)[name],
                                          _histograms(root, manifest_hash, view)[name],
                                          _curve_summaries(root, manifest_hash, view)[name],
                                          current_dataset().anomaly_word)  # the root is the dataset's store


def get_control_static(name: str, view: str) -> dict[str, Any]:
    """A detector's threshold-control payload parts that never change for this store and view (built once)."""
    return _control_static(_root(), _manifest_hash(), view, name)


@st.cache_resource(max_entries=3)
def _sorted_train(key: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    train = get_splits().train.rows
    return {c: _readonly(np.sort(train[c].to_numpy(dtype=np.float64))) for c in columns}


@st.cache_resource(max_entries=4)
def _reference_record(key: str, columns: tuple[str, ...]) -> Any:
    return explain.reference_record(get_splits().train.rows, columns)


def get_reference_record(columns: Sequence[str]) -> Any:
    """A typical normal training record over ``columns`` (medians and most common categories),
    as a one-row DataFrame."""
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
