"""An ensemble: its members' scores put on a common scale, then combined (a weighted mean, or a weighted maximum)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anodet.detectors.base import Detector, as_matrix, load_arrays, save_arrays

STATE_FILE = "state.npz"
CALIBRATION_ROWS = 20_000
COMBINE = ("mean", "max")


class Ensemble(Detector):
    """Weighted mean (or maximum) of member scores, each normalised by its own normal-score distribution.

    A member's score ``s`` becomes ``(s - median) / (q99 - median)``, with the median and 99th
    percentile of its scores on the normal training records: 0 is typical, 1 is as unusual as
    the top 1% of normals. ``combine="mean"`` averages the normalised scores with ``weights`` (equal
    when None): evidence adds up. ``combine="max"`` takes the largest weighted one: a record is as
    unusual as its most alarmed member says, so a member that alone separates some attacks keeps
    them at a strict operating point. Members are other fitted detectors, attached with
    :meth:`attach` (the store does this on load) before ``fit`` or ``score``.
    """

    name = "ensemble"
    display_name = "Ensemble"
    family = "ensemble"
    default_params: ClassVar[dict[str, Any]] = {
        # One strong member per family, chosen on validation ROC AUC under both label views.
        "members": ["autoencoder", "bigan", "pca", "ocsvm", "mahalanobis"],
        "weights": None,
        "combine": "mean",
    }

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed, **params)
        members, weights = self.params["members"], self.params["weights"]
        if self.name in members:
            raise ValueError("an ensemble cannot contain itself")
        if self.params["combine"] not in COMBINE:
            raise ValueError(f"ensemble: combine must be one of {', '.join(COMBINE)}, not {self.params['combine']!r}")
        if weights is not None and (
                not isinstance(weights, (list, tuple)) or len(weights) != len(members)
                or not all(isinstance(w, (int, float)) and math.isfinite(w) and w > 0 for w in weights)):
            raise ValueError(f"ensemble: weights must be {len(members)} positive numbers, one per member "
                             f"({', '.join(members)}), or left out for equal weights")

    @property
    def members(self) -> list[str]:
        return list(self.params["members"])

    @property
    def weights(self) -> np.ndarray:
        """Each member's weight (equal weights of 1 when none are given)."""
        weights = self.params["weights"]
        return np.ones(len(self.params["members"])) if weights is None else np.asarray(weights, dtype=np.float64)

    def attach(self, members: dict[str, Detector]) -> Ensemble:
        missing = [m for m in self.params["members"] if m not in members]
        if missing:
            raise ValueError(f"ensemble needs member detector(s) {', '.join(missing)}")
        self.members_ = {m: members[m] for m in self.params["members"]}
        return self

    def _member_scores(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "members_"):
            raise RuntimeError("attach the member detectors before using the ensemble")
        X = as_matrix(X)
        return np.column_stack([m.decision_function(X) for m in self.members_.values()]) if len(X) else (
            np.empty((0, len(self.members_))))

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Ensemble:
        X = as_matrix(X)
        if len(X) > CALIBRATION_ROWS:
            X = X[np.random.default_rng(self.seed).choice(len(X), CALIBRATION_ROWS, replace=False)]
        return self.calibrate(self._member_scores(X))

    def calibrate(self, scores: np.ndarray) -> Ensemble:
        """Learn each member's scale from its raw scores on normal training records, shape ``(n, members)``
        (what :meth:`fit` does after scoring them; a search over members and weights calls it with scores it
        already has)."""
        self.center_ = np.median(scores, axis=0)
        self.spread_ = np.maximum(np.quantile(scores, 0.99, axis=0) - self.center_, 1e-12)
        return self

    def member_scores(self, X: np.ndarray) -> np.ndarray:
        """Each member's normalised score, shape ``(n, members)``."""
        return (self._member_scores(X) - self.center_) / self.spread_

    def score_from_members(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """The ensemble score from its members' raw scores already computed (no rescoring).

        Callers that score the members anyway (the dashboard, the CSV scorer) use this
        rather than paying for every member twice.
        """
        stacked = np.column_stack([scores[m] for m in self.params["members"]])
        weighted = (stacked - self.center_) / self.spread_ * self.weights
        if self.params["combine"] == "max":
            return weighted.max(axis=1)
        return weighted.sum(axis=1) / self.weights.sum()

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.score_from_members(dict(zip(self.members_, self._member_scores(X).T, strict=True)))

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, center=self.center_, spread=self.spread_)]

    def _load_state(self, folder: Path) -> None:
        state = load_arrays(folder / STATE_FILE)
        self.center_, self.spread_ = state["center"], state["spread"]
