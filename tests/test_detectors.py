"""Every detector: fit/score shapes, score direction, per-feature scores, save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anodet.detectors import NEURAL, REGISTRY, create, detector_class

N_FEATURES = 23  # any width: no detector assumes one

# 3,000 rows is small data for the neural models (early stopping): max_steps bounds them
QUICK = {"autoencoder": {"max_steps": 300}, "vae": {"max_steps": 300}, "bigan": {"max_steps": 300},
         "seq2seq": {"max_steps": 100}, "ocsvm": {"max_rows": 1500}, "lof": {"max_rows": 1500}}


def synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normals: two tight clusters inside [0, 1]^18; anomalies: spread far from both."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0.2, 0.8, size=(2, N_FEATURES))
    normals = centers[rng.integers(0, 2, 3000)] + rng.normal(0, 0.03, (3000, N_FEATURES))
    anomalies = rng.uniform(0, 1, (200, N_FEATURES))
    return np.clip(normals, 0, 1).astype(np.float32), anomalies.astype(np.float32)


def fitted(name: str, X: np.ndarray):
    if name == "ensemble":
        members = {m: create(m, seed=0).fit(X) for m in ("pca", "zscore", "kmeans")}
        return create("ensemble", members=list(members)).attach(members).fit(X)
    if detector_class(name).uses_labels:  # the supervised ceiling learns from labelled attacks too
        attacks = np.random.default_rng(5).uniform(0, 1, (300, X.shape[1]))
        return create(name, seed=0).fit(np.vstack([X, attacks]), np.r_[np.zeros(len(X)), np.ones(len(attacks))])
    return create(name, seed=0, **QUICK.get(name, {})).fit(X)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REGISTRY))
def test_detector_scores_anomalies_higher_and_round_trips(name, tmp_path):
    normals, anomalies = synthetic()
    train, held_out = normals[:2500], normals[2500:]
    detector = fitted(name, train)
    X = np.vstack([held_out, anomalies])
    y = np.r_[np.zeros(len(held_out)), np.ones(len(anomalies))]
    scores = detector.decision_function(X)
    assert scores.shape == (len(X),)
    assert np.isfinite(scores).all()
    assert roc_auc_score(y, scores) > 0.9, "higher must mean more anomalous"

    contributions = detector.feature_scores(X)
    if contributions is not None:
        assert contributions.shape == (len(X), N_FEATURES)

    files = detector.save(tmp_path / name)
    assert all(p.exists() for p in files)
    assert not any(p.suffix in {".pkl", ".pickle", ".joblib"} for p in files)
    loaded = detector_class(name).load(tmp_path / name)
    if name == "ensemble":
        loaded.attach(detector.members_)
    np.testing.assert_allclose(loaded.decision_function(X), scores, rtol=1e-5, atol=1e-6)


def test_scoring_no_rows_gives_no_scores():
    normals, _ = synthetic()
    for name in ("pca", "zscore", "iforest"):
        assert fitted(name, normals).decision_function(np.empty((0, N_FEATURES), np.float32)).shape == (0,)


@pytest.mark.slow
def test_same_seed_same_model():
    normals, anomalies = synthetic()
    for name in ("kmeans", "iforest", "ocsvm", "autoencoder"):
        a = fitted(name, normals).decision_function(anomalies)
        b = fitted(name, normals).decision_function(anomalies)
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_unknown_parameter_and_detector_are_refused():
    with pytest.raises(TypeError, match="unknown parameter"):
        create("pca", n_componentz=3)
    with pytest.raises(KeyError, match="known detectors"):
        create("nope")


@pytest.mark.slow
def test_registry_does_not_import_tensorflow_for_classical_detectors():
    import subprocess
    import sys

    code = ("import sys; from anodet.detectors import create; create('pca'); create('iforest');"
            "import anodet.store, anodet.evaluation.metrics; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_neural_detector_is_registered():
    assert set(NEURAL) <= set(REGISTRY)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["autoencoder", "vae", "bigan", "seq2seq"])
def test_neural_models_score_with_numpy_and_agree_with_keras(name, tmp_path):
    normals, anomalies = synthetic()
    detector = fitted(name, normals)
    assert detector._chain is not None, "the model should use the numpy forward pass"
    X = np.vstack([normals[:100], anomalies])
    np.testing.assert_allclose(detector._numpy_forward(X), detector._tf_forward(X), atol=1e-5)
    detector.save(tmp_path)
    loaded = detector_class(name).load(tmp_path)
    assert loaded.model_ is None  # scored from forward.npz, the Keras model is not even loaded
    np.testing.assert_allclose(loaded._tf_forward(X), loaded._numpy_forward(X), atol=1e-5)


@pytest.mark.slow
def test_scoring_with_the_stored_neural_models_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from anodet.store.core import Store; s = Store.open();"
            "[s.detector(n).decision_function(np.zeros((3, s.feature_set_for(n).width), np.float32)) for n in s.names];"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def _tampered_store(tmp_path, change):
    """A copy of the committed store whose autoencoder forward.npz was changed by ``change``
    (and its manifest hash updated, so only the content check can catch it)."""
    import json
    import shutil
    from pathlib import Path

    from anodet.detectors.base import load_arrays, save_arrays
    from anodet.store.core import sha256_file

    root = tmp_path / "store"
    shutil.copytree(Path(__file__).resolve().parent.parent / "models_store", root)
    path = root / "autoencoder" / "forward.npz"
    arrays = load_arrays(path)
    change(arrays)
    save_arrays(path, **arrays)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["detectors"]["autoencoder"]["files"]["autoencoder/forward.npz"] = sha256_file(path)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _rename_activation(arrays):
    activations = arrays["activations"].astype(object)
    activations[activations == "relu"] = "swish"
    arrays["activations"] = activations.astype(str)


def _transpose_first_kernel(arrays):
    arrays["step0_0"] = arrays["step0_0"].T.copy()


def _unknown_operation(arrays):
    ops = arrays["ops"].astype(object)
    ops[0] = "conv1d"
    arrays["ops"] = ops.astype(str)


@pytest.mark.parametrize("change, message", [
    (_rename_activation, "uses activation 'swish'"),
    (_transpose_first_kernel, "do not fit its input"),
    (_unknown_operation, "operation anodet's numpy forward pass does not know"),
])
def test_a_tampered_forward_pass_is_refused_when_loaded_not_when_scoring(tmp_path, change, message):
    from anodet.store.core import Store, StoreError

    root = _tampered_store(tmp_path, change)
    with pytest.raises(ValueError, match=message):
        detector_class("autoencoder").load(root / "autoencoder")
    with pytest.raises(StoreError, match=message):
        Store.open(root).detector("autoencoder")
