"""Measure: with one producer silent and one sending a byte every 5 s, how long another producer's
records take to be alerted by ``python -m anodet stream --input tcp://…`` (issue 24, row 2).

    python bench/bench_tcp_producers.py [--records 100] [--runs 5]

Prints the latency of each run (the other producer's first byte sent → its last alert in the log)
and writes them to bench/results/tcp_producers.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anodet.datasets.kdd import fetch_raw  # noqa: E402


def run_once(lines: list[bytes], workdir: Path) -> float:
    alerts = workdir / "alerts.jsonl"
    alerts.unlink(missing_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "anodet", "stream", "--detector", "pca", "--threshold=-1e300",
                             "--input", "tcp://127.0.0.1:0", "--follow", "--alerts", str(alerts),
                             "--status-every", "0"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    port = None
    while port is None:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if not line:
            raise RuntimeError("the stream command ended before listening")
        found = re.search(r"listening on tcp://127\.0\.0\.1:(\d+)", line)
        port = int(found.group(1)) if found else None
    try:
        silent = socket.create_connection(("127.0.0.1", port))
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(lines[0][:1])
        last_byte = time.monotonic()
        time.sleep(0.5)
        payload = b"\n".join(lines) + b"\n"
        with socket.create_connection(("127.0.0.1", port)) as fast:
            t0 = time.monotonic()
            fast.sendall(payload)
            while True:
                if alerts.exists() and len(alerts.read_bytes().splitlines()) >= len(lines):
                    latency = time.monotonic() - t0
                    break
                if time.monotonic() - last_byte >= 5.0:
                    slow.sendall(lines[0][1:2])
                    last_byte = time.monotonic()
                if time.monotonic() - t0 > 120:
                    raise RuntimeError("the records were not alerted within 120 s")
                time.sleep(0.005)
        slow.close()
        silent.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    lines = gzip.decompress(fetch_raw()["test"].read_bytes()).splitlines()[:args.records]
    with tempfile.TemporaryDirectory() as tmp:
        latencies = [run_once(lines, Path(tmp)) for _ in range(args.runs)]
    result = {"records": args.records, "runs": args.runs, "latency_s": [round(x, 4) for x in latencies],
              "max_s": round(max(latencies), 4), "python": platform.python_version(), "cpus": os.cpu_count()}
    print(json.dumps(result))
    out = ROOT / "bench" / "results" / "tcp_producers.md"
    out.write_text(
        "# TCP: one silent and one slow producer (a byte every 5 s) beside another\n\n"
        f"`python bench/bench_tcp_producers.py --records {args.records} --runs {args.runs}` "
        f"(Python {result['python']}, {result['cpus']} CPUs, detector pca, every record alerted).\n\n"
        "Seconds from the other producer's first byte sent to its last record's alert in the log:\n\n"
        "| run | latency (s) |\n|---|---|\n"
        + "".join(f"| {i + 1} | {x:.4f} |\n" for i, x in enumerate(latencies))
        + f"\nWorst: {max(latencies):.4f} s.\n")


if __name__ == "__main__":
    main()
