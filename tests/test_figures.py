"""Figures and dashboard computations: pure functions of arrays, checked without Streamlit."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anodet.app import figures, layout, records
from anodet.app.threshold_control.payload import grid_position, threshold_grid
from anodet.datasets.kdd_schema import RAW_COLUMNS
from anodet.datasets.model import Part
from anodet.detectors import explain
from anodet.evaluation import agreement, leaderboard, metrics
from anodet.evaluation.metrics import ThresholdCurve
from tests.conftest import kdd_frame

RNG = np.random.default_rng(7)


def heavy_tailed(n_normal: int = 800, n_attack: int = 200) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate([RNG.lognormal(-6, 1, n_normal), RNG.lognormal(0, 1, n_attack)])
    y = np.r_[np.zeros(n_normal, int), np.ones(n_attack, int)]
    return scores, y


# --- figures -----------------------------------------------------------------------------------


def test_histogram_counts_every_record_once_and_uses_log_bins_for_heavy_tails():
    scores, y = heavy_tailed()
    bins = figures.histogram_bins(scores, y, bins=50)
    assert bins.log_x
    assert bins.normal.sum() == 800 and bins.attack.sum() == 200
    assert len(bins.edges) == 51


def test_histogram_falls_back_to_linear_bins_for_scores_that_can_be_negative():
    scores = np.r_[RNG.normal(0, 1, 500), RNG.normal(5, 1, 100)]
    y = np.r_[np.zeros(500, int), np.ones(100, int)]
    bins = figures.histogram_bins(scores, y)
    assert not bins.log_x
    assert bins.normal.sum() + bins.attack.sum() == 600


def test_score_histogram_draws_normal_and_attack_in_house_colours_with_the_threshold_line():
    scores, y = heavy_tailed()
    bins = figures.histogram_bins(scores, y)
    fig = figures.score_histogram(bins, threshold=0.05, log_count=True)
    normal, attack = fig.data
    assert (normal.name, normal.marker.color) == ("normal", figures.NORMAL_COLOUR)
    assert (attack.name, attack.marker.color) == ("attack", figures.ATTACK_COLOUR)
    assert fig.layout.shapes[0].x0 == pytest.approx(np.log10(0.05))  # the axis is in log10 units
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    # Each bar carries its raw bin edges, so a selected bar maps back to records.
    np.testing.assert_allclose(np.asarray(normal.customdata)[:, 0], bins.edges[:-1])


def test_moving_the_threshold_moves_only_the_line():
    bins = figures.histogram_bins(*heavy_tailed())
    a, b = figures.score_histogram(bins, 0.01), figures.score_histogram(bins, 1.0)
    assert a.layout.shapes[0].x0 != b.layout.shapes[0].x0
    np.testing.assert_array_equal(a.data[0].y, b.data[0].y)


def test_roc_figure_marks_each_operating_point():
    fpr, tpr = np.linspace(0, 1, 50), np.sqrt(np.linspace(0, 1, 50))
    fig = figures.roc_figure({"a": (fpr, tpr), "b": (fpr, tpr**2)}, {"a": 0.9, "b": 0.6},
                             {"a": (0.1, 0.8), "b": (0.2, 0.3)}, log_fpr=True)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert [(m.x[0], m.y[0]) for m in markers] == [(0.1, 0.8), (0.2, 0.3)]
    assert fig.layout.xaxis.type == "log"
    assert "AUC 0.900" in fig.data[0].name


def test_curves_figure_marks_the_operating_point_on_both_panels():
    curve = (np.linspace(0, 1, 20), np.linspace(0, 1, 20))
    fig = figures.curves_figure(curve, curve, (0.1, 0.8), (0.8, 0.6), 0.9, 0.7, 0.2)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert [(m.x[0], m.y[0], m.xaxis or "x") for m in markers] == [(0.1, 0.8, "x"), (0.8, 0.6, "x2")]
    assert "AUC 0.900" in fig.layout.annotations[0].text and "AP 0.700" in fig.layout.annotations[1].text
    # Nothing flagged: no precision, so no point on the PR panel.
    assert sum(t.mode == "markers" for t in figures.curves_figure(curve, curve, (0, 0), None, 0.9, 0.7, 0.2).data) == 1


def test_rate_heatmap_marks_empty_categories():
    fig = figures.rate_heatmap(["a"], ["dos", "u2r"], np.array([[0.5, np.nan]]))
    assert list(fig.data[0].text[0]) == ["50%", "–"]


def test_feature_percentile_figure_highlights_values_outside_normal_range():
    fig = figures.feature_percentile_figure(["f1", "f2", "f3"], np.array([50.0, 99.9, 0.2]), np.array([1, 2, 3]))
    assert list(fig.data[0].marker.color) == [figures.NORMAL_COLOUR, figures.ATTACK_COLOUR, figures.ATTACK_COLOUR]


def test_feature_contributions_are_sorted_largest_first():
    fig = figures.feature_contribution_figure(["a", "b", "c"], np.array([0.1, 3.0, -0.5]), "PCA")
    assert list(fig.data[0].y) == ["b", "c", "a"]


def test_agreement_heatmap_colours_shares_not_counts_and_names_each_cells_pair():
    # One detector flagging 9,000 records must not wash out the 90% overlap of the other two.
    common = np.array([[9000, 100, 90], [100, 100, 90], [90, 90, 100]])
    heat = figures.agreement_heatmap(["big", "b", "c"], common).data[0]
    z = np.asarray(heat.z, dtype=float)
    assert z[1, 2] == pytest.approx(0.9) and z[0, 1] == pytest.approx(100 / 9000) and z[1, 0] == pytest.approx(1.0)
    assert np.allclose(np.diag(z), 1.0) and heat.zmax == 1
    assert heat.zmin == 0.0  # scaled to the lowest share between two different detectors (1.1%)
    pairs = figures.agreement_heatmap(["a", "b"], np.array([[100, 80], [80, 90]])).data[0]
    assert pairs.zmin == pytest.approx(0.8)
    assert list(heat.customdata[1][2][:2]) == [1, 2] and heat.customdata[1][2][2] == "90"
    # A heat map cannot be selected in plotly: an invisible marker on each cell is what a click selects
    cells = figures.agreement_heatmap(["big", "b", "c"], common).data[1]
    assert cells.type == "scatter" and cells.marker.opacity == 0 and len(cells.x) == 9
    clicked = 1 * 3 + 2  # row b, column c
    assert (cells.y[clicked], cells.x[clicked]) == ("b", "c") and list(cells.customdata[clicked][:2]) == [1, 2]


def test_agreement_heatmap_shows_a_dash_for_a_detector_flagging_nothing():
    heat = figures.agreement_heatmap(["a", "b"], np.array([[0, 0], [0, 5]])).data[0]
    assert heat.text[0][0] == "–" and heat.text[1][1] == "100%"


def _every_figure() -> list:
    scores, y = heavy_tailed()
    bins = figures.histogram_bins(scores, y)
    curve = (np.linspace(0, 1, 20), np.linspace(0, 1, 20))
    return [
        figures.score_histogram(bins, 0.05, log_count=True),
        figures.score_histogram(figures.histogram_bins(scores - 1, y), 0.0),
        figures.roc_figure({"a": curve, "b": curve}, {"a": 0.5, "b": 0.5}, {"a": (0.1, 0.2)}, log_fpr=True),
        figures.roc_figure({"a": curve}, {"a": 0.5}, {"a": (0.1, 0.2)}),
        figures.curves_figure(curve, curve, (0.5, 0.5), (0.5, 0.5), 0.5, 0.4, 0.2),
        figures.roc_figure({"a": curve}, None, None),
        figures.rate_heatmap(["a", "b"], ["dos", "u2r"], np.array([[0.5, np.nan], [1.0, 0.0]])),
        figures.agreement_heatmap(["a", "b"], np.array([[3, 1], [1, 2]])),
        figures.feature_percentile_figure(["f1", "f2"], np.array([50.0, 99.9]), np.array([1, 2])),
        figures.feature_contribution_figure(["f1", "f2"], np.array([0.1, 3.0]), "PCA"),
        figures.pair_curves_figure({"a": (curve, curve), "b": (curve, curve)}, {"a": (0.5, 0.4), "b": (0.6, 0.5)},
                                   {"a": ((0.1, 0.2), (0.2, 0.7)), "b": ((0.1, 0.3), None)}, 0.2),
    ]


@pytest.mark.parametrize("index", range(11))
def test_every_figure_passes_plotly_validation_and_has_titles(index):
    """Builders skip plotly's validation for speed; here every property is checked once."""
    fig = _every_figure()[index]
    checked = go.Figure(fig.to_dict())  # validating constructor: raises on any invalid property
    assert checked.layout.title.text
    assert checked.layout.xaxis.title.text or checked.data[0].type == "heatmap"


def test_downsample_keeps_both_ends():
    x, y = metrics.downsample_curve(np.arange(5000.0), -np.arange(5000.0), max_points=100)
    assert len(x) <= 100 and (x[0], x[-1]) == (0, 4999) and (y[0], y[-1]) == (0, -4999)


# --- dashboard computations --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
       st.lists(st.booleans(), min_size=200, max_size=200), st.floats(-2e6, 2e6, allow_nan=False))
def test_the_control_grid_answers_any_threshold_exactly(values, labels, threshold):
    """What the browser shows for a threshold (the grid row it lands on) is what the records give."""
    scores = np.asarray(values)
    y = np.asarray(labels[:len(values)], dtype=int)
    grid = threshold_grid(ThresholdCurve.from_scores(y, scores))
    assert grid["score"].is_monotonic_increasing and grid["score"].is_unique
    row = grid.iloc[grid_position(grid, threshold)]
    flagged = scores >= threshold
    if threshold <= grid["score"].iloc[-1]:
        assert row["flagged"] == flagged.sum() and row["attacks"] == (flagged & (y == 1)).sum()
    assert grid["flagged"].iloc[0] == len(scores) and grid["flagged"].iloc[-1] == 0  # the two ends


def test_cost_and_alert_budget_presets_match_a_full_search():
    y = (RNG.random(500) < 0.2).astype(int)
    scores = RNG.normal(size=500) + 1.5 * y
    curve = ThresholdCurve.from_scores(y, scores)
    candidates = np.r_[np.unique(scores), np.nextafter(scores.max(), np.inf)]
    for miss, alarm in ((10, 1), (1, 1), (1, 50), (0, 1)):
        costs = [miss * np.sum((scores < t) & (y == 1)) + alarm * np.sum((scores >= t) & (y == 0)) for t in candidates]
        chosen = curve.min_cost_threshold(miss, alarm)
        assert miss * np.sum((scores < chosen) & (y == 1)) + alarm * np.sum((scores >= chosen) & (y == 0)) == min(costs)
    assert curve.min_cost_threshold(0, 1) > scores.max()  # attacks cost nothing: no alerts
    for rate in (0.0, 0.01, 0.2, 1.0):
        chosen = curve.threshold_within_rate(rate)
        assert np.mean(scores >= chosen) <= rate
        lower = candidates[candidates < chosen]
        assert not len(lower) or np.mean(scores >= lower[-1]) > rate  # the lowest that fits



def test_leaderboard_matches_the_direct_computation():
    scores, y = heavy_tailed()
    other = scores * RNG.uniform(0.5, 1.5, len(scores))
    all_scores = {"a": scores, "b": other}
    curves = {n: ThresholdCurve.from_scores(y, s) for n, s in all_scores.items()}
    summaries = {n: leaderboard.curve_summary(y, s) for n, s in all_scores.items()}
    thresholds = {"a": 0.05, "b": 0.2}
    table = leaderboard.leaderboard(curves, summaries, thresholds)
    for name, s in all_scores.items():
        expected = metrics.summary(y, s, thresholds[name])
        for metric in leaderboard.LEADERBOARD_METRICS:
            assert table.loc[name, metric] == pytest.approx(expected[metric]), metric
        assert table.loc[name, "flagged"] == np.sum(s >= thresholds[name])


def test_agreement_counts_records_flagged_by_both():
    scores = {"a": np.array([1, 2, 3, 4.0]), "b": np.array([4, 3, 2, 1.0])}
    flags = agreement.flag_matrix(scores, {"a": 2.5, "b": 2.5})  # a flags 2,3; b flags 0,1
    common = agreement.agreement(flags)
    np.testing.assert_array_equal(common, [[2, 0], [0, 2]])
    flags = agreement.flag_matrix(scores, {"a": 1.5, "b": 1.5})  # a flags 1,2,3; b flags 0,1,2
    np.testing.assert_array_equal(agreement.agreement(flags), [[3, 2], [2, 3]])


def test_category_rates_are_shares_flagged_per_category():
    scores = {"a": np.array([0.1, 0.9, 0.8, 0.2])}
    rates = metrics.category_rates(scores, {"a": 0.5}, np.array(["dos", "dos", "probe", "probe"]),
                                    ["dos", "probe", "u2r"])
    np.testing.assert_allclose(rates[0, :2], [0.5, 0.5])
    assert np.isnan(rates[0, 2])


def test_outcomes_name_each_cell_of_the_confusion_matrix():
    out = records.outcomes(np.array([1, 0, 1, 0]), np.array([True, True, False, False]))
    assert list(out) == ["true positive", "false positive", "missed attack", "true negative"]


def _test_frame() -> Part:
    """Four test records (ids 10–13): a user column named like anodet's own ('score') is shown as 'score (input)'."""
    return Part(pd.DataFrame({"srv_count": [1.0, 2.0, 3.0, 4.0], "score": [7.0, 7.0, 7.0, 7.0]}),
                {"reference": np.array([0, 1, 0, 0], np.int8), "true": np.array([0, 1, 1, 0], np.int8)},
                np.array(["normal", "smurf", "=cmd|' /C calc'!A0", "normal"], dtype=object),
                np.array(["normal", "dos", "novel", "normal"], dtype=object), np.array([10, 11, 12, 13]))


def test_record_table_is_sorted_by_score_and_follows_the_label_view():
    scores = np.array([0.2, 0.9, 0.7, 0.1])
    ref = records.record_table(_test_frame(), scores, 0.5, "reference")
    true = records.record_table(_test_frame(), scores, 0.5, "true")
    assert list(ref.index) == [11, 12, 10, 13] and ref.index.name == "record"
    assert list(ref["position"]) == [1, 2, 0, 3]
    assert list(ref["score"]) == [0.9, 0.7, 0.2, 0.1] and (ref["score (input)"] == 7.0).all()
    assert ref.loc[12, "outcome"] == "false positive" and true.loc[12, "outcome"] == "true positive"
    assert not any(c.startswith("label_") for c in ref.columns)


def test_filters_combine():
    table = records.record_table(_test_frame(), np.array([0.2, 0.9, 0.7, 0.1]), 0.5, "true")
    assert list(records.filter_records(table, ["true positive"]).index) == [11, 12]
    assert list(records.filter_records(table, ["true positive"], categories=["dos"]).index) == [11]
    assert list(records.filter_records(table, [], attacks=["normal"]).index) == [10, 13]
    assert list(records.filter_records(table, score_range=(0.15, 0.75)).index) == [12, 10]


def test_feature_percentiles_place_values_among_normal_records():
    train = np.sort(np.column_stack([np.arange(100.0), np.zeros(100)]), axis=0)
    pct = records.feature_percentiles(train, np.array([-5.0, 0.0]))
    assert pct[0] == 0.0 and pct[1] == 50.0  # below every normal; equal to all of them
    assert records.feature_percentiles(train, np.array([1000.0, 1.0]))[0] == 100.0


def test_record_verdicts_use_each_detectors_threshold():
    verdicts = records.record_verdicts({"a": np.array([1.0, 5.0]), "b": np.array([1.0, 5.0])}, {"a": 2.0, "b": 6.0}, 1)
    assert list(verdicts["verdict"]) == ["flagged", "passed"]


def test_csv_download_neutralises_formulas_in_text_but_keeps_numbers():
    table = records.record_table(_test_frame(), np.array([-0.2, 0.9, 0.7, 0.1]), 0.5, "true")
    table.loc[10, "outcome"] = "@SUM(A1)"
    data = records.records_csv(table)
    back = pd.read_csv(io.BytesIO(data), index_col=0)
    assert back.loc[12, "attack"] == "'=cmd|' /C calc'!A0"
    assert back.loc[10, "outcome"] == "'@SUM(A1)"
    assert back.loc[10, "score"] == pytest.approx(-0.2)  # a negative number is not text
    for line in data.decode().splitlines():
        assert not any(cell.startswith(("=", "@", "+")) for cell in line.split(","))


# --- new dashboard helpers ----------------------------------------------------------------------


@pytest.mark.parametrize("customdata", [[0.5, 2.0], (0.5, 2.0), {"0": 0.5, "1": 2.0}, {"0": 0.5, "1": 2.0, "2": "x"},
                                        np.array([0.5, 2.0])])
def test_a_clicked_bars_bounds_are_read_from_either_customdata_shape(customdata):
    """Streamlit 1.67 sends ``{'0': lo, '1': hi}``; slicing that crashed the page (issue 15, bug 1)."""
    assert layout.customdata_pair(customdata) == (0.5, 2.0)


@pytest.mark.parametrize("customdata", [None, "ab", [1.0], {"1": 2.0}])
def test_anything_else_is_not_a_bar(customdata):
    with pytest.raises(ValueError):
        layout.customdata_pair(customdata)


class _NoBreakdown:
    """A detector without a per-feature breakdown: the score is a weighted distance to the origin."""

    weights = np.array([1.0, 0.0, 3.0])

    def decision_function(self, X):
        return np.abs(np.asarray(X)) @ self.weights

    def feature_scores(self, X):
        return None


def test_a_detector_without_a_breakdown_is_explained_by_its_own_score():
    x, median = np.array([2.0, 5.0, -1.0]), np.zeros(3)
    contributions, method = explain.explain_record(_NoBreakdown(), x, median)
    assert method == "perturbation" and "median" in explain.EXPLANATION_METHODS[method]
    # Setting feature j to the median removes exactly its weighted term; an unused feature adds nothing.
    np.testing.assert_allclose(contributions, [2.0, 0.0, 3.0])


def test_a_detector_with_a_breakdown_uses_it(store):
    pca = store.detector("pca")
    x = store.feature_set("kdd18").transform(np.full((1, store.feature_set("kdd18").width), 3.0))[0]
    contributions, method = explain.explain_record(pca, x, np.zeros_like(x))
    assert method == "own"
    np.testing.assert_allclose(contributions, pca.feature_scores(x[None, :])[0])


def test_isolation_forest_gets_its_own_perturbation_explanation(store, splits):
    from anodet.datasets.kdd_schema import FEATURES

    iforest = store.detector("iforest")
    assert iforest.feature_scores(np.zeros((1, len(FEATURES)))) is None
    train = kdd_frame(splits.train)[list(FEATURES)].to_numpy()
    median = store.feature_set("kdd18").transform(np.median(train, axis=0)[None, :])[0]
    attack = kdd_frame(splits.test)[kdd_frame(splits.test)["label_true"] == 1][list(FEATURES)].to_numpy()[:1]
    x = store.feature_set("kdd18").transform(attack)[0]
    contributions, method = explain.explain_record(iforest, x, median)
    assert method == "perturbation" and contributions.shape == (len(FEATURES),)
    # Each contribution is what the forest's own score loses when that feature is made typical.
    j = int(np.argmax(np.abs(contributions)))
    typical = x.copy()
    typical[j] = median[j]
    assert contributions[j] == pytest.approx(iforest.decision_function(x[None, :])[0]
                                             - iforest.decision_function(typical[None, :])[0])
    assert np.abs(contributions).max() > 0


def test_disagreements_list_each_side_and_shares_add_up():
    scores = {"a": np.array([0.9, 0.9, 0.1, 0.1]), "b": np.array([0.9, 0.1, 0.9, 0.1])}
    only_a, only_b = agreement.disagreements(scores, {"a": 0.5, "b": 0.5}, "a", "b")
    assert only_a.tolist() == [1] and only_b.tolist() == [2]
    shares = agreement.agreement_shares(agreement.agreement(agreement.flag_matrix(scores, {"a": 0.5, "b": 0.5})))
    np.testing.assert_allclose(shares, [[1.0, 0.5], [0.5, 1.0]])


def test_metric_deltas_are_b_minus_a():
    board = pd.DataFrame({"detector": ["A", "B"], **{m: [0.5, 0.75] for m in leaderboard.LEADERBOARD_METRICS}},
                         index=["a", "b"])
    deltas = leaderboard.metric_deltas(board, "a", "b").set_index("detector")
    assert list(deltas.index) == ["A", "B", "B − A"] and list(deltas.columns) == list(leaderboard.LEADERBOARD_METRICS)
    assert (deltas.loc["B − A"] == 0.25).all() and (deltas.loc["A"] == 0.5).all()


def test_table_height_fits_rows_and_header_without_an_empty_row():
    assert layout.table_height(12) == 35 * 13 + 3


def test_a_kdd41_detector_is_explained_over_the_41_named_columns(store, splits):
    """One-hot parts (each service, protocol, flag) are summed back to their raw column."""
    name = "autoencoder@kdd41"
    fs = store.feature_set_for(name)
    attack = kdd_frame(splits.test)[kdd_frame(splits.test)["label_true"] == 1].iloc[[0]]
    reference = explain.reference_record(kdd_frame(splits.train), fs.raw_columns)
    columns, contributions, method = explain.explain_raw(store.detector(name), fs, attack, reference)
    assert columns == list(RAW_COLUMNS) and contributions.shape == (41,) and method == "own"
    per_input = store.detector(name).feature_scores(fs.transform_frame(attack))[0]
    assert contributions.sum() == pytest.approx(per_input.sum(), rel=1e-6)
    service = [j for j, g in enumerate(fs.groups) if g == "service"]
    assert contributions[columns.index("service")] == pytest.approx(per_input[service].sum(), rel=1e-6)


def test_user_text_in_charts_shows_as_typed_never_as_markup():
    """Issue 24: a column named like HTML drew a clickable link and 60 px red text on Flagged records."""
    evil = "<a href='https://example.com'>click</a>"
    big = "<span style='font-size:60px;color:red'>BIG</span>"
    figs = [figures.feature_percentile_figure([evil, big], np.array([50.0, 99.0]), np.array([1.0, 2.0])),
            figures.feature_contribution_figure([evil, big], np.array([0.5, -0.2]), big),
            figures.rate_heatmap(["PCA"], [evil, big], np.array([[0.5, 0.1]]), counts=[10, 20])]
    for fig in figs:
        spec = fig.to_json()
        assert "<a href" not in spec and "<span style" not in spec, spec[:300]
        assert "&lt;a href" in spec or "&lt;span style" in spec
