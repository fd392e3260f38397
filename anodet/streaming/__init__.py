"""The streaming subsystem: ``python -m anodet stream`` scores records as they arrive and raises alerts.

* :mod:`.sources` — where records come from (stdin, a file, TCP producers, Redis Streams, Kafka),
  chosen by the input's address;
* :mod:`.intake` and :mod:`.pipeline` — lines into micro-batches, scored by the one scoring
  routine (:mod:`anodet.scoring.core`), decisions written before broker records are acknowledged;
* :mod:`.alerts` — what an alert line says; :mod:`.sinks` — where alerts, rejects and dead
  letters go (files, a webhook, Redis Streams);
* :mod:`.stats` and :mod:`.prometheus` — the counters and latency the status line, the Live
  monitor and Prometheus read.
"""
