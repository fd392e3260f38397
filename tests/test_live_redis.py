"""The Live monitor follows a Redis alert stream as it follows a JSON-lines alert log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from redis_server import REDIS_SERVER, RedisServer
from streamlit.testing.v1 import AppTest

from anodet.app.live import OutsideAlertsDir, RedisAlertFollower, resolve_alert_stream

redis = pytest.importorskip("redis")

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="redis-server is not installed")


@pytest.fixture
def server(tmp_path):
    srv = RedisServer(tmp_path)
    yield srv
    srv.stop()


def alert(i: int, label: str = "smurf.") -> str:
    return json.dumps({"time": f"2026-01-01T00:00:{i:02d}Z", "detector": "pca", "score": 1.0 + i, "threshold": 0.5,
                       "record": i + 1, "line": i + 1, "label": label, "entry": f"1-{i}", "fields": {}, "values": {}})


def test_follower_reads_the_latest_alerts_then_what_is_added(server):
    for i in range(10):
        server.client.xadd("alerts", {"alert": alert(i)})
    server.client.xadd("alerts", {"alert": "not json"})
    follower = RedisAlertFollower(resolve_alert_stream(server.url("alerts")), keep=5)
    assert follower.poll() == 4 and follower.bad_lines == 1  # the last 5 entries: 4 alerts, 1 bad
    assert follower.total == 10 and [a["record"] for a in follower.alerts] == [7, 8, 9, 10]
    assert follower.poll() == 0
    server.client.xadd("alerts", {"alert": alert(10)})
    assert follower.poll() == 1 and follower.total == 11 and follower.alerts[-1]["record"] == 11
    assert follower.found


def test_follower_says_when_the_server_or_stream_is_missing(server):
    follower = RedisAlertFollower(resolve_alert_stream(server.url("nothing")))
    assert follower.poll() == 0 and not follower.found and "No alert stream named nothing" in follower.missing
    gone = RedisAlertFollower(resolve_alert_stream("redis://127.0.0.1:1/alerts"))
    assert gone.poll() == 0 and not gone.found and "Cannot read the alert stream" in gone.missing


def test_only_allowed_hosts_can_be_followed(monkeypatch):
    with pytest.raises(OutsideAlertsDir, match="ANODET_REDIS_HOSTS"):
        resolve_alert_stream("redis://10.1.2.3:6379/alerts")
    with pytest.raises(OutsideAlertsDir, match="write it as"):
        resolve_alert_stream("redis://localhost:99999/alerts")
    monkeypatch.setenv("ANODET_REDIS_HOSTS", "10.1.2.3, cache.internal")
    assert resolve_alert_stream("redis://cache.internal:6379/alerts").host == "cache.internal"
    with pytest.raises(OutsideAlertsDir):
        resolve_alert_stream("redis://127.0.0.1:6379/alerts")


def test_the_page_follows_a_redis_alert_stream(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ANODET_ALERTS_DIR", str(tmp_path))
    for i in range(3):
        server.client.xadd("alerts", {"alert": alert(i, "normal." if i == 0 else "smurf.")})
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("app_pages/live_monitor.py").run()
    at.radio(key="live_mode").set_value("Follow a running stream").run()
    at.text_input(key="live_alert_path").input(server.url("alerts")).run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert next(m.value for m in at.metric if m.label == "Alerts in log") == "3"
    server.client.xadd("alerts", {"alert": alert(3)})
    at.run()
    assert next(m.value for m in at.metric if m.label == "Alerts in log") == "4"
    at.text_input(key="live_alert_path").input("redis://192.0.2.1:6379/alerts").run()
    assert len(at.error) == 1 and "ANODET\\_REDIS\\_HOSTS" in at.error[0].value and not at.metric
