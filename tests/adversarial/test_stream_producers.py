"""Issue 24, row 2: one slow or silent TCP producer delays nobody else.

``stream --input tcp://…`` used to serve one connection at a time: a producer sending a byte every
few seconds held the listener, and another producer's records waited until it disconnected (or for
``--idle-timeout``). Connections are now served concurrently.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.adversarial.conftest import ROOT, header_csv

pytestmark = pytest.mark.slow  # subprocesses and sockets: CI runs them; the inner loop skips them

BOUND_S = 5.0
"""Generous bound on the other producer's records being alerted (measured: well under a second)."""


def start_listener(alerts, *extra: str) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "anodet", "stream", "--detector", "pca", "--threshold=-1e300",
                             "--input", "tcp://127.0.0.1:0", "--follow", "--alerts", str(alerts),
                             "--status-every", "0", *extra], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    while True:
        line = proc.stderr.readline()
        assert line, "the stream command ended before listening"
        found = re.search(r"listening on tcp://127\.0\.0\.1:(\d+)", line)
        if found:
            return proc, int(found.group(1))


def alerted(path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def test_a_slow_and_a_silent_producer_do_not_hold_back_another(tmp_path, sample_rows):
    alerts = tmp_path / "alerts.jsonl"
    proc, port = start_listener(alerts)
    data = header_csv(sample_rows.iloc[:100])
    try:
        silent = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(data[:1])  # a byte of a header, then one more now and then
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as fast:
            t0 = time.monotonic()
            fast.sendall(data)
            latency = None
            deadline = t0 + 30
            while time.monotonic() < deadline:
                if alerted(alerts) >= 100:
                    latency = time.monotonic() - t0
                    break
                slow.sendall(data[1:2])  # still trickling
                time.sleep(0.02)
            assert latency is not None and latency < BOUND_S, f"the records took {latency} s to be alerted"
        slow.close()
        silent.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    ids = [json.loads(x)["fields"]["id"] for x in alerts.read_text().splitlines()]
    assert sorted(ids) == sorted(f"r{i}" for i in range(100))  # each once; the slow one's half line is no record


def test_each_connection_keeps_its_own_format_and_half_line(tmp_path, sample_rows, raw_test_lines):
    """A header CSV and raw KDD lines on two connections at once, each cut mid-line, interleaved."""
    alerts = tmp_path / "alerts.jsonl"
    proc, port = start_listener(alerts)
    header = header_csv(sample_rows.iloc[:50])
    raw = b"\n".join(raw_test_lines[:50]) + b"\n"
    try:
        a = socket.create_connection(("127.0.0.1", port), timeout=10)
        b = socket.create_connection(("127.0.0.1", port), timeout=10)
        for i in range(0, max(len(header), len(raw)), 97):  # pieces cut anywhere, alternating
            a.sendall(header[i:i + 97])
            b.sendall(raw[i:i + 97])
            time.sleep(0.001)
        a.close()
        b.close()
        deadline = time.monotonic() + 30
        while alerted(alerts) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    got = [json.loads(x) for x in alerts.read_text().splitlines()]
    assert len(got) == 100 and re.search(r"stream done: 100 read, 100 scored, 0 rejected", err), err
    assert sorted(a["fields"]["id"] for a in got if "id" in a["fields"]) == sorted(f"r{i}" for i in range(50))
    raw_alerts = [a for a in got if "id" not in a["fields"]]  # raw lines: protocol, service and flag only
    assert len(raw_alerts) == 50 and all(set(a["fields"]) == {"protocol_type", "service", "flag"} for a in raw_alerts)
