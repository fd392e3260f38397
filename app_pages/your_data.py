"""Your data: add a dataset of your own from the browser, confirm its columns, train the detector family on it.

Thin: inspection, declaration and training are :mod:`anodet.datasets`; uploads are kept by
:mod:`anodet.datasets.uploads` under ``data/``; training runs in a background thread of
:mod:`anodet.training.jobs`, so this page and other sessions stay responsive while it runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from anodet import textsafe
from anodet.access import ADMIN, PRIVATE, SHARING, AccessDenied, refusal
from anodet.app import dataset_access, scores_form, session_files, state
from anodet.datasets import catalog, inspection, inspection_cache, ownership, uploads, userdata
from anodet.datasets.errors import DatasetError
from anodet.datasets.model import PROTOCOLS
from anodet.detectors import display_name
from anodet.evaluation import comparison
from anodet.evaluation.leaderboard import boards_on_test
from anodet.external import kept as external_kept
from anodet.external.view import with_externals
from anodet.store.core import StoreError
from anodet.training import estimates, jobs
from anodet.training.datasets import open_store

GOTO_OVERVIEW = "yd_goto_overview"
if st.session_state.pop(GOTO_OVERVIEW, False):
    st.switch_page("app_pages/overview.py")

text = textsafe.markdown_text
MAX_MB = int(st.get_option("server.maxUploadSize"))
NONE = "(none)"
GEN_KEY = "yd_upload_generation"  # bumped after a dataset is added, so the uploaders and options start empty again
PICK_KEY = "yd_pick"  # a dataset to select in the list on the next run (set before the selectbox exists)
ADDED_KEY = "yd_added"
BOARD_COLUMNS = ["detector", "roc_auc", "pr_auc", "f1", "precision", "recall", "caught", "fpr", "share_flagged",
                 "threshold", "uses_labels"]


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
            out = (out.replace(str(Path(path).resolve()), shown).replace(str(path), shown)
                   .replace(Path(path).name, shown))
    return text(textsafe.without_paths(out))




@st.cache_data(show_spinner=False, max_entries=8)
def _trainable(name: str, root: str, stamp: int) -> tuple[list[str], dict[str, str]]:
    return jobs.trainable(name)


@st.cache_data(show_spinner=False, max_entries=8)
def _presets(name: str, root: str, stamp: int) -> list[dict[str, Any]]:
    return jobs.presets(name)


@st.cache_data(show_spinner="Scoring the test split with every detector…", max_entries=8)
def _leaderboard(name: str, root: str, stamp: int, externals: str) -> pd.DataFrame:
    declaration = catalog.get(name)
    return next(iter(boards_on_test(declaration, with_externals(open_store(name)), declaration.load_splits()).values()))


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def columns_table(found: inspection.Inspection) -> pd.DataFrame:
    """The inferred columns as the user confirms them: name, role, kind, levels, range, empty cells, note."""
    rows = []
    for c in found.columns:
        span = f"{c.min:.4g} to {c.max:.4g}" if c.min is not None and c.max is not None else ""
        rows.append({"column": c.name, "role": c.role, "kind": c.kind or "",
                     "levels": "" if c.levels is None else f"{c.levels:,}",
                     "range": span, "empty cells": c.nulls, "note": c.note})
    return pd.DataFrame(rows)


# -- the declared datasets ------------------------------------------------------------------------------


def show_leaderboard(name: str, dataset: userdata.UserDataset) -> None:
    manifest = dataset.store_root / "manifest.json"
    try:
        board = _leaderboard(name, str(dataset.store_root), _stamp(manifest), external_kept.stamp(name))
    except (DatasetError, StoreError) as exc:
        st.error(_say(exc))
        return
    if {"tp", "fn"} <= set(board.columns):  # the count each recall rests on
        board = board.assign(caught=[f"{int(tp):,} / {int(tp + fn):,}" for tp, fn in zip(board["tp"], board["fn"],
                                                                                         strict=True)])
    shown = board[[c for c in BOARD_COLUMNS if c in board.columns]]
    shown = shown.assign(detector=shown["detector"].str.removesuffix(f" · {name}"))
    if {"tp", "fn", "fp", "tn"} <= set(board.columns) and len(board):
        first = board.iloc[0]
        small = comparison.small_sample(int(first["tp"] + first["fn"]), int(first["fp"] + first["tn"]),
                                        dataset.declaration().words.positives)
        if small:
            st.warning(text(small), icon=":material/warning:")
    if "roc_auc" in shown.columns:
        unsupervised = shown[~shown["uses_labels"].astype(bool)]
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
        "caught": st.column_config.TextColumn("caught", help="Anomalies flagged / all anomalies in the test split: "
                                                              "what the recall rests on."),
        "fpr": st.column_config.NumberColumn("FPR", format="%.4f"),
        "share_flagged": st.column_config.NumberColumn("flagged", format="percent"),
        "uses_labels": st.column_config.CheckboxColumn("labels", help="Ticked: the supervised ceiling, trained on "
                                                                      "labels; never counted as the best detector."),
        "threshold": st.column_config.NumberColumn("threshold", format="%.4g"),
    })
    st.caption("Test split of the dataset; metrics at each detector's default threshold, chosen on the validation "
               "split. Open it on every page for the intervals, ties and an operating point of your own. Score "
               "files with `python -m anodet score --dataset "
               f"{text(name)} FILE -o OUT`.")

    def _show_everywhere() -> None:
        st.session_state[state.DATASET_KEY] = name
        st.session_state[GOTO_OVERVIEW] = True  # switched to at the top of the next run (not from a callback)

    st.button(f"Open {name} on every page", icon=":material/open_in_new:", key=f"yd_open_{name}",
              on_click=_show_everywhere,
              help="Switches the sidebar's dataset to this one and opens the Overview: Overview, Threshold explorer, "
                   "Flagged records, Score a CSV and Live monitor then show this dataset.")


def show_progress(name: str) -> None:
    """The running job's progress bar and log, redrawn every second until it ends (then the whole page reruns)."""

    @st.fragment(run_every=1.0)
    def panel() -> None:
        job = jobs.get(name)
        if job is None or not job.active:
            st.rerun()
            return
        snap = job.snapshot()
        if snap["status"] == jobs.QUEUED:
            label = "Waiting for another training on this server to end…"
        elif snap["total"]:
            current = snap["current"].split("@", 1)[0]
            label = (f"Training {display_name(current)}: detector {snap['done'] + 1} of "
                     f"{snap['total']} ({snap['elapsed']:.0f} s so far)")
        else:
            label = f"Preparing the splits… ({snap['elapsed']:.0f} s)"
        st.progress(snap["fraction"], text=text(label))
        me = state.principal()
        if snap["cancelling"]:
            st.caption("Cancelling: the training stops before its next step.")
        elif me.role == ADMIN or snap["started_by"] == me.id:
            if st.button("Cancel training", icon=":material/cancel:", key=f"yd_cancel_{name}"):
                try:
                    jobs.cancel(name, me)
                except AccessDenied as exc:
                    st.error(_say(exc))
                st.rerun(scope="fragment")
        with st.expander("Training log"):
            st.code("\n".join(snap["lines"][-40:]) or "…", language=None)

    panel()


def show_dataset(name: str) -> None:
    try:
        dataset = userdata.load(name)
    except DatasetError as exc:
        st.error(_say(exc))
        return
    with st.expander("Declaration", expanded=False):
        st.code("\n".join(dataset.lines()), language=None)
    dataset_access.ownership_controls(name, dataset)
    job = jobs.get(name)
    if job is not None and job.active:
        show_progress(name)
        return
    if job is not None and job.status == jobs.FAILED:
        st.error(_say(job.error))
    elif job is not None and job.status == jobs.DONE:
        st.success(f"Trained {len(job.snapshot()['trained'])} detectors in {job.elapsed:.0f} s.")
    decl = dataset.folder / userdata.DECLARATION
    try:
        kinds, skipped = _trainable(name, str(dataset.folder), _stamp(decl))
    except DatasetError as exc:
        st.error(_say(exc))
        return
    presets = {p["preset"]: p for p in _presets(name, str(dataset.folder), _stamp(decl))}
    picked = f"yd_detectors_{name}"
    st.session_state.setdefault(picked, presets["quick"]["kinds"])  # the quick preset is offered first

    def _use_preset() -> None:
        st.session_state[picked] = presets[st.session_state[f"yd_preset_{name}"]]["kinds"]

    st.radio("Preset", list(presets), key=f"yd_preset_{name}", on_change=_use_preset,
             format_func=lambda p: (f"{p.capitalize()}: {presets[p]['what']} "
                                    f"({'up to' if presets[p]['upper'] else 'about'} "
                                    f"{estimates.fmt_seconds(presets[p]['seconds'])})"),
             help="Estimated fit time from the rows and columns of this dataset and each detector's measured cost "
                  "(on a busy server it takes longer). The neural models stop early on small data, so theirs is "
                  "an upper bound.")
    with st.form(f"yd_train_form_{name}", border=False):
        chosen = st.multiselect(
            "Detectors to train", kinds, key=picked,
            format_func=lambda k: display_name(k),
            help="Every detector that fits this dataset; the neural ones take longest. "
                 + ("Not available here: " + "; ".join(f"{display_name(k)} ({why})"
                                                       for k, why in skipped.items()) if skipped else ""))
        go = st.form_submit_button("Train", type="primary", icon=":material/model_training:", key="yd_train_go")
    cannot_train = refusal(state.principal(), "train", f"dataset:{name}", ownership.owner_of(dataset.doc))
    if cannot_train and not go:  # said first; pressing Train anyway: the library refuses (and audits it)
        st.info(_say(cannot_train), icon=":material/lock:")
    if skipped:
        st.caption("Skipped: " + text("; ".join(f"{display_name(k)} ({why})" for k, why in skipped.items())))
    if go:
        if not chosen:
            st.error("Choose at least one detector to train.")
        else:
            try:
                jobs.start(name, chosen, principal=state.principal())
            except (DatasetError, jobs.JobError, AccessDenied) as exc:
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
    return session_files.track(uploads.save(upload.file_id, role, upload.name, upload, principal=state.principal()))


def add_section() -> None:
    cannot = refusal(state.principal(), "declare")
    if cannot:
        st.info(_say(cannot), icon=":material/lock:")
        return
    gen = st.session_state.setdefault(GEN_KEY, 0)
    st.markdown("A table of records, one per row, with a header: any CSV or Parquet file (flow logs, Zeek connection "
                "logs, CIC-IDS CSVs…). Numbers are used as they are, text columns as categories. Training rows are the "
                "normal ones (a training file without the label column is all normal records), or every row when "
                "there are no labels. Files are kept on this server under "
                "`data/`, nowhere else.")
    c1, c2 = st.columns(2)
    train_up = c1.file_uploader(
        "Training file (CSV or Parquet)", type=["csv", "parquet", "pq"], key=f"yd_train_file_{gen}",
        help=f"Up to {MAX_MB} MB; larger files: `python -m anodet dataset add NAME --train FILE`.")
    test_up = c2.file_uploader(
        "Test file (optional, usually labelled)", type=["csv", "parquet", "pq"], key=f"yd_test_file_{gen}",
        help=f"Same columns as the training file, with the label column; up to {MAX_MB} MB. Without it, a test "
             "split is carved from the labelled training rows. A training file of normal records only and a "
             "labelled test file is the usual set-up.")
    if train_up is None:
        st.caption("Upload a training file to see the columns anodet infers from it.")
        return
    try:
        train_path = _saved(train_up, "train")
        test_path = _saved(test_up, "test")
    except AccessDenied as exc:
        st.error(_say(exc))
        return
    if train_path is None:
        return
    shown = [(train_path, train_up.name)] + ([(test_path, test_up.name)]
                                             if test_path is not None and test_up is not None else [])
    try:
        names, _ = inspection_cache.columns(train_path, state.principal())
        test_names = inspection_cache.columns(test_path, state.principal())[0] if test_path is not None else []
    except (DatasetError, AccessDenied) as exc:
        st.error(_say(exc, *shown))
        return
    default_name = Path(train_up.name).stem
    default_name = "".join(ch if ch.isalnum() or ch in "-_" else "-"
                           for ch in default_name)[:64].strip("-_") or "mydata"
    if default_name.lower().startswith("kdd"):
        default_name = "my-" + default_name
    c1, c2, c3 = st.columns(3)
    name = c1.text_input("Dataset name", value=default_name, key=f"yd_name_{gen}", max_chars=64,
                         help="Letters, digits, '-' or '_'; not starting with 'kdd'.")
    only_in_test = [n for n in test_names if n not in names]  # a training file of normals lacks just the label
    label_choices = [NONE, *names, *only_in_test]
    suggested = next((n for n in label_choices if n.strip().lower() in inspection.LABEL_NAMES),
                     only_in_test[0] if len(only_in_test) == 1 else None)
    if suggested and st.session_state.get(f"yd_label_suggested_{gen}") != suggested \
            and st.session_state.get(f"yd_label_{gen}", NONE) == NONE:  # a new suggestion, and no choice made yet
        st.session_state[f"yd_label_{gen}"] = suggested
        st.session_state[f"yd_label_suggested_{gen}"] = suggested
    label = c2.selectbox("Label column", label_choices, key=f"yd_label_{gen}",
                         help="The column telling normal rows from anomalies, in the training file, the test file or "
                              "both; a training file without it is taken as all normal records. With labels, "
                              "thresholds are chosen on labelled rows and the leaderboard shows ROC and PR AUC.")
    normal = c3.text_input("Normal value(s)", key=f"yd_normal_{gen}", disabled=label == NONE,
                           placeholder="e.g. normal or B,benign; blank: guessed",
                           help="Label values of normal rows, comma-separated, any case. Blank: a usual name (normal, "
                                "benign, 0, false, B).")
    c1, c2, c3 = st.columns(3)
    taken = {label}
    id_column = c1.selectbox("Id column", [NONE, *[n for n in names if n not in taken]], key=f"yd_id_{gen}",
                             help="What every page calls a record; passed through to results, never a feature.")
    taken.add(id_column)
    exclude = c2.multiselect("Exclude columns", [n for n in names if n not in taken], key=f"yd_exclude_{gen}",
                             help="Columns the detectors should not see.")
    categorical = c3.multiselect("Treat as categorical", [n for n in names if n not in taken and n not in exclude],
                                 key=f"yd_categorical_{gen}",
                                 help="Numbers that are codes (ports, protocol numbers…), to be used as categories.")
    c1, c2, c3 = st.columns(3)
    protocol = c1.radio("Fit the detectors on", PROTOCOLS, key=f"yd_protocol_{gen}", horizontal=True,
                        format_func=lambda p: {"normal-only": "normal rows only",
                                               "unsupervised": "every training row"}[p],
                        help="Normal rows only (the usual set-up), or every training row, anomalies included, as "
                             "ADBench's unsupervised protocol does (needs the label column in the training file).")
    positive = c2.text_input("An anomalous record is called", key=f"yd_positive_{gen}", placeholder="anomaly",
                             help="The word every page uses for a label-1 record (e.g. malignant, fraud).")
    negative = c3.text_input("A normal record is called", key=f"yd_negative_{gen}", placeholder="normal",
                             help="The word every page uses for a label-0 record (e.g. benign).")
    lab = None if label == NONE else label
    ident = None if id_column == NONE else id_column
    try:
        with st.spinner("Reading the file…"):
            found = inspection_cache.inspect(train_path, state.principal(), label=lab,
                                             normal=(normal.strip() or None) if lab else None, id_column=ident,
                                             exclude=tuple(exclude), categorical=tuple(categorical),
                                             max_rows=userdata.BROWSER_MAX_ROWS, label_elsewhere=test_path is not None)
    except (DatasetError, AccessDenied) as exc:
        st.error(_say(exc, *shown))
        return
    st.markdown(f"**{text(train_up.name)}**: {found.rows:,} rows, {len(found.features)} feature columns. "
                "Check the inferred columns, then confirm.")
    st.dataframe(columns_table(found), hide_index=True, key=f"yd_columns_{gen}",
                 height=min(420, 38 + 35 * len(found.columns)))
    if found.label:
        counts = ", ".join(f"{text(v)}: {n:,}" for v, n in sorted(found.label_counts.items(), key=lambda kv: -kv[1]))
        st.markdown(f"Labels in **{text(found.label)}**: {counts}. Normal: {text(', '.join(found.normal))}.")
    elif lab:
        st.markdown(f"The training file has no column **{text(lab)}**: its rows are taken as normal records, and the "
                    "labels come from the test file (read when you confirm).")
    else:
        st.markdown("No label column: every row is taken as normal, thresholds are the unlabelled presets, and ROC/PR "
                    "curves need labels.")
    for note in found.notes:
        st.caption(_say(note, *shown))
    exists = name in jobs.running() or (userdata.datasets_root() / name / userdata.DECLARATION).exists()
    replace = False
    sharing = PRIVATE
    if exists and ownership.sees(state.principal(), name):
        cannot_replace = refusal(state.principal(), "replace", f"dataset:{name}", ownership.meta(name)[0])
        if cannot_replace:  # said first; confirming anyway: the library refuses (and audits it)
            st.info(_say(cannot_replace), icon=":material/lock:")
        replace = st.checkbox(f"Replace the dataset {text(name)} (its store is kept until it is trained again)",
                              key=f"yd_replace_{gen}")
    elif exists:
        st.warning(f"A dataset named {text(name)} already exists on this server and is not yours; choose another "
                   "name.")
    else:
        sharing = st.radio("Who sees it", SHARING, horizontal=True, key=f"yd_sharing_new_{gen}",
                           format_func=lambda v: dataset_access.SHARING_WORDS[v].capitalize(),
                           help="Private (the default): only you and the admins see it. You can change it later.")
    if st.button("Confirm and add the dataset", type="primary", icon=":material/check:", key=f"yd_add_{gen}"):
        if name in jobs.running():
            st.error(f"Dataset {text(name)} is being trained; wait for it to end before replacing it.")
            return
        try:
            with st.spinner("Building the splits…"):
                declared = uploads.add_from_uploads(
                    name, train_path, test_path, replace=replace, label=lab, normal=normal.strip() if lab else None,
                    id_column=ident, exclude=list(exclude), categorical=list(categorical), protocol=protocol,
                    positive=positive.strip() or None, negative=negative.strip() or None,
                    max_rows=userdata.BROWSER_MAX_ROWS, principal=state.principal(),
                    sharing=None if replace else sharing)
        except (DatasetError, AccessDenied) as exc:
            kept = userdata.datasets_root() / name / uploads.INPUT_DIR
            st.error(_say(exc, *[(kept / p.name, shown_name) for p, shown_name in shown if p is not None], *shown))
            return
        session_files.confirmed([train_path, test_path])
        st.session_state[GEN_KEY] = gen + 1
        st.session_state[PICK_KEY] = name
        st.session_state[ADDED_KEY] = (name, list(declared.doc.get("notes", [])))
        st.rerun()


# -- the page --------------------------------------------------------------------------------------------

st.title("Your data")
st.markdown("Bring your own records, confirm the columns anodet infers, and train the whole detector family on them. "
            "The same as `python -m anodet dataset add` and `train --dataset` on the command line.")

added = st.session_state.pop(ADDED_KEY, None)
if added:
    added_name, added_notes = added
    st.success(f"Dataset {text(added_name)} added. Train it below."
               + "".join(f"\n\n{text(note)}" for note in added_notes))
deleted = st.session_state.pop(dataset_access.DELETED_KEY, None)
if deleted:
    st.success(f"Dataset {text(deleted)} deleted: its declaration, splits, trained detectors and kept files.")

st.subheader("Your datasets", anchor=False)
catalogue = jobs.catalogue(state.principal())
if not catalogue:
    st.info("No dataset yet: add one below.")
else:
    st.dataframe(pd.DataFrame(catalogue), hide_index=True, key="yd_catalogue", column_config={
        "rows": st.column_config.NumberColumn("rows", format="localized")})
    known = [row["dataset"] for row in catalogue]
    pick = st.session_state.pop(PICK_KEY, None)
    if pick not in known and st.session_state.get("yd_dataset") not in known:
        pick = state.current_dataset().key  # the one the sidebar shows, when it is one of these
    if pick in known:
        st.session_state["yd_dataset"] = pick
    chosen = st.selectbox("Dataset to train or look at", known, key="yd_dataset",
                          help="Its declaration, training and leaderboard below. The sidebar's Dataset switch "
                               "chooses what the other pages show.")
    if chosen:
        show_dataset(chosen)

st.subheader("Add a dataset", anchor=False)
add_section()

st.subheader("Add scores from your own detector", anchor=False)
scores_form.scores_section()
