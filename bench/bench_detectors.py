"""Benchmark: load time and time to score the 10,000-row kdd-8020 test split, per detector.

Target (issue 2): every detector scores the test split in at most 2 s on this 2-core machine.
Prints a table and writes it to bench/results/detectors.md. Run: python bench/bench_detectors.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from anodet.data import load_splits  # noqa: E402
from anodet.schema import FEATURES  # noqa: E402
from anodet.store import Store  # noqa: E402

REPEATS = 5


def main() -> int:
    splits = load_splits()
    store = Store.open()
    X = store.scaler.transform(splits.test[list(FEATURES)].to_numpy(dtype=np.float64))
    rows = []
    for name in store.names:
        start = time.perf_counter()
        detector = store.detector(name)
        load = time.perf_counter() - start
        detector.score(X[:100])  # warm-up (graph tracing for Keras models)
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            detector.score(X)
            times.append(time.perf_counter() - start)
        rows.append((name, load, statistics.median(times), max(times)))
    lines = [
        f"Scoring the {len(X):,}-row kdd-8020 test split ({REPEATS} runs; {os.cpu_count()} cores). "
        "Load includes hash checks; the ensemble's load includes its members.",
        "",
        "| detector | load (s) | score median (s) | score max (s) | ≤ 2 s |",
        "| --- | ---: | ---: | ---: | :---: |",
    ]
    for name, load, median, worst in rows:
        lines.append(f"| {name} | {load:.2f} | {median:.3f} | {worst:.3f} | {'yes' if worst <= 2 else 'NO'} |")
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench" / "results" / "detectors.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return 0 if all(r[3] <= 2 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
