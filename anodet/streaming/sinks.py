"""Where a stream's decisions go besides the pipeline: the alert log and rejects file (JSON lines),
a webhook, a Redis alert stream, and the dead-letter stream of entries that could not be decided.

Writes to Redis are retried with back-off: a lost connection (Redis restarting) until it answers
again, for :data:`~anodet.streaming.sources.redis.RECONNECT_S` seconds; an alert Redis refuses (its
memory full, the alert over the server's size limit) a few times, then it is reported to the
pipeline, which sets its entry aside in the dead-letter stream instead of failing on it again and
again. A log left with a torn last line (the process was killed mid-write) is repaired when it is
opened again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from anodet.streaming.sources.redis import RECONNECT_S, redis_client, redis_problem
from anodet.streaming.sources.urls import BrokerURL

if TYPE_CHECKING:
    from anodet.streaming.stats import Stats

logger = logging.getLogger(__name__)

ALERTS_MAXLEN = 1_000_000
"""Alert and dead-letter streams are trimmed (approximately) to this many entries, so they cannot
fill the server's memory."""
WRITE_ATTEMPTS = 3
"""Times an entry Redis refuses is tried before it is reported as refused."""
DEAD_LETTER_SUFFIX = ":dead"
"""The default dead-letter stream of a Redis source is its stream's name with this suffix."""


class AlertSink(Protocol):
    """Somewhere else alerts go (:class:`RedisAlertSink`), written before records are acknowledged."""

    description: str

    def send(self, lines: list[str]) -> None: ...

    def flush(self) -> list[tuple[int, str]] | None:
        """Write what was sent; (position since the last flush, reason) of each alert refused."""

    def close(self) -> None: ...


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



class _RedisStream:
    """Adds entries to one Redis Stream in one round trip per batch, retrying as the module says."""

    def __init__(self, url: BrokerURL, maxlen: int | None, retry_for: float = RECONNECT_S,
                 attempts: int = WRITE_ATTEMPTS, backoff: float = 0.25) -> None:
        import redis

        self.url, self.maxlen = url, maxlen
        self.retry_for, self.attempts, self.backoff = retry_for, attempts, backoff
        self.description = str(url)
        self.redis = redis_client(url, retries=False)  # resending is decided here, never behind our back
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise redis_problem(url, exc) from None
        self.max_value = self._max_value()

    def _max_value(self) -> int:
        """The server's limit on one value (``proto-max-bulk-len``): a bigger one would make it close the
        connection mid-batch, so such an entry is refused here instead of sent."""
        import redis

        try:
            found = self.redis.config_get("proto-max-bulk-len")
            return int(next(iter(found.values())))
        except (redis.RedisError, StopIteration, ValueError):  # CONFIG not allowed: Redis's default
            return 512 << 20

    def _too_big(self, fields: dict[str, str]) -> str | None:
        limit = self.max_value
        for value in fields.values():
            if len(value) * 4 > limit and len(value.encode()) > limit:
                return f"it is over the server's size limit for one value (proto-max-bulk-len, {limit:,} bytes)"
        return None

    def _answers(self) -> bool:
        try:
            return bool(self.redis.ping())
        except Exception:
            return False

    def _xadd(self, target: Any, fields: dict[str, str]) -> Any:
        return target.xadd(self.url.name, fields, maxlen=self.maxlen or None, approximate=True)

    def _write_once(self, entries: list[dict[str, str]]) -> list[str | None]:
        """Each entry's refusal (None: added). A lost connection is retried until Redis answers again;
        when it answers but the batch broke the connection (an entry over the server's size limit
        closes it), the entries are added one by one so that only the guilty one is refused."""
        import redis

        refused = [self._too_big(fields) for fields in entries]
        if any(refused):
            sent = iter(self._write_once([f for f, r in zip(entries, refused, strict=True) if r is None]))
            return [r if r is not None else next(sent) for r in refused]
        deadline = time.monotonic() + self.retry_for
        wait = 0.5
        done: list[str | None] = []
        one_by_one = False
        while len(done) < len(entries):
            rest = entries[len(done):]
            try:
                if one_by_one:
                    for fields in rest:
                        try:
                            self._xadd(self.redis, fields)
                            done.append(None)
                        except redis.ResponseError as exc:
                            done.append(str(exc))
                        except (redis.ConnectionError, redis.TimeoutError) as exc:
                            if not self._answers():
                                raise
                            done.append(f"Redis closed the connection on this entry ({exc}); it may be over the "
                                        "server's size limit (proto-max-bulk-len)")
                    continue
                pipe = self.redis.pipeline(transaction=False)
                for fields in rest:
                    self._xadd(pipe, fields)
                done += [str(r) if isinstance(r, Exception) else None for r in pipe.execute(raise_on_error=False)]
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self._answers():  # the limit may have been lowered since: added again, some entries twice
                    self.max_value = self._max_value()
                    one_by_one = True
                    continue
                if time.monotonic() > deadline:
                    raise
                logger.warning("Redis at %s:%d: %s; retrying in %.1f s", self.url.host, self.url.port, exc, wait)
                time.sleep(wait)
                wait = min(wait * 2, 8.0)
        return done

    def write(self, entries: list[dict[str, str]]) -> list[tuple[int, str]]:
        """Add ``entries``; (position, reason) of those still refused after :data:`WRITE_ATTEMPTS` tries."""
        todo = list(range(len(entries)))
        refused: dict[int, str] = {}
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            results = self._write_once([entries[i] for i in todo])
            refused = {i: r for i, r in zip(todo, results, strict=True) if r is not None}
            todo = list(refused)
            if not todo:
                return []
            logger.warning("%s refused %d entr%s (%s)%s", self.url, len(todo), "y" if len(todo) == 1 else "ies",
                           next(iter(refused.values())), "; retrying" if attempt + 1 < self.attempts else "")
        return sorted(refused.items())

    def close(self) -> None:
        self.redis.close()


class RedisAlertSink(_RedisStream):
    """Adds each alert (its JSON line, field ``alert``) to a Redis Stream, in one round trip per batch."""

    def __init__(self, url: BrokerURL, maxlen: int | None = ALERTS_MAXLEN, **retry: Any) -> None:
        super().__init__(url, maxlen, **retry)
        self._lines: list[str] = []

    def send(self, lines: list[str]) -> None:
        self._lines.extend(lines)

    def flush(self) -> list[tuple[int, str]]:
        lines, self._lines = self._lines, []
        if not lines:
            return []
        return self.write([{"alert": line.rstrip("\n")} for line in lines])

    def close(self) -> None:
        try:
            refused = self.flush()
            if refused:
                logger.warning("%s refused %d alert(s) at close (%s); they are in the alert log", self.url,
                               len(refused), refused[0][1])
        finally:
            super().close()


class DeadLetterStream(_RedisStream):
    """The Redis Stream where entries that could not be decided are set aside, each with its reason
    (fields ``entry``, ``stream``, ``group``, ``reason``, ``deliveries``, ``header``, ``line``,
    ``fields``), so the consumer goes on and an operator can look at them and add them again."""

    def add(self, records: list[dict[str, str]]) -> list[tuple[int, str]]:
        """Add ``records``; (position, reason) of those Redis refused (the caller keeps them elsewhere)."""
        return self.write(records) if records else []


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
