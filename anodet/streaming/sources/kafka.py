"""A Kafka topic read in a consumer group (confluent-kafka), offsets committed after the decisions.

Auto-commit is off; offsets are committed (synchronously, by the reading thread) after the
decisions of the records before them are written (at-least-once). A message's value is a JSON
object of fields, or the raw line itself (:mod:`~anodet.streaming.sources.messages`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence

from anodet.reader.limits import MAX_LINE_BYTES
from anodet.streaming.sources.base import STOP_CHECK, Entries, Source, SourceError
from anodet.streaming.sources.messages import LINE_FIELD, to_entries
from anodet.streaming.sources.redis import READ_COUNT, default_consumer
from anodet.streaming.sources.urls import BrokerURL

logger = logging.getLogger(__name__)


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

    def __init__(self, url: BrokerURL, group: str, consumer: str | None = None, count: int = READ_COUNT,
                 max_entry_bytes: int = MAX_LINE_BYTES) -> None:
        try:
            from confluent_kafka import Consumer, KafkaException
        except ImportError:
            raise SourceError("reading Kafka needs confluent-kafka: pip install -r requirements.txt") from None
        self.url, self.group, self.count = url, group, count
        self.max_entry_bytes = max_entry_bytes
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

    def chunks(self, stop: threading.Event) -> Iterator[Entries]:
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
                yield from to_entries(messages, self.max_entry_bytes)

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
