"""Bring your own data at size: ``dataset add`` + ``train --dataset`` on a 1,000,000-row, 40-column CSV.

Generates (in a temporary folder, never in the repository) a CSV of distinct rows: 34 continuous
columns (correlated Gaussians, a few heavy-tailed), 1 count, 4 categorical columns (3 to 40
levels) and a label column with about 2% anomalies (rows shifted off the normal manifold). Then
runs, each as its own process under ``/usr/bin/time -v``:

1. ``python -m anodet dataset add bench --train FILE --label label --normal normal``
2. ``python -m anodet train --dataset bench`` (the whole family, no hand tuning)

and prints the wall time and peak resident memory of each, and the test ROC AUC per detector.
Targets (issue 10): both ≤ 10 min in total on 2 cores, peak ≤ 4 GB. The figures go to
``bench/results/dataset.md`` with ``--write``.

Usage: ``python bench/bench_dataset.py [--rows 1000000] [--write]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "dataset.md"
NUMERIC = 34
CATEGORICAL = {"proto": 3, "service": 40, "state": 12, "region": 8}


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write the CSV in slices (bounded memory); every row is distinct (continuous values)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(8, NUMERIC)) / np.sqrt(8)
    writer = None
    step = 100_000
    for start in range(0, rows, step):
        n = min(step, rows - start)
        anomaly = rng.uniform(size=n) < 0.02
        latent = rng.normal(size=(n, 8))
        X = latent @ mixing + 0.1 * rng.normal(size=(n, NUMERIC))
        X[anomaly] += rng.normal(0, 1.5, size=(int(anomaly.sum()), NUMERIC))  # off the normal manifold
        X[:, :4] = np.exp(X[:, :4] * 2) * 100  # heavy-tailed "byte" columns
        cols = {f"f{j:02d}": np.round(X[:, j], 5) for j in range(NUMERIC)}
        cols["count"] = rng.poisson(np.where(anomaly, 30, 5))
        for k, (name, levels) in enumerate(CATEGORICAL.items()):
            p = np.arange(levels, 0, -1, dtype=float) ** 1.5
            codes = rng.choice(levels, n, p=p / p.sum())
            codes[anomaly] = rng.integers(0, levels, int(anomaly.sum())) if k % 2 else codes[anomaly]
            cols[name] = np.array([f"{name}{c}" for c in range(levels)])[codes]
        cols["label"] = np.where(anomaly, "attack", "normal")
        table = pa.table(cols)
        if writer is None:
            writer = pacsv.CSVWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout+stderr) of a child process under /usr/bin/time -v."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return wall, int(peak.group(1)) / 1024 if peak else float("nan"), proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="anodet-bench-dataset-") as tmp:
        folder = Path(tmp)
        csv = folder / "flows.csv"
        t0 = time.perf_counter()
        generate(csv, args.rows)
        print(f"generated {csv.stat().st_size / 2**20:,.0f} MB CSV ({args.rows:,} rows x 40 columns) in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        env = {**os.environ, "ANODET_DATA_DIR": str(folder / "data"), "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": str(ROOT)}
        py = sys.executable
        add = timed([py, "-m", "anodet", "dataset", "add", "bench", "--train", str(csv), "--label", "label",
                     "--normal", "normal"], env)
        print(f"dataset add: {add[0]:.1f} s, peak RSS {add[1]:,.0f} MB", flush=True)
        train = timed([py, "-m", "anodet", "train", "--dataset", "bench"], env)
        print(f"train --dataset: {train[0]:.1f} s, peak RSS {train[1]:,.0f} MB", flush=True)
        manifest = json.loads((folder / "data" / "datasets" / "bench" / "store" / "manifest.json").read_text())
        seconds = json.loads((folder / "data" / "datasets" / "bench" / "store" / "run.json").read_text())["fit_seconds"]
        declaration = json.loads((folder / "data" / "datasets" / "bench" / "dataset.json").read_text())
        log = [line for line in train[2].splitlines() if line.strip() and "Command being timed" not in line
               and not line.startswith("\t")]
    rows = []
    for name, entry in manifest["detectors"].items():
        auc = entry["metrics"]["test"]["label"]["roc_auc"]
        sub = f" (on {entry['train_rows']:,} rows)" if entry.get("subsampled_from") else ""
        rows.append((name, auc, seconds[name], sub))
        print(f"  {name:<24} test ROC AUC {auc:.4f}  fit {seconds[name]:>6.1f} s{sub}")
    total, peak = add[0] + train[0], max(add[1], train[1])
    print(f"total {total:.1f} s ({total / 60:.1f} min, target ≤ 10 min); peak RSS {peak:,.0f} MB (target ≤ 4,096 MB)")
    if args.write:
        sp = declaration["splits"]
        lines = [
            "# Bring your own data at size (`bench/bench_dataset.py`)", "",
            f"{args.rows:,} distinct rows x 40 columns (34 continuous, 1 count, 4 categorical with 3-40 levels, "
            "a label with ~2% anomalies), generated in a temporary folder; each command a separate process "
            f"under `/usr/bin/time -v`. Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}.", "",
            "| step | wall time | peak RSS |", "| --- | ---: | ---: |",
            f"| `dataset add` (inspect, sha256, build and cache the splits) | {add[0]:.1f} s | {add[1]:,.0f} MB |",
            f"| `train --dataset` (13 detectors, thresholds on validation) | {train[0]:.1f} s | {train[1]:,.0f} MB |",
            f"| **total** (target ≤ 10 min, ≤ 4 GB) | **{total:.1f} s ({total / 60:.1f} min)** | "
            f"**{peak:,.0f} MB** |", "",
            f"Splits: train {sp['train']['rows']:,} normal rows, validation {sp['validation']['rows']:,} "
            f"({sp['validation']['anomalies']:,} anomalies), test {sp['test']['rows']:,} "
            f"({sp['test']['anomalies']:,} anomalies).", "",
            "| detector | test ROC AUC | fit seconds |", "| --- | ---: | ---: |",
            *(f"| {n}{s} | {a:.4f} | {t:.1f} |" for n, a, t, s in rows), "",
            "The training log:", "", "```", *log, "```", "",
        ]
        RESULTS.write_text("\n".join(lines))
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
