"""The operating point (issue 27) and the uncertainty of every ranking number (issue 28), as pure functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anodet.evaluation import comparison, intervals, operating
from anodet.evaluation.leaderboard import entrants_of, evaluate_test
from anodet.evaluation.metrics import ThresholdCurve
from anodet.evaluation.operating import OperatingPoint, OperatingPointError, Resolution

RNG = np.random.default_rng(3)


def synthetic(n_normal=4000, n_attack=300):
    y = np.r_[np.zeros(n_normal, np.int8), np.ones(n_attack, np.int8)]
    good = np.r_[RNG.normal(0, 1, n_normal), RNG.normal(2.5, 1, n_attack)]
    weak = np.r_[RNG.normal(0, 1, n_normal), RNG.normal(0.8, 1, n_attack)]
    return y, {"good": good, "weak": weak}


@pytest.mark.parametrize(("kwargs", "sentence"), [
    ({"kind": "fpr", "fpr": 1.5}, "false-positive rate must be a number from 0 to 1"),
    ({"kind": "fpr", "fpr": math.nan}, "false-positive rate must be"),
    ({"kind": "budget", "alerts_per_day": 10, "records_per_day": 0}, "records a day must be a positive number"),
    ({"kind": "budget", "alerts_per_day": 10, "attack_share": 1.0}, "attack share"),
    ({"kind": "budget", "alerts_per_day": 2e6, "records_per_day": 1e6}, "cannot exceed"),
    ({"kind": "cost", "cost_ratio": -1}, "cost ratio must be"),
    ({"kind": "sometimes"}, "Unknown operating point"),
])
def test_a_bad_operating_point_is_one_sentence(kwargs, sentence):
    with pytest.raises(OperatingPointError, match=sentence) as got:
        OperatingPoint(**kwargs)
    assert "\n" not in str(got.value)


def test_a_budget_means_alerts_on_normal_traffic():
    point = OperatingPoint.parse_budget("50/500000")
    assert point.target_fpr == pytest.approx(1e-4)
    shared = OperatingPoint("budget", alerts_per_day=50, records_per_day=500_000, attack_share=0.2)
    assert shared.target_fpr == pytest.approx(50 / 400_000)  # only the normal 80 % can raise false alarms
    for p in (point, shared, OperatingPoint("fpr", fpr=0.003), OperatingPoint("cost", cost_ratio=7),
              OperatingPoint()):
        assert OperatingPoint.from_params(p.to_params()) == p
    with pytest.raises(OperatingPointError, match="not an alert budget"):
        OperatingPoint.parse_budget("fifty a day")


def test_the_threshold_for_a_target_fpr_is_exact_on_the_normal_validation_records():
    y, scores = synthetic()
    curve = ThresholdCurve.from_scores(y, scores["good"])
    normals = np.sort(scores["good"][y == 0])
    for target in (0.0, 1e-4, 0.001, 0.01, 0.2):
        t = operating.threshold_at(OperatingPoint("fpr", fpr=target), curve)
        assert np.mean(normals >= t) <= target  # fits the target…
        lower = normals[normals < t]
        if len(lower):  # …and the next lower distinct score would not
            assert np.mean(normals >= lower.max()) > target


def test_partial_auc_is_mcclish_as_scikit_learn():
    y, scores = synthetic()
    for s in scores.values():
        curve = ThresholdCurve.from_scores(y, np.round(s, 1))  # ties too
        for m in (1e-3, 0.01, 0.1, 0.5):
            assert curve.partial_auc(m) == pytest.approx(roc_auc_score(y, np.round(s, 1), max_fpr=m), abs=1e-12)


def test_at_point_counts_and_alerts_per_day():
    y, scores = synthetic()
    point = OperatingPoint("budget", alerts_per_day=20, records_per_day=10_000, attack_share=0.1)
    val = {n: ThresholdCurve.from_scores(y, s) for n, s in scores.items()}
    thresholds = operating.thresholds_for(point, list(scores), val, {})
    table = operating.at_point(point, thresholds, val)
    for name, s in scores.items():
        flagged = s >= thresholds[name]
        assert table.loc[name, "tp_at_op"] == int((flagged & (y == 1)).sum())
        assert table.loc[name, "fpr_at_op"] == pytest.approx(np.mean(flagged[y == 0]))
        expected = 10_000 * (0.9 * table.loc[name, "fpr_at_op"] + 0.1 * table.loc[name, "recall_at_op"])
        assert table.loc[name, "alerts_per_day"] == pytest.approx(expected)
    ranked = operating.rank(table.assign(uses_labels=False), point)
    assert list(ranked.index) == ["good", "weak"]


def test_resolution_says_when_a_target_is_finer_than_the_split():
    r = Resolution.of(8_000)
    assert r.step == 1 / 8_000 and r.zero_upper == pytest.approx(1 - 0.05 ** (1 / 8000))
    assert r.sentence(1e-4).startswith("The target (0.01 %) is finer than the 8,000 normal test records can show "
                                       "(one of them is 0.013 %)")
    assert r.sentence(0.01) == ""


def test_mcnemar_and_ties_at_the_point():
    from scipy.stats import binomtest

    a = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)
    b = np.array([1, 0, 0, 0, 0, 0, 0, 1], bool)
    assert comparison.mcnemar(a, b) == pytest.approx(binomtest(5, 6, 0.5).pvalue)
    assert comparison.mcnemar(a, a) == 1.0
    ties = comparison.ties_at_point({"a": a, "b": b, "c": a.copy()}, "a")
    assert ties["c"] == 1.0 and ties["b"] < 1.0


def test_a_paired_rate_difference_has_the_normal_interval_of_the_per_record_differences():
    from statistics import NormalDist

    a = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)
    b = np.array([1, 0, 0, 0, 0, 0, 0, 1], bool)
    d = b.astype(float) - a.astype(float)  # per record: +1 only b flags it, -1 only a does
    se = math.sqrt(((d - d.mean()) ** 2).sum()) / len(d)
    z = NormalDist().inv_cdf(0.975)
    diff, low, high = comparison.paired_rate_difference(a, b)
    assert (diff, low, high) == pytest.approx((-0.5, -0.5 - z * se, -0.5 + z * se))
    assert comparison.paired_rate_difference(a, a) == (0.0, 0.0, 0.0)


def test_uncertainty_columns_bracket_their_estimates():
    y, scores = synthetic()
    scores["ceiling"] = y + RNG.normal(0, 0.01, len(y))
    thresholds = {"good": 1.5, "weak": 1.5, "ceiling": 0.5}
    board = evaluate_test(y, scores, thresholds)
    board.loc["ceiling", "uses_labels"] = True
    point = OperatingPoint("fpr", fpr=0.01)
    curves = {n: ThresholdCurve.from_scores(y, s) for n, s in scores.items()}
    op = operating.at_point(point, operating.thresholds_for(point, list(scores), curves, {}), curves)
    extra = comparison.uncertainty(y, scores, board, op, point.target_fpr, resamples=300)
    for metric in ("roc_auc", "pr_auc", "recall", "precision", "fpr"):
        assert (extra[f"{metric}_ci_low"] <= board[metric] + 1e-12).all(), metric
        assert (board[metric] <= extra[f"{metric}_ci_high"] + 1e-12).all(), metric
    for metric in ("recall_at_op", "fpr_at_op"):
        assert (extra[f"{metric}_ci_low"] <= op.loc[extra.index, metric] + 1e-12).all()
    low, _ = intervals.wilson(board.loc["good", "tp"], board.loc["good", "tp"] + board.loc["good", "fn"])
    assert extra.loc["good", "recall_ci_low"] == pytest.approx(float(low))
    assert bool(extra.loc["good", "roc_auc_tied"]) and not bool(extra.loc["weak", "roc_auc_tied"])
    assert not bool(extra.loc["ceiling", "roc_auc_tied"])  # the ceiling is never the best detector
    assert bool(extra.loc["good", "op_tied"]) and not bool(extra.loc["weak", "op_tied"])


def test_small_samples_are_said():
    assert "only 5 anomalies" in comparison.small_sample(5, 357, "anomalies")
    assert comparison.small_sample(2000, 8000) == ""


@pytest.mark.slow
@pytest.mark.parametrize(("view", "expected", "at_least"), [("reference", "pca", 150), ("true", "bigan@kdd41", 1500)])
def test_at_one_in_ten_thousand_the_best_kdd_detector_is_the_one_catching_most(store, splits, view, expected,
                                                                                at_least):
    """The analyst's question (issue 27): at FPR 0.01 %, validation-chosen, which detector catches most test attacks?"""
    from anodet.scoring import cache
    from anodet.scoring.core import score_frame

    test, _ = cache.split_scores(store, splits, "test", lambda f: score_frame(store, f))
    validation, _ = cache.split_scores(store, splits, "validation", lambda f: score_frame(store, f))
    y, y_val = splits.test.label(view), splits.validation.label(view)
    point = OperatingPoint("fpr", fpr=0.0001)
    val_curves = {n: ThresholdCurve.from_scores(y_val, s) for n, s in validation.items()}
    test_curves = {n: ThresholdCurve.from_scores(y, s) for n, s in test.items()}
    thresholds = operating.thresholds_for(point, store.names, val_curves, {})
    board = evaluate_test(y, test, {n: store.default_threshold(n, view) for n in store.names}, entrants_of(store))
    ranked = operating.rank(board.join(operating.at_point(point, thresholds, test_curves)), point)
    best = ranked.index[0]
    detectors = ranked[~ranked["uses_labels"].astype(bool)]
    assert best == expected and detectors.loc[best, "tp_at_op"] == detectors["tp_at_op"].max() >= at_least
    # 50 alerts a day for 500,000 records is an FPR of 0.01 % on normal traffic: the same thresholds, chosen on the
    # validation normals (the preset used to take 0.01 % of every validation record, 74.5 % of them attacks)
    budget = OperatingPoint.parse_budget("50/500000")
    assert operating.thresholds_for(budget, store.names, val_curves, {}) == thresholds
    at_budget = operating.at_point(budget, thresholds, test_curves)
    flagging = at_budget[at_budget["tp_at_op"] + at_budget["fp_at_op"] > 0]
    assert len(flagging) > len(at_budget) / 2, at_budget[["tp_at_op", "fp_at_op", "pauc"]]
