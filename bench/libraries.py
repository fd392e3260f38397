"""Each stored detector's model scored by the library it was fitted with, for side-by-side timings.

The store keeps plain arrays, not the libraries' estimators, so the estimator is fitted again here
exactly as training fitted it (the store's parameters and seed, the same training rows, through the
detector's own ``fit``, which keeps the estimator as ``model_``); the benchmark checks that it gives
the stored detector's scores. The neural detectors' Keras models are read from the store.
Each scorer returns anodet's score (higher = more anomalous) computed the library's way:

* One-Class SVM: ``-OneClassSVM.decision_function``; Isolation Forest, LOF: ``-score_samples``;
  supervised forest: ``predict_proba[:, 1]`` (scikit-learn, the estimator's own ``n_jobs``);
* PCA: squared error of ``inverse_transform(transform(X))``; k-means: ``KMeans.transform(X).min(1)``;
  Mahalanobis: ``LedoitWolf.mahalanobis`` (scikit-learn);
* autoencoder, VAE, BiGAN, seq2seq: squared error of ``keras.Model.predict`` (TensorFlow).

z-score (numpy means and deviations) and the ensembles (computed from their members) have no library.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from anodet.detectors import NEURAL, create
from anodet.features.sets import kind_of, set_of_name

Scorer = Callable[[np.ndarray], np.ndarray]


@lru_cache(maxsize=4)
def _training_rows(feature_set: str) -> Any:
    """The rows training fitted ``feature_set``'s detectors on (train, and the labelled pair)."""
    from anodet.datasets.kdd import load_splits
    from anodet.training.train import prepare

    return prepare(load_splits(), [feature_set], None, 0, labelled=True)[feature_set]


def library_scorer(store: Any, name: str) -> tuple[str, Scorer] | None:
    """(what is called, the library's scoring of ``name``'s model), or None where there is no library."""
    kind = kind_of(name)
    stored = store.detector(name)
    if kind in NEURAL:
        import keras

        model = keras.saving.load_model(store.root / name / "model.keras", safe_mode=True, compile=False)

        def keras_score(X: np.ndarray) -> np.ndarray:
            out = model.predict(X, batch_size=8192, verbose=0).reshape(len(X), -1)
            return ((X - out) ** 2).sum(axis=1).astype(np.float64)

        return "keras Model.predict", keras_score
    if kind in ("zscore", "ensemble"):
        return None
    data = _training_rows(set_of_name(name))
    X_train = data.train.astype(np.float32)
    params = stored.get_params()
    if kind == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=params["n_components"], random_state=params["seed"]).fit(X_train)
        return ("PCA.transform + inverse_transform",
                lambda X: ((X - pca.inverse_transform(pca.transform(X))) ** 2).sum(1))
    if kind == "kmeans":
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=params["n_clusters"], n_init=4, random_state=params["seed"]).fit(X_train)
        return "KMeans.transform", lambda X: km.transform(X).min(axis=1)
    if kind == "mahalanobis":
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf().fit(X_train.astype(np.float64))
        return "LedoitWolf.mahalanobis", lw.mahalanobis
    detector: Any = create(kind, **params)
    detector.fit(*data.labelled) if detector.uses_labels else detector.fit(X_train)
    model = detector.model_  # the scikit-learn estimator its fit kept (the sklearn-backed kinds)
    if kind == "ocsvm":
        return "OneClassSVM.decision_function", lambda X: -model.decision_function(X)
    if kind in ("iforest", "lof"):
        return f"{type(model).__name__}.score_samples", lambda X: -model.score_samples(X)
    if kind == "supervised":
        classes = list(model.classes_)
        model.n_jobs = -1  # as training fitted it (the fit-time exactness check set it to 1)
        return "RandomForestClassifier.predict_proba", lambda X: model.predict_proba(X)[:, classes.index(1)]
    return None
