"""The Live monitor page in Streamlit's AppTest: start a replay, let the fragment run, counters move."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def count(value: str) -> int:
    return int(value.split("/")[0].strip().replace(",", ""))


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("pages/live_monitor.py").run()
    assert not at.exception, at.exception
    return at


def test_replay_starts_runs_pauses_and_stops(app):
    at = app
    assert count(metric(at, "Records")) == 0
    at.select_slider(key="live_speed").set_value(2000).run()
    at.button(key="live_start").click().run()
    assert not at.exception, at.exception
    assert at.session_state["live_replay"].running
    first = count(metric(at, "Records"))
    time.sleep(1.2)
    at.run()  # what the fragment's run_every tick does in the browser
    second = count(metric(at, "Records"))
    assert second > first, "the replay did not advance"
    replay = at.session_state["live_replay"]
    assert count(metric(at, "Alerts")) == replay.flagged
    assert replay.flagged == int((replay.scores[:replay.position] >= replay_threshold(at)).sum())
    assert len(at.get("plotly_chart")) >= 2 and len(at.dataframe) <= 1
    at.button(key="live_pause").click().run()
    paused = count(metric(at, "Records"))
    time.sleep(0.5)
    at.run()
    assert count(metric(at, "Records")) == paused, "a paused replay must not advance"
    at.button(key="live_stop").click().run()
    assert count(metric(at, "Records")) == 0


def replay_threshold(at: AppTest) -> float:
    name = at.session_state["live_detector"]
    view = at.session_state["label_view"] if "label_view" in at.session_state else "reference"
    return at.session_state["thresholds"][view][name]


def test_follow_mode_reads_an_alert_log(app, tmp_path):
    at = app
    log, stats = tmp_path / "alerts.jsonl", tmp_path / "stats.json"
    alerts = [{"time": f"2026-01-01T00:00:0{i}Z", "detector": "pca", "score": 1.0 + i, "threshold": 0.5,
               "record": i + 1, "line": i + 1, "label": "smurf." if i else "normal.", "values": {}} for i in range(3)]
    log.write_text("".join(json.dumps(a) + "\n" for a in alerts))
    stats.write_text(json.dumps({"read": 10, "scored": 9, "rejected": 1, "alerts": 3, "records_per_s": 5.0,
                                 "latency_p50_ms": 1.0, "latency_p99_ms": 2.0, "elapsed_s": 1.0}))
    at.radio(key="live_mode").set_value("Follow a running stream").run()
    at.text_input(key="live_alert_path").input(str(log)).run()
    at.text_input(key="live_stats_path").input(str(stats)).run()
    assert not at.exception, at.exception
    assert metric(at, "Alerts in log") == "3" and metric(at, "Records read") == "10"
    with open(log, "a") as fh:
        fh.write(json.dumps({**alerts[2], "record": 4}) + "\n")
    at.run()
    assert metric(at, "Alerts in log") == "4"
