"""The one leaderboard: every detector of a store on a dataset's test part, for pages and commands alike.

Curves are sorted once per detector (:class:`~anodet.evaluation.metrics.ThresholdCurve`), so the
metrics at any threshold cost one binary search; the dashboard keeps those per server, the
command line computes them once. The supervised ceiling (a model trained on labels) is always
listed last and never named the best detector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anodet.datasets.model import Declaration, Splits
from anodet.evaluation import metrics
from anodet.evaluation.metrics import ThresholdCurve, downsample_curve
from anodet.store.core import Store

LEADERBOARD_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "f2", "accuracy", "fpr")
METRIC_LABELS = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "precision": "Precision", "recall": "Recall",
                 "f1": "F1", "f2": "F2", "accuracy": "Accuracy", "fpr": "False-positive rate"}
PRESET_LABELS = {"best_accuracy": "Best accuracy", "best_f1": "Best F1", "mean_3sigma": "Mean + 3σ",
                 "target_fpr": "Target FPR", "contamination": "Contamination"}


@dataclass(frozen=True)
class CurveSummary:
    """One detector's threshold-free results on the test part under one label view.

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
        roc=downsample_curve(fpr, tpr, max_points, log_x=True), pr=downsample_curve(recall, precision, max_points),
        base_rate=float(np.mean(np.asarray(y) == 1)),
    )


@dataclass(frozen=True)
class Entrant:
    """How the leaderboard names a detector: its display name, feature set, and whether it learned from labels."""

    display: str
    feature_set: str = ""
    supervised: bool = False


def leaderboard(curves: Mapping[str, ThresholdCurve], summaries: Mapping[str, CurveSummary],
                thresholds: Mapping[str, float], entrants: Mapping[str, Entrant] | None = None) -> pd.DataFrame:
    """One row per detector (index: its stored name): ROC AUC, PR AUC and the metrics at its threshold.

    Ranked by ROC AUC with the supervised ceiling last (:func:`ranked`).
    """
    rows = []
    for name, curve in curves.items():
        at = curve.metrics(thresholds[name])
        who = (entrants or {}).get(name, Entrant(name))
        rows.append({
            "detector": who.display, "feature_set": who.feature_set, "uses_labels": who.supervised,
            "threshold": float(thresholds[name]), "roc_auc": summaries[name].roc_auc, "pr_auc": summaries[name].pr_auc,
            **{k: at[k] for k in ("precision", "recall", "f1", "f2", "accuracy", "fpr")},
            "flagged": at["tp"] + at["fp"], "tp": at["tp"], "fp": at["fp"], "fn": at["fn"], "tn": at["tn"],
        })
    return ranked(pd.DataFrame(rows, index=pd.Index(list(curves), name="name")), "roc_auc")


def ranked(table: pd.DataFrame, by: str, ascending: bool = False) -> pd.DataFrame:
    """``table`` sorted by ``by`` (ties keep their order), the supervised ceiling last: the one ranking rule."""
    ceiling = table["uses_labels"].astype(bool) if "uses_labels" in table else pd.Series(False, index=table.index)
    order = table.assign(_ceiling=ceiling.to_numpy()).sort_values(["_ceiling", by], ascending=[True, ascending],
                                                                  kind="stable", na_position="last")
    return order.drop(columns="_ceiling")


def evaluate_test(y: np.ndarray, scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float],
                  entrants: Mapping[str, Entrant] | None = None) -> pd.DataFrame:
    """The leaderboard computed from scratch (the command line's; pages keep the curves per server)."""
    curves = {n: ThresholdCurve.from_scores(y, s) for n, s in scores.items()}
    summaries = {n: curve_summary(y, s) for n, s in scores.items()}
    return leaderboard(curves, summaries, thresholds, entrants)


def unlabelled(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float],
               entrants: Mapping[str, Entrant] | None = None) -> pd.DataFrame:
    """Without labels: each detector's threshold and what it flags (count and share)."""
    rows = []
    for name, s in scores.items():
        who = (entrants or {}).get(name, Entrant(name))
        flagged = np.asarray(s) >= thresholds[name]
        rows.append({"detector": who.display, "feature_set": who.feature_set, "uses_labels": who.supervised,
                     "threshold": float(thresholds[name]), "flagged": int(flagged.sum()),
                     "share_flagged": float(flagged.mean()) if len(flagged) else float("nan")})
    return pd.DataFrame(rows, index=pd.Index(list(scores), name="name"))


def with_category_rates(table: pd.DataFrame, scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float],
                        categories: np.ndarray, order: Sequence[str]) -> pd.DataFrame:
    """``table`` with a ``detect_<category>`` column per anomaly category: the share of its records flagged."""
    names = list(table.index)
    rates = metrics.category_rates({n: scores[n] for n in names}, thresholds, categories, order)
    return table.assign(**{f"detect_{c}": rates[:, j] for j, c in enumerate(order)})


def metric_deltas(board: pd.DataFrame, a: str, b: str, columns: Sequence[str] = LEADERBOARD_METRICS) -> pd.DataFrame:
    """Two leaderboard rows and their difference ``b - a``: one column per metric, three rows."""
    label_a, label_b = board.loc[a, "detector"], board.loc[b, "detector"]
    rows = {label_a: [float(board.loc[a, m]) for m in columns], label_b: [float(board.loc[b, m]) for m in columns]}
    rows[f"{label_b} − {label_a}"] = [y - x for x, y in zip(rows[label_a], rows[label_b], strict=True)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(columns)).rename_axis("detector").reset_index()


def entrants_of(store: Store, names: Sequence[str] | None = None) -> dict[str, Entrant]:
    """Each stored detector's display name, feature set and label use, as the manifest records them."""
    return {n: Entrant(store.entry(n).get("display_name", n), store.feature_set_of(n), store.uses_labels(n))
            for n in (names if names is not None else store.names)}


def boards_on_test(declaration: Declaration, store: Store, splits: Splits,
           names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Per label view the leaderboard at each detector's default threshold (one ``unlabelled`` board without labels)."""
    from anodet.scoring.core import score_frame

    names = names or store.names  # a name not in the store is a StoreError saying how to add it
    for name in names:
        store.entry(name)
    external = store.external_scores("test", splits.test.record_id)  # scores made elsewhere (anodet.external)
    stored = [n for n in names if n not in external]
    scores = score_frame(store, splits.test.rows, stored) if stored else {}
    scores = {n: scores[n] if n in scores else external[n] for n in names}
    entrants = entrants_of(store, names)
    test = splits.test
    out = {}
    for view in declaration.view_keys:
        y = test.label(view)
        thresholds = {n: store.default_threshold(n, view) for n in names}
        if y is None:
            out[view] = unlabelled(scores, thresholds, entrants)
            continue
        board = evaluate_test(y, scores, thresholds, entrants)
        out[view] = with_category_rates(board, scores, thresholds, test.category, declaration.categories_in(test))
    if not declaration.view_keys:
        view = store.label_views[0] if store.label_views else "label"
        out[view] = unlabelled(scores, {n: store.default_threshold(n, view) for n in names}, entrants)
    return out
