"""The fast scoring paths give the library's numbers: on real KDD rows and on random rows.

The One-Class SVM, Isolation Forest, LOF and supervised forest are scored from plain arrays
(anodet/detectors/fast.py); tests/test_array_state.py compares them with scikit-learn on KDD rows.
The neural detectors' rewritten numpy LSTM and sigmoid are compared with Keras.
"""

from __future__ import annotations

import numpy as np
import pytest

from anodet.datasets.kdd_schema import FEATURES
from anodet.detectors import parallel as parallel_module
from tests.conftest import kdd_frame

N_FEATURES = len(FEATURES)  # detectors named by kind alone are the kdd18 ones


@pytest.fixture(scope="module")
def rows(splits, store) -> dict[str, np.ndarray]:
    """Real scaled test rows (20,000, with repeats) and random rows in and around [0, 1]."""
    rng = np.random.default_rng(3)
    test = store.feature_set("kdd18").transform(kdd_frame(splits.test)[list(FEATURES)].to_numpy(np.float64))
    validation = store.feature_set("kdd18").transform(kdd_frame(splits.validation)[list(FEATURES)].to_numpy(np.float64))
    return {
        "real": np.vstack([test, validation[:10_000]]).astype(np.float32),
        "uniform": rng.uniform(0, 1, (20_000, N_FEATURES)).astype(np.float32),
        "wide": rng.uniform(-10, 11, (5_000, N_FEATURES)).astype(np.float32),
    }


@pytest.mark.parametrize("threads", [1, 2])
def test_fast_paths_do_not_depend_on_threads_or_blocks(store, rows, threads, monkeypatch):
    monkeypatch.setattr(parallel_module, "THREADS", threads)
    X = rows["real"]
    for name in ("ocsvm", "iforest", "pca", "kmeans", "mahalanobis", "autoencoder", "seq2seq"):
        detector = store.detector(name)
        whole = detector.decision_function(X[:3_000])  # scored as one block
        # float32 products may round differently for another block shape: ~1e-6 relative
        np.testing.assert_allclose(detector.decision_function(X)[:3_000], whole, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["autoencoder", "vae", "bigan", "seq2seq"])
def test_numpy_forward_pass_matches_keras_on_real_rows(store, rows, name):
    detector = store.detector(name)
    X = np.vstack([rows["real"][::4], rows["uniform"][:2_000]])
    np.testing.assert_allclose(detector._numpy_forward(X), detector._tf_forward(X), atol=1e-5)


def test_classical_scores_match_their_formulas_in_float64(store, rows):
    X = rows["real"].astype(np.float64)
    pca = store.detector("pca")
    centred = X - pca.mean_
    residual = centred - centred @ pca.components_.T.astype(np.float64) @ pca.components_
    np.testing.assert_allclose(pca.decision_function(rows["real"]), (residual**2).sum(1), rtol=1e-4, atol=1e-5)
    kmeans = store.detector("kmeans")
    d2 = ((X[:, None, :] - kmeans.centers_[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_allclose(kmeans.decision_function(rows["real"]), np.sqrt(d2.min(1)), rtol=1e-4, atol=1e-5)
    maha = store.detector("mahalanobis")
    d = X - maha.mean_
    np.testing.assert_allclose(maha.decision_function(rows["real"]), np.einsum("ij,jk,ik->i", d, maha.precision_, d),
                               rtol=1e-4, atol=1e-4)
