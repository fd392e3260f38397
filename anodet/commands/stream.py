"""``python -m anodet stream``: score records as they arrive and raise alerts."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anodet.alerts import WebhookSender, open_out
from anodet.sources import SourceError, TcpSource, open_source
from anodet.stats import Stats
from anodet.stream import Detection, Outputs, Pipeline, StreamConfig
from anodet.thresholds import ThresholdError, resolve_thresholds


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


def run(args: argparse.Namespace) -> int:
    """Returns 0 after a clean end or stop, 2 on unusable input or options, 1 if the stream broke."""
    from anodet import scorer
    from anodet.commands.score import _thresholds_file
    from anodet.store import Store

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.batch_size < 1 or args.max_wait < 0:
        say("error: --batch-size must be at least 1 and --max-wait at least 0.")
        return 2
    try:
        store = Store.open(Path(args.store) if args.store else None)
        name = args.detector
        store.entry(name)
        overrides = _thresholds_file(args, store.names)
        threshold = resolve_thresholds(store, [name], args.threshold, args.label_view, overrides)[name]
        scorer.plan(store, [name])  # load the detector (and its members) before reading anything
        source = open_source(args.input, args.follow, args.idle_timeout)
    except (SourceError, ThresholdError) as exc:
        say(f"error: {exc}")
        return 2
    if isinstance(source, TcpSource):
        say(f"stream: listening on {source.description}")
    alerts = open_out(args.alerts, sys.stdout)
    rejects = open_out(args.rejects, sys.stdout) if args.rejects else None
    stats = Stats()
    webhook = (WebhookSender(args.webhook, stats, retries=args.webhook_retries, timeout=args.webhook_timeout,
                             warn=say) if args.webhook else None)
    config = StreamConfig(batch_size=args.batch_size, max_wait=args.max_wait, status_every=args.status_every)
    detection = Detection.from_store(store, name, threshold)
    pipeline = Pipeline(source, detection, Outputs(alerts, rejects, webhook, args.stats), config, status=say,
                        stats=stats)
    restore = _install_signals(pipeline)
    say(f"stream: {name} on {source.description}, alert when score >= {threshold:.6g}")
    try:
        pipeline.run()
    finally:
        restore()
        for sink in (alerts, rejects):
            if sink and sink not in (sys.stdout, sys.stderr):
                sink.close()
    if pipeline.error:
        say(f"error: the stream stopped: {type(pipeline.error).__name__}: {pipeline.error}")
        return 1
    return 0
