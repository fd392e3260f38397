"""Your data: add a dataset of your own from the browser, confirm its columns, train the detector family on it.

Thin: inspection, declaration and training are :mod:`anodet.datasets`; uploads are kept by
:mod:`anodet.dataset_uploads` under ``data/``; training runs in a background thread of
:mod:`anodet.training_jobs`, so this page and other sessions stay responsive while it runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from anodet import dataset_uploads, datasets, training_jobs, ui
from anodet.access import AccessDenied, refusal
from anodet.app import auth
from anodet.datasets import DatasetError
from anodet.detectors import DISPLAY_NAMES
from anodet.store import StoreError

ui.ensure_app_frame()

GOTO_OVERVIEW = "yd_goto_overview"
if st.session_state.pop(GOTO_OVERVIEW, False):
    st.switch_page("pages/overview.py")

text = ui.markdown_text
MAX_MB = int(st.get_option("server.maxUploadSize"))
NONE = "(none)"
GEN_KEY = "yd_upload_generation"  # bumped after a dataset is added, so the uploaders and options start empty again
PICK_KEY = "yd_pick"  # a dataset to select in the list on the next run (set before the selectbox exists)
ADDED_KEY = "yd_added"
BOARD_COLUMNS = ["name", "roc_auc", "pr_auc", "f1", "precision", "recall", "fpr", "flagged", "threshold",
                 "supervised"]


# the command line's options as this page's fields, for the library's sentences
FIELDS = {"--label": "Label column", "--normal": "Normal value(s)", "--id": "Id column", "--exclude": "Exclude columns",
          "--categorical": "Treat as categorical", "--replace": "Replace"}
_FLAG = re.compile(r"--(label|normal|id|exclude|categorical|replace)\b")


def _say(message: object, *paths: tuple[Path | None, str]) -> str:
    """A library sentence for the page: server paths replaced by the user's file names, command-line options by
    the page's field names, escaped for Markdown."""
    out = _FLAG.sub(lambda m: f"'{FIELDS[m.group(0)]}'", str(message))
    for path, shown in paths:
        if path is not None:
            out = out.replace(str(Path(path).resolve()), shown).replace(str(path), shown)
    return text(out)


@st.cache_data(show_spinner=False, max_entries=4)
def _inspect(path: str, stamp: int, label: str | None, normal: str | None, id_column: str | None,
             exclude: tuple[str, ...], categorical: tuple[str, ...]) -> datasets.Inspection:
    return datasets.inspect(path, label=label, normal=normal or None, id_column=id_column, exclude=list(exclude),
                            categorical=list(categorical))


@st.cache_data(show_spinner=False, max_entries=8)
def _trainable(name: str, root: str, stamp: int) -> tuple[list[str], dict[str, str]]:
    return training_jobs.trainable(name)


@st.cache_data(show_spinner="Scoring the test split with every detector…", max_entries=8)
def _leaderboard(name: str, root: str, stamp: int) -> pd.DataFrame:
    return datasets.leaderboard(name)


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def columns_table(found: datasets.Inspection) -> pd.DataFrame:
    """The inferred columns as the user confirms them: name, role, kind, levels, range, empty cells, note."""
    rows = []
    for c in found.columns:
        span = f"{c.min:.4g} to {c.max:.4g}" if c.min is not None and c.max is not None else ""
        rows.append({"column": c.name, "role": c.role, "kind": c.kind or "", "levels": "" if c.levels is None else f"{c.levels:,}",
                     "range": span, "empty cells": c.nulls, "note": c.note})
    return pd.DataFrame(rows)


# -- the declared datasets ------------------------------------------------------------------------------


def show_leaderboard(name: str, dataset: datasets.Dataset) -> None:
    manifest = dataset.store_root / "manifest.json"
    try:
        board = _leaderboard(name, str(dataset.store_root), _stamp(manifest))
    except (DatasetError, StoreError) as exc:
        st.error(_say(exc))
        return
    shown = board[[c for c in BOARD_COLUMNS if c in board.columns]].rename(columns={"name": "detector"})
    shown["detector"] = shown["detector"].str.removesuffix(f" · {name}")
    if "roc_auc" in shown.columns:
        shown = shown.sort_values("roc_auc", ascending=False)
        unsupervised = shown[~shown["supervised"].astype(bool)] if "supervised" in shown else shown
        ranked = unsupervised if len(unsupervised) else shown
        best = ranked.iloc[0]
        c1, c2, c3 = st.columns(3)
        c1.metric("Best test ROC AUC", f"{best['roc_auc']:.3f}",
                  help=f"{best['detector']}; detectors that learn from the labels are left out of this tile.")
        c2.metric("Best test PR AUC", f"{ranked['pr_auc'].max():.3f}",
                  help="Detectors that learn from the labels are left out of this tile.")
        c3.metric("Detectors", f"{len(shown)}")
    else:
        st.info("This dataset has no labels, so there is no ROC or PR AUC: ROC and PR curves need labels. "
                "The table shows each detector's default threshold (chosen on held-out rows) and the share "
                "of test rows it flags.")
    st.dataframe(shown, hide_index=True, key="yd_leaderboard", height=38 + 35 * len(shown), column_config={
        "roc_auc": st.column_config.NumberColumn("ROC AUC", format="%.3f"),
        "pr_auc": st.column_config.NumberColumn("PR AUC", format="%.3f"),
        "f1": st.column_config.NumberColumn("F1", format="%.3f"),
        "precision": st.column_config.NumberColumn("precision", format="%.3f"),
        "recall": st.column_config.NumberColumn("recall", format="%.3f"),
        "fpr": st.column_config.NumberColumn("FPR", format="%.4f"),
        "flagged": st.column_config.NumberColumn("flagged", format="percent"),
        "threshold": st.column_config.NumberColumn("threshold", format="%.4g"),
    })
    st.caption("Test split of the dataset; metrics at each detector's default threshold, chosen on the validation "
               "split. Score files with `python -m anodet score --dataset "
               f"{text(name)} FILE -o OUT`.")

    def _show_everywhere() -> None:
        st.session_state[ui.DATASET_KEY] = name
        st.session_state[GOTO_OVERVIEW] = True  # switched to at the top of the next run (not from a callback)

    st.button(f"Open {name} on every page", icon=":material/open_in_new:", key=f"yd_open_{name}",
              on_click=_show_everywhere,
              help="Switches the sidebar's dataset to this one and opens the Overview: Overview, Threshold explorer, "
                   "Flagged records, Score a CSV and Live monitor then show this dataset.")


def show_progress(name: str) -> None:
    """The running job's progress bar and log, redrawn every second until it ends (then the whole page reruns)."""

    @st.fragment(run_every=1.0)
    def panel() -> None:
        job = training_jobs.get(name)
        if job is None or not job.active:
            st.rerun()
            return
        snap = job.snapshot()
        if snap["status"] == training_jobs.QUEUED:
            label = "Waiting for another training on this server to end…"
        elif snap["total"]:
            current = snap["current"].split("@", 1)[0]
            label = (f"Training {DISPLAY_NAMES.get(current, current)}: detector {snap['done'] + 1} of "
                     f"{snap['total']} ({snap['elapsed']:.0f} s so far)")
        else:
            label = f"Preparing the splits… ({snap['elapsed']:.0f} s)"
        st.progress(snap["fraction"], text=text(label))
        with st.expander("Training log"):
            st.code("\n".join(snap["lines"][-40:]) or "…", language=None)

    panel()


def show_dataset(name: str) -> None:
    try:
        dataset = datasets.load(name)
    except DatasetError as exc:
        st.error(_say(exc))
        return
    with st.expander("Declaration", expanded=False):
        st.code("\n".join(dataset.lines()), language=None)
    job = training_jobs.get(name)
    if job is not None and job.active:
        show_progress(name)
        return
    if job is not None and job.status == training_jobs.FAILED:
        st.error(_say(job.error))
    elif job is not None and job.status == training_jobs.DONE:
        st.success(f"Trained {len(job.snapshot()['trained'])} detectors in {job.elapsed:.0f} s.")
    decl = dataset.folder / datasets.DECLARATION
    try:
        kinds, skipped = _trainable(name, str(dataset.folder), _stamp(decl))
    except DatasetError as exc:
        st.error(_say(exc))
        return
    with st.form(f"yd_train_form_{name}", border=False):
        chosen = st.multiselect(
            "Detectors to train", kinds, default=kinds, key=f"yd_detectors_{name}",
            format_func=lambda k: DISPLAY_NAMES.get(k, k),
            help="Every detector that fits this dataset; the neural ones take longest. "
                 + ("Not available here: " + "; ".join(f"{DISPLAY_NAMES.get(k, k)} ({why})"
                                                       for k, why in skipped.items()) if skipped else ""))
        go = st.form_submit_button("Train", type="primary", icon=":material/model_training:", key="yd_train_go")
    cannot_train = refusal(auth.current_principal(), "train")  # said first; pressing Train anyway: the library refuses
    if cannot_train and not go:
        st.info(text(cannot_train), icon=":material/lock:")
    if skipped:
        st.caption("Skipped: " + text("; ".join(f"{DISPLAY_NAMES.get(k, k)} ({why})" for k, why in skipped.items())))
    if go:
        if not chosen:
            st.error("Choose at least one detector to train.")
        else:
            try:
                training_jobs.start(name, chosen, principal=auth.current_principal())
            except (DatasetError, training_jobs.JobError, AccessDenied) as exc:
                st.error(_say(exc))
            else:
                st.rerun()
    if (dataset.store_root / "manifest.json").exists():
        st.subheader("Leaderboard", anchor=False)
        show_leaderboard(name, dataset)
    else:
        st.info("Not trained yet: choose the detectors and press **Train**.")


# -- adding a dataset ----------------------------------------------------------------------------------


def _saved(upload: Any, role: str) -> Path | None:
    if upload is None:
        return None
    if upload.size > MAX_MB * 2**20:
        st.error(f"{text(upload.name)} is over the upload limit of {MAX_MB} MB; use `python -m anodet dataset add` "
                 "for larger files.")
        return None
    upload.seek(0)
    return dataset_uploads.save(upload.file_id, role, upload.name, upload, principal=auth.current_principal())


def add_section() -> None:
    cannot = refusal(auth.current_principal(), "declare")
    if cannot:
        st.info(text(cannot), icon=":material/lock:")
        return
    gen = st.session_state.setdefault(GEN_KEY, 0)
    st.markdown("A table of records, one per row, with a header: any CSV or Parquet file (flow logs, Zeek connection "
                "logs, CIC-IDS CSVs…). Numbers are used as they are, text columns as categories. Training rows are the "
                "normal ones, or every row when there is no label column. Files are kept on this server under "
                "`data/`, nowhere else.")
    c1, c2 = st.columns(2)
    train_up = c1.file_uploader(
        "Training file (CSV or Parquet)", type=["csv", "parquet", "pq"], key=f"yd_train_file_{gen}",
        help=f"Up to {MAX_MB} MB; larger files: `python -m anodet dataset add NAME --train FILE`.")
    test_up = c2.file_uploader(
        "Labelled test file (optional)", type=["csv", "parquet", "pq"], key=f"yd_test_file_{gen}",
        help=f"Same columns as the training file, with the label column; up to {MAX_MB} MB. Without it, a test "
             "split is carved from the labelled training rows.")
    if train_up is None:
        st.caption("Upload a training file to see the columns anodet infers from it.")
        return
    try:
        train_path = _saved(train_up, "train")
        test_path = _saved(test_up, "test")
    except AccessDenied as exc:
        st.error(text(exc))
        return
    if train_path is None:
        return
    shown = [(train_path, train_up.name)] + ([(test_path, test_up.name)] if test_path is not None and test_up is not None else [])
    try:
        names, _ = datasets.file_columns(train_path)
    except DatasetError as exc:
        st.error(_say(exc, *shown))
        return
    default_name = Path(train_up.name).stem
    default_name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in default_name)[:64].strip("-_") or "mydata"
    if default_name.lower().startswith("kdd"):
        default_name = "my-" + default_name
    c1, c2, c3 = st.columns(3)
    name = c1.text_input("Dataset name", value=default_name, key=f"yd_name_{gen}", max_chars=64,
                         help="Letters, digits, '-' or '_'; not starting with 'kdd'.")
    label = c2.selectbox("Label column", [NONE, *names], key=f"yd_label_{gen}",
                         help="The column telling normal rows from anomalies; optional. With it, thresholds are chosen "
                              "on labelled rows and the leaderboard shows ROC and PR AUC.")
    normal = c3.text_input("Normal value(s)", key=f"yd_normal_{gen}", disabled=label == NONE,
                           placeholder="e.g. normal or B,benign; blank: guessed",
                           help="Label values of normal rows, comma-separated. Blank: a usual name (normal, benign, "
                                "0, false, B) or the most frequent value.")
    c1, c2, c3 = st.columns(3)
    taken = {label}
    id_column = c1.selectbox("Id column", [NONE, *[n for n in names if n not in taken]], key=f"yd_id_{gen}",
                             help="Passed through to results, never a feature.")
    taken.add(id_column)
    exclude = c2.multiselect("Exclude columns", [n for n in names if n not in taken], key=f"yd_exclude_{gen}",
                             help="Columns the detectors should not see.")
    categorical = c3.multiselect("Treat as categorical", [n for n in names if n not in taken and n not in exclude],
                                 key=f"yd_categorical_{gen}",
                                 help="Numbers that are codes (ports, protocol numbers…), to be used as categories.")
    lab = None if label == NONE else label
    ident = None if id_column == NONE else id_column
    try:
        with st.spinner("Reading the file…"):
            found = _inspect(str(train_path), _stamp(train_path), lab, normal.strip() if lab else None, ident,
                             tuple(exclude), tuple(categorical))
    except DatasetError as exc:
        st.error(_say(exc, *shown))
        return
    st.markdown(f"**{text(train_up.name)}**: {found.rows:,} rows, {len(found.features)} feature columns. "
                "Check the inferred columns, then confirm.")
    st.dataframe(columns_table(found), hide_index=True, key=f"yd_columns_{gen}",
                 height=min(420, 38 + 35 * len(found.columns)))
    if found.label:
        counts = ", ".join(f"{text(v)}: {n:,}" for v, n in sorted(found.label_counts.items(), key=lambda kv: -kv[1]))
        st.markdown(f"Labels in **{text(found.label)}**: {counts}. Normal: {text(', '.join(found.normal))}.")
    else:
        st.markdown("No label column: every row is taken as normal, thresholds are the unlabelled presets, and ROC/PR "
                    "curves need labels.")
    for note in found.notes:
        st.caption(_say(note, *shown))
    exists = name in training_jobs.running() or (datasets.datasets_root() / name / datasets.DECLARATION).exists()
    replace = False
    if exists:
        replace = st.checkbox(f"Replace the dataset {text(name)} (its store is kept until it is trained again)",
                              key=f"yd_replace_{gen}")
    if st.button("Confirm and add the dataset", type="primary", icon=":material/check:", key=f"yd_add_{gen}"):
        if name in training_jobs.running():
            st.error(f"Dataset {text(name)} is being trained; wait for it to end before replacing it.")
            return
        try:
            with st.spinner("Building the splits…"):
                dataset_uploads.add_from_uploads(
                    name, train_path, test_path, replace=replace, label=lab, normal=normal.strip() if lab else None,
                    id_column=ident, exclude=list(exclude), categorical=list(categorical),
                    principal=auth.current_principal())
        except (DatasetError, AccessDenied) as exc:
            kept = datasets.datasets_root() / name / dataset_uploads.INPUT_DIR
            st.error(_say(exc, *[(kept / p.name, shown_name) for p, shown_name in shown if p is not None], *shown))
            return
        st.session_state[GEN_KEY] = gen + 1
        st.session_state[PICK_KEY] = name
        st.session_state[ADDED_KEY] = name
        st.rerun()


# -- the page --------------------------------------------------------------------------------------------

st.title("Your data")
st.markdown("Bring your own records, confirm the columns anodet infers, and train the whole detector family on them. "
            "The same as `python -m anodet dataset add` and `train --dataset` on the command line.")

added = st.session_state.pop(ADDED_KEY, None)
if added:
    st.success(f"Dataset {text(added)} added. Train it below.")

st.subheader("Your datasets", anchor=False)
catalogue = training_jobs.catalogue()
if not catalogue:
    st.info("No dataset yet: add one below.")
else:
    st.dataframe(pd.DataFrame(catalogue), hide_index=True, key="yd_catalogue", column_config={
        "rows": st.column_config.NumberColumn("rows", format="localized")})
    known = [row["dataset"] for row in catalogue]
    pick = st.session_state.pop(PICK_KEY, None)
    if pick not in known and st.session_state.get("yd_dataset") not in known:
        pick = ui.current_dataset().key  # the one the sidebar shows, when it is one of these
    if pick in known:
        st.session_state["yd_dataset"] = pick
    chosen = st.selectbox("Dataset to train or look at", known, key="yd_dataset",
                          help="Its declaration, training and leaderboard below. The sidebar's Dataset switch "
                               "chooses what the other pages show.")
    if chosen:
        show_dataset(chosen)

st.subheader("Add a dataset", anchor=False)
add_section()
