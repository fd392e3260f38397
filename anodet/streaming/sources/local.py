"""Byte sources on this machine: standard input (or any pipe), a file (optionally followed as it
grows, like ``tail -F``), and a TCP listener that serves several producers at once.

Each yields ``(segment, data)`` pairs (:data:`~anodet.streaming.sources.base.Piece`): a new
segment starts whenever a new independent byte stream begins (a TCP connection, a truncated or
replaced file), so its format is detected afresh and a half line of one never joins another's.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from anodet.streaming.sources.base import READ_SIZE, STOP_CHECK, Piece, Source, SourceError, readable

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.01
"""Seconds between checks for new data at the end of a followed file."""
IDLE_TIMEOUT_S = 300.0
"""Seconds a TCP producer may stay silent before its connection is closed (a silent client holds a
connection slot, never the listener)."""
MAX_CONNECTIONS = 64
"""TCP producers served at once; further ones wait in the listen backlog until a slot frees."""


class FdSource(Source):
    """A pipe or terminal (stdin): blocking reads, woken every :data:`STOP_CHECK` to look at ``stop``."""

    def __init__(self, fd: int, description: str = "stdin") -> None:
        self.fd = fd
        self.description = description

    def chunks(self, stop: threading.Event) -> Iterator[Piece]:
        while not stop.is_set():
            if not readable(self.fd, STOP_CHECK):
                continue
            data = os.read(self.fd, READ_SIZE)
            if not data:
                return
            yield 0, data


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

    def chunks(self, stop: threading.Event) -> Iterator[Piece]:
        fh = self._fh
        assert fh is not None
        segment = 0
        while not stop.is_set():
            data = fh.read1(READ_SIZE) if hasattr(fh, "read1") else fh.read(READ_SIZE)
            if data:
                yield segment, data
                continue
            if not self.follow:
                return
            try:
                st_path = os.stat(self.path)
            except FileNotFoundError:
                st_path = None
            st_fd = os.fstat(fh.fileno())
            replaced = st_path is not None and (st_path.st_ino != st_fd.st_ino or st_path.st_dev != st_fd.st_dev)
            if replaced or st_fd.st_size < fh.tell():
                if replaced:
                    fh.close()
                    fh = self._fh = open(self.path, "rb")
                else:
                    fh.seek(0)
                yield segment, b""
                segment += 1
                continue
            stop.wait(POLL_INTERVAL)

    def close(self) -> None:
        if self._fh:
            self._fh.close()


class TcpSource(Source):
    """A TCP listener: producers connect and write lines, up to :data:`MAX_CONNECTIONS` at once, each
    read as it sends (one slow or silent producer delays nobody else). Without ``follow`` the stream
    ends when every connection made so far has closed; with it, further connections are awaited."""

    def __init__(self, host: str, port: int, follow: bool = False, idle_timeout: float = IDLE_TIMEOUT_S,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.follow = follow
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.server.bind((host, port))
        except OSError as exc:
            self.server.close()
            raise SourceError(f"cannot listen on tcp://{host}:{port}: {exc.strerror or exc}. "
                              "Choose a free port (or port 0 for any).") from None
        self.server.listen(max_connections)
        self.server.setblocking(False)
        self.host, self.port = self.server.getsockname()[:2]
        self.description = f"tcp://{self.host}:{self.port}"

    def chunks(self, stop: threading.Event) -> Iterator[Piece]:
        selector = selectors.DefaultSelector()
        selector.register(self.server, selectors.EVENT_READ, None)
        listening = True
        open_: dict[int, tuple[socket.socket, list[float]]] = {}  # segment → (connection, [last heard])
        served = 0
        try:
            while not stop.is_set():
                if not self.follow and served and not open_:
                    return
                for key, _ in selector.select(STOP_CHECK):
                    if key.data is None:  # the listener: a producer connects
                        try:
                            conn, _addr = self.server.accept()
                        except (BlockingIOError, InterruptedError):
                            continue
                        conn.setblocking(False)
                        segment = served
                        served += 1
                        open_[segment] = (conn, [time.monotonic()])
                        selector.register(conn, selectors.EVENT_READ, segment)
                        if len(open_) >= self.max_connections:
                            selector.unregister(self.server)
                            listening = False
                        continue
                    segment = key.data
                    conn, heard = open_[segment]
                    try:
                        data = conn.recv(READ_SIZE)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except ConnectionError:
                        data = b""
                    if data:
                        heard[0] = time.monotonic()
                        yield segment, data
                        continue
                    self._drop(selector, open_, segment)
                    yield segment, b""
                now = time.monotonic()
                for segment in [s for s, (_, heard) in open_.items() if now - heard[0] > self.idle_timeout]:
                    logger.warning("closing a TCP connection silent for %.0f s", self.idle_timeout)
                    self._drop(selector, open_, segment)
                    yield segment, b""
                if not listening and len(open_) < self.max_connections:
                    selector.register(self.server, selectors.EVENT_READ, None)
                    listening = True
        finally:
            for conn, _ in open_.values():
                conn.close()
            selector.close()

    @staticmethod
    def _drop(selector: selectors.BaseSelector, open_: dict[int, tuple[socket.socket, list[float]]],
              segment: int) -> None:
        conn, _ = open_.pop(segment)
        selector.unregister(conn)
        conn.close()

    def close(self) -> None:
        self.server.close()
