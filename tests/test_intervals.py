"""Intervals and tests for comparing detectors, each checked against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from anodet.evaluation import intervals as iv
from anodet.evaluation import metrics as evaluate


def mann_whitney_auc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC from average ranks (ties count half), along the last axis: independent of the module."""
    ranks = rankdata(scores, axis=-1)
    m = int(np.sum(y == 1))
    n = len(y) - m
    return (ranks[..., y == 1].sum(axis=-1) - m * (m + 1) / 2) / (m * n)


def correlated_detectors(rng: np.random.Generator, m: int, n: int,
                         shifts: tuple[float, ...] = (1.0, 0.8, 0.3)) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of detectors sharing a latent score, rounded to 0.1 so that ties abound."""
    y = np.r_[np.ones(m, dtype=int), np.zeros(n, dtype=int)]
    latent = rng.normal(size=m + n)
    return y, np.array([np.round(0.6 * latent + 0.8 * rng.normal(size=m + n) + s * y, 1) for s in shifts])


@pytest.mark.parametrize("m,n", [(30, 70), (150, 450), (600, 1400)])
def test_delong_covariance_matches_a_large_stratified_bootstrap(m, n):
    rng = np.random.default_rng(m)
    y, scores = correlated_detectors(rng, m, n)
    assert len(np.unique(scores[0])) < 0.6 * (m + n)  # heavily tied
    result = iv.delong(y, scores)
    np.testing.assert_allclose(result.auc, [roc_auc_score(y, s) for s in scores], rtol=0, atol=1e-12)
    attacks, normals = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    replicates = []
    for _ in range(8):  # 4,000 resamples, attacks and normals drawn separately
        idx = np.concatenate([attacks[rng.integers(0, m, (500, m))], normals[rng.integers(0, n, (500, n))]], axis=1)
        replicates.append(np.stack([mann_whitney_auc(y[idx[0]], s[idx]) for s in scores], axis=1))
    boot = np.cov(np.concatenate(replicates).T)
    np.testing.assert_allclose(np.diag(result.cov) / np.diag(boot), 1.0, atol=0.08)
    scale = np.sqrt(np.outer(np.diag(boot), np.diag(boot)))
    np.testing.assert_allclose(result.cov / scale, boot / scale, atol=0.05)  # correlations between detectors


def test_delong_interval_is_logit_normal_and_stays_inside_zero_one():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(50, dtype=int), np.zeros(500, dtype=int)]
    s = rng.normal(size=550) + 4.0 * y  # AUC ≈ 0.998
    logit_ci, plain = iv.delong(y, s), iv.delong(y, s, transform="normal")
    auc, se = logit_ci.auc[0], logit_ci.se[0]
    assert 0 < logit_ci.low[0] < auc < logit_ci.high[0] < 1
    assert auc + 1.959964 * se > 1 and plain.high[0] == 1.0  # the plain interval had to be clipped
    assert auc - logit_ci.low[0] > logit_ci.high[0] - auc  # reaches further down than up near 1
    half = 1.959964 * se / (auc * (1 - auc))
    lo, hi = (1 / (1 + np.exp(-(np.log(auc / (1 - auc)) + d * half))) for d in (-1, 1))
    assert (logit_ci.low[0], logit_ci.high[0]) == pytest.approx((lo, hi), rel=1e-6)
    perfect = iv.delong(y, 10.0 * y)
    assert (perfect.auc[0], perfect.low[0], perfect.high[0], perfect.se[0]) == (1.0, 1.0, 1.0, 0.0)


@pytest.mark.parametrize("seed,m,n,effect", [(0, 80, 220, 0.0), (1, 80, 220, 0.25), (2, 100, 300, 0.35),
                                             (5, 120, 280, 0.3)])
def test_paired_test_p_value_matches_a_permutation_test(seed, m, n, effect):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(m, dtype=int), np.zeros(n, dtype=int)]
    latent = rng.normal(size=m + n) + y
    a = np.round(latent + 0.7 * rng.normal(size=m + n) + effect * y, 1)
    b = np.round(latent + 0.7 * rng.normal(size=m + n), 1)
    test = iv.paired_test(iv.delong(y, {"a": a, "b": b}), "a", "b")
    assert test.difference == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    swap = rng.random((4000, m + n)) < 0.5  # under "no difference" a record's two scores are exchangeable
    null = mann_whitney_auc(y, np.where(swap, b, a)) - mann_whitney_auc(y, np.where(swap, a, b))
    p_permutation = (np.sum(np.abs(null) >= abs(test.difference) - 1e-12) + 1) / (len(null) + 1)
    assert test.p_value == pytest.approx(p_permutation, abs=0.03)
    assert test.se == pytest.approx(null.std(), rel=0.1)
    low, high = test.interval()
    assert low < test.difference < high and (low > 0) == (test.p_value < 0.05)


def test_identical_detectors_do_not_differ():
    rng = np.random.default_rng(4)
    y, scores = correlated_detectors(rng, 40, 60)
    test = iv.paired_test(iv.delong(y, {"x": scores[0], "copy": scores[0].copy()}), "x", "copy")
    assert (test.difference, test.z, test.p_value) == (0.0, 0.0, 1.0)


def test_holm_against_a_hand_worked_example():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → max(0.06, 0.04) = 0.06
    adjusted = iv.holm(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert list(adjusted <= 0.05) == [True, False, False, True]
    np.testing.assert_allclose(iv.holm(np.array([0.5, 0.4])), [0.8, 0.8])  # capped step-down, never above 1
    with pytest.raises(ValueError, match="between 0 and 1"):
        iv.holm(np.array([0.2, 1.5]))


def test_ties_with_the_best_keeps_the_near_equal_and_drops_the_clearly_worse():
    rng = np.random.default_rng(6)
    m, n = 300, 700
    y = np.r_[np.ones(m, dtype=int), np.zeros(n, dtype=int)]
    latent = rng.normal(size=m + n) + 1.2 * y
    best = latent + 0.3 * rng.normal(size=m + n)
    scores = {"best": best, "near": best + 0.05 * rng.normal(size=m + n),
              "worse": latent + 1.5 * rng.normal(size=m + n), "chance": rng.normal(size=m + n)}
    aucs = iv.delong(y, scores)
    ties = iv.ties_with_best(aucs, best="best")
    assert ties.tied == ("near",) and set(ties.p_value) == {"near", "worse", "chance"}
    for name in ("near", "worse", "chance"):
        assert ties.p_value[name] == pytest.approx(iv.paired_test(aucs, "best", name).p_value)
    np.testing.assert_allclose(list(ties.adjusted.values()), iv.holm(np.array(list(ties.p_value.values()))))
    top = iv.ties_with_best(aucs)
    assert top.best == aucs.names[int(np.argmax(aucs.auc))] and set(top.tied) == {"best", "near"} - {top.best}
    assert iv.ties_with_best(aucs, best="chance").tied == ()


@pytest.mark.parametrize("max_fpr", [0.01, 0.05, 0.1, 0.3, 1.0])
def test_partial_auc_matches_scikit_learn(max_fpr):
    rng = np.random.default_rng(7)
    y, scores = correlated_detectors(rng, 150, 850)
    expected = [roc_auc_score(y, s, max_fpr=max_fpr) for s in scores]
    np.testing.assert_allclose(iv.partial_roc_auc(y, scores, max_fpr), expected, rtol=0, atol=1e-12)


def test_partial_auc_interpolates_at_max_fpr_exactly_like_scikit_learn():
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 1, 0])
    s = np.array([9, 8, 8, 7, 6, 5, 5, 4, 3, 2], dtype=float)
    for max_fpr in (1 / 6, 1 / 3, 0.25, 0.5, 0.9):  # on a vertex, inside a tied (diagonal) segment, elsewhere
        assert iv.partial_roc_auc(y, s, max_fpr)[0] == pytest.approx(roc_auc_score(y, s, max_fpr=max_fpr), abs=1e-12)


def test_bootstrap_point_estimates_and_replicates_agree_with_evaluate_on_the_resampled_records():
    rng = np.random.default_rng(8)
    y, scores = correlated_detectors(rng, 60, 140)
    got = iv.bootstrap(y, scores, {"ap": iv.AVERAGE_PRECISION, "auc": iv.ROC_AUC,
                                   "pauc": iv.partial_auc_statistic(0.1)}, n_resamples=5, seed=11)
    np.testing.assert_allclose(got["ap"].estimate, [average_precision_score(y, s) for s in scores], atol=1e-12)
    np.testing.assert_allclose(got["auc"].estimate, [evaluate.roc_auc(y, s) for s in scores], atol=1e-12)
    # rebuild the resamples: per block, attack counts then normal counts (one count per record)
    draws = np.random.default_rng(11)
    attacks, normals = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    counts_a, counts_n = iv._draw(draws, len(attacks), 5), iv._draw(draws, len(normals), 5)
    for r in range(5):
        records = np.r_[np.repeat(attacks, counts_a[:, r].astype(int)), np.repeat(normals, counts_n[:, r].astype(int))]
        for d, s in enumerate(scores):
            assert got["ap"].replicates[r, d] == pytest.approx(evaluate.pr_auc(y[records], s[records]), abs=1e-6)
            assert got["auc"].replicates[r, d] == pytest.approx(evaluate.roc_auc(y[records], s[records]), abs=1e-6)
            assert got["pauc"].replicates[r, d] == pytest.approx(
                roc_auc_score(y[records], s[records], max_fpr=0.1), abs=1e-6)


def test_bootstrap_pr_auc_replicates_centre_on_the_point_estimate():
    rng = np.random.default_rng(9)
    y, scores = correlated_detectors(rng, 200, 800)
    got = iv.bootstrap(y, scores, {"ap": iv.AVERAGE_PRECISION}, n_resamples=2000)["ap"]
    spread = got.replicates.std(axis=0)
    assert np.all(np.abs(got.replicates.mean(axis=0) - got.estimate) < 0.25 * spread)
    assert np.all((got.low < got.estimate) & (got.estimate < got.high))
    np.testing.assert_allclose(got.high - got.low, 2 * 1.96 * spread, rtol=0.1)


def test_bootstrap_is_seeded_and_a_detector_does_not_depend_on_the_others():
    rng = np.random.default_rng(10)
    y, scores = correlated_detectors(rng, 80, 320)
    stats = {"ap": iv.AVERAGE_PRECISION, "pauc": iv.partial_auc_statistic(0.05)}
    first = iv.bootstrap(y, scores, stats, n_resamples=700, seed=3)
    again = iv.bootstrap(y, scores, stats, n_resamples=700, seed=3)
    alone = iv.bootstrap(y, {"2": scores[2]}, stats, n_resamples=700, seed=3)
    other = iv.bootstrap(y, scores, stats, n_resamples=700, seed=4)
    for label in stats:
        np.testing.assert_array_equal(first[label].replicates, again[label].replicates)
        np.testing.assert_array_equal(first[label].replicates[:, 2], alone[label].replicates[:, 0])
        assert not np.array_equal(first[label].replicates, other[label].replicates)
        assert first[label].replicates.shape == (700, 3)


def test_bootstrap_of_a_difference_is_paired():
    rng = np.random.default_rng(12)
    m, n = 200, 600
    y = np.r_[np.ones(m, dtype=int), np.zeros(n, dtype=int)]
    latent = rng.normal(size=m + n) + y
    scores = {"a": latent + 0.4 * rng.normal(size=m + n) + 0.1 * y, "b": latent + 0.4 * rng.normal(size=m + n)}
    got = iv.bootstrap(y, scores, {"auc": iv.ROC_AUC}, n_resamples=2000)["auc"]
    diff, low, high = got.difference("a", "b")
    test = iv.paired_test(iv.delong(y, scores), "a", "b")
    assert diff == pytest.approx(test.difference)
    assert (high - low) == pytest.approx(2 * 1.96 * test.se, rel=0.1)
    unpaired = np.hypot(got.high[0] - got.low[0], got.high[1] - got.low[1])  # were the resamples independent
    assert (high - low) < 0.7 * unpaired


def test_the_cut_roc_curve_gives_the_same_replicates_as_every_distinct_score(monkeypatch):
    rng = np.random.default_rng(13)
    y, scores = correlated_detectors(rng, 100, 2000)
    pauc = iv.partial_auc_statistic(0.02)
    full = iv.CountStatistic(pauc.fn)  # every distinct score, nothing cut
    got = iv.bootstrap(y, scores, {"cut": pauc, "full": full}, n_resamples=600)
    np.testing.assert_allclose(got["cut"].replicates, got["full"].replicates, atol=1e-9)
    monkeypatch.setattr(iv, "_spare_normals", lambda expected: int(expected))  # too short: resamples fall off
    short = iv.bootstrap(y, scores, {"cut": pauc}, n_resamples=600)["cut"]
    np.testing.assert_allclose(short.replicates, got["full"].replicates, atol=1e-9)


def test_ties_at_infinity_are_one_threshold():
    y = np.array([0, 1, 1, 0, 1, 0])
    s = np.array([np.inf, np.inf, np.inf, 1.0, 2.0, 0.5])
    expected = mann_whitney_auc(y, np.array([9.0, 9, 9, 1, 2, 0.5]))
    assert iv.delong(y, s).auc[0] == pytest.approx(expected)
    assert iv.bootstrap(y, s, {"auc": iv.ROC_AUC}, n_resamples=0)["auc"].estimate[0] == pytest.approx(expected)


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (10, 10), (0, 8000), (3, 8000), (1990, 2000),
                                 (47, 123)])
def test_wilson_and_clopper_pearson_match_scipy_binomtest(k, n):
    for level in (0.95, 0.9):
        ref = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
        assert tuple(map(float, iv.wilson(k, n, level))) == pytest.approx((ref.low, ref.high), abs=1e-12)
        ref = binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
        assert tuple(map(float, iv.clopper_pearson(k, n, level))) == pytest.approx((ref.low, ref.high), abs=1e-10)


def test_proportion_intervals_are_vectorised_and_wilson_follows_its_formula():
    k, n = np.array([0, 3, 40, 0]), np.array([25, 40, 40, 0])
    low, high = iv.wilson(k, n)
    z = 1.959963984540054
    assert high[0] == pytest.approx(z * z / (25 + z * z))  # k = 0: the centre equals the half-width
    p = 3 / 40
    centre = (p + z * z / 80) / (1 + z * z / 40)
    half = z / (1 + z * z / 40) * np.sqrt(p * (1 - p) / 40 + z * z / (4 * 1600))
    assert (low[1], high[1]) == pytest.approx((centre - half, centre + half))
    assert high[2] == 1.0 and np.isnan(low[3]) and np.isnan(high[3])
    cp_low, cp_high = iv.clopper_pearson(k, n)
    assert cp_low[0] == 0.0 and cp_high[2] == 1.0 and np.isnan(cp_high[3])
    for j in range(3):
        assert (cp_low[j], cp_high[j]) == pytest.approx(tuple(map(float, iv.clopper_pearson(k[j], n[j]))))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        iv.wilson(5, 3)


@pytest.mark.parametrize("n", [30, 100, 2000, 8000])
def test_rule_of_three_approximates_the_one_sided_exact_bound_at_zero(n):
    exact = float(iv.clopper_pearson(0, n, level=0.90)[1])  # its upper end is a one-sided 95 % bound
    assert exact == pytest.approx(1 - 0.05 ** (1 / n))
    assert exact < float(iv.rule_of_three(n)) < exact * (1 + 1.6 / n + 0.002)
    assert float(iv.clopper_pearson(0, n)[1]) == pytest.approx(1 - 0.025 ** (1 / n))  # two-sided: ≈ 3.7/n
    step, upper = iv.fpr_resolution(n)
    assert step == 1 / n and upper == pytest.approx(exact)


def test_compact_text():
    assert iv.format_interval(0.9681, 0.9612, 0.9744) == "0.968 [0.961, 0.974]"
    assert iv.format_pm(0.9681, 0.0042) == "0.968 ± 0.004"
    assert iv.format_interval(0.99444, 0.99350, 0.99533, digits=None) == "0.9944 [0.9935, 0.9953]"
    assert iv.format_pm(0.72, 0.031, digits=None) == "0.72 ± 0.03"
    assert iv.format_interval(float("nan"), 0.1, 0.2) == "n/a"


def test_bad_input_is_refused_in_one_sentence():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="pass both alike"):
        iv.delong(y, np.zeros(5))
    with pytest.raises(ValueError, match="3 to 4 records"):
        iv.delong(y, {"x": np.arange(4.0), "short": np.arange(3.0)})
    with pytest.raises(ValueError, match="contain NaN"):
        iv.delong(y, {"x": np.array([0.1, np.nan, 0.3, 0.4])})
    with pytest.raises(ValueError, match="at least 2 attacks"):
        iv.bootstrap(np.zeros(4), np.arange(4.0), {"ap": iv.AVERAGE_PRECISION})
    with pytest.raises(ValueError, match="unknown detector"):
        iv.paired_test(iv.delong(y, {"x": np.arange(4.0)}), "x", "y")
    with pytest.raises(ValueError, match="max_fpr"):
        iv.partial_auc_statistic(0)


@pytest.mark.slow
@pytest.mark.parametrize("view", ["reference", "true"])
def test_delong_interval_matches_the_bootstrap_on_kdd_for_every_detector(store, splits, view):
    from anodet.scoring import cache as score_cache
    from anodet.scoring.core import score_rows

    scores, _ = score_cache.split_scores(store, splits, "test", lambda frame: score_rows(store, frame).by_detector)
    y = splits.test.label(view)
    delong = iv.delong(y, scores)
    boot = iv.bootstrap(y, scores, {"auc": iv.ROC_AUC}, n_resamples=20_000, seed=0)["auc"]
    np.testing.assert_allclose(boot.estimate, delong.auc, atol=1e-12)
    ratio = (delong.high - delong.low) / (boot.high - boot.low)
    worst = int(np.argmax(np.abs(ratio - 1)))
    print(f"{view}: worst DeLong/bootstrap width ratio {ratio[worst]:.3f} ({delong.names[worst]}, "
          f"AUC {delong.auc[worst]:.4f})")
    assert np.all(np.abs(ratio - 1) <= 0.10), dict(zip(delong.names, np.round(ratio, 3), strict=True))
