"""Choosing detectors for a strict operating point: the partial-AUC criterion, the operating-point choices file that
training reads, and the ensemble's weights and combination."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from anodet.cli import main
from anodet.detectors import create
from anodet.store.core import Store
from anodet.training import hyperparams, selection
from anodet.training.selection import Criterion


def _two_candidates(monkeypatch) -> tuple[dict, dict]:
    """A z-score search over ``min_std`` 0.001 and 1.0 on two features, where the two criteria disagree.

    The second feature varies little in training (sd 0.05). With ``min_std`` 0.001 it is read at its own scale: most
    attacks (0.15 on it, 3 sd) rank above most normals (a good ROC AUC), but 1 % of validation normals carry 0.5 there
    (10 sd) and outrank every attack, so nothing is caught at a strict FPR. With ``min_std`` 1.0 that feature is
    muted: most attacks look normal (a poor ROC AUC), but the few far out on the first feature (6 sd) rank above
    every normal record, so they are caught at FPR 0.
    """
    rng = np.random.default_rng(0)
    train = np.column_stack([rng.normal(0, 1, 4000), rng.normal(0, 0.05, 4000)])
    normals = np.column_stack([rng.normal(0, 1, 2000), rng.normal(0, 0.05, 2000)])
    normals[:20, 1] = 0.5
    many = np.column_stack([rng.normal(0, 1, 900), np.full(900, 0.15)])
    few = np.column_stack([np.full(100, 6.0), np.zeros(100)])
    validation = np.vstack([normals, many, few]).astype(np.float32)
    y = np.r_[np.zeros(2000), np.ones(1000)].astype(np.int8)
    monkeypatch.setitem(selection.GRIDS, "zscore", {"min_std": [0.001, 1.0]})
    data = {"synthetic": SimpleNamespace(train=train.astype(np.float32), validation=validation, labelled=None)}
    return data, {"reference": y, "true": y}


def test_the_pauc_search_picks_the_better_top_of_the_ranking_not_the_better_roc_auc(monkeypatch):
    data, labels = _two_candidates(monkeypatch)

    def chosen(criterion: Criterion) -> selection.Candidate:
        found = selection.search(data, labels, ["zscore"], criterion, log=lambda m: None)
        return found.best("synthetic", "zscore")

    by_roc = chosen(Criterion("roc_auc"))
    by_pauc = chosen(Criterion("pauc", max_fpr=0.005, views=("true",)))
    assert by_roc.params == {"min_std": 0.001}
    assert by_pauc.params == {"min_std": 1.0}
    assert by_pauc.pauc["true"] > 0.54 > by_roc.pauc["true"]  # the few far-out attacks, caught at FPR 0
    assert by_roc.roc_auc["true"] > 0.95 > 0.6 > by_pauc.roc_auc["true"]
    # a ROC AUC tolerance keeps the full ranking: the muted candidate falls far outside it
    guarded = chosen(Criterion("pauc", max_fpr=0.005, views=("true",), roc_tolerance=0.05))
    assert guarded.params == {"min_std": 0.001}


def test_a_kept_detector_keeps_its_parameters_and_is_left_out_of_the_choices(monkeypatch, tmp_path):
    from scripts.search_hyperparams import write_choices

    data, labels = _two_candidates(monkeypatch)
    found = selection.search(data, labels, ["zscore"], Criterion("pauc", 0.005, ("true",)), log=lambda m: None,
                             fixed={"synthetic": {"zscore": {"min_std": 0.001}}})
    assert found.best("synthetic", "zscore").params == {"min_std": 0.001}  # not the better pAUC: it is kept
    out = tmp_path / "choices.json"
    out.write_text(json.dumps({"chosen": {"synthetic": {"zscore": {"min_std": 0.3}}}}))
    doc = write_choices(out, found, 0, None)
    assert "zscore" not in doc["chosen"].get("synthetic", {}) and doc["kept"] == ["zscore@synthetic"]
    assert json.loads(out.read_text()) == doc


def test_the_ensemble_search_keeps_weights_and_combination_the_ensemble_scores_with(monkeypatch):
    data, labels = _two_candidates(monkeypatch)
    monkeypatch.setitem(selection.GRIDS, "pca", {"n_components": [1]})
    found = selection.search(data, labels, ["zscore", "pca", "ensemble"], Criterion("pauc", 0.005, ("true",)),
                             log=lambda m: None)
    best = found.best("synthetic", "ensemble")
    assert set(best.params) == {"members", "weights", "combine"}
    # fitted as training fits it, the chosen ensemble scores the validation split exactly as it was judged
    got = data["synthetic"]
    members = {k: create(k, **found.best("synthetic", k).params).fit(got.train) for k in best.params["members"]}
    ensemble = create("ensemble", **best.params).attach(members).fit(got.train)
    assert np.allclose(ensemble.decision_function(got.validation), best.validation)


def test_ensemble_weights_and_maximum_combine_normalised_member_scores():
    ensemble = create("ensemble", members=["a", "b"], weights=[2.0, 1.0], combine="max")
    ensemble.center_, ensemble.spread_ = np.array([1.0, 0.0]), np.array([2.0, 4.0])
    got = ensemble.score_from_members({"a": np.array([5.0, 1.0]), "b": np.array([4.0, 12.0])})
    assert np.allclose(got, [max(2 * 2.0, 1.0), max(0.0, 3.0)])
    mean = create("ensemble", members=["a", "b"], weights=[2.0, 1.0])
    mean.center_, mean.spread_ = ensemble.center_, ensemble.spread_
    assert np.allclose(mean.score_from_members({"a": np.array([5.0]), "b": np.array([4.0])}), [(2 * 2.0 + 1.0) / 3])
    with pytest.raises(ValueError, match="2 positive numbers, one per member"):
        create("ensemble", members=["a", "b"], weights=[1.0])
    with pytest.raises(ValueError, match="combine must be one of mean, max"):
        create("ensemble", members=["a", "b"], combine="median")


def test_training_reads_the_operating_point_choices_file(tmp_path, monkeypatch, capsys):
    choices = tmp_path / "operating_point.json"
    choices.write_text(json.dumps({"criterion": {"name": "pauc", "max_fpr": 0.001}, "chosen": {
        "kdd41": {"pca": {"n_components": 3}},
        "kdd18": {"ensemble": {"members": ["pca", "zscore"], "weights": [2.0, 1.0], "combine": "max"}}}}))
    monkeypatch.setenv(hyperparams.OVERLAY_ENV, str(choices))
    root = tmp_path / "store"
    code = main(["train", "--detectors", "pca,pca@kdd41,zscore,ensemble", "--store", str(root),
                 "--train-rows", "3000", "--lock-timeout", "0"])
    assert code == 0, capsys.readouterr().err
    store = Store.open(root)
    assert store.entry("pca@kdd41")["params"]["n_components"] == 3  # the overlay's choice
    assert store.entry("pca")["params"]["n_components"] == hyperparams.choices(hyperparams.CHOICES_FILE)[
        "chosen"]["kdd18"]["pca"]["n_components"]  # a kind the overlay does not name keeps hyperparams.json's
    ensemble = store.detector("ensemble")
    assert ensemble.params == {"members": ["pca", "zscore"], "weights": [2.0, 1.0], "combine": "max"}
    rows = np.random.default_rng(0).random((5, 18)).astype(np.float32)
    raw = {m: store.detector(m).decision_function(rows) for m in ("pca", "zscore")}
    expected = np.max((np.column_stack([raw["pca"], raw["zscore"]]) - ensemble.center_) / ensemble.spread_ * [2, 1],
                      axis=1)
    assert np.allclose(ensemble.decision_function(rows), expected)


def test_a_broken_choices_file_is_one_sentence_and_no_store(tmp_path, monkeypatch, capsys):
    choices = tmp_path / "operating_point.json"
    choices.write_text(json.dumps({"chosen": {"kdd18": {"pca": {"n_components": 2, "whiten": True}}}}))
    monkeypatch.setenv(hyperparams.OVERLAY_ENV, str(choices))
    root = tmp_path / "store"
    assert main(["train", "--detectors", "pca", "--store", str(root), "--train-rows", "3000",
                 "--lock-timeout", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(choices) in err and "whiten" in err and "Traceback" not in err
    assert "\n" not in err and not (root / "manifest.json").exists()
    choices.write_text("{not json")
    assert main(["train", "--detectors", "pca", "--store", str(root), "--train-rows", "3000",
                 "--lock-timeout", "0"]) == 2
    assert "not a readable hyperparameter choices file" in capsys.readouterr().err
