"""Every detector kind has scikit-learn's shape:
clone, get/set_params, fit(X, y=None) returning self, decision_function."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from anodet.detectors import NEURAL, REGISTRY, create, detector_class, display_name
from anodet.evaluation.metrics import roc_auc

CLASSICAL = [k for k in REGISTRY if k not in (*NEURAL, "ensemble", "supervised")]


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, (600, 5)).astype(np.float32)
    outliers = rng.normal(0, 1, (40, 5)).astype(np.float32) * 6 + 4
    return normal, outliers


@pytest.mark.parametrize("kind", CLASSICAL)
def test_clone_gives_an_unfitted_copy_with_the_same_parameters(kind):
    detector = create(kind, seed=3)
    copy = clone(detector)
    assert type(copy) is type(detector) and copy is not detector
    assert copy.get_params() == detector.get_params() == {"seed": 3, **detector_class(kind).default_params}


@pytest.mark.parametrize("kind", CLASSICAL)
def test_fit_returns_the_detector_and_decision_function_ranks_outliers_higher(kind, rows):
    normal, outliers = rows
    detector = create(kind)
    assert detector.fit(normal, None) is detector
    scores = detector.decision_function(np.vstack([normal[:200], outliers]))
    assert scores.shape == (240,)
    assert roc_auc(np.r_[np.zeros(200), np.ones(40)], scores) > 0.9


def test_set_params_changes_the_parameters_and_refuses_unknown_ones():
    detector = create("pca").set_params(n_components=2, seed=7)
    assert detector.get_params() == {"seed": 7, "n_components": 2}
    with pytest.raises(TypeError, match=r"unknown parameter.*n_trees.*it takes seed, n_components"):
        detector.set_params(n_trees=3)


def test_score_is_a_deprecated_alias_of_decision_function(rows):
    normal, outliers = rows
    detector = create("zscore").fit(normal)
    with pytest.warns(FutureWarning, match="decision_function"):
        old = detector.score(outliers)
    np.testing.assert_array_equal(old, detector.decision_function(outliers))


def test_a_grid_search_chooses_a_parameter_by_a_scorer_on_labelled_rows(rows):
    normal, outliers = rows
    X = np.vstack([normal, outliers])
    y = np.r_[np.zeros(len(normal)), np.ones(len(outliers))]

    def auc(estimator, X, y):
        return roc_auc(y, estimator.decision_function(X))

    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(create("kmeans"), {"n_clusters": [1, 4]}, scoring=auc, cv=folds).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_score_ > 0.9 and search.best_params_["n_clusters"] in (1, 4)
    assert search.best_estimator_.get_params()["n_clusters"] == search.best_params_["n_clusters"]
    assert search.best_estimator_.decision_function(outliers).shape == (40,)


def test_the_supervised_ceiling_takes_y_through_the_same_signature(rows):
    normal, outliers = rows
    X = np.vstack([normal, outliers])
    y = np.r_[np.zeros(len(normal)), np.ones(len(outliers))]
    forest = create("supervised").fit(X, y)
    assert roc_auc(y, forest.decision_function(X)) > 0.99
    with pytest.raises(ValueError, match="needs labels"):
        create("supervised").fit(X)


@pytest.mark.parametrize("kind", list(REGISTRY))
def test_every_kind_has_one_display_name(kind):
    assert display_name(kind) == detector_class(kind).display_name
    assert display_name(kind)
