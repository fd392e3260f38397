"""Vectorised scoring of the stored One-Class SVM and Isolation Forest, checked against scikit-learn.

scikit-learn scores a One-Class SVM through libsvm one row at a time (~44k rows/s with ~500
support vectors) and an Isolation Forest one tree at a time over the whole input. Both are
rebuilt here from the fitted estimator's own arrays:

* :class:`RBFDecision`: the RBF decision function ``sum_i a_i exp(-gamma |x - sv_i|^2) + b`` as
  blocked matrix products. Squared distances are computed in float64 from
  ``|x|^2 + |sv|^2 - 2 x.sv`` (so no cancellation worth speaking of), the exponentials in
  float32 (three times faster than float64 here; each term is off by at most one float32 ulp)
  and summed with float32 weights. On real rows it differs from ``decision_function`` by about
  1e-5 on values of magnitude ~40 (tests/test_detector_exactness.py).
* :class:`ForestDepths`: scikit-learn's own Cython ``Tree.apply`` per tree (it releases the GIL,
  so row blocks run on every core) with each tree's leaf table ``depth + c(n) - 1`` built once,
  summed in scikit-learn's tree order: the same float64 operations as ``score_samples``.

Both are checked on load against scikit-learn on a probe set; a model they cannot reproduce is
scored by scikit-learn instead (with a warning), never wrongly.
"""

from __future__ import annotations

import warnings

import numpy as np

from anodet.detectors.parallel import map_rows

PROBE_ROWS = 256
OCSVM_TOLERANCE = 1e-4
"""Largest absolute difference to ``decision_function`` accepted on the load-time probe."""


def probe_rows(n_features: int, extra: np.ndarray | None = None) -> np.ndarray:
    """Random rows in and around the scaled range, plus ``extra`` rows, as float32."""
    rng = np.random.default_rng(0)
    rows = [rng.uniform(0, 1, (PROBE_ROWS, n_features)), rng.uniform(-2, 3, (32, n_features))]
    if extra is not None:
        rows.append(np.asarray(extra)[:PROBE_ROWS])
    return np.ascontiguousarray(np.vstack(rows), dtype=np.float32)


class RBFDecision:
    """The decision function of a fitted RBF ``OneClassSVM``, vectorised."""

    BLOCK_ROWS = 1_024  # a (1024, n_sv) float64 block of distances stays in L2 cache

    def __init__(self, model) -> None:
        if getattr(model, "kernel", None) != "rbf":
            raise ValueError(f"only the RBF kernel is vectorised, not {getattr(model, 'kernel', None)!r}")
        support = np.asarray(model.support_vectors_, dtype=np.float64)
        gamma = float(model._gamma)
        # -gamma |x - s|^2 = [x, |x|^2, 1] . [2 gamma s, -gamma, -gamma |s|^2]: one GEMM per block.
        self.augmented = np.ascontiguousarray(np.hstack([
            2 * gamma * support, np.full((len(support), 1), -gamma), -gamma * (support**2).sum(1, keepdims=True),
        ]).T)
        self.coef64 = np.asarray(model.dual_coef_, dtype=np.float64).ravel()
        self.coef32 = self.coef64.astype(np.float32)
        self.intercept = float(np.asarray(model.intercept_).ravel()[0])

    def _block(self, X: np.ndarray) -> np.ndarray:
        n, d = X.shape
        rows = np.empty((n, d + 2))
        rows[:, :d] = X
        rows[:, d] = np.einsum("ij,ij->i", rows[:, :d], rows[:, :d])
        rows[:, d + 1] = 1.0
        exponent = rows @ self.augmented  # float64: no cancellation worth speaking of
        if X.dtype == np.float64:  # the retry path: everything in float64
            return np.exp(exponent) @ self.coef64 + self.intercept
        kernel = exponent.astype(np.float32)
        np.exp(kernel, out=kernel)
        return (kernel @ self.coef32).astype(np.float64) + self.intercept

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return map_rows(self._block, X, block=self.BLOCK_ROWS)


class ForestDepths:
    """``IsolationForest.score_samples`` from the fitted trees' ``apply`` and leaf tables."""

    def __init__(self, model) -> None:
        from sklearn.ensemble._iforest import _average_path_length

        self.trees = [estimator.tree_ for estimator in model.estimators_]
        self.features = [None if len(f) == model.n_features_in_ and np.array_equal(f, np.arange(len(f)))
                         else np.asarray(f) for f in model.estimators_features_]
        self.leaf_values = [np.asarray(d, np.float64) + np.asarray(a, np.float64) - 1.0
                            for d, a in zip(model._decision_path_lengths,
                                            model._average_path_length_per_tree, strict=True)]
        self.denominator = len(self.trees) * float(_average_path_length([model._max_samples])[0])

    def _block(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        depths = np.zeros(len(X))
        for tree, features, values in zip(self.trees, self.features, self.leaf_values, strict=True):
            rows = X if features is None else np.ascontiguousarray(X[:, features])
            depths += values[tree.apply(rows)]
        if self.denominator == 0:
            return np.ones_like(depths)
        return 2 ** (-(depths / self.denominator))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return map_rows(self._block, X)


def checked(fast, reference, probe: np.ndarray, tolerance: float, what: str):
    """``fast`` if it agrees with ``reference`` on ``probe`` within ``tolerance``, else None."""
    try:
        difference = float(np.max(np.abs(fast(probe) - reference(probe))))
    except Exception as exc:  # a model layout this code does not know: use scikit-learn
        warnings.warn(f"{what}: vectorised scoring unavailable ({exc}); scoring with scikit-learn.",
                      RuntimeWarning, stacklevel=3)
        return None
    if not difference <= tolerance:
        warnings.warn(f"{what}: vectorised scoring differs from scikit-learn by {difference:.3g} "
                      f"(> {tolerance:g}) on the probe rows; scoring with scikit-learn.",
                      RuntimeWarning, stacklevel=3)
        return None
    return fast
