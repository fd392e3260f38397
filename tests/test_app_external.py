"""External detectors on every page, through Streamlit's AppTest: the Overview's leaderboard, charts and agreement,
the threshold explorer, Flagged records (the external detector's verdict per record), the Live monitor, Score a CSV
(left out: it cannot score), and adding scores from the Your data page.

The external detector "mine" is the committed PCA's scores handed over as a file, so every number it shows must be
PCA's; "testonly" came without validation scores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from anodet.datasets import uploads
from anodet.external import kept
from anodet.scoring.core import score_frame
from tests.threshold_control import release, sent

APP = str(Path(__file__).resolve().parent.parent / "app.py")
VIEW = "reference"


@pytest.fixture(scope="module")
def externals(tmp_path_factory, store, splits):
    folder = tmp_path_factory.mktemp("external")
    files = tmp_path_factory.mktemp("files")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANODET_EXTERNAL_DIR", str(folder))
        frames = {s: pd.DataFrame({"record": splits.part(s).record_id,
                                   "score": score_frame(store, splits.part(s).rows, ["pca"])["pca"]})
                  for s in ("test", "validation")}
        pd.concat(frames.values()).to_csv(files / "mine.csv", index=False)
        frames["test"].to_csv(files / "testonly.csv", index=False)
        kept.add("mine", "kdd", files / "mine.csv")
        kept.add("testonly", "kdd", files / "testonly.csv")
        yield {"folder": folder, "files": files, **frames}


def problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def open_page(page: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    for key, value in state.items():
        at.session_state[key] = value
    if page:
        at.switch_page(page)
    at.run()
    assert not problems(at), problems(at)
    return at


def plain(markdown: str) -> str:
    """Text as the user reads it: the page escapes user-controlled text for Markdown."""
    return re.sub(r"\\(.)", r"\1", markdown)


def board(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "roc_auc" in d.value.columns)


def test_overview_ranks_external_detectors_beside_the_stored_ones(externals, store):
    at = open_page()
    table = board(at)
    assert set(table.index) == {*store.names, "mine", "testonly"}
    assert table.loc["mine", "detector"] == "mine · external" and table.loc["mine", "feature_set"] == "external"
    for column in ("roc_auc", "pr_auc", "precision", "recall", "f1", "flagged"):
        assert table.loc["mine", column] == table.loc["pca", column], column
    assert table.loc["testonly", "roc_auc"] == table.loc["pca", "roc_auc"]
    shown_in = []
    for section in ("What will it miss?", "Detection rate per category", "Agreement"):  # the tabs a user opens
        at.session_state["overview_section"] = section
        at.run()
        assert not problems(at), problems(at)
        specs = [json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("plotly_chart")]
        shown_in += [spec for spec in specs if "mine · external" in spec]
    assert len(shown_in) >= 5  # ROC curves (on every section's screen), detection rate per category, agreement


def test_explorer_moves_an_external_detectors_threshold_everywhere(externals):
    at = open_page("app_pages/threshold_explorer.py", focus_detector="mine")
    payload = sent(at, "mine", VIEW)
    assert payload["n"] == 10_000
    assert any("This detector's threshold there" in c.value for c in at.caption)  # chosen on its validation scores
    value = float(payload["grid"]["score"].iloc[len(payload["grid"]) // 2])
    release(at, value, "mine", VIEW)
    at.switch_page("app_pages/flagged_records.py").run()
    assert not problems(at), problems(at)
    assert any(f"threshold **{value:.6g}**" in m.value for m in at.markdown)


def test_explorer_without_validation_scores_says_why_there_are_no_presets(externals):
    at = open_page("app_pages/threshold_explorer.py", focus_detector="testonly")
    assert sent(at, "testonly", VIEW)["n"] == 10_000
    assert any("came without" in c.value for c in at.caption)


def test_flagged_records_give_the_external_verdict_per_record(externals, splits):
    at = open_page("app_pages/flagged_records.py", focus_detector="mine", flagged_record=0)
    assert any("is an external detector" in i.value for i in at.info)  # no model: no per-feature split
    verdicts = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    row = verdicts[verdicts["detector"] == "mine · external"].iloc[0]
    expected = externals["test"]["score"].iloc[0]
    assert row["score"] == pytest.approx(expected) and row["verdict"] in ("flagged", "passed")
    assert verdicts[verdicts["detector"] == "PCA · kdd18"].iloc[0]["score"] == pytest.approx(expected)


def test_score_csv_leaves_external_detectors_out_and_the_live_monitor_replays_them(externals):
    at = open_page("app_pages/score_csv.py")
    picker = next(m for m in at.multiselect if m.label == "Detectors")
    assert "mine" not in picker.options and "external detectors are left out" in (picker.help or "").lower()
    at = open_page("app_pages/live_monitor.py", live_detector="mine")
    assert not problems(at)
    replay = at.session_state["live_replay"]
    assert replay.scores.tolist() == pytest.approx(externals["test"]["score"].to_numpy()[replay.order].tolist())


def test_scores_added_from_the_your_data_page_show_on_the_overview(externals, tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "uploads_root", lambda: tmp_path / "uploads")
    at = open_page("app_pages/your_data.py")
    data = (externals["files"] / "mine.csv").read_bytes()
    at.text_input(key="yd_ext_name_0").set_value("uploaded")
    at.file_uploader(key="yd_ext_file_0").set_value(("my scores.csv", data, "text/csv")).run()
    at.button(key="yd_ext_add").click().run()
    assert not problems(at), problems(at)
    assert any("uploaded (uploaded · external), dataset kdd" in plain(s.value)
               for s in at.success), [s.value for s in at.success]
    doc = json.loads((externals["folder"] / "kdd" / "uploaded" / "external.json").read_text())
    assert doc["source"]["file"] == "my scores.csv" and not list((tmp_path / "uploads").glob("*/*"))
    at.switch_page("app_pages/overview.py").run()
    assert board(at).loc["uploaded", "roc_auc"] == board(at).loc["pca", "roc_auc"]


def test_a_bad_upload_is_one_sentence_naming_the_users_file(externals, tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "uploads_root", lambda: tmp_path / "uploads")
    at = open_page("app_pages/your_data.py")
    frame = pd.read_csv(externals["files"] / "testonly.csv").iloc[10:]
    at.text_input(key="yd_ext_name_0").set_value("short")
    at.file_uploader(key="yd_ext_file_0").set_value(("short.csv", frame.to_csv(index=False).encode(), "text/csv"))
    at.run()
    at.button(key="yd_ext_add").click().run()
    assert [e.value for e in at.exception] == []
    sentence = plain(at.error[0].value)
    assert "10 of the 10,000 test records have no score in short.csv" in sentence and "uploads" not in sentence
    assert not (externals["folder"] / "kdd" / "short").exists()
