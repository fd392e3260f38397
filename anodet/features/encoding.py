"""Raw records → one float64 matrix over the raw columns the chosen feature sets need, and back out per set.

The scorer works on one numeric matrix per batch (so duplicate rows can be found, remembered
and scored once): numeric columns as they are, categorical columns as an index into the union of
the sets' categories (-1 for a category no set has seen). Each feature set then takes its own
columns from that matrix (:meth:`InputEncoder.transform`), so a record is encoded once however
many sets score it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from anodet.features.sets import FeatureSet, category_codes

SATURATION_RANGES = 10.0
"""How many training ranges beyond a feature's training range a value may lie before the record is
scored +inf (fail closed) rather than handed to the detectors."""


@dataclass
class SetInput:
    """One feature set's detector input for a batch."""

    X: np.ndarray  # (rows inside the saturation box, width) float32
    out_of_range: np.ndarray  # (n,) any numeric column outside the training range, or an unseen category
    saturated: np.ndarray  # (n,) far outside: scored +inf by this set's detectors


class InputEncoder:
    """The matrix layout shared by a group of fitted feature sets."""

    def __init__(self, sets: Sequence[FeatureSet]) -> None:
        self.sets = {fs.name: fs for fs in sets}
        columns: list[str] = []
        kinds: dict[str, str] = {}
        vocab: dict[str, set[str]] = {}
        for fs in sets:
            for col in fs.spec.columns:
                kind = "categorical" if col.kind == "categorical" else "numeric"
                if kinds.setdefault(col.name, kind) != kind:
                    raise ValueError(f"column {col.name!r} is categorical in one feature set and numeric in another")
                if col.name not in columns:
                    columns.append(col.name)
                if kind == "categorical":
                    vocab.setdefault(col.name, set()).update(fs.categories[col.name])
        self.columns = columns
        self.categorical = [c for c in columns if kinds[c] == "categorical"]
        self.numeric = [c for c in columns if kinds[c] == "numeric"]
        self.vocab = {c: sorted(v) for c, v in vocab.items()}
        self._position = {c: i for i, c in enumerate(columns)}
        self._numeric_pos = {fs.name: [self._position[c] for c in fs.numeric_columns] for fs in sets}
        self._cat_pos = {fs.name: {c: self._position[c] for c in fs.categorical_columns} for fs in sets}
        # union code -> the set's own category index (-1: the set has not seen it); the last entry
        # is for union code -1 (no set has seen the category)
        self._recode = {fs.name: {c: np.append(category_codes(fs.categories[c], self.vocab[c]), -1)
                                  for c in fs.categorical_columns} for fs in sets}

    @property
    def width(self) -> int:
        return len(self.columns)

    def codes(self, column: str, values: object) -> np.ndarray:
        """Index of each value in the union vocabulary of ``column`` (-1: unseen), as float64."""
        return category_codes(self.vocab[column], values).astype(np.float64)

    def encode(self, get: Callable[[str], object], n: int) -> np.ndarray:
        """The (n, width) matrix from a column getter (numeric columns as numbers, categoricals as text)."""
        out = np.empty((n, self.width), dtype=np.float64)
        for j, column in enumerate(self.columns):
            if column in self.vocab:
                out[:, j] = self.codes(column, get(column))
            else:
                out[:, j] = np.asarray(get(column), dtype=np.float64)
        return out

    def encode_frame(self, frame: object) -> np.ndarray:
        """The matrix of a DataFrame (or mapping of arrays) holding the raw columns."""
        data: Mapping = frame  # type: ignore[assignment]
        first = data[self.columns[0]]
        return self.encode(lambda c: np.asarray(data[c]), len(first))

    def _numeric(self, M: np.ndarray, name: str) -> np.ndarray:
        """Set ``name``'s numeric columns of ``M`` after its log transform."""
        return self.sets[name].numeric_part(M[:, self._numeric_pos[name]])

    def outside(self, M: np.ndarray, name: str) -> np.ndarray:
        """(n, numeric columns) bool: which of set ``name``'s numeric values lie outside its training range."""
        return _outside(self._numeric(M, name), self.sets[name])

    def transform(self, M: np.ndarray, name: str) -> SetInput:
        """Feature set ``name``'s detector input from the encoded matrix ``M``."""
        fs = self.sets[name]
        values = self._numeric(M, name)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = (values - fs.data_min_) / fs.scale_
        inside = (scaled >= -SATURATION_RANGES) & (scaled <= 1.0 + SATURATION_RANGES)
        saturated = np.asarray(~inside.all(axis=1))
        outside = _outside(values, fs)
        codes = {c: self._recode[name][c][M[:, p].astype(np.int64)] for c, p in self._cat_pos[name].items()}
        onehot, unseen = fs.one_hot(codes, len(M))
        out_of_range = outside.any(axis=1) | (unseen > 0) | saturated
        keep = ~saturated
        X = np.hstack([scaled[keep].astype(np.float32), onehot[keep]]) if onehot.shape[1] else (
            scaled[keep].astype(np.float32))
        return SetInput(np.ascontiguousarray(X), out_of_range, saturated)

    def unseen(self, M: np.ndarray) -> dict[str, int]:
        """Per categorical column: rows whose category no feature set saw in training."""
        return {c: int((M[:, self._position[c]] < 0).sum()) for c in self.categorical}


def _outside(values: np.ndarray, fs: FeatureSet) -> np.ndarray:
    """Which (transformed) numeric values lie outside the set's training range."""
    return ~((values >= fs.data_min_) & (values <= fs.data_max_))
