"""What the dashboard pages compute, as pure functions of arrays and frames (no Streamlit).

The pages only lay out widgets; every number they show comes from here or from
:mod:`anodet.evaluation.metrics`, so it can be tested without a browser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anodet.app.figures import downsample_curve
from anodet.detectors.base import Detector
from anodet.evaluation import metrics
from anodet.evaluation.metrics import ThresholdCurve
from anodet.features.sets import FeatureSet
from anodet.textsafe import neutralise_frame

OUTCOMES = ("true positive", "false positive", "missed attack", "true negative")
"""Outcome of a record at a threshold: flagged attack, flagged normal, passed attack, passed normal."""

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


def leaderboard(curves: Mapping[str, ThresholdCurve], summaries: Mapping[str, CurveSummary],
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


def flag_matrix(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float]) -> np.ndarray:
    """Boolean ``(records, detectors)`` matrix: which detector flags which record."""
    return np.column_stack([np.asarray(s) >= thresholds[n] for n, s in scores.items()])


def agreement(flags: np.ndarray) -> np.ndarray:
    """``(detectors, detectors)`` counts of records flagged by both; the diagonal is each one's total."""
    f = np.asarray(flags, dtype=np.int64)
    return f.T @ f


def outcomes(y: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Each record's outcome (one of :data:`OUTCOMES`) from its label and verdict."""
    y = np.asarray(y) == 1
    flagged = np.asarray(flagged, dtype=bool)
    return np.select([flagged & y, flagged & ~y, ~flagged & y], OUTCOMES[:3], default=OUTCOMES[3])


UNLABELLED_OUTCOMES = ("flagged", "not flagged")
"""A record's outcome on a dataset without labels: only the verdict is known."""


def record_table(test: pd.DataFrame, scores: np.ndarray, threshold: float, label_column: str | None,
                 positive: str = "attack") -> pd.DataFrame:
    """The test records with score, verdict and outcome, sorted by score (most anomalous first).

    The index stays the record's line number in the raw test file; ``position`` is its row in
    the test split (what the cached score arrays are indexed by). ``label_column`` None (a dataset
    without labels): the outcome is only flagged / not flagged and the label "unlabelled".
    ``positive`` is what a label-1 record is called ("attack" on KDD, "anomaly" on a user's data).
    """
    flagged = np.asarray(scores) >= threshold
    if label_column is None or label_column not in test:
        outcome, label = np.where(flagged, *UNLABELLED_OUTCOMES), np.full(len(test), "unlabelled")
    else:
        y = test[label_column].to_numpy()
        outcome, label = outcomes(y, flagged), np.where(y == 1, positive, "normal")
    table = pd.DataFrame({
        "position": np.arange(len(test)), "score": np.asarray(scores, dtype=float),
        "outcome": outcome, "label": label,
        "attack": test["attack"].to_numpy(), "category": test["category"].to_numpy(),
    }, index=test.index.rename("record"))
    rest = test.drop(columns=[c for c in ("attack", "category", "y") if c in test]).filter(regex="^(?!label_)")
    table = pd.concat([table, rest], axis=1)
    table.index.name = "record"
    return table.sort_values("score", ascending=False, kind="stable")


def filter_records(table: pd.DataFrame, outcomes_: Sequence[str] | None = None, attacks: Sequence[str] | None = None,
                   categories: Sequence[str] | None = None, score_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """Rows of a :func:`record_table` matching every given filter (an empty filter keeps all)."""
    keep = np.ones(len(table), dtype=bool)
    if outcomes_:
        keep &= table["outcome"].isin(list(outcomes_)).to_numpy()
    if attacks:
        keep &= table["attack"].isin(list(attacks)).to_numpy()
    if categories:
        keep &= table["category"].isin(list(categories)).to_numpy()
    if score_range is not None:
        lo, hi = score_range
        s = table["score"].to_numpy()
        keep &= (s >= lo) & (s <= hi)
    return table[keep]


def feature_percentiles(sorted_columns: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Percentile (0–100) of each feature value among normal training records.

    ``sorted_columns`` is the training matrix with every column sorted; ties count half, so a
    value equal to the whole column sits at 50.
    """
    sorted_columns = np.asarray(sorted_columns)
    n = sorted_columns.shape[0]
    out = np.empty(sorted_columns.shape[1])
    for j, v in enumerate(np.asarray(values, dtype=float)):
        below = np.searchsorted(sorted_columns[:, j], v, side="left")
        at_or_below = np.searchsorted(sorted_columns[:, j], v, side="right")
        out[j] = 100.0 * (below + at_or_below) / (2 * n)
    return out


def record_verdicts(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float], position: int,
                    display_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Every detector's score, threshold and verdict for one test record."""
    rows = []
    for name, s in scores.items():
        score = float(s[position])
        rows.append({"detector": (display_names or {}).get(name, name), "score": score,
                     "threshold": float(thresholds[name]),
                     "verdict": "flagged" if score >= thresholds[name] else "passed",
                     "score / threshold": score / thresholds[name] if thresholds[name] > 0 else np.nan})
    return pd.DataFrame(rows, index=pd.Index(list(scores), name="name"))


EXPLANATION_METHODS = {
    "own": "the detector's own per-feature breakdown of its score",
    "perturbation": ("perturbation: for each feature, how much the detector's own score drops when that "
                     "feature alone is set to its median among normal training records"),
}
"""How a record's score is split across features, by method (shown next to the chart)."""


def perturbation_contributions(score: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                               reference: np.ndarray) -> np.ndarray:
    """Per-feature explanation of one record's score for any detector, using only its ``score``.

    Feature ``j``'s contribution is ``score(x) - score(x with x_j := reference_j)``: how much of
    the score goes away when that one feature is made typical (``reference`` is the normal
    training median, in the detector's input space). Positive: the feature pushes the score up.
    All ``d + 1`` rows are scored in one batch.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    reference = np.asarray(reference, dtype=np.float64).ravel()
    batch = np.tile(x, (len(x) + 1, 1))
    idx = np.arange(len(x))
    batch[idx + 1, idx] = reference
    scores = np.asarray(score(batch), dtype=np.float64)
    return scores[0] - scores[1:]


def explain_raw(detector: Detector, feature_set: FeatureSet, record: pd.DataFrame,
                reference: pd.DataFrame) -> tuple[list[str], np.ndarray, str]:
    """(raw column names, contributions per raw column, method key) for one record (a one-row DataFrame).

    Contributions are computed per model input, then each one-hot part is summed back to the raw
    column it encodes, so a ``kdd41`` detector is explained over the 41 named columns.
    """
    x = feature_set.transform_frame(record)[0]
    ref = feature_set.transform_frame(reference)[0]
    per_input, method = explain_record(detector, x, ref)
    columns, grouped = feature_set.grouped(per_input)
    return columns, grouped[0], method


def reference_record(train: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """A typical normal record: the median of each numeric training column, the most common category of each other."""
    return pd.DataFrame({c: [train[c].median() if pd.api.types.is_numeric_dtype(train[c]) else train[c].mode().iloc[0]]
                         for c in columns})


def explain_record(detector: Detector, x_scaled: np.ndarray, reference_scaled: np.ndarray) -> tuple[np.ndarray, str]:
    """(per-feature contributions, method key of :data:`EXPLANATION_METHODS`) for one scaled record.

    A detector with its own breakdown (``feature_scores`` not None) uses it; any other one is
    explained by :func:`perturbation_contributions` of its own score, never by another detector.
    """
    own = detector.feature_scores(np.asarray(x_scaled, dtype=np.float64)[None, :])
    if own is not None:
        return np.asarray(own, dtype=np.float64)[0], "own"
    return perturbation_contributions(detector.decision_function, x_scaled, reference_scaled), "perturbation"


def agreement_shares(common: np.ndarray) -> np.ndarray:
    """Row-normalised :func:`agreement`: share of the row detector's flags the column detector also flags.

    The diagonal is 1 (or NaN for a detector flagging nothing); unlike raw counts, one detector
    flagging many records does not flatten the colour scale for all the others.
    """
    common = np.asarray(common, dtype=np.float64)
    totals = np.diag(common)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, common / np.where(totals > 0, totals, 1.0), np.nan)


def disagreements(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float], a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions (score arrays' rows) flagged by ``a`` but passed by ``b``, and the reverse."""
    flag_a = np.asarray(scores[a]) >= thresholds[a]
    flag_b = np.asarray(scores[b]) >= thresholds[b]
    return np.flatnonzero(flag_a & ~flag_b), np.flatnonzero(flag_b & ~flag_a)


def metric_deltas(board: pd.DataFrame, a: str, b: str, metrics: Sequence[str] = LEADERBOARD_METRICS) -> pd.DataFrame:
    """Two leaderboard rows and their difference ``b - a``: one column per metric, three rows."""
    label_a, label_b = board.loc[a, "detector"], board.loc[b, "detector"]
    rows = {label_a: [float(board.loc[a, m]) for m in metrics], label_b: [float(board.loc[b, m]) for m in metrics]}
    rows[f"{label_b} − {label_a}"] = [y - x for x, y in zip(rows[label_a], rows[label_b], strict=True)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(metrics)).rename_axis("detector").reset_index()


def customdata_pair(customdata: object) -> tuple[float, float]:
    """The first two values of a clicked point's ``customdata`` (a histogram bar's ``[low, high)``,
    a heat-map cell's ``[row, column]``).

    Streamlit 1.67 sends a point's list customdata as ``{"0": low, "1": high, ...}``; other
    versions send ``[low, high, ...]``. Anything else is a ValueError.
    """
    if isinstance(customdata, Mapping):
        values = [customdata.get("0", customdata.get(0)), customdata.get("1", customdata.get(1))]
    elif isinstance(customdata, Sequence | np.ndarray) and not isinstance(customdata, str):
        values = list(customdata[:2])
    else:
        values = []
    if len(values) != 2 or any(v is None or isinstance(v, str) for v in values):
        raise ValueError(f"not a clicked point's two values: {customdata!r}")
    return float(values[0]), float(values[1])


RESPONSIVE_CSS = """
/* Side-by-side panels become one column below 900 px; rows of metric tiles wrap instead of
   shrinking their numbers to "0.…". */
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"]) { flex-wrap: wrap; }
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has([data-testid="stMetric"]) { min-width: 8.5rem; }
[data-testid="stMetricValue"] > div { text-overflow: clip; }
@media (max-width: 900px) {
  [data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
  [data-testid="stHorizontalBlock"] > [data-testid="stColumn"] { flex: 1 1 100% !important; width: 100% !important; }
  [data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has(> div > div > [data-testid="stMetric"]) {
    flex: 1 1 8.5rem !important; width: auto !important; }
  [data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has(> div > div > [data-testid="stButton"]) {
    flex: 0 1 auto !important; width: auto !important; }
}
"""
"""Page CSS so every page reads at 1280 px and degrades to one column below ~900 px."""


CONNECTION_FIELDS = {"protocol_type": "protocol", "service": "service", "flag": "flag", "duration": "duration (s)",
                     "src_bytes": "bytes sent", "dst_bytes": "bytes received"}
"""Raw fields of a connection an analyst reads first, with their labels."""


def table_height(rows: int, row_height: int = 35) -> int:
    """Pixel height of a ``st.dataframe`` showing exactly ``rows`` rows and its header, no empty row."""
    return row_height * (rows + 1) + 3


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas (the one rule, :mod:`anodet.textsafe`)."""
    return neutralise_frame(frame)


def records_csv(table: pd.DataFrame) -> bytes:
    """Flagged records as UTF-8 CSV, formula-neutralised, ready to download."""
    return neutralise_formulas(table).to_csv().encode("utf-8")
