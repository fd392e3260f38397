"""Metrics at a threshold, curves and presets."""

from __future__ import annotations

import numpy as np
import pytest

from anodet import evaluate
from anodet.evaluate import ThresholdCurve


def test_metrics_at_threshold_count_by_hand():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.5, 0.9, 0.4, 0.95])
    m = evaluate.metrics_at(y, s, 0.5)  # flagged: 0.5, 0.9, 0.95
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 2, 1, 1)
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.4) and m["fpr"] == pytest.approx(2 / 3)
    assert m["f2"] == pytest.approx(5 * (1 / 3) * 0.5 / (4 / 3 + 0.5))


def test_threshold_curve_agrees_with_direct_counting():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(y, 1.0), 1)  # ties on purpose
    curve = ThresholdCurve.from_scores(y, s)
    for t in [-5, -0.3, 0.0, 0.4, 1.1, 9]:
        assert curve.metrics(t) == evaluate.metrics_at(y, s, t)


def test_best_threshold_is_the_best_among_all_candidates():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = rng.normal(y * 1.5, 1.0)
    curve = ThresholdCurve.from_scores(y, s)
    for metric in ("f1", "accuracy"):
        best = curve.best_threshold(metric)
        brute = max(evaluate.metrics_at(y, s, t)[metric] for t in np.unique(s))
        assert evaluate.metrics_at(y, s, best)[metric] == pytest.approx(brute)


def test_presets_mean_plus_three_sigma_and_rates():
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(10_000), np.ones(1_000)]
    s = np.r_[rng.normal(0, 1, 10_000), rng.normal(5, 1, 1_000)]
    presets = evaluate.threshold_presets(s, y, target_fpr=0.05, contamination=0.1)
    normal = s[y == 0]
    assert presets["mean_3sigma"] == pytest.approx(normal.mean() + 3 * normal.std())
    assert np.mean(normal >= presets["target_fpr"]) == pytest.approx(0.05, abs=0.005)
    assert np.mean(s >= presets["contamination"]) == pytest.approx(0.1, abs=0.005)


def test_rate_outside_zero_one_is_refused():
    with pytest.raises(ValueError):
        evaluate.threshold_for_rate(np.linspace(0, 1, len(evaluate.QUANTILE_PROBS)), 1.5)


def test_detection_rates_per_category():
    s = np.array([1.0, 2.0, 3.0, 4.0])
    rates = evaluate.detection_rates(s, 2.5, np.array(["dos", "dos", "probe", "normal"]))
    assert rates == {"dos": 0.0, "probe": 1.0, "normal": 1.0}
