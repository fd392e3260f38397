"""The Live monitor page in Streamlit's AppTest, and the replay and follow helpers behind it.

Time is an injected clock (issue 8): a test moves it forward instead of sleeping.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from anodet.app.live import OutsideAlertsDir, Replay, alerts_frame, resolve_alert_path
from tests.conftest import threshold_in_force

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
LIVE = "app_pages/live_monitor.py"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def count(value: str) -> int:
    return int(value.split("/")[0].strip().replace(",", ""))


def problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page(LIVE).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def clock(app) -> Clock:
    """The replay on the page, running on a hand-moved clock."""
    clock = Clock()
    app.session_state["live_replay"].clock = clock
    return clock


def view_of(at: AppTest) -> str:
    return at.session_state["label_view"] if "label_view" in at.session_state else "reference"


def replay_threshold(at: AppTest) -> float:
    return threshold_in_force(at, at.session_state["live_detector"], view_of(at))


def test_replay_starts_runs_pauses_and_stops(app, clock):
    at = app
    assert count(metric(at, "Records")) == 0
    at.select_slider(key="live_speed").set_value(2000).run()
    at.session_state["live_replay"].clock = clock
    at.button(key="live_start").click().run()
    assert not at.exception, at.exception
    assert at.session_state["live_replay"].running
    first = count(metric(at, "Records"))
    clock.tick(1.0)
    at.run()  # what the fragment's run_every tick does in the browser
    assert count(metric(at, "Records")) == first + 2000, "one second at 2,000 records/s"
    replay = at.session_state["live_replay"]
    assert count(metric(at, "Alerts")) == replay.flagged
    assert replay.flagged == int((replay.scores[:replay.position] >= replay_threshold(at)).sum())
    assert len(at.get("plotly_chart")) >= 2
    at.button(key="live_pause").click().run()
    paused = count(metric(at, "Records"))
    clock.tick(1.0)
    at.run()
    assert count(metric(at, "Records")) == paused, "a paused replay must not advance"
    at.button(key="live_stop").click().run()
    assert count(metric(at, "Records")) == 0


def test_the_replay_survives_a_visit_to_another_page_and_pauses_meanwhile(app, clock):
    """Issue 15, bug 3: BiGAN at 500 records/s, away for 10 s, back: same detector, speed and place."""
    at = app
    at.selectbox(key="live_detector").set_value("bigan").run()
    at.select_slider(key="live_speed").set_value(500).run()
    at.session_state["live_replay"].clock = clock
    at.button(key="live_start").click().run()
    clock.tick(1.0)
    at.run()
    before = count(metric(at, "Records"))
    assert before == 500
    at.switch_page("app_pages/overview.py").run()
    clock.tick(10.0)
    at.switch_page(LIVE).run()
    assert not problems(at), problems(at)
    assert at.selectbox(key="live_detector").value == "bigan"
    assert at.select_slider(key="live_speed").value == 500
    assert count(metric(at, "Records")) == before, "the time away is not replayed"
    assert at.session_state["live_replay"].running
    clock.tick(1.0)
    at.run()
    assert count(metric(at, "Records")) == before + 500, "and it goes on from there"


def test_switching_the_label_view_keeps_the_replays_place_and_says_so(app, clock):
    at = app
    at.session_state["live_replay"].clock = clock
    at.button(key="live_start").click().run()
    clock.tick(2.0)
    at.run()
    at.button(key="live_pause").click().run()
    position = at.session_state["live_replay"].position
    at.session_state["label_view"] = "true"
    at.run()
    assert not problems(at)
    replay = at.session_state["live_replay"]
    assert replay.position == position and count(metric(at, "Records")) == position
    assert any("label view changed to **true**" in i.value for i in at.info)
    threshold = threshold_in_force(at, at.session_state["live_detector"], "true")
    assert replay.flagged == int((replay.scores[:position] >= threshold).sum())


def test_the_threshold_can_be_set_on_the_page_for_the_current_view(app, clock):
    at = app
    name = at.session_state["live_detector"]
    control = at.number_input(key=f"live_threshold_{name}_reference")
    control.set_value(0.5).run()
    assert not problems(at)
    assert at.session_state["thresholds"]["reference"][name] == 0.5
    at.session_state["live_replay"].clock = clock
    at.button(key="live_start").click().run()
    clock.tick(1.0)
    at.run()
    replay = at.session_state["live_replay"]
    assert replay.flagged == int((replay.scores[:replay.position] >= 0.5).sum())


def _replay_a_second(at, clock) -> None:
    """Start the replay at 2,000 records/s and let one second of it run."""
    at.select_slider(key="live_speed").set_value(2000).run()
    at.session_state["live_replay"].clock = clock
    at.button(key="live_start").click().run()
    clock.tick(1.0)
    at.run()


def _select_newest_alert(at) -> None:
    """Tick the newest alert's row in the alerts table (which shows its Open record button)."""
    table = next(d for d in at.dataframe if d.key and d.key.startswith("live_alerts"))
    at.session_state[table.key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()


def test_an_alert_opens_its_record_in_flagged_records(app, clock, splits):
    at = app
    _replay_a_second(at, clock)
    at.button(key="live_pause").click().run()
    replay = at.session_state["live_replay"]
    newest = replay.latest_alerts(replay_threshold(at), 1)[0]
    record = splits.test.record_id[newest["position"]]
    table = next(d for d in at.dataframe if d.key and d.key.startswith("live_alerts"))
    assert table.value["id"].iloc[0] == str(record)  # the alert row names the record as Flagged records does
    _select_newest_alert(at)
    at.button(key="live_open_record").click().run()
    assert not problems(at), problems(at)
    assert at.subheader[-1].value == f"Record {record}"


def test_opening_an_alert_pauses_the_running_replay_until_the_user_is_back(app, clock, splits):
    """The page switch happens with the replay's timer stopped (a tick during the switch left a blank page);
    coming back to the Live monitor goes on where the replay was."""
    at = app
    _replay_a_second(at, clock)
    _select_newest_alert(at)
    replay = at.session_state["live_replay"]
    assert replay.running
    at.button(key="live_open_record").click().run()
    assert not problems(at), problems(at)
    assert at.subheader[-1].value.startswith("Record ")
    assert not replay.running  # paused while the user reads the record
    where = replay.position
    at.switch_page("app_pages/live_monitor.py").run()
    assert replay.running and replay.position == where


# --- follow mode: only the alerts folder ---------------------------------------------------------


def _write_log(folder: Path) -> tuple[Path, Path, list[dict]]:
    log, stats = folder / "alerts.jsonl", folder / "stats.json"
    alerts = [{"time": f"2026-01-01T00:00:0{i}Z", "detector": "pca", "score": 1.0 + i, "threshold": 0.5,
               "record": i + 1, "line": i + 1, "label": "smurf." if i else "normal.", "values": {}} for i in range(3)]
    log.write_text("".join(json.dumps(a) + "\n" for a in alerts))
    stats.write_text(json.dumps({"read": 10, "scored": 9, "rejected": 1, "alerts": 3, "records_per_s": 5.0,
                                 "latency_p50_ms": 1.0, "latency_p99_ms": 2.0, "elapsed_s": 1.0}))
    return log, stats, alerts


def test_follow_mode_reads_an_alert_log_in_the_alerts_folder(app, tmp_path, monkeypatch):
    monkeypatch.setenv("ANODET_ALERTS_DIR", str(tmp_path))
    at = app
    log, stats, alerts = _write_log(tmp_path)
    at.radio(key="live_mode").set_value("Follow a running stream").run()
    from anodet.textsafe import markdown_text

    assert any(f"**{markdown_text(tmp_path.name)}**" in c.value for c in at.caption), "the page names the folder"
    assert not any(str(tmp_path.parent) in c.value for c in at.caption)  # by its name: no server path on a page
    at.text_input(key="live_alert_path").input("alerts.jsonl").run()
    at.text_input(key="live_stats_path").input(str(stats)).run()  # an absolute path inside the folder is fine
    assert not problems(at), problems(at)
    assert metric(at, "Alerts in log") == "3" and metric(at, "Records read") == "10"
    with open(log, "a") as fh:
        fh.write(json.dumps({**alerts[2], "record": 4}) + "\n")
    at.run()
    assert metric(at, "Alerts in log") == "4"


def test_follow_mode_refuses_paths_outside_the_folder_alike(app, tmp_path, monkeypatch):
    """Issue 15, bug 4: one sentence for every outside path, whether or not it exists."""
    folder = tmp_path / "alerts"
    folder.mkdir()
    outside = tmp_path / "secret.jsonl"
    outside.write_text("{}\n")
    (folder / "link.jsonl").symlink_to(outside)
    monkeypatch.setenv("ANODET_ALERTS_DIR", str(folder))
    at = app
    at.radio(key="live_mode").set_value("Follow a running stream").run()
    messages = set()
    for path in ("/etc/hostname", "/etc/no-such-file", str(outside), str(tmp_path / "missing.jsonl"),
                 "../secret.jsonl", "link.jsonl", "."):
        at.text_input(key="live_alert_path").input(path).run()
        assert not at.exception
        assert len(at.error) == 1 and not at.metric, path
        messages.add(at.error[0].value)
    assert len(messages) == 1, messages
    assert "alerts folder" in messages.pop()


def test_resolving_alert_paths(tmp_path):
    folder = tmp_path / "alerts"
    (folder / "sub").mkdir(parents=True)
    assert resolve_alert_path("a.jsonl", folder) == (folder / "a.jsonl").resolve()
    assert resolve_alert_path("sub/../b.jsonl", folder) == (folder / "b.jsonl").resolve()
    assert resolve_alert_path(str(folder / "sub" / "c.jsonl"), folder) == (folder / "sub" / "c.jsonl").resolve()
    os.symlink(folder / "sub", folder / "inside-link")
    assert resolve_alert_path("inside-link/d.jsonl", folder) == (folder / "sub" / "d.jsonl").resolve()
    for bad in ("", "  ", "../x.jsonl", "/etc/passwd", str(folder), "a\0b"):
        with pytest.raises(OutsideAlertsDir):
            resolve_alert_path(bad, folder)


def test_the_default_alerts_folder_is_under_the_projects_data_folder(monkeypatch):
    from anodet.app.live import alerts_dir

    monkeypatch.delenv("ANODET_ALERTS_DIR", raising=False)
    assert alerts_dir() == (ROOT / "data" / "alerts").resolve()


def test_an_alert_log_with_bad_entries_is_counted_not_fatal():
    frame = alerts_frame([{"time": "2026-01-01T00:00:00Z", "score": 2.0, "threshold": 1.0, "label": "normal."},
                          {"time": "not a time", "score": 2.0, "threshold": 1.0},
                          {"score": "x"}, [1, 2], {"time": "2026-01-01T00:00:01Z", "score": 3, "threshold": 1}])
    assert frame["unusable"].tolist() == [False, True, True, True, False]
    assert frame["attack"].tolist() == [False, True, True, True, True]


# --- the replay's bookkeeping --------------------------------------------------------------------


def test_a_gap_longer_than_max_gap_is_skipped_not_replayed():
    clock = Clock()
    replay = Replay(np.arange(10_000.0), np.zeros(10_000, bool), speed=100, max_gap=3.0, clock=clock)
    replay.start()
    clock.tick(2.0)
    assert replay.advance(None, 5000.0) == 200
    clock.tick(30.0)
    assert replay.advance(None, 5000.0) == 0 and replay.away_seconds == 30.0
    clock.tick(1.0)
    assert replay.advance(None, 5000.0) == 100 and replay.position == 300


def test_a_slow_tick_of_the_page_itself_is_replayed_not_taken_for_absence():
    """Issue 24: on a loaded server the page's own ticks came seconds apart and the replay called that "paused while
    nobody was watching" (80–110 records/s at 200): a tick of the open page replays its whole gap."""
    clock = Clock()
    replay = Replay(np.arange(100_000.0), np.zeros(100_000, bool), speed=200, max_gap=3.0, clock=clock)
    replay.start()
    for gap in (4.0, 13.0, 29.0):  # the slow ticks the issue saw
        clock.tick(gap)
        assert replay.advance(None, 1e9, watching=True) == int(200 * gap)
    assert replay.away_seconds == 0.0 and replay.position == 200 * 46
    clock.tick(600.0)  # the tab slept for ten minutes: not replayed in one burst
    assert replay.advance(None, 1e9, watching=True) == 0 and replay.away_seconds == 600.0


def test_stop_is_usable_while_the_replay_runs(app, clock):
    at = app
    at.session_state["live_replay"].clock = clock
    at.button(key="live_start").click().run()  # drawn right after the start, nothing replayed yet
    assert not at.button(key="live_stop").disabled
    at.button(key="live_stop").click().run()
    assert not at.session_state["live_replay"].running and at.session_state["live_replay"].position == 0


def test_opening_a_record_from_a_running_replay_draws_it_every_time(app, clock, splits):
    """The hand-off from a running replay to Flagged records, repeated: every time the record's detail is drawn."""
    at = app
    _replay_a_second(at, clock)
    for attempt in range(6):
        replay = at.session_state["live_replay"]
        assert replay.running, attempt
        newest = replay.latest_alerts(replay_threshold(at), 1)[0]
        _select_newest_alert(at)
        at.button(key="live_open_record").click().run()
        assert not problems(at), (attempt, problems(at))
        assert at.subheader[-1].value == f"Record {splits.test.record_id[newest['position']]}", attempt
        at.switch_page(LIVE).run()  # back: the replay goes on
        clock.tick(0.5)
        at.run()


def test_relabelling_recounts_the_released_records():
    scores = np.array([0.1, 0.9, 0.8, 0.2])
    replay = Replay(scores, np.array([0, 1, 0, 0], bool), speed=4, clock=Clock())
    replay.start()
    replay.clock.tick(1.0)
    replay.advance(None, 0.5)
    assert replay.caught == 1 and replay.flagged == 2
    replay.relabel(np.array([0, 1, 1, 0], bool), 0.5)
    assert replay.caught == 2 and replay.flagged == 2 and replay.position == 4


def test_the_live_threshold_control_sets_the_threshold_every_page_uses(app):
    from tests.threshold_control import release, sent

    data = sent(app, "autoencoder", "reference", prefix="live_control")
    assert data["compact"] is True and data["threshold"] == threshold_in_force(app, "autoencoder", "reference")
    grid = data["grid"]
    value = float(grid["score"].iloc[len(grid) // 2])
    release(app, value, "autoencoder", "reference", prefix="live_control")
    assert app.session_state["thresholds"]["reference"]["autoencoder"] == value
    assert app.number_input(key="live_threshold_autoencoder_reference").value == value  # the typed box follows


def test_the_live_monitor_starts_on_the_detector_and_threshold_in_force(store):
    """Issue 27: after tuning a detector elsewhere, the Live monitor opens on it, at its threshold in force."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["focus_detector"] = "pca"  # looked at last, e.g. in the threshold explorer
    at.session_state["thresholds"] = {"reference": {"pca": 0.02}}
    at.switch_page(LIVE).run()
    assert not problems(at), problems(at)
    assert at.selectbox(key="live_detector").value == "pca"
    assert replay_threshold(at) == 0.02
