"""Which detectors agree: flags at each one's threshold, pairwise counts and shares, disagreements."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def flag_matrix(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float]) -> np.ndarray:
    """Boolean ``(records, detectors)`` matrix: which detector flags which record."""
    return np.column_stack([np.asarray(s) >= thresholds[n] for n, s in scores.items()])


def agreement(flags: np.ndarray) -> np.ndarray:
    """``(detectors, detectors)`` counts of records flagged by both; the diagonal is each one's total."""
    f = np.asarray(flags, dtype=np.int64)
    return f.T @ f


def agreement_shares(common: np.ndarray) -> np.ndarray:
    """Row-normalised :func:`agreement`: share of the row detector's flags the column detector also flags.

    The diagonal is 1 (or NaN for a detector flagging nothing); unlike raw counts, one detector
    flagging many records does not flatten the colour scale for all the others.
    """
    common = np.asarray(common, dtype=np.float64)
    totals = np.diag(common)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, common / np.where(totals > 0, totals, 1.0), np.nan)


def disagreements(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float],
                  a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions (score arrays' rows) flagged by ``a`` but passed by ``b``, and the reverse."""
    flag_a = np.asarray(scores[a]) >= thresholds[a]
    flag_b = np.asarray(scores[b]) >= thresholds[b]
    return np.flatnonzero(flag_a & ~flag_b), np.flatnonzero(flag_b & ~flag_a)
