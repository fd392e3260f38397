"""The fast scoring paths give the library's numbers: on real KDD rows and on random rows.

One-Class SVM and Isolation Forest are scored by anodet's own vectorised code
(anodet/detectors/fast.py); these tests compare it with scikit-learn's ``decision_function`` and
``score_samples`` on the stored models and on freshly fitted ones. The neural detectors'
rewritten numpy LSTM and sigmoid are compared with Keras.
"""

from __future__ import annotations

import numpy as np
import pytest

from anodet.detectors import create
from anodet.detectors import parallel as parallel_module
from anodet.detectors.fast import RBFDecision
from anodet.schema import FEATURES

N_FEATURES = len(FEATURES)  # detectors named by kind alone are the kdd18 ones

OCSVM_MAX_DIFFERENCE = 1e-4  # float32 exponentials; measured ~1.1e-5 on decision values ~40


@pytest.fixture(scope="module")
def rows(splits, store) -> dict[str, np.ndarray]:
    """Real scaled test rows (20,000, with repeats) and random rows in and around [0, 1]."""
    rng = np.random.default_rng(3)
    test = store.feature_set("kdd18").transform(splits.test[list(FEATURES)].to_numpy(np.float64))
    validation = store.feature_set("kdd18").transform(splits.validation[list(FEATURES)].to_numpy(np.float64))
    return {
        "real": np.vstack([test, validation[:10_000]]).astype(np.float32),
        "uniform": rng.uniform(0, 1, (20_000, N_FEATURES)).astype(np.float32),
        "wide": rng.uniform(-10, 11, (5_000, N_FEATURES)).astype(np.float32),
    }


@pytest.mark.parametrize("kind", ["real", "uniform", "wide"])
def test_ocsvm_fast_path_matches_decision_function(store, rows, kind):
    detector = store.detector("ocsvm")
    assert detector._decision is not None, "the stored One-Class SVM should use the vectorised path"
    X = rows[kind]
    difference = np.abs(detector.score(X) + detector.model_.decision_function(X))
    assert difference.max() <= OCSVM_MAX_DIFFERENCE


@pytest.mark.parametrize("kind", ["real", "uniform", "wide"])
def test_iforest_fast_path_matches_score_samples(store, rows, kind):
    detector = store.detector("iforest")
    assert detector._depths is not None, "the stored Isolation Forest should use the vectorised path"
    X = rows[kind]
    np.testing.assert_allclose(detector.score(X), -detector.model_.score_samples(X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_fast_paths_do_not_depend_on_threads_or_blocks(store, rows, threads, monkeypatch):
    monkeypatch.setattr(parallel_module, "THREADS", threads)
    X = rows["real"]
    for name in ("ocsvm", "iforest", "pca", "kmeans", "mahalanobis", "autoencoder", "seq2seq"):
        detector = store.detector(name)
        whole = detector.score(X[:3_000])  # scored as one block
        # float32 products may round differently for another block shape: ~1e-6 relative
        np.testing.assert_allclose(detector.score(X)[:3_000], whole, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_freshly_fitted_models_take_and_pass_the_fast_paths():
    rng = np.random.default_rng(0)
    normals = np.clip(rng.normal(0.4, 0.1, (3000, N_FEATURES)), 0, 1).astype(np.float32)
    X = rng.uniform(-1, 2, (4000, N_FEATURES)).astype(np.float32)
    ocsvm = create("ocsvm", nu=0.1, gamma=0.3, max_rows=1500).fit(normals)
    assert ocsvm._decision is not None
    assert np.abs(ocsvm.score(X) + ocsvm.model_.decision_function(X)).max() <= OCSVM_MAX_DIFFERENCE
    forest = create("iforest", n_estimators=50, max_samples=128).fit(normals)
    assert forest._depths is not None
    np.testing.assert_allclose(forest.score(X), -forest.model_.score_samples(X), rtol=0, atol=1e-12)


def test_a_fast_path_that_disagrees_on_the_probe_is_not_used(monkeypatch):
    rng = np.random.default_rng(1)
    normals = rng.uniform(0.3, 0.5, (800, N_FEATURES)).astype(np.float32)
    monkeypatch.setattr(RBFDecision, "_block", lambda self, X: np.zeros(len(X)))
    with pytest.warns(RuntimeWarning, match="differs from scikit-learn"):
        detector = create("ocsvm", max_rows=800).fit(normals)
    assert detector._decision is None
    X = rng.uniform(0, 1, (50, N_FEATURES)).astype(np.float32)
    np.testing.assert_array_equal(detector.score(X), -detector.model_.decision_function(X))


def test_lof_scores_are_scikit_learns(store, rows):
    detector = store.detector("lof")
    X = rows["real"][:5_000]
    np.testing.assert_array_equal(detector.score(X), -detector.model_.score_samples(X))


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
    np.testing.assert_allclose(pca.score(rows["real"]), (residual**2).sum(1), rtol=1e-4, atol=1e-5)
    kmeans = store.detector("kmeans")
    d2 = ((X[:, None, :] - kmeans.centers_[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_allclose(kmeans.score(rows["real"]), np.sqrt(d2.min(1)), rtol=1e-4, atol=1e-5)
    maha = store.detector("mahalanobis")
    d = X - maha.mean_
    np.testing.assert_allclose(maha.score(rows["real"]), np.einsum("ij,jk,ik->i", d, maha.precision_, d),
                               rtol=1e-4, atol=1e-4)
