"""scikit-learn and statistical detectors.

Models whose learned state is a few arrays (PCA, k-means, z-score, Mahalanobis) are stored as
``.npz``; the rest go through skops with an explicit list of trusted types.

Scoring runs block by block on every core (:mod:`anodet.detectors.parallel`), in float32 with
a float64 retry for rows whose float32 score overflows. The One-Class SVM and Isolation Forest
score through their own vectorised code built from the stored scikit-learn model and checked
against scikit-learn when loaded (see :mod:`anodet.detectors.fast`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anodet.detectors.base import Detector, as_matrix, load_arrays, save_arrays
from anodet.detectors.parallel import map_rows, with_float64_retry

STATE_FILE = "state.npz"
SKOPS_FILE = "model.skops"


def _distinct_subset(X: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Distinct rows of ``X``, at most ``max_rows`` drawn at random.

    KDD normals repeat a lot; duplicates break density estimates (LOF) and waste kernel
    evaluations (One-Class SVM) without adding information.
    """
    distinct = np.unique(as_matrix(X), axis=0)
    if len(distinct) > max_rows:
        rng = np.random.default_rng(seed)
        distinct = distinct[rng.choice(len(distinct), max_rows, replace=False)]
    return distinct


def _cast(array: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A learned array in the dtype of the rows being scored (float32, or float64 on retry)."""
    return array.astype(like.dtype, copy=False)


def _row_scores(kernel, X: np.ndarray) -> np.ndarray:
    """``kernel`` (rows -> per-row scores) over ``X`` in blocks and threads, as float64."""
    X = as_matrix(X)
    return map_rows(with_float64_retry(kernel), X).astype(np.float64, copy=False)


def _feature_scores(kernel, X: np.ndarray) -> np.ndarray:
    """``kernel`` (rows -> per-feature scores) over ``X`` in blocks and threads."""
    return map_rows(with_float64_retry(kernel), as_matrix(X))


class PCAReconstruction(Detector):
    """Squared reconstruction error after projecting onto the top principal components."""

    name = "pca"
    display_name = "PCA"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"n_components": 4}

    def fit(self, X: np.ndarray) -> PCAReconstruction:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=self.params["n_components"], random_state=self.seed).fit(as_matrix(X))
        self.mean_ = pca.mean_.astype(np.float32)
        self.components_ = pca.components_.astype(np.float32)
        return self

    def _residual_squares(self, X: np.ndarray) -> np.ndarray:
        components = _cast(self.components_, X)
        centred = X - _cast(self.mean_, X)
        residual = centred - (centred @ components.T) @ components
        return residual**2

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        return _feature_scores(self._residual_squares, X)

    def score(self, X: np.ndarray) -> np.ndarray:
        return _row_scores(lambda b: self._residual_squares(b).sum(axis=1), X)

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, mean=self.mean_, components=self.components_)]

    def _load_state(self, folder: Path) -> None:
        state = load_arrays(folder / STATE_FILE)
        self.mean_, self.components_ = state["mean"], state["components"]


class KMeansDistance(Detector):
    """Distance to the nearest of k centroids of the normal records."""

    name = "kmeans"
    display_name = "k-means distance"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"n_clusters": 16}

    def fit(self, X: np.ndarray) -> KMeansDistance:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=self.params["n_clusters"], n_init=4, random_state=self.seed)
        model.fit(as_matrix(X))
        self.centers_ = model.cluster_centers_.astype(np.float32)
        return self

    def _squares_to_nearest(self, X: np.ndarray) -> np.ndarray:
        centers = _cast(self.centers_, X)
        d2 = (X**2).sum(1)[:, None] - 2 * X @ centers.T + (centers**2).sum(1)[None, :]
        return (X - centers[np.argmin(d2, axis=1)]) ** 2

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        return _feature_scores(self._squares_to_nearest, X)

    def score(self, X: np.ndarray) -> np.ndarray:
        return _row_scores(lambda b: np.sqrt(self._squares_to_nearest(b).sum(axis=1)), X)

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, centers=self.centers_)]

    def _load_state(self, folder: Path) -> None:
        self.centers_ = load_arrays(folder / STATE_FILE)["centers"]


class ZScore(Detector):
    """Mean squared z-score over the features (each feature against the normal mean and spread)."""

    name = "zscore"
    display_name = "z-score"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"min_std": 1e-3}

    def fit(self, X: np.ndarray) -> ZScore:
        X = as_matrix(X)
        self.mean_ = X.mean(axis=0)
        self.std_ = np.maximum(X.std(axis=0), self.params["min_std"]).astype(np.float32)
        return self

    def _squared_z(self, X: np.ndarray) -> np.ndarray:
        return ((X - _cast(self.mean_, X)) / _cast(self.std_, X)) ** 2

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        return _feature_scores(self._squared_z, X)

    def score(self, X: np.ndarray) -> np.ndarray:
        return _row_scores(lambda b: self._squared_z(b).mean(axis=1), X)

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, mean=self.mean_, std=self.std_)]

    def _load_state(self, folder: Path) -> None:
        state = load_arrays(folder / STATE_FILE)
        self.mean_, self.std_ = state["mean"], state["std"]


class Mahalanobis(Detector):
    """Squared Mahalanobis distance to the normal mean under a shrunk covariance."""

    name = "mahalanobis"
    display_name = "Mahalanobis"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {}

    def fit(self, X: np.ndarray) -> Mahalanobis:
        from sklearn.covariance import LedoitWolf

        model = LedoitWolf().fit(as_matrix(X).astype(np.float64))
        self.mean_ = model.location_.astype(np.float32)
        self.precision_ = model.precision_.astype(np.float32)
        return self

    def _terms(self, X: np.ndarray) -> np.ndarray:
        """In float64: the terms cancel (the score is a small difference of large terms), and in
        float32 a matrix product rounds a row differently depending on where it sits in the block
        (identical records differed by up to 1.5e-3). In float64 that difference is ~1e-13 of the
        terms; the product is one BLAS call (a per-feature loop makes O(d) passes over the block:
        134k rather than 1.3M rows/s at kdd41's ~120 inputs)."""
        d = X.astype(np.float64) - self.mean_.astype(np.float64)
        dp = d @ self.precision_.astype(np.float64)
        return d * dp

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        """Each feature's term of ``d' P d``; the terms sum to the score (some may be negative)."""
        return _feature_scores(self._terms, X)

    def score(self, X: np.ndarray) -> np.ndarray:
        return _row_scores(lambda b: self._terms(b).sum(axis=1), X)

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, mean=self.mean_, precision=self.precision_)]

    def _load_state(self, folder: Path) -> None:
        state = load_arrays(folder / STATE_FILE)
        self.mean_, self.precision_ = state["mean"], state["precision"]


class _SkopsDetector(Detector):
    """A detector whose learned state is one scikit-learn estimator stored with skops."""

    trusted_types: ClassVar[tuple[str, ...]] = ()

    def _save_state(self, folder: Path) -> list[Path]:
        import skops.io as sio

        path = folder / SKOPS_FILE
        sio.dump(self.model_, path)
        return [path]

    def _load_state(self, folder: Path) -> None:
        import skops.io as sio

        self.model_ = sio.load(folder / SKOPS_FILE, trusted=list(self.trusted_types))
        self._prepare()

    def _prepare(self) -> None:
        """Build (and check) any fast scoring path from ``model_``; called after fit and load."""

    def score(self, X: np.ndarray) -> np.ndarray:
        X = as_matrix(X)
        if len(X) == 0:  # scikit-learn refuses empty input; an empty batch has no scores
            return np.empty(0, dtype=np.float64)
        return self._score(X)

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OneClassSVMDetector(_SkopsDetector):
    """RBF One-Class SVM on a random subset of distinct normals; score = minus the decision value."""

    name = "ocsvm"
    display_name = "One-Class SVM"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"nu": 0.05, "gamma": 1.0, "max_rows": 10_000}
    trusted_types = ("sklearn.svm._classes.OneClassSVM",)

    def fit(self, X: np.ndarray) -> OneClassSVMDetector:
        from sklearn.svm import OneClassSVM

        subset = _distinct_subset(X, self.params["max_rows"], self.seed)
        self.model_ = OneClassSVM(nu=self.params["nu"], gamma=self.params["gamma"]).fit(subset)
        self._prepare()
        return self

    _decision = None

    def _prepare(self) -> None:
        from anodet.detectors.fast import OCSVM_TOLERANCE, RBFDecision, checked, probe_rows

        try:
            fast = RBFDecision(self.model_)
        except (AttributeError, ImportError, ValueError, TypeError):  # a layout we do not know
            fast = None
        if fast is not None:
            probe = probe_rows(self.model_.n_features_in_, self.model_.support_vectors_)
            fast = checked(fast, self.model_.decision_function, probe, OCSVM_TOLERANCE, "One-Class SVM")
        self._decision = fast

    def _score(self, X: np.ndarray) -> np.ndarray:
        if self._decision is not None:
            return -self._decision(X)
        return -self.model_.decision_function(X).astype(np.float64)


class IsolationForestDetector(_SkopsDetector):
    """Isolation Forest; score = minus scikit-learn's ``score_samples`` (shorter paths score higher)."""

    name = "iforest"
    display_name = "Isolation Forest"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"n_estimators": 100, "max_samples": 256}
    trusted_types = (
        "sklearn.ensemble._iforest.IsolationForest",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn.tree._tree.Tree",
    )

    def fit(self, X: np.ndarray) -> IsolationForestDetector:
        from sklearn.ensemble import IsolationForest

        self.model_ = IsolationForest(
            n_estimators=self.params["n_estimators"], max_samples=self.params["max_samples"],
            random_state=self.seed, n_jobs=1,
        ).fit(as_matrix(X))
        self._prepare()
        return self

    _depths = None

    def _prepare(self) -> None:
        from anodet.detectors.fast import ForestDepths, checked, probe_rows

        try:
            fast = ForestDepths(self.model_)
        except (AttributeError, ImportError, ValueError, TypeError):  # a layout we do not know
            fast = None
        if fast is not None:
            fast = checked(fast, lambda X: -self.model_.score_samples(X),
                           probe_rows(self.model_.n_features_in_), 1e-12, "Isolation Forest")
        self._depths = fast

    def _score(self, X: np.ndarray) -> np.ndarray:
        if self._depths is not None:
            return self._depths(X)
        return -self.model_.score_samples(X).astype(np.float64)


class LocalOutlierFactorDetector(_SkopsDetector):
    """Local Outlier Factor in novelty mode, fitted on a random subset of distinct normals."""

    name = "lof"
    display_name = "Local Outlier Factor"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"n_neighbors": 20, "max_rows": 8_000}
    trusted_types = (
        "sklearn.neighbors._lof.LocalOutlierFactor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
    )

    def fit(self, X: np.ndarray) -> LocalOutlierFactorDetector:
        from sklearn.neighbors import LocalOutlierFactor

        subset = _distinct_subset(X, self.params["max_rows"], self.seed)
        self.model_ = LocalOutlierFactor(
            n_neighbors=self.params["n_neighbors"], novelty=True, algorithm="brute"
        ).fit(subset)
        return self

    def _score(self, X: np.ndarray) -> np.ndarray:
        # One thread: scikit-learn's neighbour search already uses every core. Blocks bound
        # memory; rows whose float32 distances overflow are scored again in float64.
        return map_rows(with_float64_retry(lambda b: -self.model_.score_samples(b).astype(np.float64)),
                        X, block=65_536, threads=1)
