"""``python -m anodet evaluate`` at an operating point (issue 27) and with intervals (issue 28), through the CLI."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from anodet.cli import main
from anodet.scoring import cache
from anodet.scoring.core import score_frame

OP_KEYS = ("threshold_at_op", "recall_at_op", "fpr_at_op", "alerts_per_day", "pauc", "tp_at_op", "fp_at_op",
           "fn_at_op", "tn_at_op")
INTERVALS = ("roc_auc", "pr_auc", "precision", "recall", "fpr", "recall_at_op", "fpr_at_op", "pauc")


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def at_fpr():
    code, out, _ = run("evaluate", "--fpr", "0.0001", "--format", "json")
    assert code == 0
    return json.loads(out)


@pytest.mark.slow
def test_json_has_one_object_per_detector_and_view_with_intervals_that_bracket_the_estimates(at_fpr, store):
    assert sorted((r["detector"], r["label_view"]) for r in at_fpr) == sorted(
        (n, v) for n in store.names for v in ("reference", "true"))
    for row in at_fpr:
        for key in OP_KEYS:
            assert key in row, key
        for metric in INTERVALS:
            low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
            assert low <= row[metric] + 1e-12 and row[metric] <= high + 1e-12, (row["detector"], metric)
        assert isinstance(row["roc_auc_tied"], bool) and isinstance(row["op_tied"], bool)
    for view in ("reference", "true"):
        ranks = [r["rank"] for r in at_fpr if r["label_view"] == view]
        assert ranks == list(range(1, len(ranks) + 1))


@pytest.mark.slow
@pytest.mark.parametrize(("view", "expected"), [("reference", "pca"), ("true", "bigan@kdd41")])
def test_the_top_of_each_view_catches_the_most_attacks_at_the_point(at_fpr, store, splits, view, expected):
    rows = [r for r in at_fpr if r["label_view"] == view]
    detectors = [r for r in rows if not r["uses_labels"]]
    top = rows[0]
    assert top["detector"] == expected and top["tp_at_op"] == max(r["tp_at_op"] for r in detectors)
    assert all(r["uses_labels"] for r in rows[len(detectors):])  # the supervised ceiling last
    # recomputed from the store's scores and the split's labels: the validation normals choose the threshold
    y, y_val = splits.test.label(view), splits.validation.label(view)
    test = score_frame(store, splits.test.rows, [expected])[expected]
    validation, _ = cache.split_scores(store, splits, "validation", lambda f: score_frame(store, f))
    normals = np.sort(validation[expected][y_val != 1])
    candidates = np.unique(np.r_[validation[expected], np.nextafter(validation[expected].max(), np.inf)])
    fits = len(normals) - np.searchsorted(normals, candidates) <= 0.0001 * len(normals)
    threshold = candidates[np.argmax(fits)]
    assert top["threshold_at_op"] == threshold
    assert top["tp_at_op"] == int(((test >= threshold) & (y == 1)).sum())
    assert top["fp_at_op"] == int(((test >= threshold) & (y != 1)).sum())
    if view == "reference":
        assert top["fp_at_op"] == 0 and top["name"] == "PCA · kdd18"


@pytest.mark.slow
def test_a_budget_of_50_a_day_in_500000_is_the_same_thresholds_as_fpr_one_in_ten_thousand(at_fpr):
    code, out, _ = run("evaluate", "--budget", "50/500000", "--format", "json", "--resamples", "0")
    assert code == 0
    budget = {(r["detector"], r["label_view"]): r["threshold_at_op"] for r in json.loads(out)}
    assert budget == {(r["detector"], r["label_view"]): r["threshold_at_op"] for r in at_fpr}


@pytest.mark.slow
def test_text_and_markdown_say_the_view_the_point_and_the_resolution_and_mark_ties():
    code, out, _ = run("evaluate", "--fpr", "0.01%", "--detectors", "pca,pca@kdd41,bigan@kdd41,supervised")
    assert code == 0
    for view in ("reference", "true"):
        assert f"label view: {view}" in out
    assert out.count("Ranked at a false-positive rate of 0.01 %") == 2
    assert "finer than the 8,000 normal test records" in out and "finer than the 6,104 normal test records" in out
    assert "163 / 2,000" in out and " = " in out and "recall@op [95% CI]" in out
    code, md, _ = run("evaluate", "--markdown", "--detectors", "pca,zscore")
    assert code == 0 and "| detector | ROC AUC [95% CI] |" in md and "Ranked by ROC AUC" in md


@pytest.mark.parametrize(("args", "sentence"), [
    (["--fpr", "0.0001x"], "--fpr '0.0001x' is not a rate"),
    (["--fpr", "-1"], "--fpr must be from 0 to 1"),
    (["--budget", "fifty/500000"], "is not an alert budget"),
    (["--budget", "600000/500000"], "cannot exceed the records a day"),
    (["--fpr", "0.001", "--records-per-day", "many"], "--records-per-day must be a positive number"),
])
def test_a_bad_operating_point_is_one_sentence(args, sentence):
    code, out, err = run("evaluate", *args)
    assert code == 2 and out == "" and sentence in err and err.count("\n") == 1 and err.startswith("error: ")


def test_a_bad_detector_is_one_sentence():
    code, _, err = run("evaluate", "--fpr", "0.0001", "--detectors", "pca@kdd99")
    assert code == 2 and "is not in the store" in err and "Traceback" not in err
    code, _, err = run("evaluate", "--detectors", "bogus")  # not a kind either: the store's sentence says so
    assert code == 2 and "Detector 'bogus' is not in the store" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as got:  # not even a name: argparse's one line after the usage
        run("evaluate", "--detectors", "pca;rm")
    assert got.value.code == 2


@pytest.mark.slow
def test_a_small_user_dataset_says_so_and_gets_a_report(tmp_path, monkeypatch):
    from tests.conftest import wdbc_frame

    monkeypatch.setenv("ANODET_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "wdbc.csv"
    wdbc_frame().to_csv(path, index=False)
    assert run("dataset", "add", "wdbc", "--train", str(path), "--label", "diagnosis", "--normal", "B")[0] == 0
    assert run("train", "--dataset", "wdbc", "--detectors", "pca,zscore,kmeans")[0] == 0
    code, out, _ = run("evaluate", "--dataset", "wdbc", "--fpr", "5%")
    assert code == 0 and "This test split has only" in out and "anomalies" in out
    code, out, _ = run("evaluate", "--dataset", "wdbc", "--fpr", "5%", "--format", "json")
    rows = json.loads(out)
    assert {r["label_view"] for r in rows} == {"label"} and all("recall_at_op_ci_low" in r for r in rows)
    report = tmp_path / "wdbc.md"
    code, out, err = run("report", "--dataset", "wdbc", "--detector", "pca", "--fpr", "5%", "-o", str(report),
                         "--resamples", "50")
    assert code == 0, err
    text = report.read_text()
    assert "This test split has only" in text and "--dataset wdbc --detectors pca@" in text
