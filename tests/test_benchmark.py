"""``python -m anodet benchmark``: suites, protocols, the results table, the choice rows, resuming, bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anodet.benchmark import protocols, results, summary
from anodet.benchmark.runner import ROW_COLUMNS
from anodet.cli import main

ADBENCH = Path(os.environ.get("ANODET_ADBENCH", Path(__file__).resolve().parents[1] / ".." / "shared" / "adbench"))
SMALL = ["14_glass", "39_vertebral", "42_WBC"]
HAVE_PYOD = importlib.util.find_spec("pyod") is not None
needs_adbench = pytest.mark.skipif(not (ADBENCH / "14_glass.npz").exists(), reason="ADBench datasets not found")


def small_files() -> list[str]:
    return [str(ADBENCH / f"{name}.npz") for name in SMALL]


def bench(tmp_path: Path, capsys, *extra: str, items: list[str] | None = None,
          out: str = "out") -> tuple[int, str, str]:
    code = main(["benchmark", *(items if items is not None else small_files()), "-o", str(tmp_path / out),
                 "--seeds", "1", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- protocols ------------------------------------------------------------------------------------------


def synthetic(rows: int, anomalies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Column 0 is the row's id (to check the parts are disjoint), the others noise."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.arange(rows, dtype=np.float64), rng.normal(size=(rows, 3))])
    y = np.zeros(rows, dtype=np.int8)
    y[rng.choice(rows, anomalies, replace=False)] = 1
    return X, y


def test_unsupervised_split_is_adbenchs():
    X, y = synthetic(25_000, 1_000)
    split = protocols.make_split(X, y, "unsupervised", seed=3)
    assert split.info["subsampled"] and split.info["rows"] == 25_000
    assert len(split.fit) + len(split.test) == 10_000
    assert len(split.test) == pytest.approx(3_000, abs=2)
    # stratified: the test part keeps the anomaly share of the subsample (±1 row)
    assert split.y_test.sum() == pytest.approx(split.info["fit_anomalies"] * 3 / 7, abs=2)
    # min-max on the training part: it spans [0, 1]; the test part may step outside
    assert split.fit.min(axis=0) == pytest.approx(0) and split.fit.max(axis=0) == pytest.approx(1)
    assert split.validation is None and len(split.criterion) == 2_000
    again = protocols.make_split(X, y, "unsupervised", seed=3)
    np.testing.assert_array_equal(again.test, split.test)
    assert not np.array_equal(protocols.make_split(X, y, "unsupervised", seed=4).test, split.test)


def test_normal_only_split_fits_on_normals_and_validates_on_every_training_anomaly():
    X, y = synthetic(2_000, 100)
    split = protocols.make_split(X, y, "normal-only", seed=0)
    info = split.info
    training_anomalies = 100 - int(split.y_test.sum())
    assert info["fit_anomalies"] == 0 and info["validation_anomalies"] == training_anomalies
    held_normals = info["validation"] - training_anomalies
    assert held_normals == round(0.25 * (info["train"] - training_anomalies))
    assert info["fit"] + info["validation"] + info["test"] == 2_000
    # the parts are disjoint: column 0 holds each row's id (scaled the same way in every part)
    parts = [set(p[:, 0].tolist()) for p in (split.fit, split.validation, split.test)]
    assert sum(len(p) for p in parts) == len(set().union(*parts)) == 2_000


def test_a_dataset_too_small_to_split_is_one_sentence():
    from anodet.benchmark.suites import SuiteError

    X, y = synthetic(30, 1)
    with pytest.raises(SuiteError, match="too small"):
        protocols.make_split(X, y, "unsupervised", seed=0, name="tiny")


# -- the command ----------------------------------------------------------------------------------------


@needs_adbench
def test_benchmark_writes_the_table_summary_and_diagrams(tmp_path, capsys):
    peers = ["--peers", "pyod:KNN,pyod:IForest"] if HAVE_PYOD else []
    code, out, err = bench(tmp_path, capsys, "--detectors", "ecod,knn,iforest,zscore", "--protocol", "both", *peers)
    assert code == 0, err
    folder = tmp_path / "out"
    table = pd.read_parquet(folder / "results.parquet")
    assert list(table.columns) == ROW_COLUMNS  # tidy: one row per dataset × seed × protocol × detector
    contenders = ["ecod", "knn", "iforest", "zscore", *(["pyod:KNN", "pyod:IForest"] if HAVE_PYOD else [])]
    choices = ["choice:family", *(["choice:all"] if HAVE_PYOD else [])]
    for (dataset, protocol), rows in table.groupby(["dataset", "protocol"]):
        assert list(rows["detector"]) == contenders + choices, (dataset, protocol)
    assert set(table["dataset"]) == set(SMALL) and set(table["protocol"]) == {"unsupervised", "normal-only"}
    assert table["roc_auc"].between(0, 1).all() and table["pr_auc"].between(0, 1).all()
    assert (table["fpr"] == 0.05).all() and (table["error"] == "").all()
    assert set(table.loc[table["detector"].str.startswith("pyod:"), "group"]) <= {"peer"}
    chosen = table[table["group"] == "choice"]
    assert chosen["chosen"].isin(contenders).all()
    # a choice row carries its chosen detector's test numbers
    for _, row in chosen.iterrows():
        same = table[(table["dataset"] == row["dataset"]) & (table["protocol"] == row["protocol"])
                     & (table["detector"] == row["chosen"])]
        assert float(same["roc_auc"].iloc[0]) == row["roc_auc"]
    normal_only = table[(table["protocol"] == "normal-only") & (table["group"] != "choice")]
    assert normal_only["validation_roc_auc"].notna().all()
    csv = pd.read_csv(folder / "results.csv")
    np.testing.assert_allclose(csv["roc_auc"], table["roc_auc"])
    assert "Protocol unsupervised" in out and "Protocol normal-only" in out and "Friedman test" in out
    doc = json.loads((folder / "summary.json").read_text())
    assert [d["protocol"] for d in doc] == ["unsupervised", "normal-only"]
    for protocol in ("unsupervised", "normal-only"):
        root = ET.fromstring((folder / f"cd-{protocol}.svg").read_text())
        assert sum(1 for _ in root.iter("{http://www.w3.org/2000/svg}text")) > len(contenders)


@needs_adbench
def test_the_table_holds_what_fitting_the_split_by_hand_gives(tmp_path, capsys):
    from anodet.benchmark.suites import SuiteDataset
    from anodet.detectors import create
    from anodet.evaluation.metrics import pr_auc, roc_auc

    code, _, err = bench(tmp_path, capsys, "--detectors", "ensemble,knn,ecod", "--protocol", "normal-only",
                         items=[str(ADBENCH / "39_vertebral.npz")])
    assert code == 0, err
    table = pd.read_parquet(tmp_path / "out" / "results.parquet").set_index("detector")
    X, y = SuiteDataset("39_vertebral", str(ADBENCH / "39_vertebral.npz")).load()
    split = protocols.make_split(X, y, "normal-only", seed=0)
    fitted = {name: create(name, seed=0).fit(split.fit) for name in ("knn", "ecod")}
    fitted["iforest"] = create("iforest", seed=0, max_samples=min(256, len(split.fit))).fit(split.fit)
    fitted["ensemble"] = create("ensemble", members=["iforest", "ecod", "knn"]).attach(fitted).fit(split.calibration)
    for name in ("knn", "ecod", "ensemble"):
        scores = fitted[name].decision_function(split.test)
        assert table.loc[name, "roc_auc"] == pytest.approx(roc_auc(split.y_test, scores), abs=1e-12), name
        assert table.loc[name, "pr_auc"] == pytest.approx(pr_auc(split.y_test, scores), abs=1e-12), name
        assert table.loc[name, "validation_roc_auc"] == pytest.approx(
            roc_auc(split.y_validation, fitted[name].decision_function(split.validation)), abs=1e-12), name
    assert table.loc[name, "fit_rows"] == len(split.fit) and table.loc[name, "test_rows"] == len(split.test)
    assert list(table.index) == ["ensemble", "knn", "ecod", "choice:family"]


@needs_adbench
def test_a_second_run_redoes_nothing_and_a_new_detector_runs_alone(tmp_path, capsys):
    code, _, err = bench(tmp_path, capsys, "--detectors", "ecod,zscore")
    assert code == 0, err
    task = tmp_path / "out" / "tasks" / "unsupervised" / "14_glass" / "seed-0.parquet"
    first = pd.read_parquet(task)
    stamp = task.stat().st_mtime_ns
    code, _, err = bench(tmp_path, capsys, "--detectors", "ecod,zscore")
    assert code == 0 and "0 task(s) run, 3 already done" in err
    assert task.stat().st_mtime_ns == stamp
    code, _, err = bench(tmp_path, capsys, "--detectors", "ecod,zscore,knn")
    assert code == 0 and "3 task(s) run, 0 already done" in err
    second = pd.read_parquet(task)
    assert list(second["detector"]) == ["ecod", "zscore", "knn"]
    pd.testing.assert_frame_equal(second.iloc[:2].reset_index(drop=True), first.reset_index(drop=True))
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert set(table["detector"]) == {"ecod", "zscore", "knn", "choice:family"}


def test_csv_and_parquet_suites_with_a_label_column(tmp_path, capsys):
    from tests.conftest import wdbc_frame

    folder = tmp_path / "suite"
    folder.mkdir()
    frame = wdbc_frame()
    frame.to_csv(folder / "wdbc.csv", index=False)
    code, _, err = bench(tmp_path, capsys, "--detectors", "ecod", items=[str(folder)], out="out1")
    assert code == 2 and "wdbc.csv has no label column" in err and "--label" in err and "Traceback" not in err
    assert not (tmp_path / "out1" / "tasks").exists()  # checked before any task runs
    code, _, err = bench(tmp_path, capsys, "--detectors", "ecod", "--label", "diagnosis", items=[str(folder)],
                         out="out2")
    assert code == 0, err
    table = pd.read_parquet(tmp_path / "out2" / "results.parquet")
    assert list(table["dataset"]) == ["wdbc", "wdbc"] and table["roc_auc"].iloc[0] > 0.8
    assert table["test_anomalies"].iloc[0] == 3  # 30% of the 10 malignant rows, the normal value B guessed
    other = tmp_path / "other"
    other.mkdir()
    frame.rename(columns={"diagnosis": "label"}).to_parquet(other / "wdbc.parquet", index=False)
    code, _, err = bench(tmp_path, capsys, "--detectors", "ecod", items=[str(other)], out="out3")
    assert code == 0, err
    parquet = pd.read_parquet(tmp_path / "out3" / "results.parquet")
    assert parquet["roc_auc"].iloc[0] == table["roc_auc"].iloc[0]  # same rows, same split, same numbers


def test_a_declared_dataset_by_name(tmp_path, capsys, monkeypatch):
    from anodet.datasets import userdata as datasets
    from tests.conftest import wdbc_frame

    monkeypatch.setenv("ANODET_DATA_DIR", str(tmp_path / "data"))
    frame = wdbc_frame()
    frame["site"] = np.where(np.arange(len(frame)) % 3 == 0, "north", "south")  # a category, one-hot encoded
    frame.to_csv(tmp_path / "wdbc.csv", index=False)
    datasets.add("wdbc", tmp_path / "wdbc.csv", label="diagnosis", normal="B")
    frame.drop(columns=["diagnosis"]).to_csv(tmp_path / "plain.csv", index=False)
    datasets.add("plain", tmp_path / "plain.csv")
    code, _, err = bench(tmp_path, capsys, "--detectors", "ecod,zscore", items=["wdbc"])
    assert code == 0, err
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert set(table["dataset"]) == {"wdbc"}
    assert table["test_anomalies"].iloc[0] == 3 and table["test_rows"].iloc[0] == 107 + 3  # 30% of each class
    code, _, err = bench(tmp_path, capsys, items=["plain"], out="out2")
    assert code == 2 and "has no label column" in err and "--label" in err


@needs_adbench
@pytest.mark.parametrize(("args", "message"), [
    (["no_such_dataset"], "neither a folder, a dataset file nor a declared anodet dataset"),
    (["--detectors", "nope"], "Unknown detector 'nope'"),
    (["--detectors", "supervised"], "trains on labels"),
    (["--protocol", "semi"], "Unknown protocol"),
    (["--peers", "sklearn"], "Unknown peer"),
    (["--seeds", "0"], "--seeds must be at least 1"),
])
def test_bad_input_is_one_sentence(tmp_path, capsys, args, message):
    items = [a for a in args if not a.startswith("-") and a not in {"nope", "supervised", "semi", "sklearn", "0"}]
    flags = [a for a in args if a not in items]
    code, _, err = bench(tmp_path, capsys, *flags, items=items or small_files()[:1])
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_an_empty_folder_and_a_file_without_labels(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = bench(tmp_path, capsys, items=[str(empty)])
    assert code == 2 and "holds no dataset file" in err
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(tmp_path / "plain.csv", index=False)
    code, _, err = bench(tmp_path, capsys, items=[str(tmp_path / "plain.csv")])
    assert code == 2 and "no label column" in err
    np.savez(tmp_path / "odd.npz", data=np.zeros((4, 2)))
    code, _, err = bench(tmp_path, capsys, items=[str(tmp_path / "odd.npz")])
    assert code == 2 and "not X and y" in err


@needs_adbench
def test_peers_without_pyod_is_one_sentence(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyod" else real(name, *a))
    code, _, err = bench(tmp_path, capsys, "--peers", "pyod")
    assert code == 2 and "needs PyOD, which is not installed" in err and "pip install pyod==3.6.7" in err


# -- the choice rows and the summary ---------------------------------------------------------------------


def rows_of(values: dict[str, dict[str, float]], protocol: str = "normal-only") -> pd.DataFrame:
    frame = pd.DataFrame([{"detector": d, "display": d, "group": "peer" if d.startswith("pyod:") else "family",
                           "error": "", "fit_s": 1.0, "score_s": 0.5, "select_s": 0.25, **v}
                          for d, v in values.items()])
    return frame.assign(protocol=protocol)


def test_the_normal_only_choice_is_the_best_validation_auc():
    frame = rows_of({"a": {"roc_auc": 0.7, "validation_roc_auc": 0.9},
                     "b": {"roc_auc": 0.95, "validation_roc_auc": 0.8},
                     "pyod:C": {"roc_auc": 0.6, "validation_roc_auc": 0.99}})
    family, everything = results.choice_rows(frame, "normal-only", {})
    assert (family["chosen"].iloc[0], family["roc_auc"].iloc[0]) == ("a", 0.7)
    assert (everything["chosen"].iloc[0], everything["roc_auc"].iloc[0]) == ("pyod:C", 0.6)
    assert everything["fit_s"].iloc[0] == 3.0  # every candidate had to run


def test_the_unsupervised_choice_is_the_most_central_detector():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=500)
    scores = {"a": truth + rng.normal(0, 0.5, 500), "b": truth + rng.normal(0, 0.2, 500),
              "c": truth + rng.normal(0, 0.6, 500), "d": rng.normal(size=500)}
    frame = rows_of({k: {"roc_auc": 0.5} for k in scores}, "unsupervised")
    (row,) = results.choice_rows(frame, "unsupervised", scores)
    assert row["chosen"].iloc[0] == "b"
    central = results.centrality(scores)
    assert max(central, key=central.__getitem__) == "b" and central["d"] < 0.1


def test_summary_ranks_wins_and_failures():
    rows = []
    for dataset, aucs in {"d1": (0.9, 0.8, 0.7), "d2": (0.75, 0.9, 0.7), "d3": (0.95, 0.9, None)}.items():
        for name, auc in zip(("a", "b", "pyod:c"), aucs, strict=True):
            rows.append({"dataset": dataset, "seed": 0, "protocol": "unsupervised", "detector": name, "display": name,
                         "group": "peer" if name.startswith("pyod") else "family", "roc_auc": auc, "pr_auc": 0.5,
                         "recall_at_fpr": 0.5, "fpr": 0.05, "fit_s": 1.0, "score_s": 1.0, "select_s": 0.0,
                         "error": "" if auc is not None else "ValueError: boom", "test_rows": 100,
                         "test_anomalies": 10})
    s = summary.summarize(pd.DataFrame(rows), "unsupervised")
    table = s.table.set_index("detector")
    assert table.loc["pyod:c", "failures"] == 1
    assert table.loc["pyod:c", "mean_roc_auc"] == pytest.approx((0.7 + 0.7 + 0.5) / 3)  # a failure counts as 0.5
    assert list(s.table["detector"]) == ["a", "b", "pyod:c"]  # mean ranks 1.33, 1.67, 3
    assert table.loc["a", "mean_rank"] == pytest.approx(4 / 3) and table.loc["a", "wins"] == 2
    assert s.oracle == {"family": pytest.approx((0.9 + 0.9 + 0.95) / 3), "peers": pytest.approx(0.6333, abs=1e-4),
                        "all": pytest.approx((0.9 + 0.9 + 0.95) / 3)}
    assert s.best("peer") == ("pyod:c", pytest.approx(0.6333, abs=1e-4))


def test_per_dataset_matrix_and_heatmap():
    from anodet.benchmark import figures

    rows = [{"dataset": d, "seed": seed, "protocol": "unsupervised", "detector": name, "display": name.upper(),
             "group": "peer" if name.startswith("pyod") else "family", "roc_auc": auc + seed / 100, "pr_auc": 0.5,
             "recall_at_fpr": 0.5, "fpr": 0.05, "error": "", "test_rows": 100, "test_anomalies": 10}
            for d, aucs in {"d1": (0.9, 0.6), "d2": (0.7, 0.8)}.items() for seed in (0, 1)
            for name, auc in zip(("a", "pyod:b"), aucs, strict=True)]
    matrix = summary.per_dataset(pd.DataFrame(rows), "unsupervised")
    assert list(matrix.columns) == ["a", "pyod:b"] and list(matrix.index) == ["d1", "d2"]
    assert matrix.loc["d1", "a"] == pytest.approx(0.905)  # seeds averaged
    fig = figures.auc_heatmap(matrix, {"pyod:b": "peer"}, {"a": "A", "pyod:b": "B (PyOD)"})
    assert list(fig.data[0].x) == ["A", "<i>B (PyOD)</i>"]


@pytest.mark.slow
@needs_adbench
def test_the_dask_engine_gives_the_local_engines_numbers(tmp_path, capsys):
    code, _, err = bench(tmp_path, capsys, "--detectors", "ecod,knn,zscore", "--protocol", "both", out="local")
    assert code == 0, err
    code, _, err = bench(tmp_path, capsys, "--detectors", "ecod,knn,zscore", "--protocol", "both", "--engine", "dask",
                         out="dask")
    assert code == 0, err
    local = pd.read_parquet(tmp_path / "local" / "results.parquet")
    dask = pd.read_parquet(tmp_path / "dask" / "results.parquet")
    columns = ["dataset", "seed", "protocol", "detector", "roc_auc", "pr_auc", "recall_at_fpr", "validation_roc_auc",
               "chosen"]
    pd.testing.assert_frame_equal(local[columns], dask[columns])
