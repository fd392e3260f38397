"""User datasets (issue 10): inference, bad-data sentences, splits, and training the family on WDBC."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anodet.cli import main
from anodet.datasets import catalog, files, inspection, userdata, usersplits
from anodet.datasets.errors import DatasetError
from anodet.evaluation.leaderboard import boards_on_test
from anodet.features.sets import MAX_CATEGORIES, OTHER
from anodet.store.core import Store
from anodet.training import datasets as dataset_training
from tests.conftest import wdbc_frame


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Every test declares its datasets in a temporary data folder, never in the repository."""
    folder = tmp_path / "data"
    monkeypatch.setenv("ANODET_DATA_DIR", str(folder))
    return folder


def wdbc_csv(path):
    wdbc_frame().to_csv(path, index=False)
    return path


def mixed_frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "bytes": rng.lognormal(3, 3, n).round(),  # heavy-tailed and non-negative: log scale
        "rate": rng.uniform(0, 1, n),
        "proto": rng.choice(["tcp", "udp", "icmp"], n),
        "flag": np.where(rng.uniform(size=n) < 0.5, "SF", "REJ"),
        "always": 7,
        "label": np.where(rng.uniform(size=n) < 0.1, "attack", "normal"),
    })


def test_inference_on_a_small_frame(tmp_path):
    path = tmp_path / "flows.csv"
    mixed_frame().to_csv(path, index=False)
    found = inspection.inspect(path, label="label", id_column="id")
    kinds = dict(found.feature_columns())
    assert kinds == {"bytes": "log", "rate": "numeric", "proto": "categorical", "flag": "categorical"}
    assert found.label == "label" and found.normal == ["normal"]
    roles = {c.name: c.role for c in found.columns}
    assert roles["always"] == "dropped" and roles["id"] == "id" and roles["label"] == "label"
    assert any("'always' is dropped: constant" in n for n in found.notes)
    assert found.rows == 400


def test_overrides_and_exclusions(tmp_path):
    path = tmp_path / "flows.parquet"
    mixed_frame().to_parquet(path)
    found = inspection.inspect(path, categorical="rate", numeric="bytes", exclude="flag,id")
    kinds = dict(found.feature_columns())
    assert kinds == {"bytes": "numeric", "rate": "categorical", "proto": "categorical"}
    assert {c.name for c in found.columns if c.role == "excluded"} == {"flag", "id"}
    assert found.suggested_labels == ["label"]  # looks like a label: suggested, never a silent feature


def test_too_many_levels_are_capped_and_said(tmp_path):
    n = 2000
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "host": [f"h{i % 500}" for i in range(n)]})
    frame.to_csv(tmp_path / "hosts.csv", index=False)
    found = inspection.inspect(tmp_path / "hosts.csv")
    host = next(c for c in found.columns if c.name == "host")
    assert host.kind == "categorical" and host.levels == 500
    assert any(f"{MAX_CATEGORIES} most frequent" in n and OTHER in n for n in found.notes)


@pytest.mark.parametrize(("frame", "kwargs", "sentence"), [
    (pd.DataFrame({"a": ["x", "y"] * 5, "b": ["u", "v"] * 5}), {}, "has no usable numeric column"),
    (pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": ["u", "v", "w"]}), {}, "has no usable numeric column"),
    (pd.DataFrame({"a": np.arange(10.0), "y": ["n"] * 10}), {"label": "y"}, "holds one class only"),
    (pd.DataFrame({"a": np.arange(10.0), "y": ["n", "m"] * 5}), {"label": "y", "normal": "q"}, "has no value 'q'"),
    (pd.DataFrame({"a": np.arange(10.0), "y": ["n", "m"] * 5}), {"label": "y"}, "Which value of the label column"),
    (pd.DataFrame({"a": np.arange(10.0)}), {"label": "nope"}, "has no column 'nope'"),
    (pd.DataFrame({"a": ["1", "2", "three", "4"], "b": np.arange(4.0)}), {}, "mixes numbers and text"),
])
def test_bad_data_is_one_sentence(tmp_path, frame, kwargs, sentence):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DatasetError, match=sentence) as info:
        inspection.inspect(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith((".", ")"))


def test_mixed_types_name_the_column_and_a_row(tmp_path, monkeypatch):
    # A column of numbers for many rows, then text: the reader types it from the first block and fails later.
    monkeypatch.setattr(files, "BLOCK_BYTES", 1 << 10)
    values = [str(i) for i in range(500)] + ["n/a-ish"] + ["5"] * 10
    path = tmp_path / "late.csv"
    pd.DataFrame({"n": values, "m": np.arange(len(values), dtype=float)}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"Column 'n' .* mixes numbers and text \(data row 501 holds 'n/a-ish'\)"):
        inspection.inspect(path)
    # declared categorical, the same column is accepted
    assert dict(inspection.inspect(path, categorical="n").feature_columns())["n"] == "categorical"


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match="There is no file"):
        inspection.inspect(tmp_path / "nowhere.csv")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match="cannot be read as Parquet"):
        inspection.inspect(broken)


def test_names_are_safe_slugs(tmp_path):
    for bad in ("../x", "a b", "", "kdd18", "x" * 65):
        with pytest.raises(DatasetError):
            userdata.check_name(bad)
    assert userdata.check_name("flows-2024_v2") == "flows-2024_v2"


def test_cli_says_one_sentence_and_exits_2(tmp_path, capsys):
    path = tmp_path / "one.csv"
    pd.DataFrame({"a": np.arange(10.0), "y": ["n"] * 10}).to_csv(path, index=False)
    assert main(["dataset", "add", "one", "--train", str(path), "--label", "y"]) == 2
    err = capsys.readouterr().err
    assert "error: The label column 'y'" in err and "Traceback" not in err
    assert main(["train", "--dataset", "nope"]) == 2
    assert "There is no dataset 'nope'" in capsys.readouterr().err


def test_add_writes_a_readable_declaration_and_splits(tmp_path, data_dir):
    path = wdbc_csv(tmp_path / "wdbc.csv")
    dataset = userdata.add("wdbc", path, label="diagnosis", normal="B")
    doc = json.loads((data_dir / "datasets" / "wdbc" / "dataset.json").read_text())
    assert doc["format"] == "anodet-dataset/2" and doc["label"]["normal"] == ["B"] and doc["label"]["in"] == ["train"]
    assert doc["label"]["counts"] == {"B": 357, "M": 10}
    assert len(doc["files"]["train"]["sha256"]) == 64 and doc["files"]["train"]["rows"] == 367
    assert sum(c["role"] == "feature" for c in doc["columns"]) == 30
    splits = dataset.splits()
    assert splits.train.label("label").sum() == 0  # training rows are normal
    assert splits.labels("validation", "label").sum() + splits.labels("test", "label").sum() == 10
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 367
    assert userdata.list_datasets() == ["wdbc"]
    with pytest.raises(DatasetError, match="already declared"):
        userdata.add("wdbc", path, label="diagnosis")
    # the same seed carves the same splits
    again = usersplits.build_splits(userdata.load("wdbc"))
    pd.testing.assert_frame_equal(again.test.rows, splits.test.rows)
    np.testing.assert_array_equal(again.test.record_id, splits.test.record_id)


CLASSICAL = ["pca", "ocsvm", "iforest", "lof", "kmeans", "zscore", "mahalanobis"]


def test_wdbc_classical_detectors_reach_095(tmp_path):
    csv = wdbc_csv(tmp_path / "wdbc.csv")
    userdata.add("wdbc", csv, label="diagnosis", normal="B")
    seen = []
    manifest = dataset_training.train("wdbc", [*CLASSICAL, "supervised"], log=lambda m: None,
                              progress=lambda done, total, name: seen.append((done, total, name)))
    assert seen[0] == (0, 8, "pca@wdbc") and seen[-1] == (8, 8, "")
    store = Store.open(userdata.store_root("wdbc"))
    store.verify()
    assert store.label_views == ["label"] and store.default_preset == "best_f1" and store.labelled
    assert manifest["feature_sets"] == {"wdbc": manifest["feature_sets"]["wdbc"]}
    aucs = {n: e["metrics"]["test"]["label"]["roc_auc"] for n, e in manifest["detectors"].items()
            if e["family"] != "supervised"}
    assert max(aucs.values()) >= 0.95, aucs
    declaration = catalog.get("wdbc")
    board = boards_on_test(declaration, store, declaration.load_splits())["label"]
    assert board.loc["mahalanobis@wdbc", "roc_auc"] == pytest.approx(aucs["mahalanobis@wdbc"])
    # score --dataset (the one scoring path): the input's columns, then row, status, out_of_range, score_/flag_
    out = tmp_path / "wdbc.scored.parquet"
    assert main(["score", "--dataset", "wdbc", str(csv), "-o", str(out), "--detectors", "pca,mahalanobis"]) == 0
    scored = pd.read_parquet(out)
    assert len(scored) == 367 and (scored["status"] == "scored").all()
    assert list(scored.columns[-7:]) == ["row", "status", "out_of_range", "score_pca@wdbc", "flag_pca@wdbc",
                                         "score_mahalanobis@wdbc", "flag_mahalanobis@wdbc"]
    threshold = store.default_threshold("pca@wdbc", "label")
    assert (scored["flag_pca@wdbc"] == (scored["score_pca@wdbc"] >= threshold)).all()


def test_unlabelled_dataset_gets_unlabelled_thresholds(tmp_path):
    frame = mixed_frame().drop(columns=["label"])
    frame.to_csv(tmp_path / "flows.csv", index=False)
    userdata.add("flows", tmp_path / "flows.csv", id_column="id")
    lines = []
    manifest = dataset_training.train("flows", ["pca", "zscore"], log=lines.append)
    assert any(line.startswith("skipped: supervised (needs labels") for line in lines)
    store = dataset_training.open_store("flows")
    assert store.default_preset == "mean_3sigma" and not store.labelled
    assert set(store.thresholds("pca@flows", "label")) == {"mean_3sigma", "target_fpr", "contamination"}
    assert store.default_threshold("pca@flows", "label") == store.thresholds("pca@flows", "label")["mean_3sigma"]
    assert manifest["detectors"]["pca@flows"]["metrics"]["test"] == {}
    with pytest.raises(DatasetError, match="supervised cannot be trained"):
        dataset_training.train("flows", ["supervised"], log=lambda m: None)


def test_kdd_store_keeps_its_two_views(store):
    assert store.label_views == ["reference", "true"] and store.default_preset == "best_f1"


@pytest.mark.slow
def test_wdbc_whole_family_through_the_cli(tmp_path, capsys):
    path = wdbc_csv(tmp_path / "wdbc.csv")
    assert main(["dataset", "add", "wdbc", "--train", str(path), "--label", "diagnosis", "--normal", "B"]) == 0
    assert main(["train", "--dataset", "wdbc"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "(15 detectors)" in out  # every kind of the family, the supervised ceiling among them
    manifest = Store.open(userdata.store_root("wdbc")).manifest
    aucs = {n: e["metrics"]["test"]["label"]["roc_auc"] for n, e in manifest["detectors"].items()
            if e["family"] != "supervised"}
    assert max(aucs.values()) >= 0.95, aucs
    assert main(["evaluate", "--dataset", "wdbc"]) == 0
    assert "Mahalanobis · wdbc" in capsys.readouterr().out
