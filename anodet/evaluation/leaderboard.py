"""Score the test split with every stored detector and tabulate the results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anodet.app.figures import downsample_curve
from anodet.datasets.kdd import Splits
from anodet.datasets.kdd_schema import ATTACK_CATEGORIES, label_column
from anodet.evaluation import metrics
from anodet.evaluation.metrics import ThresholdCurve
from anodet.store.core import Store


def leaderboard(store: Store, splits: Splits, view: str, scores: dict[str, np.ndarray],
                thresholds: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per detector: ROC AUC, PR AUC and metrics at its threshold on the test split.

    Thresholds default to each detector's validation-chosen best-F1 threshold.
    """
    y = splits.test[label_column(view)].to_numpy()
    chosen = {name: (thresholds or {}).get(name, store.default_threshold(name, view)) for name in scores}
    rates = metrics.category_rates(scores, chosen, splits.test["category"].to_numpy(), ATTACK_CATEGORIES)
    rows = []
    for i, (name, s) in enumerate(scores.items()):
        entry = store.entry(name)
        row = {"detector": name, "name": entry["display_name"], "feature_set": entry["feature_set"],
               "supervised": store.uses_labels(name), "threshold": chosen[name],
               **metrics.summary(y, s, chosen[name])}
        row.update({f"detect_{c}": rates[i, j] for j, c in enumerate(ATTACK_CATEGORIES)})
        rows.append(row)
    return pd.DataFrame(rows).set_index("detector")


LEADERBOARD_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "f2", "accuracy", "fpr")


METRIC_LABELS = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "precision": "Precision", "recall": "Recall",
                 "f1": "F1", "f2": "F2", "accuracy": "Accuracy", "fpr": "False-positive rate"}


PRESET_LABELS = {"best_accuracy": "Best accuracy", "best_f1": "Best F1", "mean_3sigma": "Mean + 3σ",
                 "target_fpr": "Target FPR", "contamination": "Contamination"}


@dataclass(frozen=True)
class CurveSummary:
    """One detector's threshold-free results on the test split under one label view.

    Curves are downsampled for drawing; the AUCs are computed on every record.
    """

    roc_auc: float
    pr_auc: float
    roc: tuple[np.ndarray, np.ndarray]  # (fpr, tpr)
    pr: tuple[np.ndarray, np.ndarray]  # (recall, precision)
    base_rate: float


def curve_summary(y: np.ndarray, scores: np.ndarray, max_points: int = 300) -> CurveSummary:
    """AUCs and light ROC/PR curves of one detector (computed once per view, then shared)."""
    (fpr, tpr), (recall, precision), roc_auc, pr_auc = metrics.curves(y, scores)
    return CurveSummary(
        roc_auc=roc_auc, pr_auc=pr_auc,
        roc=downsample_curve(fpr, tpr, max_points), pr=downsample_curve(recall, precision, max_points),
        base_rate=float(np.mean(np.asarray(y) == 1)),
    )


def curve_leaderboard(curves: Mapping[str, ThresholdCurve], summaries: Mapping[str, CurveSummary],
                thresholds: Mapping[str, float], display_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per detector: ROC AUC, PR AUC, and the metrics at that detector's threshold.

    Uses :class:`ThresholdCurve`, so it costs one binary search per detector.
    """
    rows = []
    for name, curve in curves.items():
        at = curve.metrics(thresholds[name])
        rows.append({
            "detector": (display_names or {}).get(name, name), "threshold": float(thresholds[name]),
            "roc_auc": summaries[name].roc_auc, "pr_auc": summaries[name].pr_auc,
            **{k: at[k] for k in ("precision", "recall", "f1", "f2", "accuracy", "fpr")},
            "flagged": at["tp"] + at["fp"],
        })
    return pd.DataFrame(rows, index=pd.Index(list(curves), name="name"))


def metric_deltas(board: pd.DataFrame, a: str, b: str, metrics: Sequence[str] = LEADERBOARD_METRICS) -> pd.DataFrame:
    """Two leaderboard rows and their difference ``b - a``: one column per metric, three rows."""
    label_a, label_b = board.loc[a, "detector"], board.loc[b, "detector"]
    rows = {label_a: [float(board.loc[a, m]) for m in metrics], label_b: [float(board.loc[b, m]) for m in metrics]}
    rows[f"{label_b} − {label_a}"] = [y - x for x, y in zip(rows[label_a], rows[label_b], strict=True)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(metrics)).rename_axis("detector").reset_index()
