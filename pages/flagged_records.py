"""Flagged records: what one detector flags at its current threshold, and why, record by record."""

from __future__ import annotations

import numpy as np
import streamlit as st

from anodet import dashboard, figures, ui
from anodet.schema import CATEGORIES, FEATURES, label_column

ui.ensure_app_frame()

DEFAULT_OUTCOMES = ["true positive", "false positive"]

st.title("Flagged records")
view = ui.label_view()
store = ui.get_store(loaded=False)
names = store.names
scores = ui.get_test_scores()
test = ui.get_splits().test

top = st.columns([2, 3])
with top[0]:
    name = ui.detector_picker("Detector", names, key="flagged_detector")
threshold = ui.get_threshold(name)
table = dashboard.record_table(test, scores[name], threshold, label_column(view))
with top[1]:
    st.markdown(f"**{ui.display_name(name)}** flags **{int((table['score'] >= threshold).sum()):,}** of "
                f"{len(table):,} test records at threshold **{threshold:.6g}** (labels: **{view}** view).")
    st.page_link("pages/threshold_explorer.py", label="Move the threshold in the threshold explorer", icon=":material/tune:")

f1, f2, f3 = st.columns([3, 2, 2])
chosen_outcomes = f1.pills("Outcome", dashboard.OUTCOMES[:3], selection_mode="multi", default=DEFAULT_OUTCOMES,
                           key="flagged_outcomes",
                           help="True positive: a flagged attack. False positive: a flagged normal record. "
                                "Missed attack: an attack scoring below the threshold. None chosen: all records.")
chosen_categories = f2.multiselect("Category", list(CATEGORIES), key="flagged_categories",
                                   placeholder="All categories")
chosen_attacks = f3.multiselect("Attack name", sorted(test["attack"].unique()), key="flagged_attacks",
                                placeholder="All attack names")
shown = dashboard.filter_records(table, chosen_outcomes, chosen_attacks, chosen_categories)

filter_id = abs(hash((name, threshold, view, tuple(chosen_outcomes or ()), tuple(chosen_categories),
                      tuple(chosen_attacks))))
position = None
if shown.empty:
    st.info("No record matches these filters. Widen the outcome, category or attack filters, or move the threshold.")
else:
    hist_col, table_col = st.columns([2, 3])
    with hist_col:
        bins = figures.histogram_bins(shown["score"].to_numpy(), (shown["label"] == "attack").to_numpy(), bins=40)
        event = st.plotly_chart(
            figures.score_histogram(bins, threshold, log_count=True, title="Scores of these records"),
            on_select="rerun", selection_mode="points", key=f"flagged_hist_{filter_id}")
        st.caption("Click a bar to list only its records and open the highest-scoring one.")
    points = event.selection.points if event else []
    if points:
        lo, hi = points[0]["customdata"][:2]
        label = "attack" if points[0].get("curve_number") == 1 else "normal"
        in_bar = shown[(shown["score"] >= lo) & (shown["score"] <= hi) & (shown["label"] == label)]
        shown = in_bar if not in_bar.empty else shown
    with table_col:
        display = shown.reset_index()
        chosen = st.dataframe(
            display, on_select="rerun", selection_mode="single-row", hide_index=True, height=380,
            key=f"flagged_table_{filter_id}_{len(points)}",
            column_order=["record", "score", "outcome", "label", "attack", "category", *FEATURES],
            column_config={"record": st.column_config.NumberColumn("Record", help="Line number in the raw test file.",
                                                                   format="%d", pinned=True),
                           "score": st.column_config.NumberColumn("Score", format="%.4g", pinned=True)})
        st.caption(f"{len(shown):,} records, highest score first. Select a row to see why it scored as it did.")
    rows = chosen.selection.rows if chosen else []
    if rows:
        position = int(display.iloc[rows[0]]["position"])
    elif points:
        position = int(shown.iloc[0]["position"])
    st.download_button(f"Download these {len(shown):,} records (CSV)", dashboard.records_csv(shown.drop(columns="position")),
                       file_name=f"anodet-{name}-flagged.csv", mime="text/csv", icon=":material/download:", key="flagged_download")

if position is not None:
    record = table[table["position"] == position].iloc[0]
    st.divider()
    st.subheader(f"Record {record.name}")
    a, b, c, d = st.columns(4)
    a.metric("Label", record["label"], help=f"Under the {view} label view.")
    b.metric("Attack name", record["attack"])
    c.metric("Category", record["category"], help="novel: an attack type that appears only in the test file.")
    d.metric(f"{ui.display_name(name)} score", f"{record['score']:.4g}", delta=record["outcome"], delta_color="off")
    values = record[list(FEATURES)].to_numpy(dtype=np.float64)
    left, right = st.columns(2)
    with left:
        pct = dashboard.feature_percentiles(ui.get_sorted_train(), values)
        st.plotly_chart(figures.feature_percentile_figure(FEATURES, pct, values), key="flagged_percentiles")
        st.caption("Bar labels are the raw values. Red: outside the 1st–99th percentile of normal training records.")
    with right:
        store = ui.get_store()  # the detectors themselves, for per-feature contributions
        explainers = [n for n in names if store.detector(n).feature_scores(np.zeros((1, len(FEATURES)))) is not None]
        default = name if name in explainers else explainers[0]
        explain = st.selectbox("Explain with", explainers, index=explainers.index(default), key="flagged_explainer",
                               format_func=ui.display_name,
                               help="Detectors that break their score down by feature. "
                                    + ("" if name in explainers else f"{ui.display_name(name)} does not."))
        contributions = store.detector(explain).feature_scores(store.scaler.transform(values[None, :]))[0]
        st.plotly_chart(figures.feature_contribution_figure(FEATURES, contributions, ui.display_name(explain)),
                        key="flagged_contributions")
    st.markdown("**Every detector on this record**, each at its current threshold")
    verdicts = dashboard.record_verdicts(scores, ui.get_thresholds(names), position,
                                         {n: ui.display_name(n) for n in names})
    st.dataframe(verdicts, hide_index=True, key="flagged_verdicts", height=35 * (len(verdicts) + 1) + 40,
                 column_config={"score": st.column_config.NumberColumn(format="%.4g"),
                                "threshold": st.column_config.NumberColumn(format="%.4g"),
                                "score / threshold": st.column_config.NumberColumn(format="%.2f")})
elif not shown.empty:
    st.info("Select a row of the table, or a bar of the histogram, to see that record's details.")

