"""Metrics at a threshold, curves and presets."""

from __future__ import annotations

import numpy as np
import pytest

from anodet.evaluation import metrics
from anodet.evaluation.metrics import ThresholdCurve


def test_metrics_at_threshold_count_by_hand():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.5, 0.9, 0.4, 0.95])
    m = metrics.metrics_at(y, s, 0.5)  # flagged: 0.5, 0.9, 0.95
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
        assert curve.metrics(t) == metrics.metrics_at(y, s, t)


def test_best_threshold_is_the_best_among_all_candidates():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = rng.normal(y * 1.5, 1.0)
    curve = ThresholdCurve.from_scores(y, s)
    for metric in ("f1", "accuracy"):
        best = curve.best_threshold(metric)
        brute = max(metrics.metrics_at(y, s, t)[metric] for t in np.unique(s))
        assert metrics.metrics_at(y, s, best)[metric] == pytest.approx(brute)


def test_presets_mean_plus_three_sigma_and_rates():
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(10_000), np.ones(1_000)]
    s = np.r_[rng.normal(0, 1, 10_000), rng.normal(5, 1, 1_000)]
    presets = metrics.threshold_presets(s, y, target_fpr=0.05, contamination=0.1)
    normal = s[y == 0]
    assert presets["mean_3sigma"] == pytest.approx(normal.mean() + 3 * normal.std())
    assert np.mean(normal >= presets["target_fpr"]) == pytest.approx(0.05, abs=0.005)
    assert np.mean(s >= presets["contamination"]) == pytest.approx(0.1, abs=0.005)


def test_rate_outside_zero_one_is_refused():
    with pytest.raises(ValueError):
        metrics.threshold_for_rate(np.linspace(0, 1, len(metrics.QUANTILE_PROBS)), 1.5)


def test_detection_rates_per_category():
    s = np.array([1.0, 2.0, 3.0, 4.0])
    order = ["dos", "probe", "normal"]
    rates = metrics.category_rates({"d": s}, {"d": 2.5}, np.array(["dos", "dos", "probe", "normal"]), order)
    assert dict(zip(order, rates[0].tolist(), strict=True)) == {"dos": 0.0, "probe": 1.0, "normal": 1.0}


@pytest.mark.parametrize("seed", range(6))
def test_numpy_curves_are_scikit_learns(seed):
    """The dashboard draws ROC/PR curves without importing scikit-learn; they are scikit-learn's own."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    rng = np.random.default_rng(seed)
    n = [10, 200, 3000][seed % 3]
    y = (rng.random(n) < 0.3).astype(int)
    y[0], y[1] = 0, 1
    scores = np.round(rng.normal(size=n) + y, 1 if seed % 2 else 6)  # with and without many ties
    assert metrics.roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert metrics.pr_auc(y, scores) == pytest.approx(average_precision_score(y, scores), abs=1e-12)
    precision, recall, thresholds = precision_recall_curve(y, scores)
    ours = metrics.pr_points(y, scores)
    np.testing.assert_allclose(ours[0], recall)
    np.testing.assert_allclose(ours[1], precision)
    np.testing.assert_allclose(ours[2], thresholds)
    fpr, tpr, _ = roc_curve(y, scores, drop_intermediate=False)
    np.testing.assert_allclose(metrics.roc_points(y, scores)[0], fpr)
    np.testing.assert_allclose(metrics.roc_points(y, scores)[1], tpr)


@pytest.mark.parametrize("y", [[0, 1, 1, 0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1], [1, 0]])
def test_curves_from_one_sort_equal_the_separate_curves(y):
    y = np.array(y)
    scores = np.round(np.random.default_rng(len(y)).random(len(y)), 1)  # ties on purpose
    (fpr, tpr), (recall, precision), roc, pr = metrics.curves(y, scores)
    np.testing.assert_array_equal(fpr, metrics.roc_points(y, scores)[0])
    np.testing.assert_array_equal(tpr, metrics.roc_points(y, scores)[1])
    np.testing.assert_array_equal(recall, metrics.pr_points(y, scores)[0])
    np.testing.assert_array_equal(precision, metrics.pr_points(y, scores)[1])
    np.testing.assert_equal(roc, metrics.roc_auc(y, scores))
    np.testing.assert_equal(pr, metrics.pr_auc(y, scores))
