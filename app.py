"""anodet: the Streamlit entry point (page config, navigation, shared sidebar)."""

import streamlit as st

from anodet.app import auth, layout, loaders, state, ui
from anodet.datasets import uploads

st.set_page_config(page_title="anodet", page_icon=":material/shield:", layout="wide")

PAGES = {
    "Compare": [
        st.Page("app_pages/overview.py", title="Overview", icon=":material/leaderboard:", default=True),
        st.Page("app_pages/threshold_explorer.py", title="Threshold explorer", icon=":material/tune:"),
        st.Page("app_pages/flagged_records.py", title="Flagged records", icon=":material/flag:"),
        st.Page("app_pages/benchmark.py", title="Benchmark", icon=":material/trophy:"),
    ],
    "Put to work": [
        st.Page("app_pages/score_csv.py", title="Score a CSV", icon=":material/upload_file:"),
        st.Page("app_pages/live_monitor.py", title="Live monitor", icon=":material/sensors:"),
        st.Page("app_pages/your_data.py", title="Your data", icon=":material/dataset:"),
    ],
}

principal = auth.gate(PAGES)  # with sign-in configured: the sign-in page only (at every page's URL) until signed in
uploads.start_sweeper()  # unconfirmed uploads of sessions that ended without saying so do not stay
page = st.navigation(PAGES)
st.html(f"<style>{layout.RESPONSIVE_CSS}</style>")  # one column below ~900 px, on every page
st.sidebar.title("anodet")
ui.apply_url_state()  # a shared link's dataset, view, detectors and thresholds, before any widget
dataset = state.dataset_switch()
st.sidebar.caption(f"Anomaly detectors on {dataset.title}, side by side.")
state.label_view_switch()
auth.account_box(principal)
try:
    ui.operating_point_switch()  # needs the store: a missing one is the page's one sentence below
    page.run()
    ui.keep_point_in_url()
except Exception as exc:
    ui.show_failure(exc)
loaders.page_drawn()  # background loading of the detectors may start now
