"""Overview: every detector at the session's operating point, with the count or interval each number rests on,
what the best one misses, and any two compared closely."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from anodet import textsafe
from anodet.app import board, figures, layout, loaders, state, ui
from anodet.datasets.usersplits import MAX_CATEGORIES
from anodet.evaluation import agreement, comparison, leaderboard, metrics, operating, report
from anodet.evaluation.boards import Scored
from anodet.evaluation.operating import Resolution, percent


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
y_test = np.asarray(test.label(view))
point = ui.operating_point()
words = dataset.words
n_attacks, n_normals = int((y_test == 1).sum()), int((y_test != 1).sum())
free = loaders.get_threshold_free(view, point.target_fpr)
table = board.table({n: curves[n] for n in names}, summaries, thresholds, leaderboard.entrants_of(store, names),
                    point, y_test, scores, free)
order = list(table.index)  # every chart below lists the detectors in the leaderboard's order
moved = ui.moved(names, view)

switch = " (switch in the sidebar)" if len(dataset.view_keys) > 1 else ""
st.caption(
    f"{len(names)} detectors on the {len(test):,} records of {textsafe.markdown_text(dataset.source)} "
    f"({words.count(n_attacks)}, {n_normals:,} {words.negatives}), labels in the **{view}** view{switch}. "
    f"Operating point: {textsafe.markdown_text(point.describe())} (sidebar); every detector's threshold is "
    "chosen for it on the validation split. "
    + (f"Moved by hand in the threshold explorer: "
       f"{textsafe.markdown_text(', '.join(f'{labels[n]} (threshold {thresholds[n]:.6g})' for n in moved))}."
       if moved else "")
)
unchosen = operating.without_threshold(point, [labels[n] for n in names if n not in ui.op_thresholds(view)])
if unchosen:
    st.caption(textsafe.markdown_text(unchosen))
small = comparison.small_sample(n_attacks, n_normals, words.positives)
if small:
    st.warning(textsafe.markdown_text(small), icon=":material/warning:")
resolution = Resolution.of(n_normals)
if resolution.finer_than(point.target_fpr):
    st.info(textsafe.markdown_text(resolution.sentence(point.target_fpr)), icon=":material/info:")
st.markdown(board.headline(table, point, words, view))
note = board.view_note(table, test, scores, view, dataset)
if note:
    st.caption(note)

COLUMNS = {
    "detector": st.column_config.TextColumn("Detector", pinned=True),
    "tied": st.column_config.TextColumn(
        "", width="small", help="≈ best: not significantly behind the best detector (at the operating point: exact "
                                "McNemar tests on the same attacks; with a preset: paired DeLong tests of ROC AUC; "
                                "Holm-corrected, 5 %)."),
    "recall": st.column_config.NumberColumn("Recall", format="percent", help=metrics.METRIC_HELP["recall"]),
    "caught": st.column_config.TextColumn("Caught", help=f"{words.positives.capitalize()} flagged / all test "
                                                         f"{words.positives}."),
    "recall_ci": st.column_config.TextColumn("Recall 95 % CI", help="Wilson interval from the counts."),
    "fpr": st.column_config.NumberColumn("FPR", format="percent", help=metrics.METRIC_HELP["fpr"]),
    "false_alarms": st.column_config.TextColumn("False alarms", help="Normal test records flagged / all of them."),
    "fpr_ci": st.column_config.TextColumn("FPR 95 % CI", help="Wilson interval from the counts."),
    "alerts_per_day": st.column_config.NumberColumn("Alerts/day", format="%.0f",
                                                    help="Expected alerts a day at this threshold for the budget's "
                                                         "records a day (false alarms on normal traffic, plus the "
                                                         f"{words.positives} caught among the expected share)."),
    "pauc": st.column_config.NumberColumn("pAUC", format="%.3f",
                                          help="ROC AUC up to the target FPR, standardised (McClish): 0.5 is chance, "
                                               "1 perfect. Threshold-free within the range the analyst works in."),
    "pauc_ci": st.column_config.TextColumn("pAUC 95 % CI", help=f"Stratified bootstrap, {comparison.RESAMPLES:,} "
                                                                "resamples, seed 0."),
    "roc_auc": st.column_config.NumberColumn("ROC AUC", format="%.4f", help=metrics.METRIC_HELP["roc_auc"]),
    "roc_auc_ci": st.column_config.TextColumn("ROC AUC 95 % CI", help="DeLong, on the logit scale."),
    "pr_auc": st.column_config.NumberColumn("PR AUC", format="%.3f", help=metrics.METRIC_HELP["pr_auc"]),
    "pr_auc_ci": st.column_config.TextColumn("PR AUC 95 % CI", help=f"Stratified bootstrap, {comparison.RESAMPLES:,} "
                                                                    "resamples, seed 0."),
    "precision": st.column_config.NumberColumn("Precision", format="%.3f", help=metrics.METRIC_HELP["precision"]),
    "f1": st.column_config.NumberColumn("F1", format="%.3f", help=metrics.METRIC_HELP["f1"]),
    "threshold": st.column_config.NumberColumn("Threshold", format="%.4g",
                                               help=f"The detector's threshold in force (raw score), {view} view."),
    "feature_set": st.column_config.TextColumn("Features", width="small",
                                               help="The feature set the detector was trained on."),
    "uses_labels": st.column_config.CheckboxColumn(
        "Labels", width="small", help=f"Ticked: the supervised ceiling, trained on labelled {words.positives}. "
                                      "Listed last, as a reference, never as the best detector."),
}
shown = board.display(table, point)
st.subheader("Leaderboard at the operating point")
st.caption({"preset": "Ranked by ROC AUC", "fpr": "Ranked by recall at the target FPR",
            "budget": "Ranked by recall within the budget", "cost": "Ranked by expected cost"}[point.kind]
           + ", the supervised ceiling last; click a header to sort by it, hover it for what it means, select a row "
             "to open that detector in the threshold explorer. Every share comes with the count it rests on and a "
             "95 % interval.")
picked_rows = st.dataframe(shown, hide_index=True, column_config=COLUMNS, key="overview_leaderboard",
                           height=layout.table_height(len(shown)), on_select="rerun", selection_mode="single-row",
                           column_order=board.column_order(point))
picked = ui.selected(picked_rows, "rows")
if picked:
    st.session_state[ui.FOCUS_KEY] = order[picked[0]]
    st.switch_page("app_pages/threshold_explorer.py")

st.subheader("ROC curves")
points = {labels[n]: (table.loc[n, "fpr"], table.loc[n, "recall"]) for n in order}
top = {labels[n] for n in order[:5]}
st.plotly_chart(figures.roc_figure({labels[n]: summaries[n].roc for n in order},
                                   {labels[n]: summaries[n].roc_auc for n in order}, points,
                                   title="ROC curves (× = threshold in force; the top five drawn, the rest a legend "
                                         "click away)", log_fpr=True, min_fpr=resolution.step if n_normals else 1e-3,
                                   shown=top, target_fpr=point.target_fpr),
                key="overview_roc")
st.caption(metrics.METRIC_HELP["roc_auc"] + f" The false-positive rate is on a log scale down to one normal test "
           f"record ({percent(resolution.step) if n_normals else '–'}): good detectors differ mostly there.")

SECTIONS = ("What will it miss?", "Detection rate per category", "Agreement", "Compare two detectors")
SECTION_KEY = "overview_section"
PAIR_KEY = "overview_pair_to_compare"


def misses_section() -> None:
    """Caught and missed per category for one detector at its threshold, and its decision report."""
    focus = ui.detector_picker("Detector", order, key="overview_miss_detector", default=order[0])
    categories_shown = dataset.categories_in(test)
    missing = board.misses(test, scores[focus], thresholds[focus], view, categories_shown)
    left, right = st.columns([3, 2])
    with left:
        st.dataframe(missing, hide_index=True, key="overview_misses", height=layout.table_height(len(missing)),
                     column_config={"category": st.column_config.TextColumn("Category"),
                                    "records": st.column_config.NumberColumn("Test records", format="%d"),
                                    "caught": st.column_config.NumberColumn("Caught", format="%d"),
                                    "missed": st.column_config.NumberColumn("Missed", format="%d"),
                                    "rate": st.column_config.NumberColumn("Detection rate", format="percent"),
                                    "interval": st.column_config.TextColumn("95 % CI")})
    with right:
        names_missed = board.missed_names(test, scores[focus], thresholds[focus], view)
        st.dataframe(names_missed, hide_index=True, key="overview_missed_names",
                     height=layout.table_height(len(names_missed)),
                     column_config={"name": st.column_config.TextColumn("Attack name" if dataset.builtin
                                                                        else "Label value"),
                                    "missed": st.column_config.NumberColumn("Missed", format="%d"),
                                    "of": st.column_config.NumberColumn("Of", format="%d")})
    st.caption(f"{textsafe.markdown_text(labels[focus])} at its threshold in force ({thresholds[focus]:.6g}): each "
               f"category's {words.positives} caught and missed on the test split, with the Wilson interval of the "
               "rate.")
    report_thresholds = {focus: thresholds[focus]} if focus in moved else None
    parts = (loaders.get_store(), loaders.get_splits(), loaders.validation_scores_later())

    def build_report() -> str:  # called when the button is clicked, outside this run: everything it needs is bound
        store_, splits_, validation_scores = parts
        return report.build(dataset.key, view, focus, point, report_thresholds, declaration=dataset,
                            store=store_, splits=splits_, scores=Scored(scores, validation_scores()),
                            thresholds_source="moved by hand in this session" if report_thresholds else "")[0]

    st.download_button(
        f"Decision report for {labels[focus]} (HTML)", key="overview_report", icon=":material/description:",
        mime="text/html", on_click="ignore", file_name=f"anodet-report-{dataset.key}-{focus}-{view}.html",
        data=build_report,  # built when clicked (~2 s), not on every rerun
        help="One self-contained file (it opens offline): the dataset, label view, store hash, this detector, its "
             "threshold and the operating point, expected alerts, recall per category with counts and intervals, "
             "what it misses, the charts, and the thresholds file to deploy; every number can be recomputed from "
             "the store.")


def categories_section() -> None:
    """Every detector's detection rate per category at its threshold, counts and intervals on hover."""
    categories_shown = dataset.categories_in(test)
    rates = metrics.category_rates({n: scores[n] for n in order}, thresholds, test.category, categories_shown)
    counts = pd.Series(test.category).value_counts()
    columns = [f"{c} ({counts.get(c, 0):,})" for c in categories_shown]  # figures show text as typed
    st.plotly_chart(figures.rate_heatmap([labels[n] for n in order], columns, rates,
                                         title=f"Detection rate per {words.positive} category",
                                         positive=words.positive,
                                         counts=[int(counts.get(c, 0)) for c in categories_shown]),
                    key="overview_rates")
    st.caption("Share of each category's test records flagged at the detector's threshold (record counts in "
               "brackets; hover for the count flagged and its 95 % interval). "
               + ("*novel*: attack types that appear only in the test file." if dataset.builtin else
                  f"Categories are your label's anomalous values (the {MAX_CATEGORIES} most common; the rest are "
                  "*other*)."))


def agreement_section() -> None:
    """Which detectors flag the same test records; a click on a cell compares that pair."""
    common = agreement.agreement(agreement.flag_matrix({n: scores[n] for n in order}, thresholds))
    cell = st.plotly_chart(figures.agreement_heatmap([labels[n] for n in order], common,
                                              title="Which detectors agree: share of one's flags the other flags "
                                                    "too"),
                    key="overview_agreement", on_select="rerun", selection_mode="points")
    st.caption("Row *A*, column *B*: the share of the test records *A* flags that *B* flags too, at the current "
               "thresholds (hover for the counts). Click a cell to compare that pair.")
    clicked = ui.selected(cell, "points")
    if clicked:
        i, j = (int(v) for v in layout.customdata_pair(clicked[0].get("customdata")))
        if i != j and (order[i], order[j]) != st.session_state.get("overview_pair_clicked"):
            st.session_state["overview_pair_clicked"] = st.session_state[PAIR_KEY] = (order[i], order[j])
            st.rerun()  # the compare section opens on that pair (a section's state is set before the tabs are)


def compare_section() -> None:
    """Two detectors on the same test records: curves, paired differences with intervals, what each flags alone."""
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
        pair_rows = board.pair_table(y_test, scores, thresholds, a, b, labels)
        st.dataframe(pair_rows, hide_index=True, key="overview_deltas", height=layout.table_height(len(pair_rows)),
                     column_config={"metric": st.column_config.TextColumn("", pinned=True),
                                    labels[a]: st.column_config.NumberColumn(format="%.4f"),
                                    labels[b]: st.column_config.NumberColumn(format="%.4f"),
                                    "difference": st.column_config.NumberColumn(f"{labels[b]} − {labels[a]}",
                                                                                format="%+.4f"),
                                    "p": st.column_config.NumberColumn(
                                        "p", format="%.3g",
                                        help="Two-sided: paired DeLong for ROC AUC, exact McNemar on the same records "
                                             "for recall and FPR; the bootstrap gives PR AUC's interval only.")})
        st.caption(f"{textsafe.markdown_text(labels[b])} minus {textsafe.markdown_text(labels[a])} on the same "
                   f"{len(test):,} test records ({view} view), at their thresholds in force, with the 95 % interval of "
                   "each paired difference: an interval that contains 0 is not a difference these records show.")
        only_a, only_b = agreement.disagreements(scores, thresholds, a, b)
        list_a, list_b = st.columns(2, gap="medium")
        y = np.asarray(test.label(view)) == 1
        for col, only, first, second in ((list_a, only_a, a, b), (list_b, only_b, b, a)):
            with col:
                st.markdown(f"**{textsafe.markdown_text(labels[first])} flags, "
                            f"{textsafe.markdown_text(labels[second])} passes**: "
                            f"{len(only):,} record{'s' if len(only) != 1 else ''} "
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


st.subheader("Look closer")
if PAIR_KEY in st.session_state:  # an agreement cell clicked: compare that pair
    st.session_state["overview_a"], st.session_state["overview_b"] = st.session_state.pop(PAIR_KEY)
    st.session_state[SECTION_KEY] = SECTIONS[3]
sections = st.tabs(list(SECTIONS), key=SECTION_KEY, bind="query-params")
for tab, draw in zip(sections, (misses_section, categories_section, agreement_section, compare_section),
                     strict=True):
    if tab.open:  # only the open section is computed and drawn: the first screen stays light
        with tab:
            draw()
