"""What the session looks at: the dataset (KDD or a trained user dataset) and its label view.

Every page reads these before drawing; nothing here loads data, so every other app module may import it.
"""

from __future__ import annotations

import functools

import streamlit as st

from anodet.access.identity import Principal
from anodet.datasets import catalog, ownership
from anodet.datasets.catalog import KDD
from anodet.datasets.errors import DatasetError
from anodet.datasets.model import Declaration

DATASET_KEY = "dataset"
"""Session key of the dataset every page shows (:data:`anodet.datasets.catalog.KDD` or a user dataset's name)."""


def principal() -> Principal:
    """Who this session acts as (the sign-in gate's principal; the local user without sign-in)."""
    from anodet.app import auth

    return auth.current_principal()


def current_dataset() -> Declaration:
    """The dataset the session looks at (the sidebar switch); KDD until another is chosen, and KDD again when
    the chosen one is deleted or its owner stops sharing it."""
    key = st.session_state.get(DATASET_KEY, KDD)
    if key != KDD:
        try:
            if not ownership.sees(principal(), key):
                raise DatasetError(f"dataset {key!r} is not shared with this user")
            return _user_view(key, declaration_stamp(key))
        except DatasetError:  # removed or unshared since it was chosen: back to the built-in one
            st.session_state[DATASET_KEY] = KDD
    return catalog.get(KDD)


@functools.lru_cache(maxsize=16)
def _user_view(key: str, declaration: tuple[str | int, ...]) -> Declaration:
    """A user dataset's view, read from its declaration once per version of the file (pages ask for it
    dozens of times a rerun; a stat tells whether it changed)."""
    return catalog.get(key)


def dataset_switch() -> Declaration:
    """The sidebar's dataset switch (shown once a user dataset is trained); every page reads :func:`current_dataset`."""
    choices = catalog.available(principal())
    if st.session_state.get(DATASET_KEY, KDD) not in choices:
        st.session_state[DATASET_KEY] = KDD
    if len(choices) > 1:
        st.sidebar.selectbox("Dataset", choices, key=DATASET_KEY, format_func=catalog.describe,
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


def declaration_stamp(key: str) -> tuple[str | int, ...]:
    """Where a dataset's declaration is and its version: changes when the dataset is declared again (or the
    data folder moves), so its view and splits are then read anew."""
    from anodet.datasets.userdata import DECLARATION, dataset_dir

    path = dataset_dir(key) / DECLARATION
    try:
        stat = path.stat()
        return (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return (str(path),)


LABEL_VIEW_KEY = "label_view"


def label_view() -> str:
    """The session's label view: on KDD "reference" or "true"; a user dataset has one, "label"."""
    views = current_dataset().view_keys
    chosen = st.session_state.get(LABEL_VIEW_KEY)
    return chosen if chosen in views else views[0]


def label_view_switch() -> str:
    """The sidebar switch between label views (only where a dataset has two); every page reads :func:`label_view`."""
    dataset = current_dataset()
    if len(dataset.view_keys) < 2:
        return label_view()
    if st.session_state.get(LABEL_VIEW_KEY) not in dataset.view_keys:
        st.session_state[LABEL_VIEW_KEY] = dataset.view_keys[0]
    return st.sidebar.radio(
        "Label view", dataset.view_keys, key=LABEL_VIEW_KEY, horizontal=True,
        help="  \n".join(f"**{v}**: {dataset.view_help(v)}" for v in dataset.view_keys),
    )
