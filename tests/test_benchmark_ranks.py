"""Rank statistics against Demšar (2006), scipy, and hand-worked numbers; the critical-difference diagram."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from anodet.benchmark import figures, ranks

# Demšar (2006), Table 6: AUC of C4.5 and three variants on 14 data sets
NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
AUC = np.array([
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
    [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
    [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
    [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.975, 0.975], [0.957, 0.978, 0.946, 0.970],
])


@pytest.mark.parametrize(("k", "alpha", "expected"), [
    (2, 0.05, 1.960), (3, 0.05, 2.343), (4, 0.05, 2.569), (5, 0.05, 2.728), (6, 0.05, 2.850), (7, 0.05, 2.949),
    (8, 0.05, 3.031), (9, 0.05, 3.102), (10, 0.05, 3.164),
    (2, 0.10, 1.645), (4, 0.10, 2.291), (10, 0.10, 2.920),
])
def test_nemenyi_critical_values_are_demsars_table(k, alpha, expected):
    assert ranks.nemenyi_q(k, alpha) == pytest.approx(expected, abs=1e-3)


def test_critical_difference_of_the_papers_example():
    # "CD = 2.569 √(4·5/(6·14)) = 1.25" and 1.12 at α = 0.10
    assert ranks.critical_difference(4, 14, 0.05) == pytest.approx(1.25, abs=5e-3)
    assert ranks.critical_difference(4, 14, 0.10) == pytest.approx(1.12, abs=5e-3)


def test_friedman_statistics_of_the_papers_example():
    # the paper's average ranks give χ²_F = 9.28 and F_F = 3.69
    result = ranks.friedman_from_ranks([3.143, 2.000, 2.893, 1.964], 14)
    assert result.chi2 == pytest.approx(9.28, abs=0.01)
    assert result.f == pytest.approx(3.69, abs=0.01)
    from scipy.stats import f

    # "the critical value of F(3, 39) for α = 0.05 is 2.85, so we reject the null hypothesis"
    assert f.ppf(0.95, 3, 39) == pytest.approx(2.85, abs=0.01)
    assert result.p_f == pytest.approx(f.sf(result.f, 3, 39)) and result.p_f < 0.05


def test_friedman_matches_scipy_without_ties():
    from scipy.stats import friedmanchisquare

    scores = np.random.default_rng(0).uniform(size=(20, 5))
    assert ranks.friedman(scores).chi2 == pytest.approx(friedmanchisquare(*scores.T).statistic, rel=1e-12)


def test_ranks_give_ties_their_mean_and_best_rank_one():
    matrix = ranks.rank_matrix(np.array([[0.9, 0.8, 0.8, 0.1]]))
    np.testing.assert_array_equal(matrix, [[1.0, 2.5, 2.5, 4.0]])
    with pytest.raises(ValueError, match="no missing value"):
        ranks.rank_matrix(np.array([[0.5, np.nan]]))


def test_nemenyi_groups_of_the_papers_example():
    average = dict(zip(NAMES, ranks.rank_matrix(AUC).mean(axis=0), strict=True))
    # α = 0.05: "even the difference between the best and the worst is smaller than CD": one group
    assert ranks.nemenyi_groups(average, ranks.critical_difference(4, 14, 0.05)) == [
        ["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]]
    # α = 0.10: C4.5 is worse than C4.5+m and C4.5+m+cf; C4.5+cf belongs to either group
    assert ranks.nemenyi_groups(average, ranks.critical_difference(4, 14, 0.10)) == [
        ["C4.5+m+cf", "C4.5+m", "C4.5+cf"], ["C4.5+cf", "C4.5"]]


def test_wilcoxon_of_the_papers_pair():
    from scipy.stats import wilcoxon

    # Demšar's Table 2: C4.5 vs C4.5+m, zero differences split: R+ = 93, R- = 12, rejected at α = 0.05
    assert wilcoxon(AUC[:, 0], AUC[:, 1], zero_method="zsplit").statistic == 12
    tests = ranks.wilcoxon_holm(AUC[:, :2], NAMES[:2])
    assert len(tests) == 1 and tests[0].p < 0.05 and tests[0].significant


def test_holm_by_hand():
    adjusted, rejected = ranks.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_array_equal(rejected, [True, False, False, True])


def test_wilcoxon_groups_join_what_holm_cannot_tell_apart():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 0.9, 30)
    scores = np.column_stack([base + 0.1, base + 0.1 + rng.normal(0, 1e-3, 30), base])
    tests = ranks.wilcoxon_holm(scores, ["a", "b", "c"])
    average = dict(zip("abc", ranks.rank_matrix(scores).mean(axis=0), strict=True))
    assert {frozenset((t.a, t.b)) for t in tests if t.significant} == {frozenset("ac"), frozenset("bc")}
    assert ranks.wilcoxon_groups(average, tests) == [sorted("ab", key=lambda m: average[m])]


def test_cd_diagram_is_a_self_contained_svg_with_every_method():
    average = dict(zip(NAMES, ranks.rank_matrix(AUC).mean(axis=0), strict=True))
    cd = ranks.critical_difference(4, 14, 0.10)
    lay = figures.layout(average, cd, ranks.nemenyi_groups(average, cd), kinds={"C4.5": "peer"},
                         names={"C4.5+m": "C4.5 & m <best>"}, title="Demšar's Figure 1")
    doc = figures.svg(lay)
    root = ET.fromstring(doc)  # well-formed XML: names are escaped
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any(t and t.startswith("C4.5 & m <best>") for t in texts)
    assert "CD = 1.12" in texts and not any(el.tag.endswith("script") for el in root.iter())
    assert "href" not in doc
    # two group bars (thick lines under the axis), as in the paper's figure
    assert sum(1 for el in root.iter("{http://www.w3.org/2000/svg}line") if el.get("stroke-width") == "3.0") == 2
    fig = figures.figure(lay)
    assert len(fig.layout.annotations) == len(lay.labels) + len(lay.ticks)
