"""Records from a message broker: a Redis Stream read through a consumer group, or a Kafka topic.

Both are :class:`~anodet.sources.Source` objects feeding the one stream pipeline
(:class:`anodet.stream.Pipeline`); they yield :class:`~anodet.sources.Entries` (records that
arrive one per message, each with its id) instead of bytes, and :meth:`commit` acknowledges
records only once the pipeline has written their decisions (at-least-once delivery):

* **Redis** (``redis://HOST:PORT/STREAM``): ``XREADGROUP`` into a consumer group; on start the
  consumer first re-reads what it had been given but not acknowledged (a restart under the same
  ``--consumer`` name), and every ``claim_every`` seconds takes over entries another consumer
  left pending longer than ``claim_idle`` seconds (``XAUTOCLAIM``: that consumer died). ``XACK``
  after the decisions are written. Several processes in one group share the stream.
* **Kafka** (``kafka://HOST:PORT/TOPIC``, confluent-kafka): a consumer group with auto-commit
  off; offsets are committed (synchronously, by the reading thread) after the decisions of the
  records before them are written.

An entry (message) is one record: either one field per column (the model's feature columns in
any order plus passthrough fields such as an id, a timestamp or an address, as in a header CSV),
or a single field ``line`` holding a raw KDD line (other fields beside it are passed through).
A Kafka message's value is a JSON object of such fields, or the raw line itself.

The module is over 400 lines because both brokers share the message → record conversion and the
acknowledge-after-write contract, which read best next to each other.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from anodet.sources import STOP_CHECK, Entries, Source, SourceError

logger = logging.getLogger(__name__)

LINE_FIELD = b"line"
READ_COUNT = 2000
"""Entries asked for per read."""
CLAIM_IDLE_S = 60.0
"""Seconds an entry may stay pending with another consumer before it is taken over (that consumer died)."""
RECONNECT_S = 60.0
"""Seconds the Redis source keeps retrying a lost connection before it gives up (exit 1)."""
CLAIM_EVERY_S = 5.0
"""Seconds between looks for entries left pending by dead consumers."""
ALERTS_MAXLEN = 1_000_000
"""Alert streams are trimmed (approximately) to this many entries, so they cannot fill the server's memory."""

_URL = re.compile(r"^(redis|kafka)://(\[[^\]]+\]|[^:/\[\]]+):(\d{1,5})/(.+)$")


@dataclass(frozen=True)
class BrokerURL:
    """``scheme://HOST:PORT/NAME``: a Redis stream or a Kafka topic."""

    scheme: str
    host: str
    port: int
    name: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/{self.name}"


def is_broker_url(spec: str | None) -> bool:
    return bool(spec) and str(spec).startswith(("redis://", "kafka://"))


def parse_broker_url(spec: str) -> BrokerURL:
    """A :class:`BrokerURL`, or a SourceError saying how to write one."""
    match = _URL.match(spec.strip())
    if not match or not 0 < int(match.group(3)) < 65536 or "/" in match.group(4):
        scheme = spec.split("://", 1)[0] if "://" in spec else "redis"
        what = "STREAM" if scheme == "redis" else "TOPIC"
        raise SourceError(f"{spec!r} is not a broker address; write it as {scheme}://HOST:PORT/{what}, "
                          f"for example {scheme}://127.0.0.1:{6379 if scheme == 'redis' else 9092}/flows.")
    scheme, host, port, name = match.groups()
    return BrokerURL(scheme, host.strip("[]"), int(port), name)


def default_consumer() -> str:
    """A consumer name unique to this process (a restart gets a new one; give ``--consumer`` to keep it)."""
    import os

    return f"{socket.gethostname()}-{os.getpid()}"


# ---------------------------------------------------------------------------------------------
# Entries (field → value mappings) into CSV lines


def _quote(value: bytes) -> bytes:
    return b'"' + value.replace(b'"', b'""') + b'"'


def csv_line(values: Sequence[bytes]) -> bytes:
    """The values as one CSV line, quoting only those that need it."""
    line = b",".join(values)
    if line.count(b",") == len(values) - 1 and b'"' not in line:
        return line
    return b",".join(_quote(v) if (b"," in v or b'"' in v) else v for v in values)


_SPECIAL = re.compile(rb'["\r\n]')
BREAK_REASON = "a field holds a line break; send one record per entry, each value on one line"
LINE_ALONE_REASON = "the entry's line field is empty"


DELETED_REASON = "the entry has no fields (it was deleted from the stream before it was read)"


def to_entries(messages: Sequence[tuple[str, Any]]) -> list[Entries]:
    """Group consecutive messages of the same shape into :class:`Entries` the pipeline can parse.

    A message is (id, fields): a dict, or the flat ``[name, value, name, value, …]`` list Redis
    sends. Fields with a ``line`` field are raw KDD lines (other fields are kept as passthrough
    ``extras``); otherwise the field names make a header line and the values a CSV line. A message
    without fields (deleted before it was read) or with a line break in a value is an entry the
    pipeline rejects (and acknowledges), with the reason.
    """
    out: list[Entries] = []
    t_read = time.perf_counter()
    current: Entries | None = None
    current_key: Any = None
    extras: dict[str, str] | None = None
    header_names: list[bytes] | None = None  # field names of the current run of header-style entries
    special = _SPECIAL.search
    for entry_id, fields in messages:
        if isinstance(fields, dict):
            fields = [x for pair in fields.items() for x in pair]
        if header_names is not None and fields and current is not None:
            # Fast path: the same fields as the entry before (a producer sends one shape).
            values = fields[1::2]
            line = b",".join(values)
            if fields[0::2] == header_names and line.count(b",") == len(values) - 1 and not special(line):
                current.lines.append(line)
                current.ids.append(entry_id)
                continue
        header_names = None
        if not fields:
            key: Any = ("reject", DELETED_REASON)
            line = b""
        else:
            names = fields[0::2]
            if LINE_FIELD in names:
                values = dict(zip(names, fields[1::2], strict=False))
                line = values.pop(LINE_FIELD).strip()
                extras = ({k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in values.items()}
                          if values else None)
                reason = BREAK_REASON if (b"\n" in line or b"\r" in line) else None if line else LINE_ALONE_REASON
                key = ("reject", reason) if reason else ("line",)
            else:
                values = fields[1::2]
                line = b",".join(values)
                if line.count(b",") != len(values) - 1 or b'"' in line:
                    line = csv_line(values)
                key = tuple(names)
                header_names = names
                if b"\n" in line or b"\r" in line:
                    header_names = None
                    key = ("reject", BREAK_REASON)
                    line = line.replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        if current is None or key != current_key:
            if key[0] == "reject":
                current = Entries([], [], reject_reason=key[1], t_read=t_read)
            elif key[0] == "line":
                current = Entries([], [], extras=[], t_read=t_read)
            else:
                current = Entries([], [], header=csv_line(list(key)), t_read=t_read)
            current_key = key
            out.append(current)
        current.lines.append(line)
        current.ids.append(entry_id)
        if current.extras is not None:
            current.extras.append(extras)
    for entries in out:
        if entries.extras is not None and not any(entries.extras):
            entries.extras = None
    return out


# ---------------------------------------------------------------------------------------------
# Redis


def redis_client(url: BrokerURL, timeout: float = 10.0) -> Any:
    """A redis-py client for ``url`` (imported here: only broker sources need it)."""
    import redis

    return redis.Redis(host=url.host, port=url.port, socket_connect_timeout=timeout, socket_timeout=timeout,
                       health_check_interval=30, protocol=2)


def _redis_problem(url: BrokerURL, exc: Exception) -> SourceError:
    return SourceError(f"cannot talk to Redis at {url.host}:{url.port}: {exc}. Check that redis-server runs "
                       "there and the address is right.")


class RedisStreamSource(Source):
    """A Redis Stream read through a consumer group, acknowledged (XACK) after each decision is written."""

    def __init__(self, url: BrokerURL, group: str, consumer: str | None = None, count: int = READ_COUNT,
                 claim_idle: float = CLAIM_IDLE_S, claim_every: float = CLAIM_EVERY_S) -> None:
        import redis

        self.url, self.group = url, group
        self.consumer = consumer or default_consumer()
        self.count, self.claim_idle, self.claim_every = count, claim_idle, claim_every
        self.description = f"{url} (group {group}, consumer {self.consumer})"
        self.redis = redis_client(url)
        self._conn: Any = None
        self.acked = self.redelivered = self.claimed = 0
        try:
            self.redis.xgroup_create(url.name, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise _redis_problem(url, exc) from None
        except redis.RedisError as exc:
            raise _redis_problem(url, exc) from None

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
        try:
            reply = self._conn.read_response()
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
            yield from to_entries(messages)
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
                yield from to_entries(messages)
            if cursor == "0-0":
                return

    def chunks(self, stop: threading.Event) -> Iterator[bytes | object]:
        import redis

        yield from self._own_pending(stop)
        next_claim = 0.0
        block_ms = max(int(STOP_CHECK * 1000), 1)
        failing_since: float | None = None
        asked = False  # a read is under way: the next batch is prepared while this one is converted
        while True:
            try:
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
                yield from to_entries(messages)

    def commit(self, ids: list[str]) -> None:
        """XACK: the decisions of these entries are written."""
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
        return {"acked": self.acked, "redelivered": self.redelivered, "claimed": self.claimed}

    def close(self) -> None:
        if self._conn is not None:
            self.redis.connection_pool.release(self._conn)
            self._conn = None
        self.redis.close()


class RedisAlertSink:
    """Adds each alert (its JSON line, field ``alert``) to a Redis Stream, in one round trip per batch."""

    def __init__(self, url: BrokerURL, maxlen: int | None = ALERTS_MAXLEN) -> None:
        import redis

        self.url, self.maxlen = url, maxlen
        self.description = str(url)
        self.redis = redis_client(url)
        self._pipe = self.redis.pipeline(transaction=False)
        self._queued = 0
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise _redis_problem(url, exc) from None

    def send(self, lines: list[str]) -> None:
        for line in lines:
            self._pipe.xadd(self.url.name, {"alert": line.rstrip("\n")}, maxlen=self.maxlen,
                            approximate=True)
        self._queued += len(lines)

    def flush(self) -> None:
        if self._queued:
            self._pipe.execute()
            self._queued = 0

    def close(self) -> None:
        self.flush()
        self.redis.close()


# ---------------------------------------------------------------------------------------------
# Kafka


def kafka_message_fields(value: bytes | None) -> dict[bytes, bytes] | None:
    """A Kafka message value as entry fields: a JSON object's members, or the raw line (field ``line``)."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith(b"{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return {LINE_FIELD: text}
        if isinstance(obj, dict):
            return {str(k).encode(): (b"" if v is None else str(v).encode()) for k, v in obj.items()}
    return {LINE_FIELD: text}


def kafka_id(topic: str, partition: int, offset: int) -> str:
    return f"{topic}:{partition}:{offset}"


def kafka_offsets_to_commit(ids: Sequence[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) → the offset to commit (one past the highest decided) for these message ids."""
    out: dict[tuple[str, int], int] = {}
    for entry_id in ids:
        topic, partition, offset = entry_id.rsplit(":", 2)
        key = (topic, int(partition))
        out[key] = max(out.get(key, -1), int(offset) + 1)
    return out


class KafkaSource(Source):
    """A Kafka topic read in a consumer group; offsets committed only after the decisions are written.

    The pipeline decides records in the order they were read, so committing one past the highest
    decided offset of each partition never skips an undecided record.
    """

    def __init__(self, url: BrokerURL, group: str, consumer: str | None = None, count: int = READ_COUNT) -> None:
        try:
            from confluent_kafka import Consumer, KafkaException
        except ImportError:
            raise SourceError("reading Kafka needs confluent-kafka: pip install -r requirements.txt") from None
        self.url, self.group, self.count = url, group, count
        self.consumer_name = consumer or default_consumer()
        self.description = f"{url} (group {group}, consumer {self.consumer_name})"
        config = {"bootstrap.servers": f"{url.host}:{url.port}", "group.id": group, "client.id": self.consumer_name,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": False}
        if consumer:
            config["group.instance.id"] = consumer  # static membership: a quick restart keeps its partitions
        try:
            self.consumer = Consumer(config)
            self.consumer.subscribe([url.name])
        except KafkaException as exc:
            raise SourceError(f"cannot read Kafka at {url.host}:{url.port}: {exc}.") from None
        self._to_commit: dict[tuple[str, int], int] = {}
        self._commit_lock = threading.Lock()
        self.acked = 0

    def chunks(self, stop: threading.Event) -> Iterator[bytes | object]:
        while not stop.is_set():
            self._commit_pending()
            batch = self.consumer.consume(num_messages=self.count, timeout=STOP_CHECK)
            messages = []
            for msg in batch:
                if msg.error():
                    logger.warning("Kafka: %s", msg.error())
                    continue
                messages.append((kafka_id(str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0)),
                                 kafka_message_fields(msg.value())))
            if messages:
                yield from to_entries(messages)

    def commit(self, ids: list[str]) -> None:
        """Note the offsets to commit; the reading thread commits them (a consumer is used by one thread)."""
        offsets = kafka_offsets_to_commit(ids)
        with self._commit_lock:
            for key, offset in offsets.items():
                self._to_commit[key] = max(self._to_commit.get(key, -1), offset)
            self.acked += len(ids)

    def _commit_pending(self) -> None:
        from confluent_kafka import TopicPartition

        with self._commit_lock:
            pending, self._to_commit = self._to_commit, {}
        if pending:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in pending.items()],
                                 asynchronous=False)

    def counters(self) -> dict[str, int]:
        return {"acked": self.acked, "redelivered": 0, "claimed": 0}

    def close(self) -> None:
        try:
            self._commit_pending()
        finally:
            self.consumer.close()


def open_broker(spec: str, group: str | None, consumer: str | None = None, claim_idle: float = CLAIM_IDLE_S) -> Source:
    """The broker source ``spec`` names (``redis://…`` or ``kafka://…``), reading in consumer group ``group``."""
    url = parse_broker_url(spec)
    if not group:
        raise SourceError(f"reading {url.scheme} needs a consumer group: add --group NAME (processes with the same "
                          "group share the records).")
    if url.scheme == "redis":
        return RedisStreamSource(url, group, consumer, claim_idle=claim_idle)
    return KafkaSource(url, group, consumer)
