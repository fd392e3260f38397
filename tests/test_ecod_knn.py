"""ECOD and k-nearest neighbours: exact against straightforward computations, against PyOD, and stored as arrays."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from anodet.detectors import create, detector_class


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training rows with skewed, negatively skewed, constant and tied columns; test rows in and out of range."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.exponential(size=800), -rng.exponential(size=800), np.full(800, 0.25),
                         rng.integers(0, 4, 800) / 4, rng.normal(size=800), rng.uniform(size=800)])
    T = np.vstack([np.column_stack([rng.exponential(size=60), -rng.exponential(size=60), np.full(60, 0.25),
                                    rng.integers(0, 4, 60) / 4, rng.normal(size=60), rng.uniform(size=60)]),
                   rng.uniform(-6, 9, (40, 6)), X[:10]])
    T[-5:, 2] = 0.5  # off the constant
    return X.astype(np.float32), T.astype(np.float32)


def ecod_reference(X: np.ndarray, T: np.ndarray) -> np.ndarray:
    """ECOD of each test row by counting, one row and feature at a time (the record counted with the training rows)."""
    from scipy.stats import skew

    n = len(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the constant column: scipy warns, and gives NaN
        signs = np.sign(np.nan_to_num(skew(X.astype(np.float64), axis=0)))
    out = np.zeros(len(T))
    for i, row in enumerate(T):
        for j, value in enumerate(row):
            u_l = -np.log((np.sum(X[:, j] <= value) + 1) / (n + 1))
            u_r = -np.log((np.sum(X[:, j] >= value) + 1) / (n + 1))
            u_s = u_l if signs[j] < 0 else u_r if signs[j] > 0 else u_l + u_r
            out[i] += max(u_l, u_r, u_s)
    return out


def knn_reference(X: np.ndarray, T: np.ndarray, k: int, method: str) -> np.ndarray:
    d = np.sqrt(((T.astype(np.float64)[:, None, :] - X.astype(np.float64)[None]) ** 2).sum(-1))
    nearest = np.sort(d, axis=1)[:, :k]
    return nearest[:, -1] if method == "largest" else nearest.mean(axis=1)


def test_ecod_is_its_formula_by_counting():
    X, T = data()
    detector = create("ecod").fit(X)
    np.testing.assert_allclose(detector.decision_function(T), ecod_reference(X, T), rtol=1e-12, atol=1e-12)
    per_feature = detector.feature_scores(T)
    assert per_feature.shape == T.shape
    np.testing.assert_allclose(per_feature.sum(axis=1), detector.decision_function(T), rtol=1e-12)


@pytest.mark.parametrize("method", ["largest", "mean"])
@pytest.mark.parametrize("k", [1, 5, 40])
def test_knn_is_the_brute_force_distance(k, method, monkeypatch):
    from anodet.detectors import neighbours

    X, T = data()
    monkeypatch.setattr(neighbours, "BLOCK_VALUES", 800 * 7)  # several blocks of 7 rows
    detector = create("knn", n_neighbors=k, method=method).fit(X)
    np.testing.assert_allclose(detector.decision_function(T), knn_reference(X, T, k, method), rtol=1e-12, atol=1e-12)


def test_knn_feature_scores_add_up_to_the_squared_distance():
    X, T = data()
    detector = create("knn").fit(X)
    np.testing.assert_allclose(detector.feature_scores(T).sum(axis=1), detector.decision_function(T) ** 2, rtol=1e-9)


def test_knn_keeps_a_seeded_sample_and_fewer_rows_than_k():
    X, T = data()
    capped = create("knn", max_rows=100, seed=3).fit(X)
    assert capped.reference_.shape == (100, X.shape[1])
    np.testing.assert_array_equal(capped.reference_, create("knn", max_rows=100, seed=3).fit(X).reference_)
    few = create("knn", n_neighbors=5).fit(X[:3])  # k larger than the rows: the farthest of them
    np.testing.assert_allclose(few.decision_function(T), knn_reference(X[:3], T, 3, "largest"), rtol=1e-12)


@pytest.mark.parametrize("name", ["ecod", "knn"])
def test_state_is_plain_arrays_and_round_trips(name, tmp_path):
    X, T = data()
    detector = create(name, seed=1).fit(X)
    files = detector.save(tmp_path / name)
    assert sorted(p.name for p in files) == ["params.json", "state.npz"]
    with np.load(tmp_path / name / "state.npz", allow_pickle=False) as state:
        assert all(state[k].dtype != object for k in state.files)
    loaded = detector_class(name).load(tmp_path / name)
    np.testing.assert_array_equal(loaded.decision_function(T), detector.decision_function(T))
    assert json.loads((tmp_path / name / "params.json").read_text())["seed"] == 1


def test_inconsistent_ecod_arrays_are_refused(tmp_path):
    X, _ = data()
    detector = create("ecod").fit(X)
    detector.save(tmp_path)
    state = dict(np.load(tmp_path / "state.npz", allow_pickle=False))
    state["at_or_below"] = state["at_or_below"][::-1].copy()
    np.savez(tmp_path / "state.npz", **state)
    with pytest.raises(ValueError, match="inconsistent ECOD arrays"):
        detector_class("ecod").load(tmp_path)


@pytest.mark.parametrize("name", ["ecod", "knn"])
def test_scores_stay_finite_far_outside_the_training_range(name):
    X, _ = data()
    detector = create(name).fit(X)
    biggest = np.finfo(np.float32).max
    far = np.array([[biggest] * 6, [-biggest] * 6, [1e30, -1e30, 0, 1e19, -1e19, 0]], dtype=np.float32)
    assert np.isfinite(detector.decision_function(far)).all()
    assert detector.decision_function(np.empty((0, 6), np.float32)).shape == (0,)


@pytest.mark.parametrize("name", ["ecod", "knn"])
def test_scores_are_finite_everywhere_in_the_scorers_box(name):
    """The scoring routine passes detectors rows inside [-10, 11]; corners, subnormals and signed zeros included."""
    from tests.adversarial.test_detector_extremes import box_rows

    rows = box_rows()
    rng = np.random.default_rng(2)
    detector = create(name).fit(rng.uniform(0, 1, (500, rows.shape[1])).astype(np.float32))
    scores = detector.decision_function(rows)
    assert scores.shape == (len(rows),) and np.isfinite(scores).all()
    assert np.isfinite(detector.feature_scores(rows)).all()


def test_higher_means_more_anomalous():
    X, _ = data()
    rng = np.random.default_rng(1)
    for name in ("ecod", "knn"):
        detector = create(name).fit(X)
        inside, outside = (detector.decision_function(X[:50]),
                           detector.decision_function(X[:50] + rng.choice([-5.0, 5.0], X[:50].shape)))
        assert (outside > inside).mean() > 0.95, name


def test_pyod_ecod_scores_one_appended_record_the_same():
    pyod_ecod = pytest.importorskip("pyod.models.ecod")
    X, T = data()
    ours = create("ecod").fit(X).decision_function(T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # PyOD's skewness of the constant column
        model = pyod_ecod.ECOD().fit(X.astype(np.float64))
        theirs = np.array([model.decision_function(T[i:i + 1].astype(np.float64))[0] for i in range(len(T))])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["largest", "mean"])
def test_pyod_knn_gives_the_same_scores(method):
    pyod_knn = pytest.importorskip("pyod.models.knn")
    X, T = data()
    ours = create("knn", n_neighbors=7, method=method).fit(X).decision_function(T)
    theirs = pyod_knn.KNN(n_neighbors=7, method=method).fit(X.astype(np.float64)).decision_function(
        T.astype(np.float64))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_train_builds_ecod_and_knn_into_a_store(tmp_path):
    """`python -m anodet train --detectors ecod,knn` on a small KDD subset, into a scratch store."""
    store = tmp_path / "store"
    out = subprocess.run([sys.executable, "-m", "anodet", "train", "--detectors", "ecod,knn", "--feature-sets",
                          "kdd18", "--train-rows", "3000", "--store", str(store)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    from anodet.store.core import Store

    opened = Store.open(store)
    assert set(opened.names) == {"ecod", "knn"}
    for name in opened.names:
        entry = opened.entry(name)
        assert entry["metrics"]["test"]["reference"]["roc_auc"] > 0.8, name
