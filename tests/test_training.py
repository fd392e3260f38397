"""Training (issues 24 and 26): presets, fit-time estimates, early stopping on small data, reproducible stores."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from anodet.cli import main
from anodet.datasets import userdata
from anodet.detectors import NEURAL, REGISTRY, create, detector_class
from anodet.detectors.epochs import SMALL_DATA_ROWS
from anodet.store.core import MANIFEST, Store
from anodet.store.swap import leftovers
from anodet.training.estimates import PRESETS, fit_seconds, preset_kinds
from tests.conftest import wdbc_frame

CLASSICAL = ["pca", "ocsvm", "iforest", "lof", "kmeans", "zscore", "mahalanobis", "ecod", "knn"]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """Datasets are declared in a temporary data folder, never in the repository."""
    folder = tmp_path / "data"
    monkeypatch.setenv("ANODET_DATA_DIR", str(folder))
    return folder


def test_the_quick_preset_is_offered_first_and_holds_the_classical_detectors():
    assert list(PRESETS) == ["quick", "full"]
    assert preset_kinds("quick") == CLASSICAL
    assert all(detector_class(k).family == "classical" for k in preset_kinds("quick"))
    assert preset_kinds("full") == list(REGISTRY)
    assert preset_kinds("quick", ["autoencoder", "lof", "pca", "ensemble"]) == ["lof", "pca"]  # what fits, in order
    with pytest.raises(ValueError, match="unknown preset 'fast'; choose from quick, full"):
        preset_kinds("fast")


CAPPED = ("ocsvm", "lof", "iforest", "ensemble", "knn")  # knn: its fit only keeps (a sample of) the rows
"""Kinds that fit on at most a fixed number of rows: OCSVM and LOF max_rows, an Isolation Forest's trees max_samples,
the ensemble its calibration rows; their estimates stop growing there."""


@pytest.mark.parametrize("kind", list(REGISTRY))
def test_estimates_are_positive_and_grow_with_rows_and_columns(kind):
    # a small dataset trains a neural model with early stopping, up to max_steps steps, a large one its epochs:
    # within each rule the time grows with the rows
    rules = ([[300, 2_000, 5_000], [SMALL_DATA_ROWS, 25_000, 39_000]] if kind in NEURAL
             else [[300, 2_000, 9_000, 20_000, 80_000, 500_000]])
    for sizes in rules:
        times = [fit_seconds(kind, n, 30) for n in sizes]
        assert all(t > 0 for t in times) and times == sorted(times), times
        if kind not in CAPPED:
            assert times[0] < times[-1], times
    assert fit_seconds(kind, 20_000, 10) <= fit_seconds(kind, 20_000, 80)


def test_early_stopping_stops_on_held_out_rows_and_says_so():
    rng = np.random.default_rng(0)
    X = np.clip(rng.normal(0.5, 0.05, (300, 6)), 0, 1).astype(np.float32)
    detector = create("autoencoder", seed=0, patience=3).fit(X)
    report = detector.training_
    assert report is not None and report["rule"].startswith("early stopping (300 training rows, fewer than")
    assert report["held_out_rows"] == 60 and report["rows"] == 240 and report["batch_size"] == 30
    assert report["epochs_run"] < report["max_epochs"]  # it stopped before its budget
    assert report["stopped"] == f"no lower held-out error for 3 epochs after epoch {report['best_epoch']}"
    assert report["epochs_run"] == report["best_epoch"] + 3
    # the same seed, the same epochs and weights; large data keeps its fixed epochs
    again = create("autoencoder", seed=0, patience=3).fit(X)
    assert again.training_ == report
    np.testing.assert_array_equal(again.decision_function(X), detector.decision_function(X))
    fixed = create("autoencoder", seed=0, early_stopping=False, epochs=2).fit(X)
    assert fixed.training_ == {"rule": "2 epochs (the epochs parameter): early_stopping=False", "epochs_run": 2,
                               "rows": 300}


def _declare_wdbc(tmp_path) -> None:
    path = tmp_path / "wdbc.csv"
    wdbc_frame().to_csv(path, index=False)
    assert main(["dataset", "add", "wdbc", "--train", str(path), "--label", "diagnosis", "--normal", "B"]) == 0


def test_train_preset_quick_on_a_dataset_prints_estimates_first(tmp_path, data_dir, capsys):
    _declare_wdbc(tmp_path)
    capsys.readouterr()
    assert main(["train", "--dataset", "wdbc", "--preset", "quick"]) == 0
    out = capsys.readouterr().out
    names = [f"{k}@wdbc" for k in CLASSICAL]
    assert f"training {len(CLASSICAL)} detectors (seed 0):" in out
    assert all(f"  {n}: in the quick preset" in out for n in names)
    estimate = out.index("estimated fit times")
    assert estimate < out.index("training pca@wdbc ...")  # printed before the first fit
    for n in names:
        assert re.search(rf"\n  {re.escape(n)}: \d+\.\d s\n", out[estimate:]), n
    assert re.search(r"\n  total: about \d+\.\d s\n", out)
    assert "wrote" in out and f"({len(CLASSICAL)} detectors)" in out
    assert Store.open(userdata.store_root("wdbc")).names == names

    assert main(["train", "--dataset", "wdbc", "--preset", "quick", "--detectors", "pca"]) == 2
    assert capsys.readouterr().err.strip() == "error: give --detectors or --preset, not both."


@pytest.mark.slow
def test_small_data_early_stopping_is_recorded_in_the_manifest(tmp_path, data_dir, capsys):
    _declare_wdbc(tmp_path)
    assert main(["train", "--dataset", "wdbc", "--detectors", "autoencoder"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\n  autoencoder@wdbc: up to \d+\.\d s\n", out)  # an upper bound: it may stop early
    entry = Store.open(userdata.store_root("wdbc")).entry("autoencoder@wdbc")
    training = entry["training"]
    assert training["rule"].startswith("early stopping (215 training rows")
    assert training["held_out_rows"] == 43 and training["rows"] == 172
    assert 0 < training["best_epoch"] <= training["epochs_run"] <= training["max_epochs"]
    assert training["stopped"].startswith(("no lower held-out error", "ran all"))


def _files(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_the_same_seed_writes_byte_identical_stores(tmp_path, capsys):
    args = ["train", "--detectors", "pca,zscore,kmeans,iforest,mahalanobis,ensemble,autoencoder", "--feature-sets",
            "kdd18", "--train-rows", "2000", "--epochs", "2", "--seed", "5"]
    first, second = tmp_path / "first", tmp_path / "second"
    assert main([*args, "--store", str(first)]) == 0
    assert main([*args, "--store", str(second)]) == 0
    a, b = _files(first), _files(second)
    manifest = json.loads(a[MANIFEST])
    assert set(a) == set(b) and "autoencoder/model.keras" in a and "run.json" in a
    differ = {name for name in a if a[name] != b[name]}
    # only what the manifest declares not reproducible differs: the Keras zip is byte-identical too
    assert differ <= set(manifest["reproducibility"]["not_reproducible"]) == {"run.json"}, differ
    assert manifest["reproducibility"]["not_reproducible"]["run.json"].startswith("when the store was written")
    assert "blas" in manifest["versions"] and "created" not in manifest
    assert all("train_seconds" not in e for e in manifest["detectors"].values())
    assert set(json.loads(a["run.json"])["fit_seconds"]) == set(manifest["detectors"])
    # training the same store again with the same seed: the same manifest, nothing left beside the store
    capsys.readouterr()
    assert main([*args, "--store", str(first)]) == 0
    assert (first / MANIFEST).read_bytes() == a[MANIFEST] and leftovers(first) == []
    Store.open(first).verify()


def test_a_dataset_with_too_few_rows_to_hold_out_trains_its_fixed_epochs():
    X = np.random.default_rng(1).uniform(0, 1, (20, 4)).astype(np.float32)
    detector = create("autoencoder", seed=0, epochs=2).fit(X)
    assert detector.training_ is not None and detector.training_["epochs_run"] == 2
    assert "leave fewer than 8 to hold out" in detector.training_["rule"]



def test_a_page_training_that_fails_in_its_child_process_says_one_sentence(tmp_path, data_dir):
    from anodet.training import jobs

    rng = np.random.default_rng(0)
    flows = tmp_path / "flows.csv"
    flows.write_text("a,b\n" + "\n".join(f"{x:.4f},{y:.4f}" for x, y in rng.uniform(0, 1, (200, 2))) + "\n")
    assert main(["dataset", "add", "flows", "--train", str(flows)]) == 0
    job = jobs.start("flows", ["supervised"])  # no labels: the child refuses it with the library's sentence
    try:
        assert job.wait(120) and job.status == jobs.FAILED
        assert job.error == ("supervised cannot be trained on dataset 'flows': it needs labels (anomalous and "
                             "normal rows in the validation split).")
        assert not (data_dir / "datasets" / "flows" / "store").exists()
    finally:
        jobs.forget("flows")


def children_training(name: str) -> list[int]:
    """Process ids of ``python -m anodet.training.child NAME …`` processes still running."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"anodet.training.child" in args and name.encode() in args:
            found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_cancelling_a_page_training_ends_its_child_process_and_keeps_the_store(tmp_path, data_dir):
    from anodet.training import jobs

    _declare_wdbc(tmp_path)
    assert main(["train", "--dataset", "wdbc", "--detectors", "pca"]) == 0
    store = userdata.store_root("wdbc")
    before = (store / MANIFEST).read_bytes()
    job = jobs.start("wdbc", ["autoencoder", "vae", "bigan", "seq2seq"])
    try:
        deadline = time.monotonic() + 300
        while not any(line.startswith("training autoencoder@wdbc") for line in job.lines):  # a fit under way
            assert job.active and time.monotonic() < deadline, (job.status, job.lines[-3:])
            time.sleep(0.1)
        assert children_training("wdbc")  # the fit runs in a child process, not in this one
        assert jobs.cancel("wdbc") is job
        assert job.wait(60) and job.status == jobs.CANCELLED, (job.status, job.error)
        assert not children_training("wdbc")  # ended at once, not left fitting in the background
        assert job.error == "Cancelled; the store is as it was before this training."
        assert (store / MANIFEST).read_bytes() == before and Store.open(store).names == ["pca@wdbc"]
    finally:
        jobs.forget("wdbc")
    assert main(["train", "--dataset", "wdbc", "--detectors", "zscore"]) == 0  # the store trains on afterwards
    assert Store.open(store).names == ["pca@wdbc", "zscore@wdbc"]
