"""Overview: every detector side by side at the session's thresholds, and any two compared closely."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from anodet import textsafe
from anodet.app import figures, layout, loaders, state, ui
from anodet.datasets.usersplits import MAX_CATEGORIES
from anodet.evaluation import agreement, leaderboard, metrics


def unlabelled_overview(names: list[str]) -> None:
    """A dataset without labels: thresholds, flags, agreement and score histograms (no ROC/PR: they need labels)."""
    scores = loaders.get_test_scores()
    thresholds = ui.get_thresholds(names)
    n = len(loaders.get_splits().test)
    st.info("This dataset has no labels, so there are no ROC or precision-recall curves, detection rates or "
            "confusion matrices: what each detector flags at its threshold (chosen without labels: "
            f"{store.default_preset}) and how the detectors agree. Declare the dataset again with a label column "
            "(`--label COLUMN`) to compare them on labels.")
    table = {"detector": [loaders.display_name(d) for d in names], "threshold": [thresholds[d] for d in names],
             "flagged": [int((scores[d] >= thresholds[d]).sum()) for d in names],
             "share flagged": [float(np.mean(scores[d] >= thresholds[d])) for d in names]}
    st.subheader("Detectors")
    st.dataframe(table, hide_index=True, key="overview_unlabelled", height=layout.table_height(len(names)),
                 column_config={"threshold": st.column_config.NumberColumn(format="%.4g"),
                                "share flagged": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                                max_value=1)})
    st.caption(f"Flags among the {n:,} test records at each detector's threshold; move them in the threshold "
               "explorer.")
    st.subheader("Agreement")
    common = agreement.agreement(agreement.flag_matrix({d: scores[d] for d in names}, thresholds))
    if np.diag(common).any():
        st.plotly_chart(figures.agreement_heatmap([loaders.display_name(d) for d in names], common,
                                                  title="Which detectors agree: share of one's flags the other "
                                                        "flags too"),
                        key="overview_agreement")
    else:
        st.info("No detector flags a test record at its threshold, so there is no agreement to show: lower a "
                "threshold in the threshold explorer.")
    st.subheader("Scores")
    pick = ui.detector_picker("Detector", names, key="overview_histogram_detector")
    st.plotly_chart(figures.unlabelled_histogram(scores[pick][np.isfinite(scores[pick])], thresholds[pick],
                                                 f"{loaders.display_name(pick)}: test scores and threshold"),
                    key="overview_histogram")


dataset = state.current_dataset()
st.title("Overview")
view = state.label_view()
store = loaders.get_store(loaded=False)
filters = st.columns([3, 2])
chosen_sets = filters[0].pills(
    "Feature sets", store.feature_sets, selection_mode="multi", default=store.feature_sets,
    key=state.keyed("overview_sets"),
    help="kdd18: the reference prototype's 18 traffic rates and counts. kdd41: all 41 KDD columns (bytes and "
         "counts on a log scale, protocol, service and flag one-hot)." if dataset.builtin else
         "Your dataset's declared columns (numeric, log-scaled or one-hot categorical).")
has_ceiling = any(loaders.is_supervised(n) for n in store.names)
show_ceiling = has_ceiling and filters[1].toggle(
    "Show the supervised ceiling", value=True, key="overview_ceiling",
    help="A random forest trained on the labelled training records (normal vs attack): what labels reach on the "
         "same features. A reference row, never counted as a detector.")
names = [n for n in store.names
         if (store.is_external(n) or store.feature_set_of(n) in (chosen_sets or store.feature_sets))
         and (show_ceiling or not loaders.is_supervised(n))]
if len(names) < 2:
    st.info("Choose at least one feature set (and keep two or more detectors) to compare detectors.")
    st.stop()
if not dataset.labelled:
    unlabelled_overview(names)
    st.stop()
scores = loaders.get_test_scores()
curves = loaders.get_test_curves(view)
summaries = loaders.get_curve_summaries(view)
thresholds = ui.get_thresholds(names)
labels = {n: loaders.display_name(n) for n in names}
test = loaders.get_splits().test
moved = [f"{labels[n]} (threshold {thresholds[n]:.6g})" for n in names
         if thresholds[n] != store.default_threshold(n, view)]

switch = " (switch in the sidebar)" if len(dataset.view_keys) > 1 else ""
st.caption(
    f"{len(names)} pretrained detectors on the {len(test):,} records of {textsafe.markdown_text(dataset.source)}, "
    f"labels in the **{view}** view{switch}. Metrics at a threshold use each detector's "
    f"threshold for the **{view}** view: the {view} view's validation best-F1 one until you move it in the "
    "threshold explorer (each view keeps its own). "
    + (f"Moved from that default: {textsafe.markdown_text(', '.join(moved))}." if moved else "None has been moved in this view.")
)

table = leaderboard.leaderboard({n: curves[n] for n in names}, summaries, thresholds,
                                leaderboard.entrants_of(store, names))
detectors_only = table[~table["uses_labels"]]
ceiling = table[table["uses_labels"]]
if not detectors_only.empty:
    best = detectors_only.iloc[0]
    headline = (f"Best anomaly detector here by ROC AUC: **{textsafe.markdown_text(best['detector'])}**, "
                f"{best['roc_auc']:.4f} ({view} view).")
    if not ceiling.empty:
        top = ceiling.sort_values("roc_auc", ascending=False).iloc[0]
        headline += (f" The supervised ceiling (trained on labelled {dataset.words.positives}, so not a detector): "
                     f"**{top['roc_auc']:.4f}** ({textsafe.markdown_text(top['detector'])}).")
    st.markdown(headline)
order = list(table.index)  # every chart below lists the detectors in the leaderboard's order
SHORT_LABELS = {"fpr": "FPR"}  # the leaderboard's columns fit a 1280 px window
column_config = {
    "detector": st.column_config.TextColumn("Detector", pinned=True),
    "feature_set": st.column_config.TextColumn("Features", help="The feature set the detector was trained on.",
                                               width="small"),
    "uses_labels": st.column_config.CheckboxColumn(
        "Labels", width="small", help="Ticked: the supervised ceiling, trained on labelled attacks. Listed last, "
                                      "as a reference, never as the best detector."),
    "threshold": st.column_config.NumberColumn("Threshold", help=f"The detector's current threshold (raw score) "
                                                                 f"under the {view} view.", format="%.4g"),
    "flagged": st.column_config.NumberColumn("Flagged", help="Test records flagged at the threshold.", format="%d"),
    **{m: st.column_config.NumberColumn(SHORT_LABELS.get(m, leaderboard.METRIC_LABELS[m]), help=metrics.METRIC_HELP[m],
                                        width="small", format="%.3f")
       for m in leaderboard.LEADERBOARD_METRICS},
}
st.subheader("Leaderboard")
st.caption("Sorted by ROC AUC, the supervised ceiling (Labels ticked) listed last; click a column header to sort "
           "otherwise, hover it for what the metric means. Select a row to open that detector in the threshold "
           "explorer.")
board = st.dataframe(table, hide_index=True, column_config=column_config, key="overview_leaderboard",
                     height=layout.table_height(len(table)), on_select="rerun", selection_mode="single-row",
                     column_order=["detector", "feature_set", *leaderboard.LEADERBOARD_METRICS, "threshold", "flagged",
                                   "uses_labels"])
picked = ui.selected(board, "rows")
if picked:
    st.session_state[ui.FOCUS_KEY] = order[picked[0]]
    st.switch_page("app_pages/threshold_explorer.py")

st.subheader("Threshold-free and per category")
points = {labels[n]: (table.loc[n, "fpr"], table.loc[n, "recall"]) for n in order}
st.plotly_chart(figures.roc_figure({labels[n]: summaries[n].roc for n in order},
                                   {labels[n]: summaries[n].roc_auc for n in order}, points,
                                   title="ROC curves (× = current threshold)", log_fpr=True),
                key="overview_roc")
st.caption(metrics.METRIC_HELP["roc_auc"] + " The false-positive rate is on a log scale: good detectors "
           "differ mostly below 10%.")
categories = test.category
ordered_scores = {n: scores[n] for n in order}
shown_categories = dataset.categories_in(test)
rates = metrics.category_rates(ordered_scores, thresholds, categories, shown_categories)
counts = pd.Series(test.category).value_counts()
columns = [f"{textsafe.markdown_text(c)} ({counts.get(c, 0):,})" for c in shown_categories]
st.plotly_chart(figures.rate_heatmap([labels[n] for n in order], columns, rates,
                                     title=f"Detection rate per {dataset.anomaly_word} category",
                                     positive=dataset.anomaly_word),
                key="overview_rates")
st.caption("Share of each category's test records flagged at the detector's threshold (record counts in "
           "brackets). " + ("*novel*: attack types that appear only in the test file." if dataset.builtin else
                            f"Categories are your label's anomalous values (the {MAX_CATEGORIES} "
                            "most common; the rest are *other*)."))

st.subheader("Agreement")
flags = agreement.flag_matrix(ordered_scores, thresholds)
common = agreement.agreement(flags)
cell = st.plotly_chart(figures.agreement_heatmap([labels[n] for n in order], common,
                                                 title="Which detectors agree: share of one's flags the other "
                                                       "flags too"),
                       key="overview_agreement", on_select="rerun", selection_mode="points")
st.caption("Row *A*, column *B*: the share of the test records *A* flags that *B* flags too, at the current "
           "thresholds (hover for the counts). Click a cell to compare that pair below.")

st.subheader("Compare two detectors")
clicked = ui.selected(cell, "points")
if clicked:
    i, j = (int(v) for v in layout.customdata_pair(clicked[0].get("customdata")))
    if i != j and (order[i], order[j]) != st.session_state.get("overview_pair_clicked"):
        st.session_state["overview_pair_clicked"] = (order[i], order[j])
        st.session_state["overview_a"], st.session_state["overview_b"] = order[i], order[j]
for key, default in (("overview_a", order[0]), ("overview_b", order[1])):
    if st.session_state.get(key) not in names:
        st.session_state[key] = default
pick_a, pick_b = st.columns(2)
a = pick_a.selectbox("Detector A", order, key="overview_a", format_func=loaders.name_format(order))
b = pick_b.selectbox("Detector B", order, key="overview_b", format_func=loaders.name_format(order))
if a == b:
    st.info("Choose two different detectors to compare them.")
else:
    pair = {labels[n]: (summaries[n].roc, summaries[n].pr) for n in (a, b)}
    aucs = {labels[n]: (summaries[n].roc_auc, summaries[n].pr_auc) for n in (a, b)}
    at = {labels[n]: ((table.loc[n, "fpr"], table.loc[n, "recall"]),
                      (table.loc[n, "recall"], table.loc[n, "precision"]) if table.loc[n, "flagged"] else None)
          for n in (a, b)}
    st.plotly_chart(figures.pair_curves_figure(pair, aucs, at, summaries[a].base_rate), key="overview_pair")
    deltas = leaderboard.metric_deltas(table, a, b)
    st.dataframe(deltas, hide_index=True, key="overview_deltas", height=layout.table_height(len(deltas)),
                 column_config={"detector": st.column_config.TextColumn("", pinned=True),
                                **{m: st.column_config.NumberColumn(SHORT_LABELS.get(m, leaderboard.METRIC_LABELS[m]),
                                                                    help=metrics.METRIC_HELP[m], format="%.3f")
                                   for m in leaderboard.LEADERBOARD_METRICS}})
    st.caption(f"The last row is {labels[b]} minus {labels[a]}, metric by metric, at their current thresholds "
               f"({view} view).")
    only_a, only_b = agreement.disagreements(scores, thresholds, a, b)
    list_a, list_b = st.columns(2, gap="medium")
    y = np.asarray(test.label(view)) == 1
    for col, only, first, second in ((list_a, only_a, a, b), (list_b, only_b, b, a)):
        with col:
            st.markdown(f"**{textsafe.markdown_text(labels[first])} flags, {textsafe.markdown_text(labels[second])} passes**: "
                        f"{len(only):,} records "
                        f"({dataset.words.count(int(y[only].sum()))} among them)")
            rows = pd.DataFrame({"attack": test.label_text[only], "category": test.category[only]},
                                index=pd.Index(test.record_id[only], name="record")).assign(
                **{labels[first]: scores[first][only], labels[second]: scores[second][only]})
            rows = rows.iloc[np.argsort(-scores[first][only], kind="stable")]
            rows.index.name = "record"
            st.dataframe(rows.reset_index(), hide_index=True, key=f"overview_only_{first}",
                         height=min(layout.table_height(len(rows)), 320),
                         column_config={"record": st.column_config.NumberColumn(format="%d"),
                                        labels[first]: st.column_config.NumberColumn(format="%.4g"),
                                        labels[second]: st.column_config.NumberColumn(format="%.4g")})
