"""External detectors from the command line: ``external add/list/remove``, ``evaluate``, and ``score``/``stream``
leaving them out. Scores made elsewhere are matched to KDD's records by record id (the record's line in the raw test
file, from 0) and compared exactly as a stored detector: the test copies a stored detector's scores into a file and
expects the same leaderboard row.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anodet.cli import main
from anodet.scoring.core import score_frame

DETECTOR = "pca"


@pytest.fixture(scope="module")
def stored(store, splits) -> dict[str, np.ndarray]:
    """The committed PCA's scores on the test and validation splits: what "my pipeline" hands over."""
    return {split: score_frame(store, splits.part(split).rows, [DETECTOR])[DETECTOR]
            for split in ("test", "validation")}


@pytest.fixture
def external_dir(tmp_path, monkeypatch) -> Path:
    """External detectors go to a temporary folder, never into the checkout's data/."""
    folder = tmp_path / "external"
    monkeypatch.setenv("ANODET_EXTERNAL_DIR", str(folder))
    return folder


def score_file(path: Path, splits, stored, splits_to_write=("test", "validation"), extra=None, sign: float = 1.0,
               drop: int = 0) -> Path:
    frames = [pd.DataFrame({"record_id": splits.part(s).record_id, "score": sign * stored[s]})
              for s in splits_to_write]
    frame = pd.concat(frames, ignore_index=True).sample(frac=1, random_state=0)  # any order
    if drop:
        frame = frame[~frame["record_id"].isin(splits.test.record_id[:drop])]
    if extra is not None:
        frame = pd.concat([frame, extra], ignore_index=True)
    frame.to_csv(path, index=False)
    return path


def board_json(capsys, *args: str) -> dict[tuple[str, str], dict]:
    assert main(["evaluate", "--format", "json", *args]) == 0
    return {(r["detector"], r["label_view"]): r for r in json.loads(capsys.readouterr().out)}


def test_added_scores_equal_the_stored_detector_on_every_metric(tmp_path, external_dir, splits, stored, capsys):
    extra = pd.DataFrame({"record_id": ["400000", "450000", "999999999", "not-a-line"], "score": [1.0, 2.0, 3.0, 4.0]})
    path = score_file(tmp_path / "mine.csv", splits, stored, extra=extra)
    assert main(["external", "add", "mine", "--scores", str(path)]) == 0
    out = capsys.readouterr()
    assert "10,000 test and 62,205 validation records scored; thresholds chosen on the validation split" in out.out
    assert "2 row(s) score other records of the dataset" in out.err  # training-file lines: ignored, counted
    assert "2 row(s) name ids the dataset does not have (first: '999999999'" in out.err
    kept = json.loads((external_dir / "kdd" / "mine" / "external.json").read_text())
    assert kept["counts"] == {"rows": 72209, "test": 10000, "validation": 62205, "other_records": 2, "unknown_ids": 2}
    assert kept["source"]["file"] == "mine.csv" and len(kept["source"]["sha256"]) == 64 and not kept["inverted"]
    rows = board_json(capsys, "--detectors", f"{DETECTOR},mine")
    for view in ("reference", "true"):
        ours, theirs = rows[(DETECTOR, view)], rows[("mine", view)]
        assert theirs["name"] == "mine · external" and theirs["feature_set"] == "external"
        for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "flagged", "detect_dos",
                    "detect_novel"):
            assert theirs[key] == ours[key], (view, key)
        # chosen on validation by the same code; the store's was chosen when it was trained (BLAS drift, ~1e-7)
        assert theirs["threshold"] == pytest.approx(ours["threshold"], rel=1e-5)
    at_point = board_json(capsys, "--detectors", f"{DETECTOR},mine", "--fpr", "0.0001")
    for view in ("reference", "true"):  # at an operating point: the same threshold chosen on the same validation
        ours, theirs = at_point[(DETECTOR, view)], at_point[("mine", view)]
        for key in ("recall_at_op", "fpr_at_op", "tp_at_op", "fp_at_op"):
            assert theirs[key] == ours[key], (view, key)


def test_inverted_scores_with_other_column_names(tmp_path, external_dir, splits, stored, capsys):
    path = score_file(tmp_path / "inverted.csv", splits, stored, sign=-1.0)
    frame = pd.read_csv(path).rename(columns={"record_id": "line", "score": "normality"})
    frame.insert(1, "comment", "x")
    frame.to_parquet(tmp_path / "inverted.parquet")
    assert main(["external", "add", "inv", "--scores", str(tmp_path / "inverted.parquet"), "--id", "line", "--score",
                 "normality", "--invert"]) == 0
    capsys.readouterr()
    rows = board_json(capsys, "--detectors", f"{DETECTOR},inv")
    assert rows[("inv", "true")]["roc_auc"] == rows[(DETECTOR, "true")]["roc_auc"]


@pytest.mark.parametrize("case, sentence", [
    ("missing", "5 of the 10,000 test records have no score in bad.csv (first: record"),
    ("two scores", "test record(s) have two different scores in the file"),
    ("part of validation", "Only 62,204 of the 62,205 validation records have a score in bad.csv"),
    ("text score", "Column 'score' of bad.csv holds text where a score belongs (data row"),
    ("no id column", "Which column of bad.csv holds the record ids?"),
    ("nan score", "test record(s) have an empty or non-finite score in bad.csv"),
])
def test_what_cannot_be_used_is_one_sentence_and_keeps_nothing(tmp_path, external_dir, splits, stored, capsys, case,
                                                                sentence):
    path = score_file(tmp_path / "bad.csv", splits, stored, drop=5 if case == "missing" else 0)
    frame = pd.read_csv(path, dtype={"score": object})
    first_test = str(splits.test.record_id[0])
    if case == "two scores":
        frame = pd.concat([frame, pd.DataFrame({"record_id": [first_test], "score": ["12345"]})])
    elif case == "part of validation":
        frame = frame[frame["record_id"] != splits.validation.record_id[0]]
    elif case == "text score":
        frame.loc[frame.index[3], "score"] = "high"
    elif case == "no id column":
        frame = frame.rename(columns={"record_id": "key"}).assign(other=1.0)
    elif case == "nan score":
        frame.loc[frame["record_id"] == int(first_test), "score"] = "nan"
    frame.to_csv(path, index=False)
    assert main(["external", "add", "bad", "--scores", str(path)]) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (external_dir / "kdd" / "bad").exists()


def test_test_scores_alone_get_thresholds_without_labels(tmp_path, external_dir, splits, stored, capsys):
    path = score_file(tmp_path / "test-only.csv", splits, stored, splits_to_write=("test",))
    assert main(["external", "add", "testonly", "--scores", str(path)]) == 0
    out = capsys.readouterr()
    assert "has no validation scores, so the thresholds are chosen on the test scores without their labels" in out.err
    rows = board_json(capsys, "--detectors", f"{DETECTOR},testonly")
    assert rows[("testonly", "reference")]["roc_auc"] == rows[(DETECTOR, "reference")]["roc_auc"]
    mean_3sigma = float(np.mean(stored["test"]) + 3 * np.std(stored["test"]))
    assert rows[("testonly", "reference")]["threshold"] == pytest.approx(mean_3sigma)
    assert main(["evaluate", "--detectors", f"{DETECTOR},testonly", "--fpr", "0.0001"]) == 0
    out = capsys.readouterr().out  # no threshold can be chosen on validation scores it lacks: said, not invented
    assert "testonly came without validation scores, so no threshold is chosen for it at this operating point" in out
    report = tmp_path / "testonly.md"
    assert main(["report", "--detector", "testonly", "--fpr", "0.0001", "-o", str(report)]) == 0
    assert "testonly · external" in report.read_text() and "came without validation scores" in report.read_text()


def test_score_and_stream_leave_external_detectors_out(tmp_path, external_dir, splits, stored, capsys):
    assert main(["external", "add", "mine", "--scores", str(score_file(tmp_path / "m.csv", splits, stored))]) == 0
    capsys.readouterr()
    records = tmp_path / "records.csv"
    splits.test.rows.head(50).to_csv(records, index=False)
    assert main(["score", str(records), "-o", str(tmp_path / "out.csv"), "--detectors", "mine"]) == 2
    assert "mine is an external detector (scores made elsewhere" in capsys.readouterr().err
    assert main(["stream", "--detector", "mine", "--input", str(records), "--alerts", str(tmp_path / "a.jsonl")]) == 2
    assert "cannot score new records" in capsys.readouterr().err
    exported = tmp_path / "thresholds.json"  # what the explorer exports: the external detector's threshold too
    exported.write_text(json.dumps({"format": "anodet-thresholds/1", "label_view": "reference",
                                    "thresholds": {"pca": 0.5, "mine": 0.25}}))
    assert main(["score", str(records), "-o", str(tmp_path / "out.csv"), "--detectors", "pca,zscore",
                 "--thresholds", str(exported)]) == 0
    assert (pd.read_csv(tmp_path / "out.csv")["flag_pca"] == (pd.read_csv(tmp_path / "out.csv")["score_pca"] >= 0.5)
            ).all()
    assert main(["score", str(records), "-o", str(tmp_path / "all.csv")]) == 0
    assert "note: mine is an external detector (scores made elsewhere), left out" in capsys.readouterr().err
    assert not any("mine" in c for c in pd.read_csv(tmp_path / "all.csv").columns)


def test_list_replace_and_remove_touch_only_what_anodet_wrote(tmp_path, external_dir, splits, stored, capsys):
    path = score_file(tmp_path / "m.csv", splits, stored)
    assert main(["external", "add", "mine", "--scores", str(path)]) == 0
    assert main(["external", "add", "mine", "--scores", str(path)]) == 2
    assert "already has external scores 'mine'; add --replace" in capsys.readouterr().err
    assert main(["external", "add", "mine", "--scores", str(path), "--replace"]) == 0
    assert main(["external", "add", "pca", "--scores", str(path)]) == 2  # a detector kind's name
    assert main(["external", "list"]) == 0
    assert "mine (mine · external), dataset kdd" in capsys.readouterr().out
    folder = external_dir / "kdd" / "mine"
    (folder / "my-notes.txt").write_text("mine, not anodet's")
    assert main(["external", "remove", "mine"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["my-notes.txt"]
    assert main(["external", "remove", "mine"]) == 2
    assert "has no external detector 'mine'" in capsys.readouterr().err


def test_a_users_dataset_names_records_by_their_row_or_id_column(tmp_path, monkeypatch, capsys):
    """WDBC declared from one file (records named by their data row, from 1), then with an id column: scores made
    elsewhere for its test and validation records give the same leaderboard row as the stored detector."""
    from anodet.datasets import userdata
    from anodet.training import datasets as dataset_training
    from tests.conftest import wdbc_frame

    monkeypatch.setenv("ANODET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANODET_EXTERNAL_DIR", str(tmp_path / "external"))
    frame = wdbc_frame()
    frame.insert(0, "patient", [f"p-{i:04d}" for i in range(len(frame))])
    frame.drop(columns="patient").to_csv(tmp_path / "wdbc.csv", index=False)
    frame.to_csv(tmp_path / "wdbc-ids.csv", index=False)
    for name, path, id_column in (("wdbc", "wdbc.csv", None), ("wdbc-ids", "wdbc-ids.csv", "patient")):
        userdata.add(name, tmp_path / path, label="diagnosis", normal="B", id_column=id_column)
        dataset_training.train(name, ["mahalanobis", "zscore"], log=lambda m: None)
        store = dataset_training.open_store(name)
        splits = userdata.load(name).splits()
        scores = pd.concat([pd.DataFrame({"rec": splits.part(s).record_id,
                                          "s": score_frame(store, splits.part(s).rows, [f"mahalanobis@{name}"])[
                                              f"mahalanobis@{name}"]}) for s in ("test", "validation")])
        scores = pd.concat([scores, pd.DataFrame({"rec": ["99999"], "s": [1.0]})])  # no such record
        scores.to_csv(tmp_path / f"{name}-scores.csv", index=False)
        assert main(["external", "add", "theirs", "--dataset", name, "--scores", str(tmp_path / f"{name}-scores.csv"),
                     "--id", "rec", "--score", "s"]) == 0
        err = capsys.readouterr().err
        assert "1 row(s) name ids the dataset does not have (first: '99999'" in err
        assert ("data row in its input file, counted from 1" if id_column is None else "by their 'patient' column") \
            in err
        rows = board_json(capsys, "--dataset", name)
        ours, theirs = rows[(f"mahalanobis@{name}", "label")], rows[("theirs", "label")]
        assert theirs["roc_auc"] == ours["roc_auc"] and theirs["f1"] == ours["f1"]
