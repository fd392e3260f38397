"""Score a CSV: upload your own records, score them with the stored detectors, download the results.

Thin: reading, scoring and keeping results are in :mod:`anodet.scoring.uploads` (shared checks and scores
with ``python -m anodet score``). The full results go to a file on disk; the session keeps only
the summary, a sample for the charts and the top flagged rows, so memory stays flat.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from anodet import textsafe
from anodet.access import AccessDenied, refusal
from anodet.app import figures, loaders, state, ui
from anodet.datasets import kdd
from anodet.datasets.kdd import DataError
from anodet.datasets.kdd_schema import FEATURES
from anodet.evaluation import comparison, intervals, metrics
from anodet.evaluation.metrics import PRESET_HELP
from anodet.evaluation.operating import percent_range
from anodet.evaluation.thresholds import resolve_thresholds
from anodet.reader import RANGE_COLUMN, ROW_COLUMN, STATUS_COLUMN, InputError, describe_problems
from anodet.scoring import uploads
from anodet.scoring.core import default_detectors, input_schema


def _result_key() -> str:
    """The session's kept result: one per dataset (a result of one dataset is not shown on another)."""
    return state.keyed("score_csv_result")

EXPLORER = "explorer"
text = textsafe.markdown_text


@st.cache_data(show_spinner=False, max_entries=3)
def _example(dataset_key: str, columns: tuple[str, ...], label: str | None) -> bytes:
    test = loaders.get_splits().test
    if not columns:  # KDD: the 41 columns shuffled, an id and the attack name as label
        return kdd.example_csv(test)
    picked = np.sort(np.random.default_rng(7).choice(len(test), min(400, len(test)), replace=False))
    out = test.rows.iloc[picked][list(columns)].copy()
    if label and test.labelled:  # the dataset's own label column, as its files hold it
        out[label] = test.label_text[picked]
    return out.to_csv(index=False).encode()


def _waiting(bar: Any) -> None:
    bar.progress(0.0, text="Waiting for a free scorer: other uploads are being scored on this server…")


def _score(source, name: str, names: list[str], thresholds: dict[str, float], policy: str, choice: str) -> None:
    """Score an upload with a progress bar; keep what the page shows (or the failure) in the session."""
    bar = st.progress(0.0, text=f"Reading {text(name)}…")

    def progress(fraction: float, rows: int) -> None:
        bar.progress(min(fraction, 1.0), text=f"Scoring {text(name)}: {rows:,} rows so far…")

    previous = st.session_state.get(_result_key(), {}).get("result")
    max_mb = int(st.get_option("server.maxUploadSize"))
    try:
        result = uploads.score_upload(
            source, name, loaders.get_store(), names, thresholds, policy, progress=progress, max_bytes=max_mb * 2**20,
            previous=previous, waiting=lambda: _waiting(bar), principal=state.principal())
    except (InputError, AccessDenied) as exc:
        st.session_state[_result_key()] = {"error": str(exc), "name": name, "problems": getattr(exc, "problems", None)}
        return
    finally:
        bar.empty()
    st.session_state[_result_key()] = {"result": result, "choice": choice, "view": state.label_view()}


def _problem_table(problems) -> None:
    st.dataframe({"row": [p.row for p in problems], "why it was not scored": [p.reason for p in problems]},
                 hide_index=True, height=min(300, 38 + 35 * len(problems)))


def _preset_label(choice: str, store, view: str) -> str:
    if choice == EXPLORER:
        return "in force: the operating point's (or moved by hand)"
    value = store.thresholds(store.names[0], view).get(choice)
    return f"preset: {choice}" + (f" (e.g. {loaders.display_name(store.names[0])} {value:.4g})"
                                  if value is not None else "")


dataset = state.current_dataset()
st.title("Score a CSV")
if dataset.builtin:
    st.markdown("Upload your own network records and see what the pretrained detectors make of them. "
                "The same checks and scores as `python -m anodet score` (use that for files of any size).")
else:
    st.markdown(f"Upload records with the columns of dataset **{text(dataset.key)}** and score them with the "
                "detectors trained on it. The same checks and scores as "
                f"`python -m anodet score --dataset {dataset.key}` (use that for files of any size).")
store = loaders.get_store()
view = state.label_view()
feature_columns: tuple[str, ...] = () if dataset.builtin else tuple(
    dict.fromkeys(c for s in store.feature_sets for c in store.feature_set(s).raw_columns))
schema = input_schema(store)
label_note = (f"your label column `{text(schema.label)}` ({', '.join(f'`{text(v)}`' for v in sorted(schema.normal))} "
              "normal, any other value an anomaly) turns on metrics and the ROC curve"
              if schema is not None and schema.label else "the dataset has no label column")

with st.expander("What file can I upload?", expanded=_result_key() not in st.session_state):
    if not dataset.builtin:
        st.markdown(
            f"* **A CSV with a header** naming the dataset's {len(feature_columns)} columns ("
            + ", ".join(f"`{text(c)}`" for c in feature_columns[:4]) + (", …" if len(feature_columns) > 4 else "")
            + f") in any order; other columns are passed through; {label_note}.\n"
            f"* It may be gzip-compressed (`.gz`); up to {st.get_option('server.maxUploadSize')} MB.\n"
            "* Rows that cannot be scored (text where a number belongs, missing or infinite values) are skipped "
            "and listed with their row numbers, or the file is rejected: your choice.")
    else:
        st.markdown(
        "* **A CSV with a header** naming KDD's columns (any order). Each detector needs its feature set's "
        "columns: the **kdd18** detectors the 18 traffic features ("
        + ", ".join(f"`{f}`" for f in FEATURES[:3])
        + ", …), the **kdd41** ones all 41 KDD columns; detectors whose columns are missing are skipped, and the "
        "results say which. Other columns (an id, a timestamp…) are kept and passed through. A `label` column "
        "(`normal`, attack names such as `smurf.`, or 0/1) turns on metrics and the ROC curve.\n"
        "* **Raw KDD Cup 99 records**: 41 values and an optional label per line, no header.\n"
        f"* Either one may be gzip-compressed (`.gz`); up to {st.get_option('server.maxUploadSize')} MB uploaded and "
        f"{uploads.MAX_DECOMPRESSED_BYTES / 1e9:,.0f} GB of text once decompressed.\n"
        "* Rows that cannot be scored (text where a number belongs, missing or infinite values, the wrong "
        "number of fields) are skipped and listed with their row numbers, or the file is rejected: your "
        "choice. Rows are numbered from 1 after the header. Values outside the training range are scored "
        "and marked `out_of_range`; values far outside it score +inf (flagged by every detector).")
    try:
        example: bytes | None = _example(dataset.key, feature_columns, schema.label if schema is not None else None)
    except DataError as exc:
        st.info(f"The example file needs the KDD data, which is not available here: "
                f"{text(textsafe.without_paths(exc))}")
        example = None
    if example is not None:
        shown_rows = min(400, len(loaders.get_splits().test))
        st.download_button(f"Download an example file ({shown_rows} test records)", example,
                           file_name="anodet-example.csv",
                           mime="text/csv", icon=":material/download:", on_click="ignore", key="score_example_download")

# A viewer: the page says why and takes no file; pressing Score anyway is refused by the library, shown and audited.
cannot_score = refusal(state.principal(), "score")
if cannot_score:
    st.info(text(cannot_score), icon=":material/lock:")
upload_file = st.file_uploader("CSV file (optionally .gz)", type=["csv", "gz", "txt"], key="score_upload",
                               help="A header naming the 18 features, or raw KDD records.", disabled=bool(cannot_score))

names = st.multiselect("Detectors", store.scorable, default=default_detectors(store.scorable),
                       format_func=loaders.name_format(store.scorable), key=state.keyed("score_detectors"),
                       help="Local Outlier Factor and sequence-to-sequence are left out by default: they are "
                            "much slower." + (" External detectors are left out: their scores were made elsewhere, "
                                              "so they cannot score new records." if store.scorable != store.names
                                              else ""))
presets = list(store.thresholds(store.names[0], view))
c2, c3 = st.columns(2)
threshold_source = c2.selectbox(
    "Thresholds", [EXPLORER, *presets], key="score_threshold_source",
    format_func=lambda p: _preset_label(p, store, view),
    help=f"The thresholds in force on every page (this session, {view} view): each detector's for the sidebar's "
         "operating point, or the one moved by hand in the threshold explorer; or a preset chosen on the validation "
         "split:  \n" + "  \n".join(f"**{k}**: {v}" for k, v in PRESET_HELP.items()))
policy = c3.radio("Rows that cannot be scored", ["skip", "reject"], key="score_policy", horizontal=True,
                  format_func=lambda p: {"skip": "skip and list them", "reject": "reject the file"}[p])


def _chosen_thresholds(chosen: list[str]) -> dict[str, float]:
    return (ui.get_thresholds(chosen) if threshold_source == EXPLORER
            else resolve_thresholds(store, chosen, threshold_source, view))


buttons = st.container(horizontal=True)
go = buttons.button("Score the file", type="primary", disabled=upload_file is None or not names, key="score_go")
go_example = buttons.button("Try the example file", disabled=example is None or not names, key="score_go_example")
if not names:
    st.info("Choose at least one detector.")
elif go and upload_file is not None:
    _score(upload_file, upload_file.name, names, _chosen_thresholds(names), policy, threshold_source)
elif go_example and example is not None:
    _score(io.BytesIO(example), "anodet-example.csv", names, _chosen_thresholds(names), policy, threshold_source)

kept = st.session_state.get(_result_key())
if kept is None:
    st.stop()

if "error" in kept:
    st.error(text(kept["error"]))
    if kept.get("problems"):
        _problem_table(kept["problems"])
    st.stop()

result: uploads.UploadResult = kept["result"]
summary = result.summary
st.divider()
st.subheader(f"Results for {text(result.name)}")
layout = summary.layout
st.caption(f"Read as {text(layout.describe() if layout else 'an empty file')}. Scored in {summary.seconds:.1f} s.")
now = _chosen_thresholds(summary.names)
if any(not np.isclose(now[n], summary.thresholds[n]) for n in summary.names) or kept.get("view") != view:
    st.warning("These results were scored with the thresholds in force when you pressed **Score** "
               f"({kept.get('view')} view, {_preset_label(kept['choice'], store, kept.get('view', view))}); the "
               "thresholds chosen now differ. Press **Score the file** again to apply them.",
               icon=":material/history:")
m = st.columns(4)
m[0].metric("Rows read", f"{summary.rows_read:,}")
m[1].metric("Scored", f"{summary.rows_scored:,}")
m[2].metric("Skipped", f"{summary.rows_skipped:,}", help="Rows that could not be scored; listed below and in "
            "the download with their reason.")
m[3].metric("Outside the training range", f"{summary.out_of_range:,}",
            help="Scored like every other row, and marked out_of_range in the results. "
                 + (text(summary.range_note()) if summary.out_of_range else ""))
if summary.out_of_range:
    st.caption(text(summary.range_note()) + (f" {summary.saturated:,} row(s) lie more than 10 training ranges "
                                             "outside and score +inf." if summary.saturated else ""))

if summary.rows_skipped:
    st.warning(f"{summary.rows_skipped:,} row(s) could not be scored and were skipped: "
               f"{text(describe_problems(summary.problems))} They are in the download with an empty score and "
               "the reason in the `status` column.")
    with st.expander(f"Skipped rows ({len(summary.problems):,} listed)"):
        _problem_table(summary.problems)

st.dataframe(
    {"detector": [loaders.display_name(n) for n in summary.names],
     "threshold": [summary.thresholds[n] for n in summary.names],
     "flagged": [summary.flagged[n] for n in summary.names],
     "share flagged": [summary.flagged[n] / max(summary.rows_scored, 1) for n in summary.names]},
    hide_index=True, height=36 * (len(summary.names) + 1) + 3,
    column_config={"threshold": st.column_config.NumberColumn(format="%.4g"),
                   "share flagged": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})

stem = Path(result.name).name.removesuffix(".gz").removesuffix(".csv")
st.download_button(f"Download the results ({summary.rows_read:,} rows, gzip-compressed CSV)", result.results_bytes,
                   file_name=f"{stem}.scored.csv.gz", mime="application/gzip", icon=":material/download:",
                   type="primary", on_click="ignore", key="score_download",
                   help="Your columns, then row, status and out_of_range, then a score and a flag per detector. "
                        "Cells that a spreadsheet would run as formulas are prefixed with a quote.")

if summary.rows_scored == 0:
    st.stop()

st.divider()
focus = ui.detector_picker("Detector to look at", summary.names, key="score_focus")
sample = result.sample
s = sample.scores[focus]
threshold = summary.thresholds[focus]
y, known = None, None
y_all = sample.labels_of(view)
if layout is not None and layout.label and y_all is not None:
    known = ~np.isnan(y_all)
    y = y_all[known].astype(int) if known.any() else None
if sample.seen > sample.capacity:
    st.caption(f"Charts are drawn from a uniform random sample of {sample.capacity:,} of the {sample.seen:,} scored "
               "rows; the counts above and the metrics below use every row.")

left, right = st.columns(2)
with left:
    if y is not None:
        bins = figures.histogram_bins(s[known], y)
        st.plotly_chart(figures.score_histogram(bins, threshold, log_count=True,
                                                title=f"{loaders.display_name(focus)} scores, by label ({view} view)"),
                        key="score_hist")
    else:
        st.plotly_chart(figures.unlabelled_histogram(s[np.isfinite(s)], threshold,
                                                     f"{loaders.display_name(focus)} scores"), key="score_hist")
with right:
    if y is not None and len(np.unique(y)) == 2:
        finite = np.where(np.isfinite(s[known]), s[known], np.finfo(np.float64).max)
        fpr, tpr, _ = metrics.roc_points(y, finite)
        fpr, tpr = metrics.downsample_curve(fpr, tpr)
        at = metrics.metrics_at(y, finite, threshold)
        st.plotly_chart(figures.roc_figure({focus: (fpr, tpr)}, {focus: metrics.roc_auc(y, finite)},
                                           {focus: (at["fpr"], at["recall"])}, title="ROC curve"), key="score_roc")
    elif y is not None:
        st.info("The labelled rows are all of one class, so there is no ROC curve to draw.")
    else:
        st.info("Add a `label` column (normal / attack name / 0 or 1) to see precision, recall and the ROC curve."
                if dataset.builtin else f"Without labels in the file there is no ROC curve: {label_note}.")
counts = summary.confusion.get(view, {}).get(focus)
if counts is not None:
    st.caption(f"Against the file's labels ({view} view; {summary.labelled.get(view, 0):,} labelled rows"
               + ("; novel attack names count as attacks only in the true view)." if dataset.builtin else ")."))
    tiles = metrics.metrics_from_counts(*counts)
    if y is not None and len(np.unique(y)) == 2:  # threshold-free: from the chart sample (every row up to its size)
        finite = np.where(np.isfinite(s[known]), s[known], np.finfo(np.float64).max)
        tiles |= {"roc_auc": metrics.roc_auc(y, finite), "pr_auc": metrics.pr_auc(y, finite)}
    ui.metric_tiles(tiles, [k for k in ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy") if k in tiles])
    tp, fp, fn, tn = (int(v) for v in counts)
    shares = []
    for label, k, n in (("recall", tp, tp + fn), ("false-positive rate", fp, fp + tn), ("precision", tp, tp + fp)):
        if n:
            low, high = intervals.wilson(k, n)
            shares.append(f"{label} {k:,} of {n:,} (95 % CI {percent_range(float(low), float(high))})")
    if y is not None and len(np.unique(y)) == 2:
        auc = intervals.delong(y, {focus: finite})
        shares.append(f"ROC AUC 95 % CI {auc.low[0]:.4f}–{auc.high[0]:.4f} on "
                      f"{len(y):,} labelled rows{' of the chart sample' if sample.seen > sample.capacity else ''}")
    st.caption(textsafe.markdown_text("; ".join(shares) + ".")
               + (f" {textsafe.markdown_text(small)}" if (small := comparison.small_sample(tp + fn, fp + tn,
                                                                                            dataset.words.positives))
                  else ""))

flagged_total = summary.flagged[focus]
top = result.top.table(focus)
shown = top.to_pandas() if top is not None else None
st.markdown(f"**{flagged_total:,} rows flagged by {loaders.display_name(focus)}** at threshold {threshold:.4g}, "
            "highest score first" + (f" (the {uploads.TOP_ROWS:,} highest-scoring shown; all are in the download)"
                             if flagged_total > uploads.TOP_ROWS else "") + ". Click a column header to sort.")
if shown is not None:
    first = [ROW_COLUMN, f"score_{focus}", RANGE_COLUMN]
    st.dataframe(shown, hide_index=True, key="score_flagged",
                 column_order=[*first, *[c for c in shown.columns if c not in first and c != STATUS_COLUMN]])
