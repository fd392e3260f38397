"""Peak memory of ``dataset add`` on a tiny file of very many rows (issue 24: bounded whatever the row count).

A dictionary-encoded Parquet file of 20 million rows takes a few hundred kilobytes on disk; the
splits are drawn in two streamed passes with stated caps, so the peak resident memory of the
command should not grow with the row count. The file is generated here (never committed); the
command runs in a fresh process whose peak RSS the kernel reports (``ru_maxrss`` of the child).

Usage: ``python bench/bench_dataset_memory.py [--rows 20000000] [--rows 5000000 ...]``; writes
``bench/results/dataset_memory.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "dataset_memory.md"
TARGET_MB = 1024


def write_parquet(path: Path, rows: int, batch: int = 1_000_000) -> None:
    """``rows`` rows of few distinct values (so dictionary encoding makes the file tiny), 1 % anomalies."""
    rng = np.random.default_rng(0)
    schema = pa.schema([("duration", pa.float64()), ("bytes", pa.float64()), ("proto", pa.string()),
                        ("rate", pa.float64()), ("label", pa.string())])
    with pq.ParquetWriter(path, schema, use_dictionary=True, compression="zstd") as out:
        done = 0
        while done < rows:
            n = min(batch, rows - done)
            anomaly = rng.uniform(size=n) < 0.01
            out.write_table(pa.table({
                "duration": rng.integers(0, 10, n).astype(float),
                "bytes": (rng.integers(1, 50, n) * 100).astype(float),
                "proto": pa.array(rng.choice(["tcp", "udp", "icmp"], n)).dictionary_encode(),
                "rate": np.round(rng.uniform(0, 1, n), 1),
                "label": pa.array(np.where(anomaly, "attack", "normal")).dictionary_encode(),
            }, schema=schema))
            done += n


def run(rows: int, folder: Path) -> dict[str, float]:
    path = folder / f"rows-{rows}.parquet"
    write_parquet(path, rows)
    env = {**os.environ, "ANODET_DATA_DIR": str(folder / f"data-{rows}")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "anodet", "dataset", "add", f"big{rows}", "--train", str(path),
                           "--label", "label"], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dataset add failed: {done.stderr.strip()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        raise SystemExit("could not read the child's peak RSS (an earlier child used more)")
    return {"rows": rows, "file_kb": path.stat().st_size / 1024, "seconds": seconds, "peak_mb": peak / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="row counts (default: 1M, 5M, 20M)")
    args = parser.parse_args()
    sizes = sorted(args.rows or [1_000_000, 5_000_000, 20_000_000])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:  # ascending: each child's peak is above the previous ones, so ru_maxrss reads it
            got = run(rows, Path(tmp))
            results.append(got)
            print(f"{got['rows']:>12,} rows  {got['file_kb']:>8,.0f} KB  {got['seconds']:>7.1f} s  "
                  f"peak RSS {got['peak_mb']:>7,.0f} MB", flush=True)
    lines = ["# `dataset add` peak memory (`bench/bench_dataset_memory.py`)", "",
             f"Target: peak RSS ≤ {TARGET_MB:,} MB for a 20M-row Parquet file. {platform.machine()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} "
             "at the end.", "", "| rows | file | seconds | peak RSS |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['rows']:,} | {r['file_kb']:,.0f} KB | {r['seconds']:.1f} | {r['peak_mb']:,.0f} MB |"
              for r in results]
    lines += ["", "The file: 5 columns of few distinct values, dictionary-encoded (zstd), 1 % anomalies; generated "
              "by the benchmark, never committed. Peak RSS is the command's own process (the kernel's ru_maxrss)."]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
