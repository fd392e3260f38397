"""ECOD: per-feature tail probabilities from the empirical distribution of the training rows.

Li et al., "ECOD: Unsupervised Outlier Detection Using Empirical Cumulative Distribution
Functions" (TKDE 2022). A record is unusual when its values sit far in a tail of their feature's
training distribution; the tail probabilities of the features, assumed independent, multiply, so
their ``-log`` sum. Which tail counts follows each feature's skewness, as in the paper and PyOD.

The learned state is each feature's distinct training values with the number of training rows at
or below each one (``state.npz``): exactly the empirical CDF, ``searchsorted`` away from a score.
A record is counted among the rows it is compared to, ``(count + 1) / (n + 1)``, so a value beyond
every training value gets a finite tail probability; this is PyOD's ECOD scoring one record
appended to its training rows.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anodet.detectors.base import Detector, as_matrix, load_arrays, save_arrays
from anodet.detectors.parallel import map_rows

STATE_FILE = "state.npz"


def skew_signs(X: np.ndarray) -> np.ndarray:
    """Sign of each column's (biased) sample skewness, -1, 0 or 1, as PyOD takes it (0 where scipy gives NaN)."""
    from scipy.stats import skew

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant column: scipy warns and gives NaN
        return np.sign(np.nan_to_num(skew(np.asarray(X, dtype=np.float64), axis=0)))


class ECOD(Detector):
    """Sum over the features of ``-log`` of the record's tail probability, the tail chosen by the feature's skewness.

    Per feature: left ``= (#train <= x + 1) / (n + 1)``, right ``= (#train >= x + 1) / (n + 1)``;
    with ``U_l = -log left``, ``U_r = -log right`` and ``U_s`` the skewed side's (``U_l`` for negative
    skew, ``U_r`` for positive, ``U_l + U_r`` when there is none), the feature's score is
    ``max(U_l, U_r, U_s)``. Feature scores sum to the score.
    """

    name = "ecod"
    display_name = "ECOD"
    family = "classical"
    default_params: ClassVar[dict[str, Any]] = {"max_rows": 200_000}

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> ECOD:
        """Learn each feature's empirical distribution (``y`` is ignored: ECOD is unsupervised)."""
        X = as_matrix(X)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError("ECOD needs at least one training row")
        if len(X) > self.params["max_rows"]:
            keep = np.random.default_rng(self.seed).choice(len(X), self.params["max_rows"], replace=False)
            X = X[np.sort(keep)]
        values, counts, offsets = [], [], [0]
        for column in X.T:
            distinct, count = np.unique(column, return_counts=True)
            values.append(distinct)
            counts.append(np.cumsum(count))
            offsets.append(offsets[-1] + len(distinct))
        self._use({"values": np.concatenate(values).astype(np.float32),
                   "at_or_below": np.concatenate(counts).astype(np.int64),
                   "offsets": np.asarray(offsets, dtype=np.int64), "n_rows": np.asarray([len(X)], dtype=np.int64),
                   "skew_sign": skew_signs(X).astype(np.int8)})
        return self

    def _use(self, state: dict[str, np.ndarray]) -> None:
        """Adopt (and check) the learned arrays."""
        offsets, values, below = state["offsets"], state["values"], state["at_or_below"]
        n, signs = int(state["n_rows"][0]), state["skew_sign"]
        d = len(offsets) - 1
        ok = (d >= 1 and len(signs) == d and offsets[0] == 0 and offsets[-1] == len(values) == len(below)
              and bool(np.all(np.diff(offsets) >= 1)) and n >= 1 and bool(np.all(np.isin(signs, (-1, 0, 1)))))
        if ok:  # within each feature: values and counts strictly increase, and the last count is n
            inside = np.ones(max(len(values) - 1, 0), dtype=bool)
            inside[offsets[1:-1] - 1] = False
            ok = (bool(np.all(np.diff(values)[inside] > 0)) and bool(np.all(np.diff(below)[inside] > 0))
                  and bool(np.all(below[offsets[:-1]] >= 1)) and bool(np.all(below[offsets[1:] - 1] == n)))
        if not ok:
            raise ValueError("inconsistent ECOD arrays")
        self.state_ = state
        self.n_rows_ = n
        self.n_features_ = d

    def _tails(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(-log left tail, -log right tail) per row and feature, float64."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_:
            raise ValueError(f"ECOD was fitted on {self.n_features_} features, not {X.shape[-1]}")
        s = self.state_
        n = self.n_rows_
        left = np.empty(X.shape, dtype=np.float64)
        right = np.empty(X.shape, dtype=np.float64)
        for j in range(self.n_features_):
            lo, hi = int(s["offsets"][j]), int(s["offsets"][j + 1])
            values = s["values"][lo:hi]
            cumulative = np.r_[0, s["at_or_below"][lo:hi]]
            column = X[:, j].astype(np.float32, copy=False)
            at_or_below = cumulative[np.searchsorted(values, column, side="right")]
            below = cumulative[np.searchsorted(values, column, side="left")]
            left[:, j] = at_or_below + 1
            right[:, j] = n - below + 1
        return np.log(n + 1) - np.log(left), np.log(n + 1) - np.log(right)

    def _outlyingness(self, X: np.ndarray) -> np.ndarray:
        u_left, u_right = self._tails(X)
        sign = self.state_["skew_sign"].astype(np.float64)
        u_skew = u_left * -np.sign(sign - 1) + u_right * np.sign(sign + 1)
        return np.maximum(np.maximum(u_left, u_right), u_skew)

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        """Each feature's ``-log`` tail probability; they sum to the score."""
        return map_rows(self._outlyingness, as_matrix(X))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = as_matrix(X)
        if len(X) == 0:
            return np.empty(0, dtype=np.float64)
        return map_rows(lambda b: self._outlyingness(b).sum(axis=1), X)

    def _save_state(self, folder: Path) -> list[Path]:
        return [save_arrays(folder / STATE_FILE, **self.state_)]

    def _load_state(self, folder: Path) -> None:
        self._use(load_arrays(folder / STATE_FILE))
