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
from anodet.detectors.classical import _ArrayModel
from anodet.detectors.from_arrays import TreeEnsemble, check, probe_rows
from anodet.detectors.parallel import map_rows


class SupervisedForest(_ArrayModel):
    """Random forest on labelled records (normal vs attack); score = attack probability.

    Stored: the trees' node arrays with each leaf's attack probability
    (:class:`~anodet.detectors.from_arrays.TreeEnsemble`); the score is their mean over the trees, summed
    in the trees' order as ``predict_proba`` does with one thread.
    """

    name = "supervised"
    display_name = "Supervised forest (uses labels)"
    family = "supervised"
    uses_labels = True
    default_params: ClassVar[dict[str, Any]] = {"n_estimators": 30, "max_depth": 16, "min_samples_leaf": 2}

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
        model = RandomForestClassifier(
            n_estimators=p["n_estimators"], max_depth=p["max_depth"], min_samples_leaf=p["min_samples_leaf"],
            random_state=self.seed, n_jobs=-1,
        ).fit(distinct, (attack_share >= 0.5).astype(np.int8))
        self._adopt(model, probe_rows(X.shape[1], distinct))
        return self

    def _arrays(self, model: Any) -> dict[str, np.ndarray]:
        classes = list(model.classes_)
        trees = [e.tree_ for e in model.estimators_]
        leaf_values = []
        for tree in trees:
            # predict_proba: the leaf's class weights divided by their sum (1 where the sum is 0)
            value = np.asarray(tree.value[:, 0, :], np.float64)
            normalizer = value.sum(axis=1)
            normalizer[normalizer == 0.0] = 1.0
            leaf_values.append(value[:, classes.index(1)] / normalizer if 1 in classes else np.zeros(len(value)))
        return TreeEnsemble.arrays_of(trees, leaf_values, [None] * len(trees), model.n_features_in_)

    def _use(self, state: dict[str, np.ndarray]) -> None:
        self._trees = TreeEnsemble(state)

    def _check(self, model: Any, probe: np.ndarray) -> None:
        classes = list(model.classes_)

        def reference(X: np.ndarray) -> np.ndarray:
            model.n_jobs = 1  # the trees added in their order, as here
            return model.predict_proba(X)[:, classes.index(1)] if 1 in classes else np.zeros(len(X))

        check(self._score, reference, probe, "supervised forest", atol=1e-12)

    def _score(self, X: np.ndarray) -> np.ndarray:
        # Each block sums the trees in their stored order (then divides by their number, as
        # predict_proba), so a row scores the same whichever block or thread it is in.
        self._trees.prepare()
        n_trees = self._trees.n_trees
        return map_rows(lambda b: self._trees.total(b) / n_trees, X)
