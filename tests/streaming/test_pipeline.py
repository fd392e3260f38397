"""The stream pipeline: bulk parsing, alerts exactly once, rejects, SIGTERM drain, follow, TCP, webhook."""

from __future__ import annotations

import gzip
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from anodet.datasets.kdd import fetch_raw, parse_raw_lines
from anodet.datasets.kdd_schema import FEATURES, NUMERIC_COLUMNS
from anodet.reader import InputError, parse_block, sniff
from anodet.reader.layout import RAW_LABELLED_LAYOUT
from anodet.scoring.core import applicable
from anodet.streaming.pipeline import Detection, Outputs, Pipeline, StreamConfig
from anodet.streaming.sinks import WebhookSender
from anodet.streaming.sources.local import FdSource, FileSource, TcpSource
from anodet.streaming.stats import LatencyHistogram, Stats
from tests.conftest import kdd_frame, wait_for

ROOT = Path(__file__).resolve().parents[2]
BAD_LINES = {  # position in the stream (0-based data line) -> malformed line
    5: b"this is not a record",
    17: b"0,tcp,http,SF,1,2,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,1,1,x,0.00,0.00,0.00,1.00,0.00,0.00,9,9,1.00,0.00,0.11,"
        b"0.00,0.00,0.00,0.00,0.00,normal.",
    300: b"1,2,3",
}


@pytest.fixture(scope="module")
def raw_lines() -> list[bytes]:
    """The first 3,000 raw lines of the KDD test file (real records, labelled)."""
    with gzip.open(fetch_raw()["test"], "rb") as fh:
        return [fh.readline().rstrip(b"\n") for _ in range(3000)]


def with_bad_lines(lines: list[bytes]) -> list[bytes]:
    out = list(lines)
    for pos in sorted(BAD_LINES):
        out.insert(pos, BAD_LINES[pos])
    return out


def expected_alerts(store, name: str, lines: list[bytes], threshold: float) -> dict[int, float]:
    """Record number (1-based, every data line counts) -> score, computed with the detector directly."""
    good = [(i + 1, ln) for i, ln in enumerate(lines) if i not in BAD_LINES or ln != BAD_LINES[i]]
    frame = parse_raw_lines(b"\n".join(ln for _, ln in good))
    scores = store.score_raw(name, frame[list(FEATURES)].to_numpy(dtype=np.float64))
    return {rec: float(s) for (rec, _), s in zip(good, scores, strict=True) if s >= threshold}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "anodet", "stream", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


# -- parsing ------------------------------------------------------------------------------------


def test_parse_block_bulk_matches_reference_parser(raw_lines):
    parsed = parse_block(b"\n".join(raw_lines), RAW_LABELLED_LAYOUT)
    reference = parse_raw_lines(b"\n".join(raw_lines))[list(NUMERIC_COLUMNS)].to_numpy(dtype=np.float64)
    assert parsed.valid.all()
    np.testing.assert_array_equal(parsed.features, reference)
    assert parsed.table.column("label")[0].as_py() == raw_lines[0].rsplit(b",", 1)[1].decode()


def test_parse_block_names_what_is_wrong(raw_lines):
    unlabelled = raw_lines[3].rsplit(b",", 1)[0]  # 41 fields: the first line (42 fields) fixed a label column
    lines = [raw_lines[0], b"1,2,3", raw_lines[1].replace(b",0.00,", b",abc,", 1), raw_lines[2] + b",extra",
             unlabelled, raw_lines[4].replace(b",1.00,", b",inf,", 1)]
    parsed = parse_block(b"\n".join(lines), RAW_LABELLED_LAYOUT)
    assert parsed.valid.tolist() == [True, False, False, False, False, True]  # an infinite value fails closed
    assert parsed.fail_closed.tolist() == [False, False, False, False, False, True]
    reasons = parsed.reasons
    assert "has 3 field(s), expected 42" in reasons[1]
    assert "is not a number ('abc')" in reasons[2]
    assert "has 43 field(s)" in reasons[3]
    assert "has 41 field(s)" in reasons[4]
    assert "is infinite" in reasons[5]


def test_header_layout_any_order_and_errors(store):
    names = [*reversed(FEATURES), "label", "note"]
    layout = sniff(",".join(names), "the stream")
    assert layout.kind == "header" and layout.label == "label" and layout.passthrough == ["note"]
    row = [*[str(i) for i in range(18)][::-1], "smurf.", "x"]
    parsed = parse_block(",".join(row).encode() + b"\n1,2", layout)
    assert parsed.numeric_columns == tuple(reversed(FEATURES))  # in file order
    np.testing.assert_array_equal(parsed.features[0], np.arange(18, dtype=float)[::-1])
    assert parsed.table.column("label")[0].as_py() == "smurf." and parsed.valid.tolist() == [True, False]
    partial = sniff("srv_count,foo", "the stream")
    with pytest.raises(InputError, match="the kdd18 detectors need serror_rate, srv_serror_rate"):
        applicable(store, ["pca", "pca@kdd41"], partial.columns)
    assert sniff(",".join(["0"] * 41), "the stream").kind == "raw"


def test_latency_histogram_quantiles():
    hist = LatencyHistogram()
    hist.add(np.array([0.001, 0.010, 0.100]), np.array([50, 49, 1]))
    assert 0.00095 < hist.quantile(0.5) < 0.00105
    assert 0.0095 < hist.quantile(0.99) < 0.0105
    assert hist.total == 100


# -- the command line ---------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_pipe_every_alert_exactly_once(tmp_path, store, raw_lines):
    lines = with_bad_lines(raw_lines)
    threshold = store.default_threshold("pca", "reference")
    alerts, rejects, stats = tmp_path / "alerts.jsonl", tmp_path / "rejects.jsonl", tmp_path / "stats.json"
    proc = cli("--detector", "pca", "--alerts", str(alerts), "--rejects", str(rejects), "--stats", str(stats),
               "--batch-size", "256", stdin=subprocess.PIPE)
    _, err = proc.communicate(b"\n".join(lines) + b"\n", timeout=60)
    assert proc.returncode == 0, err.decode()
    got = read_jsonl(alerts)
    expected = expected_alerts(store, "pca", lines, threshold)
    records = [a["record"] for a in got]
    assert len(records) == len(set(records)), "an alert was written twice"
    assert set(records) == set(expected)
    for a in got:
        assert a["score"] == pytest.approx(expected[a["record"]], rel=1e-5)
        assert a["detector"] == "pca" and a["threshold"] == pytest.approx(threshold)
        assert a["line"] == a["record"] and set(a["values"]) == set(FEATURES)
    bad = read_jsonl(rejects)
    assert [r["line"] for r in bad] == [p + 1 for p in sorted(BAD_LINES)]
    assert [r["raw"] for r in bad] == [BAD_LINES[p].decode() for p in sorted(BAD_LINES)]
    assert all(r["reason"] for r in bad)
    final = json.loads(stats.read_text())
    assert final["read"] == len(lines) and final["scored"] == len(raw_lines) and final["rejected"] == len(BAD_LINES)
    assert final["alerts"] == len(expected) and final["running"] is False
    assert "stream done:" in err.decode()


@pytest.mark.slow
def test_cli_autoencoder_from_file_with_header(tmp_path, store, splits):
    frame = kdd_frame(splits.test).iloc[:2000]
    cols = [*list(reversed(FEATURES)), "label_true"]
    src = tmp_path / "records.csv"
    frame[cols].rename(columns={"label_true": "label"}).to_csv(src, index=False)
    alerts = tmp_path / "alerts.jsonl"
    proc = cli("--detector", "autoencoder", "--input", str(src), "--alerts", str(alerts), "--threshold", "target_fpr")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    threshold = store.thresholds("autoencoder", "reference")["target_fpr"]
    scores = store.score_raw("autoencoder", frame[list(FEATURES)].to_numpy(dtype=np.float64))
    expected = set((np.flatnonzero(scores >= threshold) + 1).tolist())
    got = read_jsonl(alerts)
    assert [a["record"] for a in got] == sorted(expected)
    assert all(a["line"] == a["record"] + 1 for a in got)  # the header is line 1
    assert {a["label"] for a in got} <= {"0", "1"}


@pytest.mark.slow
def test_cli_sigterm_drains_everything_read(tmp_path, store, raw_lines):
    alerts, rejects, stats = tmp_path / "alerts.jsonl", tmp_path / "rejects.jsonl", tmp_path / "stats.json"
    proc = cli("--detector", "zscore", "--alerts", str(alerts), "--rejects", str(rejects), "--stats", str(stats),
               "--status-every", "0.2", stdin=subprocess.PIPE)
    try:
        proc.stdin.write(b"\n".join(raw_lines[:2000]) + b"\n")
        proc.stdin.write(raw_lines[2000][:30])  # a record cut mid-line: read, but never completed
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if stats.exists() and json.loads(stats.read_text())["read"] >= 2000:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)  # stdin stays open: the signal alone must end it
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()
    assert proc.returncode == 0, err.decode()
    assert "SIGTERM, draining" in err.decode()
    final = json.loads(stats.read_text())
    assert final["read"] == 2001 and final["scored"] == 2000 and final["rejected"] == 1
    expected = expected_alerts(store, "zscore", raw_lines[:2000], store.default_threshold("zscore", "reference"))
    records = [a["record"] for a in read_jsonl(alerts)]
    assert sorted(records) == sorted(expected) and len(records) == len(set(records))
    (cut,) = read_jsonl(rejects)
    assert cut["line"] == 2001 and "stopped" in cut["reason"] and cut["raw"] == raw_lines[2000][:30].decode()


@pytest.mark.slow
def test_cli_bad_input_is_a_sentence(tmp_path):
    proc = cli("--detector", "pca", "--input", str(tmp_path / "missing.csv"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "cannot read" in err.decode() and "Traceback" not in err.decode()
    proc = cli("--detector", "pca", "--threshold", "bogus", stdin=subprocess.DEVNULL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Unknown threshold" in err.decode()


# -- in-process pipelines -----------------------------------------------------------------------


def make_pipeline(store, source, name="pca", threshold=None, **kwargs):
    threshold = store.default_threshold(name, "reference") if threshold is None else threshold
    out = io.StringIO()
    kwargs.setdefault("config", StreamConfig(status_every=0, batch_size=128, max_wait=0.005))
    webhook, stats_path = kwargs.pop("webhook", None), kwargs.pop("stats_path", None)
    detection = Detection.from_store(store, name, threshold)
    return Pipeline(source, detection, Outputs(out, None, webhook, stats_path),
                           status=lambda m: None, **kwargs), out


def run_in_thread(pipeline):
    result = {}
    thread = threading.Thread(target=lambda: result.update(pipeline.run()), daemon=True)
    thread.start()
    return thread, result


def test_follow_reads_a_growing_file(tmp_path, store, raw_lines):
    path = tmp_path / "live.csv"
    path.write_bytes(b"\n".join(raw_lines[:500]) + b"\n")
    pipeline, out = make_pipeline(store, FileSource(path, follow=True))
    thread, result = run_in_thread(pipeline)
    assert wait_for(lambda: pipeline.stats.scored == 500)
    with open(path, "ab") as fh:
        fh.write(b"\n".join(raw_lines[500:1200]) + b"\n")
    assert wait_for(lambda: pipeline.stats.scored == 1200)
    assert thread.is_alive(), "follow mode must keep waiting at the end of the file"
    pipeline.stop()
    thread.join(10)
    assert result["scored"] == 1200
    expected = expected_alerts(store, "pca", raw_lines[:1200], pipeline.threshold)
    assert sorted(json.loads(x)["record"] for x in out.getvalue().splitlines()) == sorted(expected)


def test_tcp_listener_on_loopback(store, raw_lines):
    source = TcpSource("127.0.0.1", 0)
    pipeline, out = make_pipeline(store, source)
    thread, result = run_in_thread(pipeline)
    with socket.create_connection(("127.0.0.1", source.port), timeout=10) as conn:
        for i in range(0, 800, 100):  # a producer writing in pieces, cut anywhere
            piece = b"\n".join(raw_lines[i:i + 100]) + b"\n"
            conn.sendall(piece[:37])
            conn.sendall(piece[37:])
    thread.join(30)
    assert result["read"] == 800 and result["scored"] == 800
    expected = expected_alerts(store, "pca", raw_lines[:800], pipeline.threshold)
    assert sorted(json.loads(x)["record"] for x in out.getvalue().splitlines()) == sorted(expected)


@pytest.mark.slow
def test_backpressure_bounds_what_is_read_ahead(store, raw_lines):
    """A slow scorer blocks the reader (and so the producer) instead of buffering everything."""
    read_fd, write_fd = os.pipe()
    detection = Detection.from_store(store, "pca", 1e9)
    score, gate = detection.score, threading.Event()

    def slow_score(X):
        gate.wait(10)
        return score(X)

    detection.score = slow_score
    config = StreamConfig(status_every=0, batch_size=64, max_wait=0.0, queue_chunks=2)
    pipeline = Pipeline(FdSource(read_fd, "pipe"), detection,
                               Outputs(io.StringIO()), status=lambda m: None, config=config)
    thread, result = run_in_thread(pipeline)
    payload = (b"\n".join(raw_lines) + b"\n") * 20  # 60,000 records, ~6 MB
    os.set_blocking(write_fd, False)
    written = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and written < len(payload):
        try:
            written += os.write(write_fd, payload[written:written + 65536])
        except BlockingIOError:
            time.sleep(0.05)
    assert written < len(payload), "the producer was never held back"
    assert pipeline.stats.read < 60_000
    gate.set()
    os.set_blocking(write_fd, True)
    os.write(write_fd, payload[written:])
    os.close(write_fd)
    thread.join(60)
    os.close(read_fd)
    assert result["scored"] == 60_000 and result["read"] == 60_000


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    attempts = 0
    fail_first = 1

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).attempts += 1
        if type(self).attempts <= type(self).fail_first:
            self.send_response(503)
            self.end_headers()
            return
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_posts_each_alert_with_retry(store, raw_lines):
    _Hook.received, _Hook.attempts = [], 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server_thread = threading.Thread(target=server.serve_forever, daemon=True)
    server_thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
        stats = Stats()
        sender = WebhookSender(url, stats, retries=2, backoff=0.05, warn=lambda m: None)
        path_lines = raw_lines[:150]
        read_fd, write_fd = os.pipe()
        os.write(write_fd, b"\n".join(path_lines) + b"\n")
        os.close(write_fd)
        pipeline, out = make_pipeline(store, FdSource(read_fd, "pipe"), webhook=sender, stats=stats)
        result = pipeline.run()
        os.close(read_fd)
    finally:
        server.shutdown()
        server.server_close()
    logged = [json.loads(x) for x in out.getvalue().splitlines()]
    assert logged, "the sample should raise alerts"
    assert sorted(a["record"] for a in _Hook.received) == sorted(a["record"] for a in logged)
    assert _Hook.attempts == len(logged) + 1  # the first POST failed and was retried once
    assert result["webhook_sent"] == len(logged) and result["webhook_failed"] == 0
