"""One dataset model for every dataset: KDD Cup 99 (built in) and users' own tables.

A :class:`Declaration` says what a dataset is: its label views (how a label cell becomes 0/1),
what its records are called (:class:`Vocabulary`), its anomaly categories, its id column, its
training protocol and where its model store is. Its :class:`Splits` have one shape whatever the
dataset: three :class:`Part` objects. A part keeps the input columns exactly as they were read
(``rows``) apart from what anodet knows about each record (labels per view, the label as given,
the category, the record id), so a user's column can never be overwritten by an internal one,
whatever it is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

NORMAL = "normal"
OTHER_CATEGORY = "other"
UNLABELLED = "unlabelled"
PROTOCOLS = ("normal-only", "unsupervised")
"""``normal-only``: detectors are fitted on the normal training rows (labels, or a file of normals only).
``unsupervised``: on every training row, anomalies included, as ADBench's published numbers are."""


@dataclass(frozen=True)
class Vocabulary:
    """What a dataset calls its records: a positive (label 1) and a negative (label 0), singular and plural."""

    positive: str = "anomaly"
    positives: str = "anomalies"
    negative: str = "normal"
    negatives: str = "normal records"

    def count(self, n: int, positive: bool = True) -> str:
        """``"1 anomaly"``, ``"3 anomalies"``, ``"2 normal records"``."""
        if positive:
            return f"{n:,} {self.positive if n == 1 else self.positives}"
        return f"{n:,} {self.negatives if n != 1 or self.negatives == self.negative else self.negative}"

    def to_json(self) -> dict[str, str]:
        return {"positive": self.positive, "positives": self.positives, "negative": self.negative,
                "negatives": self.negatives}

    @classmethod
    def of(cls, positive: str | None = None, negative: str | None = None) -> Vocabulary:
        """A vocabulary from a singular positive and negative class name (plurals made regularly)."""
        pos = (positive or cls.positive).strip()
        neg = (negative or cls.negative).strip()
        return cls(pos, plural(pos), neg, neg if neg == cls.negative else plural(neg))


def plural(word: str) -> str:
    """The English plural of a class name: anomaly → anomalies, attack → attacks, class → classes."""
    lower = word.lower()
    if lower.endswith("y") and len(word) > 1 and lower[-2] not in "aeiou":
        return word[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


@dataclass(frozen=True)
class LabelView:
    """One way of reading the labels as 0/1 (KDD has two; a user's dataset one, ``label``)."""

    key: str
    help: str


@dataclass(frozen=True)
class Part:
    """One split of a dataset: the input columns as read, and what anodet knows about each record.

    ``rows`` holds the user's (or KDD's) columns untouched, index 0..n-1. ``labels`` maps each label
    view to 0/1 (int8); it is empty when the dataset has no labels. ``label_text`` is the label cell as
    given, ``category`` the record's anomaly category (``normal`` for label 0), ``record_id`` what every
    page calls the record (the declared id column, else the record's row in its input file).
    """

    rows: pd.DataFrame
    labels: Mapping[str, np.ndarray]
    label_text: np.ndarray
    category: np.ndarray
    record_id: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labelled(self) -> bool:
        return bool(self.labels)

    def label(self, view: str) -> np.ndarray | None:
        """0/1 labels under ``view``; None where the part has none."""
        return self.labels.get(view)

    def take(self, positions: np.ndarray) -> Part:
        """The records at ``positions`` (a new part, rows re-indexed from 0)."""
        positions = np.asarray(positions)
        return Part(self.rows.iloc[positions].reset_index(drop=True), {k: v[positions] for k, v in self.labels.items()},
                    self.label_text[positions], self.category[positions], self.record_id[positions])


@dataclass
class Splits:
    """Train, validation and test parts of one dataset, and what they were built from."""

    train: Part
    validation: Part
    test: Part
    checksums: dict[str, str]
    notes: tuple[str, ...] = ()
    labelled_source: Callable[[], Part | None] | None = field(default=None, repr=False, compare=False)
    """Where the supervised ceiling learns from (KDD: its whole labelled training file, read on demand)."""

    def part(self, split: str) -> Part:
        if split not in ("train", "validation", "test"):
            raise ValueError(f"unknown split {split!r}; choose train, validation or test")
        part: Part = getattr(self, split)
        return part

    def labels(self, split: str, view: str) -> np.ndarray | None:
        """0/1 labels of ``split`` under ``view``; None where it has none."""
        return self.part(split).label(view)

    def labelled_train(self) -> Part | None:
        """The labelled rows the supervised ceiling learns from (None without labels of both classes)."""
        if self.labelled_source is not None:
            return self.labelled_source()
        for view in self.validation.labels:
            if len(np.unique(self.validation.labels[view])) == 2:
                return self.validation
        return None


@dataclass(frozen=True)
class Declaration:
    """What a dataset is, for every page and command: KDD Cup 99 and users' datasets alike."""

    key: str
    title: str
    label_views: tuple[LabelView, ...]
    words: Vocabulary
    numeric_columns: tuple[str, ...]
    store_root: Path
    load_splits: Callable[[], Splits] = field(compare=False, repr=False)
    categories: tuple[str, ...] | None = None
    """The anomaly categories in the order pages list them; None: the label's anomalous values."""
    id_column: str | None = None
    protocol: str = "normal-only"
    source: str = ""
    """A sentence on where the test records come from (for captions)."""
    builtin: bool = False
    labelled: bool = True
    """Does the test part have labels? (A dataset without labels still has one view: thresholds are kept per view.)"""

    @property
    def view_keys(self) -> tuple[str, ...]:
        return tuple(v.key for v in self.label_views)

    @property
    def anomaly_word(self) -> str:
        return self.words.positive

    def view_help(self, view: str) -> str:
        return next((v.help for v in self.label_views if v.key == view), "")

    def categories_in(self, part: Part) -> tuple[str, ...]:
        """The anomalous categories of ``part`` in the order pages list them."""
        if self.categories is not None:
            return self.categories
        values, counts = np.unique(part.category[part.category != NORMAL].astype(str), return_counts=True)
        order = sorted(range(len(values)), key=lambda i: (values[i] == OTHER_CATEGORY, -int(counts[i]), values[i]))
        return tuple(str(values[i]) for i in order if values[i] != UNLABELLED)
