"""Benchmark: every stored detector's scoring against the library it was fitted with, on all-distinct rows.

Issue 32: each detector scores at least twice as fast as the fitting library's own scoring of the
same model (scikit-learn's ``decision_function`` / ``score_samples`` / ``predict_proba`` /
``transform``, Keras' ``predict``; ``bench/libraries.py`` fits the estimator again as training did
and the table shows how far its scores are from the stored detector's). Rows come from
``bench/inputs.py`` (test split rows with jittered rates, >= 99.9% distinct) and, for comparison, the
test split drawn with replacement (repeating). Each detector is timed with one scoring thread and
with the default pool (``ANODET_THREADS``, both cores here); the library with its own defaults
(its threads, BLAS or OpenMP, where it has them). Timings alternate between anodet and the library
and the median of ``--runs`` is kept; the machine is shared, so figures are noisy. LOF and seq2seq
are timed on the first ``SLOW_ROWS`` rows, and the libraries on at most ``--library-rows``.
Prints a table and writes bench/results/detectors.md.

    python bench/bench_detectors.py [--rows 1000000] [--library-rows 200000] [--runs 3] [--only iforest,pca]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from anodet.datasets.kdd import load_splits  # noqa: E402
from anodet.detectors import parallel as parallel_module  # noqa: E402
from anodet.store.core import Store  # noqa: E402
from bench.inputs import distinct_fraction, distinct_rows  # noqa: E402
from bench.libraries import library_scorer  # noqa: E402

TARGET = 2.0
EXEMPT = ("lof", "seq2seq")
SLOW_ROWS = 100_000
RESULTS = ROOT / "bench" / "results" / "detectors.md"


def seconds(fn, X: np.ndarray) -> float:
    start = time.perf_counter()
    fn(X)
    return time.perf_counter() - start


def with_threads(n: int, fn, X: np.ndarray) -> float:
    saved, parallel_module.THREADS = parallel_module.THREADS, n
    try:
        return seconds(fn, X)
    finally:
        parallel_module.THREADS = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--library-rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="comma-separated detector names (default: every stored one)")
    args = parser.parse_args(argv)
    store = Store.open()
    frame = distinct_rows(args.rows)
    fraction = distinct_fraction(frame)
    test = load_splits().test.rows
    repeat_rows = test.iloc[np.random.default_rng(1).integers(0, len(test), args.rows)]
    names = args.only.split(",") if args.only else store.names
    load = os.getloadavg()[0]

    rows = []
    for name in names:
        fs = store.feature_set_for(name)
        distinct = fs.transform_frame(frame).astype(np.float32)
        repeating = fs.transform_frame(repeat_rows).astype(np.float32)
        kind = name.split("@")[0]
        start = time.perf_counter()
        detector = store.detector(name)
        load_s = time.perf_counter() - start
        n = SLOW_ROWS if kind in EXEMPT else len(distinct)
        lib_n = min(n, args.library_rows)
        library = library_scorer(store, name)
        detector.decision_function(distinct[:2_000])  # warm-up
        if library:
            library[1](distinct[:2_000])
        ours, one, lib = [], [], []
        for _ in range(args.runs):
            ours.append(n / with_threads(parallel_module.THREADS, detector.decision_function, distinct[:n]))
            if library:
                lib.append(lib_n / seconds(library[1], distinct[:lib_n]))
        one = [n / with_threads(1, detector.decision_function, distinct[:n])]
        again = n / with_threads(parallel_module.THREADS, detector.decision_function, repeating[:n])
        pool, lib_rate = statistics.median(ours), statistics.median(lib) if lib else None
        difference = ""
        if library:
            check = distinct[:min(lib_n, 100_000)]
            difference = f"{np.abs(library[1](check) - detector.decision_function(check)).max():.2g}"
        ratio = pool / lib_rate if lib_rate else None
        verdict = "—" if ratio is None else ("yes" if ratio >= TARGET else "NO")
        rows.append((name, load_s, library[0] if library else "", lib_rate, one[0], pool, again, ratio, difference,
                     verdict))
        print(f"{name}: ours {pool:,.0f} rows/s, library {lib_rate or 0:,.0f} rows/s"
              + (f" ({ratio:.1f}x)" if ratio else ""), flush=True)

    lines = [
        f"Rows/s scoring {len(frame):,} all-distinct KDD-like rows ({fraction:.3%} distinct; bench/inputs.py) on "
        f"{os.cpu_count()} shared cores (load average {load:.1f} at the start); LOF and seq2seq on the first "
        f"{SLOW_ROWS:,}; the libraries on at most {args.library_rows:,}. anodet and the library alternate, "
        f"median of {args.runs} runs each. 'pool' = {parallel_module.THREADS} scoring threads. 'library' = the same "
        "model scored by the library that fitted it, with its own defaults (bench/libraries.py); 'max difference' = "
        "largest |library - anodet| on those rows (first 100,000). Load includes hash checks and the load-time "
        "probe check; the ensemble's includes its members (in `score` it is computed from its members' scores).",
        "",
        "| detector | load (s) | library call | library rows/s | anodet 1 thread rows/s | anodet pool rows/s "
        "| pool rows/s, repeating rows | anodet ÷ library | max difference | ≥ 2× the library |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for name, load_s, call, lib_rate, one_thread, pool, again, ratio, difference, verdict in rows:
        lines.append(f"| {name} | {load_s:.2f} | {call or '— (numpy)' if 'zscore' in name else call or '—'} | "
                     f"{f'{lib_rate:,.0f}' if lib_rate else '—'} | {one_thread:,.0f} | {pool:,.0f} | {again:,.0f} | "
                     f"{f'{ratio:.1f}×' if ratio else '—'} | {difference or '—'} | {verdict} |")
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
