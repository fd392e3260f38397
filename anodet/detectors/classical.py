"""scikit-learn and statistical detectors.

Every detector's learned state is stored as plain arrays in ``state.npz`` (read with
``allow_pickle=False``). The One-Class SVM, Isolation Forest and Local Outlier Factor are fitted
with scikit-learn, but only the arrays their scores need are kept, and they are scored from those
(:mod:`anodet.detectors.from_arrays`), so loading them never imports scikit-learn, nor does scoring
them (the trees are walked in numpy, :mod:`anodet.detectors.forest`), but for LOF's neighbour search,
imported on its first score.

Scoring runs block by block on every core (:mod:`anodet.detectors.parallel`), in float32 with
a float64 retry for rows whose float32 score overflows. The scorers built from the arrays are
checked against scikit-learn right after fitting; a model they cannot reproduce is not saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anodet.detectors.base import Detector, as_matrix, load_arrays, save_arrays
from anodet.detectors.from_arrays import (
    LOF_RTOL,
    OCSVM_TOLERANCE,
    LOFScores,
    RBFDecision,
    TreeEnsemble,
    check,
    probe_rows,
)
from anodet.detectors.parallel import map_rows, with_float64_retry

STATE_FILE = "state.npz"


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

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> PCAReconstruction:
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

    def decision_function(self, X: np.ndarray) -> np.ndarray:
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

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> KMeansDistance:
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

    def decision_function(self, X: np.ndarray) -> np.ndarray:
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

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> ZScore:
        X = as_matrix(X)
        self.mean_ = X.mean(axis=0)
        self.std_ = np.maximum(X.std(axis=0), self.params["min_std"]).astype(np.float32)
        return self

    def _squared_z(self, X: np.ndarray) -> np.ndarray:
        return ((X - _cast(self.mean_, X)) / _cast(self.std_, X)) ** 2

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        return _feature_scores(self._squared_z, X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return _row_scores(lambda b: self._squared_z(b).mean(axis=1), X)

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, mean=self.mean_, std=self.std_)]

    def _load_state(self, folder: Path) -> None:
        state = load_arrays(folder / STATE_FILE)
        self.mean_, self.std_ = state["mean"], state["std"]


class Mahalanobis(Detector):
    """Squared Mahalanobis distance to the normal mean under a shrunk covariance.

    The score is taken as ``|L' d|^2`` with ``P = L L'`` (the precision's Cholesky factor, from
    float64): a sum of squares, so float32 matrix products lose only float32's relative precision
    (~1e-6 of the score), where ``d' P d`` summed term by term cancels large terms (see :meth:`_terms`).
    """

    name = "mahalanobis"
    display_name = "Mahalanobis"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {}

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Mahalanobis:
        from sklearn.covariance import LedoitWolf

        model = LedoitWolf().fit(as_matrix(X).astype(np.float64))
        self.mean_ = model.location_.astype(np.float32)
        self.precision_ = model.precision_.astype(np.float32)
        self._factor()
        return self

    def _terms(self, X: np.ndarray) -> np.ndarray:
        """Each feature's term of ``d' P d`` (what explanations split the score into), in float64: the terms
        cancel (the score is a small difference of large terms), and in float32 a matrix product would round a
        row differently depending on where it sits in the block. The product is one BLAS call, not a loop over
        the features."""
        d = X.astype(np.float64) - self.mean_.astype(np.float64)
        dp = d @ self.precision_.astype(np.float64)
        return d * dp

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        """Each feature's term of ``d' P d``; the terms sum to the score (some may be negative)."""
        return _feature_scores(self._terms, X)

    def _factor(self) -> None:
        """``L`` with ``P = L L'`` from the float64 precision (None if it is not positive definite)."""
        P = self.precision_.astype(np.float64)
        try:
            self.factor_: np.ndarray | None = np.linalg.cholesky((P + P.T) / 2)
        except np.linalg.LinAlgError:
            self.factor_ = None

    def _squares(self, X: np.ndarray) -> np.ndarray:
        if self.factor_ is None:
            return self._terms(X).sum(axis=1)
        y = (X - _cast(self.mean_, X)) @ _cast(self.factor_, X)
        return np.einsum("ij,ij->i", y, y)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return _row_scores(self._squares, X)

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, mean=self.mean_, precision=self.precision_)]

    def _load_state(self, folder: Path) -> None:
        state = load_arrays(folder / STATE_FILE)
        self.mean_, self.precision_ = state["mean"], state["precision"]
        self._factor()


class _ArrayModel(Detector):
    """A detector fitted with scikit-learn whose learned state is saved as plain arrays (``state.npz``).

    :meth:`_arrays` takes the arrays from the fitted estimator; :meth:`_use` builds the scorer
    from them (after fit and after load, so both score the same way, without the estimator). After
    fitting, the scorer is checked against the estimator on probe rows (:func:`anodet.detectors.from_arrays.check`).
    The estimator itself (``model_``) is kept only in the process that fitted it.
    """

    model_: Any = None

    def _adopt(self, model: Any, probe: np.ndarray) -> None:
        """Take the arrays of the fitted ``model``, build the scorer and check it on ``probe``."""
        self.model_ = model
        self.state_ = self._arrays(model)
        self._use(self.state_)
        self._check(model, probe)

    def _arrays(self, model: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _use(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _check(self, model: Any, probe: np.ndarray) -> None:
        raise NotImplementedError

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, **self.state_)]

    def _load_state(self, folder: Path) -> None:
        if not (folder / STATE_FILE).exists() and (folder / "model.skops").exists():
            raise FileNotFoundError(f"{folder} holds a model.skops from an older anodet; convert the store once "
                                    f"with `python scripts/migrate_skops_state.py <store>` (or retrain)")
        self.state_ = load_arrays(folder / STATE_FILE)
        self._use(self.state_)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = as_matrix(X)
        if len(X) == 0:  # an empty batch has no scores
            return np.empty(0, dtype=np.float64)
        return self._score(X)

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OneClassSVMDetector(_ArrayModel):
    """RBF One-Class SVM on a random subset of distinct normals; score = minus the decision value.

    Stored: support vectors, dual coefficients, intercept and gamma
    (:class:`~anodet.detectors.from_arrays.RBFDecision`).
    """

    name = "ocsvm"
    display_name = "One-Class SVM"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"nu": 0.05, "gamma": 1.0, "max_rows": 10_000}

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> OneClassSVMDetector:
        from sklearn.svm import OneClassSVM

        subset = _distinct_subset(X, self.params["max_rows"], self.seed)
        model = OneClassSVM(nu=self.params["nu"], gamma=self.params["gamma"]).fit(subset)
        self._adopt(model, probe_rows(subset.shape[1], model.support_vectors_))
        return self

    def _arrays(self, model: Any) -> dict[str, np.ndarray]:
        return RBFDecision.arrays_of(model)

    def _use(self, state: dict[str, np.ndarray]) -> None:
        self._decision = RBFDecision.from_arrays(state)

    def _check(self, model: Any, probe: np.ndarray) -> None:
        check(self._decision, model.decision_function, probe, "One-Class SVM", atol=OCSVM_TOLERANCE)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self._decision(X)


class IsolationForestDetector(_ArrayModel):
    """Isolation Forest; score = minus scikit-learn's ``score_samples`` (shorter paths score higher).

    Stored: the trees' node arrays with the leaf table ``depth + c(n) - 1`` per leaf, and the
    normalising denominator ``n_trees * c(max_samples)`` (:class:`~anodet.detectors.from_arrays.TreeEnsemble`).
    """

    name = "iforest"
    display_name = "Isolation Forest"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"n_estimators": 100, "max_samples": 256}

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> IsolationForestDetector:
        from sklearn.ensemble import IsolationForest

        X = as_matrix(X)
        model = IsolationForest(
            n_estimators=self.params["n_estimators"], max_samples=self.params["max_samples"],
            random_state=self.seed, n_jobs=1,
        ).fit(X)
        self._adopt(model, probe_rows(X.shape[1], X))
        return self

    def _arrays(self, model: Any) -> dict[str, np.ndarray]:
        from sklearn.ensemble._iforest import _average_path_length

        n = model.n_features_in_
        features = [None if len(f) == n and np.array_equal(f, np.arange(n)) else np.asarray(f)
                    for f in model.estimators_features_]
        leaf_values = [np.asarray(d, np.float64) + np.asarray(a, np.float64) - 1.0
                       for d, a in zip(model._decision_path_lengths, model._average_path_length_per_tree, strict=True)]
        arrays = TreeEnsemble.arrays_of([e.tree_ for e in model.estimators_], leaf_values, features, n)
        denominator = len(model.estimators_) * float(_average_path_length([model._max_samples])[0])
        return {**arrays, "denominator": np.asarray([denominator])}

    def _use(self, state: dict[str, np.ndarray]) -> None:
        self._trees = TreeEnsemble(state)
        self._denominator = float(state["denominator"][0])

    def _check(self, model: Any, probe: np.ndarray) -> None:
        check(self._score, lambda X: -model.score_samples(X), probe, "Isolation Forest", atol=1e-12)

    def _block(self, X: np.ndarray) -> np.ndarray:
        depths = self._trees.total(X)
        if self._denominator == 0:
            return np.ones_like(depths)
        return 2 ** (-(depths / self._denominator))

    def _score(self, X: np.ndarray) -> np.ndarray:
        self._trees.prepare()
        return map_rows(self._block, X)


class LocalOutlierFactorDetector(_ArrayModel):
    """Local Outlier Factor in novelty mode, fitted on a random subset of distinct normals.

    Stored: the fitted rows, their k-distances and local reachability densities, and k
    (:class:`~anodet.detectors.from_arrays.LOFScores`).
    """

    name = "lof"
    display_name = "Local Outlier Factor"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"n_neighbors": 20, "max_rows": 8_000}

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> LocalOutlierFactorDetector:
        from sklearn.neighbors import LocalOutlierFactor

        subset = _distinct_subset(X, self.params["max_rows"], self.seed)
        model = LocalOutlierFactor(n_neighbors=self.params["n_neighbors"], novelty=True, algorithm="brute").fit(subset)
        self._adopt(model, probe_rows(subset.shape[1], subset))
        return self

    def _arrays(self, model: Any) -> dict[str, np.ndarray]:
        return LOFScores.arrays_of(model)

    def _use(self, state: dict[str, np.ndarray]) -> None:
        self._lof = LOFScores.from_arrays(state)

    def _check(self, model: Any, probe: np.ndarray) -> None:
        # rows with a tie for the k-th neighbour may legitimately pick another neighbour (fast.LOFScores)
        check(self._score, lambda X: -model.score_samples(X), probe, "Local Outlier Factor", rtol=LOF_RTOL,
              exempt=self._lof.ties(probe))

    def _score(self, X: np.ndarray) -> np.ndarray:
        # One thread: scikit-learn's neighbour search already uses every core. Blocks bound
        # memory; rows whose float32 distances overflow are scored again in float64.
        self._lof.prepare()
        block = 65_536 if self._lof._search else LOFScores.BLOCK_ROWS
        return map_rows(with_float64_retry(lambda b: -self._lof._block(b)), X, block=block,
                        threads=1 if self._lof._search else None)
