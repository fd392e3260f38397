"""``python -m anodet stream``: score records as they arrive and raise alerts."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from anodet.evaluation.thresholds import ThresholdError, resolve_thresholds
from anodet.streaming.pipeline import Detection, Outputs, Pipeline, StreamConfig
from anodet.streaming.sinks import DEAD_LETTER_SUFFIX, DeadLetterStream, RedisAlertSink, WebhookSender, open_out
from anodet.streaming.sources import SourceError, open_source
from anodet.streaming.sources.local import TcpSource
from anodet.streaming.sources.urls import is_broker_url, is_redis_url, parse_broker_url
from anodet.streaming.stats import Stats


def _install_signals(pipeline: Pipeline) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    hits = {"n": 0}

    def handler(signum: int, _frame: Any) -> None:
        hits["n"] += 1
        if hits["n"] > 1:
            print("stream: second signal, exiting without draining", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        print(f"stream: {signal.Signals(signum).name}, draining and stopping…", file=sys.stderr, flush=True)
        pipeline.stop()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for signum, previous in old.items():
            signal.signal(signum, previous)

    return restore


def _alert_destinations(values: list[str]) -> tuple[list[str], list[str]]:
    """(JSON-lines logs, redis:// alert streams) named by ``--alerts``; at most one log."""
    streams = [v for v in values if is_redis_url(v)]
    files = [v for v in values if not is_redis_url(v)]
    if any(is_broker_url(v) for v in files):
        raise SourceError("alerts can go to a file or a Redis Stream (redis://HOST:PORT/STREAM); writing them to "
                          "Kafka is not supported.")
    if len(files) > 1:
        raise SourceError(f"--alerts names {len(files)} files ({', '.join(files)}); give one alert log (and any "
                          "number of redis:// streams).")
    for url in streams:
        parse_broker_url(url)
    return files, streams


def _dead_letter(args: argparse.Namespace) -> DeadLetterStream | None:
    """Where entries that cannot be decided go: ``--dead-letter``, else for a Redis source its stream's
    name with :data:`DEAD_LETTER_SUFFIX` on the same server; None (the rejects) otherwise."""
    if args.dead_letter:
        if not is_redis_url(args.dead_letter):
            raise SourceError("--dead-letter names a Redis Stream: redis://HOST:PORT/STREAM.")
        return DeadLetterStream(parse_broker_url(args.dead_letter), args.alerts_maxlen or None)
    if is_redis_url(args.input):
        url = parse_broker_url(args.input)
        return DeadLetterStream(url.with_name(url.name + DEAD_LETTER_SUFFIX), args.alerts_maxlen or None)
    return None


def run(args: argparse.Namespace) -> int:
    """Returns 0 after a clean end or stop, 2 on unusable input or options, 1 if the stream broke."""
    from anodet.commands.score import _thresholds_file, command_store
    from anodet.scoring.core import plan

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.batch_size < 1 or args.max_wait < 0:
        say("error: --batch-size must be at least 1 and --max-wait at least 0.")
        return 2
    try:
        store = command_store(args)
        name = args.detector
        store.entry(name)
        overrides = _thresholds_file(args, store.names)
        threshold = resolve_thresholds(store, [name], args.threshold, args.label_view, overrides)[name]
        plan(store, [name])  # load the detector (and its members) before reading anything
        files, streams = _alert_destinations(args.alerts or [])
        sinks = [RedisAlertSink(parse_broker_url(url), args.alerts_maxlen or None) for url in streams]
        dead_letter = _dead_letter(args)
        source = open_source(args.input, args.follow, args.idle_timeout, args.group, args.consumer, args.claim_idle)
    except (SourceError, ThresholdError, ValueError) as exc:  # ValueError: a DatasetError, a --dataset clash
        say(f"error: {exc}")
        return 2
    if isinstance(source, TcpSource):
        say(f"stream: listening on {source.description}")
    alerts = open_out(files[0] if files else None, sys.stdout)
    rejects = open_out(args.rejects, sys.stdout) if args.rejects else None
    stats = Stats()
    webhook = (WebhookSender(args.webhook, stats, retries=args.webhook_retries, timeout=args.webhook_timeout,
                             warn=say) if args.webhook else None)
    config = StreamConfig(batch_size=args.batch_size, max_wait=args.max_wait, status_every=args.status_every,
                          max_deliveries=args.max_deliveries)
    detection = Detection.from_store(store, name, threshold)
    pipeline = Pipeline(source, detection, Outputs(alerts, rejects, webhook, args.stats, sinks, dead_letter), config,
                        status=say, stats=stats)
    metrics = None
    if args.metrics_port is not None:
        from anodet.streaming.prometheus import MetricsServer

        try:
            metrics = MetricsServer(pipeline, args.metrics_port, args.metrics_addr)
        except OSError as exc:
            say(f"error: cannot serve metrics on {args.metrics_addr}:{args.metrics_port}: {exc.strerror or exc}. "
                "Choose a free port with --metrics-port.")
            source.close()
            return 2
        say(f"stream: metrics on http://{args.metrics_addr}:{metrics.port}/metrics")
    restore = _install_signals(pipeline)
    say(f"stream: {name} on {source.description}, alert when score >= {threshold:.6g}")
    try:
        pipeline.run()
    finally:
        restore()
        for sink in (alerts, rejects):
            if sink and sink not in (sys.stdout, sys.stderr):
                sink.close()
        for stream_sink in sinks:
            stream_sink.close()
        if dead_letter:
            dead_letter.close()
        if metrics:
            metrics.close()
    counters = source.counters()
    if counters:
        say(f"stream: {counters['acked']:,} acknowledged, {counters['redelivered']:,} redelivered "
            f"(read again after a consumer stopped before acknowledging them)")
    if pipeline.error:
        say(f"error: the stream stopped: {type(pipeline.error).__name__}: {pipeline.error}")
        return 1
    return 0
