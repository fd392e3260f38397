"""Benchmark: rows/s of every stored detector on 1,000,000 all-distinct KDD-like rows.

Issue 12: scoring real, non-repeating traffic must not rely on repeats. Rows come from
bench/inputs.py (test split rows with jittered rates, >= 99.9% distinct) and, for comparison,
the test split drawn with replacement (repeating). Each detector is timed with one scoring
thread and with the default pool (``ANODET_THREADS``, both cores here); the One-Class SVM and
Isolation Forest also through scikit-learn (what they cost before). The largest absolute
difference to the library (scikit-learn or Keras) is measured on the same rows.

Target: >= 1,000,000 rows/s on distinct rows for every detector but LOF and seq2seq (their
figures are reported; they are timed on the first ``SLOW_ROWS`` rows). The machine is shared,
so figures are noisy. Prints a table and writes bench/results/detectors.md.

    python bench/bench_detectors.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from anodet.datasets.kdd import load_splits
from anodet.detectors import NEURAL
from anodet.detectors import parallel as parallel_module
from anodet.store.core import Store
from bench.inputs import distinct_fraction, distinct_rows

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET = 1_000_000
EXEMPT = ("lof", "seq2seq")
SLOW_ROWS = 100_000
RESULTS = ROOT / "bench" / "results" / "detectors.md"


def rate(fn, X: np.ndarray) -> float:
    start = time.perf_counter()
    fn(X)
    return len(X) / (time.perf_counter() - start)


def with_threads(n: int, fn, X: np.ndarray) -> float:
    saved, parallel_module.THREADS = parallel_module.THREADS, n
    try:
        return rate(fn, X)
    finally:
        parallel_module.THREADS = saved


def library_difference(name: str, detector, X: np.ndarray) -> str:
    """Largest |anodet - library| on ``X``, or '' where the detector has no library twin."""
    if name in ("ocsvm", "iforest", "lof") and detector.model_ is None:  # stored as arrays: see tests/test_array_state.py
        return ""
    if name == "ocsvm":
        return f"{np.abs(detector.decision_function(X) + detector.model_.decision_function(X)).max():.2g}"
    if name in ("iforest", "lof"):
        return f"{np.abs(detector.decision_function(X) + detector.model_.score_samples(X)).max():.2g}"
    if name in NEURAL:
        return f"{np.abs(detector._numpy_forward(X) - detector._tf_forward(X)).max():.2g} (Keras)"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    store = Store.open()
    frame = distinct_rows(args.rows)
    fraction = distinct_fraction(frame)
    test = load_splits().test.rows
    repeat_rows = test.iloc[np.random.default_rng(1).integers(0, len(test), args.rows)]

    rows = []
    for name in store.names:
        fs = store.feature_set_for(name)
        distinct = fs.transform_frame(frame).astype(np.float32)
        repeating = fs.transform_frame(repeat_rows).astype(np.float32)
        kind = name.split("@")[0]
        start = time.perf_counter()
        detector = store.detector(name)
        load = time.perf_counter() - start
        n = SLOW_ROWS if kind in EXEMPT else len(distinct)
        detector.decision_function(distinct[:2_000])  # warm-up
        one = with_threads(1, detector.decision_function, distinct[:n])
        pool = with_threads(parallel_module.THREADS, detector.decision_function, distinct[:n])
        again = with_threads(parallel_module.THREADS, detector.decision_function, repeating[:n])
        library = ""
        if kind == "ocsvm" and detector.model_ is not None:  # loaded detectors keep arrays, not the estimator
            library = f"{rate(detector.model_.decision_function, distinct[:n]):,.0f}"
        elif kind == "iforest" and detector.model_ is not None:
            library = f"{rate(detector.model_.score_samples, distinct[:n]):,.0f}"
        difference = library_difference(kind, detector, distinct[:SLOW_ROWS] if kind in NEURAL or kind in EXEMPT
                                        else distinct[:n])
        best = max(one, pool)
        verdict = "exempt" if kind in EXEMPT else ("yes" if best >= TARGET else "NO")
        rows.append((name, load, n, library, one, pool, again, difference, verdict))
        print(f"{name}: {one:,.0f} / {pool:,.0f} rows/s", flush=True)

    lines = [
        f"Rows/s scoring {len(distinct):,} all-distinct KDD-like rows ({fraction:.3%} distinct; "
        f"bench/inputs.py) on {os.cpu_count()} shared cores, one run each; LOF and seq2seq on the "
        f"first {SLOW_ROWS:,}. 'pool' = {parallel_module.THREADS} scoring threads. 'library' = the same "
        "rows through scikit-learn's own scoring (the path used before). Max difference: largest "
        "absolute difference to the library's scores (for neural models: to Keras' reconstructions) "
        f"on those rows (first {SLOW_ROWS:,} for neural, LOF). Load includes hash checks and the "
        "load-time probe check; the ensemble's includes its members.",
        "",
        "| detector | load (s) | library rows/s | 1 thread rows/s | pool rows/s | pool rows/s, repeating rows "
        "| max difference | ≥ 1M rows/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for name, load, _n, library, one, pool, again, difference, verdict in rows:
        lines.append(f"| {name} | {load:.2f} | {library or '—'} | {one:,.0f} | {pool:,.0f} | {again:,.0f} "
                     f"| {difference or '—'} | {verdict} |")
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    return 0 if all(r[-1] != "NO" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
