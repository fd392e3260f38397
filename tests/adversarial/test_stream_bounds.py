"""The stream under hostile producers: it rejects cheaply, never dies on one record, never tears its log."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from anodet.scoring.core import score_rows
from anodet.streaming.alerts import AlertFormatter
from anodet.streaming.pipeline import Detection, Outputs, Pipeline, StreamConfig
from anodet.streaming.sinks import open_out
from anodet.streaming.sources.local import FdSource, TcpSource
from tests.adversarial.conftest import ROOT, header_csv

pytestmark = pytest.mark.slow  # subprocesses, sockets, trainings: CI runs them; the inner loop skips them


def pipeline_for(store, source, name="pca", **config):
    out, rejects = io.StringIO(), io.StringIO()
    threshold = store.default_threshold(name, "reference")
    detection = Detection.from_store(store, name, threshold)
    cfg = StreamConfig(status_every=0, **config)
    return Pipeline(source, detection, Outputs(out, rejects), cfg, status=lambda m: None), out, rejects


def feed(data: bytes) -> FdSource:
    read_fd, write_fd = os.pipe()

    def write() -> None:
        os.write(write_fd, data)
        os.close(write_fd)

    threading.Thread(target=write, daemon=True).start()
    return FdSource(read_fd, "pipe")


def test_a_huge_line_is_rejected_cheaply_and_does_not_decide_the_format(store, sample_rows):
    good = header_csv(sample_rows.iloc[:200])
    data = b"x" * (5 << 20) + b"\n" + good  # 5 MB of garbage before the header
    pipeline, _out, rejects = pipeline_for(store, feed(data), max_line_bytes=1 << 20)
    result = pipeline.run()
    assert pipeline.error is None
    assert result["scored"] == 200 and result["rejected"] == 1
    reject = json.loads(rejects.getvalue().splitlines()[0])
    assert "longer than 1 MiB" in reject["reason"] and len(reject["raw"]) <= 200


def test_a_junk_first_line_is_rejected_and_the_next_line_decides(store, sample_rows):
    data = b"\x00\x01\x02 not a record\n" + header_csv(sample_rows.iloc[:50])
    pipeline, _out, rejects = pipeline_for(store, feed(data))
    result = pipeline.run()
    assert result["scored"] == 50 and result["rejected"] == 1
    assert "cannot decide the stream's format" in json.loads(rejects.getvalue())["reason"]


def test_binary_junk_lines_are_rejected_one_by_one(store, sample_rows):
    lines = header_csv(sample_rows.iloc[:20]).splitlines()
    junk = os.urandom(300).replace(b"\n", b" ").replace(b"\r", b" ")
    data = b"\n".join([*lines[:10], junk, b"a\x00b", *lines[10:]]) + b"\n"
    pipeline, _out, _rejects = pipeline_for(store, feed(data))
    result = pipeline.run()
    assert pipeline.error is None and result["scored"] == 20 and result["rejected"] == 2


def test_a_silent_tcp_client_is_dropped_and_the_next_one_served(store, sample_rows):
    source = TcpSource("127.0.0.1", 0, follow=True, idle_timeout=0.5)
    pipeline, _out, _rejects = pipeline_for(store, source)
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    silent = socket.create_connection(("127.0.0.1", source.port), timeout=5)
    time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", source.port), timeout=10) as producer:
        producer.sendall(header_csv(sample_rows.iloc[:100]))
    deadline = time.monotonic() + 20
    while pipeline.stats.scored < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    silent.close()
    pipeline.stop()
    thread.join(10)
    assert pipeline.stats.scored == 100


def test_a_client_sending_a_lot_is_held_back_not_buffered(store, sample_rows):
    """1 GB would take minutes here; 60 MB through a slow scorer shows the same bound on memory."""
    payload = header_csv(sample_rows) * 1  # header + 2,000 rows
    body = payload.split(b"\n", 1)[1]
    source = TcpSource("127.0.0.1", 0)
    gate = threading.Event()
    threshold = store.default_threshold("pca", "reference")

    def slow(X):
        gate.wait(5)
        return score_rows(store, X, ["pca"]).by_detector["pca"]

    detection = Detection.from_store(store, "pca", threshold)
    detection.score = slow
    pipeline = Pipeline(source, detection, Outputs(io.StringIO()),
                               StreamConfig(status_every=0, queue_chunks=2, batch_size=256),
                               status=lambda m: None)
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    sent = 0
    with socket.create_connection(("127.0.0.1", source.port), timeout=10) as producer:
        producer.setblocking(False)
        producer.sendall(payload.split(b"\n", 1)[0] + b"\n")
        blob = body * 200  # ~60 MB
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and sent < len(blob):
            try:
                sent += producer.send(blob[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
        assert sent < len(blob), "the producer was never held back"
        gate.set()
    pipeline.stop()
    thread.join(30)


def test_sigkill_mid_write_leaves_no_torn_line_after_restart(tmp_path, store, sample_rows):
    log = tmp_path / "alerts.jsonl"
    log.write_text('{"record": 1}\n{"record": 2, "sco')  # a kill cut the last write short
    fh = open_out(str(log), sys.stdout)
    fh.write('{"record": 3}\n')
    fh.close()
    assert [json.loads(x)["record"] for x in log.read_text().splitlines()] == [1, 3]


def test_killed_stream_then_restart_keeps_the_log_valid_json(tmp_path, sample_rows):
    log = tmp_path / "alerts.jsonl"
    data = header_csv(sample_rows)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "anodet", "stream", "--detector", "pca", "--threshold", "0", "--alerts", str(log),
           "--status-every", "0"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    proc.stdin.write(data)
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while (not log.exists() or log.stat().st_size < 1000) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with open(log, "ab") as fh:
        fh.write(b'{"torn": ')  # as if the kill had landed mid-line
    again = subprocess.run(cmd, input=data, stderr=subprocess.PIPE, env=env, cwd=ROOT, timeout=60)
    assert again.returncode == 0, again.stderr.decode()
    for line in log.read_text().splitlines():
        json.loads(line)


@pytest.mark.parametrize("cell", ["x" * 1_000_000, "a,b"])
def test_a_large_or_quoted_text_cell_is_passed_through(store, sample_rows, cell):
    data = header_csv(sample_rows.iloc[:3], {"note": [cell, "short", cell]})
    pipeline, out, _rejects = pipeline_for(store, feed(data), name="pca")
    pipeline.detection.threshold = 0.0
    pipeline._formatter = AlertFormatter("pca", 0.0, pipeline.detection.value_columns)
    result = pipeline.run()
    assert result["scored"] == 3 and result["rejected"] == 0
    notes = [json.loads(x)["fields"]["note"] for x in out.getvalue().splitlines()]
    assert notes == [cell, "short", cell]


def test_alerts_of_raw_lines_say_which_connection_it_was(store, raw_test_lines):
    pipeline, out, _rejects = pipeline_for(store, feed(b"\n".join(raw_test_lines[:300]) + b"\n"))
    pipeline.detection.threshold = 0.0
    pipeline._formatter = AlertFormatter("pca", 0.0, pipeline.detection.value_columns)
    pipeline.run()
    first = json.loads(out.getvalue().splitlines()[0])
    assert set(first["fields"]) == {"protocol_type", "service", "flag"}
    assert first["fields"]["protocol_type"] in {"tcp", "udp", "icmp"}
