"""The supervised ceiling: a classifier trained on labelled intrusions, shown as a reference, never as a detector.

The anomaly detectors learn only what normal traffic looks like. A random forest trained on the
labelled 10% training file (normal vs attack) shows how far labels get on the same features:
the ceiling the unsupervised detectors are measured against. It uses labels, so it is marked
``supervised`` everywhere and never counted as the best detector. Score: the forest's attack
probability (higher = more likely an attack), like every anodet score.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from anodet.detectors.base import as_matrix
from anodet.detectors.classical import _SkopsDetector
from anodet.detectors.parallel import map_rows


class SupervisedForest(_SkopsDetector):
    """Random forest on labelled records (normal vs attack); score = attack probability."""

    name = "supervised"
    display_name = "Supervised forest (uses labels)"
    family = "supervised"
    uses_labels = True
    default_params: ClassVar[dict[str, Any]] = {"n_estimators": 30, "max_depth": 16, "min_samples_leaf": 2}
    trusted_types = (
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    )

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> SupervisedForest:
        """Fit on labelled rows ``X`` with ``y`` (1 = attack); duplicates are dropped (with their majority label)."""
        from sklearn.ensemble import RandomForestClassifier

        if y is None:
            raise ValueError("the supervised ceiling needs labels (y) to fit")
        X = as_matrix(X)
        y = np.asarray(y, dtype=np.int8)
        if len(np.unique(y)) < 2:
            raise ValueError("the supervised ceiling needs both normal and attack records to fit")
        distinct, inverse = np.unique(X, axis=0, return_inverse=True)
        attack_share = np.bincount(inverse.ravel(), weights=y) / np.bincount(inverse.ravel())
        p = self.params
        self.model_ = RandomForestClassifier(
            n_estimators=p["n_estimators"], max_depth=p["max_depth"], min_samples_leaf=p["min_samples_leaf"],
            random_state=self.seed, n_jobs=-1,
        ).fit(distinct, (attack_share >= 0.5).astype(np.int8))
        return self

    def _score(self, X: np.ndarray) -> np.ndarray:
        # One thread per block and the trees summed in their stored order: with several threads
        # scikit-learn adds the trees' votes in whichever order they finish, so the same row could
        # score a last bit differently from run to run (and engine to engine).
        self.model_.n_jobs = 1
        classes = list(self.model_.classes_)
        if 1 not in classes:
            return np.zeros(len(X))
        column = classes.index(1)
        return map_rows(lambda b: self.model_.predict_proba(b)[:, column].astype(np.float64), X, block=65_536)
