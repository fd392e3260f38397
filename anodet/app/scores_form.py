"""The Your data page's form that adds scores made by the user's own detector to a dataset
(:mod:`anodet.external`): a file of record ids and scores, matched to the dataset's records and shown beside
anodet's detectors on every page."""

from __future__ import annotations

import re

import streamlit as st

from anodet import textsafe
from anodet.access import AccessDenied, refusal
from anodet.app import loaders, state
from anodet.datasets import catalog, ownership
from anodet.datasets.errors import DatasetError
from anodet.external import kept as external_kept

EXT_ADDED_KEY = "yd_ext_added"
EXT_GEN_KEY = "yd_ext_generation"  # bumped after scores are added, so their form starts empty again
FIELDS = {"--id": "Id column", "--score": "Score column", "--invert": "Higher scores are more normal",
          "--replace": "Detector name (a new one)"}
_FLAG = re.compile(r"--(id|score|invert|replace)\b")
text = textsafe.markdown_text


def say(message: object) -> str:
    """A library sentence for the form: command-line options as the form's field names, no server paths."""
    return text(textsafe.without_paths(_FLAG.sub(lambda m: f"'{FIELDS[m.group(0)]}'", str(message))))


def scores_section() -> None:
    """Scores from the user's own detector, kept as an external detector (:mod:`anodet.external`) of a dataset."""
    gen = st.session_state.setdefault(EXT_GEN_KEY, 0)
    st.markdown("Scores your own pipeline made, one per record of a dataset's test split (and its validation split, "
                "for thresholds): a CSV or Parquet file with each record's id and its score, higher = more anomalous. "
                "They are shown beside anodet's detectors on every page. The same as `python -m anodet external add`.")
    choices = catalog.available(state.principal())
    current = state.current_dataset().key
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox("For dataset", choices, index=choices.index(current) if current in choices else 0,
                           format_func=catalog.describe, key="yd_ext_dataset",
                           help="KDD's record id is the record's line in the raw test file corrected, from 0; your "
                                "dataset's is its id column, else its data row (from 1).")
    owner = None if dataset == catalog.KDD else ownership.owner_of(ownership.read_doc(dataset))
    cannot = refusal(state.principal(), "replace", f"dataset:{dataset}", owner)
    if cannot:
        st.info(text(cannot))
        return
    name = c2.text_input("Detector name", key=f"yd_ext_name_{gen}", placeholder="my-pipeline", max_chars=64)
    id_column = c3.text_input("Id column", key=f"yd_ext_id_{gen}", placeholder="record_id, record or id")
    upload = st.file_uploader("Scores file (CSV, optionally .gz, or Parquet)", type=["csv", "gz", "parquet", "pq"],
                              key=f"yd_ext_file_{gen}")
    c1, c2 = st.columns(2)
    score_column = c1.text_input("Score column", key=f"yd_ext_score_{gen}", placeholder="score or anomaly_score")
    invert = c2.checkbox("Higher scores are more normal (invert them)", key=f"yd_ext_invert_{gen}")
    if st.button("Add the scores", type="primary", icon=":material/add_chart:", key="yd_ext_add",
                 disabled=upload is None or not name.strip()) and upload is not None:
        upload.seek(0)
        try:
            with st.spinner("Matching the scores to the dataset's records…"):
                external, notes = external_kept.add_upload(
                    name.strip(), dataset, upload.file_id, upload.name, upload, id_column=id_column.strip() or None,
                    score_column=score_column.strip() or None, invert=invert,
                    replace=name.strip() in [e.name for e in external_kept.list_externals(dataset)],
                    splits=loaders.get_splits() if dataset == current else None, principal=state.principal())
        except (DatasetError, AccessDenied) as exc:
            st.error(say(exc))
            return
        st.session_state[EXT_GEN_KEY] = gen + 1
        st.session_state[EXT_ADDED_KEY] = (external.lines(), notes)
        st.rerun()
    added = st.session_state.pop(EXT_ADDED_KEY, None)
    if added:
        st.success(text("  \n".join(added[0])) + "  \nShown on every page for this dataset.")
        for note in added[1]:
            st.caption(text(note))
    kept = external_kept.list_externals(dataset)
    if kept:
        st.caption("External detectors of this dataset: " + text(", ".join(e.name for e in kept)) + ". Remove one "
                   f"with `python -m anodet external remove NAME --dataset {text(dataset)}`.")
