"""Threshold explorer: one detector (or two side by side), a threshold slider and its effects.

Each detector panel is an ``st.fragment``: moving its slider or clicking a preset reruns only
that panel, and every number comes from the cached, pre-sorted test scores (one binary search).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from anodet import dashboard, evaluate, figures, ui

ui.ensure_app_frame()

SLIDER_HELP = (
    "Scores are heavy-tailed, so the slider moves by score percentile: at 80 the threshold is the "
    "score above which the top 20% of test records lie. The raw threshold is shown below it. "
    "Your threshold is kept for this session and used on every page."
)
TILES = ("precision", "recall", "f1", "f2", "accuracy", "fpr")


def _apply(name: str, threshold: float) -> None:
    ui.set_threshold(name, threshold)


@st.fragment
def panel(name: str, view: str, compact: bool) -> None:
    """Slider, presets, metrics and charts of one detector; reruns on its own."""
    with ui.timed(f"explorer_panel {name}"):
        _panel(name, view, compact)


def _panel(name: str, view: str, compact: bool) -> None:
    store = ui.get_store(loaded=False)
    curve = ui.get_test_curves(view)[name]
    summary = ui.get_curve_summaries(view)[name]
    bins = ui.get_histograms(view)[name]
    label = ui.display_name(name)
    slider_key, synced_key = f"explorer_pct_{name}", f"explorer_pct_for_{name}"

    # The slider's own state is dropped when the page is left, so its position is also kept with
    # the threshold it produced; when the threshold changed elsewhere (a preset, another view),
    # the slider moves to where that threshold sits among the test scores.
    threshold = ui.get_threshold(name)
    memory = st.session_state.setdefault("explorer_slider_memory", {})
    if slider_key not in st.session_state or st.session_state.get(synced_key) != threshold:
        remembered = memory.get(name)
        if remembered is not None and remembered[1] == threshold:
            st.session_state[slider_key] = remembered[0]
        else:
            st.session_state[slider_key] = round(dashboard.threshold_percentile(curve.sorted_scores, threshold), 2)
        st.session_state[synced_key] = threshold

    def _slid() -> None:
        percentile = st.session_state[slider_key]
        value = dashboard.percentile_threshold(curve.sorted_scores, percentile)
        ui.set_threshold(name, value)
        st.session_state[synced_key] = value
        memory[name] = (percentile, value)

    st.subheader(label)
    st.slider("Threshold (score percentile of the test records)", 0.0, 100.0, step=0.01, format="%.2f",
              key=slider_key, on_change=_slid, help=SLIDER_HELP)
    threshold = ui.get_threshold(name)
    metrics = curve.metrics(threshold)
    flagged = metrics["tp"] + metrics["fp"]
    st.markdown(f"Threshold **{threshold:.6g}** (raw score) · flags **{flagged:,}** of "
                f"{len(curve.sorted_scores):,} test records ({flagged / len(curve.sorted_scores):.1%})")

    presets = store.thresholds(name, view)
    n_test = len(curve.sorted_scores)

    def test_share(value: float) -> str:
        m = curve.metrics(value)
        return f"flags {(m['tp'] + m['fp']) / n_test:.1%} of the test records"

    in_force = [k for k in ("best_accuracy", "best_f1", "mean_3sigma") if np.isclose(presets[k], threshold, rtol=1e-9)]
    with st.container(border=True):
        default = store.default_threshold(name, view)
        st.caption(f"Threshold presets, chosen on the validation split ({view} view). In force: "
                   + (", ".join(dashboard.PRESET_LABELS[k] for k in in_force) if in_force else "your own threshold"))
        cols = st.columns(4 if not compact else 2)
        for i, key in enumerate(("best_accuracy", "best_f1", "mean_3sigma")):
            same = [dashboard.PRESET_LABELS[k] for k in ("best_accuracy", "best_f1", "mean_3sigma")
                    if k != key and np.isclose(presets[k], presets[key], rtol=1e-9)]
            cols[i % len(cols)].button(
                dashboard.PRESET_LABELS[key], key=f"preset_{key}_{name}", on_click=_apply, args=(name, presets[key]),
                type="primary" if key in in_force else "secondary", width="stretch",
                help=f"{evaluate.PRESET_HELP[key]} Value {presets[key]:.6g}; {test_share(presets[key])}."
                     + (f" The same value as {' and '.join(same)} for this detector." if same else ""))
        cols[3 % len(cols)].button("Reset to default", key=f"preset_reset_{name}", on_click=_apply,
                                   args=(name, default), width="stretch", disabled=np.isclose(default, threshold),
                                   help=f"The validation best-F1 threshold of the {view} view ({default:.6g}).")
        rate_rows = [st.columns([3, 2], vertical_alignment="bottom") for _ in range(2)] if compact else [
            st.columns([3, 2, 3, 2], vertical_alignment="bottom")]
        fpr_col, fpr_btn = rate_rows[0][0], rate_rows[0][1]
        cont_col, cont_btn = (rate_rows[1][0], rate_rows[1][1]) if compact else (rate_rows[0][2], rate_rows[0][3])
        fpr = fpr_col.number_input("Target FPR (%)", 0.0, 100.0, 1.0, step=0.5, key=f"target_fpr_{name}",
                                   help=evaluate.PRESET_HELP["target_fpr"])
        fpr_value = evaluate.threshold_for_rate(store.quantiles(name, view, "normal"), fpr / 100)
        fpr_btn.button("Set FPR", key=f"preset_target_fpr_{name}", on_click=_apply, width="stretch",
                       args=(name, fpr_value), help=f"Threshold {fpr_value:.6g}; {test_share(fpr_value)}.")
        cont = cont_col.number_input("Contamination (%)", 0.0, 100.0, 20.0, step=1.0, key=f"contamination_{name}",
                                     help=evaluate.PRESET_HELP["contamination"])
        cont_value = evaluate.threshold_for_rate(store.quantiles(name, view, "all"), cont / 100)
        cont_btn.button("Set rate", key=f"preset_contamination_{name}", on_click=_apply, width="stretch",
                        args=(name, cont_value), help=f"Threshold {cont_value:.6g}; {test_share(cont_value)}.")
        st.caption(f"Both rates are met on the validation split, whose class mix differs from the test split's: "
                   f"{fpr:g}% FPR there → {test_share(fpr_value)}; {cont:g}% contamination there → "
                   f"{test_share(cont_value)}.")

    ui.metric_tiles(metrics, TILES, columns=3 if compact else 6)
    ui.metric_tiles({"roc_auc": summary.roc_auc, "pr_auc": summary.pr_auc}, ("roc_auc", "pr_auc"),
                    columns=3 if compact else 6)

    log_count = st.toggle("Log count axis", key=f"explorer_log_{name}",
                          help="Attacks can be rare at some scores; a log count axis shows small bars too.")
    st.plotly_chart(figures.score_histogram(bins, threshold, log_count, title=f"{label}: test scores, normal vs attack"),
                    key=f"explorer_hist_{name}")
    curves = figures.curves_figure(summary.roc, summary.pr, (metrics["fpr"], metrics["recall"]),
                                   (metrics["recall"], metrics["precision"]) if flagged else None,
                                   summary.roc_auc, summary.pr_auc, summary.base_rate)
    confusion = dashboard.confusion_table(metrics["tp"], metrics["fp"], metrics["fn"], metrics["tn"])
    chart_col, table_col = (st.container(), st.container()) if compact else st.columns([3, 1])
    chart_col.plotly_chart(curves, key=f"explorer_curves_{name}")
    with table_col:
        st.markdown("**Confusion matrix** (test records; share of each true class)")
        st.table(confusion)
        st.caption("Flagged normal records are false positives; passed attacks are missed.")

st.title("Threshold explorer")
st.caption("Choose where a detector draws the line between normal and attack, and see what it costs. "
           f"Labels: **{ui.label_view()}** view (switch in the sidebar).")
view = ui.label_view()
names = ui.get_store(loaded=False).names
ui.get_test_curves(view)  # load and score before the panels draw, under one spinner
pick, compare = st.columns(2)
with pick:
    primary = ui.detector_picker("Detector", names, key="explorer_detector")
with compare:
    other = st.selectbox("Compare with (optional)", [n for n in names if n != primary], index=None,
                         key="explorer_compare", format_func=ui.display_name, placeholder="No second detector")
chosen = [primary, *([other] if other else [])]
for column, name in zip(st.columns(len(chosen)), chosen, strict=True):
    with column:
        panel(name, view, compact=len(chosen) > 1)
