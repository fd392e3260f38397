"""What every stream source is: the :class:`Source` interface, what it yields, and its errors.

A byte source (standard input, a file, a TCP listener) yields ``(segment, data)`` pairs: ``segment``
names an independent byte stream (one TCP connection, one generation of a rotated file), whose
format is detected on its own; empty ``data`` says the segment ended. A broker source (Redis
Streams, Kafka) yields :class:`Entries` instead, one record per message with its id, and
acknowledges records through :meth:`Source.commit` once their decisions are written.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

READ_SIZE = 1 << 20
"""Bytes asked for per read of a byte source."""
STOP_CHECK = 0.1
"""Seconds a blocked read waits before looking at the stop flag again."""


class SourceError(RuntimeError):
    """The input cannot be opened; the message says what to fix."""


@dataclass
class Entries:
    """Records that arrived one per message (Redis Stream entries, Kafka messages), all of one shape.

    ``lines`` holds one CSV line per record: values in the order ``header`` names their columns,
    or raw KDD lines when ``header`` is None. ``ids`` are the messages' ids (acknowledged once
    decided, and carried by alerts); ``extras`` are fields sent beside a raw line (passthrough).
    When ``reject_reason`` is set, no line is a record: each is rejected with that reason.
    ``notes`` (per record, optional) says why a record is scored +inf whatever its values (fail
    closed: a passthrough field that is not UTF-8). ``deliveries`` (per record, optional) counts
    how often the broker has handed the message out, this time included.
    """

    lines: list[bytes]
    ids: list[str]
    header: bytes | None = None
    extras: list[dict[str, str] | None] | None = None
    reject_reason: str | None = None
    t_read: float = field(default_factory=time.perf_counter)
    notes: list[str | None] | None = None
    deliveries: list[int] | None = None


Piece = tuple[int, bytes]
"""``(segment, data)`` from a byte source; empty ``data`` ends the segment."""


def readable(fd: int, timeout: float) -> bool:
    """Whether ``fd`` has data (or an end) within ``timeout`` seconds."""
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    except InterruptedError:
        return False
    return bool(ready)


class Source:
    """Where records come from. :meth:`chunks` yields :data:`Piece` pairs (byte sources) or
    :class:`Entries` (brokers); it returns at the end of input, or soon after ``stop`` is set."""

    description = "input"

    def chunks(self, stop: threading.Event) -> Iterator[Piece | Entries]:
        raise NotImplementedError

    def commit(self, ids: list[str]) -> None:
        """The decisions of the records with these ids are written: acknowledge them (brokers only)."""

    def lag(self) -> dict[str, float]:
        """Records waiting in the broker for this consumer (``lag``) and delivered but not yet
        acknowledged (``pending``); empty for sources without a broker."""
        return {}

    def counters(self) -> dict[str, int]:
        """Broker counters: records acknowledged, redelivered (read again after a consumer died)."""
        return {}

    def close(self) -> None:
        """Release what the source acquired."""
