"""The real-time pipeline: read records as they come, score them in micro-batches, raise alerts.

``python -m anodet stream --detector NAME`` reads CSV records (the formats of
:mod:`anodet.reader`) from stdin, a file (``--follow`` keeps reading as it grows, like
``tail -f``) or a TCP listener (:mod:`anodet.sources`), and writes one JSON line per anomaly
to the alert log (stdout by default), optionally POSTing each to a webhook (:mod:`anodet.alerts`).

Records may also come from a broker (:mod:`anodet.brokers`), one per message, each acknowledged
only after its decision is written. The module is over 400 lines because the reader, the scorer and
their hand-over (chunks, acknowledgements) are one piece that reads best in one place.

Two threads, so that no stage stalls another:

* the **reader** turns bytes into lines and hands them on in chunks through a *bounded* queue:
  when scoring falls behind, the reader blocks and the producer feels backpressure instead of
  this process growing without bound. A line over the length limit is rejected without being
  kept; the first line that is a valid header or record decides the format (a rejected line
  never does);
* the **scorer** gathers chunks into micro-batches (up to ``batch_size`` records or
  ``max_wait`` seconds after the first arrived), parses each batch with the one reader, scores
  it with the one scoring routine, writes alerts and flushes the logs. A batch that cannot be
  scored is retried row by row, so one bad record never stops the stream.

SIGINT/SIGTERM stop reading, drain the queue (every record read gets scored), flush the logs and
exit 0; a second signal exits at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from anodet.alerts import AlertFormatter, WebhookSender
from anodet.reader import InputError, InputSchema, Layout, parse_block, sniff
from anodet.reader.limits import MAX_LINE_BYTES
from anodet.reader.parse import LINE_END
from anodet.schema import FEATURES
from anodet.sources import NEW_SEGMENT, STOP_CHECK, Entries, Source
from anodet.stats import Stats, format_status

logger = logging.getLogger(__name__)


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
    ids: list[str] | None = None
    """Broker message ids of the lines (acknowledged once decided; carried by alerts and rejects)."""
    extras: list[dict[str, str] | None] | None = None
    """Fields sent beside a raw line in a broker message, passed through into its alert."""
    records: np.ndarray | None = None
    """Record numbers of the lines when they are not consecutive from ``first_record``."""


END = None
_SEGMENT_NAME = "the stream"


RAW_ALERT_FIELDS = ("protocol_type", "service", "flag")
"""What an alert carries of a raw KDD line beyond its 18 features: the connection's kind."""


def alert_fields(layout: Layout) -> list[str]:
    """Columns an alert carries in ``fields``: a header CSV's passthrough columns (an id, a timestamp,
    an address), or the protocol, service and flag of a raw KDD line."""
    return list(layout.passthrough) if layout.kind == "header" else list(RAW_ALERT_FIELDS)


@dataclass
class StreamConfig:
    """Knobs of the pipeline (see the ``stream`` command's options)."""

    batch_size: int = 8192
    max_wait: float = 0.01
    queue_chunks: int = 64
    status_every: float = 5.0
    max_stderr_rejects: int = 5
    max_line_bytes: int = MAX_LINE_BYTES


@dataclass
class Detection:
    """What the scorer applies: a detector's name, its threshold, encoded rows → scores, and how a
    parsed chunk's rows are encoded (default: its numeric columns as they are)."""

    name: str
    threshold: float
    score: Callable[[np.ndarray], np.ndarray]
    encode: Callable[[Any, np.ndarray], np.ndarray] | None = None
    value_columns: tuple[str, ...] = ()  # the numeric columns an alert's "values" show
    schema: InputSchema | None = None  # a user dataset's columns (None: KDD's); see reader.sniff

    @classmethod
    def from_store(cls, store: Any, name: str, threshold: float) -> Detection:
        """Detector ``name`` of ``store``, scored by the one scoring routine."""
        from anodet.scoring.core import encode_chunk, input_schema, score_rows

        encoder = store.encoder([name])
        return cls(name, threshold, lambda M: score_rows(store, M, [name]).by_detector[name],
                   lambda chunk, rows: encode_chunk(encoder, chunk, rows),
                   tuple(store.feature_set_for(name).numeric_columns), input_schema(store))


@dataclass
class Outputs:
    """Where results go: the alert log, the rejects log, a webhook, and a stats file for the Live monitor."""

    alerts: IO[str]
    rejects: IO[str] | None = None
    webhook: WebhookSender | None = None
    stats_path: str | None = None
    sinks: Sequence[AlertSink] = field(default_factory=list)
    """Further alert destinations (a Redis Stream): written, like the log, before records are acknowledged."""


class AlertSink(Protocol):
    """Somewhere else alerts go (:class:`anodet.brokers.RedisAlertSink`)."""

    description: str

    def send(self, lines: list[str]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Pipeline:
    """Reader → bounded queue → scorer (→ webhook sender), with a clean drain on :meth:`stop`.

    A record is an anomaly when its score is ``>= threshold`` (as everywhere in anodet).
    """

    def __init__(self, source: Source, detection: Detection, outputs: Outputs, config: StreamConfig | None = None,
                 status: Callable[[str], None] | None = None, stats: Stats | None = None) -> None:
        self.source, self.detection, self.outputs = source, detection, outputs
        self.config = config or StreamConfig()
        self.status = status or (lambda m: print(m, file=sys.stderr, flush=True))
        self.stats = stats or (outputs.webhook.stats if outputs.webhook else Stats())
        self.queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=self.config.queue_chunks)
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._scorer_dead = threading.Event()
        self._stderr_rejects = 0
        self._formatter = AlertFormatter(detection.name, detection.threshold, detection.value_columns)
        self._entry_layouts: dict[bytes | int, Layout] = {}
        self.on_batch: Callable[[float, int], None] | None = None
        """Called after each micro-batch is written and acknowledged: (seconds since its first record
        was read, records in it); the metrics endpoint's latency histogram."""

    @property
    def threshold(self) -> float:
        return self.detection.threshold

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

    def _reject_now(self, raw: bytes, line_no: int, record_no: int, layout: Layout | None, reason: str) -> None:
        with self.stats.lock:
            self.stats.read += 1
        self._put(Chunk(time.perf_counter(), [raw], np.array([line_no]), record_no, layout, reason))

    def _read(self) -> None:
        line_no = 0  # lines seen (1-based numbering), header and blank lines included
        record_no = 0  # data lines seen (header and blank lines excluded)
        layout: Layout | None = None
        carry = b""
        skipping = False  # inside a line over the length limit: drop bytes until its end
        limit = self.config.max_line_bytes
        try:
            for data in self.source.chunks(self.stop_event):
                if isinstance(data, Entries):
                    record_no = self._emit_entries(data, record_no)
                    continue
                if data is NEW_SEGMENT:
                    if carry:
                        line_no, record_no, layout = self._emit([carry], line_no, record_no, layout)
                        carry = b""
                    layout, skipping = None, False
                    continue
                assert isinstance(data, bytes)
                t_read = time.perf_counter()
                if skipping:
                    end = LINE_END.search(data)
                    if end is None:
                        continue
                    data, skipping = data[end.end():], False
                data = carry + data
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    if len(carry) > limit:
                        line_no += 1
                        record_no += 1
                        self._reject_now(carry[:200], line_no, record_no, layout,
                                         f"the line is longer than {limit / 2**20:,.0f} MiB (the limit); it was not "
                                         "read (the first 200 bytes are shown)")
                        carry, skipping = b"", True
                    continue
                carry = data[cut + 1:]
                body = data[:cut]
                lines = LINE_END.split(body[:-1] if body.endswith(b"\r") else body)
                line_no, record_no, layout = self._emit(lines, line_no, record_no, layout, t_read)
            if carry.strip():
                if self.stop_event.is_set():
                    # Cut mid-line by the stop: keep it visible in the rejects, never silently lost.
                    self._reject_now(carry, line_no + 1, record_no + 1, layout,
                                     "incomplete line: the stream was stopped before its end was read")
                else:
                    line_no, record_no, layout = self._emit([carry.rstrip(b"\r")], line_no, record_no, layout)
        except BaseException as exc:
            self.error = self.error or exc
            self.stop_event.set()
        finally:
            with contextlib.suppress(RuntimeError):
                self._put(END)

    def _emit(self, lines: list[bytes], line_no: int, record_no: int, layout: Layout | None,
              t_read: float | None = None) -> tuple[int, int, Layout | None]:
        """Queue ``lines`` (numbered after ``line_no``); the first valid line of a segment decides its format."""
        t_read = time.perf_counter() if t_read is None else t_read
        numbers = np.arange(line_no + 1, line_no + len(lines) + 1)
        keep = [i for i, ln in enumerate(lines) if ln.strip()]
        too_long = [i for i in keep if len(lines[i]) > self.config.max_line_bytes]
        for i in too_long:
            record_no += 1
            self._reject_now(lines[i][:200], int(numbers[i]), record_no, layout,
                             f"the line is longer than {self.config.max_line_bytes / 2**20:,.0f} MiB (the limit)")
        keep = [i for i in keep if i not in set(too_long)]
        while layout is None and keep:
            first = keep[0]
            try:
                layout = sniff(lines[first].decode("utf-8", "replace"), _SEGMENT_NAME,
                               schema=self.detection.schema)
            except InputError as exc:
                record_no += 1
                self._reject_now(lines[first], int(numbers[first]), record_no, None,
                                 f"cannot decide the stream's format from this line: {exc}")
                keep = keep[1:]
                continue
            if layout.kind == "header":
                keep = keep[1:]
        if keep and layout is not None:
            chosen = [lines[i] for i in keep]
            with self.stats.lock:
                self.stats.read += len(chosen)
            self._put(Chunk(t_read, chosen, numbers[keep], record_no + 1, layout))
            record_no += len(chosen)
        return line_no + len(lines), record_no, layout

    def _entry_layout(self, header: bytes | None, line: bytes) -> Layout | str:
        """The layout of a broker entry's line (its header's, or a raw line's by its number of
        values), or why the entry is not a record."""
        key: bytes | int = header if header is not None else line.count(b",")
        layout = self._entry_layouts.get(key)
        if layout is not None:
            return layout
        if header is not None and self.detection.schema is None and not {
                n.strip().lower() for n in header.decode("utf-8", "replace").split(",")} & set(FEATURES):
            return ("the entry has neither a 'line' field holding a raw KDD line nor fields named after the model's "
                    f"feature columns ({', '.join(FEATURES[:3])}, …)")
        try:
            layout = sniff((header if header is not None else line).decode("utf-8", "replace"), "this entry",
                           schema=self.detection.schema)
        except InputError as exc:
            return f"cannot read this entry as a record: {exc}"
        if header is not None and layout.kind != "header":
            return ("the entry has neither a 'line' field holding a raw KDD line nor fields named after the "
                    "model's feature columns")
        if header is None and layout.kind != "raw":
            return "the 'line' field holds a header, not a record; send one raw KDD line per entry"
        self._entry_layouts[key] = layout
        return layout

    def _emit_entries(self, entries: Entries, record_no: int) -> int:
        """Queue records that came one per broker message; return the last record number."""
        n = len(entries.lines)
        numbers = np.arange(record_no + 1, record_no + n + 1)
        with self.stats.lock:
            self.stats.read += n
        limit = self.config.max_line_bytes
        if entries.reject_reason:
            kinds: dict[Layout | str, list[int]] = {entries.reject_reason: list(range(n))}
        elif entries.header is not None and all(len(ln) <= limit for ln in entries.lines):
            kinds = {self._entry_layout(entries.header, b""): list(range(n))}
        else:
            kinds = {}
            for i, line in enumerate(entries.lines):
                kind = (f"the entry is longer than {limit / 2**20:,.0f} MiB (the limit)" if len(line) > limit
                        else self._entry_layout(entries.header, line))
                kinds.setdefault(kind, []).append(i)
        for kind, positions in kinds.items():
            whole = len(positions) == n
            lines = entries.lines if whole else [entries.lines[i] for i in positions]
            ids = entries.ids if whole else [entries.ids[i] for i in positions]
            extras = (None if entries.extras is None else entries.extras if whole
                      else [entries.extras[i] for i in positions])
            at = numbers if whole else numbers[positions]
            if isinstance(kind, str):
                lines = [ln[:200] if len(ln) > limit else ln for ln in lines]
                self._put(Chunk(entries.t_read, lines, at, int(at[0]), None, kind, ids=ids, records=at))
            else:
                self._put(Chunk(entries.t_read, lines, at, int(at[0]), kind, ids=ids, extras=extras, records=at))
        return record_no + n

    # -- scorer ----------------------------------------------------------------------------

    def _write_reject(self, line: int, reason: str, raw: bytes, entry: str | None = None) -> None:
        text = raw.decode("utf-8", "backslashreplace")
        rejects = self.outputs.rejects
        if rejects:
            rejects.write(json.dumps({"line": int(line), "reason": reason, "raw": text,
                                      **({"entry": entry} if entry is not None else {})}) + "\n")
        elif self._stderr_rejects < self.config.max_stderr_rejects:
            self._stderr_rejects += 1
            where = f"entry {entry}" if entry is not None else f"line {line}"
            self.status(f"stream: rejected {where}: {reason}"
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

    def _scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows that could not be scored); one failing row never fails the batch."""
        try:
            return np.asarray(self.detection.score(X), dtype=np.float64), np.zeros(len(X), dtype=bool)
        except Exception:
            logger.exception("scoring a batch of %d rows failed; scoring its rows one by one", len(X))
        scores, failed = np.full(len(X), np.nan), np.zeros(len(X), dtype=bool)
        for i in range(len(X)):
            try:
                scores[i] = float(np.asarray(self.detection.score(X[i:i + 1]))[0])
            except Exception:
                failed[i] = True
        return scores, failed

    def _score_batch(self, batch: list[Chunk]) -> None:
        # Parse runs of chunks that share a format in one bulk call each.
        groups: list[list[Chunk]] = []
        n_rejected = 0
        for chunk in batch:
            if chunk.reject_reason:
                entries: list[str | None] = list(chunk.ids) if chunk.ids else [None] * len(chunk.lines)
                for ln, raw, entry in zip(chunk.line_numbers.tolist(), chunk.lines, entries, strict=True):
                    self._write_reject(ln, chunk.reject_reason, raw, entry)
                n_rejected += len(chunk.lines)
            elif groups and groups[-1][0].layout is chunk.layout:
                groups[-1].append(chunk)
            else:
                groups.append([chunk])
        n_scored = n_alerts = 0
        for group in groups:
            scored, alerts, rejected = self._score_group(group)
            n_scored, n_alerts, n_rejected = n_scored + scored, n_alerts + alerts, n_rejected + rejected
        self.outputs.alerts.flush()
        if self.outputs.rejects and n_rejected:
            self.outputs.rejects.flush()
        for sink in self.outputs.sinks:
            sink.flush()
        # Every decision of the batch is written: only now may the broker forget its records.
        self.source.commit([i for c in batch if c.ids for i in c.ids])
        t_done = time.perf_counter()
        lat = np.array([t_done - c.t_read for c in batch])
        weights = np.array([len(c.lines) for c in batch])
        with self.stats.lock:
            self.stats.scored += n_scored
            self.stats.rejected += n_rejected
            self.stats.alerts += n_alerts
            self.stats.latency.add(lat, weights)
            self.stats.recent.add(lat, weights)
        if self.on_batch is not None:
            self.on_batch(float(lat.max()), int(weights.sum()))

    def _score_group(self, group: list[Chunk]) -> tuple[int, int, int]:
        """Parse, score and alert one run of chunks of one format; (scored, alerts, rejected)."""
        layout = group[0].layout
        assert layout is not None
        lines = [ln for c in group for ln in c.lines]
        line_numbers = np.concatenate([c.line_numbers for c in group])
        records = np.concatenate([c.records if c.records is not None
                                  else np.arange(c.first_record, c.first_record + len(c.lines)) for c in group])
        ids: list[str | None] | None = None
        if group[0].ids is not None:
            ids = [i for c in group for i in (c.ids if c.ids is not None else [None] * len(c.lines))]
        extras = ([x for c in group for x in (c.extras or [None] * len(c.lines))]
                  if any(c.extras for c in group) else None)
        parsed = parse_block(b"\n".join(lines), layout)
        if len(parsed) != len(lines):  # cannot happen with lines split as the reader splits them; be safe
            raise RuntimeError(f"parsed {len(parsed)} rows from {len(lines)} lines")
        ok = parsed.valid.copy()
        if self.detection.encode is None:
            X = parsed.features[ok]
        else:
            try:
                X = self.detection.encode(parsed, np.flatnonzero(ok))
            except InputError as exc:  # a header that lacks the detector's columns: every line says so
                for i, raw in enumerate(lines):
                    self._write_reject(int(line_numbers[i]), str(exc), raw, ids[i] if ids is not None else None)
                return 0, 0, len(lines)
        scores, failed = self._scores(X)
        good = np.flatnonzero(ok)
        for pos in good[failed]:
            parsed.reasons[pos] = "could not be scored (see the server log)"
        ok[good[failed]] = False
        scores = scores[~failed]
        for pos in np.flatnonzero(~ok):
            self._write_reject(int(line_numbers[pos]), parsed.reasons[pos] or "rejected", lines[pos],
                               ids[pos] if ids is not None else None)
        good = np.flatnonzero(ok)
        flagged = np.flatnonzero(scores >= self.detection.threshold)
        if len(flagged):
            rows = good[flagged]
            names = alert_fields(layout)
            table = parsed.table.select([*names, *([layout.label] if layout.label else [])]).take(rows)
            labels = (table.column(layout.label).to_pylist() if layout.label else [None] * len(rows))
            labels = [lab if lab else None for lab in labels]
            fields = (list(zip(*(table.column(c).to_pylist() for c in names), strict=True)) if names else None)
            values = parsed.features[rows]
            if self.detection.value_columns:
                position = {c: j for j, c in enumerate(parsed.numeric_columns)}
                values = values[:, [position[c] for c in self.detection.value_columns if c in position]]
            out = self._formatter.lines(values, scores[flagged], records[rows], line_numbers[rows],
                                        labels, fields, names,
                                        [ids[r] for r in rows.tolist()] if ids is not None else None,
                                        [extras[r] for r in rows.tolist()] if extras is not None else None)
            self.outputs.alerts.write("".join(out))
            for sink in self.outputs.sinks:
                sink.send(out)
            if self.outputs.webhook:
                for line in out:
                    self.outputs.webhook.submit(line.encode())
        return len(good), len(flagged), int((~ok).sum())

    def _score(self) -> None:
        try:
            ended = False
            while not ended:
                batch, ended = self._next_batch()
                if batch:
                    self._score_batch(batch)
        except BaseException as exc:
            logger.exception("the stream's scorer stopped")
            self.error = self.error or exc
            self._scorer_dead.set()
            self.stop_event.set()

    # -- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop reading; whatever was read is still scored and logged."""
        self.stop_event.set()

    def _write_stats(self, snap: dict[str, Any]) -> None:
        if not self.outputs.stats_path:
            return
        path = Path(self.outputs.stats_path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({**snap, "detector": self.detection.name, "threshold": self.threshold,
                                   "source": self.source.description, "running": not self.done.is_set()}))
        tmp.replace(path)

    def run(self) -> dict[str, Any]:
        """Run to the end of input (or :meth:`stop`); return the final stats snapshot."""
        webhook = self.outputs.webhook
        if webhook:
            webhook.start()
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
                self.status(format_status(snap, webhook=webhook is not None))
                self._write_stats(snap)
        reader.join(timeout=5)
        if webhook:
            webhook.close()
        for sink in (self.outputs.alerts, self.outputs.rejects):
            if sink:
                sink.flush()
        self.done.set()
        snap = self.stats.snapshot()
        self._write_stats(snap)
        self.status(format_status(snap, final=True, webhook=webhook is not None))
        self.source.close()
        return snap


