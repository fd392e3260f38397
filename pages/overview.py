"""Overview: every detector side by side at the session's thresholds."""

from __future__ import annotations

import streamlit as st

from anodet import dashboard, evaluate, figures, ui
from anodet.schema import ATTACK_CATEGORIES

ui.ensure_app_frame()

st.title("Overview")
view = ui.label_view()
store = ui.get_store(loaded=False)
names = store.names
scores = ui.get_test_scores()
curves = ui.get_test_curves(view)
summaries = ui.get_curve_summaries(view)
thresholds = ui.get_thresholds(names)
labels = {n: ui.display_name(n) for n in names}
test = ui.get_splits().test

st.caption(
    f"{len(names)} pretrained detectors on the {len(test):,} records of the KDD Cup 99 test split, "
    f"labels in the **{view}** view (switch in the sidebar). Metrics at a threshold use each detector's "
    "current threshold: the validation best-F1 one until you move it in the threshold explorer."
)
st.page_link("pages/threshold_explorer.py", label="Change a threshold in the threshold explorer", icon=":material/tune:")

table = dashboard.leaderboard(curves, summaries, thresholds, labels).sort_values("roc_auc", ascending=False)
percent = {"format": "%.3f"}
column_config = {
    "detector": st.column_config.TextColumn("Detector", pinned=True),
    "threshold": st.column_config.NumberColumn("Threshold", help="The detector's current threshold (raw score).",
                                               format="%.4g"),
    "flagged": st.column_config.NumberColumn("Flagged", help="Test records flagged at the threshold.", format="%d"),
    **{m: st.column_config.NumberColumn(dashboard.METRIC_LABELS[m], help=evaluate.METRIC_HELP[m], **percent)
       for m in dashboard.LEADERBOARD_METRICS},
}
st.subheader("Leaderboard")
st.caption("Click a column header to sort; hover a header for what the metric means.")
st.dataframe(table, hide_index=True, column_config=column_config, key="overview_leaderboard", height=35 * (len(table) + 1) + 40,
             column_order=["detector", *dashboard.LEADERBOARD_METRICS, "threshold", "flagged"])

left, right = st.columns(2)
with left:
    points = {labels[n]: (table.loc[n, "fpr"], table.loc[n, "recall"]) for n in names}
    st.plotly_chart(figures.roc_figure({labels[n]: summaries[n].roc for n in names},
                                       {labels[n]: summaries[n].roc_auc for n in names}, points,
                                       title="ROC curves (× = current threshold)", log_fpr=True),
                    key="overview_roc")
    st.caption(evaluate.METRIC_HELP["roc_auc"] + " The false-positive rate is on a log scale: good detectors "
               "differ mostly below 10%.")
with right:
    categories = test["category"].to_numpy()
    rates = dashboard.category_rates(scores, thresholds, categories, ATTACK_CATEGORIES)
    counts = test["category"].value_counts()
    columns = [f"{c} ({counts.get(c, 0):,})" for c in ATTACK_CATEGORIES]
    st.plotly_chart(figures.rate_heatmap([labels[n] for n in names], columns, rates,
                                         title="Detection rate per attack category"), key="overview_rates")
    st.caption("Share of each category's test records flagged at the detector's threshold (record counts in "
               "brackets). *novel*: attack types that appear only in the test file.")

flags = dashboard.flag_matrix(scores, thresholds)
st.plotly_chart(figures.agreement_heatmap([labels[n] for n in names], dashboard.agreement(flags),
                                          title="Which detectors agree: records flagged by both"),
                key="overview_agreement")
st.caption("Each cell counts the test records both detectors flag at their current thresholds; the diagonal is "
           "how many each one flags.")
