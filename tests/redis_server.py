"""A throwaway redis-server on 127.0.0.1 for the broker tests and benchmark (Debian's binary)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence; :meth:`stop` ends it, :meth:`restart`
    starts it again on the same port (empty: without persistence nothing survives).

    ``extra`` are further server options (``--requirepass``, ``--proto-max-bulk-len``, TLS);
    ``client_options`` are what the test's own client needs to talk to it (a password, TLS)."""

    def __init__(self, workdir: Path, *extra: str, client_options: dict | None = None, port: int | None = None,
                 tls: bool = False) -> None:
        import redis

        self.workdir, self.extra, self.tls = workdir, extra, tls
        self.port = port or free_port()
        self.client = redis.Redis(host="127.0.0.1", port=self.port, **(client_options or {}))
        self._start()

    def _start(self) -> None:
        import redis

        ports = (["--port", "0", "--tls-port", str(self.port)] if self.tls else ["--port", str(self.port)])
        self.proc = subprocess.Popen([REDIS_SERVER, *ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                      "--dir", str(self.workdir), *self.extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def url(self, name: str) -> str:
        return f"redis://127.0.0.1:{self.port}/{name}"

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server (its data is lost), wait ``down_for`` seconds, start it on the same port."""
        self.stop()
        time.sleep(down_for)
        self._start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
