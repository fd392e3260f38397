"""Running a benchmark from the page: the form, the background job's progress bar with Cancel, and its outcome.

The run itself is :mod:`anodet.benchmark.jobs` (a thread of the server, one at a time); the page only
starts it, redraws its progress every second and, when it ends, selects its results.
"""

from __future__ import annotations

import time

import streamlit as st

from anodet import textsafe
from anodet.app.benchmark import PICK_KEY
from anodet.benchmark import jobs, runs
from anodet.benchmark.contenders import QUICK, display_name
from anodet.benchmark.protocols import PROTOCOLS

text = textsafe.markdown_text
NAME_KEY = "bm_name"
MESSAGE_KEY = "bm_message"
SEEN_KEY = "bm_seen_job"
"""The job whose end this session has announced (its results are selected once)."""
RESUME_KEY = "bm_resume"


def _default_name() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S")


def job_panel() -> bool:
    """The server's benchmark job: a progress bar with Cancel while it runs (True), else how it ended (False)."""
    job = jobs.current()
    if job is None:
        return False
    if job.active:
        progress_panel()
        return True
    snap = job.snapshot()
    seen = f"{job.run}@{job.started}"
    if st.session_state.get(SEEN_KEY) != seen:
        st.session_state[SEEN_KEY] = seen
        if snap["status"] == jobs.DONE:
            st.session_state[PICK_KEY] = _run_name(job.run)
    name = text(job.run)
    if snap["status"] == jobs.DONE:
        st.success(f"Run **{name}** finished in {snap['elapsed']:.0f} s: {snap['ran']} task(s) run, "
                   f"{snap['total'] - snap['ran']} already done.")
    elif snap["status"] == jobs.CANCELLED:
        st.warning(f"Run **{name}** was cancelled after {snap['done']} of {snap['total'] or '?'} tasks; the finished "
                   "ones are kept: resume it below to go on.")
    elif snap["status"] == jobs.FAILED:
        st.error(f"Run **{name}** stopped: {text(snap['error'])}")
    return False


def _run_name(run: str) -> str:
    """A page run's name in the run picker."""
    names = [r.name for r in runs.find_runs()]
    return run if run in names else f"{runs.RUNS_DIR}/{run}"


def _cancel() -> None:
    job = jobs.current()
    if job is not None:
        job.cancel()


def progress_panel() -> None:
    """The running job's progress, redrawn every second until it ends (then the whole page reruns)."""

    @st.fragment(run_every=1.0)
    def panel() -> None:
        job = jobs.current()
        if job is None or not job.active:
            st.rerun()
            return
        snap = job.snapshot()
        if snap["cancelling"]:
            label = f"Cancelling run {snap['run']} when its current task ends…"
        elif snap["total"]:
            last = f"; last: {snap['current']}" if snap["current"] else ""
            label = (f"Run {snap['run']}: {snap['done']} of {snap['total']} tasks (dataset × seed × protocol) done"
                     f"{last} ({snap['elapsed']:.0f} s so far)")
        else:
            label = f"Run {snap['run']}: reading the datasets and checking their splits… ({snap['elapsed']:.0f} s)"
        st.progress(snap["fraction"], text=text(label))
        st.button("Cancel", key="bm_cancel", icon=":material/stop_circle:", on_click=_cancel,
                  disabled=snap["cancelling"],
                  help="Stops when the task being run ends; the finished tasks are kept and a resumed run does not "
                       "redo them.")

    panel()


def _start(request: jobs.Request, resume: bool = False) -> None:
    try:
        jobs.start(request, resume=resume)
    except jobs.JobError as exc:
        st.session_state[MESSAGE_KEY] = str(exc)
        return
    st.session_state.pop(MESSAGE_KEY, None)
    if not resume:
        st.session_state[NAME_KEY] = _default_name()  # the next run gets a fresh name


def _start_new() -> None:
    """The Run button's callback: the form's values as a request (read from the session, before the page runs)."""
    ss = st.session_state
    adbench = list(jobs.adbench_datasets()) if ss.get("bm_all_adbench", True) else list(ss.get("bm_adbench", []))
    if not jobs.adbench_datasets():
        adbench = []
    _start(jobs.Request(str(ss.get(NAME_KEY, "")).strip(), tuple(adbench), tuple(ss.get("bm_declared", [])),
                        tuple(ss.get("bm_protocols") or ()), int(ss.get("bm_seeds", 3)),
                        tuple(ss.get("bm_detectors", [])), tuple(ss.get("bm_peers", []))))


def _resume() -> None:
    name = st.session_state.get(RESUME_KEY)
    doc = runs.read_request(runs.runs_root() / str(name)) if name else None
    if doc is None:
        st.session_state[MESSAGE_KEY] = f"There is no run {name!r} started from this page to resume."
        return
    try:
        request = jobs.Request.from_json(doc)
    except (KeyError, TypeError, ValueError):
        st.session_state[MESSAGE_KEY] = (f"The run {name!r} cannot be resumed (its request is unreadable); "
                                         "start a new one.")
        return
    _start(request, resume=True)


def run_form(busy: bool) -> None:
    """Choose a suite, protocol, seeds and detectors, and start the run (disabled while one runs)."""
    message = st.session_state.pop(MESSAGE_KEY, None)
    if message:
        st.error(text(message))
    files = jobs.adbench_datasets()
    declared = jobs.declared_datasets()
    st.session_state.setdefault(NAME_KEY, _default_name())
    st.text_input("Run name", key=NAME_KEY, max_chars=64,
                  help="The results are kept in the server's data folder under benchmarks/NAME; letters, digits, '-', "
                       "'_' or '.'.")
    c1, c2 = st.columns(2)
    chosen = 0
    if files:
        everything = c1.checkbox(f"All {len(files)} ADBench datasets", value=True, key="bm_all_adbench",
                                 help="ADBench's classical tabular datasets (the shared folder set by "
                                      "$ANODET_ADBENCH); untick to choose some.")
        if everything:
            chosen += len(files)
        else:
            chosen += len(c1.multiselect("ADBench datasets", list(files), key="bm_adbench"))
    else:
        c1.caption("The ADBench datasets are not on this server: set $ANODET_ADBENCH to their folder to offer them.")
    if declared:
        chosen += len(c2.multiselect("Your datasets", declared, key="bm_declared",
                                     help="Declared anodet datasets with labels (the Your data page); a declared "
                                          "dataset's Overview opens from the results."))
    else:
        c2.caption("No declared dataset with labels: add one on the Your data page to benchmark it here.")
    c1, c2 = st.columns(2)
    protocols = c1.segmented_control(
        "Protocol", list(PROTOCOLS), selection_mode="multi", default=["unsupervised"], key="bm_protocols",
        help="unsupervised (ADBench's): fit on every training row, anomalies included; normal-only: fit on the "
             "training normals, with a labelled validation part for the per-dataset choice.") or []
    seeds = c2.number_input("Seeds", min_value=1, max_value=jobs.MAX_SEEDS, value=3, step=1, key="bm_seeds",
                            help="Seeds 0…N-1 per dataset: each draws its own subsample and 70/30 split.")
    family = jobs.family_choices()
    st.multiselect("Detectors of the family", family, default=[k for k in QUICK if k in family], key="bm_detectors",
                   format_func=display_name,
                   help="The quick classical set by default; the neural ones train within a time budget each.")
    peers = jobs.peer_choices()
    if peers:
        st.multiselect("PyOD peers", peers, default=peers, key="bm_peers",
                       format_func=lambda p: display_name(f"pyod:{p}"),
                       help="PyOD's detectors with default settings on the very same splits, marked as peers.")
    else:
        st.caption("PyOD is not installed on this server: `pip install anodet[peers]` adds its detectors as peers.")
    tasks = chosen * int(seeds) * len(protocols)
    st.caption(f"{tasks} task(s): dataset × seed × protocol; one runs at a time on this server, in the background.")
    st.button("Run the benchmark", type="primary", icon=":material/play_arrow:", key="bm_go", on_click=_start_new,
              disabled=busy, help="A benchmark is running; wait for it or cancel it." if busy else None)
    left = runs.unfinished()
    if left and not busy:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.selectbox("Unfinished run", left, key=RESUME_KEY,
                     help="Cancelled or stopped runs started here; resuming does not redo their finished tasks.")
        c2.button("Resume", key="bm_resume_go", icon=":material/replay:", on_click=_resume)
