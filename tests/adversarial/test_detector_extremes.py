"""Every stored detector returns finite scores for any finite row the scorer lets through.

The scoring routine passes detectors only min-max-scaled rows inside [-10, 11] (rows further
out are scored +inf by the caller); inside that box, corners, tiny, negative, subnormal and
signed-zero values must all give finite float scores. Rows far outside the box (up to float32's
largest value) must not give NaN either: detectors retry overflowing rows in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from anodet.datasets.kdd_schema import FEATURES
from anodet.detectors import REGISTRY

N_FEATURES = len(FEATURES)  # detectors named by kind alone are the kdd18 ones

LOW, HIGH = -10.0, 11.0
TINY = np.float32(np.finfo(np.float32).smallest_subnormal)


def box_rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    typical = np.full(N_FEATURES, 0.5)
    single = []
    for value in (LOW, HIGH, 0.0, -0.0, TINY, -TINY, 1e-38, -1e-38, 1e-30, 1.0, np.nextafter(HIGH, 0)):
        for j in range(N_FEATURES):
            row = typical.copy()
            row[j] = value
            single.append(row)
    return np.vstack([
        np.full((1, N_FEATURES), LOW), np.full((1, N_FEATURES), HIGH),
        np.full((1, N_FEATURES), 0.0), np.full((1, N_FEATURES), -0.0),
        np.full((1, N_FEATURES), TINY), np.full((1, N_FEATURES), -TINY),
        rng.choice([LOW, HIGH], (500, N_FEATURES)),  # corners of the box
        rng.choice([LOW, HIGH, 0.0, -0.0, TINY, -TINY, 1e-38], (500, N_FEATURES)),
        rng.uniform(LOW, HIGH, (2_000, N_FEATURES)),
        np.array(single),
    ]).astype(np.float32)


def far_rows() -> np.ndarray:
    biggest = np.finfo(np.float32).max
    rng = np.random.default_rng(1)
    return np.vstack([
        np.full((1, N_FEATURES), v) for v in (1e19, -1e19, 1e30, -1e30, biggest, -biggest)
    ] + [rng.choice([-biggest, biggest, 0.0, 1e20], (50, N_FEATURES))]).astype(np.float32)


def stored(store, name: str):
    """The committed store's detector of kind ``name`` (kinds added since it was trained are tested on fitted
    models in their own tests, e.g. tests/test_ecod_knn.py)."""
    if name not in store.names:
        pytest.skip(f"{name} is not in the committed store")
    return store.detector(name)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_scores_are_finite_everywhere_in_the_box(store, name):
    detector = stored(store, name)
    X = box_rows()
    scores = detector.decision_function(X)
    assert scores.shape == (len(X),)
    assert scores.dtype.kind == "f"
    assert np.isfinite(scores).all(), f"{name}: {np.count_nonzero(~np.isfinite(scores))} non-finite scores"
    contributions = detector.feature_scores(X)
    if contributions is not None:
        assert np.isfinite(contributions).all()


@pytest.mark.parametrize("name", list(REGISTRY))
def test_scores_stay_finite_far_outside_the_box(store, name):
    detector = stored(store, name)
    X = far_rows()
    scores = detector.decision_function(X)
    assert np.isfinite(scores).all(), f"{name}: {np.count_nonzero(~np.isfinite(scores))} non-finite scores"
    # a row in a block with such rows gets the score it gets alone
    typical = np.full((1, N_FEATURES), 0.5, np.float32)
    np.testing.assert_allclose(detector.decision_function(np.vstack([typical, X]))[0],
                               detector.decision_function(typical)[0], rtol=1e-6)
