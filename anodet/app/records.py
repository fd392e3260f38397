"""Tables of test records for the Flagged records page: score, verdict and outcome, filters, percentiles, verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from anodet.datasets.model import Part
from anodet.textsafe import neutralise_frame

OUTCOMES = ("true positive", "false positive", "missed attack", "true negative")
"""Outcome of a record at a threshold on KDD: flagged attack, flagged normal, passed attack, passed normal."""
UNLABELLED_OUTCOMES = ("flagged", "not flagged")
"""A record's outcome on a dataset without labels: only the verdict is known."""
OWN_COLUMNS = ("position", "score", "outcome", "label", "attack", "category")
"""The columns anodet adds to a record table; an input column of the same name is shown as "NAME (input)"."""


def outcome_names(positive: str = "attack") -> tuple[str, str, str, str]:
    """The four outcomes in a dataset's own words (a missed attack, a missed anomaly, a missed malignant …)."""
    return ("true positive", "false positive", f"missed {positive}", "true negative")


def outcomes(y: np.ndarray, flagged: np.ndarray, positive: str = "attack") -> np.ndarray:
    """Each record's outcome (one of :func:`outcome_names`) from its label and verdict."""
    names = outcome_names(positive)
    y = np.asarray(y) == 1
    flagged = np.asarray(flagged, dtype=bool)
    return np.select([flagged & y, flagged & ~y, ~flagged & y], names[:3], default=names[3])


def record_table(test: Part, scores: np.ndarray, threshold: float, view: str | None,
                 positive: str = "attack", negative: str = "normal") -> pd.DataFrame:
    """The test records with score, verdict and outcome, sorted by score (most anomalous first).

    The index is the record's id (the declared id column, KDD's line number in its raw file);
    ``position`` is its row in the test part (what the cached score arrays are indexed by).
    ``view`` None (a dataset without labels): the outcome is only flagged / not flagged. The input
    columns follow, renamed "NAME (input)" where a name is one of anodet's own (:data:`OWN_COLUMNS`).
    """
    flagged = np.asarray(scores) >= threshold
    y = test.label(view) if view is not None else None
    if y is None:
        outcome, label = np.where(flagged, *UNLABELLED_OUTCOMES), np.full(len(test), "unlabelled")
    else:
        outcome, label = outcomes(y, flagged, positive), np.where(y == 1, positive, negative)
    table = pd.DataFrame({
        "position": np.arange(len(test)), "score": np.asarray(scores, dtype=float),
        "outcome": outcome, "label": label, "attack": test.label_text, "category": test.category,
    }, index=pd.Index(test.record_id, name="record"))
    rest = test.rows.rename(columns={c: f"{c} (input)" for c in test.rows.columns if c in OWN_COLUMNS})
    rest.index = table.index
    table = pd.concat([table, rest], axis=1)
    return table.sort_values("score", ascending=False, kind="stable")


def filter_records(table: pd.DataFrame, outcomes_: Sequence[str] | None = None, attacks: Sequence[str] | None = None,
                   categories: Sequence[str] | None = None,
                   score_range: tuple[float, float] | None = None) -> pd.DataFrame:
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


CONNECTION_FIELDS = {"protocol_type": "protocol", "service": "service", "flag": "flag", "duration": "duration (s)",
                     "src_bytes": "bytes sent", "dst_bytes": "bytes received"}


"""Raw fields of a connection an analyst reads first, with their labels."""


def records_csv(table: pd.DataFrame) -> bytes:
    """Flagged records as UTF-8 CSV, formula-neutralised, ready to download."""
    return neutralise_frame(table).to_csv().encode("utf-8")
