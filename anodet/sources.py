"""Where a stream's records come from: standard input, a (followed) file, a TCP listener, or a broker.

Each byte source yields byte chunks, and :data:`NEW_SEGMENT` whenever a new independent stream
begins (a new TCP connection, a truncated or replaced file), so the format is detected afresh.
Broker sources (:mod:`anodet.brokers`: Redis Streams, Kafka) yield :class:`Entries` instead, one
record per message with its id, and acknowledge records through :meth:`Source.commit`.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

READ_SIZE = 1 << 20
POLL_INTERVAL = 0.01
"""Seconds between checks for new data at the end of a followed file."""
STOP_CHECK = 0.1
"""Seconds a blocked read waits before looking at the stop flag again."""
IDLE_TIMEOUT_S = 300.0
"""Seconds a TCP producer may stay silent before its connection is closed (so one idle client
cannot hold the listener)."""

NEW_SEGMENT = object()


@dataclass
class Entries:
    """Records that arrived one per message (Redis Stream entries, Kafka messages), all of one shape.

    ``lines`` holds one CSV line per record: values in the order ``header`` names their columns,
    or raw KDD lines when ``header`` is None. ``ids`` are the messages' ids (acknowledged once
    decided, and carried by alerts); ``extras`` are fields sent beside a raw line (passthrough).
    When ``reject_reason`` is set, no line is a record: each is rejected with that reason.
    """

    lines: list[bytes]
    ids: list[str]
    header: bytes | None = None
    extras: list[dict[str, str] | None] | None = None
    reject_reason: str | None = None
    t_read: float = field(default_factory=time.perf_counter)


def _readable(fd: int, timeout: float) -> bool:
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    except InterruptedError:
        return False
    return bool(ready)


class Source:
    """Where bytes come from. :meth:`chunks` yields bytes, and :data:`NEW_SEGMENT` whenever a new
    independent stream begins (a new TCP connection, a truncated or replaced file), so the
    format is detected afresh. It returns at the end of input, or soon after ``stop`` is set."""

    description = "input"

    def chunks(self, stop: threading.Event) -> Iterator[bytes | object]:
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
        """Release what :meth:`open` or :meth:`chunks` acquired."""


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

    def __init__(self, host: str, port: int, follow: bool = False, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self.follow = follow
        self.idle_timeout = idle_timeout
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
                last = time.monotonic()
                while not stop.is_set():
                    if not _readable(conn.fileno(), STOP_CHECK):
                        if time.monotonic() - last > self.idle_timeout:
                            logger.warning("closing a TCP connection silent for %.0f s", self.idle_timeout)
                            break
                        continue
                    last = time.monotonic()
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


def open_source(spec: str | None, follow: bool = False, idle_timeout: float = IDLE_TIMEOUT_S,
                group: str | None = None, consumer: str | None = None, claim_idle: float | None = None) -> Source:
    """``-``/None: stdin; ``tcp://HOST:PORT``: listen for a producer; ``redis://HOST:PORT/STREAM`` or
    ``kafka://HOST:PORT/TOPIC``: read in consumer group ``group``; anything else: a file path."""
    if spec is not None and spec.startswith(("redis://", "kafka://")):
        from anodet import brokers

        return brokers.open_broker(spec, group, consumer,
                                   brokers.CLAIM_IDLE_S if claim_idle is None else claim_idle)
    if spec in (None, "-"):
        return FdSource(sys.stdin.fileno())
    if spec.startswith("tcp://"):
        host, _, port = spec[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit():
            raise SourceError(f"{spec!r} is not a TCP address; write it as tcp://127.0.0.1:9000.")
        return TcpSource(host, int(port), follow, idle_timeout)
    return FileSource(Path(spec), follow)
