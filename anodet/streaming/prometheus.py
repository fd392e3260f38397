"""Prometheus metrics of a running ``stream``: ``--metrics-port N`` serves them at ``/metrics``.

Counters are read from the pipeline's own :class:`~anodet.streaming.stats.Stats` when Prometheus
scrapes, so they are exactly what the status line and the alert log say, and cost nothing per record.
Names follow Prometheus conventions (``anodet_…_total`` counters, base units, no per-record
labels); each process has its own registry, so several pipelines in one process do not clash.

============================================  =========  ==================================================
``anodet_records_read_total``                 counter    records read from the source
``anodet_records_scored_total``               counter    records scored (a decision written)
``anodet_records_rejected_total``             counter    records rejected (malformed; written to the rejects)
``anodet_alerts_total``                       counter    records that raised an alert
``anodet_records_acked_total``                counter    broker records acknowledged after their decision
``anodet_records_redelivered_total``          counter    broker records read again (a consumer died first)
``anodet_webhook_failures_total``             counter    alerts the webhook could not deliver (or dropped)
``anodet_records_dead_lettered_total``        counter    broker records set aside in the dead-letter stream
``anodet_consumer_groups_recreated_total``    counter    Redis: consumer group created again (NOGROUP)
``anodet_batch_latency_seconds``              histogram  first record of a micro-batch read → batch written
``anodet_queue_depth_records``                gauge      records read but not yet decided
``anodet_consumer_lag_records``               gauge      Redis: entries the group has not been given yet
``anodet_consumer_pending_records``           gauge      Redis: entries given to the group, not acknowledged
``anodet_threshold``                          gauge      the threshold in force (label ``detector``)
``anodet_build_info``                         gauge      1, labels ``version``, ``python``, ``detector``
============================================  =========  ==================================================
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from importlib import metadata
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from anodet.streaming.pipeline import Pipeline

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def version() -> str:
    try:
        return metadata.version("anodet")
    except metadata.PackageNotFoundError:  # run from a checkout, not installed
        import anodet

        return anodet.__version__


class PipelineCollector(Collector):
    """Reads a pipeline's counters, queue and broker lag at scrape time."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        p = self.pipeline
        stats = p.stats
        with stats.lock:
            read, scored, rejected, alerts = stats.read, stats.scored, stats.rejected, stats.alerts
            webhook_failed = stats.webhook_failed + stats.webhook_dropped
            dead = stats.dead_lettered
        counters = p.source.counters()
        for name, value, text in (
                ("anodet_records_read", read, "Records read from the source."),
                ("anodet_records_scored", scored, "Records scored (their decision written)."),
                ("anodet_records_rejected", rejected, "Records rejected as malformed (written to the rejects)."),
                ("anodet_alerts", alerts, "Records that raised an alert (score >= threshold)."),
                ("anodet_records_acked", counters.get("acked", 0),
                 "Broker records acknowledged after their decision was written."),
                ("anodet_records_redelivered", counters.get("redelivered", 0),
                 "Broker records delivered again (left unacknowledged by a consumer that stopped)."),
                ("anodet_webhook_failures", webhook_failed, "Alerts the webhook did not deliver."),
                ("anodet_records_dead_lettered", dead,
                 "Broker records set aside in the dead-letter stream (alert refused, or delivered too often)."),
                ("anodet_consumer_groups_recreated", counters.get("regrouped", 0),
                 "Times the consumer group was gone (Redis restarted without persistence) and was created again.")):
            yield CounterMetricFamily(name, text, value=value)
        yield GaugeMetricFamily("anodet_queue_depth_records", "Records read but not yet decided.",
                                value=max(read - scored - rejected, 0))
        lag = p.source.lag()
        if "lag" in lag:
            yield GaugeMetricFamily("anodet_consumer_lag_records",
                                    "Entries in the stream not yet delivered to the consumer group.", value=lag["lag"])
        if "pending" in lag:
            yield GaugeMetricFamily("anodet_consumer_pending_records",
                                    "Entries delivered to the consumer group but not yet acknowledged.",
                                    value=lag["pending"])
        threshold = GaugeMetricFamily("anodet_threshold", "Score at or above which a record raises an alert.",
                                      labels=["detector"])
        threshold.add_metric([p.detection.name], p.detection.threshold)
        yield threshold
        info = GaugeMetricFamily("anodet_build_info", "Always 1; the labels say what runs.",
                                 labels=["version", "python", "detector"])
        info.add_metric([version(), platform.python_version(), p.detection.name], 1)
        yield info


class MetricsServer:
    """The ``/metrics`` endpoint of one pipeline: its collector and batch-latency histogram."""

    def __init__(self, pipeline: Pipeline, port: int, addr: str = "127.0.0.1") -> None:
        self.registry = CollectorRegistry()
        self.registry.register(PipelineCollector(pipeline))
        self.latency = Histogram("anodet_batch_latency_seconds",
                                 "Seconds from reading a micro-batch's first record to its decisions written "
                                 "(and acknowledged).", buckets=LATENCY_BUCKETS, registry=self.registry)
        pipeline.on_batch = self.observe
        self._server: Any
        self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        self.port = self._server.server_address[1]
        self.addr = addr

    def observe(self, seconds: float, records: int) -> None:
        self.latency.observe(seconds)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
