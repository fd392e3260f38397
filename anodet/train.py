"""Build the data, train detectors, choose thresholds on validation, and write the store.

Only one training writes a store at a time (a lock beside it); each builds a complete new store
in its own staging folder and swaps it in with a journalled pair of renames (:mod:`anodet.swap`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
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
from anodet.store import (
    FORMAT_VERSION,
    MANIFEST,
    SCALER_FILE,
    Store,
    StoreError,
    default_root,
    file_hashes,
    write_store,
)
from anodet.swap import StoreLock, checkpoint, commit, new_staging, recover

logger = logging.getLogger(__name__)

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
    thresholds: dict[str, Any] = {}
    quantiles: dict[str, Any] = {}
    metrics: dict[str, dict[str, Any]] = {"validation": {}, "test": {}}
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
    lock_timeout: float | None = None,
) -> dict[str, Any]:
    """Train ``names`` (default: all) and write them into the store; return the manifest.

    Detectors not named keep their existing entries, so one can be retrained alone; a detector
    built on a retrained one (the ensemble) is refitted in the same run. ``lock_timeout``: how
    long to wait for another training writing the same store (None: until it ends; 0: refuse).
    """
    root = Path(store_root) if store_root else default_root()
    names = list(REGISTRY) if not names else [n for n in REGISTRY if n in names]
    splits = load_splits(source)
    scaler = MinMaxScaler.fit(_features(splits.train))
    X_train = scaler.transform(_features(splits.train))
    if train_rows and train_rows < len(X_train):
        X_train = X_train[np.random.default_rng(seed).choice(len(X_train), train_rows, replace=False)]
    X_val, X_test = scaler.transform(_features(splits.validation)), scaler.transform(_features(splits.test))

    with StoreLock(root).held(lock_timeout):
        checkpoint("locked")
        recover(root)
        previous = _previous_store(root, names, splits, log)
        names = _with_dependents(names, previous, log)
        logger.info("store %s: training %s (seed %d), keeping %s", root, ", ".join(names), seed,
                    ", ".join(n for n in (previous.names if previous else []) if n not in names) or "nothing")
        staging = new_staging(root)
        try:
            manifest = _kept_part(staging, previous, names)
            scaler_path = scaler.save(staging / SCALER_FILE)
            manifest.update({
                "format": FORMAT_VERSION,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "data": {"split": SPLIT_NAME, "checksums": splits.checksums, "train_rows": len(X_train),
                         "validation_rows": len(X_val), "test_rows": len(X_test)},
                "versions": library_versions(),
                "scaler": {"file": SCALER_FILE, "sha256": file_hashes(staging, [scaler_path])[SCALER_FILE]},
            })
            _train_into(staging, manifest, names, previous, seed, epochs, (X_train, X_val, X_test), splits, log)
            manifest["detectors"] = {n: manifest["detectors"][n] for n in REGISTRY if n in manifest["detectors"]}
            new_hash = write_store(staging, manifest)
            checkpoint("staged")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        commit(staging, root, new_hash, previous.hash if previous else None)
        logger.info("store %s: swapped in the new store (manifest sha256 %s)", root, new_hash[:12])
        log(f"wrote {root / MANIFEST} ({len(manifest['detectors'])} detectors)")
    return manifest


def _previous_store(root: Path, names: list[str], splits: Splits, log) -> Store | None:
    """The store being updated, or None to start afresh; refuses when a partial retrain would drop detectors."""
    if not (root / MANIFEST).exists():
        return None
    everything = set(names) == set(REGISTRY)
    try:
        previous = Store.open(root)
    except StoreError as exc:
        if everything:
            log(f"  the store at {root} cannot be read, so it is rebuilt from scratch ({exc})")
            return None
        raise StoreError(f"Retraining only {', '.join(names)} would drop the other detectors of a store that cannot "
                         f"be read: {exc}") from None
    if previous.manifest["data"]["checksums"] != splits.checksums:
        if everything:
            log(f"  the store at {root} was built from other data; every detector is retrained")
            return None
        raise StoreError(f"The store at {root} was built from other data (its checksums differ from the data loaded "
                         f"now), so retraining only {', '.join(names)} would mix the two; run `python -m anodet train` "
                         f"to retrain every detector on this data.")
    for name in previous.names:
        if name not in names:
            try:
                previous._checked_folder(name, previous.entry(name)["files"])
            except StoreError as exc:
                raise StoreError(f"Cannot keep {name!r} from the store at {root}; retrain it too "
                                 f"(`--detectors {','.join([*names, name])}`). {exc}") from None
    return previous


def _with_dependents(names: list[str], previous: Store | None, log) -> list[str]:
    """``names`` plus every stored detector built on one of them (its fit depends on their scores)."""
    retrained = set(names)
    if previous is not None:
        for name in REGISTRY:
            if name in retrained or name not in previous.names:
                continue
            changed = [m for m in previous.entry(name)["params"].get("members", []) if m in retrained]
            if changed:
                retrained.add(name)
                log(f"  {name}: refitted too, since it is built on {', '.join(changed)}")
    return [n for n in REGISTRY if n in retrained]


def _kept_part(staging: Path, previous: Store | None, names: list[str]) -> dict[str, Any]:
    """A manifest holding the stored detectors not retrained now, their (verified) files copied into ``staging``."""
    manifest: dict[str, Any] = {"detectors": {}}
    if previous is None:
        return manifest
    for name in previous.names:
        if name in names:
            continue
        entry = previous.entry(name)
        for relpath in entry["files"]:
            target = staging / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(previous.root / relpath, target)
        manifest["detectors"][name] = entry
    return manifest


def _finite_or_none(value: Any) -> Any:
    """Metrics as JSON allows them: an undefined metric (NaN) becomes null."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _train_into(staging: Path, manifest: dict[str, Any], names: list[str], previous: Store | None, seed: int,
                epochs: int | None, data: tuple[np.ndarray, np.ndarray, np.ndarray], splits: Splits, log) -> None:
    """Fit each of ``names`` (members before the detectors built on them) and add its entry to ``manifest``."""
    X_train, X_val, X_test = data
    fitted: dict[str, Detector] = {}
    bar = tqdm(names, desc="training", unit="detector", disable=not sys.stderr.isatty())
    for name in bar:
        bar.set_postfix_str(name)
        overrides = {"epochs": epochs} if epochs and "epochs" in detector_class(name).default_params else {}
        detector = create(name, seed=seed, **overrides)
        if detector.members:
            members = {m: fitted[m] if m in fitted or previous is None else previous.detector(m)
                       for m in detector.members if m in fitted or m in manifest["detectors"]}
            if not members:
                log(f"  {name}: skipped (none of its members is trained)")
                continue
            detector = create(name, seed=seed, members=[m for m in detector.members if m in members], **overrides)
            detector.attach(members)
        log(f"training {name} ...")
        start = time.perf_counter()
        detector.fit(X_train)
        seconds = time.perf_counter() - start
        folder = staging / name
        shutil.rmtree(folder, ignore_errors=True)
        files = detector.save(folder)
        val_scores, test_scores = detector.score(X_val), detector.score(X_test)
        if not (np.isfinite(val_scores).all() and np.isfinite(test_scores).all()):
            raise StoreError(f"{name} gave NaN or infinite scores after training, so no store was written; "
                             f"check its parameters or the training data.")
        entry = {
            "class": REGISTRY[name],
            "display_name": detector.display_name,
            "family": detector.family,
            "files": file_hashes(staging, files),
            "params": detector.params,
            "seed": seed,
            "train_seconds": round(seconds, 2),
            "train_rows": len(X_train),
            **_finite_or_none(evaluate_scores(val_scores, test_scores, splits)),
        }
        if detector.members:  # what it was fitted on: loading refuses it once a member changes
            entry["members"] = {m: dict(manifest["detectors"][m]["files"]) for m in detector.members}
        manifest["detectors"][name] = entry
        fitted[name] = detector
        ref = entry["metrics"]["test"]["reference"]["roc_auc"]
        true = entry["metrics"]["test"]["true"]["roc_auc"]
        log(f"  {name}: trained in {seconds:.1f}s; test ROC AUC reference {ref:.4f}, true {true:.4f}")
