"""Threshold explorer: one detector (or two side by side), a live threshold control and its presets.

The control redraws the histogram line, ROC/PR points, tiles and confusion matrix in the browser
while its handle moves; only the released value reruns this panel (an ``st.fragment``). The
page's state lives in the URL, and thresholds can be exported to and imported from a file.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from anodet import textsafe
from anodet.app import figures, loaders, state, ui
from anodet.app.threshold_control import threshold_control
from anodet.app.threshold_control.payload import control_payload
from anodet.evaluation import leaderboard, metrics, thresholds

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
    st.markdown(f"In force on every page: threshold **{threshold:.6g}**, {_test_share(name, view, threshold)} "
                f"({', '.join(in_force) if in_force else 'your own threshold'}).")


@st.fragment
def rate_presets(name: str, view: str, compact: bool) -> None:
    """Target FPR, contamination, cost and alert budget: a number (or two) and a button each.

    Typing a number reruns only this fragment; a button sets the threshold and reruns the page,
    so the control above moves to it.
    """
    store = loaders.get_store(loaded=False)

    def test_share(value: float) -> str:
        return _test_share(name, view, value)

    def set_button(column, label: str, key: str, value: float) -> None:
        """A button that makes ``value`` the threshold and reruns the page, so the control moves to it."""
        if column.button(label, key=f"preset_{key}_{name}", width="stretch",
                         help=f"Threshold {value:.6g}; {test_share(value)}."):
            ui.set_threshold(name, value, view)
            st.rerun(scope="app")

    validation = loaders.get_validation_curves(view).get(name)
    if validation is None:  # an external detector given without validation scores
        st.caption("These presets are chosen on the validation split's scores, which this external detector came "
                   "without; set its threshold with the control above.")
        return
    widths = [3, 2] if compact else [3, 2, 3, 2]
    rows = [st.columns(widths, vertical_alignment="bottom") for _ in range(4 if compact else 2)]
    slots = [(r[0], r[1]) for r in rows] if compact else [(r[i], r[i + 1]) for r in rows for i in (0, 2)]

    (fpr_in, fpr_btn), (cont_in, cont_btn), (cost_in, cost_btn), (budget_in, budget_btn) = slots
    fpr = fpr_in.number_input("Target FPR (%)", 0.0, 100.0, 1.0, step=0.5, key=f"target_fpr_{name}",
                              help=metrics.PRESET_HELP["target_fpr"])
    fpr_value = metrics.threshold_for_rate(store.quantiles(name, view, "normal"), fpr / 100)
    set_button(fpr_btn, "Set FPR", "target_fpr", fpr_value)
    cont = cont_in.number_input("Contamination (%)", 0.0, 100.0, 20.0, step=1.0, key=f"contamination_{name}",
                                help=metrics.PRESET_HELP["contamination"])
    cont_value = metrics.threshold_for_rate(store.quantiles(name, view, "all"), cont / 100)
    set_button(cont_btn, "Set rate", "contamination", cont_value)

    ratio = cost_in.number_input(f"Missed {state.current_dataset().anomaly_word} costs × a false alarm", 0.0, 1e6, 10.0, step=1.0,
                                 key=f"cost_ratio_{name}", help=metrics.COST_HELP)
    cost_value = validation.min_cost_threshold(ratio, 1.0)
    set_button(cost_btn, "Set cost", "cost", cost_value)
    per_day = budget_in.columns(2)
    alerts = per_day[0].number_input("Alerts/day", 0, 10**9, 100, step=10, key=f"budget_alerts_{name}",
                                     help=metrics.ALERT_BUDGET_HELP)
    records = per_day[1].number_input("Records/day", 1, 10**12, 1_000_000, step=10_000,
                                      key=f"budget_records_{name}", help="How many records the detector sees a day.")
    budget_value = validation.threshold_within_rate(min(alerts / records, 1.0))
    set_button(budget_btn, "Set budget", "budget", budget_value)
    st.caption(f"Chosen on the validation split ({view} view), whose class mix differs from the test split's: "
               f"{fpr:g}% FPR there → {test_share(fpr_value)}; {cont:g}% contamination → {test_share(cont_value)}; "
               f"cost {ratio:g}:1 → {test_share(cost_value)}; {alerts:,} alerts per {records:,} records "
               f"→ {test_share(budget_value)}.")


def share_thresholds(names: list[str], view: str) -> None:
    """Export this view's thresholds to a file (`anodet score/stream --thresholds FILE`), or import one."""
    store = loaders.get_store(loaded=False)
    export, load = st.columns(2, vertical_alignment="bottom")
    export.download_button(
        "Export thresholds", key="export_thresholds", mime="application/json", icon=":material/download:",
        file_name=f"anodet-thresholds-{view}.json", on_click="ignore", width="stretch",
        data=lambda: thresholds.thresholds_document(ui.get_thresholds(names), view, store.hash),
        help=f"Every detector's threshold under the {view} view, as this session has them, in a file that "
             "`python -m anodet score --thresholds FILE` and `python -m anodet stream --thresholds FILE` read.")

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
    other = st.selectbox("Compare with (optional)", others, index=None,
                         key="explorer_compare", format_func=loaders.name_format(others), placeholder="No second detector")
chosen = (primary, *([other] if other else []))
for column, name in zip(st.columns(len(chosen)), chosen, strict=True):
    with column:
        st.subheader(loaders.display_name(name))
        if not dataset.labelled:
            unlabelled_panel(name, view)
            continue
        panel(name, view, compact=len(chosen) > 1, chosen=chosen)
        with st.container(border=True):
            rate_presets(name, view, compact=len(chosen) > 1)
with st.expander("Share these thresholds"):
    share_thresholds(names, view)
