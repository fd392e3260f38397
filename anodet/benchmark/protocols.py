"""How one dataset and one seed become the rows detectors are fitted on, chosen with and scored on.

Both protocols start as ADBench does (Han et al., NeurIPS 2022), so numbers sit beside published ones:
a dataset of more than 10,000 rows is subsampled to 10,000 (seeded; stratified, so it keeps the
dataset's anomaly share, and at least 2 anomalies so that each part gets one: 34_smtp has 30 in
95,156 rows, and a uniform draw sometimes kept one), split 70/30 into a training and a test part
stratified by label (seeded), and min-max scaled with the training part's minimum and maximum
(labels unused; test values may fall outside [0, 1]).

* ``unsupervised`` (ADBench's): detectors are fitted on every training row, anomalies included,
  labels unseen. There is no labelled part to choose a detector on; the per-dataset choice uses an
  unsupervised criterion computed on ``criterion`` (a seeded sample of at most 2,000 training rows).
* ``normal-only``: a labelled validation part is carved from the training part — every training
  anomaly and a seeded 25% of the training normals — and detectors are fitted on the other 75% of
  the training normals. The per-dataset choice is the best validation ROC AUC.

``calibration`` is a seeded sample of at most 2,000 fitting rows (the ``criterion`` rows themselves
under ``unsupervised``) on which an ensemble puts its members' scores on a common scale.

Test labels are used only to score (ROC AUC, PR AUC, recall at a stated false-positive rate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROTOCOLS = ("unsupervised", "normal-only")
MAX_ROWS = 10_000
TEST_SHARE = 0.3
VALIDATION_SHARE = 0.25
"""Share of the training normals held out (with every training anomaly) as the normal-only validation part."""
CRITERION_ROWS = 2_000


@dataclass
class Split:
    """One dataset × seed under one protocol: the parts, min-max scaled, as float32."""

    protocol: str
    fit: np.ndarray
    test: np.ndarray
    y_test: np.ndarray
    validation: np.ndarray | None = None
    y_validation: np.ndarray | None = None
    criterion: np.ndarray | None = None
    calibration: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def settings() -> dict[str, Any]:
    """The protocol constants, stored with each result so a change redoes the tasks."""
    return {"max_rows": MAX_ROWS, "test_share": TEST_SHARE, "validation_share": VALIDATION_SHARE,
            "criterion_rows": CRITERION_ROWS}


def _stratified(y: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of a ``share`` of each class's rows (rounded, at least one row when the class has two)."""
    mask = np.zeros(len(y), dtype=bool)
    for value in (0, 1):
        rows = rng.permutation(np.flatnonzero(y == value))
        take = round(share * len(rows))
        if len(rows) >= 2:
            take = min(max(take, 1), len(rows) - 1)
        mask[rows[:take]] = True
    return mask


def _subsample(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``size`` rows keeping each class's share (rounded; at least 2 anomalies when there are)."""
    anomalies, normals = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    take = min(len(anomalies), max(round(size * len(anomalies) / len(y)), 2))
    keep = np.concatenate([rng.choice(anomalies, take, replace=False), rng.choice(normals, size - take, replace=False)])
    return np.sort(keep)


def minmax(fit_on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(minimum, scale) per column of ``fit_on``; a constant column gets scale 1 (it maps to 0)."""
    low, high = fit_on.min(axis=0), fit_on.max(axis=0)
    span = high - low
    return low, np.where(span > 0, span, 1.0)


def make_split(X: np.ndarray, y: np.ndarray, protocol: str, seed: int, name: str = "") -> Split:
    """The parts of dataset ``name`` (X, y with 1 = anomaly) for ``seed`` under ``protocol``."""
    from anodet.benchmark.suites import SuiteError

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose {' or '.join(PROTOCOLS)}")
    rng = np.random.default_rng(seed)
    rows = len(X)
    if rows > MAX_ROWS:
        keep = _subsample(y, MAX_ROWS, rng)
        X, y = X[keep], y[keep]
    in_test = _stratified(y, TEST_SHARE, rng)
    X_train, y_train, X_test, y_test = X[~in_test], y[~in_test], X[in_test], y[in_test]
    if len(np.unique(y_test)) < 2 or (y_train == 0).sum() < 2:
        raise SuiteError(f"Dataset {name!r} is too small for a 70/30 split with both classes in the test part "
                         f"({int(y.sum())} anomalies, {int((y == 0).sum())} normal rows); leave it out.")
    low, scale = minmax(X_train)

    def scaled(part: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((part - low) / scale, dtype=np.float32)

    info = {"rows": rows, "subsampled": rows > MAX_ROWS, "features": int(X.shape[1]), "train": len(X_train),
            "test": len(X_test), "test_anomalies": int(y_test.sum())}
    if protocol == "unsupervised":
        sample = rng.choice(len(X_train), min(CRITERION_ROWS, len(X_train)), replace=False)
        info.update(fit=len(X_train), fit_anomalies=int(y_train.sum()))
        criterion = scaled(X_train[np.sort(sample)])
        return Split(protocol, scaled(X_train), scaled(X_test), y_test.astype(np.int8), criterion=criterion,
                     calibration=criterion, info=info)
    normals = np.flatnonzero(y_train == 0)
    held = _stratified(np.zeros(len(normals), dtype=np.int8), VALIDATION_SHARE, rng)
    in_validation = y_train == 1
    in_validation[normals[held]] = True
    fit_rows = normals[~held]
    y_validation = y_train[in_validation].astype(np.int8)
    info.update(fit=len(fit_rows), fit_anomalies=0, validation=int(in_validation.sum()),
                validation_anomalies=int(y_validation.sum()))
    sample = np.sort(rng.choice(fit_rows, min(CRITERION_ROWS, len(fit_rows)), replace=False))
    return Split(protocol, scaled(X_train[fit_rows]), scaled(X_test), y_test.astype(np.int8),
                 validation=scaled(X_train[in_validation]), y_validation=y_validation,
                 calibration=scaled(X_train[sample]), info=info)
