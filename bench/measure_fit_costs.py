"""Measure each detector kind's fit cost and write the coefficients training estimates use.

For every kind, fits a fresh detector (default parameters) on synthetic rows of several sizes
(rows × model inputs), times it, and fits the per-kind coefficients of
:func:`anodet.training.estimates.work`'s terms by non-negative least squares on relative errors
(a 0.1 s fit counts as much as a 30 s one; below :data:`FLOOR` seconds, timer and
scheduling noise dominate, so those count as absolute errors on that scale). \
A neural model's terms use the gradient steps it
actually ran (early stopping ends some sooner than the estimate's upper bound). TensorFlow's
import and first-fit set-up are measured once, in a fresh process, as the ``startup`` cost.

Writes ``anodet/training/fit_costs.json`` with ``--write`` (it prints the fit and the worst
relative error per kind either way). Takes a few minutes on 2 shared cores; ``--quick`` measures
fewer sizes (to try the script, not to calibrate).

    python bench/measure_fit_costs.py [--write] [--quick] [--kinds pca,zscore]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from anodet.detectors import NEURAL, REGISTRY, create, detector_class  # noqa: E402
from anodet.training import estimates  # noqa: E402

SIZES = {"classical": [(300, 10), (300, 40), (3_000, 10), (3_000, 40), (12_000, 10), (12_000, 40), (50_000, 80)],
         "cheap": [(300, 10), (3_000, 40), (12_000, 10), (50_000, 80), (500_000, 40)],
         "neural": [(300, 10), (300, 40), (3_000, 10), (3_000, 40), (12_000, 10), (12_000, 40), (40_000, 10),
                    (40_000, 80)],
         "seq2seq": [(300, 10), (300, 40), (3_000, 10), (3_000, 40), (12_000, 10), (12_000, 80)],
         "supervised": [(300, 10), (3_000, 40), (30_000, 10), (30_000, 40), (100_000, 20)]}
FLOOR = 0.05
CHEAP = ("pca", "zscore", "mahalanobis", "ecod", "knn")
"""Kinds whose per-row cost shows only at hundreds of thousands of rows (measured up to 500,000)."""
QUICK = {"classical": [(300, 10), (3_000, 40)], "cheap": [(300, 10), (3_000, 40)], "neural": [(300, 10), (3_000, 40)],
         "seq2seq": [(300, 10), (1_000, 10)], "supervised": [(300, 10), (3_000, 40)]}
STARTUP = ("import time; t = time.perf_counter(); import numpy as np; from anodet.detectors import create; "
           "X = np.random.default_rng(0).uniform(0, 1, (200, 10)).astype('float32'); "
           "create('autoencoder', early_stopping=False, epochs=1).fit(X); first = time.perf_counter() - t; "
           "t = time.perf_counter(); create('autoencoder', early_stopping=False, epochs=1).fit(X); "
           "print(first - (time.perf_counter() - t))")


def rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Distinct rows in [0, 1]: a few Gaussian clusters (what the detectors are made for)."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0.2, 0.8, (4, d))
    return np.clip(centers[rng.integers(0, 4, n)] + rng.normal(0, 0.05, (n, d)), 0, 1).astype(np.float32)


def fit_once(kind: str, X: np.ndarray) -> tuple[float, list[float]]:
    """Seconds to fit ``kind`` on ``X`` and its work terms (for a neural model: the steps it ran)."""
    params = dict(detector_class(kind).default_params)
    if kind == "ensemble":
        members = {m: create(m).fit(X) for m in ("pca", "zscore")}
        detector = create(kind, members=list(members)).attach(members)
    else:
        detector = create(kind)
    start = time.perf_counter()
    if kind == "supervised":
        y = (np.random.default_rng(1).uniform(size=len(X)) < 0.2).astype(np.int8)
        detector.fit(np.where(y[:, None] == 1, 1 - X, X), y)
    else:
        detector.fit(X)
    seconds = time.perf_counter() - start
    terms = estimates.work(kind, len(X), X.shape[1], params)
    if kind in NEURAL and detector.training_:
        report = detector.training_
        batch = report.get("batch_size", params["batch_size"])
        steps = report["epochs_run"] * math.ceil(report["rows"] / batch)
        terms = [1.0, float(steps), float(steps) * min(batch, report["rows"]) * X.shape[1]]
    return seconds, terms


def nnls_relative(A: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising the squared relative errors of ``A @ c`` against ``t``
    (errors relative to at least :data:`FLOOR` seconds)."""
    from scipy.optimize import nnls

    t = np.maximum(t, FLOOR)
    scale = A / t[:, None]
    norms = np.maximum(np.linalg.norm(scale, axis=0), 1e-300)
    solution, _ = nnls(scale / norms, np.ones(len(t)))
    return solution / norms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {estimates.COSTS_FILE.relative_to(ROOT)}")
    parser.add_argument("--quick", action="store_true", help="fewer sizes: to try the script, not to calibrate")
    parser.add_argument("--kinds", type=lambda v: v.split(","), default=list(REGISTRY),
                        help="measure these kinds only (comma-separated), keeping the others' coefficients")
    args = parser.parse_args()
    grid = QUICK if args.quick else SIZES
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    old = json.loads(estimates.COSTS_FILE.read_text()) if estimates.COSTS_FILE.exists() else {}
    startup = old.get("startup", {}).get("tensorflow")
    if startup is None or any(k in NEURAL for k in args.kinds):
        startup = float(subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, check=True,
                                       env=env, cwd=ROOT).stdout.split()[-1])
        print(f"TensorFlow import and first-fit set-up: {startup:.2f} s", flush=True)
        create("autoencoder", early_stopping=False, epochs=1).fit(rows(200, 10))  # paid here, not in the first kind
    kinds = {k: v for k, v in old.get("kinds", {}).items() if k not in args.kinds}
    points = [p for p in old.get("points", []) if p[0] not in args.kinds]
    for kind in args.kinds:
        group = "seq2seq" if kind == "seq2seq" else "neural" if kind in NEURAL else (
            "supervised" if kind == "supervised" else "cheap" if kind in CHEAP else "classical")
        measured = []
        for n, d in grid[group]:
            seconds, terms = min((fit_once(kind, rows(n, d)) for _ in range(1 if kind in NEURAL else 2)),
                                 key=lambda st: st[0])
            measured.append((terms, seconds))
            points.append([kind, n, d, round(seconds, 4)])
            print(f"  {kind:<12} {n:>7,} rows x {d:>3}: {seconds:7.3f} s", flush=True)
        A = np.array([m[0] for m in measured])
        t = np.array([m[1] for m in measured])
        coefficients = nnls_relative(A, t)
        worst = float(np.max(np.abs(A @ coefficients - t) / np.maximum(t, FLOOR)))
        kinds[kind] = {"seconds": [float(f"{c:.4g}") for c in coefficients], "worst_relative_error": round(worst, 2)}
        print(f"{kind}: coefficients {kinds[kind]['seconds']}, worst relative error {worst:.0%}", flush=True)
    doc = {"written_by": "bench/measure_fit_costs.py",
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
           "terms": "anodet.training.estimates.work", "startup": {"tensorflow": round(startup, 2)},
           "kinds": {k: kinds[k] for k in REGISTRY if k in kinds}, "points": points}
    if args.write:
        estimates.COSTS_FILE.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {estimates.COSTS_FILE}")


if __name__ == "__main__":
    main()
