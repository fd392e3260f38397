"""The model store: hash checks, clear refusals, safe formats, and the committed store itself."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from anodet.leaderboard import score_frame
from anodet.store import MANIFEST, Store, StoreError
from anodet.train import train
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    train(["pca", "zscore", "iforest", "mahalanobis", "ensemble"], seed=3, store_root=root, train_rows=4000, log=lambda m: None)
    return root


def test_trained_store_lists_files_hashes_and_metadata(small_store):
    manifest = json.loads((small_store / MANIFEST).read_text())
    entry = manifest["detectors"]["pca"]
    assert entry["files"] and all(len(h) == 64 for h in entry["files"].values())
    assert entry["seed"] == 3 and entry["train_seconds"] >= 0
    assert set(entry["thresholds"]) == {"reference", "true"}
    assert {"best_f1", "best_accuracy", "mean_3sigma", "target_fpr", "contamination"} <= set(entry["thresholds"]["true"])
    assert manifest["data"]["checksums"]["test"].startswith("547dfb9c")
    assert "scikit-learn" in manifest["versions"]
    # The ensemble keeps those of its default members that exist (autoencoder, bigan, ocsvm are not trained here).
    assert manifest["detectors"]["ensemble"]["params"]["members"] == ["pca", "mahalanobis"]


def test_tampered_file_is_refused(small_store, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(small_store, root)
    state = root / "pca" / "state.npz"
    raw = bytearray(state.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte
    state.write_bytes(bytes(raw))
    store = Store.open(root)
    with pytest.raises(StoreError, match="sha256"):
        store.detector("pca")
    # The ensemble needs pca, so it is refused too rather than scoring with a tampered member.
    with pytest.raises(StoreError):
        Store.open(root).detector("ensemble")
    assert Store.open(root).detector("zscore") is not None


def test_missing_store_says_how_to_fix(tmp_path):
    with pytest.raises(StoreError, match="python -m anodet train"):
        Store.open(tmp_path / "nowhere")


def test_corrupt_manifest_is_refused(tmp_path):
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(StoreError, match="not a valid anodet manifest"):
        Store.open(tmp_path)


def test_retraining_one_detector_keeps_the_others(small_store, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(small_store, root)
    before = json.loads((root / MANIFEST).read_text())["detectors"]["iforest"]
    train(["zscore"], seed=3, store_root=root, train_rows=4000, log=lambda m: None)
    after = json.loads((root / MANIFEST).read_text())["detectors"]
    assert after["iforest"] == before and "zscore" in after


def test_committed_store_is_small_safe_and_complete():
    root = ROOT / "models_store"
    store = Store.open(root)
    assert len(store.names) == 12
    files = [p for p in root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 20 * 1024 * 1024
    assert {p.suffix for p in files} <= {".json", ".npz", ".keras", ".skops"}


def test_committed_store_reproduces_its_manifest_metrics(store, splits):
    """The numbers in the manifest (and README) are what the stored models really score."""
    from anodet import evaluate

    scores = score_frame(store, splits.test)
    for name, s in scores.items():
        for view in ("reference", "true"):
            y = splits.labels("test", view)
            recorded = store.entry(name)["metrics"]["test"][view]
            assert evaluate.roc_auc(y, s) == pytest.approx(recorded["roc_auc"], abs=1e-6), (name, view)
            m = evaluate.metrics_at(y, s, store.default_threshold(name, view))
            assert m["f1"] == pytest.approx(recorded["f1"], abs=1e-6), (name, view)
    assert all(np.isfinite(s).all() for s in scores.values())
