"""A plug-in detector kept through anodet's state protocol: each record's distance to the training median.

Train it beside the built-in family with::

    python -m anodet train --detector-class examples.median_distance:MedianDistance --detector-params '{"floor": 0.01}'

``get_state()`` hands anodet the fitted arrays and the parameters as JSON; ``from_state()`` rebuilds the
fitted detector from them. anodet stores them as ``state.npz`` (no pickle) and ``state.json`` with their
hashes in the manifest, so loading the store never runs ``fit`` again and never unpickles anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class MedianDistance:
    """Sum over the features of ``|x - median| / MAD``: a robust z-score, higher = more anomalous.

    The median absolute deviation (MAD) of each feature is floored at ``floor``, so a feature that is
    constant in training does not divide by zero.
    """

    def __init__(self, floor: float = 1e-3) -> None:
        self.floor = floor

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> MedianDistance:
        X = np.asarray(X, dtype=np.float64)
        self.median_ = np.median(X, axis=0)
        self.scale_ = np.maximum(np.median(np.abs(X - self.median_), axis=0), self.floor)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return (np.abs(np.asarray(X, dtype=np.float64) - self.median_) / self.scale_).sum(axis=1)

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, meta): the fitted arrays, and the constructor's parameters as JSON."""
        return {"median": self.median_, "scale": self.scale_}, {"floor": self.floor}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> MedianDistance:
        """The fitted detector back from what :meth:`get_state` gave."""
        detector = cls(**meta)
        detector.median_, detector.scale_ = arrays["median"], arrays["scale"]
        return detector
