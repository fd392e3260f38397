"""Live monitor: replay the test split as a stream, or follow a running `stream` command's alert log."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from anodet import ui
from anodet.live import AlertFollower, Replay
from anodet.schema import label_column

ui.ensure_app_frame()

TICK_SECONDS = 1.0
WINDOW = 1500
SPEEDS = [50, 100, 200, 500, 1000, 2000, 5000]


def score_figure(x, scores, is_attack, threshold: float, x_title: str) -> go.Figure:
    """Scores of the latest records against the threshold, coloured by what they really were."""
    fig = go.Figure()
    for mask, name, colour in ((~is_attack, "normal", ui.NORMAL_COLOUR), (is_attack, "attack", ui.ATTACK_COLOUR)):
        fig.add_trace(go.Scattergl(x=x[mask], y=scores[mask], mode="markers", name=name,
                                   marker={"color": colour, "size": 5, "opacity": 0.7}))
    fig.add_hline(y=threshold, line={"color": "#444", "dash": "dash"},
                  annotation_text=f"threshold {threshold:.4g}", annotation_position="top left")
    positive = len(scores) and np.all(np.asarray(scores) > 0) and threshold > 0
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title=x_title,
                      yaxis_title="score" + (" (log)" if positive else ""), legend={"orientation": "h", "y": 1.12},
                      yaxis_type="log" if positive else "linear", uirevision="live")
    return fig


def rate_figure(t, rate, x_title: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=t, y=np.asarray(rate) * 100, mode="lines+markers", line={"color": ui.ATTACK_COLOUR},
                               marker={"size": 4}, name="anomaly rate"))
    fig.update_layout(height=240, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis_title=x_title,
                      yaxis_title="flagged (%)", yaxis_rangemode="tozero", uirevision="live")
    return fig


def replay_mode() -> None:
    store = ui.get_store()
    names = store.names
    controls = st.columns([2, 2, 3])
    name = controls[0].selectbox("Detector", names, format_func=lambda n: store.entry(n)["display_name"],
                                 key="live_detector")
    speed = controls[1].select_slider("Speed (records/s)", SPEEDS, value=200, key="live_speed")
    threshold = ui.get_threshold(name)
    controls[2].caption(f"Threshold **{threshold:.6g}** (this session's threshold for the detector; change it "
                        "on the Threshold explorer page).")

    replay: Replay | None = st.session_state.get("live_replay")
    view = ui.label_view()
    if replay is None or st.session_state.get("live_replay_key") != (name, view, store.hash):
        test = ui.get_splits().test
        replay = Replay(ui.get_test_scores()[name], test[label_column(view)].to_numpy() == 1,
                        test["attack"].to_numpy(), speed=speed)
        st.session_state["live_replay"] = replay
        st.session_state["live_replay_key"] = (name, view, store.hash)
    replay.speed = float(speed)

    # Callbacks change the replay before the page is drawn, so the buttons show the new state.
    buttons = st.columns([1, 1, 1, 5])
    buttons[0].button("Start" if replay.position == 0 or replay.finished else "Resume", type="primary",
                      disabled=replay.running, key="live_start", on_click=lambda: replay.start(time.monotonic()))
    buttons[1].button("Pause", disabled=not replay.running, key="live_pause", on_click=replay.pause)
    buttons[2].button("Stop", disabled=replay.position == 0, key="live_stop", on_click=replay.reset)
    buttons[3].caption(f"Replays the {len(replay.scores):,} records of the test split in a fixed shuffled order; "
                       "it pauses by itself while you are on another page.")

    @st.fragment(run_every=TICK_SECONDS if replay.running else None)
    def live() -> None:
        threshold = ui.get_threshold(name)
        replay.advance(time.monotonic(), threshold)
        if replay.finished and st.session_state.get("live_finished_shown") != id(replay):
            st.session_state["live_finished_shown"] = id(replay)
            st.rerun()  # refresh the buttons: the replay is over
        seen, flagged, caught = replay.position, replay.flagged, replay.caught
        attacks_seen = int(replay.is_attack[:seen].sum())
        cols = st.columns(5)
        cols[0].metric("Records", f"{seen:,}", help="Records replayed so far.")
        cols[1].metric("Alerts", f"{flagged:,}", help="Records scoring at or above the threshold.")
        cols[2].metric("Anomaly rate", f"{flagged / seen:.1%}" if seen else "–")
        cols[3].metric("Attacks caught", f"{caught / attacks_seen:.0%}" if attacks_seen else "–",
                       help=f"{caught:,} of the {attacks_seen:,} attacks replayed so far (under the sidebar's "
                            "label view) raised an alert.")
        cols[4].metric("False alarms", f"{flagged - caught:,}", help="Normal records that raised an alert.")
        st.progress(seen / len(replay.scores), text=("running" if replay.running else
                                                     "finished" if replay.finished else "paused"))
        if seen == 0:
            st.info("Press **Start** to stream the test split through the detector.")
            return
        x, s, attack = replay.window(WINDOW)
        st.plotly_chart(score_figure(x, s, attack, threshold, "record"), width="stretch")
        left, right = st.columns([3, 2])
        with left:
            st.caption("Anomaly rate per second of replay")
            t, rate = replay.rate_series()
            st.plotly_chart(rate_figure(t, rate, "replay time (s)"), width="stretch")
        with right:
            st.caption("Latest alerts")
            latest = pd.DataFrame(replay.latest_alerts(threshold, 12))
            if latest.empty:
                st.write("No alerts yet.")
            else:
                st.dataframe(latest, hide_index=True, width="stretch",
                             column_config={"score": st.column_config.NumberColumn(format="%.4g")})

    live()


def follow_mode() -> None:
    st.caption("Run the command line with an alert log (and a stats file for the counters), e.g. "
               "`python -m anodet stream --detector autoencoder --input tcp://127.0.0.1:9000 --follow "
               "--alerts alerts.jsonl --stats stats.json`, then name the files here.")
    cols = st.columns(2)
    path = cols[0].text_input("Alert log", value=st.session_state.get("live_alert_path", "alerts.jsonl"),
                              key="live_alert_path")
    stats_path = cols[1].text_input("Stats file (optional)", value="", key="live_stats_path")
    follow_on = st.toggle("Follow", key="live_follow_on", help="Poll the files every second.")
    key = (path, stats_path)
    follower: AlertFollower | None = st.session_state.get("live_follower")
    if follower is None or st.session_state.get("live_follower_key") != key:
        follower = AlertFollower(path, stats_path or None, from_start=True)
        st.session_state["live_follower"] = follower
        st.session_state["live_follower_key"] = key

    @st.fragment(run_every=TICK_SECONDS if follow_on else None)
    def live() -> None:
        follower.poll()
        if not follower.path.exists():
            st.warning(f"No alert log at `{follower.path}` yet. Start the `stream` command with "
                       f"`--alerts {follower.path}`, or correct the path.")
        stats = follower.stats
        cols = st.columns(5)
        cols[0].metric("Alerts in log", f"{follower.total:,}")
        if stats:
            cols[1].metric("Records read", f"{stats['read']:,}")
            cols[2].metric("Rejected", f"{stats['rejected']:,}")
            cols[3].metric("Records/s", f"{stats['records_per_s']:,.0f}")
            cols[4].metric("Latency p99", f"{stats['latency_p99_ms']:.1f} ms")
        if not follower.alerts:
            st.info("No alerts yet.")
            return
        recent = follower.alerts[-WINDOW:]
        frame = pd.DataFrame(recent)
        x = pd.to_datetime(frame["time"]).to_numpy()
        # Alerts are attacks unless the record carried a label saying otherwise (a false alarm).
        attack = np.array([a.get("label") not in ("normal.", "normal", "0") for a in recent], dtype=bool)
        fig = score_figure(x, frame["score"].to_numpy(), attack, float(frame["threshold"].iloc[-1]), "time")
        st.plotly_chart(fig, width="stretch")
        left, right = st.columns([3, 2])
        with left:
            t, rate = follower.rate_series()
            if len(t):
                st.caption("Anomaly rate between status updates")
                st.plotly_chart(rate_figure(t, rate, "stream time (s)"), width="stretch")
            else:
                st.caption("Give a stats file to see the anomaly rate over time.")
        with right:
            st.caption("Latest alerts")
            cols_shown = [c for c in ("time", "record", "score", "label") if c in frame]
            st.dataframe(frame[cols_shown].iloc[::-1].head(12), hide_index=True, width="stretch")

    live()


st.title("Live monitor")
mode = st.radio("Source", ["Replay the test split", "Follow a running stream"], horizontal=True,
                key="live_mode")
if mode == "Replay the test split":
    replay_mode()
else:
    follow_mode()
