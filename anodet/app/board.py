"""The Overview's leaderboard at the operating point: its table, its headline and what a detector misses.

Pure functions of what the loaders keep (curves, scores, the threshold-free intervals) and the session's
choices (thresholds, operating point); the page lays them out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from anodet.datasets.model import Declaration, Part
from anodet.evaluation import comparison, intervals, operating
from anodet.evaluation.leaderboard import CurveSummary, Entrant, leaderboard
from anodet.evaluation.metrics import ThresholdCurve
from anodet.evaluation.operating import OperatingPoint, percent, percent_range
from anodet.textsafe import markdown_text


def table(curves: Mapping[str, ThresholdCurve], summaries: Mapping[str, CurveSummary],
          thresholds: Mapping[str, float], entrants: Mapping[str, Entrant], point: OperatingPoint,
          y: np.ndarray, scores: Mapping[str, np.ndarray], free: pd.DataFrame) -> pd.DataFrame:
    """Every detector at its threshold in force (the operating point's, or moved by hand), with the operating
    point's columns, intervals and ties, ranked best first at the point (the supervised ceiling last)."""
    board = leaderboard(curves, summaries, thresholds, entrants)
    at = operating.at_point(point, thresholds, curves)
    extra = comparison.at_thresholds(y, scores, board, at)
    joined = board.join(at).join(free.loc[board.index]).join(extra)
    return operating.rank(joined, point)


def _ci(row: pd.Series, metric: str, digits: int = 3, as_percent: bool = False) -> str:
    low, high = row.get(f"{metric}_ci_low", math.nan), row.get(f"{metric}_ci_high", math.nan)
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return "–"
    if as_percent:
        return percent_range(low, high)
    return f"{low:.{digits}f}–{high:.{digits}f}"


def display(board: pd.DataFrame, point: OperatingPoint) -> pd.DataFrame:
    """The leaderboard as the page shows it: numbers to sort by, the counts they rest on and their intervals."""
    rows = []
    tie_column = "op_tied" if point.kind in ("fpr", "budget") else "roc_auc_tied"
    first = next((n for n in board.index if not bool(board.loc[n, "uses_labels"])), None)
    for name, row in board.iterrows():
        attacks, normals = row["tp"] + row["fn"], row["fp"] + row["tn"]
        marker = ("best" if name == first else "≈ best" if bool(row.get(tie_column, False)) and not row["uses_labels"]
                  else "")
        rows.append({
            "name": name, "detector": row["detector"], "feature_set": row["feature_set"], "tied": marker,
            "recall": row["recall"], "caught": comparison.counts_text(row["tp"], attacks),
            "recall_ci": _ci(row, "recall", as_percent=True),
            "fpr": row["fpr"], "false_alarms": comparison.counts_text(row["fp"], normals),
            "fpr_ci": _ci(row, "fpr", as_percent=True), "alerts_per_day": row["alerts_per_day"],
            "pauc": row["pauc"], "pauc_ci": _ci(row, "pauc"),
            "roc_auc": row["roc_auc"], "roc_auc_ci": _ci(row, "roc_auc", 4),
            "pr_auc": row["pr_auc"], "pr_auc_ci": _ci(row, "pr_auc"), "precision": row["precision"],
            "f1": row["f1"], "f2": row["f2"], "accuracy": row["accuracy"], "flagged": int(row["flagged"]),
            "threshold": row["threshold"], "uses_labels": bool(row["uses_labels"]),
        })
    return pd.DataFrame(rows).set_index("name")


def column_order(point: OperatingPoint) -> list[str]:
    """The columns shown first for this kind of point (the rest stay in the table for sorting)."""
    head = ["detector", "tied"]
    at_point = ["recall", "caught", "recall_ci", "fpr", "false_alarms", "fpr_ci"]
    if point.kind == "budget":
        at_point.append("alerts_per_day")
    if point.kind in ("fpr", "budget"):
        at_point += ["pauc", "pauc_ci"]
    free = ["roc_auc", "roc_auc_ci", "pr_auc", "pr_auc_ci"]
    tail = ["precision", "f1", "threshold", "feature_set", "uses_labels"]
    if point.kind == "preset":
        return [*head, *free, *at_point, *tail]
    return [*head, *at_point, *free, *tail]


def headline(board: pd.DataFrame, point: OperatingPoint, words: Any, view: str) -> str:
    """One paragraph naming the best detector at the operating point, with its counts and interval, and who ties."""
    detectors = board[~board["uses_labels"].astype(bool)]
    if detectors.empty:
        return ""
    best_name = detectors.index[0]
    best = detectors.iloc[0]
    who = f"**{markdown_text(best['detector'])}**"
    attacks, normals = int(best["tp"] + best["fn"]), int(best["fp"] + best["tn"])
    tie_column = "op_tied" if point.kind in ("fpr", "budget") else "roc_auc_tied"
    tied = [markdown_text(r["detector"]) for n, r in detectors.iterrows()
            if n != best_name and bool(r.get(tie_column, False))]
    ties = (f" Not significantly behind it: {', '.join(tied)}." if tied else
            " No other detector ties with it (paired tests on the same records, Holm-corrected, 5 %).")
    by_auc = detectors.sort_values("roc_auc", ascending=False).iloc[0]
    auc = (f"By ROC AUC over all thresholds the best is **{markdown_text(by_auc['detector'])}**, "
           f"{by_auc['roc_auc']:.4f} [{by_auc['roc_auc_ci_low']:.4f}, {by_auc['roc_auc_ci_high']:.4f}].")
    if point.kind == "preset":
        return (f"Best detector here by ROC AUC: {who}, {best['roc_auc']:.4f} [{best['roc_auc_ci_low']:.4f}, "
                f"{best['roc_auc_ci_high']:.4f}] ({view} view; 95 % interval, DeLong).{ties} At its "
                f"threshold it catches **{int(best['tp']):,} of {words.count(attacks)}** with "
                f"**{int(best['fp']):,} of {normals:,}** false alarms. Choose an operating point in the sidebar "
                "(a false-positive rate or an alert budget) to rank the detectors where you work.")
    if point.kind == "cost":
        return (f"At {markdown_text(point.describe())}, {who} has the least expected cost on the test split: it "
                f"catches **{int(best['tp']):,} of {words.count(attacks)}** and raises **{int(best['fp']):,}** "
                f"false alarms among {normals:,} normal records ({view} view). {auc}")
    alerts = (f", about **{best['alerts_per_day']:,.0f} alerts a day**" if point.kind == "budget" else "")
    return (f"At {markdown_text(point.describe())}, {who} catches the most: **{int(best['tp']):,} of "
            f"{words.count(attacks)}** ({percent(best['recall'])}, 95 % CI "
            f"{_ci(best, 'recall', as_percent=True)}) with **{int(best['fp']):,} of {normals:,}** false alarms"
            f"{alerts} ({view} view; each threshold chosen on the validation split).{ties} {auc}")


def view_note(board: pd.DataFrame, part: Part, scores: Mapping[str, np.ndarray], view: str,
              declaration: Declaration) -> str:
    """Why the label views rank differently (KDD): how many of the best detector's flags the views disagree on."""
    if len(declaration.view_keys) < 2 or board.empty:
        return ""
    detectors = board[~board["uses_labels"].astype(bool)]
    if detectors.empty:
        return ""
    name = detectors.index[0]
    flagged = np.asarray(scores[name]) >= detectors.loc[name, "threshold"]
    here = np.asarray(part.labels[view]) == 1
    notes = []
    for other, y in part.labels.items():
        there = np.asarray(y) == 1
        if other == view:
            continue
        false_here = int((flagged & ~here & there).sum())  # attacks in the other view, normal in this one
        caught_here = int((flagged & here & ~there).sum())
        if false_here:
            notes.append(f"{false_here:,} of the records {markdown_text(detectors.loc[name, 'detector'])} flags are "
                         f"{declaration.words.positives} in the **{other}** view (novel types) that the **{view}** "
                         "view counts as normal, so here they are false alarms, and thresholds chosen on validation "
                         "rise to avoid them")
        if caught_here:
            notes.append(f"{caught_here:,} of its catches are records the **{other}** view counts as normal")
    if not notes:
        return ""
    return "Why the label views rank differently: " + "; ".join(notes) + ". Switch the view in the sidebar to compare."


def misses(part: Part, score: np.ndarray, threshold: float, view: str, order: Sequence[str]) -> pd.DataFrame:
    """Per anomaly category at a threshold: records, caught, missed, detection rate and its Wilson interval."""
    y = part.label(view)
    flagged = np.asarray(score) >= threshold
    rows = []
    categories = np.asarray(part.category).astype(str)
    positive = (np.asarray(y) == 1) if y is not None else np.zeros(len(part), bool)
    for category in order:
        mask = (categories == category) & positive
        n, k = int(mask.sum()), int((mask & flagged).sum())
        if n == 0:
            continue
        low, high = intervals.wilson(k, n)
        rows.append({"category": category, "records": n, "caught": k, "missed": n - k, "rate": k / n,
                     "interval": percent_range(float(low), float(high))})
    return pd.DataFrame(rows)


def missed_names(part: Part, score: np.ndarray, threshold: float, view: str, top: int = 8) -> pd.DataFrame:
    """The most common attack names (label values) among the missed records, with counts."""
    y = part.label(view)
    if y is None:
        return pd.DataFrame(columns=["name", "missed", "of"])
    positive = np.asarray(y) == 1
    missed = positive & (np.asarray(score) < threshold)
    names = pd.Series(np.asarray(part.label_text).astype(str))
    of = names[positive].value_counts()
    counts = names[missed].value_counts().head(top)
    return pd.DataFrame({"name": counts.index, "missed": counts.to_numpy(), "of": of.loc[counts.index].to_numpy()})


def pair_table(y: np.ndarray, scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float], a: str, b: str,
               labels: Mapping[str, str]) -> pd.DataFrame:
    """Two detectors on the same test records: ROC AUC (paired DeLong), PR AUC (paired bootstrap), and recall and
    FPR at their thresholds (exact McNemar on the same records; a normal interval of the paired difference)."""
    y = np.asarray(y) == 1
    rows = []
    for metric, (diff, low, high, p) in comparison.paired_rows(y.astype(np.int8), scores, a, b).items():
        values = {"roc_auc": _auc, "pr_auc": _ap}[metric]
        rows.append((metric, values(y, scores[a]), values(y, scores[b]), diff, low, high, p))
    for metric, records in (("recall", y), ("fpr", ~y)):
        fa = np.asarray(scores[a])[records] >= thresholds[a]
        fb = np.asarray(scores[b])[records] >= thresholds[b]
        rows.append((metric, fa.mean(), fb.mean(), *comparison.paired_rate_difference(fa, fb),
                     comparison.mcnemar(fa, fb)))
    names = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "recall": "Recall at the threshold",
             "fpr": "FPR at the threshold"}
    return pd.DataFrame([{"metric": names[m], labels[a]: va, labels[b]: vb, "difference": d,
                          "95 % CI": f"{lo:+.4f} … {hi:+.4f}", "p": p}
                         for m, va, vb, d, lo, hi, p in rows])


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from anodet.evaluation.metrics import roc_auc

    return roc_auc(y.astype(np.int8), s)


def _ap(y: np.ndarray, s: np.ndarray) -> float:
    from anodet.evaluation.metrics import pr_auc

    return pr_auc(y.astype(np.int8), s)
