"""The Score a CSV page through Streamlit's AppTest: uploads, bad input, thresholds, results."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from anodet.datasets.kdd_schema import FEATURES
from tests.conftest import kdd_frame

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "app_pages/score_csv.py"
FAST = ["pca", "zscore", "kmeans"]


def problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception]


@pytest.fixture
def page(store, splits) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page(PAGE).run()
    assert not problems(at) and not at.error, (problems(at), [e.value for e in at.error])
    at.multiselect(key="score_detectors").set_value(FAST).run()
    return at


def upload(at: AppTest, name: str, data: bytes, policy: str = "skip") -> AppTest:
    at.file_uploader(key="score_upload").set_value((name, data, "text/csv"))
    at.radio(key="score_policy").set_value(policy)
    at.run()
    at.button(key="score_go").click().run()
    assert not problems(at), problems(at)
    return at


def sample_csv(splits, n: int = 200, extra: dict | None = None) -> bytes:
    # normals and attacks
    rows = kdd_frame(splits.test).iloc[np.r_[0:n - n // 2,
                                             len(kdd_frame(splits.test)) - n // 2:len(kdd_frame(splits.test))]]
    frame = rows[list(FEATURES)[::-1]].copy()
    frame.insert(0, "id", range(n))
    frame["label"] = rows["attack"].to_numpy()
    for k, v in (extra or {}).items():
        frame[k] = v
    return frame.to_csv(index=False).encode()


def plain(markdown: str) -> str:
    """Text as the user reads it: the page escapes user-controlled text for Markdown."""
    return re.sub(r"\\(.)", r"\1", markdown)


def results_frame(at: AppTest) -> pd.DataFrame:
    """The full results file the download serves (gzip-compressed CSV on disk)."""
    return pd.read_csv(io.BytesIO(at.session_state["score_csv_result"]["result"].results_bytes()), compression="gzip")


def summary_of(at: AppTest):
    return at.session_state["score_csv_result"]["result"].summary


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_upload_scores_and_shows_counts_histogram_table_and_download(page, splits, store):
    at = upload(page, "mine.csv", sample_csv(splits))
    assert not at.error
    m = metrics(at)
    assert m["Rows read"] == "200" and m["Scored"] == "200" and m["Skipped"] == "0"
    frame = results_frame(at)
    assert len(frame) == 200 and list(frame.columns[:2]) == ["id", FEATURES[-1]]
    summary = summary_of(at)
    for name in FAST:  # thresholds from the explorer default (validation best F1, reference view)
        assert summary.thresholds[name] == pytest.approx(store.default_threshold(name, "reference"))
        assert summary.flagged[name] == int((frame[f"score_{name}"] >= summary.thresholds[name]).sum())
    assert len(at.get("plotly_chart")) == 2  # histogram and ROC (the file has labels)
    assert any("AUC" in k for k in m) and any("recall" in k.lower() for k in m)
    flagged = next(d.value for d in at.dataframe if "score_pca" in d.value.columns)
    assert len(flagged) == summary.flagged[at.selectbox(key="score_focus").value]
    assert at.get("download_button")  # example + results


def test_bad_rows_are_listed_and_skipped(page, splits):
    data = sample_csv(splits, 20).decode().splitlines()
    data[3] = data[3].replace(",", ",abc,", 1).replace(",abc,", ",", 1)  # unchanged row
    cells = data[5].split(",")
    cells[2] = "oops"
    data[5] = ",".join(cells)
    at = upload(page, "bad.csv", ("\n".join(data) + "\n").encode())
    m = metrics(at)
    assert m["Rows read"] == "20" and m["Skipped"] == "1" and m["Scored"] == "19"
    assert any("row 5:" in plain(w.value) and "'oops'" in plain(w.value) for w in at.warning)


def test_bad_rows_reject_shows_the_rows_and_no_results(page, splits):
    data = sample_csv(splits, 20).decode().replace("\n3,", "\n3,x", 1).encode()
    at = upload(page, "bad.csv", data, policy="reject")
    assert any("rejected" in plain(e.value) and "row 4" in plain(e.value) for e in at.error)
    assert "Rows read" not in metrics(at)


@pytest.mark.parametrize("name,data,message", [
    ("empty.csv", b"", "is empty"),
    ("header.csv", (",".join(FEATURES) + "\n").encode(), "header but no data rows"),
    ("book.csv", b"PK\x03\x04" + bytes(200), "Excel"),
    ("semi.csv", (";".join(FEATURES) + "\n" + ";".join(["0"] * 18) + "\n").encode(), "semicolons"),
    ("missing.csv", ("id," + ",".join(FEATURES[1:]) + "\n").encode(), "srv_count"),
    ("latin.csv", (",".join(FEATURES) + ",caf\xe9\n").encode("latin-1"), "not UTF-8"),
])
def test_bad_files_get_a_sentence_not_a_traceback(page, name, data, message):
    at = upload(page, name, data)
    assert any(message in plain(e.value) for e in at.error), [e.value for e in at.error]
    assert not at.exception


def test_gzip_upload_and_presets(page, splits, store):
    page.selectbox(key="score_threshold_source").set_value("target_fpr").run()
    at = upload(page, "mine.csv.gz", gzip.compress(sample_csv(splits, 50)))
    summary = summary_of(at)
    assert summary.layout.compressed and summary.rows_scored == 50
    assert summary.thresholds == {n: store.thresholds(n, "reference")["target_fpr"] for n in FAST}


def test_explorer_threshold_is_used(page, splits):
    page.session_state["thresholds"] = {"reference": {"pca": 0.0}}
    at = upload(page, "mine.csv", sample_csv(splits, 30))
    summary = summary_of(at)
    assert summary.thresholds["pca"] == 0.0 and summary.flagged["pca"] == 30


def test_example_file_and_unlabelled_histogram(page, splits):
    at = page
    at.button(key="score_go_example").click().run()
    assert not problems(at) and not at.error
    assert metrics(at)["Rows read"] == "400"
    unlabelled = pd.read_csv(pd.io.common.BytesIO(sample_csv(splits, 40))).drop(columns="label")
    at = upload(at, "nolabel.csv", unlabelled.to_csv(index=False).encode())
    assert metrics(at)["Rows read"] == "40"
    assert any("Add a `label` column" in i.value for i in at.info)
    assert np.isfinite(results_frame(at)["score_pca"]).all()
