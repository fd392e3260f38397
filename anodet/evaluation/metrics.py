"""Curves, metrics at a threshold, and threshold presets chosen on the validation split.

A record is flagged when ``score >= threshold``. Everything here is a pure function of arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

QUANTILE_PROBS = np.union1d(np.linspace(0.0, 1.0, 101), np.linspace(0.9, 1.0, 201))
"""Probabilities at which the manifest keeps validation score quantiles (for FPR/contamination presets)."""

METRIC_HELP = {
    "roc_auc": ("Area under the ROC curve: the chance a random attack scores above a random normal record "
                "(1 = perfect, 0.5 = chance)."),
    "pr_auc": ("Area under the precision-recall curve (average precision); "
               "unlike ROC AUC it reflects how rare attacks are."),
    "precision": "Of the records flagged, the share that are attacks.",
    "recall": "Of the attacks, the share flagged (detection rate).",
    "f1": "Harmonic mean of precision and recall.",
    "f2": "F-beta with beta = 2: recall weighs twice as much as precision.",
    "accuracy": "Share of all records classified correctly.",
    "fpr": "False-positive rate: the share of normal records flagged.",
}

PRESET_HELP = {
    "best_accuracy": "The threshold with the best accuracy on the validation split.",
    "best_f1": "The threshold with the best F1 on the validation split.",
    "mean_3sigma": "Mean + 3 standard deviations of the normal validation scores.",
    "target_fpr": "The threshold at which the chosen share of normal validation records is flagged.",
    "contamination": "The threshold that flags the chosen share of all validation records.",
}

COST_HELP = ("The threshold with the lowest expected cost on the validation split, when a missed attack costs "
             "the chosen multiple of a false alarm (the What-If Tool's cost ratio).")
ALERT_BUDGET_HELP = ("The lowest threshold whose validation flag rate fits an alert budget: at most N alerts per day "
                     "for M records per day.")


def _descending_counts(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(attacks flagged, normals flagged, threshold) at each distinct score, highest score first.

    The curves below are scikit-learn's (``roc_curve``, ``precision_recall_curve``,
    ``roc_auc_score``, ``average_precision_score``) computed the same way in numpy, so the
    dashboard does not import scikit-learn to draw; ``tests/test_evaluate.py`` checks them against it.
    """
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="mergesort")[::-1]
    ordered, attacks = scores[order], (np.asarray(y)[order] == 1)
    last = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), len(ordered) - 1]  # equal +inf scores tie too
    tps = np.cumsum(attacks, dtype=np.float64)[last]
    return tps, (last + 1) - tps, ordered[last]


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, or NaN when only one class is present."""
    if len(np.unique(y)) != 2:
        return float("nan")
    fpr, tpr, _ = roc_points(y, scores)
    return _roc_area(fpr, tpr)


def pr_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Average precision, or NaN when there are no attacks."""
    if not np.any(np.asarray(y) == 1):
        return float("nan")
    recall, precision, _ = pr_points(y, scores)
    return _pr_area(recall, precision)


def _roc_area(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _pr_area(recall: np.ndarray, precision: np.ndarray) -> float:
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def roc_points(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate, thresholds) of the ROC curve, from (0, 0)."""
    return _roc_from_counts(*_descending_counts(y, scores))


def pr_points(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recall, precision, thresholds) of the precision-recall curve, ending at (0, 1)."""
    return _pr_from_counts(*_descending_counts(y, scores))


def _roc_from_counts(tps: np.ndarray, fps: np.ndarray,
                     thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full_like(fps, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full_like(tps, np.nan)
    return fpr, tpr, np.r_[np.inf, thresholds]


def _pr_from_counts(tps: np.ndarray, fps: np.ndarray,
                    thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    precision = tps / (tps + fps)
    recall = tps / tps[-1] if tps[-1] > 0 else np.ones_like(tps)
    return np.r_[recall[::-1], 0.0], np.r_[precision[::-1], 1.0], thresholds[::-1]


def curves(y: np.ndarray, scores: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray],
                                                          float, float]:
    """((fpr, tpr), (recall, precision), ROC AUC, PR AUC) from one sort of the scores (the dashboard's summaries)."""
    counts = _descending_counts(y, scores)
    fpr, tpr, _ = _roc_from_counts(*counts)
    recall, precision, _ = _pr_from_counts(*counts)
    y = np.asarray(y)
    two_classes = bool(np.any(y == 1)) and bool(np.any(y != 1))
    return ((fpr, tpr), (recall, precision), _roc_area(fpr, tpr) if two_classes else float("nan"),
            _pr_area(recall, precision) if np.any(y == 1) else float("nan"))


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def metrics_from_counts(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Precision, recall, F1, F2, accuracy and FPR from confusion counts."""
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    f2 = _ratio(5 * precision * recall, 4 * precision + recall)
    return {
        "precision": precision, "recall": recall, "f1": f1, "f2": f2,
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn), "fpr": _ratio(fp, fp + tn),
        "tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn),
    }


def metrics_at(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Confusion counts and metrics when records scoring ``>= threshold`` are flagged."""
    flagged = scores >= threshold
    positive = y == 1
    tp = int(np.sum(flagged & positive))
    fp = int(np.sum(flagged & ~positive))
    return metrics_from_counts(tp, fp, int(positive.sum()) - tp, int((~positive).sum()) - fp)


@dataclass(frozen=True)
class ThresholdCurve:
    """Scores sorted once so that metrics at any threshold cost one binary search.

    This is what keeps a slider move cheap: no pass over the records per move.
    """

    sorted_scores: np.ndarray
    attacks_at_or_above: np.ndarray  # attacks among sorted_scores[i:], for each i
    n_attacks: int

    @classmethod
    def from_scores(cls, y: np.ndarray, scores: np.ndarray) -> ThresholdCurve:
        order = np.argsort(scores, kind="stable")
        y_sorted = (np.asarray(y)[order] == 1).astype(np.int64)
        tail = np.concatenate([np.cumsum(y_sorted[::-1])[::-1], [0]])
        return cls(np.asarray(scores)[order], tail, int(y_sorted.sum()))

    def counts(self, threshold: float) -> tuple[int, int, int, int]:
        """(tp, fp, fn, tn) at ``threshold``."""
        i = int(np.searchsorted(self.sorted_scores, threshold, side="left"))
        flagged = len(self.sorted_scores) - i
        tp = int(self.attacks_at_or_above[i])
        fp = flagged - tp
        fn = self.n_attacks - tp
        tn = len(self.sorted_scores) - self.n_attacks - fp
        return tp, fp, fn, tn

    def metrics(self, threshold: float) -> dict[str, float]:
        return metrics_from_counts(*self.counts(threshold))

    def best_threshold(self, metric: str) -> float:
        """The threshold (one of the scores) that maximises ``metric`` ("f1" or "accuracy")."""
        n = len(self.sorted_scores)
        # Candidate i flags sorted_scores[i:]; only the first index of each distinct score counts.
        starts = np.flatnonzero(np.r_[True, np.diff(self.sorted_scores) > 0])
        tp = self.attacks_at_or_above[starts].astype(float)
        flagged = (n - starts).astype(float)
        fp = flagged - tp
        if metric == "f1":
            values = np.divide(2 * tp, flagged + self.n_attacks, out=np.zeros_like(tp),
                               where=(flagged + self.n_attacks) > 0)
        elif metric == "accuracy":
            tn = (n - self.n_attacks) - fp
            values = (tp + tn) / n
        else:
            raise ValueError(f"unknown metric {metric!r}")
        return float(self.sorted_scores[starts[int(np.argmax(values))]])

    def _candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(thresholds, flagged, attacks flagged) at every distinct score, then just above the highest."""
        n = len(self.sorted_scores)
        starts = np.flatnonzero(np.r_[True, np.diff(self.sorted_scores) > 0])
        top = np.nextafter(self.sorted_scores[-1], np.inf)
        return (np.r_[self.sorted_scores[starts], top], np.r_[n - starts, 0].astype(float),
                np.r_[self.attacks_at_or_above[starts], 0].astype(float))

    def min_cost_threshold(self, miss_cost: float, false_alarm_cost: float) -> float:
        """The threshold minimising ``miss_cost·missed attacks + false_alarm_cost·false alarms``.

        Of equally cheap thresholds the highest (fewest alerts) is chosen; flagging nothing is a
        candidate, so with attacks too cheap to chase the answer is "no alerts".
        """
        if not (miss_cost >= 0 and false_alarm_cost >= 0):
            raise ValueError("costs must be non-negative numbers")
        thresholds, flagged, tp = self._candidates()
        cost = miss_cost * (self.n_attacks - tp) + false_alarm_cost * (flagged - tp)
        return float(thresholds[np.flatnonzero(cost <= cost.min())[-1]])

    def threshold_within_fpr(self, fpr: float) -> float:
        """The lowest threshold that flags at most ``fpr`` (0–1) of the normal records (exact counts)."""
        thresholds, flagged, tp = self._candidates()
        normals = len(self.sorted_scores) - self.n_attacks
        fits = np.flatnonzero((flagged - tp) <= fpr * normals * (1 + 1e-12))
        return float(thresholds[fits[0]])

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        """(false-positive rate, true-positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
        _, flagged, tp = self._candidates()
        normals = len(self.sorted_scores) - self.n_attacks
        fp = (flagged - tp)[::-1]
        tp = tp[::-1]
        return (fp / normals if normals else np.full_like(fp, np.nan),
                tp / self.n_attacks if self.n_attacks else np.full_like(tp, np.nan))

    def partial_auc(self, max_fpr: float) -> float:
        """ROC AUC up to ``max_fpr``, standardised as McClish's (0.5: chance, 1: perfect), as scikit-learn's
        ``roc_auc_score(max_fpr=...)`` computes it (the curve interpolated at ``max_fpr``)."""
        fpr, tpr = self.roc()
        if not (0 < max_fpr <= 1) or np.isnan(fpr).any() or np.isnan(tpr).any():
            return float("nan")
        stop = int(np.searchsorted(fpr, max_fpr, side="right"))
        x, y = fpr[:stop], tpr[:stop]
        if stop < len(fpr) and x[-1] < max_fpr:
            y_at = np.interp(max_fpr, fpr[stop - 1:stop + 1], tpr[stop - 1:stop + 1])
            x, y = np.r_[x, max_fpr], np.r_[y, y_at]
        area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))
        min_area, max_area = 0.5 * max_fpr**2, max_fpr
        return 0.5 * (1 + (area - min_area) / (max_area - min_area))

    def threshold_within_rate(self, rate: float) -> float:
        """The lowest threshold that flags at most ``rate`` (0–1) of the records."""
        thresholds, flagged, _ = self._candidates()
        fits = np.flatnonzero(flagged <= rate * len(self.sorted_scores))
        return float(thresholds[fits[0]])


def threshold_presets(
    scores: np.ndarray, y: np.ndarray, target_fpr: float = 0.01, contamination: float = 0.2
) -> dict[str, float]:
    """Threshold presets from validation scores and labels (see :data:`PRESET_HELP`)."""
    curve = ThresholdCurve.from_scores(y, scores)
    normal = scores[y == 0]
    return {
        "best_accuracy": curve.best_threshold("accuracy"),
        "best_f1": curve.best_threshold("f1"),
        "mean_3sigma": float(normal.mean() + 3 * normal.std()),
        "target_fpr": threshold_for_rate(np.quantile(normal, QUANTILE_PROBS), target_fpr),
        "contamination": threshold_for_rate(np.quantile(scores, QUANTILE_PROBS), contamination),
    }


def threshold_for_rate(quantiles: np.ndarray, rate: float) -> float:
    """The threshold above which a share ``rate`` of a score distribution lies.

    ``quantiles`` are that distribution's values at :data:`QUANTILE_PROBS` (as the manifest
    keeps them), so a target false-positive rate uses the normal scores' quantiles and an
    expected contamination rate uses all scores' quantiles.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be between 0 and 1, got {rate}")
    return float(np.interp(1.0 - rate, QUANTILE_PROBS, np.asarray(quantiles)))


def category_rates(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float],
                   categories: np.ndarray, order: Sequence[str]) -> np.ndarray:
    """``(detectors, categories)`` share of each category's records flagged; NaN when a category is empty."""
    wanted = {c: j for j, c in enumerate(order)}
    column = _column_of(np.asarray(categories), wanted)
    kept = column >= 0
    totals = np.bincount(column[kept], minlength=len(order)).astype(float)
    out = np.full((len(scores), len(order)), np.nan)
    for i, (name, s) in enumerate(scores.items()):
        flagged = np.bincount(column[kept], weights=(np.asarray(s)[kept] >= thresholds[name]), minlength=len(order))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.where(totals > 0, flagged / totals, np.nan)
    return out


def _column_of(categories: np.ndarray, wanted: Mapping[str, int]) -> np.ndarray:
    """Each record's column in :func:`category_rates` (-1: a category not shown), with one pass over the names."""
    names, inverse = np.unique(categories.astype(str), return_inverse=True)
    return np.array([wanted.get(str(n), -1) for n in names], dtype=np.int64)[inverse]


def summary(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """ROC AUC, PR AUC and every metric at ``threshold``."""
    return {"roc_auc": roc_auc(y, scores), "pr_auc": pr_auc(y, scores), **metrics_at(y, scores, threshold)}


def downsample_curve(x: np.ndarray, y: np.ndarray, max_points: int = 300,
                     log_x: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of a curve (first and last kept) so charts stay light to send.

    ``log_x`` (a ROC curve drawn on a log FPR axis): half the points are spread evenly in log10(x), so the
    low false-positive rates keep their detail.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) <= max_points:
        return x, y
    keep = np.linspace(0, len(x) - 1, max_points // 2 if log_x else max_points).round().astype(int)
    if log_x:
        positive = x[x > 0]
        if len(positive):
            targets = np.logspace(np.log10(positive.min()), 0, max_points // 2)
            keep = np.r_[keep, np.searchsorted(x, targets, side="left").clip(0, len(x) - 1),
                         np.flatnonzero(x > 0)[:1]]
    keep = np.unique(keep)
    return x[keep], y[keep]
