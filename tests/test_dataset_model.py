"""One dataset model (issues 24 and 26): normal-only training files with labelled test files, label suggestions,
the label rule in any case, unseen categories bounded, declared ids, a dataset's own words, and user column names
that can never change a number."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anodet.cli import main
from anodet.datasets import catalog, userdata
from anodet.datasets.errors import DatasetError
from anodet.datasets.model import Vocabulary, plural
from tests.conftest import ROOT, odds_files, wdbc_frame

CLASSICAL = "pca,zscore,mahalanobis,kmeans,iforest"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("ANODET_DATA_DIR", str(folder))
    return folder


def cli(*args: str) -> int:
    return main([*args])


def test_a_normal_only_training_file_and_a_labelled_test_file_from_the_command_line(tmp_path, capsys):
    train, test = odds_files(tmp_path)
    assert cli("dataset", "add", "wdbc", "--train", str(train), "--test", str(test), "--label", "diagnosis",
               "--normal", "b", "--id", "patient_id", "--positive", "malignant", "--negative", "benign") == 0
    shown = capsys.readouterr().out
    assert "label column 'diagnosis' in the test file" in shown
    assert "a stratified half of the test file" in shown
    dataset = userdata.load("wdbc")
    splits = dataset.splits()
    assert splits.train.label("label") is not None and not splits.train.label("label").any()  # all normal
    y_val, y_test = splits.validation.label("label"), splits.test.label("label")
    assert y_val.sum() == 5 and y_test.sum() == 5  # the 10 malignant records, a stratified half each
    assert len(splits.validation) + len(splits.test) == 117  # every test-file record, none lost
    assert set(splits.test.record_id) <= {f"p{i:04d}" for i in range(367)}  # the declared id names the records
    assert cli("train", "--dataset", "wdbc", "--detectors", CLASSICAL) == 0
    capsys.readouterr()
    assert cli("evaluate", "--dataset", "wdbc", "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["label_view"] for r in rows} == {"label"}
    assert max(r["roc_auc"] for r in rows if not r["uses_labels"]) >= 0.95


def test_a_label_column_in_both_files_in_another_case_reads_the_same(tmp_path):
    train, test = odds_files(tmp_path, label_in_train=True)
    frame = pd.read_csv(test)
    frame["diagnosis"] = frame["diagnosis"].str.lower()  # b / m in the test file, B / M in training
    frame.to_csv(test, index=False)
    dataset = userdata.add("cased", train, test, label="diagnosis", normal="B")
    splits = dataset.splits()
    y = np.r_[splits.validation.label("label"), splits.test.label("label")]  # a training file of normals only:
    assert y.sum() == 10 and (y == 0).sum() == 107  # validation is a stratified half of the test file


@pytest.mark.parametrize(("change", "sentence"), [
    (lambda f: f.drop(columns="diagnosis"), "has no label column 'diagnosis'"),
    (lambda f: f.assign(diagnosis=np.where(f["diagnosis"] == "B", "NORMAL", "ATTACK")), "None of the labels"),
    (lambda f: f.assign(clinic="north-" + f["patient_id"]), "shares no value with the training file"),
])
def test_a_test_file_that_cannot_be_compared_is_one_sentence(tmp_path, change, sentence):
    train, test = odds_files(tmp_path, label_in_train=True)
    tr = pd.read_csv(train)
    tr["clinic"] = np.where(np.arange(len(tr)) % 2, "east", "south")
    tr.to_csv(train, index=False)
    te = pd.read_csv(test)
    te["clinic"] = "east"
    change(te).to_csv(test, index=False)
    with pytest.raises(DatasetError, match=sentence) as got:
        userdata.add("bad", train, test, label="diagnosis", normal="B", id_column="patient_id")
    assert "\n" not in str(got.value)
    assert not (userdata.datasets_root() / "bad" / "dataset.json").exists()


def test_a_column_that_looks_like_a_label_is_suggested_and_never_a_silent_feature(tmp_path):
    path = tmp_path / "wdbc.csv"
    wdbc_frame().to_csv(path, index=False)
    from anodet.datasets.inspection import inspect

    found = inspect(path)
    assert found.suggested_labels == ["diagnosis"]
    assert "diagnosis" not in dict(found.feature_columns())
    with pytest.raises(DatasetError, match=r"'diagnosis' looks like a label .*--label diagnosis"):
        userdata.add("wdbc", path)
    kept = userdata.add("wdbc", path, categorical="diagnosis")  # said in so many words: a feature
    assert ("diagnosis", "categorical") in kept.feature_columns


def test_an_unseen_category_is_named_and_its_effect_bounded(tmp_path, capsys):
    frame = wdbc_frame().reset_index(drop=True)
    rng = np.random.default_rng(0)
    frame["clinic"] = rng.choice(["north", "south", "east"], len(frame), p=[0.45, 0.45, 0.1])
    frame.to_csv(tmp_path / "train.csv", index=False)
    assert cli("dataset", "add", "clinics", "--train", str(tmp_path / "train.csv"), "--label", "diagnosis") == 0
    assert cli("train", "--dataset", "clinics", "--detectors", "zscore,mahalanobis,kmeans") == 0
    benign = frame[frame["diagnosis"] == "B"].iloc[:33].copy()
    scored = {}
    for clinic in ("north", "west"):  # west: never seen in training
        benign["clinic"] = clinic
        benign.to_csv(tmp_path / f"{clinic}.csv", index=False)
        assert cli("score", "--dataset", "clinics", str(tmp_path / f"{clinic}.csv"), "-o",
                   str(tmp_path / f"{clinic}.out.csv")) == 0
        scored[clinic] = pd.read_csv(tmp_path / f"{clinic}.out.csv")
    said = capsys.readouterr()
    assert "clinic" in said.out + said.err  # the unseen category is named
    west, north = scored["west"], scored["north"]
    assert west["out_of_range"].all()  # marked, with the reason
    for detector in ("zscore@clinics", "mahalanobis@clinics", "kmeans@clinics"):
        # bounded: flags at most a few more rows than the same records with a seen clinic, never all of them
        assert west[f"flag_{detector}"].mean() < 0.6, detector
        assert west[f"flag_{detector}"].sum() <= north[f"flag_{detector}"].sum() + 0.5 * len(west), detector


def test_a_dataset_speaks_its_own_words():
    assert plural("anomaly") == "anomalies" and plural("attack") == "attacks" and plural("class") == "classes"
    words = Vocabulary.of("malignant", "benign")
    assert words.count(1) == "1 malignant" and words.count(3) == "3 malignants"
    assert Vocabulary().count(2) == "2 anomalies" and Vocabulary().count(1) == "1 anomaly"
    assert catalog.get(catalog.KDD).words.positives == "attacks"


RESERVED = ["y", "label_value", "category", "attack", "label_label", "label_reference", "record", "score",
            "outcome", "label", "position", "__row", "__label", "id", "status", "row"]


@pytest.mark.slow
@pytest.mark.parametrize("reserved", [RESERVED[:8], RESERVED[8:]])
def test_user_columns_named_like_anodets_own_never_change_a_number(tmp_path, capsys, reserved):
    """A noise column named like an internal one changes nothing: `evaluate`, the Overview's leaderboard and
    `score --dataset` give the same numbers as the same data with the column under a neutral name."""
    from streamlit.testing.v1 import AppTest

    rng = np.random.default_rng(1)
    frame = wdbc_frame().reset_index(drop=True).rename(columns={"diagnosis": "truth"})
    results = {}
    for variant, names in (("plain", [f"noise_{i}" for i in range(len(reserved))]), ("reserved", reserved)):
        data = frame.copy()
        for i, col in enumerate(names):
            data[col] = rng.normal(size=len(data)) if i % 2 else rng.choice(["u", "v", "w"], len(data))
        rng = np.random.default_rng(1)
        path = tmp_path / f"{variant}.csv"
        data.to_csv(path, index=False)
        options = [n for n in names if n.lower() in ("label", "y", "attack", "category")]
        assert cli("dataset", "add", variant, "--train", str(path), "--label", "truth",
                   *(["--numeric", ",".join(n for i, n in enumerate(names) if i % 2 and n in options)]
                     if any(i % 2 and n in options for i, n in enumerate(names)) else []),
                   *(["--categorical", ",".join(n for i, n in enumerate(names) if not i % 2 and n in options)]
                     if any(not i % 2 and n in options for i, n in enumerate(names)) else [])) == 0
        assert cli("train", "--dataset", variant, "--detectors", "pca,zscore") == 0
        capsys.readouterr()
        assert cli("evaluate", "--dataset", variant, "--format", "json") == 0
        board = {r["detector"].split("@")[0]: r for r in json.loads(capsys.readouterr().out)}
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["dataset"] = variant
        at.run()
        shown = next(d.value for d in at.dataframe if "roc_auc" in d.value.columns)
        assert cli("score", "--dataset", variant, str(path), "-o", str(tmp_path / f"{variant}.out.csv")) == 0
        out = pd.read_csv(tmp_path / f"{variant}.out.csv")
        results[variant] = (board, shown, out)
    (board_a, shown_a, out_a), (board_b, shown_b, out_b) = results["plain"], results["reserved"]
    for kind in ("pca", "zscore"):
        assert board_a[kind]["roc_auc"] == pytest.approx(board_b[kind]["roc_auc"], abs=1e-12)
        assert board_a[kind]["flagged"] == board_b[kind]["flagged"]
        assert set(np.round(shown_b["roc_auc"], 9)) == set(np.round(shown_a["roc_auc"], 9))
        np.testing.assert_allclose(out_a[f"score_{kind}@plain"], out_b[f"score_{kind}@reserved"])
    assert (out_b["status"] == "scored").all()  # none of its own training rows is out of range or skipped
