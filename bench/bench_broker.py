"""Benchmark ``python -m anodet stream --source redis://…``: one consumer, two in a group, ``kill -9``.

Prints the figures and writes ``bench/results/broker.md``. A throwaway ``redis-server`` (Debian's)
runs on a free loopback port, without persistence. Records are distinct (``bench/inputs.py``:
KDD test rows with jittered rate columns), one Redis Stream entry each.

* **one consumer**: for each entry shape (one field per feature, or a raw KDD line in ``line``;
  both with a ``flow_id``), the stream is filled first, then one ``stream`` process drains it; records/s
  is entries / (time from the process starting to read, to the group having every entry
  acknowledged), so it includes reading, parsing, scoring, writing alerts and XACK.
* **two consumers**: the same, with two processes in one group (each its own alert log).
* **kill -9**: a consumer is killed with SIGKILL mid-stream and restarted under the same
  ``--consumer`` name (it re-reads its unacknowledged entries); then one is killed and *not*
  restarted while another, started after, takes over its entries with XAUTOCLAIM
  (``--claim-idle 2``). Every record raises an alert (threshold below every score), so the
  alert logs are the decision logs: lost = ids never decided, duplicates = decisions beyond one
  per id.

Usage: ``python bench/bench_broker.py [--records 300000] [--detectors pca,autoencoder]`` (the
``kill -9`` runs use the first detector).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis_server import RedisServer

from anodet.datasets.kdd_schema import RAW_COLUMNS
from bench.inputs import distinct_fraction, distinct_rows

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

RESULTS = ROOT / "bench" / "results" / "broker.md"
SHAPES = {"fields": "one field per feature + flow_id", "line": "raw KDD line in `line` + flow_id"}
EVERYTHING = "--threshold=-1e300"


def env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


RAW_DEFAULTS = {"protocol_type": "tcp", "service": "http", "flag": "SF"}


def raw_line(row: dict[str, float]) -> str:
    """A raw KDD line (41 values) carrying the row's features; the other columns are fixed."""
    return ",".join(repr(row[c]) if c in row else RAW_DEFAULTS.get(c, "0") for c in RAW_COLUMNS)


def fill(client, stream_name: str, rows, shape: str = "fields") -> list[str]:
    """XADD every row, as one field per feature + flow_id (``fields``) or a raw ``line`` + flow_id;
    return the entry ids."""
    columns = list(rows.columns)
    ids: list[str] = []
    values = rows.to_numpy()
    for start in range(0, len(values), 10_000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + 10_000, len(values))):
            row = {c: float(v) for c, v in zip(columns, values[i], strict=True)}
            if shape == "fields":
                pipe.xadd(stream_name, {"flow_id": f"f{i}", **{c: repr(v) for c, v in row.items()}})
            else:
                pipe.xadd(stream_name, {"line": raw_line(row), "flow_id": f"f{i}"})
        ids += [x.decode() for x in pipe.execute()]
    return ids


def consumer(server, detector: str, stream_name: str, name: str, log: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "anodet", "stream", "--detector", detector, "--status-every", "0",
           "--source", server.url(stream_name), "--group", "g", "--consumer", name, "--alerts", str(log), *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_started(proc: subprocess.Popen) -> float:
    """Wait for the 'stream: DETECTOR on …' line (model loaded, about to read); return that moment."""
    while True:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if not line:
            raise RuntimeError("the consumer ended before it started reading")
        if " on redis://" in line:
            return time.perf_counter()


def group(client, stream_name: str) -> dict:
    found = [g for g in client.xinfo_groups(stream_name) if g["name"] == b"g"] if client.exists(stream_name) else []
    return found[0] if found else {"pending": 0, "lag": None, "entries-read": None}


def wait_drained(client, stream_name: str, total: int, timeout: float = 1800) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        info = group(client, stream_name)
        if (info["entries-read"] or 0) >= total and info["lag"] == 0 and info["pending"] == 0:
            return time.perf_counter()
        time.sleep(0.01)
    raise RuntimeError("the group did not drain the stream in time")


def wait_acked(client, stream_name: str, count: float) -> None:
    """Wait until the group has acknowledged ``count`` entries (entries read minus pending): mid-stream."""
    while True:
        info = group(client, stream_name)
        if (info["entries-read"] or 0) - info["pending"] >= count:
            return
        time.sleep(0.002)


def stop(proc: subprocess.Popen) -> dict[str, int]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    found = re.search(r"([\d,]+) acknowledged, ([\d,]+) redelivered", err)
    return {"acked": int(found.group(1).replace(",", "")), "redelivered": int(found.group(2).replace(",", ""))} \
        if found else {"acked": 0, "redelivered": 0}


def decided(*logs: Path) -> list[str]:
    out = []
    for log in logs:
        if log.exists():
            out += [json.loads(x)["entry"] for x in log.read_text().splitlines()]
    return out


def run_consumers(server, detector: str, rows, n: int, tmp: Path, shape: str) -> dict:
    tag = f"{shape}{n}"
    stream_name = f"flows_{tag}"
    fill(server.client, stream_name, rows, shape)
    logs = [tmp / f"{tag}_{i}.jsonl" for i in range(n)]
    for log in logs:
        log.unlink(missing_ok=True)
    procs = [consumer(server, detector, stream_name, f"c{i}", log) for i, log in enumerate(logs)]
    t0 = min(wait_started(p) for p in procs)
    t1 = wait_drained(server.client, stream_name, len(rows))
    shares = [stop(p)["acked"] for p in procs]
    alerts = len(decided(*logs))
    server.client.delete(stream_name)
    return {"consumers": n, "shape": shape, "records": len(rows), "seconds": t1 - t0, "rate": len(rows) / (t1 - t0),
            "shares": shares, "alerts": alerts}


def kill_restart(server, detector: str, rows, tmp: Path) -> dict:
    stream_name = "flows_kill"
    ids = fill(server.client, stream_name, rows)
    log = tmp / "kill.jsonl"
    proc = consumer(server, detector, stream_name, "a", log, EVERYTHING)
    wait_started(proc)
    wait_acked(server.client, stream_name, len(rows) * 0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pending = int(group(server.client, stream_name)["pending"])
    before = len(log.read_bytes().splitlines())
    proc = consumer(server, detector, stream_name, "a", log, EVERYTHING)
    t0 = wait_started(proc)
    t1 = wait_drained(server.client, stream_name, len(rows))
    counts = stop(proc)
    got = decided(log)
    server.client.delete(stream_name)
    return {"scenario": "killed, restarted under the same name", "records": len(rows), "decided_before_kill": before,
            "pending_at_kill": pending, "redelivered": counts["redelivered"], "lost": len(set(ids) - set(got)),
            "duplicates": len(got) - len(set(got)), "recovery_s": t1 - t0}


def kill_claim(server, detector: str, rows, tmp: Path, claim_idle: float = 2.0) -> dict:
    stream_name = "flows_claim"
    ids = fill(server.client, stream_name, rows)
    dead_log, heir_log = tmp / "dead.jsonl", tmp / "heir.jsonl"
    proc = consumer(server, detector, stream_name, "dead", dead_log, EVERYTHING)
    wait_started(proc)
    wait_acked(server.client, stream_name, len(rows) * 0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = time.perf_counter()
    pending = int(group(server.client, stream_name)["pending"])
    heir = consumer(server, detector, stream_name, "heir", heir_log, EVERYTHING, "--claim-idle", str(claim_idle))
    wait_started(heir)
    t1 = wait_drained(server.client, stream_name, len(rows))
    counts = stop(heir)
    got = decided(dead_log, heir_log)
    server.client.delete(stream_name)
    return {"scenario": f"killed, its entries taken over by another consumer (--claim-idle {claim_idle:g})",
            "records": len(rows), "decided_before_kill": len(decided(dead_log)), "pending_at_kill": pending,
            "redelivered": counts["redelivered"], "lost": len(set(ids) - set(got)),
            "duplicates": len(got) - len(set(got)), "recovery_s": t1 - killed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--detectors", default="pca,autoencoder")
    args = parser.parse_args(argv)
    rows = distinct_rows(args.records)
    distinct = distinct_fraction(rows)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        server = RedisServer(tmp)
        try:
            detectors = args.detectors.split(",")
            for d in detectors:  # warm-up (page cache, first imports), not reported
                run_consumers(server, d, rows[:20_000], 1, tmp, "fields")
            runs = [{**run_consumers(server, d, rows, n, tmp, shape), "detector": d}
                    for d in detectors for shape in SHAPES for n in (1, 2)]
            for r in runs:
                print(f"{r['detector']}, {r['consumers']} consumer(s), {r['shape']}: {r['records']:,} records in "
                      f"{r['seconds']:.2f} s = "
                      f"{r['rate']:,.0f} records/s; per consumer {r['shares']}; {r['alerts']:,} alerts", flush=True)
            kills = [kill_restart(server, detectors[0], rows, tmp), kill_claim(server, detectors[0], rows, tmp)]
            for k in kills:
                print(f"kill -9, {k['scenario']}: {k}", flush=True)
        finally:
            server.stop()
    load_after = os.getloadavg()[0]
    lines = [f"{os.cpu_count()} CPU cores ({platform.machine()}), Python "
             f"{platform.python_version()}, redis-server on the same machine (loopback); load average before/after: "
             f"{load_before:.1f} / {load_after:.1f}. Records: {len(rows):,} distinct KDD-like rows "
             f"({distinct:.2%} distinct), one entry each.", "",
             "| detector | entry shape | consumers | records | seconds | records/s | records per consumer | alerts |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in runs:
        lines.append(f"| `{r['detector']}` | {SHAPES[r['shape']]} | {r['consumers']} | {r['records']:,} | "
                     f"{r['seconds']:.2f} | {r['rate']:,.0f} | "
                     f"{' / '.join(f'{s:,}' for s in r['shares'])} | {r['alerts']:,} |")
    lines += ["", "Records/s: entries / (consumers starting to read → every entry acknowledged by the group); it "
              "includes XREADGROUP, parsing, scoring, writing the alert log and XACK. The stream is filled before "
              "the consumers start.", "",
              f"`kill -9` mid-stream, detector `{detectors[0]}` (every record raises an alert, so the alert logs are "
              "the decision logs):", "",
              "| scenario | records | decided before the kill | pending at the kill | redelivered | lost | "
              "duplicates | recovery |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for k in kills:
        lines.append(f"| {k['scenario']} | {k['records']:,} | {k['decided_before_kill']:,} | "
                     f"{k['pending_at_kill']:,} | {k['redelivered']:,} | {k['lost']:,} | {k['duplicates']:,} | "
                     f"{k['recovery_s']:.1f} s |")
    lines += ["", "Recovery: from the restart (or from the kill, for the takeover) until every entry of the "
              "stream is acknowledged, so it includes deciding the entries the dead consumer never read; the "
              "takeover waits for the entries to be idle `--claim-idle` seconds and for the next XAUTOCLAIM "
              "sweep (every 5 s). Duplicates are records decided before the kill whose acknowledgement the "
              "kill prevented (the window between writing a batch and its XACK); they are at most the "
              "redelivered count. The 2 cores are shared by redis-server, the consumers and whatever else "
              "runs (see the load average), so the figures vary by about ±20 % from run to run."]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
