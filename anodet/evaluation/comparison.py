"""Every number that ranks detectors with the interval or the count it rests on, and which detectors tie.

One place for the leaderboard's uncertainty, so the Overview, the explorer, ``evaluate`` and the
decision report say the same: ROC AUC with DeLong's 95 % interval and the detectors tied with the best
(paired DeLong, Holm across the pairs); PR AUC and the partial ROC AUC at the operating point with a
stratified bootstrap interval (seeded, :data:`RESAMPLES` resamples, every detector on the same
resamples); recall, precision and FPR at a threshold with Wilson intervals from their counts; and at
the operating point, the detectors whose catches are not significantly fewer than the best one's
(exact McNemar tests on the attacks both could catch, Holm across the pairs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from anodet.evaluation import intervals

RESAMPLES = 1_000
"""Bootstrap resamples behind PR AUC and partial AUC intervals (seed 0): all of them within ~1 s for 26 detectors."""
LEVEL = 0.95
SMALL_ATTACKS = 30
SMALL_NORMALS = 1_000


def mcnemar(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar p-value: do two detectors catch different numbers of the same records?

    The discordant records split as Binomial(n, 1/2) under the null; the distribution is symmetric, so the
    two-sided p-value is twice the smaller tail (capped at 1), summed in log space: exact for any n, and without
    importing scipy.stats on the Overview's first draw.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0 or only_a == only_b:
        return 1.0
    i = np.arange(k + 1)
    log_terms = (math.lgamma(n + 1) - np.array([math.lgamma(j + 1) + math.lgamma(n - j + 1) for j in i])
                 - n * math.log(2.0))
    top = log_terms.max()
    return float(min(1.0, 2.0 * math.exp(top) * np.exp(log_terms - top).sum()))


def paired_rate_difference(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """(b's rate − a's, low, high) over the same records (``a``, ``b``: which of them each flags): the normal
    interval of a paired difference of proportions, from the records only one of the two flags."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n = max(len(a), 1)
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    diff = (only_b - only_a) / n
    half = intervals.z_value(level) * math.sqrt(max(only_a + only_b - (only_b - only_a) ** 2 / n, 0.0)) / n
    return diff, diff - half, diff + half


def ties_at_point(caught: Mapping[str, np.ndarray], best: str, alpha: float = 0.05) -> dict[str, float]:
    """Holm-adjusted McNemar p-value of each detector against ``best`` on the attacks (``caught``: which
    attacks each one flags at the operating point); a detector is tied when its value exceeds ``alpha``."""
    others = [n for n in caught if n != best]
    if not others:
        return {}
    p = np.array([mcnemar(caught[best], caught[n]) for n in others])
    return dict(zip(others, map(float, intervals.holm(p)), strict=True))


def _wilson_columns(table: pd.DataFrame, prefix: str, counts: Mapping[str, tuple[str, str]]) -> dict[str, np.ndarray]:
    out = {}
    for metric, (k, n) in counts.items():
        low, high = intervals.wilson(table[k].to_numpy(float), table[n].to_numpy(float), LEVEL)
        out[f"{metric}{prefix}_ci_low"], out[f"{metric}{prefix}_ci_high"] = low, high
    return out


def uncertainty(y: np.ndarray, scores: Mapping[str, np.ndarray], board: pd.DataFrame,
                at_point: pd.DataFrame | None = None, max_fpr: float | None = None,
                resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Interval and tie columns for the rows of ``board`` (:func:`anodet.evaluation.leaderboard.leaderboard`),
    and for the operating-point columns of ``at_point`` (:func:`anodet.evaluation.operating.at_point`):
    :func:`threshold_free` joined with :func:`at_thresholds`."""
    supervised = board["uses_labels"].astype(bool).to_dict()
    free = threshold_free(y, {n: scores[n] for n in board.index}, supervised, max_fpr, resamples, seed)
    return free.join(at_thresholds(y, scores, board, at_point))


def threshold_free(y: np.ndarray, scores: Mapping[str, np.ndarray], supervised: Mapping[str, bool],
                   max_fpr: float | None = None, resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """What does not depend on thresholds (the dashboard computes it once per store and view): ``roc_auc_ci_low/
    high``, ``roc_auc_tied`` (not beaten by the best detector: paired DeLong, Holm), ``pr_auc_ci_low/high`` and,
    with ``max_fpr``, ``pauc_ci_low/high`` (stratified bootstrap). The supervised ceiling is never "the best"."""
    names = list(scores)
    y = np.asarray(y)
    matrix = {n: np.asarray(scores[n], dtype=np.float64) for n in names}
    out = pd.DataFrame(index=pd.Index(names, name="name"))
    aucs = intervals.delong(y, matrix, LEVEL)
    out["roc_auc_ci_low"], out["roc_auc_ci_high"] = aucs.low, aucs.high
    out["roc_auc_tied"] = False
    detectors = [n for n in names if not supervised.get(n, False)]
    if detectors:
        best = max(detectors, key=lambda n: aucs.auc[aucs.index(n)])
        ties = intervals.ties_with_best(intervals.delong(y, {n: matrix[n] for n in detectors}, LEVEL), best)
        out.loc[[best, *ties.tied], "roc_auc_tied"] = True
    stats = {"pr_auc": intervals.AVERAGE_PRECISION}
    if max_fpr is not None and 0 < max_fpr <= 1:
        stats["pauc"] = intervals.partial_auc_statistic(max_fpr)
    boot = intervals.bootstrap(y, matrix, stats, n_resamples=resamples, seed=seed, level=LEVEL)
    for key, result in boot.items():
        out[f"{key}_ci_low"], out[f"{key}_ci_high"] = result.low, result.high
    return out


def at_thresholds(y: np.ndarray, scores: Mapping[str, np.ndarray], board: pd.DataFrame,
                  at_point: pd.DataFrame | None = None) -> pd.DataFrame:
    """What depends on thresholds: Wilson intervals of ``precision``, ``recall`` and ``fpr`` at each detector's
    threshold in ``board`` and, with ``at_point``, of ``recall_at_op`` and ``fpr_at_op``, and ``op_tied`` (not
    significantly fewer attacks caught than the best detector there: exact McNemar, Holm)."""
    names = list(board.index)
    out = pd.DataFrame(index=board.index)
    counts = board.assign(attacks=board["tp"] + board["fn"], normals=board["fp"] + board["tn"],
                          flagged_n=board["tp"] + board["fp"])
    for column, values in _wilson_columns(counts, "", {"recall": ("tp", "attacks"), "fpr": ("fp", "normals"),
                                                        "precision": ("tp", "flagged_n")}).items():
        out[column] = values
    if at_point is None:
        return out
    op = at_point.loc[names]
    op = op.assign(attacks=op["tp_at_op"] + op["fn_at_op"], normals=op["fp_at_op"] + op["tn_at_op"])
    for column, values in _wilson_columns(op, "_at_op", {"recall": ("tp_at_op", "attacks"),
                                                         "fpr": ("fp_at_op", "normals")}).items():
        out[column] = values
    out["op_tied"] = False
    detectors = [n for n in names if not bool(board.loc[n, "uses_labels"])]
    if detectors:
        attacks = np.asarray(y) == 1
        caught = {n: np.asarray(scores[n])[attacks] >= op.loc[n, "threshold_at_op"] for n in detectors}
        best = max(detectors, key=lambda n: (op.loc[n, "recall_at_op"], -op.loc[n, "fpr_at_op"]))
        adjusted = ties_at_point(caught, best)
        out.loc[[best, *(n for n, q in adjusted.items() if q > 0.05)], "op_tied"] = True
    return out


def small_sample(n_attacks: int, n_normals: int, positives: str = "attacks") -> str:
    """A sentence when a test part is too small to rank detectors on ("" when it is not)."""
    problems = []
    if n_attacks < SMALL_ATTACKS:
        problems.append(f"only {n_attacks:,} {positives}")
    if n_normals < SMALL_NORMALS:
        problems.append(f"only {n_normals:,} normal records")
    if not problems:
        return ""
    step = 1 / n_attacks if n_attacks else math.nan
    return (f"This test split has {' and '.join(problems)}: recall moves in steps of {step:.0%} and the intervals "
            "are wide, so detectors whose intervals overlap are not ranked by this split; treat the order as a "
            "hint, not a result." if n_attacks else "This test split has no anomalies to rank detectors on.")


def paired_rows(y: np.ndarray, scores: Mapping[str, np.ndarray], a: str, b: str,
                resamples: int = RESAMPLES, seed: int = 0) -> dict[str, tuple[float, float, float, float]]:
    """``b − a`` for ROC AUC (paired DeLong) and PR AUC (paired bootstrap): ``{metric: (difference, low,
    high, p-value)}`` (the bootstrap's p-value is NaN: its interval is what it offers)."""
    pair = {a: np.asarray(scores[a], np.float64), b: np.asarray(scores[b], np.float64)}
    aucs = intervals.delong(y, pair, LEVEL)
    test = intervals.paired_test(aucs, b, a)
    low, high = test.interval(LEVEL)
    boot = intervals.bootstrap(y, pair, {"pr_auc": intervals.AVERAGE_PRECISION}, n_resamples=resamples, seed=seed,
                               level=LEVEL)["pr_auc"]
    diff, lo, hi = boot.difference(b, a)
    return {"roc_auc": (test.difference, low, high, test.p_value), "pr_auc": (diff, lo, hi, math.nan)}


def interval_text(estimate: float, low: float, high: float, digits: int | None = 3) -> str:
    """``0.968 [0.961, 0.974]`` (or ``–`` when there is nothing to show)."""
    if any(isinstance(v, float) and math.isnan(v) for v in (estimate, low, high)):
        return "–"
    return intervals.format_interval(estimate, low, high, digits)


def counts_text(k: int, n: int) -> str:
    """``163 / 2,000``: the count a share rests on."""
    return f"{int(k):,} / {int(n):,}"


def join(board: pd.DataFrame, extra: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """``board`` with ``extra``'s columns (all, or ``columns``), row for row."""
    return board.join(extra[list(columns)] if columns else extra)
