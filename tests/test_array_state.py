"""The detectors fitted with scikit-learn are stored as plain arrays and score as scikit-learn does.

One-Class SVM, Isolation Forest, Local Outlier Factor and the supervised forest keep only the
arrays their scores need (``state.npz``, no pickle, no skops). These tests fit each on real KDD
rows, save and load it, and compare its scores with the scikit-learn estimator it came from, on
real rows and random ones; check that loading the committed store imports neither skops nor
scikit-learn; and that a corrupt ``state.npz`` gives the store's error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anodet.datasets.kdd_schema import FEATURES
from anodet.detectors import create, detector_class
from anodet.detectors.from_arrays import LOF_RTOL, OCSVM_TOLERANCE, TreeEnsemble
from anodet.store.core import Store, StoreError, file_hashes, write_store
from anodet.store.manifest import MANIFEST
from tests.conftest import kdd_frame

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def kdd(splits, store):
    """kdd18 rows: normal training rows to fit on, labelled validation rows, and rows to score."""
    fs = store.feature_set("kdd18")
    rng = np.random.default_rng(5)

    def scaled(frame):
        return fs.transform(frame[list(FEATURES)].to_numpy(np.float64)).astype(np.float32)

    train = scaled(kdd_frame(splits.train).sample(6000, random_state=0))
    validation = kdd_frame(splits.validation).sample(6000, random_state=0)
    y = splits.labels("validation", "reference")[validation.index.map(kdd_frame(splits.validation).index.get_loc)]
    score = np.vstack([scaled(kdd_frame(splits.test).iloc[:8000]),
                       rng.uniform(-1, 2, (2000, len(FEATURES)))]).astype(np.float32)
    return {"train": train, "labelled": (scaled(validation), np.asarray(y)), "score": score}


def _reloaded(detector, tmp_path):
    detector.save(tmp_path / detector.name)
    return detector_class(detector.name).load(tmp_path / detector.name)


def test_ocsvm_from_arrays_is_decision_function(kdd, tmp_path):
    fitted = create("ocsvm", nu=0.05, gamma=1.0, max_rows=2000).fit(kdd["train"])
    loaded = _reloaded(fitted, tmp_path)
    X = kdd["score"]
    assert np.abs(loaded.decision_function(X) + fitted.model_.decision_function(X)).max() <= OCSVM_TOLERANCE


def test_ocsvm_scores_rows_too_large_for_float32_exactly(kdd, tmp_path):
    """Rows whose float32 exponents overflow (inf - inf) are scored again in float64, not left NaN."""
    fitted = create("ocsvm", nu=0.05, gamma=1.0, max_rows=500).fit(kdd["train"])
    loaded = _reloaded(fitted, tmp_path)
    huge = np.full((3, kdd["train"].shape[1]), 1e38, dtype=np.float32)
    huge[1] *= -1
    huge[2, ::2] *= -1
    scores = loaded.decision_function(np.vstack([huge, kdd["score"][:5]]))
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores[:3], -fitted.model_.decision_function(huge.astype(np.float64)), atol=1e-9)


def test_iforest_from_arrays_is_score_samples(kdd, tmp_path):
    fitted = create("iforest", n_estimators=40, max_samples=128).fit(kdd["train"])
    loaded = _reloaded(fitted, tmp_path)
    X = kdd["score"]
    np.testing.assert_allclose(loaded.decision_function(X), -fitted.model_.score_samples(X), rtol=0, atol=1e-12)


def test_supervised_forest_from_arrays_is_predict_proba(kdd, tmp_path):
    X_fit, y = kdd["labelled"]
    fitted = create("supervised", n_estimators=10, max_depth=12).fit(X_fit, y)
    loaded = _reloaded(fitted, tmp_path)
    X = kdd["score"]
    fitted.model_.n_jobs = 1
    np.testing.assert_allclose(loaded.decision_function(X), fitted.model_.predict_proba(X)[:, 1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("search", ["scikit-learn", "numpy"])
def test_lof_from_arrays_is_score_samples(kdd, tmp_path, search):
    fitted = create("lof", n_neighbors=20, max_rows=3000).fit(kdd["train"])
    loaded = _reloaded(fitted, tmp_path)
    if search == "numpy":
        loaded._lof._search = False  # the fallback: numpy distances and argpartition
    X = kdd["score"]
    got, expected = loaded.decision_function(X), -fitted.model_.score_samples(X)
    if search == "scikit-learn":  # the same neighbour search: the same numbers
        np.testing.assert_array_equal(got, expected)
    else:  # rounding of the distances, and which of tied k-th neighbours is picked
        ties = loaded._lof.ties(X)
        np.testing.assert_allclose(got[~ties], expected[~ties], rtol=LOF_RTOL)
        assert ties.mean() < 0.05


def _on_the_thresholds(trees: TreeEnsemble, rows: np.ndarray) -> np.ndarray:
    """``rows`` with one feature set to a split's threshold as float32 (rounded each way, and one step past):
    where float32 rounding of a float64 threshold decides left or right."""
    inner = np.flatnonzero(trees.left != -1)[:: max(1, (trees.left != -1).sum() // 400)]
    out = []
    for i, node in enumerate(inner):
        t = trees.threshold[node]
        for value in (np.float32(t), np.nextafter(np.float32(t), np.float32(-np.inf)),
                      np.nextafter(np.float32(t), np.float32(np.inf))):
            row = rows[i % len(rows)].copy()
            row[trees.feature[node]] = value
            out.append(row)
    return np.asarray(out, dtype=np.float32)


@pytest.mark.parametrize("kind", ["iforest", "supervised"])
def test_both_tree_traversals_give_scikit_learns_scores(kdd, kind):
    """The level walk (small batches) and the bit-sliced comparison (large ones) find scikit-learn's leaves,
    also for values on a split's threshold, in batches of any size."""
    if kind == "iforest":
        fitted = create("iforest", n_estimators=40, max_samples=128).fit(kdd["train"])
        expected = lambda X: -fitted.model_.score_samples(X)  # noqa: E731
    else:
        fitted = create("supervised", n_estimators=10, max_depth=12).fit(*kdd["labelled"])
        fitted.model_.n_jobs = 1
        expected = lambda X: fitted.model_.predict_proba(X)[:, 1]  # noqa: E731
    trees: TreeEnsemble = fitted._trees
    trees.prepare()
    forest = trees._forest
    X = np.vstack([_on_the_thresholds(trees, kdd["score"]), kdd["score"][:3000]])
    walked = forest.walk(X)
    for rows in (1, 63, 64, 65, 1000, 4096):
        sliced = np.concatenate([forest.bitsliced(X[i:i + rows]) for i in range(0, min(len(X), 20 * rows), rows)])
        np.testing.assert_array_equal(sliced, walked[: len(sliced)])
    np.testing.assert_array_equal(trees.total(X), walked)
    np.testing.assert_allclose(fitted.decision_function(X), expected(X), rtol=0, atol=1e-12)


def test_loading_the_store_imports_neither_skops_nor_scikit_learn():
    code = ("import sys\nfrom anodet.store.core import Store\ns = Store.open()\n"
            "[s.detector(n) for n in s.names]\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'skops', 'sklearn', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _store_copy_with(tmp_path, name: str, content: bytes) -> Path:
    """A copy of the committed store with ``name``'s state.npz replaced and the manifest re-hashed to match
    (so the hash check passes and the loader meets the bad file)."""
    root = tmp_path / "copy"
    shutil.copytree(ROOT / "models_store", root)
    (root / name / "state.npz").write_bytes(content)
    manifest = json.loads((root / MANIFEST).read_text())
    entry = manifest["detectors"][name]
    entry["files"] = file_hashes(root, [root / f for f in entry["files"]])
    for other in manifest["detectors"].values():
        if name in other.get("members", {}):
            other["members"][name] = dict(entry["files"])
    write_store(root, manifest)
    return root


@pytest.mark.parametrize("name", ["ocsvm", "iforest", "lof", "supervised@kdd41"])
def test_truncated_state_gives_the_store_error(tmp_path, name):
    raw = (ROOT / "models_store" / name / "state.npz").read_bytes()
    store = Store.open(_store_copy_with(tmp_path, name, raw[: len(raw) // 2]))
    with pytest.raises(StoreError, match=f"Cannot load detector '{name}'"):
        store.detector(name)


def test_a_pickled_array_in_state_is_refused(tmp_path):
    import io

    buffer = io.BytesIO()
    np.savez(buffer, support=np.array([{"not": "an array"}], dtype=object))
    store = Store.open(_store_copy_with(tmp_path, "ocsvm", buffer.getvalue()))
    with pytest.raises(StoreError, match=r"Cannot load detector 'ocsvm'.*pickle"):
        store.detector("ocsvm")


def test_tree_arrays_pointing_outside_their_tree_are_refused(store):
    state = dict(store.detector("iforest").state_)
    left = state["children_left"].copy()
    left[0] = 10**9
    with pytest.raises(ValueError, match="outside its tree"):
        TreeEnsemble({**state, "children_left": left})
