"""Why a record scored as it did: each detector's own per-feature breakdown, or perturbation of its own score."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from anodet.detectors.base import Detector
from anodet.features.sets import FeatureSet

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
