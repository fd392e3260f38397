"""The Your data page's controls of one declared dataset's ownership: who owns it and who sees it, sharing, and
Delete (asked first); shown to its owner and the admins, what the library's checks allow."""

from __future__ import annotations

import streamlit as st

from anodet import textsafe
from anodet.access import ADMIN, PRIVATE, SHARING, TEAM, AccessDenied
from anodet.app import state
from anodet.datasets import catalog, ownership, userdata
from anodet.datasets.errors import DatasetError
from anodet.training import jobs

DELETED_KEY = "yd_deleted"
"""The dataset just deleted, for the page to say so on its next run."""
SHARING_WORDS = {PRIVATE: "only its owner and the admins", TEAM: "everyone signed in"}
text = textsafe.markdown_text


def say(message: object) -> str:
    """A library sentence for the page: no server paths, escaped for Markdown."""
    return text(textsafe.without_paths(str(message)))


def ownership_controls(name: str, dataset: userdata.UserDataset) -> None:
    """Who owns the dataset and who sees it; its owner or an admin changes the sharing and deletes it (asked
    first)."""
    me = state.principal()
    owner, sharing = ownership.owner_of(dataset.doc), ownership.sharing_of(dataset.doc)
    manages = me.role == ADMIN or (owner is not None and owner == me.id)
    st.caption(f"Declared by {text(owner or 'an unknown owner (admins manage it)')}; seen by "
               f"{SHARING_WORDS[sharing]}.")
    if not manages:
        return
    c1, c2 = st.columns([3, 1])
    chosen = c1.radio("Who sees it", SHARING, index=SHARING.index(sharing), horizontal=True,
                      key=f"yd_sharing_{name}_{sharing}", format_func=lambda v: SHARING_WORDS[v].capitalize(),
                      help="Private: only its owner and the admins see it anywhere (the sidebar's switch, this list). "
                           "Everyone signed in: they see it and its detectors, but only its owner or an admin "
                           "replaces, trains or deletes it.")
    if chosen != sharing:
        try:
            ownership.share(name, chosen, me)
        except (DatasetError, AccessDenied) as exc:
            st.error(say(exc))
        else:
            st.rerun()
    confirm_key = "yd_confirm_delete"
    if st.session_state.get(confirm_key) != name:
        if c2.button("Delete…", icon=":material/delete:", key=f"yd_delete_{name}",
                     help="Removes its declaration, splits, trained detectors and kept files; asks first."):
            st.session_state[confirm_key] = name
            st.rerun()
        return
    st.warning(f"Delete dataset **{text(name)}** for everyone? Its declaration, splits, trained detectors and kept "
               "files are removed; this cannot be undone.", icon=":material/delete_forever:")
    b1, b2 = st.columns(2)
    if b1.button(f"Delete {name}", type="primary", icon=":material/delete_forever:", key=f"yd_delete_yes_{name}"):
        st.session_state.pop(confirm_key, None)
        try:
            jobs.delete_dataset(name, me)
        except (DatasetError, AccessDenied) as exc:
            st.error(say(exc))
            return
        st.session_state[DELETED_KEY] = name
        if st.session_state.get(state.DATASET_KEY) == name:
            st.session_state[state.DATASET_KEY] = catalog.KDD
        st.rerun()
    if b2.button("Keep it", icon=":material/undo:", key=f"yd_delete_no_{name}"):
        st.session_state.pop(confirm_key, None)
        st.rerun()
