"""Threshold explorer: one detector (or two side by side), a live threshold control and its presets.

The control redraws the histogram line, ROC/PR points, tiles and confusion matrix in the browser
while its handle moves; only the released value reruns this panel (an ``st.fragment``). The
page's state lives in the URL, and thresholds can be exported to and imported from a file.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from anodet import textsafe
from anodet.app import board, figures, layout, loaders, state, ui
from anodet.app.threshold_control import threshold_control
from anodet.app.threshold_control.payload import control_payload
from anodet.evaluation import intervals, leaderboard, metrics, operating, thresholds
from anodet.evaluation.operating import percent, percent_range

TABLE_PRESETS = ("best_accuracy", "best_f1", "mean_3sigma")


@st.fragment
def panel(name: str, view: str, compact: bool, chosen: tuple[str, ...]) -> None:
    """The control (with its preset buttons) and the threshold in force: all a release reruns.

    Kept small on purpose: the browser redraws every element of a fragment that reruns, so the
    rate presets (with their inputs) live in a fragment of their own.
    """
    with ui.timed(f"explorer_panel {name}"):
        _panel(name, view, compact)
        ui.set_explorer_url(chosen, view)


def _test_share(name: str, view: str, value: float) -> str:
    curve = loaders.get_test_curves(view)[name]
    m = curve.metrics(value)
    return f"flags {(m['tp'] + m['fp']) / len(curve.sorted_scores):.1%} of the test records"


def _panel(name: str, view: str, compact: bool) -> None:
    store = loaders.get_store(loaded=False)
    threshold = ui.get_threshold(name)
    presets = store.thresholds(name, view)
    default = store.default_preset
    buttons = []
    for key in (k for k in TABLE_PRESETS if k in presets):
        same = [leaderboard.PRESET_LABELS[k] for k in TABLE_PRESETS
                if k != key and k in presets and np.isclose(presets[k], presets[key], rtol=1e-9)]
        buttons.append({
            "key": key, "value": presets[key],
            "label": leaderboard.PRESET_LABELS[key] + (" (default)" if key == default else ""),
            "help": f"{metrics.PRESET_HELP[key]} ({view} view) Value {presets[key]:.6g}; "
                    f"{_test_share(name, view, presets[key])}."
                    + (f" The same value as {' and '.join(same)} for this detector." if same else "")})
    payload = control_payload(loaders.get_control_static(name, view), threshold, presets=buttons)
    threshold_control(payload, key=f"threshold_control_{name}_{view}",
                      on_release=lambda value: ui.set_threshold(name, value, view))
    threshold = ui.get_threshold(name)
    in_force = [leaderboard.PRESET_LABELS[key] for key in TABLE_PRESETS
                if key in presets and np.isclose(presets[key], threshold, rtol=1e-9)]
    how = ("moved by hand" if name in ui.moved([name], view) else "the operating point's")
    st.markdown(f"In force on every page: threshold **{threshold:.6g}** ({how}"
                + (f"; {', '.join(in_force)}" if in_force else "") + f"), {_test_share(name, view, threshold)}.")
    st.caption(textsafe.markdown_text(_counts_line(name, view, threshold)))


def _counts_line(name: str, view: str, threshold: float) -> str:
    """Recall, FPR and precision at ``threshold`` with the counts they rest on and their 95 % Wilson intervals."""
    tp, fp, fn, tn = loaders.get_test_curves(view)[name].counts(threshold)
    words = state.current_dataset().words
    parts = []
    for label, k, n in (("recall", tp, tp + fn), ("false-positive rate", fp, fp + tn), ("precision", tp, tp + fp)):
        if n == 0:
            parts.append(f"{label} – (no records)")
            continue
        low, high = intervals.wilson(k, n)
        parts.append(f"{label} {percent(k / n)} ({k:,} of {n:,}; 95 % CI {percent_range(float(low), float(high))})")
    return (f"On the test split: {'; '.join(parts)}. {words.positives.capitalize()}: {tp + fn:,}; "
            f"{words.negatives}: {fp + tn:,}.")


def operating_point_box(name: str, view: str) -> None:
    """The session's operating point and this detector's threshold there (one choice for every detector: the
    sidebar), and a way back to it after moving the threshold by hand."""
    point = ui.operating_point()
    at_point = ui.op_thresholds(view).get(name)
    st.markdown(f"**Operating point**: {textsafe.markdown_text(point.describe())} (change it in the sidebar, for "
                "every detector at once).")
    if at_point is None:
        st.caption(textsafe.markdown_text(operating.without_threshold(point, [loaders.display_name(name)])))
        return
    note = f"This detector's threshold there: {at_point:.6g}, {_test_share(name, view, at_point)}."
    if name in ui.moved([name], view):
        cols = st.columns([3, 2], vertical_alignment="center")
        cols[0].caption(note + " You moved it by hand.")
        if cols[1].button("Back to the operating point", key=f"op_back_{name}", width="stretch"):
            ui.session_thresholds(view).pop(name, None)
            st.rerun(scope="app")
    else:
        st.caption(note)


def share_thresholds(names: list[str], view: str) -> None:
    """Export this view's thresholds to a file (`anodet score/stream --thresholds FILE`), or import one."""
    store = loaders.get_store(loaded=False)
    export, load = st.columns(2, vertical_alignment="bottom")
    point = ui.operating_point()
    at_point = ui.op_thresholds(view)
    moved_now = ui.session_thresholds(view)  # the live dict: a release in a control's fragment updates it

    def document() -> bytes:
        """Built when the button is clicked, from what is in force then (no Streamlit call: it may run outside
        this session's script)."""
        values = {n: float(moved_now.get(n, at_point.get(n, store.default_threshold(n, view)))) for n in names}
        return thresholds.thresholds_document(values, view, store.hash, operating_point=point.describe(),
                                              moved=[n for n in names if n in moved_now])

    export.download_button(
        "Export thresholds", key="export_thresholds", mime="application/json", icon=":material/download:",
        file_name=f"anodet-thresholds-{view}.json", on_click="ignore", width="stretch", data=document,
        help=f"Every detector's threshold in force under the {view} view (the operating point's, or moved by hand), "
             "in a file that `python -m anodet score --thresholds FILE` and `python -m anodet stream --thresholds "
             "FILE` read; it also records the operating point that chose them.")

    def _import() -> None:
        upload = st.session_state.get("import_thresholds")
        if upload is None:
            return
        try:
            file_view, values = thresholds.read_thresholds_file(upload.getvalue(), known=names, name=upload.name)
        except thresholds.ThresholdError as exc:
            st.session_state["import_message"] = ("error", str(exc))
            return
        target = file_view if file_view in state.current_dataset().view_keys else view
        for detector, value in values.items():
            ui.set_threshold(detector, value, target)
        elsewhere = "" if target == view else f" (switch the label view to {target} to see them)"
        st.session_state["import_message"] = ("success",
                                              f"Imported {len(values)} thresholds for the {target} view{elsewhere}.")

    load.file_uploader("Import thresholds", type=["json"], key="import_thresholds", on_change=_import,
                       help="A file exported here (format anodet-thresholds/1).")
    message = st.session_state.pop("import_message", None)
    if message:
        (st.error if message[0] == "error" else st.success)(textsafe.markdown_text(message[1]))


def unlabelled_panel(name: str, view: str) -> None:
    """A dataset without labels: the score histogram with the threshold, the unlabelled presets and a number."""
    store = loaders.get_store(loaded=False)
    threshold = ui.get_threshold(name)
    scores = loaders.get_test_scores()[name]
    presets = store.thresholds(name, view)
    buttons = st.columns(len(presets) or 1)
    for column, (key, value) in zip(buttons, presets.items(), strict=False):
        if column.button(leaderboard.PRESET_LABELS.get(key, key), key=f"preset_{key}_{name}", width="stretch",
                         type="primary" if np.isclose(value, threshold, rtol=1e-9) else "secondary",
                         help=f"{metrics.PRESET_HELP.get(key, '')} Value {value:.6g}; flags "
                              f"{np.mean(scores >= value):.1%} of the test records."):
            ui.set_threshold(name, value, view)
            st.rerun()
    typed = st.number_input("Threshold (raw score)", value=float(threshold), format="%.6g",
                            key=f"unlabelled_threshold_{name}_{threshold!r}",
                            help="Records scoring at or above it are flagged, on every page.")
    if typed != threshold:
        ui.set_threshold(name, typed, view)
        st.rerun()
    st.plotly_chart(figures.unlabelled_histogram(scores[np.isfinite(scores)], threshold,
                                                 "Test scores (no labels: one colour)"),
                    key=f"unlabelled_hist_{name}")
    st.markdown(f"In force on every page: threshold **{threshold:.6g}**, flags "
                f"**{int((scores >= threshold).sum()):,}** of {len(scores):,} test records "
                f"({np.mean(scores >= threshold):.1%}).")


dataset = state.current_dataset()
st.title("Threshold explorer")
switch = " (switch in the sidebar)" if len(dataset.view_keys) > 1 else ""
labels_note = f"Labels: **{state.label_view()}** view{switch}. " if dataset.labelled else "No labels. "
how = ("drag the handle and every chart follows at once" if dataset.labelled else
       "pick a preset or type a threshold and see what it flags")
st.caption(f"Choose where a detector draws the line between {dataset.words.negative} and {dataset.words.positive}, "
           "and see what it "
           f"costs: {how}. Dataset: **{textsafe.markdown_text(dataset.title)}**. {labels_note}This page's link keeps "
           "its state.")
for problem in ui.url_problems():
    st.warning(f"This link's {problem}; it was left out.")
view = state.label_view()
names = loaders.get_store(loaded=False).names
if dataset.labelled:
    loaders.get_test_curves(view)  # load and score before the panels draw, under one spinner
else:
    st.info("This dataset has no labels, so there are no ROC or precision-recall curves and no confusion matrix: "
            "set a threshold from the score histogram and the presets chosen without labels. Declare the dataset "
            "again with a label column (`--label COLUMN`) to see them.")
pick, compare = st.columns(2)
with pick:
    primary = ui.detector_picker("Detector", names, key="explorer_detector")
others = [n for n in names if n != primary]
if st.session_state.get("explorer_compare") not in [*others, None]:
    st.session_state["explorer_compare"] = None
with compare:
    other = st.selectbox("Compare with (optional)", others, index=None, key="explorer_compare",
                         format_func=loaders.name_format(others), placeholder="No second detector")
chosen = (primary, *([other] if other else []))
for column, name in zip(st.columns(len(chosen)), chosen, strict=True):
    with column:
        st.subheader(loaders.display_name(name))
        if not dataset.labelled:
            unlabelled_panel(name, view)
            continue
        panel(name, view, compact=len(chosen) > 1, chosen=chosen)
        with st.container(border=True):
            operating_point_box(name, view)
if len(chosen) == 2 and dataset.labelled:
    labels = {n: loaders.display_name(n) for n in chosen}
    pair = board.pair_table(loaders.labels_or_normal("test", view), loaders.get_test_scores(),
                            ui.get_thresholds(chosen), chosen[0], chosen[1], labels)
    st.dataframe(pair, hide_index=True, key="explorer_pair", height=layout.table_height(len(pair)),
                 column_config={"metric": st.column_config.TextColumn("", pinned=True),
                                labels[chosen[0]]: st.column_config.NumberColumn(format="%.4f"),
                                labels[chosen[1]]: st.column_config.NumberColumn(format="%.4f"),
                                "difference": st.column_config.NumberColumn(
                                    f"{labels[chosen[1]]} − {labels[chosen[0]]}", format="%+.4f"),
                                "p": st.column_config.NumberColumn("p", format="%.3g")})
    st.caption("The two detectors on the same test records at their thresholds in force: each difference with its "
               "95 % interval and p-value (paired DeLong for ROC AUC, exact McNemar for recall and FPR, a paired "
               "bootstrap for PR AUC). An interval that contains 0 is not a difference these records show.")
with st.expander("Share these thresholds"):
    share_thresholds(names, view)
