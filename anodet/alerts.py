"""Where a stream's alerts go: JSON lines (file or stdout), a rejects file, and a webhook.

Every alert line is valid JSON (``allow_nan`` never needed): a score too large to be finite
(a record far outside the training range) is written as the largest double,
``1.7976931348623157e+308``, with ``"saturated": true``. A log left with a torn last line
(the process was killed mid-write) is repaired when it is opened again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from anodet.stats import Stats

logger = logging.getLogger(__name__)

MAX_DOUBLE = "1.7976931348623157e+308"


def values_template(columns: tuple[str, ...] | list[str]) -> str:
    """The ``values`` object of an alert: the detector's numeric input columns, filled with ``%``."""
    return "{" + ", ".join(f"{json.dumps(c)}: %r" for c in columns) + "}"


ALERT_TEMPLATE = ('{"time": "%s", "detector": %s, "score": %s, "saturated": %s, "threshold": %r, "record": %d, '
                  '"line": %d, "label": %s, "fields": %s, "values": %s}\n')
"""One alert as a JSON line, built with ``%`` so that a flood of alerts stays cheap to write."""
ENTRY_TEMPLATE = ALERT_TEMPLATE.replace('"fields": %s', '"entry": %s, "fields": %s')
"""An alert of a record read from a broker also names its message: ``"entry"``, the Redis Stream
entry id or Kafka ``topic:partition:offset``."""
VALUES_CACHE = 65_536
"""Distinct feature vectors whose JSON is remembered: floods (smurf, neptune) repeat the same
vector over and over, and formatting 18 floats is the dearest part of writing an alert."""


def repair_torn_tail(path: Path) -> int:
    """Cut a last line that has no newline (a write cut short by a kill); return the bytes removed."""
    try:
        with open(path, "r+b") as fh:
            size = fh.seek(0, 2)
            if size == 0:
                return 0
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return 0
            step, end = 1 << 16, size
            while end > 0:
                start = max(0, end - step)
                fh.seek(start)
                block = fh.read(end - start)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    keep = start + cut + 1
                    break
                end = start
            else:
                keep = 0
            fh.truncate(keep)
            return size - keep
    except FileNotFoundError:
        return 0


def open_out(path: str | None, default: IO[str]) -> IO[str]:
    """An append-mode JSON-lines log (``-``/None: ``default``), its torn last line repaired first."""
    if path in (None, "-"):
        return default
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    removed = repair_torn_tail(target)
    if removed:
        logger.warning("%s ended with an incomplete line (%d bytes, a write cut short); removed it", target, removed)
    return open(target, "a", encoding="utf-8", buffering=1 << 20)


def _json_value(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)``, with strings (nearly every passthrough value) done
    by the json module's C string encoder: alerts of a flood each carry their own id."""
    if type(value) is str:
        return encode_basestring(value)
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def score_json(score: float) -> str:
    """A score as a JSON number: finite as is, +inf as the largest double."""
    return repr(score) if math.isfinite(score) else MAX_DOUBLE


class AlertFormatter:
    """Formats a batch's alerts as JSON lines, caching what floods repeat."""

    def __init__(self, detector: str, threshold: float, value_columns: tuple[str, ...] | list[str] = ()) -> None:
        self.threshold = float(threshold)
        self._values_template = values_template(value_columns)
        self._detector_json = json.dumps(detector)
        self._label_json: dict[str | None, str] = {None: "null"}
        self._values_json: dict[tuple[float, ...], str] = {}
        self._fields_json: dict[tuple[Any, ...], str] = {}  # raw lines repeat protocol/service/flag

    def lines(self, X: np.ndarray, scores: np.ndarray, records: np.ndarray, line_numbers: np.ndarray,
              labels: list[str | None], fields: list[tuple[Any, ...]] | None = None,
              field_names: list[str] | None = None, entry_ids: list[str | None] | None = None,
              extras: list[dict[str, str] | None] | None = None) -> list[str]:
        """One JSON line per row of ``X`` (the flagged rows of a batch).

        ``fields`` (named by ``field_names``) are the record's passthrough columns; ``extras`` adds
        per-row fields (those sent beside a raw line); ``entry_ids`` names each row's broker message."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        # Floods repeat one feature vector back to back: format each run of equal rows once.
        new_run = np.ones(len(X), dtype=bool)
        new_run[1:] = np.any(X[1:] != X[:-1], axis=1)
        run_id = np.cumsum(new_run) - 1
        values_json = self._values_json
        if len(values_json) > VALUES_CACHE:
            values_json.clear()
        run_json = []
        for key in map(tuple, X[new_run].tolist()):
            vj = values_json.get(key)
            if vj is None:
                vj = values_json[key] = self._values_template % key
            run_json.append(vj)
        base_template = ENTRY_TEMPLATE if entry_ids is not None else ALERT_TEMPLATE
        template = base_template.replace("%s", now, 1).replace("%s", self._detector_json, 1).replace(
            '"threshold": %r', f'"threshold": {score_json(self.threshold)}', 1)
        label_json = self._label_json
        fields_json = self._fields_json
        if len(fields_json) >= VALUES_CACHE:
            fields_json.clear()
        names_json = [_json_value(n) + ": " for n in field_names or []]
        out = []
        for i, (score, record, line, run) in enumerate(zip(scores.tolist(), records.tolist(), line_numbers.tolist(),
                                                           run_id.tolist(), strict=True)):
            label = labels[i]
            lj = label_json.get(label)
            if lj is None:
                lj = label_json[label] = json.dumps(label)
            fj = "{}"
            if fields:
                values = fields[i]
                cached = fields_json.get(values)
                if cached is None:
                    cached = "{" + ", ".join([k + _json_value(v) for k, v in zip(names_json, values, strict=True)]) + "}"
                    if len(fields_json) < VALUES_CACHE:
                        fields_json[values] = cached
                fj = cached
            extra = extras[i] if extras is not None else None
            if extra:
                merged = dict(zip(field_names or [], fields[i] if fields else (), strict=True))
                merged.update(extra)
                fj = "{" + ", ".join([_json_value(k) + ": " + _json_value(v) for k, v in merged.items()]) + "}"
            finite = math.isfinite(score)
            if entry_ids is None:
                out.append(template % (score_json(score), "false" if finite else "true", record, line, lj, fj,
                                       run_json[run]))
            else:
                out.append(template % (score_json(score), "false" if finite else "true", record, line, lj,
                                       _json_value(entry_ids[i]), fj, run_json[run]))
        return out


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
