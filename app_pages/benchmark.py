"""Benchmark: the detector family against PyOD's detectors on a suite of datasets — ranks, the critical-difference
diagram, ROC AUC per dataset, times — and running a suite in the background.

Thin: results are :mod:`anodet.benchmark.runs`, drawing :mod:`anodet.app.benchmark`, the run
:mod:`anodet.app.benchmark_run` over :mod:`anodet.benchmark.jobs` (never on this page's thread).
"""

from __future__ import annotations

import streamlit as st

from anodet.app import benchmark, benchmark_run

benchmark.goto_overview_if_asked()

st.title("Benchmark")
st.markdown("The detector family on a suite of labelled datasets under ADBench's protocol (subsample to 10,000 rows, "
            "stratified 70/30 split, min-max on the training part), beside PyOD's detectors as peers: no detector is "
            "best everywhere, so the mean rank and the per-dataset choice say more than any one score. The same as "
            "`python -m anodet benchmark` on the command line.")

busy = benchmark_run.job_panel()
run = benchmark.run_picker()
if run is not None:
    benchmark.show_run(run)

st.subheader("Run a suite", anchor=False)
benchmark_run.run_form(busy)
