"""Where a stream's records come from, chosen by the input's address (:func:`open_source`).

``-`` (standard input), a file path, ``tcp://HOST:PORT`` (:mod:`.local`), ``redis://`` or
``rediss://`` (:mod:`.redis`) and ``kafka://`` (:mod:`.kafka`); every source is a
:class:`~.base.Source`. The broker modules import their client libraries only when used.
"""

from __future__ import annotations

import sys
from pathlib import Path

from anodet.streaming.sources.base import Source, SourceError
from anodet.streaming.sources.local import IDLE_TIMEOUT_S, FdSource, FileSource, TcpSource
from anodet.streaming.sources.urls import parse_broker_url, redact, scheme_of

__all__ = ["Source", "SourceError", "open_source"]


def open_source(spec: str | None, follow: bool = False, idle_timeout: float = IDLE_TIMEOUT_S,
                group: str | None = None, consumer: str | None = None, claim_idle: float | None = None) -> Source:
    """``-``/None: stdin; ``tcp://HOST:PORT``: listen for producers; ``redis://…/STREAM``, ``rediss://…``
    or ``kafka://…/TOPIC``: read in consumer group ``group``; anything else: a file path."""
    scheme = scheme_of(spec)
    if spec is not None and scheme is not None:
        url = parse_broker_url(spec)
        if not group:
            raise SourceError(f"reading {scheme} needs a consumer group: add --group NAME (processes with the same "
                              "group share the records).")
        if url.is_redis:
            from anodet.streaming.sources.redis import CLAIM_IDLE_S, RedisStreamSource

            idle = CLAIM_IDLE_S if claim_idle is None else claim_idle
            return RedisStreamSource(url, group, consumer, claim_idle=idle)
        from anodet.streaming.sources.kafka import KafkaSource

        return KafkaSource(url, group, consumer)
    if spec in (None, "-"):
        return FdSource(sys.stdin.fileno())
    if spec.startswith("tcp://"):
        host, _, port = spec[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit():
            raise SourceError(f"{redact(spec)!r} is not a TCP address; write it as tcp://127.0.0.1:9000.")
        return TcpSource(host.strip("[]"), int(port), follow, idle_timeout)
    return FileSource(Path(spec), follow)
