"""The Your data page through Streamlit's AppTest: upload, confirm the columns, train in the background, leaderboard."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from anodet.datasets import userdata
from anodet.detectors import REGISTRY
from anodet.training import jobs
from tests.conftest import odds_files, wdbc_frame

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "app_pages/your_data.py"
FAST = ["pca", "zscore", "mahalanobis", "kmeans"]
CLASSICAL = ["pca", "ocsvm", "iforest", "lof", "kmeans", "zscore", "mahalanobis", "ecod", "knn"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Datasets and uploads go to a temporary data folder, never into the repository."""
    folder = tmp_path / "data"
    monkeypatch.setenv("ANODET_DATA_DIR", str(folder))
    yield folder
    for name in ("wdbc", "wdbc-full"):
        job = jobs.get(name)
        if job is not None:
            job.wait(600)
        jobs.forget(name)


def wdbc_csv() -> bytes:
    return wdbc_frame().to_csv(index=False).encode()


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with ``column`` (AppTest does not expose a dataframe's key)."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column")


def plain(markdown: str) -> str:
    """Text as the user reads it: the page escapes user-controlled text for Markdown."""
    return re.sub(r"\\(.)", r"\1", markdown)


def problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(PAGE).run()
    assert not problems(at) and not errors(at), (problems(at), errors(at))
    return at


def upload(at: AppTest, name: str, data: bytes, gen: int = 0) -> AppTest:
    at.file_uploader(key=f"yd_train_file_{gen}").set_value((name, data, "text/csv")).run()
    assert not problems(at), problems(at)
    return at


def wait_for_job(name: str, timeout: float = 300.0) -> jobs.Job:
    deadline = time.monotonic() + timeout
    job = jobs.get(name)
    while job is not None and job.active and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job is not None and not job.active, "training did not end in time"
    return job


def add_wdbc(at: AppTest, name: str = "wdbc") -> AppTest:
    upload(at, "wdbc.csv", wdbc_csv())
    assert not errors(at), errors(at)
    assert at.text_input(key="yd_name_0").value == "wdbc"
    at.text_input(key="yd_name_0").set_value(name)
    at.selectbox(key="yd_label_0").set_value("diagnosis").run()
    at.text_input(key="yd_normal_0").set_value("B")
    at.run()
    assert not errors(at), errors(at)
    columns = table(at, "role")
    roles = dict(zip(columns["column"], columns["role"], strict=True))
    assert roles["diagnosis"] == "label" and roles["mean radius"] == "feature"
    assert (columns.loc[columns["role"] == "feature", "kind"] != "").all()
    assert any("Labels in" in m.value and "M: 10" in m.value for m in at.markdown)
    at.button(key="yd_add_0").click().run()
    assert not problems(at) and not errors(at), (problems(at), errors(at))
    assert any(f"Dataset {name} added" in plain(s.value) for s in at.success)
    return at


def test_page_without_datasets_says_so(page):
    assert any("No dataset yet" in i.value for i in page.info)
    assert page.file_uploader(key="yd_train_file_0") is not None


def test_wdbc_upload_confirm_train_leaderboard(page, data_dir):
    at = add_wdbc(page)
    catalogue = table(at, "trained")
    assert list(catalogue["dataset"]) == ["wdbc"] and bool(catalogue["labelled"][0]) and not catalogue["trained"][0]
    assert at.selectbox(key="yd_dataset").value == "wdbc"
    # the upload left data/uploads and was kept with the dataset, all under the temporary data folder
    assert (data_dir / "datasets" / "wdbc" / "input" / "train.csv").is_file()
    assert not any((data_dir / "uploads").glob("*/train.csv"))
    # the quick preset is offered first and chosen, each preset with its estimated fit time
    preset = at.radio(key="yd_preset_wdbc")
    assert preset.value == "quick" and [o.split(":")[0] for o in preset.options] == ["Quick", "Full"]
    assert re.search(r"\(about \d+(\.\d)? s\)$", preset.options[0]), preset.options
    assert re.search(r"\(up to \d+(\.\d)? (s|min)\)$", preset.options[1]), preset.options
    assert at.multiselect(key="yd_detectors_wdbc").value == CLASSICAL
    preset.set_value("full").run()
    assert at.multiselect(key="yd_detectors_wdbc").value == list(REGISTRY)
    at.multiselect(key="yd_detectors_wdbc").set_value(FAST)
    at.button(key="yd_train_go").click().run()
    assert not problems(at) and not errors(at), (problems(at), errors(at))
    job = wait_for_job("wdbc")
    assert job.status == jobs.DONE, job.error
    assert job.snapshot()["trained"] == sorted(f"{k}@wdbc" for k in FAST)
    at.run()
    assert not problems(at) and not errors(at), (problems(at), errors(at))
    board = table(at, "roc_auc")
    assert len(board) == len(FAST) and board["roc_auc"].max() >= 0.95, board
    anomalies = int(userdata.load("wdbc").splits().test.label("label").sum())  # WDBC's test split: a handful
    assert board["caught"].str.endswith(f"/ {anomalies:,}").all()  # each recall with the count it rests on
    assert any(f"only {anomalies:,} anomalies" in w.value for w in at.warning)  # too few to rank on, said so
    best = {m.label: m.value for m in at.metric}["Best test ROC AUC"]
    assert float(best) >= 0.95
    assert table(at, "trained")["trained"][0]


def test_normal_records_to_train_on_and_a_labelled_test_file_keep_the_labels(page, tmp_path):
    """Issue 26's most common set-up, from the page: the training file has no label column, the test file has it.
    The label is suggested from the test file (uploaded second, as users do), the page says the training rows are
    taken as normal, the dataset keeps the test file's labels, and the quick preset ranks it by ROC AUC."""
    train, test = odds_files(tmp_path)
    page.file_uploader(key="yd_train_file_0").set_value(("normals.csv", train.read_bytes(), "text/csv")).run()
    assert at_label(page) == "(none)"  # nothing in the training file looks like a label
    page.file_uploader(key="yd_test_file_0").set_value(("labelled.csv", test.read_bytes(), "text/csv")).run()
    assert not problems(page) and not errors(page), (problems(page), errors(page))
    assert at_label(page) == "diagnosis"  # the one column only the test file has
    said = " ".join(plain(m.value) for m in page.markdown)
    assert "The training file has no column **diagnosis**: its rows are taken as normal records" in said
    page.text_input(key="yd_name_0").set_value("wdbc")
    page.text_input(key="yd_normal_0").set_value("B")
    page.selectbox(key="yd_id_0").set_value("patient_id")
    page.run()
    page.button(key="yd_add_0").click().run()
    assert not problems(page) and not errors(page), (problems(page), errors(page))
    added = plain(page.success[0].value)
    assert "Dataset wdbc added" in added and "a stratified half of the labelled test file" in added
    splits = userdata.load("wdbc").splits()
    assert int(splits.validation.label("label").sum()) + int(splits.test.label("label").sum()) == 10  # none dropped
    assert page.radio(key="yd_preset_wdbc").value == "quick"
    page.button(key="yd_train_go").click().run()
    assert wait_for_job("wdbc").status == jobs.DONE
    page.run()
    board = table(page, "roc_auc")
    assert len(board) == len(CLASSICAL) and board["roc_auc"].max() >= 0.95, board


def at_label(at: AppTest) -> str:
    return at.selectbox(key="yd_label_0").value


def test_second_training_of_the_same_dataset_is_refused_while_one_runs(page):
    add_wdbc(page)
    release = []

    def slow_train(name, detectors, **kw):
        kw["progress"](0, 1, "pca@wdbc")
        while not release:
            time.sleep(0.01)
        raise ValueError("boom")

    job = jobs.start("wdbc", ["pca"], trainer=slow_train)
    try:
        with pytest.raises(jobs.JobError, match="already being trained"):
            jobs.start("wdbc", ["pca"])
        page.run()
        assert not problems(page)
        bars = [plain(p.proto.text) for p in page.get("progress")]
        assert any("Training PCA: detector 1 of 1" in t for t in bars), bars
        assert jobs.catalogue()[0]["training now"]
    finally:
        release.append(True)
    assert job.wait(30) and job.status == jobs.FAILED
    assert job.error is not None and "ValueError" in job.error and "\n" not in job.error
    page.run()
    assert not problems(page)
    assert any("unexpected ValueError" in e for e in errors(page)), errors(page)


def test_file_without_numeric_columns_is_one_sentence(page):
    frame = pd.DataFrame({"proto": ["tcp", "udp", "icmp"] * 20, "flag": ["SF", "REJ"] * 30})
    at = upload(page, "words.csv", frame.to_csv(index=False).encode())
    assert len(errors(at)) == 1, errors(at)
    sentence = errors(at)[0]
    assert "no usable numeric column" in sentence and "words" in sentence and "uploads" not in sentence
    assert not any(b.key == "yd_add_0" for b in at.button)


def test_not_a_table_is_one_sentence(page):
    at = upload(page, "broken.csv", b"a,b\n1,2,3,4\n\x00\x01")
    assert len(errors(at)) <= 1 and not problems(at)


def test_bad_name_is_one_sentence(page):
    at = upload(page, "wdbc.csv", wdbc_csv())
    at.text_input(key="yd_name_0").set_value("kdd-mine").run()
    at.button(key="yd_add_0").click().run()
    assert not problems(at)
    assert len(errors(at)) == 1 and "kdd" in errors(at)[0]


@pytest.mark.slow
def test_wdbc_whole_family_from_the_page(page):
    at = add_wdbc(page, "wdbc-full")
    at.radio(key="yd_preset_wdbc-full").set_value("full").run()
    at.button(key="yd_train_go").click().run()
    job = wait_for_job("wdbc-full", timeout=1800)
    assert job.status == jobs.DONE, job.error
    at.run()
    board = table(at, "roc_auc")
    assert board["roc_auc"].max() >= 0.95



def test_single_class_label_on_confirm_is_one_sentence_and_leaves_nothing(page, data_dir):
    frame = pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0) % 7, "label": ["normal"] * 50})
    at = upload(page, "one-class.csv", frame.to_csv(index=False).encode())
    at.selectbox(key="yd_label_0").set_value("label").run()
    assert not problems(at)
    if not errors(at):  # the library may accept the file at inspection and refuse it when the splits are built
        at.button(key="yd_add_0").click().run()
    assert not problems(at)
    assert len(errors(at)) == 1, errors(at)
    sentence = plain(errors(at)[0])
    assert "one class only" in sentence and "'Label column'" in sentence and "--label" not in sentence
    assert "input" not in sentence and "uploads" not in sentence
    assert not (data_dir / "datasets" / "one-class").exists()


def test_uploads_stay_under_the_data_folder(data_dir):
    from anodet.datasets import uploads

    path = uploads.save("../../etc/x", "train", "../../evil name.PARQUET", io.BytesIO(b"a"))
    assert path.resolve().is_relative_to(data_dir.resolve()) and path.name == "train.parquet"
    uploads.discard([path])
    assert not path.parent.exists() and (data_dir / "uploads").is_dir()
