"""The dashboard pages (overview, threshold explorer, flagged records) through Streamlit's AppTest.

These run the real ``app.py`` with the committed model store and the cached KDD splits; the
first test pays for loading and scoring (shared by the rest through ``st.cache_resource``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from anodet.app import loaders, ui
from anodet.datasets.kdd_schema import label_column
from anodet.evaluation import leaderboard, metrics
from anodet.evaluation.metrics import ThresholdCurve
from tests.conftest import kdd_frame
from tests.threshold_control import control, release, sent

APP = str(Path(__file__).resolve().parent.parent / "app.py")
ROOT_STORE = Path(__file__).resolve().parent.parent / "models_store"

EXPLORER = "app_pages/threshold_explorer.py"
FLAGGED = "app_pages/flagged_records.py"
OVERVIEW = "app_pages/overview.py"
DETECTOR = "autoencoder"  # the explorer's default: the first detector in the store


def problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


@pytest.fixture
def app(store, splits) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not problems(at), problems(at)
    return at


def open_section(at: AppTest, label: str) -> AppTest:
    """Click one of the Overview's section tabs (a tab's state is its label, as the browser sends it)."""
    at.session_state["overview_section"] = label
    at.run()
    assert not problems(at), problems(at)
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not problems(at), problems(at)
    return at


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table_with(at: AppTest, column: str):
    """The (first) table on the page that has ``column``; plain tables carry no key in AppTest."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def label_view_radio(at: AppTest):
    return next(r for r in at.sidebar.radio if r.label == "Label view")


def threshold(at: AppTest, name: str = DETECTOR) -> float:
    """The session's threshold in force: moved by hand, else the operating point's (the best-F1 preset here)."""
    view = at.session_state["label_view"] if "label_view" in at.session_state else "reference"
    moved = at.session_state["thresholds"].get(view, {}) if "thresholds" in at.session_state else {}
    if name in moved:
        return moved[name]
    from anodet.store.core import Store

    return Store.open(ROOT_STORE).default_threshold(name, view)


def grid_value(at: AppTest, share_flagged: float, name: str = DETECTOR, view: str = "reference") -> float:
    """The grid score (a value the handle can reach) that flags about ``share_flagged`` of the test records."""
    data = sent(at, name, view)
    grid = data["grid"]
    return float(grid["score"].iloc[int(np.argmin(np.abs(grid["flagged"] / data["n"] - share_flagged)))])


def in_force(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("In force on every page"))


def test_overview_shows_every_detector_with_metrics_at_its_threshold(app, store, splits):
    board = table_with(app, "roc_auc")
    assert len(board) == len(store.names)
    assert {"roc_auc", "pr_auc", "precision", "recall", "f1", "f2", "accuracy", "fpr"} <= set(board.columns)
    y = kdd_frame(splits.test)[label_column("reference")].to_numpy()
    # Until the user moves it, each detector's threshold is its validation best-F1 one.
    row = board.set_index("threshold").loc[store.default_threshold("pca", "reference")]
    assert row["detector"] == "PCA · kdd18" and row["feature_set"] == "kdd18" and not row["uses_labels"]
    assert 0 < row["precision"] <= 1 and 0 < y.mean() < 1
    # The first screen: the leaderboard, the ROC overlay and what the best detector misses; each other section
    # (detection rates, agreement, the pair compared) is drawn when its tab is opened
    assert [t.label for t in app.tabs] == ["What will it miss?", "Detection rate per category", "Agreement",
                                           "Compare two detectors"]
    assert [c.key for c in app.get("plotly_chart")] == ["overview_roc"]
    assert any("Caught" in d.value.columns or "caught" in d.value.columns for d in app.dataframe)
    for section, chart in (("Detection rate per category", "overview_rates"), ("Agreement", "overview_agreement"),
                           ("Compare two detectors", "overview_pair")):
        open_section(app, section)
        assert [c.key for c in app.get("plotly_chart")] == ["overview_roc", chart], section


def test_a_fresh_server_reads_the_intervals_back_with_the_scores(app, monkeypatch):
    from anodet.evaluation import comparison

    shown = table_with(app, "roc_auc_ci")[["detector", "roc_auc_ci", "pr_auc_ci", "tied"]]
    st.cache_resource.clear()  # a new server: nothing in memory, the score cache and its tables on disk

    def not_again(*args, **kwargs):
        raise AssertionError("the intervals were computed again instead of read from the score cache")

    monkeypatch.setattr(comparison, "threshold_free", not_again)
    fresh = AppTest.from_file(APP, default_timeout=300)
    fresh.run()
    assert not problems(fresh), problems(fresh)
    pd.testing.assert_frame_equal(table_with(fresh, "roc_auc_ci")[shown.columns], shown)


def test_the_true_view_uses_the_true_views_own_thresholds(app, store):
    """Issue 15, bug 2: the true view must not keep the reference view's thresholds."""
    label_view_radio(app).set_value("true").run()
    assert not problems(app)
    board = table_with(app, "roc_auc").set_index("detector")
    for name in store.names:
        label = store.entry(name).get("display_name", name)
        assert board.loc[label, "threshold"] == pytest.approx(store.default_threshold(name, "true")), name
    assert any("labels in the **true** view" in c.value and "each detector's best-F1 threshold" in c.value.replace(
        "\\", "") for c in app.caption)


def test_every_chart_lists_the_detectors_in_the_leaderboards_order(app):
    board = table_with(app, "roc_auc")
    detectors, ceiling = board[~board["uses_labels"]], board[board["uses_labels"]]
    assert detectors["roc_auc"].is_monotonic_decreasing
    # The supervised ceiling is a reference row: listed after every detector, whatever its ROC AUC.
    assert len(ceiling) == 2 and list(board.index[-2:]) == list(ceiling.index)
    assert open_section(app, "Compare two detectors").selectbox(key="overview_a").options == list(board["detector"])
    # The heat maps' rows follow the same order (AppTest exposes the charts' specs as JSON).
    import json

    for key, section in (("overview_rates", "Detection rate per category"), ("overview_agreement", "Agreement")):
        chart = next(c for c in open_section(app, section).get("plotly_chart") if c.key == key)
        assert json.loads(chart.proto.spec)["data"][0]["y"] == list(board["detector"]), key


def test_comparing_two_detectors_lists_what_each_flags_alone(app, store):
    open_section(app, "Compare two detectors").selectbox(key="overview_a").set_value("pca").run()
    app.selectbox(key="overview_b").set_value("iforest").run()
    assert not problems(app)
    thresholds = {n: store.default_threshold(n, "reference") for n in ("pca", "iforest")}
    scores = _scores()
    pca_only = int(np.sum((scores["pca"] >= thresholds["pca"]) & (scores["iforest"] < thresholds["iforest"])))
    forest_only = int(np.sum((scores["iforest"] >= thresholds["iforest"]) & (scores["pca"] < thresholds["pca"])))
    said = " ".join(m.value for m in app.markdown)
    assert f"**PCA · kdd18 flags, Isolation Forest · kdd18 passes**: {pca_only:,} records" in said
    assert f"**Isolation Forest · kdd18 flags, PCA · kdd18 passes**: {forest_only:,} records" in said
    board = table_with(app, "threshold").set_index("detector")
    deltas = next(d.value for d in app.dataframe if "difference" in d.value.columns).set_index("metric")
    auc = deltas.loc["ROC AUC"]
    assert auc["difference"] == pytest.approx(
        board.loc["Isolation Forest · kdd18", "roc_auc"] - board.loc["PCA · kdd18", "roc_auc"])
    low, high = (float(v) for v in auc["95 % CI"].split(" … "))
    assert low <= auc["difference"] <= high and 0 <= auc["p"] <= 1  # a paired interval and test beside it
    recall = deltas.loc["Recall at the threshold"]
    assert recall["difference"] == pytest.approx(
        board.loc["Isolation Forest · kdd18", "recall"] - board.loc["PCA · kdd18", "recall"])


def test_clicking_an_agreement_cell_compares_that_pair(app):
    board = table_with(app, "roc_auc")
    open_section(app, "Agreement")
    # What Streamlit 1.67 sends for a clicked heat-map cell: customdata as a dict of its items.
    app.session_state["overview_agreement"] = {"selection": {"points": [
        {"curve_number": 0, "point_index": [2, 4], "customdata": {"0": 2, "1": 4, "2": "10", "3": "20"}}],
        "point_indices": [], "box": [], "lasso": []}}
    app.run()
    assert not problems(app)

    assert app.session_state["overview_section"] == "Compare two detectors"  # the click opens the comparison
    shown = [loaders.display_name(app.selectbox(key=k).value) for k in ("overview_a", "overview_b")]
    assert shown == [board["detector"].iloc[2], board["detector"].iloc[4]]
    assert [c.key for c in app.get("plotly_chart")] == ["overview_roc", "overview_pair"]


def test_selecting_a_leaderboard_row_opens_that_detector_in_the_explorer(app):
    board = table_with(app, "roc_auc")
    app.session_state["overview_leaderboard"] = {"selection": {"rows": [3], "columns": [], "cells": []}}
    app.run()
    assert not problems(app)

    chosen = app.session_state[ui.FOCUS_KEY]
    assert loaders.display_name(chosen) == board["detector"].iloc[3]
    assert app.selectbox(key="explorer_detector").value == chosen  # now on the threshold explorer


@pytest.mark.parametrize("page", [EXPLORER, FLAGGED])
def test_each_dashboard_page_renders(app, page):
    goto(app, page)
    # every page draws at least one chart: plotly, or the explorer's threshold control
    assert app.get("plotly_chart") or app.get("bidi_component")


def test_the_control_is_sent_what_answers_any_threshold_in_the_browser(app, splits):
    goto(app, EXPLORER)
    data = sent(app)
    scores = _scores()[DETECTOR]
    y = kdd_frame(splits.test)[label_column("reference")].to_numpy()
    grid = data["grid"]
    # Every distinct test score, with exactly the records and attacks flagged at it, then "flag none".
    assert list(grid["score"].iloc[:-1]) == sorted(set(scores.tolist()))
    for i in (0, len(grid) // 3, len(grid) - 2, len(grid) - 1):
        t = grid["score"].iloc[i]
        assert grid["flagged"].iloc[i] == np.sum(scores >= t)
        assert grid["attacks"].iloc[i] == np.sum((scores >= t) & (y == 1))
    assert grid["flagged"].iloc[-1] == 0
    assert (data["n"], data["n_attacks"]) == (len(y), int(y.sum()))
    assert sum(data["hist"]["normal"]) + sum(data["hist"]["attack"]) == len(y)
    assert data["threshold"] == threshold(app)
    assert 0.9 < data["roc"]["auc"] < 1 and len(data["roc"]["x"]) == len(data["roc"]["y"])
    # A rerun sends only what changes: the browser keeps the static parts of this version.
    app.run()
    assert control(app).proto.WhichOneof("data") == "json" and len(control(app).proto.json) < 1000


def test_a_released_threshold_becomes_the_sessions_and_the_page_agrees(app, splits):
    goto(app, EXPLORER)
    value = grid_value(app, 0.5)
    release(app, value)
    assert threshold(app) == value
    flagged = np.mean(_scores()[DETECTOR] >= value)
    assert flagged == pytest.approx(0.5, abs=0.01)
    assert f"threshold **{value:.6g}** (moved by hand), flags {flagged:.1%} of the test records" in in_force(app)
    assert sent(app)["threshold"] == value  # the control is told, so it stays where it was released


def test_an_unusable_released_value_changes_nothing(app):
    goto(app, EXPLORER)
    before = threshold(app)
    for bad in (float("nan"), "0.5", None):
        states = app._tree.get_widget_states()
        state = states.widgets.add()
        state.id = control(app).proto.id
        state.json_value = json.dumps({"threshold": {"value": bad, "at": 1}})
        app._run(states)
        assert not problems(app) and threshold(app) == before


def _validation_scores() -> dict[str, np.ndarray]:
    """The validation scores the dashboard chooses thresholds on (what the page's session shares)."""
    from anodet.datasets.kdd import load_splits
    from anodet.scoring import cache
    from anodet.scoring.core import score_frame
    from anodet.store.core import Store

    store = Store.open(ROOT_STORE)
    return cache.split_scores(store, load_splits(), "validation", lambda f: score_frame(store, f))[0]


def _scores() -> dict[str, np.ndarray]:

    return loaders.get_test_scores()


@pytest.mark.parametrize("preset", ["best_accuracy", "best_f1", "mean_3sigma"])
def test_each_validation_preset_sets_its_threshold(app, store, preset):
    """A preset is a button inside the control: the browser moves the handle and sends its value back."""
    goto(app, EXPLORER)
    release(app, grid_value(app, 0.9))
    button = next(p for p in sent(app)["presets"] if p["key"] == preset)
    assert button["value"] == store.thresholds(DETECTOR, "reference")[preset]
    release(app, button["value"])  # what a click on the button sends
    assert threshold(app) == store.thresholds(DETECTOR, "reference")[preset]
    assert sent(app)["threshold"] == threshold(app)
    assert leaderboard.PRESET_LABELS[preset] in in_force(app)


def choose_point(at: AppTest, kind: str, **values: float) -> AppTest:
    """Choose an operating point in the sidebar as a user does: the kind, its numbers, then Apply."""
    at.sidebar.selectbox(key="op_kind").set_value(kind).run()
    inputs = {n.label: n for n in at.sidebar.number_input}
    for label, value in values.items():
        inputs[label].set_value(value)
    next(b for b in at.sidebar.button if b.label == "Apply to every detector").click().run()
    assert not problems(at), problems(at)
    return at


def test_an_operating_point_sets_every_detectors_threshold_on_the_validation_normals(app, store, splits):
    """Issue 27: the analyst's FPR of 0.01 %, chosen once, applied to every detector; the headline names the detector
    that catches most there, with its counts, and the split's resolution is said."""
    choose_point(app, "fpr", **{"Target FPR (%)": 0.01})
    y_val = splits.validation.label("reference")
    validation = {n: s for n, s in _validation_scores().items()}
    board = table_with(app, "roc_auc").set_index("detector")
    for name in store.names:
        normals = np.sort(validation[name][y_val == 0])
        t = board.loc[store.entry(name)["display_name"], "threshold"]
        assert np.mean(normals >= t) <= 1e-4 and np.mean(normals >= normals[normals < t].max()) > 1e-4, name
    detectors = board[~board["uses_labels"]]
    assert detectors.index[0] == "PCA · kdd18" and detectors["recall"].iloc[0] == detectors["recall"].max()
    said = " ".join(m.value for m in app.markdown)
    assert "**PCA · kdd18** catches the most: **163 of 2,000 attacks**" in said
    assert "**0 of 8,000** false alarms" in said
    assert any("finer than the 8,000 normal test records" in i.value for i in app.info)
    assert app.query_params["op"] == "fpr" and float(app.query_params["fpr"]) == pytest.approx(1e-4)


def test_what_will_it_miss_follows_the_best_at_the_operating_point_until_a_detector_is_chosen(app, store):
    """The Overview opened at the preset shows the best by ROC AUC; a new operating point moves "What will it miss?"
    (and its decision report) to the detector that catches most there, unless the user picked one."""
    first_row = table_with(app, "roc_auc")["detector"].iloc[0]
    assert store.entry(app.selectbox(key="overview_miss_detector").value)["display_name"] == first_row
    choose_point(app, "fpr", **{"Target FPR (%)": 0.01})
    assert app.selectbox(key="overview_miss_detector").value == "pca"
    assert "PCA · kdd18" in app.get("download_button")[0].proto.label
    app.selectbox(key="overview_miss_detector").set_value("iforest").run()
    choose_point(app, "fpr", **{"Target FPR (%)": 0.1})
    assert app.selectbox(key="overview_miss_detector").value == "iforest"  # the user's choice stays


def test_an_alert_budget_means_alerts_on_normal_traffic(app, store):
    """The budget preset took 0.01 % of every validation record (74.5 % attacks) and flagged nothing; 50 alerts a
    day for 500,000 records is an FPR of 0.01 % on normal records."""
    choose_point(app, "fpr", **{"Target FPR (%)": 0.01})
    by_fpr = table_with(app, "roc_auc").set_index("detector")["threshold"]
    choose_point(app, "budget", **{"Alerts/day": 50.0, "Records/day": 500_000.0})
    board = table_with(app, "roc_auc").set_index("detector")
    pd.testing.assert_series_equal(board["threshold"], by_fpr.loc[board.index])
    assert (board["flagged"] > 0).sum() > len(board) / 2
    assert board["alerts_per_day"].iloc[0] == pytest.approx(500_000 * board["fpr"].iloc[0])


def test_a_threshold_moved_by_hand_stays_until_the_operating_point_changes(app, store):
    goto(app, EXPLORER)
    release(app, grid_value(app, 0.3))
    moved_to = threshold(app)
    assert "(moved by hand)" in in_force(app)
    goto(app, OVERVIEW)
    assert table_with(app, "roc_auc").set_index("detector").loc["Autoencoder · kdd18", "threshold"] == moved_to
    choose_point(app, "cost", **{"A missed attack costs × a false alarm": 5.0})
    board = table_with(app, "roc_auc").set_index("detector")
    assert board.loc["Autoencoder · kdd18", "threshold"] != moved_to  # a new point: every detector follows it


def test_the_threshold_chosen_in_the_explorer_is_used_on_every_page(app, store):
    goto(app, EXPLORER)
    release(app, grid_value(app, 0.1))
    chosen = threshold(app)
    goto(app, OVERVIEW)
    board = table_with(app, "roc_auc").set_index("detector")
    assert board.loc["Autoencoder · kdd18", "threshold"] == pytest.approx(chosen)
    assert board.loc["Autoencoder · kdd18", "flagged"] == int(np.sum(_scores()[DETECTOR] >= chosen))
    goto(app, FLAGGED)
    assert any(f"{int(np.sum(_scores()[DETECTOR] >= chosen)):,}" in m.value for m in app.markdown)
    goto(app, EXPLORER)  # and coming back, the control is where it was left
    assert sent(app)["threshold"] == chosen


def test_label_view_switch_changes_the_numbers(app):
    board_reference = table_with(app, "roc_auc").set_index("detector")
    label_view_radio(app).set_value("true").run()
    assert not problems(app)
    board_true = table_with(app, "roc_auc").set_index("detector")
    assert not np.allclose(board_reference["roc_auc"], board_true.loc[board_reference.index, "roc_auc"])


@pytest.mark.parametrize("page", [EXPLORER, FLAGGED])
def test_other_pages_follow_the_label_view(app, page):
    # AppTest drops the main script's sidebar after switch_page (Streamlit 1.67), so the view is
    # set through session state here; the browser test flips the real switch.
    goto(app, page)
    shown = {"reference": None, "true": None}
    for view in shown:
        app.session_state["label_view"] = view
        app.run()
        assert not problems(app)
        shown[view] = (sent(app, view=view)["n_attacks"], in_force(app)) if page == EXPLORER else list(
            table_with(app, "outcome")["outcome"])
    assert shown["reference"] != shown["true"]


def test_compare_two_detectors_side_by_side(app):
    goto(app, EXPLORER)
    app.selectbox(key="explorer_compare").set_value("pca").run()
    assert not problems(app)
    assert {e.key for e in app.get("bidi_component")} == {f"threshold_control_{DETECTOR}_reference",
                                                         "threshold_control_pca_reference"}
    before = threshold(app, DETECTOR)
    release(app, grid_value(app, 0.05, "pca"), "pca")
    assert threshold(app, "pca") == grid_value(app, 0.05, "pca")
    assert threshold(app, DETECTOR) == before  # each control has its own threshold


def _table_key(at: AppTest) -> str:
    return next(d.key for d in at.dataframe if d.key and d.key.startswith("flagged_table"))


def test_selecting_a_record_shows_its_detail(app, splits, store):
    goto(app, FLAGGED)
    table = app.dataframe(key=_table_key(app)).value
    assert (table["score"].diff().dropna() <= 0).all(), "sorted by score, highest first"
    assert set(table["outcome"]) <= {"true positive", "false positive"}  # flagged records by default
    app.session_state[_table_key(app)] = {"selection": {"rows": [3], "columns": [], "cells": []}}
    app.run()
    assert not problems(app)
    record_id = int(table.iloc[3]["record"])
    record = kdd_frame(splits.test).loc[record_id]
    assert app.subheader[-1].value == f"Record {record_id}"
    shown = metric_values(app)
    assert shown["Attack name"] == record["attack"] and shown["Category"] == record["category"]
    assert shown["Label"] == ("attack" if record[label_column("reference")] == 1 else "normal")
    verdicts = table_with(app, "verdict").set_index("detector")
    position = kdd_frame(splits.test).index.get_loc(record_id)
    assert len(verdicts) == len(store.names)
    assert verdicts.loc["PCA · kdd18", "score"] == pytest.approx(_scores()["pca"][position])
    assert len(app.get("plotly_chart")) >= 3  # histogram, feature percentiles, feature contributions


def test_outcome_filter_lists_missed_attacks(app):
    goto(app, FLAGGED)
    app.button_group(key="flagged_outcomes").set_value(["missed attack"]).run()
    table = app.dataframe(key=_table_key(app)).value
    assert len(table) and set(table["outcome"]) == {"missed attack"}
    assert set(table["label"]) == {"attack"}


def test_missing_store_says_which_command_fixes_it(tmp_path, monkeypatch, splits):
    monkeypatch.setenv("ANODET_STORE", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert any("python -m anodet train" in e.value for e in at.error)


def test_threshold_curve_and_metrics_agree_on_the_real_scores(splits):
    """What the slider shows (ThresholdCurve) is what a full pass over the records gives."""
    y = kdd_frame(splits.test)[label_column("true")].to_numpy()
    s = _scores()["ensemble"]
    curve = ThresholdCurve.from_scores(y, s)
    for p in (5.0, 50.0, 99.0):
        t = float(np.percentile(s, p))
        assert curve.metrics(t) == metrics.metrics_at(y, s, t)


def test_scores_shown_are_the_detectors_own_scores(splits):
    """The dashboard's scores (possibly read back from the on-disk cache) are what each detector gives."""

    store = loaders.get_store()
    X = kdd_frame(splits.test)  # the whole split: LOF's scores depend a little on the batch
    for name, scores in _scores().items():
        np.testing.assert_allclose(scores, store.score_raw(name, X), rtol=1e-4, atol=1e-6, err_msg=name)


def _hist_key(at: AppTest) -> str:
    return next(c.key for c in at.get("plotly_chart") if c.key and c.key.startswith("flagged_hist"))


def test_clicking_a_histogram_bar_lists_its_records_and_opens_the_top_one(app):
    """Issue 15, bug 1: Streamlit 1.67 sends a bar's customdata as a dict; the page crashed on it."""
    goto(app, FLAGGED)
    table = app.dataframe(key=_table_key(app)).value
    attacks = table[table["label"] == "attack"]
    lo, hi = float(attacks["score"].iloc[-1]), float(attacks["score"].iloc[len(attacks) // 2])
    app.session_state[_hist_key(app)] = {"selection": {"points": [
        {"curve_number": 1, "point_number": 7, "point_index": 7, "customdata": {"0": lo, "1": hi}}],
        "point_indices": [7], "box": [], "lasso": []}}
    app.run()
    assert not problems(app)
    listed = app.dataframe(key=_table_key(app)).value
    expected = attacks[(attacks["score"] >= lo) & (attacks["score"] <= hi)]
    assert len(listed) == len(expected) and set(listed["label"]) == {"attack"}
    assert app.subheader[-1].value == f"Record {int(listed.iloc[0]['record'])}"


def test_previous_and_next_step_through_the_listed_records(app):
    goto(app, FLAGGED)
    table = app.dataframe(key=_table_key(app)).value
    app.session_state[_table_key(app)] = {"selection": {"rows": [5], "columns": [], "cells": []}}
    app.run()
    app.button(key="flagged_next").click().run()
    assert app.subheader[-1].value == f"Record {int(table.iloc[6]['record'])}"
    app.button(key="flagged_previous").click().run()
    app.button(key="flagged_previous").click().run()
    assert not problems(app)
    assert app.subheader[-1].value == f"Record {int(table.iloc[4]['record'])}"


def test_a_detector_without_a_breakdown_is_explained_by_itself_and_says_how(app, splits):
    app.session_state["focus_detector"] = "iforest"
    goto(app, FLAGGED)
    app.session_state[_table_key(app)] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    app.run()
    assert not problems(app)
    assert any("Method: perturbation" in c.value for c in app.caption)
    chart = next(c for c in app.get("plotly_chart") if c.key == "flagged_contributions")
    import json

    assert "Isolation Forest" in json.loads(chart.proto.spec)["layout"]["title"]["text"]
    assert not any(s.key == "flagged_explainer" for s in app.selectbox)  # no silent fallback to another one


def test_a_record_opened_elsewhere_shows_its_detail(app, splits):
    app.session_state["flagged_record"] = 42
    goto(app, FLAGGED)
    assert app.subheader[-1].value == f"Record {kdd_frame(splits.test).index[42]}"
    # Its raw connection fields are shown too (read from the raw test file).
    connection = next(m.value for m in app.markdown if m.value.startswith("**Connection**"))
    assert "protocol **" in connection and "bytes sent **" in connection


def test_presets_say_their_value_and_test_share_and_the_page_says_which_is_in_force(app, store):
    """Best accuracy often equals best F1: the buttons say so, and the line under the control says which is in force."""
    goto(app, EXPLORER)
    presets = store.thresholds(DETECTOR, "reference")
    buttons = {p["key"]: p for p in sent(app)["presets"]}
    assert buttons["best_f1"]["label"] == "Best F1 (default)"  # the default threshold is the view's best F1
    assert (f"{presets['best_f1']:.6g}" in buttons["best_f1"]["help"]
            and "of the test records" in buttons["best_f1"]["help"])
    assert "Best F1" in in_force(app) and "the operating point's" in in_force(app)
    release(app, grid_value(app, 0.9))
    assert "moved by hand" in in_force(app)
    assert app.button(key=f"op_back_{DETECTOR}").label == "Back to the operating point"
    app.button(key=f"op_back_{DETECTOR}").click().run()
    assert threshold(app) == store.default_threshold(DETECTOR, "reference")
    if np.isclose(presets["best_accuracy"], presets["best_f1"]):
        assert "The same value as Best F1" in buttons["best_accuracy"]["help"]


def test_a_link_reproduces_the_explorers_state_and_says_what_it_could_not_use(store, splits):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params = {"view": "true", "detector": "pca", "compare": "zscore",
                       "threshold": ["pca:0.5", "zscore:high", "nosuch:1"]}
    at.run()
    assert at.session_state["label_view"] == "true"  # the sidebar's switch follows the link
    at.session_state["label_view"] = "true"  # AppTest drops the sidebar after switch_page (see above)
    goto(at, EXPLORER)
    assert at.selectbox(key="explorer_detector").value == "pca"
    assert at.selectbox(key="explorer_compare").value == "zscore"
    assert at.session_state["thresholds"]["true"]["pca"] == 0.5
    assert sent(at, "pca", "true")["threshold"] == 0.5
    warnings = " ".join(w.value for w in at.warning)
    assert "zscore" in warnings and "not a finite number" in warnings and "nosuch" in warnings
    # The page writes its state back: a link copied now reproduces it.
    at.session_state["label_view"] = "true"
    release(at, grid_value(at, 0.2, "pca", "true"), "pca", "true")
    chosen = at.session_state["thresholds"]["true"]["pca"]
    assert at.query_params["view"] == "true" and at.query_params["detector"] == "pca"
    assert f"pca:{chosen!r}" in at.query_params["threshold"]


def test_exported_thresholds_import_back_and_a_bad_file_is_one_sentence(app, store):
    from anodet.evaluation import thresholds as threshold_files

    goto(app, EXPLORER)
    release(app, grid_value(app, 0.3))
    chosen = threshold(app)
    exported = threshold_files.thresholds_document(app.session_state["thresholds"]["reference"], "reference")
    app.session_state["thresholds"] = {}  # another session (or a colleague) opens the page
    app.run()
    assert threshold(app) == store.default_threshold(DETECTOR, "reference")
    app.file_uploader(key="import_thresholds").set_value(("anodet-thresholds-reference.json", exported,
                                                          "application/json")).run()
    assert not problems(app)
    assert threshold(app) == chosen and sent(app)["threshold"] == chosen
    assert any("Imported" in s.value for s in app.success)
    app.file_uploader(key="import_thresholds").set_value(("notes.json", b'{"thresholds": 3}', "application/json")).run()
    assert not app.exception
    assert any("notes" in e.value and "is not an anodet thresholds file" in e.value for e in app.error)
    assert threshold(app) == chosen  # nothing changed
