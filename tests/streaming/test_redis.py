"""Streaming from a real Redis Stream: every entry decided, acknowledged only after its decision is
written, consumers of one group sharing the work, recovery after ``kill -9``, metrics that match
the alert log. Each test runs against its own ``redis-server`` on 127.0.0.1 (Debian's binary)."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from redis_server import REDIS_SERVER, RedisServer

from anodet.datasets.kdd import fetch_raw, parse_raw_lines
from anodet.datasets.kdd_schema import FEATURES
from anodet.streaming.pipeline import Detection, Outputs, Pipeline, StreamConfig
from anodet.streaming.sinks import RedisAlertSink
from anodet.streaming.sources.base import SourceError
from anodet.streaming.sources.kafka import KafkaSource, kafka_id, kafka_message_fields, kafka_offsets_to_commit
from anodet.streaming.sources.messages import BREAK_REASON, to_entries
from anodet.streaming.sources.redis import RedisStreamSource
from anodet.streaming.sources.urls import parse_broker_url
from tests.conftest import wait_for as shared_wait_for

redis = pytest.importorskip("redis")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="redis-server is not installed (test.sh "
                                                                         "installs Debian's)")
EVERYTHING = "-1e300"
"""A threshold every score reaches: each record raises an alert, so the alert log is the decision log."""


@pytest.fixture
def server(tmp_path):
    srv = RedisServer(tmp_path)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def raw_lines() -> list[bytes]:
    with gzip.open(fetch_raw()["test"], "rb") as fh:
        return [fh.readline().rstrip(b"\n") for _ in range(4000)]


def add_lines(client, stream_name: str, lines: list[bytes], start: int = 0) -> list[str]:
    """XADD each raw line (field ``line``) with a ``conn_id``; return the entry ids."""
    pipe = client.pipeline(transaction=False)
    for i, line in enumerate(lines):
        pipe.xadd(stream_name, {"line": line, "conn_id": f"c{start + i}"})
    return [i.decode() for i in pipe.execute()]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "anodet", "stream", "--detector", "pca", "--status-every", "0.5",
                             *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """The shared poll, with the longer wait a broker round trip under load needs."""
    return shared_wait_for(predicate, timeout, interval=0.05)


def group_info(client, stream_name: str, group: str) -> dict:
    """XINFO GROUPS of ``group`` (zeros while the group does not exist yet)."""
    found = [g for g in client.xinfo_groups(stream_name) if g["name"].decode() == group] if client.exists(
        stream_name) else []
    return found[0] if found else {"pending": 0, "lag": None, "entries-read": None}


def drained(client, stream_name: str, group: str, total: int) -> bool:
    info = group_info(client, stream_name, group)
    return info["entries-read"] is not None and info["entries-read"] >= total and info["lag"] == 0 \
        and info["pending"] == 0


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


def make_pipeline(store, source, threshold: float, alerts: io.StringIO | None = None, sinks=None):
    detection = Detection.from_store(store, "pca", threshold)
    out = alerts if alerts is not None else io.StringIO()
    rejects = io.StringIO()
    config = StreamConfig(status_every=0, batch_size=512, max_wait=0.005)
    pipeline = Pipeline(source, detection, Outputs(out, rejects, None, None, sinks or []), config,
                               status=lambda m: None)
    return pipeline, out, rejects


def run_in_thread(pipeline) -> threading.Thread:
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    return thread


# -- entries → records (no server needed) ------------------------------------------------------


def test_broker_urls_parse_or_say_how_to_write_them():
    url = parse_broker_url("redis://127.0.0.1:6380/flows")
    assert (url.scheme, url.host, url.port, url.name) == ("redis", "127.0.0.1", 6380, "flows")
    assert parse_broker_url("kafka://[::1]:9092/topic.a").host == "::1"
    assert parse_broker_url("redis://localhost/flows").port == 6379  # the default port
    for bad in ("redis://host:99999/s", "kafka://host:9092/", "redis://h:1/a/b", "redis://:pw@h:0/s"):
        with pytest.raises(SourceError, match="write it as") as info:
            parse_broker_url(bad)
        assert "pw" not in str(info.value)


def test_credentials_come_from_the_url_or_the_environment_and_are_never_shown(monkeypatch):
    url = parse_broker_url("rediss://user:s%40cret@cache.internal/flows")
    assert (url.username, url.password, url.tls, url.port) == ("user", "s@cret", True, 6379)
    assert "cret" not in str(url) and "cret" not in repr(url)
    assert str(url) == "rediss://user:***@cache.internal:6379/flows"
    monkeypatch.setenv("ANODET_REDIS_PASSWORD", "from-env")
    env = parse_broker_url("redis://127.0.0.1:6380/flows")
    assert env.password == "from-env" and "from-env" not in str(env)
    assert parse_broker_url("redis://:pw@127.0.0.1/flows").password == "pw"  # the URL's wins
    with pytest.raises(SourceError, match="no user or password") as info:
        parse_broker_url("kafka://u:topsecret@h:9092/t")
    assert "topsecret" not in str(info.value)


def test_entries_group_by_shape_and_keep_passthrough():
    features = {f.encode(): b"1" for f in FEATURES}
    messages = [
        ("1-0", {b"line": b"0,tcp,http,SF", b"conn_id": b"c1"}),
        ("1-1", {b"line": b"0,udp,dns,SF"}),
        ("1-2", {b"id": b'a,"b"', **features}),
        ("1-3", {b"id": b"x", **features}),
        ("1-4", None),
        ("1-5", {b"line": b"1,2\n3,4"}),
    ]
    raw, header, deleted, broken = to_entries(messages)
    assert raw.header is None and raw.ids == ["1-0", "1-1"] and raw.extras == [{"conn_id": "c1"}, None]
    assert header.header == b"id," + b",".join(f.encode() for f in FEATURES)
    assert header.lines[0] == b'"a,""b""",' + b",".join([b"1"] * len(FEATURES)) and header.ids == ["1-2", "1-3"]
    assert deleted.reject_reason and "deleted" in deleted.reject_reason and deleted.ids == ["1-4"]
    assert broken.reject_reason == BREAK_REASON


def test_kafka_message_values_and_offsets():
    assert kafka_message_fields(b'{"id": 7, "count": 2}') == {b"id": b"7", b"count": b"2"}
    assert kafka_message_fields(b"0,tcp,http,SF\n") == {b"line": b"0,tcp,http,SF"}
    assert kafka_message_fields(b"{not json") == {b"line": b"{not json"}
    ids = [kafka_id("t", 0, 5), kafka_id("t", 1, 9), kafka_id("t", 0, 7)]
    assert kafka_offsets_to_commit(ids) == {("t", 0): 8, ("t", 1): 10}


class _FakeMessage:
    def __init__(self, topic, partition, offset, value):
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def value(self):
        return self._v

    def error(self):
        return None


class _FakeConsumer:
    """Stands in for confluent_kafka.Consumer (no broker here): hands out messages, records commits."""

    def __init__(self, messages, log):
        self.messages, self.commits, self.log, self.closed = list(messages), [], log, False

    def consume(self, num_messages, timeout):
        batch, self.messages = self.messages[:num_messages], self.messages[num_messages:]
        if not batch:
            time.sleep(timeout)
        return batch

    def commit(self, offsets, asynchronous):
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
        self.log.append(("commit", len(self.commits)))

    def close(self):
        self.closed = True


class _Recording(io.StringIO):
    def __init__(self, log):
        super().__init__()
        self.log = log

    def write(self, text):
        self.log.append(("write", text.count("\n")))
        return super().write(text)


def test_kafka_source_commits_offsets_only_after_decisions_are_written(store, raw_lines):
    """Not a broker test (none here): the Kafka source's conversion and commit order, with a stand-in consumer."""
    pytest.importorskip("confluent_kafka")
    source = KafkaSource(parse_broker_url("kafka://127.0.0.1:1/flows"), "g")
    source.consumer.close()
    log: list = []
    messages = [_FakeMessage("flows", i % 2, i // 2, raw_lines[i]) for i in range(300)]
    source.consumer = fake = _FakeConsumer(messages, log)
    pipeline, out, _ = make_pipeline(store, source, -1e300, alerts=_Recording(log))
    thread = run_in_thread(pipeline)
    assert wait_for(lambda: pipeline.stats.scored == 300)
    pipeline.stop()
    thread.join(30)
    alerts = [json.loads(x) for x in out.getvalue().splitlines()]
    assert sorted(a["entry"] for a in alerts) == sorted(f"flows:{i % 2}:{i // 2}" for i in range(300))
    final = {}
    for commit in fake.commits:
        final.update(commit)
    assert final == {("flows", 0): 150, ("flows", 1): 150} and fake.closed
    assert log[0][0] == "write"  # nothing committed before the first decision was written


# -- against redis-server ----------------------------------------------------------------------


def test_every_entry_decided_with_its_id_and_passthrough_fields(server, store, raw_lines):
    lines = raw_lines[:1500]
    ids = add_lines(server.client, "flows", lines)
    frame = parse_raw_lines(b"\n".join(raw_lines[1500:2000]))
    header_ids = []
    pipe = server.client.pipeline(transaction=False)
    for i, row in enumerate(frame[list(FEATURES)].itertuples(index=False)):
        pipe.xadd("flows", {"flow_id": f"h{i}", **{f: repr(float(v)) for f, v in zip(FEATURES[::-1], row[::-1],
                                                                                      strict=True)},
                            "src": "10.0.0.7"})
    header_ids = [i.decode() for i in pipe.execute()]
    bad = [i.decode() for i in (server.client.xadd("flows", {"line": "1,2,3"}),
                                server.client.xadd("flows", {"who": "nobody"}))]
    threshold = store.default_threshold("pca", "reference")
    source = RedisStreamSource(parse_broker_url(server.url("flows")), "g", "c1")
    sink = RedisAlertSink(parse_broker_url(server.url("alerts")))
    pipeline, out, rejects = make_pipeline(store, source, threshold, sinks=[sink])
    thread = run_in_thread(pipeline)
    assert wait_for(lambda: drained(server.client, "flows", "g", 2002))
    pipeline.stop()
    thread.join(30)
    scores = store.score_raw("pca", np.vstack([
        parse_raw_lines(b"\n".join(lines))[list(FEATURES)].to_numpy(np.float64),
        frame[list(FEATURES)].to_numpy(np.float64)]))
    all_ids = ids + header_ids
    expected = {all_ids[i]: s for i, s in enumerate(scores.tolist()) if s >= threshold}
    alerts = [json.loads(x) for x in out.getvalue().splitlines()]
    assert {a["entry"]: a["score"] for a in alerts} == pytest.approx(expected, rel=1e-5)
    assert len(alerts) == len(expected) > 0
    for a in alerts:
        position = all_ids.index(a["entry"])
        if position < len(lines):
            assert a["fields"]["conn_id"] == f"c{position}" and a["fields"]["service"]
        else:
            assert a["fields"] == {"flow_id": f"h{position - len(lines)}", "src": "10.0.0.7"}
    rejected = [json.loads(x) for x in rejects.getvalue().splitlines()]
    assert [r["entry"] for r in rejected] == bad and all(r["reason"] for r in rejected)
    streamed = [json.loads(f[b"alert"]) for _, f in server.client.xrange("alerts")]
    assert streamed == alerts
    assert source.acked == 2002 and pipeline.stats.scored == 2000 and pipeline.stats.rejected == 2


class _FailingSink:
    description = "a sink that fails"

    def __init__(self):
        self.sent = 0

    def send(self, lines):
        self.sent += len(lines)

    def flush(self):
        raise OSError("disk full")

    def close(self):
        pass


def test_ack_only_after_the_decision_is_written(server, store, raw_lines):
    client = server.client
    add_lines(client, "flows", raw_lines[:800])
    seen_pending: list[int] = []

    class Checking(io.StringIO):
        """At each write, the entries being written must still be pending (not yet acknowledged)."""

        def write(self, text):
            entries = [json.loads(x)["entry"] for x in text.splitlines()]
            pending = {p["message_id"].decode() for p in client.xpending_range("flows", "g", "-", "+", 100_000)}
            seen_pending.append(sum(e in pending for e in entries) - len(entries))
            return super().write(text)

    source = RedisStreamSource(parse_broker_url(server.url("flows")), "g", "c1")
    pipeline, out, _ = make_pipeline(store, source, -1e300, alerts=Checking())
    thread = run_in_thread(pipeline)
    assert wait_for(lambda: drained(client, "flows", "g", 800))
    pipeline.stop()
    thread.join(30)
    assert seen_pending and all(missing == 0 for missing in seen_pending)
    assert len(out.getvalue().splitlines()) == 800

    # A write that fails leaves the batch unacknowledged: the entries stay pending for redelivery.
    add_lines(client, "other", raw_lines[:300])
    source = RedisStreamSource(parse_broker_url(server.url("other")), "g", "c1")
    pipeline, _, _ = make_pipeline(store, source, -1e300, sinks=[_FailingSink()])
    thread = run_in_thread(pipeline)
    thread.join(30)
    assert isinstance(pipeline.error, OSError) and source.acked == 0
    assert group_info(client, "other", "g")["pending"] == 300


def test_two_consumers_in_one_group_share_the_stream(server, tmp_path, raw_lines):
    logs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    procs = [cli("--source", server.url("flows"), "--group", "g", "--consumer", name, "--alerts", str(log),
                 f"--threshold={EVERYTHING}") for name, log in zip("ab", logs, strict=True)]
    try:
        assert wait_for(lambda: any(p.poll() is not None for p in procs) or (
            server.client.exists("flows") and len(server.client.xinfo_consumers("flows", "g")) == 2), 120)
        assert all(p.poll() is None for p in procs), "a consumer stopped before joining the group"
        ids = []
        for start in range(0, 4000, 100):  # a steady producer
            ids += add_lines(server.client, "flows", raw_lines[start:start + 100], start)
            time.sleep(0.01)
        assert wait_for(lambda: drained(server.client, "flows", "g", 4000))
    finally:
        errs = [stop(p) for p in procs]
    decided = [[a["entry"] for a in read_jsonl(log)] for log in logs]
    assert sorted(decided[0] + decided[1]) == sorted(ids), errs
    assert not set(decided[0]) & set(decided[1]), "an entry was decided by both consumers"
    assert min(len(d) for d in decided) >= 400, f"the work was not shared: {[len(d) for d in decided]}"


def test_kill_9_then_restart_loses_nothing(server, tmp_path, raw_lines):
    client = server.client
    total = 60_000
    lines = (raw_lines * (total // len(raw_lines) + 1))[:total]
    ids = []
    for start in range(0, total, 5000):
        ids += add_lines(client, "flows", lines[start:start + 5000], start)
    log = tmp_path / "a.jsonl"
    args = ("--source", server.url("flows"), "--group", "g", "--consumer", "a", "--alerts", str(log),
            f"--threshold={EVERYTHING}", "--batch-size", "512")
    proc = cli(*args)
    try:
        assert wait_for(lambda: group_info(client, "flows", "g")["pending"] > 0 and log.exists()
                        and log.stat().st_size > 0, 120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert group_info(client, "flows", "g")["pending"] > 0, "killed too late to test recovery"
        before = len(log.read_bytes().splitlines())
        proc = cli(*args)
        assert wait_for(lambda: drained(client, "flows", "g", total), 120)
    finally:
        err = stop(proc)
    decided = [a["entry"] for a in read_jsonl(log)]  # the torn last line (if any) was repaired on reopen
    assert set(decided) == set(ids), "an entry was never decided"
    duplicates = len(decided) - len(set(decided))
    redelivered = int(re.search(r"([\d,]+) redelivered", err).group(1).replace(",", ""))
    assert 0 < redelivered and duplicates <= redelivered
    assert 0 < before < total


def test_a_dead_consumers_entries_are_claimed_by_another(server, tmp_path, raw_lines):
    client = server.client
    add_lines(client, "flows", raw_lines[:3000])
    # Consumer "dead" reads 3,000 entries and dies without acknowledging them.
    client.xgroup_create("flows", "g", id="0")
    client.xreadgroup("g", "dead", {"flows": ">"}, count=3000)
    log = tmp_path / "b.jsonl"
    proc = cli("--source", server.url("flows"), "--group", "g", "--consumer", "b", "--alerts", str(log),
               f"--threshold={EVERYTHING}", "--claim-idle", "1")
    try:
        assert wait_for(lambda: drained(client, "flows", "g", 3000), 120)
    finally:
        err = stop(proc)
    assert len({a["entry"] for a in read_jsonl(log)}) == 3000
    assert "3,000 redelivered" in err


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(anodet_[a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def test_metrics_scraped_during_a_run_match_the_alert_log(server, tmp_path, raw_lines, store):
    log = tmp_path / "alerts.jsonl"
    proc = cli("--source", server.url("flows"), "--group", "g", "--alerts", str(log), "--alerts",
               server.url("alerts"), "--metrics-port", "0")
    try:
        port = None
        while port is None:
            line = proc.stderr.readline()
            assert line, "the command ended before serving metrics"
            found = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
            port = int(found.group(1)) if found else None
        add_lines(server.client, "flows", raw_lines[:2000])
        during = scrape(port)
        add_lines(server.client, "flows", raw_lines[2000:4000], 2000)
        assert wait_for(lambda: drained(server.client, "flows", "g", 4000))
        # the counters follow the acknowledgements by a moment on a loaded machine: wait until they agree with the log
        assert wait_for(lambda: scrape(port)["anodet_alerts_total"] == len(read_jsonl(log)), 30)
        after = scrape(port)
    finally:
        stop(proc)
    alerts = read_jsonl(log)
    assert after["anodet_alerts_total"] == len(alerts) == server.client.xlen("alerts") > 0
    assert after["anodet_records_scored_total"] == after["anodet_records_read_total"] == 4000
    assert after["anodet_records_acked_total"] == 4000 and after["anodet_records_rejected_total"] == 0
    assert after["anodet_consumer_lag_records"] == 0 and after["anodet_consumer_pending_records"] == 0
    assert after["anodet_queue_depth_records"] == 0
    assert during["anodet_alerts_total"] <= after["anodet_alerts_total"]
    assert after["anodet_batch_latency_seconds_count"] >= 1
    threshold = store.default_threshold("pca", "reference")
    assert after['anodet_threshold{detector="pca"}'] == pytest.approx(threshold)
    assert all(a["threshold"] == pytest.approx(threshold) for a in alerts)
    served = {re.sub(r"\{.*", "", name) for name in after}
    dashboard = (ROOT / "deploy" / "grafana-dashboard.json").read_text()
    charted = set(re.findall(r"anodet_[a-z_]+", dashboard))
    assert charted and charted <= served, f"the dashboard charts metrics nobody serves: {charted - served}"


def test_cli_broker_mistakes_are_one_sentence(server):
    for args, expected in ((("--source", server.url("flows")), "needs a consumer group"),
                           (("--source", "redis://127.0.0.1:1/flows", "--group", "g"), "cannot talk to Redis"),
                           (("--source", "redis://nowhere:0/flows", "--group", "g"), "write it as"),
                           (("--source", server.url("flows"), "--group", "g", "--alerts", "kafka://h:1/a"),
                            "not supported")):
        proc = cli(*args)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and expected in err and "Traceback" not in err, err


def test_a_dropped_connection_is_retried_not_fatal(server, store, raw_lines):
    client = server.client
    first = add_lines(client, "flows", raw_lines[:1000])
    source = RedisStreamSource(parse_broker_url(server.url("flows")), "g", "c1")
    pipeline, out, _ = make_pipeline(store, source, -1e300)
    thread = run_in_thread(pipeline)
    assert wait_for(lambda: drained(client, "flows", "g", 1000))
    assert client.client_kill_filter(_type="normal", skipme=True) >= 1  # the network blinks
    second = add_lines(client, "flows", raw_lines[1000:2000], 1000)
    assert wait_for(lambda: drained(client, "flows", "g", 2000))
    pipeline.stop()
    thread.join(30)
    assert pipeline.error is None
    assert sorted(json.loads(x)["entry"] for x in out.getvalue().splitlines()) == sorted(first + second)


def test_passthrough_values_survive_quotes_commas_and_unicode(server, store, raw_lines):
    frame = parse_raw_lines(b"\n".join(raw_lines[:3]))
    odd = ['a,"b"', "é\u2028\\x", ""]
    pipe = server.client.pipeline(transaction=False)
    for value, row in zip(odd, frame[list(FEATURES)].itertuples(index=False), strict=True):
        pipe.xadd("flows", {"flow_id": value, **{f: repr(float(v)) for f, v in zip(FEATURES, row, strict=True)}})
    pipe.xadd("flows", {"line": raw_lines[3], "note": 'say "hi", ok'})
    pipe.execute()
    source = RedisStreamSource(parse_broker_url(server.url("flows")), "g", "c1")
    pipeline, out, _ = make_pipeline(store, source, -1e300)
    thread = run_in_thread(pipeline)
    assert wait_for(lambda: drained(server.client, "flows", "g", 4))
    pipeline.stop()
    thread.join(30)
    alerts = [json.loads(x) for x in out.getvalue().split("\n") if x]  # JSON lines end at \n only
    assert [a["fields"]["flow_id"] for a in alerts[:3]] == odd
    assert alerts[3]["fields"]["note"] == 'say "hi", ok' and alerts[3]["fields"]["protocol_type"]
