"""The dataset switch: every dashboard page on a user's dataset (WDBC, labelled; and one without labels).

Runs the real ``app.py`` through AppTest with two small datasets declared and trained into a
temporary data folder (nothing of them lands in the repository).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from anodet.cli import main
from anodet.datasets import userdata
from anodet.scoring import uploads
from anodet.training import datasets as dataset_training
from tests.conftest import wdbc_frame
from tests.threshold_control import release, sent

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
FAST = ["pca", "zscore", "mahalanobis", "kmeans"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """WDBC (labels in ``diagnosis``) and an unlabelled copy, declared and trained on four fast detectors."""
    folder = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANODET_DATA_DIR", str(folder))
        frame = wdbc_frame()
        frame.to_csv(folder / "wdbc.csv", index=False)
        frame.drop(columns="diagnosis").to_csv(folder / "flows.csv", index=False)
        userdata.add("wdbc", folder / "wdbc.csv", label="diagnosis", normal="B")
        dataset_training.train("wdbc", FAST, log=lambda m: None)
        userdata.add("flows", folder / "flows.csv")
        dataset_training.train("flows", FAST, log=lambda m: None)
        yield folder


def problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def open_app(dataset: str | None = None, page: str | None = None, focus: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if focus:
        at.session_state["focus_detector"] = focus
    if dataset:
        at.session_state["dataset"] = dataset
    if page:
        at.switch_page(page)
    at.run()
    assert not problems(at), problems(at)
    return at


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_switch_lists_kdd_and_the_trained_datasets(data_dir):
    at = open_app()
    switch = next(s for s in at.sidebar.selectbox if s.label == "Dataset")
    assert switch.options[0].startswith("KDD Cup 99") and set(switch.options[1:]) == {"wdbc", "flows"}
    switch.set_value("wdbc").run()
    assert not problems(at), problems(at)
    board = table_with(at, "roc_auc")
    assert set(board.index) == {f"{d}@wdbc" for d in FAST}  # only the dataset's own detectors
    assert board["roc_auc"].max() >= 0.95  # the WDBC figure, on the dashboard
    assert not [r for r in at.sidebar.radio if r.label == "Label view"]  # one view: no switch to make


def test_overview_on_a_labelled_dataset_uses_its_labels_and_categories(data_dir):
    at = open_app("wdbc")
    test = userdata.load("wdbc").splits().test
    assert any(f"{len(test)} records of the test split of dataset" in c.value.replace(",", "") for c in at.caption)
    at.session_state["overview_section"] = "Detection rate per category"  # the tab the user opens
    at.run()
    heatmap = next(c for c in at.get("plotly_chart") if "Detection rate per anomaly category" in c.proto.spec)
    assert f"M ({int(test.label('label').sum())})" in heatmap.proto.spec  # the label's anomalous value is the category
    # Issue 28: a handful of test anomalies ranks nothing, and the page says so, with counts and intervals
    n = int(test.label("label").sum())
    assert any(f"only {n:,} anomalies" in w.value for w in at.warning)
    board = next(d.value for d in at.dataframe if "roc_auc" in d.value.columns)
    assert board["caught"].str.endswith(f"/ {n:,}").all() and board["roc_auc_ci"].str.contains("–").all()


def test_explorer_release_moves_the_dataset_threshold_everywhere(data_dir):
    name, view = "pca@wdbc", "label"
    at = open_app("wdbc", "app_pages/threshold_explorer.py", focus=name)
    payload = sent(at, name, view)
    assert payload["n"] == len(userdata.load("wdbc").splits().test)
    scores = np.sort(payload["grid"]["score"].to_numpy())
    value = float(scores[len(scores) // 2])
    release(at, value, name, view)
    at.switch_page("app_pages/flagged_records.py").run()
    assert not problems(at), problems(at)
    assert any(f"threshold **{value:.6g}**" in m.value for m in at.markdown)
    assert "dataset=wdbc" not in at.query_params or at.query_params["dataset"] == ["wdbc"]


def test_flagged_record_explains_with_the_users_column_names(data_dir):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["dataset"] = "wdbc"
    at.session_state["focus_detector"] = "mahalanobis@wdbc"
    at.session_state["flagged_record@wdbc"] = 0
    at.switch_page("app_pages/flagged_records.py").run()
    assert not problems(at), problems(at)
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["Label", "Label value", "Category"]
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "mean radius" in specs and "worst concave points" in specs  # percentiles and contributions per column
    assert not any("Connection" in m.value for m in at.markdown)  # KDD's connection line is KDD's only


def test_live_monitor_replays_the_datasets_test_split(data_dir):
    at = open_app("wdbc", "app_pages/live_monitor.py")
    replay = at.session_state["live_replay"]
    assert len(replay.scores) == len(userdata.load("wdbc").splits().test)
    assert at.session_state["live_replay_key"][0].endswith("@wdbc")


def test_score_an_upload_with_the_datasets_detectors(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ANODET_UPLOADS_DIR", str(tmp_path))
    store = dataset_training.open_store("wdbc")
    frame = wdbc_frame().head(80)  # with its label column, diagnosis (B normal, M anomalous)
    frame.iloc[3, 0] = np.nan  # one row that cannot be scored: listed, not dropped
    names = ["pca@wdbc", "mahalanobis@wdbc"]
    thresholds = {n: store.default_threshold(n, "label") for n in names}
    result = uploads.score_upload(io.BytesIO(frame.to_csv(index=False).encode()), "mine.csv", store, names, thresholds)
    summary = result.summary
    assert (summary.rows_read, summary.rows_scored, summary.rows_skipped) == (80, 79, 1)
    out = pd.read_csv(io.BytesIO(result.results_bytes()), compression="gzip")
    assert list(out.columns[:2]) == ["mean radius", "mean texture"] and "score_pca@wdbc" in out
    assert out.loc[3, "status"].startswith("skipped") and np.isnan(out.loc[3, "score_pca@wdbc"])
    # the dataset's own label rule: the confusion counts against diagnosis, in its one view
    assert summary.layout.label == "diagnosis" and set(summary.confusion) == {"label"}
    scored = out[out["status"] == "scored"]
    flag, anomaly = scored["flag_pca@wdbc"].astype(bool), scored["diagnosis"] == "M"
    assert summary.confusion["label"]["pca@wdbc"] == [int((flag & anomaly).sum()), int((flag & ~anomaly).sum()),
                                                       int((~flag & anomaly).sum()), int((~flag & ~anomaly).sum())]
    assert set(result.sample.labels_of("label")) <= {0, 1}


def test_score_and_stream_commands_take_the_dataset(data_dir, tmp_path, monkeypatch, capsys):
    csv = data_dir / "wdbc.csv"
    out = tmp_path / "scored.csv"
    env = {**os.environ, "ANODET_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "anodet", "score", "--dataset", "wdbc", "-", "-o", str(out),
                           "--detectors", "pca"], input=csv.read_bytes(), env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    scored = pd.read_csv(out)
    assert len(scored) == 367 and (scored["status"] == "scored").all()
    store = dataset_training.open_store("wdbc")
    assert (scored["flag_pca@wdbc"] == (scored["score_pca@wdbc"] >= store.default_threshold("pca@wdbc", "label"))).all()
    alerts = tmp_path / "alerts.jsonl"
    assert main(["stream", "--dataset", "wdbc", "--detector", "mahalanobis", "--input", str(csv),
                 "--alerts", str(alerts), "--status-every", "0"]) == 0
    flagged = int((dataset_training.open_store("wdbc").score_raw("mahalanobis@wdbc", pd.read_csv(csv))
                   >= store.default_threshold("mahalanobis@wdbc", "label")).sum())
    assert len(alerts.read_text().splitlines()) == flagged > 0
    assert main(["score", "--dataset", "wdbc", str(csv), "--store", str(tmp_path)]) == 2
    assert "leave out --store" in capsys.readouterr().err


def test_unlabelled_dataset_shows_scores_flags_and_says_curves_need_labels(data_dir):
    at = open_app("flows")
    assert any("no labels" in i.value for i in at.info)
    assert "share flagged" in table_with(at, "share flagged")
    assert not [t for t in at.toggle if "ceiling" in t.label]  # no labels, so no supervised ceiling to show
    at.switch_page("app_pages/threshold_explorer.py").run()
    assert not problems(at), problems(at)
    assert any("no labels" in i.value for i in at.info)
    typed = next(n for n in at.number_input if n.label == "Threshold (raw score)")
    typed.set_value(0.0).run()
    assert not problems(at), problems(at)
    at.switch_page("app_pages/flagged_records.py").run()
    assert not problems(at), problems(at)
    shown = table_with(at, "outcome")
    assert set(shown["outcome"]) == {"flagged"} and len(shown) == len(userdata.load("flows").splits().test)


def test_link_names_the_dataset_and_an_unknown_one_is_said(data_dir):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"] = "wdbc"
    at.switch_page("app_pages/threshold_explorer.py").run()
    assert not problems(at), problems(at)
    assert at.session_state["dataset"] == "wdbc"
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["dataset"] = "nope"
    at.query_params["detector"] = "pca"
    at.switch_page("app_pages/threshold_explorer.py").run()
    assert any("dataset nope is not one this server has trained" in w.value for w in at.warning)


def test_a_broken_dataset_store_says_how_to_retrain_that_dataset(data_dir, tmp_path):
    import shutil

    from anodet.store.core import Store, StoreError

    copy = tmp_path / "store"
    shutil.copytree(userdata.store_root("wdbc"), copy)
    (copy / "pca@wdbc" / "state.npz").unlink()
    with pytest.raises(StoreError, match=r"train --dataset wdbc") as caught:
        Store.open(copy).detector("pca@wdbc")
    assert "git checkout models_store" not in str(caught.value)  # KDD's remedy is not this store's
