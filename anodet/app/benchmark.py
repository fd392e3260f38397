"""The Benchmark page's pieces: a finished run's tables and charts, the link to a dataset's Overview.

Results come from :mod:`anodet.benchmark.runs` (summaries recomputed from the run's table, once per
version of its file); charts are :mod:`anodet.benchmark.figures`' and the times chart below. Running a
suite is :mod:`anodet.app.benchmark_run`. Only names are shown, never server paths.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from anodet import textsafe
from anodet.app import layout, state
from anodet.benchmark import figures, results, runs, summary
from anodet.datasets import catalog, userdata

text = textsafe.markdown_text
GOTO_KEY = "bm_goto_overview"
"""Session flag: open the Overview at the top of the next run (a callback may not switch pages)."""
RUN_KEY = "bm_run"
PICK_KEY = "bm_pick"
"""A run to select in the picker on the next run (set before the picker exists)."""
OVERVIEW = "app_pages/overview.py"
TESTS = {"nemenyi": "Nemenyi", "wilcoxon-holm": "Wilcoxon–Holm"}


def goto_overview_if_asked() -> None:
    """At the top of the page: open the Overview when a dataset's button asked for it."""
    if st.session_state.pop(GOTO_KEY, False):
        st.switch_page(OVERVIEW)


@st.cache_resource(max_entries=4, show_spinner="Reading the run and its rank tests…")
def _load(folder: str, stamp: int, name: str) -> runs.Run:
    """A run read once per version of its results file (shared, read-only)."""
    return runs.load(runs.RunRef(name, Path(folder), stamp))


def run_picker() -> runs.Run | None:
    """The finished runs under the data folder, newest first, and the chosen one read (None when there is none)."""
    refs = runs.find_runs()
    if not refs:
        st.info("No finished benchmark yet: run one below, or on the server with `python -m anodet benchmark SUITE "
                "-o FOLDER`, FOLDER in the data folder (e.g. its benchmarks/NAME).")
        return None
    names = [r.name for r in refs]
    pick = st.session_state.pop(PICK_KEY, None)
    if pick in names:
        st.session_state[RUN_KEY] = pick
    elif st.session_state.get(RUN_KEY) not in names:
        st.session_state[RUN_KEY] = names[0]
    chosen = st.selectbox("Run", names, key=RUN_KEY,
                          help="Runs started here (kept in the data folder under benchmarks/) and any folder "
                               "written by `python -m anodet benchmark -o FOLDER` in the data folder; newest first.")
    ref = refs[names.index(chosen)]
    try:
        return _load(str(ref.folder), ref.stamp, ref.name)
    except runs.RunError as exc:
        st.error(text(exc))
        return None


def _asked(run: runs.Run) -> str:
    """What the run was run with, in words."""
    table = run.table
    family = table.loc[table["group"] == "family", "detector"].nunique()
    peers = table.loc[table["group"] == "peer", "detector"].nunique()
    datasets = table["dataset"].nunique()
    seeds = table["seed"].nunique()
    return (f"{datasets} dataset{'s' * (datasets != 1)} × {seeds} seed{'s' * (seeds != 1)}, protocol"
            f"{'s' * (len(run.protocols) != 1)} {', '.join(run.protocols)}; {family} detector"
            f"{'s' * (family != 1)} of the family" + (f" and {peers} of PyOD's as peers" if peers else
                                                     ", no PyOD peer") + ".")


def show_run(run: runs.Run) -> None:
    """Everything about one run: per protocol, the ranks, the CD diagram, the heat map, the times, the datasets."""
    st.caption(text(_asked(run)))
    protocol = run.protocols[0]
    if len(run.protocols) > 1:
        protocol = st.segmented_control(
            "Protocol", run.protocols, key=f"bm_protocol@{run.name}", default=run.protocols[0], required=True,
            help="unsupervised (ADBench's): detectors fitted on every training row, anomalies included. normal-only: "
                 "fitted on the training normals, with a labelled validation part for the per-dataset choice.") \
            or run.protocols[0]
    s = run.summary_of(protocol)
    headline(s)
    st.subheader("Mean rank", anchor=False)
    rank_table(run, protocol)
    explain(run, s)
    st.subheader("Critical-difference diagram", anchor=False)
    cd_diagram(run, s)
    st.subheader("ROC AUC per dataset", anchor=False)
    heat_map(run, protocol)
    st.subheader("Fit and score time", anchor=False)
    times_chart(run, protocol)
    st.subheader("Datasets", anchor=False)
    datasets(run, protocol)


def headline(s: summary.ProtocolSummary) -> None:
    """Tiles: the best of the family, the best peer, the per-dataset choice, the oracle."""
    tiles: list[tuple[str, str, str]] = []
    rows = s.table.set_index("detector")
    for group, label in (("family", "Best of the family"), ("peer", "Best PyOD peer")):
        best = s.best(group)
        if best:
            tiles.append((label, f"{best[1]:.4f}", f"{rows.loc[best[0], 'display']}: mean ROC AUC over "
                                                   f"{s.datasets} datasets × {s.seeds} seed(s)."))
    for choice, label in (("choice:family", "Per-dataset choice"), ("choice:all", "Choice incl. peers")):
        if choice in rows.index:
            tiles.append((label, f"{rows.loc[choice, 'mean_roc_auc']:.4f}",
                          f"{rows.loc[choice, 'display']}: mean ROC AUC of the detector it picked per dataset × seed, "
                          f"by {results.CRITERIA[s.protocol]}."))
    if "all" in s.oracle:
        tiles.append(("Oracle (not ranked)", f"{s.oracle['all']:.4f}",
                      "The best detector of each dataset by test ROC AUC: it uses the test labels, so nobody can "
                      "choose it in advance; a ceiling for any choice."))
    for col, (label, value, why) in zip(st.columns(len(tiles)), tiles, strict=True):
        col.metric(label, value, help=why)


def rank_table(run: runs.Run, protocol: str) -> None:
    frame = runs.rank_table(run, protocol)
    fpr = f"{run.fpr:.0%}" if math.isfinite(run.fpr) else "the stated"
    st.dataframe(frame, hide_index=True, key=f"bm_ranks@{run.name}@{protocol}", height=layout.table_height(len(frame)),
                 column_order=["display", "kind", "mean_roc_auc", "runs", "mean_rank", "wins", "mean_pr_auc",
                               "mean_recall_at_fpr", "failures"],
                 column_config={
                     "display": st.column_config.TextColumn("detector"),
                     "kind": st.column_config.TextColumn("kind", help="anodet: the family's detectors; PyOD peer: "
                                                         "PyOD's with default settings on the very same splits; "
                                                         "per-dataset choice: one detector picked per dataset."),
                     "mean_roc_auc": st.column_config.NumberColumn("mean ROC AUC", format="%.4f",
                                                                   help="Mean over datasets of the mean over seeds."),
                     "runs": st.column_config.TextColumn("datasets × seeds"),
                     "mean_rank": st.column_config.NumberColumn("mean rank", format="%.2f",
                                                                help="1 = best; each dataset ranks every row."),
                     "wins": st.column_config.NumberColumn("wins", help="Datasets where this row ranks first."),
                     "mean_pr_auc": st.column_config.NumberColumn("mean PR AUC", format="%.4f"),
                     "mean_recall_at_fpr": st.column_config.NumberColumn(f"recall at {fpr} FPR", format="%.4f"),
                     "failures": st.column_config.NumberColumn(
                         "failures", help="Dataset × seed runs where the detector failed; counted as a random guess."),
                 })


def explain(run: runs.Run, s: summary.ProtocolSummary) -> None:
    """The per-dataset choice, the oracle and the rank tests, in sentences."""
    lines = [f"**Per-dataset choice** rows pick one detector for each dataset × seed without its test labels, by "
             f"{results.CRITERIA[s.protocol]}; they are ranked like any detector, and their seconds are every "
             "candidate's (all must run to choose)."]
    if s.oracle:
        names = {"family": "the family", "peers": "the peers", "all": "all"}
        lines.append("**Oracle**: the best detector of each dataset by test ROC AUC, which uses the test labels — a "
                     "ceiling nobody can reach by choosing in advance; not ranked. "
                     + "; ".join(f"among {names.get(k, k)} {v:.4f}" for k, v in s.oracle.items()) + ".")
    family, peer = s.best("family"), s.best("peer")
    if family and peer:
        lines.append(f"Best of the family minus best peer: {family[1] - peer[1]:+.4f} mean ROC AUC.")
    if s.friedman is not None and s.cd is not None:
        f = s.friedman
        lines.append(f"Friedman test over {f.n} datasets and {f.k} rows: p = {f.p_f:.2g} (Iman–Davenport). Nemenyi "
                     f"critical difference at α = {s.alpha}: {s.cd:.2f} ranks; Wilcoxon–Holm tells "
                     f"{sum(t.significant for t in s.wilcoxon)} of {len(s.wilcoxon)} pairs apart.")
    st.markdown("\n\n".join(lines))


def cd_diagram(run: runs.Run, s: summary.ProtocolSummary) -> None:
    if s.cd is None:
        st.info("A critical-difference diagram needs at least two datasets with every detector's result; this run "
                f"has {s.datasets}.")
        return
    test = st.radio("Joined when", list(TESTS), format_func=lambda t: {
        "nemenyi": "Nemenyi: within the critical difference", "wilcoxon-holm": "Wilcoxon–Holm: no significant pair"}[t],
        key="bm_cd_test", horizontal=True,
        help="Demšar (2006): after the Friedman test, Nemenyi joins rows whose mean ranks differ by less than the "
             "critical difference; Wilcoxon signed-rank tests with Holm's correction join rows no pair test tells "
             "apart (more powerful with many datasets).")
    st.plotly_chart(figures.figure(figures.cd_layout(s, test)), key=f"bm_cd@{run.name}@{s.protocol}",
                    config={"displayModeBar": False})
    st.caption("Axis: mean rank (1 = best, left). Thick bars join rows no test tells apart; grey italics: PyOD peers; "
               "bold: the per-dataset choice.")


def _kinds(run: runs.Run, protocol: str) -> tuple[dict[str, str], dict[str, str]]:
    rows = run.table[run.table["protocol"] == protocol].drop_duplicates("detector")
    return dict(zip(rows["detector"], rows["group"], strict=True)), dict(zip(rows["detector"], rows["display"],
                                                                             strict=True))


def heat_map(run: runs.Run, protocol: str) -> None:
    kinds, names = _kinds(run, protocol)
    matrix = summary.per_dataset(run.table, protocol)
    order = list(runs.rank_table(run, protocol)["detector"])  # best mean rank on the left
    fig = figures.auc_heatmap(matrix[order], kinds, names, title="")
    # one readable row per dataset, the suite's first dataset on top
    fig.update_layout(height=28 * len(matrix.index) + 190, margin={"t": 10, "l": 140, "b": 150},
                      yaxis={"autorange": "reversed", "dtick": 1})
    st.plotly_chart(fig, key=f"bm_heat@{run.name}@{protocol}", config={"displayModeBar": False})
    st.caption("Mean over seeds; a failed run counts as 0.5. Columns in mean-rank order; peers in italics, the "
               "per-dataset choice in bold.")


def times_figure(frame: pd.DataFrame) -> Any:
    """Horizontal bars of mean fit and score seconds per dataset × seed (log scale: they span orders of magnitude)."""
    import plotly.graph_objects as go

    labels = [f"<i>{html.escape(str(d))}</i>" if g == "peer" else html.escape(str(d))
              for d, g in zip(frame["display"], frame["group"], strict=True)]
    fig = go.Figure()
    for column, name, colour in (("fit_s", "fit", "#1f3b73"), ("score_s", "score", "#e08a2b")):
        values = frame[column].clip(lower=1e-4)
        fig.add_bar(y=labels, x=values, name=name, orientation="h", marker_color=colour,
                    customdata=frame[column], hovertemplate="%{y}: " + name + " %{customdata:.3f} s<extra></extra>")
    fig.update_layout(barmode="group", height=max(260, 34 * len(frame) + 90), margin={"l": 10, "r": 10, "t": 10},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      xaxis={"type": "log", "dtick": 1, "tickformat": "~g",
                             "title": "seconds per dataset × seed (log scale)"},
                      yaxis={"autorange": "reversed"})
    return fig


def times_chart(run: runs.Run, protocol: str) -> None:
    frame = runs.times(run, protocol)
    st.plotly_chart(times_figure(frame), key=f"bm_times@{run.name}@{protocol}", config={"displayModeBar": False})
    st.caption("Mean seconds per dataset × seed on this server, slowest first; peers in italics; under 0.1 ms drawn "
               "at 0.1 ms (hover for the value). The per-dataset choice costs every candidate's time, so it is left "
               "out.")


def _open(name: str) -> None:
    st.session_state[state.DATASET_KEY] = name
    st.session_state[GOTO_KEY] = True


def datasets(run: runs.Run, protocol: str) -> None:
    """The datasets table, and a button to each declared anodet dataset's Overview."""
    frame = runs.per_dataset_table(run, protocol)
    st.dataframe(frame, hide_index=True, key=f"bm_datasets@{run.name}@{protocol}",
                 height=min(layout.table_height(len(frame)), 600),
                 column_config={"best ROC AUC": st.column_config.NumberColumn(format="%.4f"),
                                "choice picked": st.column_config.TextColumn(
                                    help="The detector the per-dataset choice (family) picked, "
                                         "most often over seeds.")})
    declared = run.declared(userdata.list_datasets())
    if not declared:
        return
    trained = set(catalog.trained())
    cols = st.columns(min(len(declared), 4))
    for i, name in enumerate(declared):
        if name in trained:
            cols[i % len(cols)].button(f"Open {text(name)} on the Overview", key=f"bm_open_{name}",
                                       icon=":material/open_in_new:", on_click=_open, args=(name,),
                                       help="Switches the sidebar's dataset to this one and opens the Overview.")
        else:
            cols[i % len(cols)].caption(f"{text(name)} is declared but not trained: train it on the Your data page to "
                                        "open it on the Overview.")
