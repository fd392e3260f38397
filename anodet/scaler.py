"""Min-max scaling of the 18 features, fitted on the training normals and stored as ``.npz``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anodet.detectors.base import load_arrays, save_arrays
from anodet.schema import FEATURES


class MinMaxScaler:
    """Maps each feature's training range onto [0, 1]; values outside it land outside [0, 1].

    Out-of-range values are not clipped, so they are scored consistently (further out, more
    anomalous) and :meth:`out_of_range` can mark them.
    """

    def __init__(self, data_min: np.ndarray, data_max: np.ndarray) -> None:
        self.data_min_ = np.asarray(data_min, dtype=np.float64)
        self.data_max_ = np.asarray(data_max, dtype=np.float64)
        span = self.data_max_ - self.data_min_
        self.scale_ = np.where(span > 0, span, 1.0)

    @classmethod
    def fit(cls, X: np.ndarray) -> MinMaxScaler:
        X = np.asarray(X, dtype=np.float64)
        return cls(X.min(axis=0), X.max(axis=0))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled float32 copy of raw feature values ``X`` (columns in :data:`FEATURES` order)."""
        return ((np.asarray(X, dtype=np.float64) - self.data_min_) / self.scale_).astype(np.float32)

    def out_of_range(self, X: np.ndarray) -> np.ndarray:
        """Per record: does any feature fall outside the training range?"""
        X = np.asarray(X, dtype=np.float64)
        return np.any((X < self.data_min_) | (X > self.data_max_), axis=1)

    def save(self, path: Path) -> Path:
        return save_arrays(path, data_min=self.data_min_, data_max=self.data_max_,
                           features=np.array(FEATURES))

    @classmethod
    def load(cls, path: Path) -> MinMaxScaler:
        state = load_arrays(path)
        if tuple(state["features"].tolist()) != FEATURES:
            raise ValueError(f"{path} was fitted on other features than anodet's 18")
        return cls(state["data_min"], state["data_max"])
