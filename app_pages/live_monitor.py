"""Live monitor: replay the test split as a stream, or follow a running `stream` command's alert log."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from anodet import textsafe
from anodet.app import figures, layout, loaders, state, ui
from anodet.app.live import (
    AlertFollower,
    OutsideAlertsDir,
    RedisAlertFollower,
    Replay,
    alerts_dir,
    alerts_frame,
    is_alert_stream,
    redis_hosts,
    resolve_alert_path,
    resolve_alert_stream,
)
from anodet.app.threshold_control import threshold_control as live_control
from anodet.app.threshold_control.payload import control_payload

TICK_SECONDS = 1.0
WINDOW = 1500
SPEEDS = [50, 100, 200, 500, 1000, 2000, 5000]


REPLAY_KEY, REPLAY_FOR, REPLAY_VIEW = "live_replay", "live_replay_key", "live_replay_view"


def _keep_widget(key: str, value: object) -> None:
    """Give a widget its remembered value when the page is entered again.

    Streamlit drops a widget's state when its page is left; the replay in session state
    remembers its detector and speed, and the widgets are seeded from it.
    """
    if key not in st.session_state:
        st.session_state[key] = value


def threshold_control(name: str, view: str) -> float:
    """The detector's threshold under this label view, editable here (shared with every page)."""
    threshold = ui.get_threshold(name, view)
    key, synced = f"live_threshold_{name}_{view}", f"live_threshold_for_{name}_{view}"
    if key not in st.session_state or st.session_state.get(synced) != threshold:
        st.session_state[key] = threshold
        st.session_state[synced] = threshold

    def _typed() -> None:
        ui.set_threshold(name, float(st.session_state[key]), view)
        st.session_state[synced] = float(st.session_state[key])

    st.number_input(f"Threshold ({view} view)", key=key, on_change=_typed, format="%.6g", step=None,
                    help=f"The session's threshold for {loaders.display_name(name)} under the {view} label view: "
                         "the same one the other pages use. Records scoring at or above it raise an alert.")
    return ui.get_threshold(name, view)


def replay_mode() -> None:
    store = loaders.get_store()
    names = store.names
    view = state.label_view()
    replay: Replay | None = st.session_state.get(REPLAY_KEY)
    kept_for = st.session_state.get(REPLAY_FOR)
    if st.session_state.get("live_detector", names[0]) not in names:  # another dataset was chosen
        del st.session_state["live_detector"]
    focus = st.session_state.get(ui.FOCUS_KEY)  # the detector looked at last (Overview, explorer, flagged records)
    _keep_widget("live_detector", kept_for[0] if replay is not None and kept_for and kept_for[0] in names else
                 focus if focus in names else names[0])
    _keep_widget("live_speed", int(replay.speed) if replay is not None and int(replay.speed) in SPEEDS else 200)
    controls = st.columns([2, 2, 2])
    name = controls[0].selectbox("Detector", names, format_func=loaders.name_format(names), key="live_detector",
                                 help="Another detector starts a new replay.")
    speed = controls[1].select_slider("Speed (records/s)", SPEEDS, key="live_speed")
    with controls[2]:
        threshold_control(name, view)
    dataset = state.current_dataset()
    if dataset.labelled:
        live_control(control_payload(loaders.get_control_static(name, view), ui.get_threshold(name, view),
                                     compact=True),
                     key=f"live_control_{name}_{view}", on_release=lambda value: ui.set_threshold(name, value, view))
    threshold = ui.get_threshold(name, view)

    test = loaders.get_splits().test
    is_attack = loaders.labels_or_normal("test", view) == 1
    if replay is None or kept_for != (name, store.hash):
        replay = Replay(loaders.get_test_scores()[name], is_attack, test.label_text, speed=speed)
        st.session_state[REPLAY_KEY] = replay
        st.session_state[REPLAY_FOR] = (name, store.hash)
        st.session_state[REPLAY_VIEW] = view
    elif st.session_state.get(REPLAY_VIEW) != view:
        # Same records, same scores: only the labels (and the view's threshold) differ.
        replay.relabel(is_attack, threshold)
        st.session_state[REPLAY_VIEW] = view
        if replay.position:
            st.session_state["live_view_note"] = (
                f"The label view changed to **{view}**: the replay goes on from record {replay.position:,}, with its "
                f"counters recounted under the {view} labels and the {view} view's threshold {threshold:.6g}.")
    replay.speed = float(speed)
    if not st.session_state.get(GOTO_KEY) and st.session_state.pop(RESUME_KEY, False) and not replay.finished:
        replay.start()  # paused to open an alert's record (open_record): back here, go on where it was
    note = st.session_state.pop("live_view_note", None)
    if note:
        st.info(note, icon=":material/info:")

    # Callbacks change the replay before the page is drawn, so the buttons show the new state.
    buttons = st.columns([1, 1, 1, 5])
    buttons[0].button("Start" if replay.position == 0 or replay.finished else "Resume", type="primary",
                      disabled=replay.running, key="live_start", on_click=replay.start)
    buttons[1].button("Pause", disabled=not replay.running, key="live_pause", on_click=replay.pause)
    buttons[2].button("Stop", disabled=replay.position == 0 and not replay.running, key="live_stop",
                      on_click=replay.reset)
    buttons[3].caption(f"Replays the {len(replay.scores):,} records of the test split in a fixed shuffled order. "
                       f"It pauses by itself while you are on another page (after {replay.max_gap:.0f} s without "
                       "an update) and resumes where it was when you come back; switching the label view keeps "
                       "its place and recounts it.")

    replay.advance(None, ui.get_threshold(name, view))  # the page run anew: a long gap was time away from it

    @st.fragment(run_every=TICK_SECONDS if replay.running else None)
    def live() -> None:
        view_now = state.label_view()
        threshold = ui.get_threshold(name, view_now)
        replay.advance(None, threshold, watching=True)  # the page's own tick: slow or not, the time is replayed
        if replay.finished and st.session_state.get("live_finished_shown") != id(replay):
            st.session_state["live_finished_shown"] = id(replay)
            st.rerun()  # refresh the buttons: the replay is over
        seen, flagged, caught = replay.position, replay.flagged, replay.caught
        attacks_seen = int(replay.is_attack[:seen].sum())
        cols = st.columns(5)
        cols[0].metric("Records", f"{seen:,}", help="Records replayed so far.")
        cols[1].metric("Alerts", f"{flagged:,}", help="Records scoring at or above the threshold.")
        cols[2].metric("Anomaly rate", f"{flagged / seen:.1%}" if seen else "–")
        words = state.current_dataset().words
        cols[3].metric(f"{words.positives.capitalize()} caught",
                       f"{caught / attacks_seen:.0%}" if attacks_seen else "–",
                       help=f"{caught:,} of the {words.count(attacks_seen)} replayed so far (under the {view_now} "
                            "label view) raised an alert." if state.has_labels() else "This dataset has no labels.")
        cols[4].metric("False alarms", f"{flagged - caught:,}", help="Normal records that raised an alert.")
        status = "running" if replay.running else "finished" if replay.finished else "paused"
        if replay.away_seconds >= 1:
            status += f" (paused for {replay.away_seconds:,.0f} s while nobody was watching)"
        st.progress(seen / len(replay.scores), text=status)
        if seen == 0:
            st.info("Press **Start** to stream the test split through the detector.")
            return
        x, s, attack = replay.window(WINDOW)
        st.plotly_chart(figures.live_score_figure(x, s, attack, threshold, "record"), width="stretch")
        left, right = st.columns([3, 2])
        with left:
            st.caption("Anomaly rate per second of replay")
            t, rate = replay.rate_series()
            st.plotly_chart(figures.live_rate_figure(t, rate, "replay time (s)"), width="stretch")
        with right:
            st.caption("Latest alerts: select one to open its record in Flagged records")
            latest = pd.DataFrame(replay.latest_alerts(threshold, 12))
            if not latest.empty:  # the record's id, as Flagged records calls it
                latest["id"] = loaders.get_splits().test.record_id[latest["position"].to_numpy()].astype(str)
            if latest.empty:
                st.write("No alerts yet.")
            else:
                # The table is redrawn every tick; a click is read against the rows that were shown
                # when it happened, then the table gets a fresh key so no stale row stays selected.
                shown_before = st.session_state.get("live_alerts_shown")
                if shown_before:
                    clicked = (st.session_state.get(shown_before[0]) or {}).get("selection", {}).get("rows", [])
                    if clicked:
                        st.session_state["live_opened"] = (name, shown_before[1][clicked[0]])
                        st.session_state["live_alerts_round"] = st.session_state.get("live_alerts_round", 0) + 1
                table_key = f"live_alerts_{st.session_state.get('live_alerts_round', 0)}"
                st.dataframe(latest, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                             key=table_key, height=layout.table_height(len(latest)),
                             column_order=["id", "score", "truth", "record"],
                             column_config={"id": st.column_config.TextColumn(
                                                "Record", help="The record's id, as Flagged records shows it."),
                                            "score": st.column_config.NumberColumn(format="%.4g"),
                                            "record": st.column_config.NumberColumn(
                                                "replayed #", help="Place in the replay (the chart's x axis).")})
                st.session_state["live_alerts_shown"] = (table_key, latest["position"].tolist())
            opened = st.session_state.get("live_opened")
            if opened and opened[0] == name:
                open_record(name, opened[1])

    live()


GOTO_KEY = "live_goto_flagged"
RESUME_KEY = "live_resume_on_return"


def open_record(name: str, position: int) -> None:
    """A button handing a test record over to Flagged records, which opens on its detail.

    The button sits in the replay's fragment, and a page switched to from inside a fragment
    stays blank (Streamlit 1.67): the click reruns the whole page, which switches at its end. The
    replay is paused first, so that rerun draws the fragment without its timer: a tick still due
    while the next page starts left that page blank too (2 of 3 clean-clone CI runs). It resumes
    when the user comes back, as after any other visit elsewhere.
    """
    def _go() -> None:
        st.session_state[ui.FOCUS_KEY] = name
        st.session_state[state.keyed("flagged_record")] = position
        st.session_state[GOTO_KEY] = True
        replay: Replay | None = st.session_state.get(REPLAY_KEY)
        if replay is not None and replay.running:
            replay.pause()
            st.session_state[RESUME_KEY] = True

    record = loaders.get_splits().test.record_id[position]
    if st.button(f"Open record {textsafe.markdown_text(record)} in Flagged records", icon=":material/open_in_new:",
                 key="live_open_record", on_click=_go):
        st.rerun(scope="app")


def follow_mode() -> None:
    folder = alerts_dir()
    shown = textsafe.without_paths(folder)  # no server path on a page: data/alerts, or the folder's name
    st.caption(f"Only files in the alerts folder **{textsafe.markdown_text(shown)}** are read (set `ANODET_ALERTS_DIR` "
               "to use another folder). Run the command line with its alert log there (and a stats file for the "
               "counters), for example as below, then name the files here. A Redis alert stream can be followed "
               "too: type its address, redis://HOST:PORT/STREAM (a stream the command's `--alerts redis://…` "
               f"writes to; servers on {textsafe.markdown_text(', '.join(redis_hosts()))} only, set "
               "`ANODET_REDIS_HOSTS` to allow others).")
    st.code(f"python -m anodet stream --detector autoencoder --input tcp://127.0.0.1:9000 --follow "
            f"--alerts {shown}/alerts.jsonl --stats {shown}/stats.json", language="bash", wrap_lines=True)
    cols = st.columns(2)
    _keep_widget("live_alert_path", st.session_state.get("live_alert_path_kept", "alerts.jsonl"))
    _keep_widget("live_stats_path", st.session_state.get("live_stats_path_kept", ""))
    path = cols[0].text_input("Alert log", key="live_alert_path",
                              help=f"A file name in {shown}, or a Redis alert stream: redis://HOST:PORT/STREAM.")
    stats_path = cols[1].text_input("Stats file (optional)", key="live_stats_path", help=f"A file name in {shown}.")
    st.session_state["live_alert_path_kept"], st.session_state["live_stats_path_kept"] = path, stats_path
    try:
        log = resolve_alert_stream(path) if is_alert_stream(path) else resolve_alert_path(path, folder)
        stats = resolve_alert_path(stats_path, folder) if stats_path.strip() else None
    except OutsideAlertsDir as exc:
        st.error(textsafe.markdown_text(textsafe.without_paths(exc)), icon=":material/block:")
        return
    follow_on = st.toggle("Follow", key="live_follow_on", help="Poll for new alerts every second.")
    key = (str(log), stats)
    follower: AlertFollower | None = st.session_state.get("live_follower")
    if follower is None or st.session_state.get("live_follower_key") != key:
        follower = (AlertFollower(log, stats, from_start=True) if isinstance(log, Path)
                    else RedisAlertFollower(log, stats))
        st.session_state["live_follower"] = follower
        st.session_state["live_follower_key"] = key

    @st.fragment(run_every=TICK_SECONDS if follow_on else None)
    def live() -> None:
        follower.poll()
        if not follower.found:
            st.warning(textsafe.markdown_text(textsafe.without_paths(follower.missing)))
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
        frame = alerts_frame(follower.alerts[-WINDOW:])
        unusable = follower.bad_lines + int(frame["unusable"].sum())
        if unusable:
            lines = "1 line of the log is" if unusable == 1 else f"{unusable:,} lines of the log are"
            st.caption(f"{lines} not an alert the page can draw (not JSON, or no valid time, score or threshold): "
                       "counted here and left out of the chart.")
        frame = frame[~frame["unusable"]]
        if frame.empty:
            return
        fig = figures.live_score_figure(frame["time"].to_numpy(), frame["score"].to_numpy(), frame["attack"].to_numpy(),
                           float(frame["threshold"].iloc[-1]), "time")
        st.plotly_chart(fig, width="stretch")
        left, right = st.columns([3, 2])
        with left:
            t, rate = follower.rate_series()
            if len(t):
                st.caption("Anomaly rate between status updates")
                st.plotly_chart(figures.live_rate_figure(t, rate, "stream time (s)"), width="stretch")
            else:
                st.caption("Give a stats file to see the anomaly rate over time.")
        with right:
            st.caption("Latest alerts")
            latest = frame[["time", "record", "score", "label"]].iloc[::-1].head(12)
            st.dataframe(latest, hide_index=True, width="stretch", height=layout.table_height(len(latest)),
                         column_config={"score": st.column_config.NumberColumn(format="%.4g"),
                                        "record": st.column_config.NumberColumn(format="%d")})

    live()


st.title("Live monitor")
mode = st.radio("Source", ["Replay the test split", "Follow a running stream"], horizontal=True,
                key="live_mode")
if mode == "Replay the test split":
    replay_mode()
else:
    follow_mode()
if st.session_state.pop(GOTO_KEY, False):  # after the page (and the paused replay's fragment) is drawn: open_record
    st.switch_page("app_pages/flagged_records.py")
