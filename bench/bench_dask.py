"""Benchmark the Dask engine against the local one on 1,000,000 all-distinct rows.

The same rows (``bench/inputs.py``: test rows with jittered rates, all 41 columns) are scored by
the default detector set three ways: one 1M-row file on the local engine (this process, both
cores through its scoring threads); 8 files of 125,000 rows on the local engine, one after
another; and the 8 files on a Dask ``LocalCluster`` with 2 worker processes (one thread each) on
the same 2 cores. Cluster start-up is timed apart. Parts are compared byte for byte with the local
engine's. Writes ``bench/results/dask.md``.

    python bench/bench_dask.py [--rows 1000000] [--files 8]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from inputs import distinct_rows

from anodet.evaluation.thresholds import resolve_thresholds
from anodet.scoring.batch import score_many
from anodet.scoring.core import Scorer, default_detectors
from anodet.scoring.files import score_source
from anodet.scoring.output import ResultsFile
from anodet.store.core import Store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))



RESULTS = ROOT / "bench" / "results" / "dask.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    store = Store.open()
    names = default_detectors(store.names)
    thresholds = resolve_thresholds(store, names, None, "reference")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        frame = distinct_rows(args.rows)
        frame.to_csv(tmp / "all.csv", index=False)
        per = -(-args.rows // args.files)
        files = []
        for i in range(args.files):
            path = tmp / f"in-{i:02d}.csv"
            frame.iloc[i * per:(i + 1) * per].to_csv(path, index=False)
            files.append(str(path))
        del frame

        from threadpoolctl import threadpool_limits

        start = time.perf_counter()
        results = ResultsFile(tmp / "one.csv")
        with threadpool_limits(limits=1, user_api="blas"):  # as `anodet score` runs
            summary = score_source(str(tmp / "all.csv"), store, names, thresholds, sink=results.open(),
                                   scorer=Scorer(store, names))
        results.commit()
        one_file = time.perf_counter() - start
        assert summary.rows_scored == args.rows

        start = time.perf_counter()
        score_many(files, tmp / "local", store, names, thresholds)
        local_parts = time.perf_counter() - start

        import dask
        from distributed import Client, LocalCluster

        dask.config.set({"distributed.nanny.pre-spawn-environ": {}})  # as anodet.scoring.batch starts its LocalCluster
        start = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
        startup = time.perf_counter() - start
        try:
            start = time.perf_counter()
            score_many(files, tmp / "dask", store, names, thresholds, engine="dask",
                       scheduler=cluster.scheduler_address)
            dask_parts = time.perf_counter() - start
        finally:
            Client(cluster).close()
            cluster.close()
        same = all((tmp / "local" / f"part-{i:05d}.csv").read_bytes()
                   == (tmp / "dask" / f"part-{i:05d}.csv").read_bytes()
                   for i in range(args.files))

    rate = lambda s: args.rows / s  # noqa: E731
    lines = [
        f"`python bench/bench_dask.py` — {args.rows:,} all-distinct rows (41 columns), default detector set "
        f"({len(names)} detectors), {os.cpu_count()} CPUs ({platform.machine()}), "
        f"load average {load:.1f} at the start.",
        "",
        "| engine | input | seconds | rows/s | vs. local, one file |",
        "| --- | --- | ---: | ---: | ---: |",
        f"| local | 1 file | {one_file:.1f} | {rate(one_file):,.0f} | 100% |",
        f"| local | {args.files} files, one after another | {local_parts:.1f} | {rate(local_parts):,.0f} | "
        f"{one_file / local_parts:.0%} |",
        f"| dask LocalCluster, 2 workers × 1 thread | {args.files} files | {dask_parts:.1f} | "
        f"{rate(dask_parts):,.0f} | {one_file / dask_parts:.0%} |",
        "",
        f"Cluster start-up (not in the dask row): {startup:.1f} s. Each worker loads the model store once "
        f"(in the dask row). Parts byte-identical to the local engine's: {'yes' if same else 'NO'}.",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.write_text("# Dask engine\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
