"""A Redis Stream read through a consumer group, each entry acknowledged after its decision is written.

``XREADGROUP`` into a consumer group; on start the consumer first re-reads what it had been given
but not acknowledged (a restart under the same ``--consumer`` name), and every ``claim_every``
seconds takes over entries another consumer left pending longer than ``claim_idle`` seconds
(``XAUTOCLAIM``: that consumer died). ``XACK`` follows the written decisions (at-least-once).
Entries read again carry their delivery count, so the pipeline can set aside an entry that keeps
coming back (a poison message) in the dead-letter stream instead of failing on it for ever.

When Redis restarts without persistence the group is gone (``NOGROUP``): it is created again,
reading from the start of the stream (id ``0``), which then holds only entries added since the
restart, so none is skipped. A lost connection is retried for :data:`RECONNECT_S` seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from anodet.reader.limits import MAX_LINE_BYTES
from anodet.streaming.sources.base import STOP_CHECK, Entries, Source, SourceError
from anodet.streaming.sources.messages import to_entries
from anodet.streaming.sources.urls import CA_CERT_ENV, BrokerURL

logger = logging.getLogger(__name__)

READ_COUNT = 2000
"""Most entries asked for per read."""
FIRST_COUNT = 64
"""Entries asked for by the first read; the count doubles while entries are small."""
READ_BUDGET_BYTES = 64 << 20
"""Bytes one read should bring at most: after large entries the count shrinks to fit."""
CLAIM_IDLE_S = 60.0
"""Seconds an entry may stay pending with another consumer before it is taken over (that consumer died)."""
RECONNECT_S = 60.0
"""Seconds a lost connection is retried before the consumer gives up (exit 1)."""
CLAIM_EVERY_S = 5.0
"""Seconds between looks for entries left pending by dead consumers."""
GROUP_START = "0"
"""Where a (re)created consumer group starts: the first entry of the stream."""


def default_consumer() -> str:
    """A consumer name unique to this process (a restart gets a new one; give ``--consumer`` to keep it)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def redis_client(url: BrokerURL, timeout: float = 10.0, retries: bool = True) -> Any:
    """A redis-py client for ``url``: its credentials, TLS for ``rediss://`` (imported here: only
    broker users need redis-py). ``retries=False``: no silent resending (the caller retries itself)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: dict[str, Any] = {}
    if url.tls:
        options.update(ssl=True, ssl_ca_certs=os.environ.get(CA_CERT_ENV) or None)
    if not retries:
        options["retry"] = Retry(NoBackoff(), 0)
    return redis.Redis(host=url.host, port=url.port, username=url.username, password=url.password,
                       socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30, protocol=2,
                       **options)


def redis_problem(url: BrokerURL, exc: Exception) -> SourceError:
    """One sentence for a server that cannot be used (the URL shown without its password)."""
    import redis

    if isinstance(exc, redis.AuthenticationError) or "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
        return SourceError(f"Redis at {url.host}:{url.port} refused the credentials ({exc}). Put the password in "
                           "the URL (redis://:PASSWORD@HOST:PORT/STREAM) or in $ANODET_REDIS_PASSWORD.")
    return SourceError(f"cannot talk to Redis at {url.host}:{url.port}: {exc}. Check that redis-server runs "
                       "there and the address is right (rediss:// for TLS).")


def _is_nogroup(exc: Exception) -> bool:
    return str(exc).startswith("NOGROUP")


class RedisStreamSource(Source):
    """A Redis Stream read through a consumer group, acknowledged (XACK) after each decision is written."""

    def __init__(self, url: BrokerURL, group: str, consumer: str | None = None, count: int = READ_COUNT,
                 claim_idle: float = CLAIM_IDLE_S, claim_every: float = CLAIM_EVERY_S,
                 max_entry_bytes: int = MAX_LINE_BYTES) -> None:
        import redis

        self.url, self.group = url, group
        self.consumer = consumer or default_consumer()
        self.max_count, self.claim_idle, self.claim_every = count, claim_idle, claim_every
        self.count = min(FIRST_COUNT, count)
        self.max_entry_bytes = max_entry_bytes
        self.description = f"{url} (group {group}, consumer {self.consumer})"
        self.redis = redis_client(url)
        self._conn: Any = None
        self.acked = self.redelivered = self.claimed = self.regrouped = 0
        try:
            self._create_group()
        except redis.RedisError as exc:
            raise redis_problem(url, exc) from None

    def _create_group(self) -> None:
        import redis

        try:
            self.redis.xgroup_create(self.url.name, self.group, id=GROUP_START, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _recreate_group(self) -> None:
        self._create_group()
        self.regrouped += 1
        logger.warning("the consumer group %s of %s was gone (Redis restarted without persistence?); created it "
                       "again, reading from the start of the stream (id %s)", self.group, self.url.name, GROUP_START)

    def _entries(self, messages: list[tuple[str, Any]], redelivered: bool = False) -> list[Entries]:
        largest = [0]
        out = to_entries(messages, self.max_entry_bytes, largest)
        if largest[0] * self.count > READ_BUDGET_BYTES:
            self.count = max(1, READ_BUDGET_BYTES // max(largest[0], 1))
        elif len(messages) >= self.count:
            self.count = min(self.max_count, self.count * 2)
        if redelivered:
            self._add_deliveries(out)
        return out

    def _add_deliveries(self, batches: list[Entries]) -> None:
        """Each redelivered entry's delivery count (XPENDING), so poison entries can be set aside."""
        ids = [i for e in batches for i in e.ids]
        if not ids:
            return
        counts: dict[str, int] = {}
        for item in self.redis.xpending_range(self.url.name, self.group, min=min(ids, key=_id_key),
                                              max=max(ids, key=_id_key), count=len(ids),
                                              consumername=self.consumer):
            mid = item["message_id"]
            counts[mid.decode() if isinstance(mid, bytes) else str(mid)] = int(item["times_delivered"])
        for e in batches:
            e.deliveries = [counts.get(i, 1) for i in e.ids]

    def _send(self, start: str, block_ms: int | None) -> None:
        """Ask for entries (XREADGROUP) on the reader's own connection; :meth:`_receive` reads them."""
        args: list[Any] = ["XREADGROUP", "GROUP", self.group, self.consumer, "COUNT", self.count]
        if block_ms is not None:
            args += ["BLOCK", block_ms]
        args += ["STREAMS", self.url.name, start]
        if self._conn is None:
            self._conn = self.redis.connection_pool.get_connection()
        try:
            self._conn.send_command(*args)
        except BaseException:
            self._conn.disconnect()
            raise

    def _receive(self) -> list[tuple[str, list[bytes] | None]]:
        """The reply to :meth:`_send`, left as Redis sent it (flat field lists): redis-py's
        per-entry dicts would cost as much as the rest of the pipeline."""
        import redis

        try:
            reply = self._conn.read_response()
        except redis.ResponseError:
            raise  # an error reply (NOGROUP): the connection is fine
        except BaseException:
            self._conn.disconnect()  # a half-read reply must not be read as the next one
            raise
        if not reply:
            return []
        if isinstance(reply, dict):  # RESP3
            reply = list(reply.items())
        return [(i.decode(), f) for i, f in reply[0][1]]

    def _own_pending(self, stop: threading.Event) -> Iterator[Entries]:
        """What this consumer (this name) was given before a restart and never acknowledged."""
        last = "0"
        while not stop.is_set():
            self._send(last, None)
            messages = self._receive()
            if not messages:
                return
            self.redelivered += len(messages)
            yield from self._entries(messages, redelivered=True)
            last = messages[-1][0]

    def _claim(self, stop: threading.Event) -> Iterator[Entries]:
        """Entries idle longer than ``claim_idle`` with another consumer (it died): take them over."""
        cursor = "0-0"
        while not stop.is_set():
            reply = self.redis.xautoclaim(self.url.name, self.group, self.consumer,
                                          min_idle_time=int(self.claim_idle * 1000), start_id=cursor,
                                          count=self.count)
            cursor, messages = reply[0], reply[1]
            cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
            messages = [(i.decode(), f) for i, f in messages]
            if messages:
                self.claimed += len(messages)
                self.redelivered += len(messages)
                logger.warning("took over %d entries left pending by another consumer", len(messages))
                yield from self._entries(messages, redelivered=True)
            if cursor == "0-0":
                return

    def chunks(self, stop: threading.Event) -> Iterator[Entries]:
        import redis

        next_claim = 0.0
        block_ms = max(int(STOP_CHECK * 1000), 1)
        failing_since: float | None = None
        asked = False  # a read is under way: the next batch is prepared while this one is converted
        pending_done = False
        while True:
            try:
                if not pending_done:
                    yield from self._own_pending(stop)
                    pending_done = True
                if not asked:
                    if stop.is_set():
                        return
                    self._send(">", block_ms)
                messages = self._receive()
                asked = False
                if not stop.is_set():
                    if time.monotonic() >= next_claim:
                        yield from self._claim(stop)
                        next_claim = time.monotonic() + self.claim_every
                    self._send(">", block_ms)
                    asked = True
            except redis.ResponseError as exc:
                if not _is_nogroup(exc):
                    raise
                asked = False
                self._recreate_group()
                continue
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # Redis restarting or the network blinking: what was read stays pending and is not lost
                # (entries of a reply that never arrived are taken over after --claim-idle).
                asked = False
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > RECONNECT_S or stop.is_set():
                    raise
                logger.warning("Redis at %s:%d: %s; retrying", self.url.host, self.url.port, exc)
                stop.wait(1.0)
                continue
            failing_since = None
            if messages:
                yield from self._entries(messages)

    def commit(self, ids: list[str]) -> None:
        """XACK: the decisions of these entries are written (after a lost group there is nothing to acknowledge)."""
        import redis

        if not ids:
            return
        for start in range(0, len(ids), 10_000):
            for attempt in range(int(RECONNECT_S) + 1):
                try:
                    self.redis.xack(self.url.name, self.group, *ids[start:start + 10_000])
                    break
                except (redis.ConnectionError, redis.TimeoutError):
                    if attempt == int(RECONNECT_S):
                        raise  # unacknowledged entries stay pending: another consumer takes them over
                    time.sleep(1.0)
        self.acked += len(ids)

    def lag(self) -> dict[str, float]:
        """The group's lag (entries not yet delivered to it) and pending count (delivered, not acknowledged)."""
        out: dict[str, float] = {}
        try:
            for info in self.redis.xinfo_groups(self.url.name):
                name = info.get("name", info.get(b"name"))
                if (name.decode() if isinstance(name, bytes) else name) == self.group:
                    lag = info.get("lag")
                    out = {"pending": float(info.get("pending") or 0),
                           "lag": float("nan") if lag is None else float(lag)}
        except Exception as exc:  # a metrics scrape must not fail because Redis is briefly away
            logger.warning("cannot read the consumer group's lag: %s", exc)
        return out

    def counters(self) -> dict[str, int]:
        return {"acked": self.acked, "redelivered": self.redelivered, "claimed": self.claimed,
                "regrouped": self.regrouped}

    def close(self) -> None:
        if self._conn is not None:
            self.redis.connection_pool.release(self._conn)
            self._conn = None
        self.redis.close()


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
