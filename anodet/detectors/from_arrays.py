"""Scoring of the One-Class SVM, Isolation Forest, Local Outlier Factor and random forest from plain arrays.

These detectors are fitted with scikit-learn, but what is stored (``state.npz``, read with
``allow_pickle=False``) is only the arrays their scores need, and scoring uses these classes, so
loading a store never imports scikit-learn (nor skops). Each detector checks, right after
fitting, that its arrays give scikit-learn's scores on probe rows, and refuses to save if not.

* :class:`RBFDecision`: the RBF decision function ``sum_i a_i exp(-gamma |x - sv_i|^2) + b`` as
  blocked float32 matrix products. Rows and support vectors are first centred on the support
  vectors' mean (distances do not change; the norms, and so the rounding of
  ``|x|^2 + |sv|^2 - 2 x.sv``, get smaller), then one GEMM gives every exponent, one pass takes
  the exponentials in float32 (most of the time goes there, and float32's ``exp`` is the faster)
  and one matrix-vector product sums them with float32 weights: within the 1e-4 of scikit-learn's
  float64 sum that the fit-time check allows (``tests/test_array_state.py``); rows whose float32
  result is not finite are scored again in float64.
* :class:`TreeEnsemble`: trees as flat node arrays with one value per leaf (for an Isolation
  Forest the leaf table ``depth + c(n) - 1``, for a random forest the class-1 probability),
  summed over the trees in their stored order: the same float64 operations as scikit-learn's
  ``score_samples`` / ``predict_proba``. The leaves are found in numpy (:mod:`anodet.detectors.forest`:
  the leaf ``Tree.apply`` finds, without importing scikit-learn), so row blocks run on every core.
* :class:`LOFScores`: ``LocalOutlierFactor.score_samples`` (novelty mode, euclidean, brute force)
  from the fitted rows, their k-distances and local reachability densities, with scikit-learn's
  formula in scikit-learn's dtypes. The k nearest fitted rows come from scikit-learn's own brute
  ``NearestNeighbors`` rebuilt on the fitted rows at the first score (``sklearn.neighbors`` is
  imported then, not on load): the same neighbour search as the fitted estimator, and faster than
  the numpy alternative kept as the fallback (blocked matrix products and ``np.argpartition``).
  The fallback differs from scikit-learn where squared distances round differently in the last
  bits and where two fitted rows tie for the k-th neighbour (either is a valid pick).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from anodet.detectors.forest import Forest
from anodet.detectors.parallel import map_rows, with_float64_retry

PROBE_ROWS = 256
OCSVM_TOLERANCE = 1e-4
"""Largest absolute difference to ``decision_function`` accepted on the fit-time probe."""
LOF_RTOL = 1e-6
"""Largest relative difference to ``score_samples`` accepted on the fit-time probe."""


def probe_rows(n_features: int, extra: np.ndarray | None = None) -> np.ndarray:
    """Random rows in and around the scaled range, plus ``extra`` rows, as float32."""
    rng = np.random.default_rng(0)
    rows = [rng.uniform(0, 1, (PROBE_ROWS, n_features)), rng.uniform(-2, 3, (32, n_features))]
    if extra is not None:
        rows.append(np.asarray(extra)[:PROBE_ROWS])
    return np.ascontiguousarray(np.vstack(rows), dtype=np.float32)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class RBFDecision:
    """The decision function of an RBF One-Class SVM from its support vectors, dual coefficients, intercept and
    gamma."""

    BLOCK_ROWS = 1_024  # a (1024, n_sv) float32 block of exponents stays in L2 cache

    def __init__(self, support: np.ndarray, dual_coef: np.ndarray, intercept: float, gamma: float) -> None:
        support = np.asarray(support, dtype=np.float64)
        self.coef64 = np.asarray(dual_coef, dtype=np.float64).ravel()
        _require(support.ndim == 2 and len(support) == len(self.coef64),
                 f"{len(self.coef64)} dual coefficients for support vectors of shape {support.shape}")
        self.n_features = support.shape[1]
        gamma = float(gamma)
        self.center = support.mean(axis=0) if len(support) else np.zeros(self.n_features)
        support = support - self.center
        # -gamma |x - s|^2 = [x, |x|^2, 1] . [2 gamma s, -gamma, -gamma |s|^2] (x, s centred): one GEMM per block.
        self.augmented = np.ascontiguousarray(np.hstack([
            2 * gamma * support, np.full((len(support), 1), -gamma), -gamma * (support**2).sum(1, keepdims=True),
        ]).T)
        self.augmented32 = self.augmented.astype(np.float32)
        self.center32 = self.center.astype(np.float32)
        self.coef32 = self.coef64.astype(np.float32)
        self.intercept = float(intercept)
        self._score_block = with_float64_retry(self._block)

    @staticmethod
    def arrays_of(model) -> dict[str, np.ndarray]:
        """The arrays of a fitted scikit-learn ``OneClassSVM`` this class is built from."""
        if getattr(model, "kernel", None) != "rbf":
            raise ValueError(f"only the RBF kernel is supported, not {getattr(model, 'kernel', None)!r}")
        return {"support": np.asarray(model.support_vectors_, dtype=np.float64),
                "dual_coef": np.asarray(model.dual_coef_, dtype=np.float64).ravel(),
                "intercept": np.asarray(model.intercept_, dtype=np.float64).ravel()[:1],
                "gamma": np.asarray([float(model._gamma)])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> RBFDecision:
        return cls(arrays["support"], arrays["dual_coef"], float(arrays["intercept"][0]), float(arrays["gamma"][0]))

    def _block(self, X: np.ndarray) -> np.ndarray:
        n, d = X.shape
        exact = X.dtype == np.float64  # the retry path: everything in float64
        rows = np.empty((n, d + 2), dtype=np.float64 if exact else np.float32)
        np.subtract(X, self.center if exact else self.center32, out=rows[:, :d])
        rows[:, d] = np.einsum("ij,ij->i", rows[:, :d], rows[:, :d])
        rows[:, d + 1] = 1.0
        if exact:
            return np.exp(rows @ self.augmented) @ self.coef64 + self.intercept
        kernel = rows @ self.augmented32
        np.exp(kernel, out=kernel)
        return (kernel @ self.coef32).astype(np.float64) + self.intercept

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return map_rows(self._score_block, X, block=self.BLOCK_ROWS)


class TreeEnsemble:
    """Sum over trees (in stored order) of a per-leaf value, from flat node arrays.

    Arrays: ``tree_offsets`` (n_trees + 1 node offsets), per node ``children_left`` and
    ``children_right`` (tree-local indices, -1 at leaves), ``feature`` (a column of the full
    input), ``threshold`` (go left if ``x <= threshold``), ``missing_go_to_left`` and
    ``leaf_value``; ``n_features``.
    """

    KEYS = ("tree_offsets", "children_left", "children_right", "feature", "threshold", "missing_go_to_left",
            "leaf_value", "n_features")

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.offsets = np.asarray(arrays["tree_offsets"], dtype=np.int64)
        self.left = np.asarray(arrays["children_left"], dtype=np.int64)
        self.right = np.asarray(arrays["children_right"], dtype=np.int64)
        self.feature = np.asarray(arrays["feature"], dtype=np.int64)
        self.threshold = np.asarray(arrays["threshold"], dtype=np.float64)
        self.missing_left = np.asarray(arrays["missing_go_to_left"], dtype=np.uint8)
        self.leaf_value = np.asarray(arrays["leaf_value"], dtype=np.float64)
        self.n_features = int(np.asarray(arrays["n_features"]).reshape(-1)[0])
        self._validate()
        self._forest: Forest | None = None
        self._lock = threading.Lock()

    def _validate(self) -> None:
        """Refuse arrays a traversal could run out of (the Cython traversal does not check bounds)."""
        n = len(self.left)
        _require(all(len(a) == n for a in (self.right, self.feature, self.threshold, self.missing_left,
                                              self.leaf_value)), "tree node arrays of different lengths")
        _require(self.offsets.ndim == 1 and len(self.offsets) >= 2 and self.offsets[0] == 0
                 and self.offsets[-1] == n and bool(np.all(np.diff(self.offsets) > 0)), "bad tree offsets")
        sizes = np.repeat(np.diff(self.offsets), np.diff(self.offsets))
        leaf = self.left == -1
        _require(bool(np.all((self.right == -1) == leaf)), "a node with one child")
        local = np.arange(n) - np.repeat(self.offsets[:-1], np.diff(self.offsets))
        for child in (self.left, self.right):
            # children come after their parent (no cycles) and stay inside their tree
            _require(bool(np.all(leaf | ((child > local) & (child < sizes)))), "a child index outside its tree")
        _require(bool(np.all(leaf | ((self.feature >= 0) & (self.feature < self.n_features)))),
                 "a split on a feature outside the input")

    @classmethod
    def arrays_of(cls, trees: list[Any], leaf_values: list[np.ndarray], features: list[np.ndarray | None],
                  n_features: int) -> dict[str, np.ndarray]:
        """The arrays of fitted scikit-learn trees (``estimator.tree_``), each with its per-node values and the
        input columns it was fitted on (None: all, in order)."""
        left, right, feature, threshold, missing, values = [], [], [], [], [], []
        for tree, value, columns in zip(trees, leaf_values, features, strict=True):
            state = tree.__getstate__()["nodes"]
            is_leaf = state["left_child"] == -1
            f = np.where(is_leaf, -2, state["feature"])
            if columns is not None:
                f = np.where(is_leaf, -2, np.asarray(columns)[np.where(is_leaf, 0, state["feature"])])
            left.append(state["left_child"])
            right.append(state["right_child"])
            feature.append(f)
            threshold.append(state["threshold"])
            missing.append(state["missing_go_to_left"] if "missing_go_to_left" in state.dtype.names
                           else np.zeros(len(state), np.uint8))
            values.append(np.where(is_leaf, np.asarray(value, np.float64), 0.0))
        return {"tree_offsets": np.cumsum([0] + [len(v) for v in left]).astype(np.int64),
                "children_left": np.concatenate(left).astype(np.int64),
                "children_right": np.concatenate(right).astype(np.int64),
                "feature": np.concatenate(feature).astype(np.int64),
                "threshold": np.concatenate(threshold).astype(np.float64),
                "missing_go_to_left": np.concatenate(missing).astype(np.uint8),
                "leaf_value": np.concatenate(values), "n_features": np.asarray([n_features])}

    @property
    def n_trees(self) -> int:
        return len(self.offsets) - 1

    def prepare(self) -> None:
        """Build the scoring arrays now (the first :meth:`total` does it otherwise)."""
        with self._lock:
            if self._forest is None:
                self._forest = Forest(self.offsets, self.left, self.right, self.feature, self.threshold,
                                      self.missing_left, self.leaf_value)

    def total(self, X: np.ndarray) -> np.ndarray:
        """Per row: the sum over trees of the value at the leaf it reaches (float32 rows, as scikit-learn)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        _require(X.ndim == 2 and X.shape[1] == self.n_features,
                 f"rows of shape {X.shape}, expected {self.n_features} features")
        if self._forest is None:
            self.prepare()
        assert self._forest is not None
        return self._forest.total(X)


class LOFScores:
    """``LocalOutlierFactor.score_samples`` (novelty, euclidean) from fitted rows, k-distances and densities."""

    BLOCK_ROWS = 256  # numpy path: a (256, n_fit) float64 block of squared distances (fastest measured)

    def __init__(self, fit_rows: np.ndarray, k_distance: np.ndarray, lrd: np.ndarray, n_neighbors: int) -> None:
        self.fit_rows = np.asarray(fit_rows)
        self.k = int(n_neighbors)
        _require(self.fit_rows.ndim == 2 and len(k_distance) == len(lrd) == len(self.fit_rows)
                 and 1 <= self.k <= len(self.fit_rows), "inconsistent Local Outlier Factor arrays")
        self.k_distance, self.lrd = np.asarray(k_distance), np.asarray(lrd)
        self.n_features = self.fit_rows.shape[1]
        self._fit64 = np.ascontiguousarray(self.fit_rows, dtype=np.float64)
        self._fit_norms = np.einsum("ij,ij->i", self._fit64, self._fit64)
        self._search: Any = None  # scikit-learn's neighbour search, built on the first score
        self._lock = threading.Lock()

    @staticmethod
    def arrays_of(model) -> dict[str, np.ndarray]:
        """The arrays of a fitted ``LocalOutlierFactor(novelty=True)`` with the euclidean metric."""
        if model.effective_metric_ != "euclidean":
            raise ValueError(f"only the euclidean metric is supported, not {model.effective_metric_!r}")
        k = model.n_neighbors_
        return {"fit_rows": np.asarray(model._fit_X), "k_distance": np.asarray(model._distances_fit_X_[:, k - 1]),
                "lrd": np.asarray(model._lrd), "n_neighbors": np.asarray([k])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LOFScores:
        return cls(arrays["fit_rows"], arrays["k_distance"], arrays["lrd"], int(arrays["n_neighbors"][0]))

    def prepare(self) -> None:
        """Build scikit-learn's brute-force neighbour search on the fitted rows (first score; it only stores them)."""
        with self._lock:
            if self._search is None:
                try:
                    from sklearn.neighbors import NearestNeighbors
                except ImportError:
                    self._search = False
                else:
                    self._search = NearestNeighbors(n_neighbors=self.k, algorithm="brute").fit(self.fit_rows)

    def _neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distances (float64) and indices of the k nearest fitted rows."""
        if self._search:
            return self._search.kneighbors(X)
        X64 = X.astype(np.float64)
        d2 = X64 @ self._fit64.T  # (n, n_fit) squared distances: |x|^2 + |y|^2 - 2 x.y in float64
        d2 *= -2
        d2 += self._fit_norms[None, :]
        d2 += np.einsum("ij,ij->i", X64, X64)[:, None]
        neighbours = np.argpartition(d2, self.k - 1, axis=1)[:, : self.k]
        return np.sqrt(np.maximum(np.take_along_axis(d2, neighbours, axis=1), 0)), neighbours

    def _block(self, X: np.ndarray) -> np.ndarray:
        if self._search is None:
            self.prepare()
        distances, neighbours = self._neighbours(X)
        # scikit-learn's dtypes: distances in the dtype of the rows, then its formula
        distances = distances.astype(X.dtype, copy=False)
        reach = np.maximum(distances, self.k_distance[neighbours])
        x_lrd = 1.0 / (np.mean(reach, axis=1) + 1e-10)
        return -np.mean(self.lrd[neighbours] / x_lrd[:, np.newaxis], axis=1).astype(np.float64)

    def ties(self, X: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
        """Rows whose k-th and (k+1)-th nearest fitted rows are at the same distance (to ``rtol``): there the
        k neighbours are not unique, and scikit-learn's pick depends on how its distances round."""
        X64 = np.asarray(X, dtype=np.float64)
        if self.k >= len(self.fit_rows):
            return np.zeros(len(X64), dtype=bool)
        d2 = self._fit_norms[None, :] - 2 * X64 @ self._fit64.T + np.einsum("ij,ij->i", X64, X64)[:, None]
        nearest = np.sort(np.partition(d2, self.k, axis=1)[:, : self.k + 1], axis=1)
        kth, next_ = np.sqrt(np.maximum(nearest[:, self.k - 1], 0)), np.sqrt(np.maximum(nearest[:, self.k], 0))
        return np.abs(next_ - kth) <= rtol * np.maximum(next_, 1e-12)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """``score_samples`` of ``X`` (higher = more normal, as scikit-learn's)."""
        return map_rows(self._block, X, block=self.BLOCK_ROWS)


def check(fast, reference, probe: np.ndarray, what: str, atol: float = 0.0, rtol: float = 0.0,
          exempt: np.ndarray | None = None) -> None:
    """Raise ValueError unless ``fast`` gives ``reference``'s scores on ``probe`` within the tolerances
    (rows where ``exempt`` is True are not compared)."""
    got, expected = np.asarray(fast(probe), np.float64), np.asarray(reference(probe), np.float64)
    excess = np.abs(got - expected) - (atol + rtol * np.abs(expected))
    if exempt is not None:
        excess[exempt] = -1.0
    if not np.all(excess <= 0):
        worst = int(np.argmax(excess))
        raise ValueError(f"{what}: the stored arrays give {got[worst]!r} where scikit-learn gives "
                         f"{expected[worst]!r} (tolerance atol={atol:g}, rtol={rtol:g}); not saving a model "
                         f"that would score differently")
