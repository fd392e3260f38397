"""The real-time pipeline: read records as they come, score them in micro-batches, raise alerts.

Two threads, so that no stage stalls another:

* the **reader** (:class:`~anodet.streaming.intake.Reader`) turns what the source yields into
  chunks of lines and hands them on through a *bounded* queue: when scoring falls behind, the
  reader blocks and the producer feels backpressure instead of this process growing without bound;
* the **scorer** gathers chunks into micro-batches (up to ``batch_size`` records or ``max_wait``
  seconds after the first arrived), parses each batch with the one reader (:mod:`anodet.reader`),
  scores it with the one scoring routine (:mod:`anodet.scoring.core`), writes alerts and flushes the
  logs, and only then acknowledges broker records. A batch that cannot be scored is retried row by
  row, so one bad record never stops the stream.

A record that fails closed (an infinite value, a passthrough field that is not UTF-8) is scored
+inf and alerted with its reason. A broker entry that cannot be decided (its alert refused, or it
keeps coming back) goes to the dead-letter stream with its reason, and the stream goes on.
SIGINT/SIGTERM stop reading, drain the queue (every record read gets scored), flush the logs and
exit 0; a second signal exits at once.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from anodet.reader import InputError, InputSchema, Layout, parse_block
from anodet.reader.limits import MAX_LINE_BYTES
from anodet.streaming.alerts import AlertFormatter
from anodet.streaming.intake import Chunk, Reader
from anodet.streaming.sinks import AlertSink, DeadLetterStream, WebhookSender
from anodet.streaming.sources.base import STOP_CHECK, Source
from anodet.streaming.stats import Stats, format_status

logger = logging.getLogger(__name__)

END = None
RAW_ALERT_FIELDS = ("protocol_type", "service", "flag")
"""What an alert carries of a raw KDD line beyond its 18 features: the connection's kind."""
MAX_DELIVERIES = 5
"""Deliveries of a broker entry after which it is set aside in the dead-letter stream, not scored again."""
DEAD_LINE_BYTES = 64 << 10
"""Bytes of a record's line kept in its dead-letter entry."""


DeadItem = tuple[str | None, int, bytes, Layout | None, dict[str, str] | None, str, int]
"""A record set aside: (entry id, record number, line, layout, passthrough extras, reason, deliveries)."""


def _bounded_json(fields: dict[str, str]) -> str:
    """Passthrough fields as JSON for a dead letter, long values cut so the letter itself is accepted."""
    text = json.dumps(fields, ensure_ascii=False)
    if len(text) <= DEAD_LINE_BYTES:
        return text
    return json.dumps({k: v if len(v) <= 1024 else f"{v[:1024]}… ({len(v):,} characters, cut)"
                       for k, v in fields.items()}, ensure_ascii=False)


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
    max_deliveries: int = MAX_DELIVERIES


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
    """Where results go: the alert log, the rejects log, a webhook, a stats file for the Live monitor,
    further alert streams, and the dead-letter stream (None: dead letters go to the rejects)."""

    alerts: IO[str]
    rejects: IO[str] | None = None
    webhook: WebhookSender | None = None
    stats_path: str | None = None
    sinks: Sequence[AlertSink] = field(default_factory=list)
    """Further alert destinations (a Redis Stream): written, like the log, before records are acknowledged."""
    dead_letter: DeadLetterStream | None = None


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
        self._sent: list[tuple[str | None, int, bytes, Layout | None, dict[str, str] | None]] = []
        """Per alert sent to the sinks in this batch: (entry id, record, line, layout, extras)."""
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

    def _read(self) -> None:
        reader = Reader(self.source, self._put, self.stop_event, self.stats, self.config.max_line_bytes,
                        self.detection.schema, self.config.max_deliveries)
        try:
            reader.run()
        except BaseException as exc:
            self.error = self.error or exc
            self.stop_event.set()
        finally:
            try:
                self._put(END)
            except RuntimeError:
                pass

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

    def _dead_letters(self, items: list[DeadItem]) -> int:
        """Set records aside with their reasons: in the dead-letter stream, or else in the rejects."""
        if not items:
            return 0
        dead = self.outputs.dead_letter
        elsewhere = list(range(len(items)))  # set aside in the rejects
        if dead is not None:
            group = getattr(self.source, "group", "")
            stream = getattr(getattr(self.source, "url", None), "name", self.source.description)
            refused = dead.add([{
                "entry": entry or "", "stream": stream, "group": group, "reason": reason, "deliveries": str(n),
                "line": line[:DEAD_LINE_BYTES].decode("utf-8", "backslashreplace"),
                "header": ",".join(layout.columns) if layout is not None and layout.kind == "header" else "",
                "fields": _bounded_json(extras or {})}
                for entry, record, line, layout, extras, reason, n in items])
            elsewhere = [i for i, _ in refused]
            for i, why in refused:
                entry, record, line, layout, extras, reason, n = items[i]
                items[i] = (entry, record, line, layout, extras,
                            f"{reason} (the dead-letter stream {dead.description} refused it too: {why})", n)
        for i in elsewhere:
            entry, record, line, _layout, _extras, reason, _n = items[i]
            self._write_reject(record, f"dead letter: {reason}", line[:DEAD_LINE_BYTES], entry)
        with self.stats.lock:
            self.stats.dead_lettered += len(items)
        logger.warning("set aside %d record(s) as dead letters (%s)", len(items), items[0][5])
        return len(items)

    def _flush_sinks(self) -> int:
        """Flush the alert streams; an alert one refused sets its entry aside. Returns the dead letters."""
        sent, self._sent = self._sent, []
        dead: dict[int, str] = {}
        for sink in self.outputs.sinks:
            for position, reason in sink.flush() or []:
                dead.setdefault(position, f"the alert stream {sink.description} refused its alert: {reason}")
        items: list[DeadItem] = []
        for position, reason in sorted(dead.items()):
            entry, record, line, layout, extras = sent[position]
            if entry is None:
                self.status(f"stream: record {record}: {reason} (the alert is in the alert log)")
                continue
            items.append((entry, record, line, layout, extras, reason, 1))
        return self._dead_letters(items)

    def _score_batch(self, batch: list[Chunk]) -> None:
        # Parse runs of chunks that share a format in one bulk call each.
        groups: list[list[Chunk]] = []
        n_rejected = n_dead = 0
        for chunk in batch:
            if chunk.dead_reason:
                n = len(chunk.lines)
                ids: list[str | None] = list(chunk.ids) if chunk.ids else [None] * n
                n_dead += self._dead_letters([
                    (entry, int(rec), line, None, (chunk.extras or [None] * n)[i], chunk.dead_reason,
                     (chunk.deliveries or [0] * n)[i])
                    for i, (entry, rec, line) in enumerate(zip(ids, chunk.line_numbers.tolist(), chunk.lines,
                                                               strict=True))])
                n_rejected += len(chunk.lines)  # never scored: counted with the records refused
            elif chunk.reject_reason:
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
        n_dead += self._flush_sinks()
        if self.outputs.rejects and (n_rejected or n_dead):
            self.outputs.rejects.flush()
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
        closed = parsed.fail_closed.copy()
        if any(c.notes for c in group):
            notes = [x for c in group for x in (c.notes or [None] * len(c.lines))]
            for i, note in enumerate(notes):
                if note and ok[i]:
                    parsed.reasons[i] = "; ".join(filter(None, [parsed.reasons[i], note]))
                    closed[i] = True
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
        scores[closed[good]] = np.inf  # fail closed: whatever the detector made of such a record
        failed &= ~closed[good]
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
            row_list = rows.tolist()
            reasons = [parsed.reasons[r] if closed[r] else None for r in row_list] if closed.any() else None
            out = self._formatter.lines(values, scores[flagged], records[rows], line_numbers[rows],
                                        labels, fields, names,
                                        [ids[r] for r in row_list] if ids is not None else None,
                                        [extras[r] for r in row_list] if extras is not None else None, reasons)
            self.outputs.alerts.write("".join(out))
            if self.outputs.sinks:
                for sink in self.outputs.sinks:
                    sink.send(out)
                self._sent += [(ids[r] if ids is not None else None, int(records[r]), lines[r], layout,
                                extras[r] if extras is not None else None) for r in row_list]
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
