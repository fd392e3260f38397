"""An ensemble: the mean of its members' scores after putting each on a common scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anodet.detectors.base import Detector, as_matrix, load_arrays, save_arrays

STATE_FILE = "state.npz"
CALIBRATION_ROWS = 20_000


class Ensemble(Detector):
    """Mean of member scores, each normalised by its own normal-score distribution.

    A member's score ``s`` becomes ``(s - median) / (q99 - median)``, with the median and 99th
    percentile of its scores on the normal training records: 0 is typical, 1 is as unusual as
    the top 1% of normals. Members are other fitted detectors, attached with :meth:`attach`
    (the store does this on load) before ``fit`` or ``score``.
    """

    name = "ensemble"
    display_name = "Ensemble"
    family = "ensemble"
    default_params: ClassVar[dict[str, Any]] = {
        # One strong member per family, chosen on validation ROC AUC under both label views.
        "members": ["autoencoder", "bigan", "pca", "ocsvm", "mahalanobis"],
    }

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed, **params)
        if self.name in self.params["members"]:
            raise ValueError("an ensemble cannot contain itself")

    @property
    def members(self) -> list[str]:
        return list(self.params["members"])

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
        scores = self._member_scores(X)
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
        return ((stacked - self.center_) / self.spread_).mean(axis=1)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.score_from_members(dict(zip(self.members_, self._member_scores(X).T, strict=True)))

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, center=self.center_, spread=self.spread_)]

    def _load_state(self, folder: Path) -> None:
        state = load_arrays(folder / STATE_FILE)
        self.center_, self.spread_ = state["center"], state["spread"]
