"""k nearest neighbours: a record is as unusual as it is far from the training rows.

Ramaswamy et al. (SIGMOD 2000) score by the distance to the k-th nearest neighbour; Angiulli &
Pizzuti (PKDD 2002) by the mean distance to the k nearest. The training rows themselves (a random
sample of at most ``max_rows``) are the learned state, stored as arrays (``state.npz``).

The neighbour search is brute force and exact: for a block of records against every reference row,
``|r|^2 - 2 x.r`` (the squared distance less the record's own ``|x|^2``, which does not change which
rows are nearest) comes from one float64 matrix product (BLAS), the k smallest are picked with
``argpartition``, and those k distances are then computed directly from the differences, so the
rounding of the expanded form never reaches a score. Blocks keep the
distance matrix near 32 MB whatever the number of reference rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anodet.detectors.base import Detector, as_matrix, load_arrays, save_arrays
from anodet.detectors.parallel import map_rows

STATE_FILE = "state.npz"
METHODS = ("largest", "mean")
BLOCK_VALUES = 4_000_000
"""Squared distances computed at once per block (float64: 32 MB)."""


class KNearestNeighbours(Detector):
    """Distance to the k-th nearest training row (``method="largest"``) or mean distance to the k nearest ("mean").

    A record that is itself a training row counts itself as its nearest neighbour (distance 0),
    as PyOD's ``KNN.decision_function`` does.
    """

    name = "knn"
    display_name = "k-nearest neighbours"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"n_neighbors": 5, "method": "largest", "max_rows": 10_000}

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed, **params)
        if self.params["method"] not in METHODS:
            raise ValueError(f"knn: method must be one of {', '.join(METHODS)}, not {self.params['method']!r}")
        if int(self.params["n_neighbors"]) < 1:
            raise ValueError("knn: n_neighbors must be at least 1")

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> KNearestNeighbours:
        """Keep the training rows (a random ``max_rows`` of them); ``y`` is ignored."""
        X = as_matrix(X)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError("knn needs at least one training row")
        if len(X) > self.params["max_rows"]:
            keep = np.random.default_rng(self.seed).choice(len(X), self.params["max_rows"], replace=False)
            X = X[np.sort(keep)]
        self._use(np.ascontiguousarray(X))
        return self

    def _use(self, reference: np.ndarray) -> None:
        if reference.ndim != 2 or len(reference) == 0 or not np.isfinite(reference).all():
            raise ValueError("inconsistent k-nearest-neighbour arrays")
        self.reference_ = reference
        self._reference64 = reference.astype(np.float64)
        self._norms = np.einsum("ij,ij->i", self._reference64, self._reference64)
        self.k_ = min(int(self.params["n_neighbors"]), len(reference))

    def _nearest(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(squared distances, indices) of the k nearest reference rows, nearest first, float64."""
        if X.ndim != 2 or X.shape[1] != self.reference_.shape[1]:
            raise ValueError(f"knn was fitted on {self.reference_.shape[1]} features, not {X.shape[-1]}")
        X64 = X.astype(np.float64)
        d2 = (X64 * -2.0) @ self._reference64.T
        d2 += self._norms[None, :]  # |r|^2 - 2 x.r: the row's own |x|^2 adds the same to every candidate
        k = self.k_
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else np.tile(
            np.arange(d2.shape[1]), (len(X64), 1))
        exact = np.empty(nearest.shape, dtype=np.float64)
        for j in range(k):  # the k candidates' distances again, from the differences
            diff = X64 - self._reference64[nearest[:, j]]
            exact[:, j] = np.einsum("ij,ij->i", diff, diff)
        order = np.argsort(exact, axis=1, kind="stable")
        return np.take_along_axis(exact, order, axis=1), np.take_along_axis(nearest, order, axis=1)

    def _block(self, X: np.ndarray) -> np.ndarray:
        squares, _ = self._nearest(X)
        distances = np.sqrt(squares)
        return distances[:, -1] if self.params["method"] == "largest" else distances.mean(axis=1)

    def _block_rows(self) -> int:
        return max(16, BLOCK_VALUES // len(self.reference_))

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        """Squared per-feature differences to the neighbours that set the score: the k-th nearest ("largest";
        they sum to the squared score) or the mean over the k nearest ("mean")."""
        def block(rows: np.ndarray) -> np.ndarray:
            _, nearest = self._nearest(rows)
            rows64 = rows.astype(np.float64)
            if self.params["method"] == "largest":
                return (rows64 - self._reference64[nearest[:, -1]]) ** 2
            return np.mean([(rows64 - self._reference64[nearest[:, j]]) ** 2 for j in range(self.k_)], axis=0)

        return map_rows(block, as_matrix(X), block=self._block_rows())

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = as_matrix(X)
        if len(X) == 0:
            return np.empty(0, dtype=np.float64)
        return map_rows(self._block, X, block=self._block_rows())

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, reference=self.reference_)]

    def _load_state(self, folder: Path) -> None:
        self._use(load_arrays(folder / STATE_FILE)["reference"])
