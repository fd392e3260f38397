"""What the dashboard needs to know about the dataset it shows: KDD Cup 99 (built in) or a user's.

Every page reads one :class:`DatasetView`: where its model store is, its label views, and its splits
shaped the same way for both kinds (raw feature columns, ``label_<view>`` 0/1 columns where there are
labels, an ``attack`` name and a ``category`` per record), so a page has one code path for KDD and for
a user's dataset. Streamlit-free: :mod:`anodet.app.ui` caches what this builds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anodet.datasets import catalog
from anodet.datasets.kdd import Splits, load_splits
from anodet.datasets.kdd_schema import ATTACK_CATEGORIES, LABEL_VIEW_HELP, LABEL_VIEWS, NORMAL, NUMERIC_COLUMNS
from anodet.store.core import MANIFEST, default_root

KDD = "kdd"
"""The key of the built-in dataset (no user dataset may be called so: names starting 'kdd' are refused)."""

MAX_CATEGORIES = 8
"""A user dataset's anomalous label values shown as their own category; the rarer ones become 'other'."""

UNLABELLED = "unlabelled"


@dataclass(frozen=True)
class DatasetView:
    """One dataset as the dashboard shows it."""

    key: str
    title: str
    store_root: Path
    label_views: tuple[str, ...]
    view_help: dict[str, str]
    labelled: bool
    anomaly_word: str
    """What a positive record is called: "attack" on KDD, "anomaly" on a user's data."""
    numeric_columns: tuple[str, ...]
    load: Callable[[], Splits] = field(compare=False, repr=False)
    source: str = ""
    """A sentence on where the records come from (for captions)."""

    @property
    def builtin(self) -> bool:
        return self.key == KDD

    def categories(self, test: pd.DataFrame) -> tuple[str, ...]:
        """The anomalous categories of ``test`` in the order the dashboard lists them."""
        if self.builtin:
            return ATTACK_CATEGORIES
        counts = test.loc[test["category"] != NORMAL, "category"].value_counts()
        return tuple(sorted(counts.index, key=lambda c: (c == "other", -int(counts[c]), c)))


def kdd() -> DatasetView:
    """KDD Cup 99: the built-in example, with its two label views."""
    return DatasetView(KDD, "KDD Cup 99", default_root(), LABEL_VIEWS, dict(LABEL_VIEW_HELP), True, "attack",
                       NUMERIC_COLUMNS, load_splits, "the KDD Cup 99 test split")


def trained() -> list[str]:
    """User datasets with a trained model store, sorted (the ones the dashboard can show)."""
    out = []
    for name in catalog.list_datasets():
        try:
            if (catalog.store_root(name) / MANIFEST).is_file():
                out.append(name)
        except catalog.DatasetError:
            continue
    return out


def available() -> list[str]:
    """Every dataset the dashboard can show: KDD first, then the trained user datasets."""
    return [KDD, *trained()]


def view_of(key: str) -> DatasetView:
    """The view of dataset ``key`` (:data:`KDD` or a user dataset's name); a DatasetError when unknown."""
    if key == KDD:
        return kdd()
    dataset = catalog.load(key)
    numeric = tuple(n for n, k in dataset.feature_columns if k != "categorical")
    view = catalog.LABEL_VIEW
    help_text = (f"Your label column {dataset.doc['label']['column']!r}: "
                 f"{', '.join(map(repr, dataset.doc['label']['normal']))} normal, every other value an anomaly."
                 if dataset.labelled else "This dataset has no labels.")
    return DatasetView(key, key, dataset.store_root, (view,), {view: help_text}, dataset.labelled, "anomaly",
                       numeric, lambda: user_splits(dataset), f"the test split of dataset {key!r}")


def user_splits(dataset: catalog.Dataset) -> Splits:
    """A user dataset's splits shaped like KDD's: ``label_label``, ``attack`` and ``category`` columns added."""
    got = dataset.splits()
    frames = {}
    for key in ("train", "validation", "test"):
        frame = getattr(got, key)
        frames[key] = frame if key == "train" else _with_label_columns(frame)
    return Splits(frames["train"], frames["validation"], frames["test"], dict(got.checksums))


def _with_label_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``label_label`` (0/1), ``attack`` (the label as given) and ``category`` (normal, or the label value)."""
    out = frame.copy()
    if catalog.LABEL_COLUMN not in frame:
        out["attack"] = UNLABELLED
        out["category"] = UNLABELLED
        return out
    y = frame[catalog.LABEL_COLUMN].to_numpy().astype(np.int8)
    text = frame[catalog.LABEL_TEXT].astype(str).str.strip().to_numpy()
    out[label_column(catalog.LABEL_VIEW)] = y
    out["attack"] = np.where(y == 1, text, NORMAL)
    anomalous = pd.Series(text[y == 1]).value_counts()
    common = set(anomalous.index[:MAX_CATEGORIES])
    out["category"] = [NORMAL if v == 0 else (t if t in common else "other") for v, t in zip(y, text, strict=True)]
    return out


def label_column(view: str) -> str:
    """The 0/1 label column of a label view in a :class:`DatasetView`'s splits."""
    return f"label_{view}"


def describe(key: str) -> str:
    """The dataset's name as the switch shows it."""
    return "KDD Cup 99 (built in)" if key == KDD else key


def labels(splits: Splits, split: str, view: str) -> np.ndarray | None:
    """0/1 labels of a split under a view, or None where the dataset has none."""
    frame: Any = getattr(splits, split)
    column = label_column(view)
    return frame[column].to_numpy() if column in frame else None
