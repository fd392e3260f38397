"""The command line end to end on a reduced run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anodet", *args], cwd=ROOT, capture_output=True,
                          text=True, check=check, timeout=300)


@pytest.mark.slow
def test_train_then_evaluate_on_a_reduced_run(tmp_path):
    store = tmp_path / "store"
    out = run("train", "--detectors", "pca,kmeans,autoencoder,ensemble", "--train-rows", "5000",
              "--epochs", "2", "--seed", "7", "--store", str(store))
    assert "wrote" in out.stdout
    manifest = json.loads((store / "manifest.json").read_text())
    kinds = ["autoencoder", "pca", "kmeans", "ensemble"]
    assert list(manifest["detectors"]) == [*kinds, *(f"{k}@kdd41" for k in kinds)]  # a kind trains on every set
    assert manifest["detectors"]["autoencoder"]["params"]["epochs"] == 2

    report = run("evaluate", "--store", str(store)).stdout
    assert "label view: reference" in report and "label view: true" in report
    for name in ("Autoencoder", "PCA", "k-means distance", "Ensemble"):
        for feature_set in ("kdd18", "kdd41"):
            assert report.count(f"{name} · {feature_set}") == 2
    recorded = manifest["detectors"]["pca"]["metrics"]["test"]["reference"]["roc_auc"]
    assert f"{recorded:.4f}" in report

    missing = run("evaluate", "--store", str(store), "--detectors", "lof", check=False)
    assert missing.returncode == 2 and "python -m anodet train --detectors lof" in missing.stderr


@pytest.mark.slow
def test_missing_store_is_one_clear_line_and_exit_2(tmp_path):
    out = run("evaluate", "--store", str(tmp_path / "none"), check=False)
    assert out.returncode == 2
    assert "python -m anodet train" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_bad_data_source_is_one_clear_line(tmp_path):
    out = run("data", "--rebuild", "--data-source", str(tmp_path), check=False)
    assert out.returncode == 2
    assert "Missing KDD raw file" in out.stderr and "Traceback" not in out.stderr


def test_unknown_detector_is_rejected_by_the_parser():
    out = run("train", "--detectors", "pca,bogus", check=False)
    assert out.returncode == 2 and "unknown detector" in out.stderr
