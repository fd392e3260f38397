"""Score a CSV: upload your own records, score them with the stored detectors, download the results.

Thin: every computation is in :mod:`anodet.scoring` (shared with ``python -m anodet score``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import streamlit as st

from anodet import evaluate, figures, scoring, ui
from anodet.data import DataError
from anodet.evaluate import PRESET_HELP

ui.ensure_app_frame()

RESULT_KEY = "score_csv_result"
EXPLORER = "explorer"
TABLE_ROWS = 5_000


@st.cache_data(show_spinner=False, max_entries=1)
def _example() -> bytes:
    return scoring.example_csv(ui.get_splits().test)


def _score(source, name: str, names: list[str], thresholds: dict[str, float], policy: str) -> None:
    """Score an upload with a progress bar; keep the results (or the failure) in the session."""
    bar = st.progress(0.0, text=f"Reading {name}…")
    tables: list[pa.Table] = []
    layouts: list[scoring.Layout] = []

    def sink(table: pa.Table, layout: scoring.Layout) -> None:
        tables.append(table)
        layouts[:] = [layout]

    def progress(fraction: float, rows: int) -> None:
        bar.progress(min(fraction, 1.0), text=f"Scoring {name}: {rows:,} rows so far…")

    max_mb = int(st.get_option("server.maxUploadSize"))
    try:
        summary = scoring.score_source(source, ui.get_store(), names, thresholds, policy, name=name, sink=sink,
                                       progress=progress, max_bytes=max_mb * 2**20)
    except scoring.InputError as exc:
        st.session_state[RESULT_KEY] = {"error": str(exc), "name": name,
                                        "problems": getattr(exc, "problems", None)}
        return
    finally:
        bar.empty()
    # Only the pandas frame is kept (one copy per session); the download is rebuilt from it on click.
    frame = pa.concat_tables(tables).to_pandas() if tables else None
    del tables[:]
    st.session_state[RESULT_KEY] = {"name": name, "summary": summary, "layout": layouts[0], "frame": frame}


def _problem_table(problems: list[scoring.RowProblem]) -> None:
    st.dataframe({"row": [p.row for p in problems], "why it was not scored": [p.reason for p in problems]},
                 hide_index=True, height=min(300, 38 + 35 * len(problems)))


st.title("Score a CSV")
st.markdown("Upload your own network records and see what the pretrained detectors make of them. "
            "The same checks and scores as `python -m anodet score` (use that for files of any size).")
store = ui.get_store()
view = ui.label_view()

with st.expander("What file can I upload?", expanded=RESULT_KEY not in st.session_state):
    st.markdown(
        "* **A CSV with a header** naming the 18 features (any order): "
        + ", ".join(f"`{f}`" for f in scoring.FEATURES)
        + ". Other columns (an id, a timestamp…) are kept and passed through. A `label` column "
        "(`normal`, attack names such as `smurf.`, or 0/1) turns on metrics and the ROC curve.\n"
        "* **Raw KDD Cup 99 records**: 41 values and an optional label per line, no header.\n"
        f"* Either one may be gzip-compressed (`.gz`); up to {st.get_option('server.maxUploadSize')} MB.\n"
        "* Rows that cannot be scored (text where a number belongs, missing or infinite values, the wrong "
        "number of fields) are skipped and listed with their row numbers, or the file is rejected: your "
        "choice. Rows are numbered from 1 after the header. Values outside the training range are scored "
        "and marked `out_of_range`.")
    try:
        example = _example()
    except DataError as exc:
        st.info(f"The example file needs the KDD data, which is not available here: {exc}")
        example = None
    if example is not None:
        st.download_button("Download an example file (400 KDD test records)", example, file_name="anodet-example.csv",
                           mime="text/csv", icon="⬇️", on_click="ignore", key="score_example_download")

upload = st.file_uploader("CSV file (optionally .gz)", type=["csv", "gz", "txt"], key="score_upload",
                          help="A header naming the 18 features, or raw KDD records.")

names = st.multiselect("Detectors", store.names, default=scoring.default_detectors(store.names),
                       format_func=ui.display_name, key="score_detectors",
                       help="Local Outlier Factor and sequence-to-sequence are left out by default: they are "
                            "much slower.")
presets = list(store.thresholds(store.names[0], view))
c2, c3 = st.columns(2)
threshold_source = c2.selectbox(
    "Thresholds", [EXPLORER, *presets], key="score_threshold_source",
    format_func=lambda p: "as set in the threshold explorer" if p == EXPLORER else f"preset: {p}",
    help="The threshold explorer's per-detector thresholds (this session), or a preset chosen on the validation "
         "split:  \n" + "  \n".join(f"**{k}**: {v}" for k, v in PRESET_HELP.items()))
policy = c3.radio("Rows that cannot be scored", ["skip", "reject"], key="score_policy", horizontal=True,
                  format_func=lambda p: {"skip": "skip and list them", "reject": "reject the file"}[p])

buttons = st.container(horizontal=True)
go = buttons.button("Score the file", type="primary", disabled=upload is None or not names, key="score_go")
go_example = buttons.button("Try the example file", disabled=example is None or not names, key="score_go_example")
if not names:
    st.info("Choose at least one detector.")
elif go or go_example:
    thresholds = (ui.get_thresholds(names) if threshold_source == EXPLORER
                  else scoring.resolve_thresholds(store, names, threshold_source, view))
    if go and upload is not None:
        _score(upload, upload.name, names, thresholds, policy)
    elif go_example:
        import io

        _score(io.BytesIO(example), "anodet-example.csv", names, thresholds, policy)

result = st.session_state.get(RESULT_KEY)
if result is None:
    st.stop()

if "error" in result:
    st.error(result["error"])
    if result.get("problems"):
        _problem_table(result["problems"])
    st.stop()

summary: scoring.Summary = result["summary"]
frame = result["frame"]
st.divider()
st.subheader(f"Results for {result['name']}")
st.caption(f"Read as {summary.layout.describe()}. Scored in {summary.seconds:.1f} s.")
m = st.columns(4)
m[0].metric("Rows read", f"{summary.rows_read:,}")
m[1].metric("Scored", f"{summary.rows_scored:,}")
m[2].metric("Skipped", f"{summary.rows_skipped:,}", help="Rows that could not be scored; listed below and in "
            "the download with their reason.")
m[3].metric("Outside the training range", f"{summary.out_of_range:,}",
            help="Scored like every other row, and marked out_of_range in the results.")

if summary.rows_skipped:
    st.warning(f"{summary.rows_skipped:,} row(s) could not be scored and were skipped: "
               f"{scoring.describe_problems(summary.problems)} They are in the download with an empty score and "
               "the reason in the `status` column.")
    with st.expander(f"Skipped rows ({len(summary.problems):,} listed)"):
        _problem_table(summary.problems)

st.dataframe(
    {"detector": [ui.display_name(n) for n in summary.names],
     "threshold": [summary.thresholds[n] for n in summary.names],
     "flagged": [summary.flagged[n] for n in summary.names],
     "share flagged": [summary.flagged[n] / max(summary.rows_scored, 1) for n in summary.names]},
    hide_index=True,
    column_config={"threshold": st.column_config.NumberColumn(format="%.4g"),
                   "share flagged": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})

stem = Path(result["name"]).name.removesuffix(".gz").removesuffix(".csv")
layout = result["layout"]
st.download_button(f"Download the results ({summary.rows_read:,} rows, CSV)",
                   lambda: scoring.results_csv(pa.Table.from_pandas(frame, preserve_index=False), layout), file_name=f"{stem}.scored.csv", mime="text/csv",
                   icon="⬇️", type="primary", on_click="ignore", key="score_download",
                   help="Your columns, then row, status and out_of_range, then a score and a flag per detector. "
                        "Cells that a spreadsheet would run as formulas are prefixed with a quote.")

if summary.rows_scored == 0:
    st.stop()

st.divider()
focus = ui.detector_picker("Detector to look at", summary.names, key="score_focus")
scored = frame[frame[scoring.STATUS_COLUMN] == scoring.OK]
s = scored[f"score_{focus}"].to_numpy()
threshold = summary.thresholds[focus]
y = None
if layout.label:
    y_all = scoring.label_views(scored[layout.label].to_numpy(dtype=str))[view]
    known = ~np.isnan(y_all)
    y = y_all[known].astype(int) if known.any() else None

left, right = st.columns(2)
with left:
    if y is not None:
        bins = figures.histogram_bins(s[known], y)
        st.plotly_chart(figures.score_histogram(bins, threshold, log_count=True,
                                                title=f"{ui.display_name(focus)} scores, by label ({view} view)"),
                        key="score_hist")
    else:
        st.plotly_chart(scoring.unlabelled_histogram(s, threshold, f"{ui.display_name(focus)} scores"),
                        key="score_hist")
with right:
    if y is not None and len(np.unique(y)) == 2:
        fpr, tpr, _ = evaluate.roc_points(y, s[known])
        fpr, tpr = figures.downsample_curve(fpr, tpr)
        at = evaluate.metrics_at(y, s[known], threshold)
        st.plotly_chart(figures.roc_figure({focus: (fpr, tpr)}, {focus: evaluate.roc_auc(y, s[known])},
                                           {focus: (at["fpr"], at["recall"])}, title="ROC curve"), key="score_roc")
    elif y is not None:
        st.info("The labelled rows are all of one class, so there is no ROC curve to draw.")
    else:
        st.info("Add a `label` column (normal / attack name / 0 or 1) to see precision, recall and the ROC curve.")
if y is not None:
    st.caption(f"Against the file's labels ({view} view; {int(known.sum()):,} labelled rows; novel attack names "
               "count as attacks only in the true view).")
    ui.metric_tiles(evaluate.summary(y, s[known], threshold), ["roc_auc", "pr_auc", "precision", "recall", "f1",
                                                               "accuracy"])

flagged = scored[scored[f"flag_{focus}"] == True].sort_values(f"score_{focus}", ascending=False)  # noqa: E712
st.markdown(f"**{len(flagged):,} rows flagged by {ui.display_name(focus)}** at threshold {threshold:.4g}"
            + (f" (the {TABLE_ROWS:,} highest-scoring shown; all are in the download)" if len(flagged) > TABLE_ROWS
               else "") + ". Click a column header to sort.")
first = [scoring.ROW_COLUMN, f"score_{focus}", scoring.RANGE_COLUMN]
st.dataframe(flagged.head(TABLE_ROWS), hide_index=True, key="score_flagged",
             column_order=[*first, *[c for c in flagged.columns if c not in first and c != scoring.STATUS_COLUMN]])
