"""Flagged records: what one detector flags at its current threshold, and why, record by record."""

from __future__ import annotations

import numpy as np
import streamlit as st

from anodet import textsafe
from anodet.app import figures, layout, loaders, records, state, ui
from anodet.datasets.kdd_schema import NORMAL
from anodet.datasets.usersplits import MAX_CATEGORIES
from anodet.detectors import explain

DEFAULT_OUTCOMES = ["true positive", "false positive"]
RECORD_KEY = "flagged_record"  # the test record (row of the test split) whose detail is open; other pages set it too

st.title("Flagged records")
dataset = state.current_dataset()
positive = dataset.anomaly_word
view = state.label_view()
store = loaders.get_store(loaded=False)
names = store.names
scores = loaders.get_test_scores()
test = loaders.get_splits().test

top = st.columns([2, 3])
with top[0]:
    name = ui.detector_picker("Detector", names, key="flagged_detector")
threshold = ui.get_threshold(name)
feature_set = store.feature_set_for(name)
table = records.record_table(test, scores[name], threshold, view if dataset.labelled else None, positive,
                             dataset.words.negative)
with top[1]:
    st.markdown(f"**{textsafe.markdown_text(loaders.display_name(name))}** flags "
                f"**{int((table['score'] >= threshold).sum()):,}** of "
                f"{len(table):,} test records at threshold **{threshold:.6g}**: this session's threshold for it "
                f"under the **{view}** label view ("
                + ("moved by hand" if name in ui.moved([name], view) else
                   "chosen on the validation split for the operating point, "
                   + textsafe.markdown_text(ui.operating_point().describe()))
                + ").")
    st.page_link("app_pages/threshold_explorer.py", label="Move the threshold in the threshold explorer",
                 icon=":material/tune:")

f1, f2, f3 = st.columns([3, 2, 2])
if dataset.labelled:
    chosen_outcomes = f1.pills("Outcome", records.outcome_names(positive)[:3], selection_mode="multi",
                               default=DEFAULT_OUTCOMES, key=state.keyed("flagged_outcomes"),
                               help=f"True positive: a flagged {positive}. False positive: a flagged "
                                    f"{dataset.words.negative} record. Missed {positive}: "
                                    f"{'an' if positive[:1] in 'aeiou' else 'a'} {positive} "
                                    "scoring below the threshold. None chosen: all records.")
else:
    chosen_outcomes = f1.pills("Outcome", records.UNLABELLED_OUTCOMES, selection_mode="multi", default=["flagged"],
                               key="flagged_outcomes_unlabelled",
                               help="This dataset has no labels, so a record is only flagged or not (no true or "
                                    "false positives). None chosen: all records.")
chosen_categories = f2.multiselect("Category", [NORMAL, *dataset.categories_in(test)] if dataset.labelled else [],
                                   key=state.keyed("flagged_categories"), placeholder="All categories",
                                   disabled=not dataset.labelled)
chosen_attacks = f3.multiselect("Attack name" if dataset.builtin else "Label value",
                                sorted(set(test.label_text.astype(str))), key=state.keyed("flagged_attacks"),
                                placeholder="All attack names" if dataset.builtin else "All label values",
                                disabled=not dataset.labelled)
shown = records.filter_records(table, chosen_outcomes, chosen_attacks, chosen_categories)

filter_id = abs(hash((name, threshold, view, tuple(chosen_outcomes or ()), tuple(chosen_categories),
                      tuple(chosen_attacks))))




def _open(position: int | None) -> None:
    st.session_state[state.keyed(RECORD_KEY)] = position


def _changed(what: str, selection: tuple) -> bool:
    """True the first time a selection is seen: only a new click opens a record (Previous/Next can move on)."""
    key = f"flagged_last_{what}"
    new = st.session_state.get(key) != selection
    st.session_state[key] = selection
    return new


if shown.empty:
    st.info("No record matches these filters. Widen the outcome, category or attack filters, or move the threshold.")
else:
    hist_col, table_col = st.columns([2, 3])
    hist_key = f"flagged_hist_{filter_id}"
    with hist_col:
        bins = figures.histogram_bins(shown["score"].to_numpy(), (shown["label"] == positive).to_numpy(), bins=40)

        def _records_in_bar(rows, point):
            lo, hi = layout.customdata_pair(point.get("customdata"))
            label = positive if point.get("curve_number") == 1 else ("normal" if dataset.labelled else "unlabelled")
            s = rows["score"].to_numpy()
            return rows[(s >= lo) & (s <= hi) & (rows["label"] == label).to_numpy()]

        event = st.plotly_chart(
            figures.score_histogram(bins, threshold, log_count=True, title="Scores of these records"),
            on_select="rerun", selection_mode="points", key=hist_key)
        st.caption("Click a bar to list only its records and open the highest-scoring one; double-click the "
                   "chart to list them all again.")
    points = ui.selected(event, "points")
    bar = (points[0].get("curve_number"), points[0].get("point_number")) if points else None
    if _changed("bar", (hist_key, bar)) and points:
        in_bar = _records_in_bar(shown, points[0])
        if not in_bar.empty:
            _open(int(in_bar.iloc[0]["position"]))  # a new bar opens its highest-scoring record
    if points:
        in_bar = _records_in_bar(shown, points[0])
        shown = in_bar if not in_bar.empty else shown
    with table_col:
        display = shown.reset_index()
        table_key = f"flagged_table_{filter_id}_{abs(hash(bar))}"

        chosen = st.dataframe(
            display, on_select="rerun", selection_mode="single-row", hide_index=True, height=380,
            key=table_key,
            column_order=["record", "score", "outcome", "label", "attack", "category",
                          *(f"{c} (input)" if c in records.OWN_COLUMNS else c for c in feature_set.raw_columns)],
            column_config={"record": st.column_config.NumberColumn("Record", help="Line number in the raw test file.",
                                                                   format="%d", pinned=True) if dataset.builtin else
                           st.column_config.TextColumn("Record", pinned=True, help=(
                               f"The record's {dataset.id_column!r}." if dataset.id_column else
                               "The record's data row in its input file.")),
                           "score": st.column_config.NumberColumn("Score", format="%.4g", pinned=True),
                           "attack": st.column_config.TextColumn("attack" if dataset.builtin else "label value")})
        st.caption(f"{len(shown):,} records, highest score first. Select a row to see why it scored as it did.")
    rows = ui.selected(chosen, "rows")
    if _changed("row", (table_key, rows[0] if rows else None)) and rows:
        _open(int(display.iloc[rows[0]]["position"]))
    download = shown.drop(columns="position")
    download.insert(0, "label_view", view)
    download.insert(0, "threshold", threshold)
    download.insert(0, "detector", name)
    st.download_button(f"Download these {len(shown):,} records (CSV)", records.records_csv(download),
                       file_name=f"anodet-{name}-{view}-flagged.csv", mime="text/csv", icon=":material/download:",
                       key="flagged_download",
                       help=f"Each row also records the detector, its threshold ({threshold:.6g}) and the label "
                            f"view ({view}) the outcomes were computed with.")

position = st.session_state.get(state.keyed(RECORD_KEY))
if position is not None and not 0 <= int(position) < len(test):
    position = None
if position is not None:
    position = int(position)
    record = table[table["position"] == position].iloc[0]
    st.divider()
    order = shown["position"].to_numpy()
    where = np.flatnonzero(order == position)
    head = st.columns([4, 1, 1])
    head[0].subheader(f"Record {textsafe.markdown_text(record.name)}")
    if where.size:
        i = int(where[0])
        head[0].caption(f"Row {i + 1:,} of the {len(order):,} records listed above.")
        head[1].button("Previous", icon=":material/arrow_upward:", key="flagged_previous", disabled=i == 0,
                       on_click=_open, args=(int(order[max(i - 1, 0)]),), width="stretch",
                       help="The next higher-scoring record in the list.")
        head[2].button("Next", icon=":material/arrow_downward:", key="flagged_next", disabled=i == len(order) - 1,
                       on_click=_open, args=(int(order[min(i + 1, len(order) - 1)]),), width="stretch",
                       help="The next lower-scoring record in the list.")
    else:
        head[0].caption("This record is not in the list above (its filters leave it out), so there is no "
                        "previous or next record to step to.")
    a, b, c, d = st.columns(4)
    a.metric("Label", record["label"],
             help=("Under the {view} label view." if len(dataset.view_keys) > 1 else "As declared.").format(view=view))
    b.metric("Attack name" if dataset.builtin else "Label value", textsafe.markdown_text(record["attack"]))
    c.metric("Category", textsafe.markdown_text(record["category"]),
             help="novel: an attack type that appears only in the test file." if dataset.builtin else
             f"The label value; values rarer than the {MAX_CATEGORIES} most common are 'other'.")
    d.metric(f"{loaders.display_name(name)} score", f"{record['score']:.4g}", delta=record["outcome"],
             delta_color="off")
    fields = test.rows.iloc[position]
    if dataset.builtin:
        st.markdown("**Connection**: " + " · ".join(
            f"{label} **{textsafe.markdown_text(fields[field])}**"
            for field, label in records.CONNECTION_FIELDS.items()))
    numeric = feature_set.numeric_columns
    values = fields[numeric].to_numpy(dtype=np.float64)
    left, right = st.columns(2)
    with left:
        sorted_train = loaders.get_sorted_train()
        pct = records.feature_percentiles(np.column_stack([sorted_train[c] for c in numeric]), values)
        st.plotly_chart(figures.feature_percentile_figure(numeric, pct, values), key="flagged_percentiles")
        st.caption("Bar labels are the raw values. Red: outside the 1st–99th percentile of normal training records.")
    with right:
        if loaders.is_external(name):
            st.info(f"{textsafe.markdown_text(loaders.display_name(name))} is an external detector: its scores were "
                    "made elsewhere, with no model here to split a score across the record's features.")
        else:
            loaded = loaders.get_store()  # the detectors themselves, for per-feature contributions
            columns, contributions, method = explain.explain_raw(
                loaded.detector(name), feature_set, test.rows.iloc[[position]],
                loaders.get_reference_record(feature_set.raw_columns))
            st.plotly_chart(figures.feature_contribution_figure(columns, contributions, loaders.display_name(name)),
                            key="flagged_contributions")
            note = " One-hot parts (each service, protocol, flag) are summed back to their column." if (
                feature_set.categorical_columns) else ""
            st.caption(f"Method: {explain.EXPLANATION_METHODS[method]}.{note}")
    st.markdown("**Every detector on this record**, each at this session's threshold for it under the "
                f"**{view}** label view")
    verdicts = records.record_verdicts(scores, ui.get_thresholds(names), position,
                                         {n: loaders.display_name(n) for n in names})
    st.dataframe(verdicts, hide_index=True, key="flagged_verdicts", height=layout.table_height(len(verdicts)),
                 column_config={"score": st.column_config.NumberColumn(format="%.4g"),
                                "threshold": st.column_config.NumberColumn(format="%.4g"),
                                "score / threshold": st.column_config.NumberColumn(format="%.2f")})
elif not shown.empty:
    st.info("Select a row of the table, or a bar of the histogram, to see that record's details.")
