"""The real-time pipeline: read records as they come, score them in micro-batches, raise alerts.

``python -m anodet stream --detector NAME`` reads CSV records (see :mod:`anodet.records`) from
stdin, a file (``--follow`` keeps reading as it grows, like ``tail -f``) or a TCP listener
(``tcp://127.0.0.1:9000``), and writes one JSON line per anomaly to the alert log (stdout by
default), optionally POSTing each to a webhook.

Three threads, so that no stage stalls another:

* the **reader** turns bytes into lines and hands them on in chunks through a *bounded* queue:
  when scoring falls behind, the reader blocks and the producer feels backpressure instead of
  this process growing without bound;
* the **scorer** gathers chunks into micro-batches (up to ``--batch-size`` records or
  ``--max-wait`` seconds after the first arrived, so it is fast under load and prompt when
  traffic is light), parses each batch in bulk, scores it, writes alerts and flushes the logs;
* the **sender** POSTs alerts to the webhook from its own queue, with retries, so a slow
  webhook never holds up scoring.

SIGINT/SIGTERM stop reading, drain the queue (every record read gets scored), flush the logs and
exit 0; a second signal exits at once.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import queue
import select
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from anodet.records import FormatError, Layout, detect_layout, parse_lines
from anodet.schema import FEATURES, LABEL_VIEWS

READ_SIZE = 1 << 20
POLL_INTERVAL = 0.01
"""Seconds between checks for new data at the end of a followed file."""
STOP_CHECK = 0.1
"""Seconds a blocked read waits before looking at the stop flag again."""


# ---------------------------------------------------------------------------------------------
# Latency bookkeeping


class LatencyHistogram:
    """Log-spaced latency histogram (1 µs … 1000 s, ~2 % resolution) for p50/p99 in O(1) memory.

    Records arrive by the hundred thousand per second; keeping each latency would grow without
    bound, so they are counted into 900 bins, weighted by how many records shared a latency.
    """

    EDGES = np.logspace(-6, 3, 901)

    def __init__(self) -> None:
        self.counts = np.zeros(len(self.EDGES) + 1, dtype=np.int64)

    def add(self, seconds: np.ndarray, weights: np.ndarray) -> None:
        idx = np.searchsorted(self.EDGES, seconds)
        np.add.at(self.counts, idx, weights)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float:
        """Upper edge of the bin holding the ``q`` quantile (seconds); NaN when empty."""
        total = self.total
        if total == 0:
            return float("nan")
        i = int(np.searchsorted(np.cumsum(self.counts), q * total, side="left"))
        return float(self.EDGES[min(i, len(self.EDGES) - 1)])


@dataclass
class Stats:
    """Counters of one stream run (shared by its threads; updated under ``lock``)."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    alerts: int = 0
    webhook_sent: int = 0
    webhook_failed: int = 0
    webhook_dropped: int = 0
    started: float = field(default_factory=time.perf_counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    recent: LatencyHistogram = field(default_factory=LatencyHistogram)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _mark: tuple[float, int] = (0.0, 0)

    def snapshot(self, interval: bool = False) -> dict[str, Any]:
        """Counters, rate and latency; ``interval`` measures since the previous interval snapshot."""
        now = time.perf_counter()
        with self.lock:
            if interval:
                since, scored_then = self._mark or (self.started, 0)
                since = since or self.started
                hist, self.recent = self.recent, LatencyHistogram()
                self._mark = (now, self.scored)
            else:
                since, scored_then, hist = self.started, 0, self.latency
            out = {
                "read": self.read, "scored": self.scored, "rejected": self.rejected, "alerts": self.alerts,
                "webhook_sent": self.webhook_sent, "webhook_failed": self.webhook_failed,
                "webhook_dropped": self.webhook_dropped,
                "elapsed_s": round(now - self.started, 3),
            }
            rate = (self.scored - scored_then) / max(now - since, 1e-9)
        out["records_per_s"] = round(rate, 1)
        out["latency_p50_ms"] = round(hist.quantile(0.5) * 1e3, 3)
        out["latency_p99_ms"] = round(hist.quantile(0.99) * 1e3, 3)
        return out


def format_status(snap: dict[str, Any], final: bool = False, webhook: bool = False) -> str:
    """One human status line from a :meth:`Stats.snapshot`."""
    def ms(v: float) -> str:
        return "-" if v != v else f"{v:.1f} ms"  # NaN check

    line = (f"stream{' done' if final else ''}: {snap['read']:,} read, {snap['scored']:,} scored, "
            f"{snap['rejected']:,} rejected, {snap['alerts']:,} alerts | {snap['records_per_s']:,.0f} rec/s | "
            f"latency p50 {ms(snap['latency_p50_ms'])}, p99 {ms(snap['latency_p99_ms'])}")
    if webhook:
        line += (f" | webhook {snap['webhook_sent']:,} sent, {snap['webhook_failed']:,} failed, "
                 f"{snap['webhook_dropped']:,} dropped")
    return line


# ---------------------------------------------------------------------------------------------
# Sources: byte chunks from stdin, a (followed) file or a TCP listener


class Source:
    """Where bytes come from. :meth:`chunks` yields bytes, and :data:`NEW_SEGMENT` whenever a new
    independent stream begins (a new TCP connection, a truncated or replaced file), so the
    format is detected afresh. It returns at the end of input, or soon after ``stop`` is set."""

    description = "input"

    def chunks(self, stop: threading.Event) -> Iterator[bytes | object]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what :meth:`open` or :meth:`chunks` acquired."""


NEW_SEGMENT = object()


def _readable(fd: int, timeout: float) -> bool:
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    except InterruptedError:
        return False
    return bool(ready)


class FdSource(Source):
    """A pipe or terminal (stdin): blocking reads, woken every :data:`STOP_CHECK` to look at ``stop``."""

    def __init__(self, fd: int, description: str = "stdin") -> None:
        self.fd = fd
        self.description = description

    def chunks(self, stop: threading.Event) -> Iterator[bytes | object]:
        while not stop.is_set():
            if not _readable(self.fd, STOP_CHECK):
                continue
            data = os.read(self.fd, READ_SIZE)
            if not data:
                return
            yield data


class FileSource(Source):
    """A file; with ``follow`` it keeps reading as the file grows and reopens it when it is
    truncated or replaced (log rotation), like ``tail -F``."""

    def __init__(self, path: Path, follow: bool = False) -> None:
        self.path = Path(path)
        self.follow = follow
        self.description = str(path)
        try:
            self._fh: IO[bytes] | None = open(self.path, "rb")
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}. Check the --input path.") from None

    def chunks(self, stop: threading.Event) -> Iterator[bytes | object]:
        fh = self._fh
        assert fh is not None
        while not stop.is_set():
            data = fh.read1(READ_SIZE) if hasattr(fh, "read1") else fh.read(READ_SIZE)
            if data:
                yield data
                continue
            if not self.follow:
                return
            try:
                st_path = os.stat(self.path)
            except FileNotFoundError:
                st_path = None
            st_fd = os.fstat(fh.fileno())
            if st_path is not None and (st_path.st_ino != st_fd.st_ino or st_path.st_dev != st_fd.st_dev):
                fh.close()
                fh = self._fh = open(self.path, "rb")
                yield NEW_SEGMENT
                continue
            if st_fd.st_size < fh.tell():
                fh.seek(0)
                yield NEW_SEGMENT
                continue
            stop.wait(POLL_INTERVAL)

    def close(self) -> None:
        if self._fh:
            self._fh.close()


class TcpSource(Source):
    """A TCP listener: a producer connects and writes lines. Without ``follow`` the stream ends
    when the first connection closes; with it, the next connection is awaited."""

    def __init__(self, host: str, port: int, follow: bool = False) -> None:
        self.follow = follow
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.server.bind((host, port))
        except OSError as exc:
            self.server.close()
            raise SourceError(f"cannot listen on tcp://{host}:{port}: {exc.strerror or exc}. "
                              "Choose a free port (or port 0 for any).") from None
        self.server.listen(1)
        self.host, self.port = self.server.getsockname()[:2]
        self.description = f"tcp://{self.host}:{self.port}"

    def chunks(self, stop: threading.Event) -> Iterator[bytes | object]:
        first = True
        while not stop.is_set():
            if not _readable(self.server.fileno(), STOP_CHECK):
                continue
            conn, _ = self.server.accept()
            with conn:
                if not first:
                    yield NEW_SEGMENT
                first = False
                while not stop.is_set():
                    if not _readable(conn.fileno(), STOP_CHECK):
                        continue
                    try:
                        data = conn.recv(READ_SIZE)
                    except ConnectionError:
                        data = b""
                    if not data:
                        break
                    yield data
            if not self.follow:
                return

    def close(self) -> None:
        self.server.close()


class SourceError(RuntimeError):
    """The input cannot be opened; the message says what to fix."""


def open_source(spec: str | None, follow: bool = False) -> Source:
    """``-``/None: stdin; ``tcp://HOST:PORT``: listen for a producer; anything else: a file path."""
    if spec in (None, "-"):
        return FdSource(sys.stdin.fileno())
    if spec.startswith("tcp://"):
        host, _, port = spec[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit():
            raise SourceError(f"{spec!r} is not a TCP address; write it as tcp://127.0.0.1:9000.")
        return TcpSource(host, int(port), follow)
    return FileSource(Path(spec), follow)


# ---------------------------------------------------------------------------------------------
# Sinks: alert log, rejects file, webhook


VALUES_TEMPLATE = "{" + ", ".join(f'"{f}": %r' for f in FEATURES) + "}"
ALERT_TEMPLATE = ('{"time": "%s", "detector": %s, "score": %r, "threshold": %r, "record": %d, "line": %d, '
                  '"label": %s, "values": %s}\n')
"""One alert as a JSON line, built with ``%`` so that a flood of alerts stays cheap to write."""
VALUES_CACHE = 65_536
"""Distinct feature vectors whose JSON is remembered: floods (smurf, neptune) repeat the same
vector over and over, and formatting 18 floats is the dearest part of writing an alert."""


def _open_out(path: str | None, default: IO[str]) -> IO[str]:
    if path in (None, "-"):
        return default
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", encoding="utf-8", buffering=1 << 20)


class WebhookSender:
    """POSTs each alert (its JSON line) to a URL from a separate thread, with retries.

    Retries connection errors, timeouts, 5xx, 408 and 429 with exponential backoff; gives up
    on other 4xx at once. Its queue is bounded: when a flood outpaces the webhook, further
    alerts are dropped from the webhook (counted; they stay in the alert log).
    """

    def __init__(self, url: str, stats: Stats, retries: int = 3, timeout: float = 5.0,
                 backoff: float = 0.5, queue_size: int = 10_000, drain_timeout: float = 10.0,
                 warn: Callable[[str], None] = print) -> None:
        self.url, self.stats, self.retries, self.timeout = url, stats, retries, timeout
        self.backoff, self.drain_timeout, self.warn = backoff, drain_timeout, warn
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_size)
        self._give_up_at = float("inf")
        self._warned_drop = False
        self.thread = threading.Thread(target=self._run, name="anodet-webhook", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, body: bytes) -> None:
        try:
            self.queue.put_nowait(body)
        except queue.Full:
            with self.stats.lock:
                self.stats.webhook_dropped += 1
            if not self._warned_drop:
                self._warned_drop = True
                self.warn("stream: the webhook cannot keep up; alerts beyond its queue are not posted "
                          "(they are still in the alert log).")

    def close(self) -> None:
        """Stop after delivering what is queued, waiting at most ``drain_timeout`` seconds."""
        self._give_up_at = time.monotonic() + self.drain_timeout
        self.queue.put(None)
        self.thread.join()

    def _post(self, body: bytes) -> tuple[bool, bool, str]:
        """(delivered, worth retrying, what happened)."""
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
                return True, False, f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return False, exc.code >= 500 or exc.code in (408, 429), f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            return False, True, str(getattr(exc, "reason", exc))

    def _deliver(self, body: bytes) -> None:
        for attempt in range(self.retries + 1):
            delivered, retry, what = self._post(body)
            if delivered:
                with self.stats.lock:
                    self.stats.webhook_sent += 1
                return
            wait = self.backoff * 2 ** attempt
            if not retry or attempt == self.retries or time.monotonic() + wait > self._give_up_at:
                break
            time.sleep(wait)
        with self.stats.lock:
            self.stats.webhook_failed += 1
        self.warn(f"stream: webhook POST failed after {attempt + 1} attempt(s) ({what}); the alert is "
                  "in the alert log.")

    def _run(self) -> None:
        while True:
            body = self.queue.get()
            if body is None:
                return
            if time.monotonic() > self._give_up_at:
                with self.stats.lock:
                    self.stats.webhook_failed += 1
                continue
            self._deliver(body)


# ---------------------------------------------------------------------------------------------
# The pipeline


@dataclass
class Chunk:
    """Lines read together: when they were read, their line and record numbers, their format."""

    t_read: float
    lines: list[bytes]
    line_numbers: np.ndarray
    first_record: int
    layout: Layout | None
    reject_reason: str | None = None
    """When set, every line of the chunk is rejected with this reason instead of parsed."""


END = None


@dataclass
class StreamConfig:
    """Knobs of the pipeline (see the ``stream`` command's options)."""

    batch_size: int = 8192
    max_wait: float = 0.01
    queue_chunks: int = 64
    status_every: float = 5.0
    max_stderr_rejects: int = 5


class Pipeline:
    """Reader → bounded queue → scorer (→ webhook sender), with a clean drain on :meth:`stop`.

    ``score`` maps raw feature rows (FEATURES order, unscaled) to scores; a record is an
    anomaly when its score is ``>= threshold`` (as everywhere in anodet).
    """

    def __init__(self, source: Source, score: Callable[[np.ndarray], np.ndarray], threshold: float,
                 detector: str, alerts: IO[str], rejects: IO[str] | None = None,
                 webhook: WebhookSender | None = None, config: StreamConfig | None = None,
                 status: Callable[[str], None] | None = None, stats_path: str | None = None,
                 stats: Stats | None = None) -> None:
        self.source, self.score_fn, self.threshold = source, score, float(threshold)
        self.detector = detector
        self.alerts, self.rejects, self.webhook = alerts, rejects, webhook
        self.config = config or StreamConfig()
        self.status = status or (lambda m: print(m, file=sys.stderr, flush=True))
        self.stats_path = stats_path
        self.stats = stats or (webhook.stats if webhook else Stats())
        self.queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=self.config.queue_chunks)
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._scorer_dead = threading.Event()
        self._stderr_rejects = 0
        self._detector_json = json.dumps(detector)
        self._label_json: dict[str | None, str] = {None: "null"}
        self._values_json: dict[tuple[float, ...], str] = {}

    # -- reader ----------------------------------------------------------------------------

    def _put(self, chunk: Chunk | None) -> None:
        while True:
            if self._scorer_dead.is_set():
                raise RuntimeError("the scorer stopped")
            try:
                self.queue.put(chunk, timeout=STOP_CHECK)
                return
            except queue.Full:
                continue

    def _read(self) -> None:
        line_no = 0  # lines seen (1-based numbering), header and blank lines included
        record_no = 0  # data lines seen (header and blank lines excluded)
        layout: Layout | None = None
        carry = b""
        try:
            for data in self.source.chunks(self.stop_event):
                if data is NEW_SEGMENT:
                    if carry:
                        line_no, record_no, layout = self._emit([carry], line_no, record_no, layout)
                        carry = b""
                    layout = None
                    continue
                t_read = time.perf_counter()
                data = carry + data
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1:]
                body = data[:cut]
                if b"\r" in body:
                    body = body.replace(b"\r\n", b"\n")
                line_no, record_no, layout = self._emit(body.split(b"\n"), line_no, record_no, layout, t_read)
            if carry.strip():
                if self.stop_event.is_set():
                    # Cut mid-line by the stop: keep it visible in the rejects, never silently lost.
                    with self.stats.lock:
                        self.stats.read += 1
                    self._put(Chunk(time.perf_counter(), [carry], np.array([line_no + 1]), record_no + 1, layout,
                                    "incomplete line: the stream was stopped before its end was read"))
                else:
                    line_no, record_no, layout = self._emit([carry.rstrip(b"\r")], line_no, record_no, layout)
        except FormatError as exc:
            self.error = exc
            self.stop_event.set()
        except BaseException as exc:
            self.error = self.error or exc
            self.stop_event.set()
        finally:
            with contextlib.suppress(RuntimeError):
                self._put(END)

    def _emit(self, lines: list[bytes], line_no: int, record_no: int, layout: Layout | None,
              t_read: float | None = None) -> tuple[int, int, Layout | None]:
        """Queue ``lines`` (numbered after ``line_no``); detect the format on a segment's first line."""
        t_read = time.perf_counter() if t_read is None else t_read
        n = len(lines)
        numbers = np.arange(line_no + 1, line_no + n + 1)
        if layout is None or b"" in lines:
            keep = [i for i, ln in enumerate(lines) if ln.strip()]
            if layout is None and keep:
                layout, is_header = detect_layout(lines[keep[0]])
                if is_header:
                    keep = keep[1:]
            lines = [lines[i] for i in keep]
            numbers = numbers[keep]
        if lines:
            with self.stats.lock:
                self.stats.read += len(lines)
            self._put(Chunk(t_read, lines, numbers, record_no + 1, layout))
        return line_no + n, record_no + len(lines), layout

    # -- scorer ----------------------------------------------------------------------------

    def _write_reject(self, line: int, reason: str, raw: bytes) -> None:
        text = raw.decode("utf-8", "backslashreplace")
        if self.rejects:
            self.rejects.write(json.dumps({"line": int(line), "reason": reason, "raw": text}) + "\n")
        elif self._stderr_rejects < self.config.max_stderr_rejects:
            self._stderr_rejects += 1
            self.status(f"stream: rejected line {line}: {reason}"
                        + ("" if self._stderr_rejects < self.config.max_stderr_rejects
                           else " (further rejects are only counted; use --rejects FILE to keep them)"))

    def _next_batch(self) -> tuple[list[Chunk], bool]:
        """Chunks for one micro-batch, and whether the end of the stream was reached."""
        first = self.queue.get()
        if first is END:
            return [], True
        batch, n = [first], len(first.lines)
        deadline = time.perf_counter() + self.config.max_wait
        while n < self.config.batch_size:
            remaining = deadline - time.perf_counter()
            try:
                item = self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if item is END:
                return batch, True
            batch.append(item)
            n += len(item.lines)
        return batch, False

    def _score_batch(self, batch: list[Chunk]) -> None:
        # Parse runs of chunks that share a format in one bulk call each.
        groups: list[list[Chunk]] = []
        n_rejected = 0
        for chunk in batch:
            if chunk.reject_reason:
                for ln, raw in zip(chunk.line_numbers.tolist(), chunk.lines, strict=True):
                    self._write_reject(ln, chunk.reject_reason, raw)
                n_rejected += len(chunk.lines)
            elif groups and groups[-1][0].layout is chunk.layout:
                groups[-1].append(chunk)
            else:
                groups.append([chunk])
        X_parts, meta_parts, labels_all = [np.empty((0, len(FEATURES)))], [np.empty((0, 2), dtype=np.int64)], []
        for group in groups:
            lines = [ln for c in group for ln in c.lines]
            line_numbers = np.concatenate([c.line_numbers for c in group])
            records = np.concatenate([np.arange(c.first_record, c.first_record + len(c.lines)) for c in group])
            parsed = parse_lines(lines, group[0].layout)
            for pos, reason in parsed.rejects:
                self._write_reject(int(line_numbers[pos]), reason, lines[pos])
            n_rejected += len(parsed.rejects)
            X_parts.append(parsed.X)
            meta_parts.append(np.column_stack([records[parsed.ok], line_numbers[parsed.ok]]))
            labels_all.extend(parsed.labels if parsed.labels is not None else [None] * len(parsed.X))
        X = np.concatenate(X_parts) if len(X_parts) > 1 else X_parts[0]
        meta = np.concatenate(meta_parts) if len(meta_parts) > 1 else meta_parts[0]
        scores = np.asarray(self.score_fn(X), dtype=np.float64) if len(X) else np.empty(0)
        flagged = np.flatnonzero(scores >= self.threshold)
        if len(flagged):
            self._write_alerts(flagged, X, scores, meta, labels_all)
        self.alerts.flush()
        if self.rejects and n_rejected:
            self.rejects.flush()
        t_done = time.perf_counter()
        lat = np.array([t_done - c.t_read for c in batch])
        weights = np.array([len(c.lines) for c in batch])
        with self.stats.lock:
            self.stats.scored += len(X)
            self.stats.rejected += n_rejected
            self.stats.alerts += len(flagged)
            self.stats.latency.add(lat, weights)
            self.stats.recent.add(lat, weights)

    def _write_alerts(self, flagged: np.ndarray, X: np.ndarray, scores: np.ndarray, meta: np.ndarray,
                      labels: list[str | None]) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        Xf = X[flagged]
        # Floods repeat one feature vector back to back: format each run of equal rows once.
        new_run = np.ones(len(Xf), dtype=bool)
        new_run[1:] = np.any(Xf[1:] != Xf[:-1], axis=1)
        run_id = np.cumsum(new_run) - 1
        values_json = self._values_json
        if len(values_json) > VALUES_CACHE:
            values_json.clear()
        run_json = []
        for key in map(tuple, Xf[new_run].tolist()):
            vj = values_json.get(key)
            if vj is None:
                vj = values_json[key] = VALUES_TEMPLATE % key
            run_json.append(vj)
        label_json = self._label_json
        # What every alert of this batch shares goes into the template once.
        template = ALERT_TEMPLATE.replace("%s", now, 1).replace("%s", self._detector_json, 1).replace(
            '"threshold": %r', f'"threshold": {self.threshold!r}', 1)
        out = []
        for i, score, (record, line), run in zip(flagged.tolist(), scores[flagged].tolist(), meta[flagged].tolist(),
                                                  run_id.tolist(), strict=True):
            label = labels[i]
            lj = label_json.get(label)
            if lj is None:
                lj = label_json[label] = json.dumps(label)
            out.append(template % (score, record, line, lj, run_json[run]))
        self.alerts.write("".join(out))
        if self.webhook:
            for line in out:
                self.webhook.submit(line.encode())

    def _score(self) -> None:
        try:
            ended = False
            while not ended:
                batch, ended = self._next_batch()
                if batch:
                    self._score_batch(batch)
        except BaseException as exc:
            self.error = self.error or exc
            self._scorer_dead.set()
            self.stop_event.set()

    # -- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop reading; whatever was read is still scored and logged."""
        self.stop_event.set()

    def _write_stats(self, snap: dict[str, Any]) -> None:
        if not self.stats_path:
            return
        path = Path(self.stats_path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({**snap, "detector": self.detector, "threshold": self.threshold,
                                   "source": self.source.description, "running": not self.done.is_set()}))
        tmp.replace(path)

    def run(self) -> dict[str, Any]:
        """Run to the end of input (or :meth:`stop`); return the final stats snapshot."""
        if self.webhook:
            self.webhook.start()
        reader = threading.Thread(target=self._read, name="anodet-reader", daemon=True)
        scorer = threading.Thread(target=self._score, name="anodet-scorer", daemon=True)
        self.stats.started = time.perf_counter()
        reader.start()
        scorer.start()
        every = self.config.status_every
        while scorer.is_alive():
            scorer.join(every if every > 0 else None)
            if scorer.is_alive() and every > 0:
                snap = self.stats.snapshot(interval=True)
                self.status(format_status(snap, webhook=self.webhook is not None))
                self._write_stats(snap)
        reader.join(timeout=5)
        if self.webhook:
            self.webhook.close()
        for sink in (self.alerts, self.rejects):
            if sink:
                sink.flush()
        self.done.set()
        snap = self.stats.snapshot()
        self._write_stats(snap)
        self.status(format_status(snap, final=True, webhook=self.webhook is not None))
        self.source.close()
        return snap


# ---------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m anodet stream``."""
    from anodet.detectors import REGISTRY

    parser.add_argument("--detector", required=True, choices=list(REGISTRY), help="detector to score with")
    parser.add_argument("--threshold", default="best_f1", metavar="PRESET|VALUE",
                        help="a preset of the store (best_f1, best_accuracy, mean_3sigma, target_fpr, "
                             "contamination) or a number; records scoring >= it raise an alert (default best_f1)")
    parser.add_argument("--label-view", choices=LABEL_VIEWS, default=LABEL_VIEWS[0],
                        help="label view whose validation presets --threshold names (default reference)")
    parser.add_argument("--input", default="-", metavar="SRC",
                        help="'-' for stdin (default), a file path, or tcp://127.0.0.1:PORT to listen for a producer")
    parser.add_argument("--follow", action="store_true",
                        help="at the end of input keep waiting: a file is read as it grows (tail -F), a TCP "
                             "listener accepts the next connection; stop with Ctrl-C or SIGTERM")
    parser.add_argument("--alerts", default="-", metavar="FILE",
                        help="alert log, one JSON line per anomaly, appended (default: stdout)")
    parser.add_argument("--rejects", metavar="FILE",
                        help="malformed lines as JSON lines (line, reason, raw); default: the first few on stderr")
    parser.add_argument("--webhook", metavar="URL", help="POST each alert (its JSON) to this URL")
    parser.add_argument("--webhook-retries", type=int, default=3, metavar="N", help="retries per alert (default 3)")
    parser.add_argument("--webhook-timeout", type=float, default=5.0, metavar="S", help="seconds per POST (default 5)")
    parser.add_argument("--batch-size", type=int, default=StreamConfig.batch_size, metavar="N",
                        help=f"most records per micro-batch (default {StreamConfig.batch_size})")
    parser.add_argument("--max-wait", type=float, default=StreamConfig.max_wait, metavar="S",
                        help=f"seconds a micro-batch waits to fill up (default {StreamConfig.max_wait})")
    parser.add_argument("--status-every", type=float, default=StreamConfig.status_every, metavar="S",
                        help="seconds between status lines on stderr; 0: only the final one (default 5)")
    parser.add_argument("--stats", metavar="FILE",
                        help="also keep the latest status as JSON in FILE (the Live monitor page reads it)")
    parser.add_argument("--store", metavar="DIR", help="model store folder (default: $ANODET_STORE or models_store/)")


def resolve_threshold(spec: str, presets: dict[str, float]) -> float:
    """A number, or the value of a named preset."""
    try:
        return float(spec)
    except ValueError:
        pass
    if spec in presets:
        return float(presets[spec])
    raise SourceError(f"--threshold {spec!r} is neither a number nor a preset; presets: {', '.join(presets)}.")


def _install_signals(pipeline: Pipeline) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    hits = {"n": 0}

    def handler(signum: int, _frame: Any) -> None:
        hits["n"] += 1
        if hits["n"] > 1:
            print("stream: second signal, exiting without draining", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        print(f"stream: {signal.Signals(signum).name}, draining and stopping…", file=sys.stderr, flush=True)
        pipeline.stop()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for signum, previous in old.items():
            signal.signal(signum, previous)

    return restore


def run(args: argparse.Namespace) -> int:
    """``python -m anodet stream``: returns 0 after a clean end or stop, 2 on unusable input."""
    from anodet.store import Store

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.batch_size < 1 or args.max_wait < 0:
        say("error: --batch-size must be at least 1 and --max-wait at least 0.")
        return 2
    try:
        store = Store.open(Path(args.store) if args.store else None)
        threshold = resolve_threshold(args.threshold, store.thresholds(args.detector, args.label_view))
        detector, scaler = store.detector(args.detector), store.scaler
        source = open_source(args.input, args.follow)
    except SourceError as exc:
        say(f"error: {exc}")
        return 2
    if isinstance(source, TcpSource):
        say(f"stream: listening on {source.description}")
    alerts = _open_out(args.alerts, sys.stdout)
    rejects = _open_out(args.rejects, sys.stdout) if args.rejects else None
    stats = Stats()
    webhook = (WebhookSender(args.webhook, stats, retries=args.webhook_retries, timeout=args.webhook_timeout,
                             warn=say) if args.webhook else None)
    config = StreamConfig(batch_size=args.batch_size, max_wait=args.max_wait, status_every=args.status_every)
    pipeline = Pipeline(source, lambda X: detector.score(scaler.transform(X)), threshold, args.detector,
                        alerts, rejects, webhook, config, status=say, stats_path=args.stats, stats=stats)
    restore = _install_signals(pipeline)
    say(f"stream: {args.detector} on {source.description}, alert when score >= {threshold:.6g}")
    try:
        pipeline.run()
    finally:
        restore()
        for sink in (alerts, rejects):
            if sink and sink not in (sys.stdout, sys.stderr):
                sink.close()
    if pipeline.error:
        if isinstance(pipeline.error, FormatError):
            say(f"error: {pipeline.error}")
            return 2
        say(f"error: the stream stopped: {type(pipeline.error).__name__}: {pipeline.error}")
        return 1
    return 0
