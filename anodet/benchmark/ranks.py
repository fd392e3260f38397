"""Comparing detectors over many datasets with ranks, as Demšar (JMLR 2006) recommends.

Rows of a score matrix are datasets, columns methods, higher is better. Each dataset ranks the
methods (1 = best, ties share the mean rank); the Friedman test asks whether the average ranks
differ more than chance would make them (Demšar's χ²_F, and Iman and Davenport's F_F, which he
recommends as less conservative). If they do, the Nemenyi post-hoc test calls two methods
different when their average ranks differ by at least the critical difference
``CD = q_α √(k(k+1)/(6N))``, with ``q_α`` the studentized range quantile over √2. The
alternative, used by later CD diagrams (Benavoli et al. 2016), compares every pair with the
Wilcoxon signed-ranks test and corrects the p-values with Holm's step-down procedure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Friedman:
    """The Friedman test over ``n`` datasets and ``k`` methods."""

    ranks: np.ndarray
    n: int
    k: int
    chi2: float
    p_chi2: float
    f: float
    p_f: float


@dataclass(frozen=True)
class PairTest:
    """One Wilcoxon signed-ranks comparison, with its Holm-adjusted p-value."""

    a: str
    b: str
    p: float
    p_holm: float
    significant: bool


def rank_matrix(scores: np.ndarray) -> np.ndarray:
    """Per-row ranks of ``scores`` (datasets × methods), 1 = highest score, ties averaged."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or np.isnan(scores).any():
        raise ValueError("the score matrix must be datasets × methods, with no missing value")
    return rankdata(-scores, axis=1)


def friedman_from_ranks(average_ranks: Sequence[float], n: int) -> Friedman:
    """The Friedman statistics from the methods' average ranks over ``n`` datasets (Demšar's χ²_F and F_F)."""
    from scipy.stats import chi2 as chi2_dist
    from scipy.stats import f as f_dist

    ranks = np.asarray(average_ranks, dtype=np.float64)
    k = len(ranks)
    if k < 2 or n < 2:
        raise ValueError("the Friedman test needs at least 2 methods and 2 datasets")
    chi2 = 12.0 * n / (k * (k + 1)) * (float(np.sum(ranks**2)) - k * (k + 1) ** 2 / 4.0)
    denominator = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denominator if denominator > 0 else math.inf
    return Friedman(ranks, n, k, chi2, float(chi2_dist.sf(chi2, k - 1)), f,
                    float(f_dist.sf(f, k - 1, (k - 1) * (n - 1))) if math.isfinite(f) else 0.0)


def friedman(scores: np.ndarray) -> Friedman:
    """The Friedman test on a datasets × methods score matrix (higher is better)."""
    ranks = rank_matrix(scores)
    return friedman_from_ranks(ranks.mean(axis=0), ranks.shape[0])


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical value ``q_α`` for ``k`` methods (Demšar's Table 5a): studentized range quantile / √2."""
    from scipy.stats import studentized_range

    if k < 2:
        raise ValueError("the Nemenyi test needs at least 2 methods")
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie strictly between 0 and 1")
    return float(studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference of average ranks for ``k`` methods over ``n`` datasets."""
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def nemenyi_groups(average_ranks: dict[str, float], cd: float) -> list[list[str]]:
    """Maximal runs of methods (in rank order) whose average ranks all lie within less than ``cd`` of each other.

    Each run is a group no member of which is significantly different from another; single
    methods are left out (they are different from every other one).
    """
    ordered = sorted(average_ranks, key=lambda m: average_ranks[m])
    return _maximal_runs(ordered, lambda a, b: abs(average_ranks[a] - average_ranks[b]) < cd)


def holm(p_values: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(Holm-adjusted p-values, rejected) for ``p_values``: step-down, the i-th smallest against α/(m−i+1)
    (:func:`anodet.evaluation.intervals.holm`, the one implementation)."""
    from anodet.evaluation.intervals import holm as holm_adjusted

    adjusted = holm_adjusted(np.asarray(p_values, dtype=np.float64))
    return adjusted, adjusted <= alpha


def wilcoxon_holm(scores: np.ndarray, names: Sequence[str], alpha: float = 0.05) -> list[PairTest]:
    """Every pair of methods compared with the Wilcoxon signed-ranks test over the datasets, Holm-corrected.

    Zero differences are split between the two rank sums, as Demšar describes; a pair that never
    differs gets p = 1.
    """
    from scipy.stats import wilcoxon

    scores = np.asarray(scores, dtype=np.float64)
    pairs, p_values = [], []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            diff = scores[:, i] - scores[:, j]
            if np.all(diff == 0):
                p = 1.0
            else:
                p = float(wilcoxon(scores[:, i], scores[:, j], zero_method="zsplit").pvalue)
            pairs.append((names[i], names[j]))
            p_values.append(p)
    if not pairs:
        return []
    adjusted, rejected = holm(p_values, alpha)
    return [PairTest(a, b, p, float(q), bool(r))
            for (a, b), p, q, r in zip(pairs, p_values, adjusted, rejected, strict=True)]


def wilcoxon_groups(average_ranks: dict[str, float], tests: list[PairTest]) -> list[list[str]]:
    """Maximal runs of methods (in rank order) no two of which the Wilcoxon–Holm tests tell apart."""
    different = {frozenset((t.a, t.b)) for t in tests if t.significant}
    ordered = sorted(average_ranks, key=lambda m: average_ranks[m])
    return _maximal_runs(ordered, lambda a, b: frozenset((a, b)) not in different)


def _maximal_runs(ordered: list[str], alike) -> list[list[str]]:
    runs: list[list[str]] = []
    for start in range(len(ordered)):
        end = start
        while end + 1 < len(ordered) and all(alike(ordered[i], ordered[end + 1]) for i in range(start, end + 1)):
            end += 1
        run = ordered[start:end + 1]
        if len(run) > 1 and not any(set(run) <= set(r) for r in runs):
            runs.append(run)
    return runs
