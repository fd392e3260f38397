"""Build the data, train detectors, choose thresholds on validation, and write the store."""

from __future__ import annotations

import datetime as dt
import json
import platform
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from anodet import evaluate
from anodet.data import SPLIT_NAME, Splits, load_splits
from anodet.detectors import REGISTRY, Detector, create, detector_class
from anodet.scaler import MinMaxScaler
from anodet.schema import FEATURES, LABEL_VIEWS
from anodet.store import FORMAT_VERSION, MANIFEST, SCALER_FILE, Store, StoreError, file_hashes, write_store

LIBRARIES = ("numpy", "pandas", "scikit-learn", "skops", "keras", "tensorflow-cpu", "tensorflow")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _features(frame) -> np.ndarray:
    return frame[list(FEATURES)].to_numpy(dtype=np.float64)


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{v:.7g}") for v in values]


def evaluate_scores(val_scores: np.ndarray, test_scores: np.ndarray, splits: Splits) -> dict[str, Any]:
    """Thresholds, validation quantiles and metrics for one detector, for both label views."""
    thresholds, quantiles, metrics = {}, {}, {"validation": {}, "test": {}}
    for view in LABEL_VIEWS:
        y_val, y_test = splits.labels("validation", view), splits.labels("test", view)
        presets = evaluate.threshold_presets(val_scores, y_val)
        thresholds[view] = presets
        quantiles[view] = {
            "normal": _rounded(np.quantile(val_scores[y_val == 0], evaluate.QUANTILE_PROBS)),
            "all": _rounded(np.quantile(val_scores, evaluate.QUANTILE_PROBS)),
        }
        chosen = presets["best_f1"]
        metrics["validation"][view] = evaluate.summary(y_val, val_scores, chosen)
        metrics["test"][view] = evaluate.summary(y_test, test_scores, chosen)
    return {"thresholds": thresholds, "validation_quantiles": quantiles, "metrics": metrics}


def train(
    names: list[str] | None = None,
    seed: int = 0,
    source: str | None = None,
    store_root: Path | None = None,
    train_rows: int | None = None,
    epochs: int | None = None,
    log=print,
) -> dict[str, Any]:
    """Train ``names`` (default: all) and write them into the store; return the manifest.

    Detectors not named keep their existing entries, so one can be retrained alone. The
    ensemble is trained last, over members trained now or already in the store.
    """
    from anodet.store import default_root

    root = Path(store_root) if store_root else default_root()
    names = list(REGISTRY) if not names else [n for n in REGISTRY if n in names]
    splits = load_splits(source)
    scaler = MinMaxScaler.fit(_features(splits.train))
    X_train = scaler.transform(_features(splits.train))
    if train_rows and train_rows < len(X_train):
        X_train = X_train[np.random.default_rng(seed).choice(len(X_train), train_rows, replace=False)]
    X_val, X_test = scaler.transform(_features(splits.validation)), scaler.transform(_features(splits.test))

    final_root, root = root, _staging_copy(root)
    try:
        previous = Store.open(final_root)
        manifest = previous.manifest
        if manifest.get("data", {}).get("checksums") != splits.checksums:
            raise StoreError("store built from other data")
    except StoreError:
        previous, manifest = None, {"detectors": {}}
    scaler_path = scaler.save(root / SCALER_FILE)
    manifest.update({
        "format": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": {"split": SPLIT_NAME, "checksums": splits.checksums, "train_rows": len(X_train),
                 "validation_rows": len(X_val), "test_rows": len(X_test)},
        "versions": library_versions(),
        "scaler": {"file": SCALER_FILE, "sha256": file_hashes(root, [scaler_path])[SCALER_FILE]},
    })

    fitted: dict[str, Detector] = {}
    bar = tqdm(names, desc="training", unit="detector", disable=not sys.stderr.isatty())
    for name in bar:
        bar.set_postfix_str(name)
        overrides = {"epochs": epochs} if epochs and "epochs" in detector_class(name).default_params else {}
        detector = create(name, seed=seed, **overrides)
        if detector.members:
            members = {}
            for member in detector.params["members"]:
                if member in fitted:
                    members[member] = fitted[member]
                elif previous is not None and member in previous.names:
                    members[member] = previous.detector(member)
            available = [m for m in detector.params["members"] if m in members]
            if not available:
                log(f"  {name}: skipped (none of its members is trained)")
                continue
            detector = create(name, seed=seed, members=available).attach(members)
        log(f"training {name} ...")
        start = time.perf_counter()
        detector.fit(X_train)
        seconds = time.perf_counter() - start
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)
        files = detector.save(folder)
        val_scores, test_scores = detector.score(X_val), detector.score(X_test)
        entry = {
            "class": REGISTRY[name],
            "display_name": detector.display_name,
            "family": detector.family,
            "files": file_hashes(root, files),
            "params": detector.params,
            "seed": seed,
            "train_seconds": round(seconds, 2),
            "train_rows": len(X_train),
            **evaluate_scores(val_scores, test_scores, splits),
        }
        manifest["detectors"][name] = entry
        fitted[name] = detector
        ref = entry["metrics"]["test"]["reference"]["roc_auc"]
        true = entry["metrics"]["test"]["true"]["roc_auc"]
        log(f"  {name}: trained in {seconds:.1f}s; test ROC AUC reference {ref:.4f}, true {true:.4f}")
    manifest["detectors"] = {n: manifest["detectors"][n] for n in REGISTRY if n in manifest["detectors"]}
    write_store(root, manifest)
    _swap_in(root, final_root)
    log(f"wrote {final_root / MANIFEST} ({len(manifest['detectors'])} detectors)")
    return json.loads((final_root / MANIFEST).read_text())


def _staging_copy(root: Path) -> Path:
    """A private copy of the store to train into, so readers never see a half-written store."""
    staging = root.with_name(f".{root.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    if root.exists():
        shutil.copytree(root, staging)
    else:
        staging.mkdir(parents=True)
    return staging


def _swap_in(staging: Path, root: Path) -> None:
    """Replace ``root`` by ``staging`` with two renames (the old store is gone only after)."""
    old = root.with_name(f".{root.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        root.rename(old)
    staging.rename(root)
    shutil.rmtree(old, ignore_errors=True)
