"""Re-inspecting an upload on every widget change of Your data: a wide file, read once, then option by option.

Issue 31 measured 11–12 s of server CPU per widget change on a 19 MB, 10,000-column CSV. This script
writes such a file (680 rows of 10,000 integer columns and a label), then times, as the page asks:

* **plain**: :func:`anodet.datasets.inspection.inspect` from scratch for each set of options (what the
  page did), and the header read (:func:`anodet.datasets.files.file_columns`) it did on every run;
* **kept**: :mod:`anodet.datasets.inspection_cache` for the same sequence (first read, then each change).

Prints one line per step and writes ``bench/results/inspection.md``.

Usage: ``python bench/bench_inspection.py [--columns 10000] [--rows 680]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anodet.access import Principal  # noqa: E402
from anodet.datasets import inspection, inspection_cache  # noqa: E402
from anodet.datasets.files import file_columns  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "inspection.md"
STEPS: list[tuple[str, dict[str, Any]]] = [("first read (label suggested)", {"label": "label"}),
         ("normal value typed", {"label": "label", "normal": "normal"}),
         ("a column made categorical", {"label": "label", "normal": "normal", "categorical": ("c1",)}),
         ("a column excluded", {"label": "label", "normal": "normal", "categorical": ("c1",), "exclude": ("c2",)}),
         ("an id column chosen", {"label": "label", "normal": "normal", "categorical": ("c1",), "exclude": ("c2",),
                                  "id_column": "c3"}),
         ("back to an earlier choice", {"label": "label", "normal": "normal"})]


def write_wide(path: Path, rows: int, columns: int) -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 100, size=(rows, columns))
    with open(path, "w") as out:
        out.write(",".join(f"c{i}" for i in range(columns)) + ",label\n")
        for r in range(rows):
            out.write(",".join(map(str, values[r])) + ("," + ("normal" if r % 10 else "attack")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=680)
    args = parser.parse_args()
    who = Principal(id="bench@example.com", name="bench", role="analyst")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.csv"
        write_wide(path, args.rows, args.columns)
        size = path.stat().st_size / 2**20
        rows = []
        for label, options in STEPS:
            plain_opts: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
            t0 = time.perf_counter()
            file_columns(path)
            inspection.inspect(path, **plain_opts)
            plain = time.perf_counter() - t0
            t0 = time.perf_counter()
            inspection_cache.columns(path, who)
            inspection_cache.inspect(path, who, **options)
            kept = time.perf_counter() - t0
            rows.append(f"| {label} | {plain:.2f} s | {kept:.2f} s |")
            print(f"{label}: plain {plain:.2f} s, kept {kept:.2f} s", flush=True)
    load = os.getloadavg()[0]
    RESULTS.write_text("\n".join([
        "# Re-inspecting an upload on every widget change",
        "",
        f"`python bench/bench_inspection.py --columns {args.columns} --rows {args.rows}`: a {size:.1f} MB CSV of "
        f"{args.columns:,} integer columns and a label, {args.rows} rows, on {platform.machine()}, {os.cpu_count()} "
        f"cores (load average {load:.1f}: the machine is shared). Seconds per page run for each step, wall time.",
        "",
        "| widget change | plain: header and inspection from scratch (before) | kept per file and options (now) |",
        "| --- | ---: | ---: |",
        *rows,
        "",
    ]) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
