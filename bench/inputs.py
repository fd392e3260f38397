"""Benchmark inputs: N KDD-like records that (almost) never repeat.

KDD's test rows repeat a lot, so a scorer that caches or deduplicates looks faster on them
than it is on real traffic. These rows are drawn from the cached kdd-8020 test split and the
15 rate columns are jittered by at most ``JITTER`` (reflected back into [0, 1]), so at least
99.9% of the rows are distinct while staying in KDD's value ranges. Written as a header CSV
naming all 41 KDD columns (or, with ``columns=FEATURES``, the 18 the kdd18 detectors read).
Nothing generated here is committed.

    python bench/inputs.py OUT.csv [--rows 1000000] [--seed 0] [--kdd18]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from anodet.datasets.kdd_schema import FEATURES, RAW_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JITTER = 0.004
RATE_COLUMNS = tuple(f for f in FEATURES if f.endswith("_rate"))


def distinct_rows(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` records (all 41 KDD columns) sampled from the test split, rate columns jittered."""
    from anodet.datasets.kdd import load_splits

    test = load_splits().test.rows
    rng = np.random.default_rng(seed)
    sample = test[list(RAW_COLUMNS)].iloc[rng.integers(0, len(test), rows)].reset_index(drop=True)
    for column in RATE_COLUMNS:
        values = sample[column].to_numpy(np.float64) + rng.uniform(-JITTER, JITTER, rows)
        values = np.abs(values)  # reflect at 0 ...
        sample[column] = np.round(1 - np.abs(1 - values), 6)  # ... and at 1
    return sample


def distinct_fraction(frame: pd.DataFrame) -> float:
    """Share of rows that are distinct."""
    return 1 - frame.duplicated().sum() / max(len(frame), 1)


def write_csv(path: Path, rows: int, seed: int = 0, columns: tuple[str, ...] = RAW_COLUMNS) -> float:
    """Write the rows (``columns`` of them) to ``path``; return their distinct fraction."""
    frame = distinct_rows(rows, seed)[list(columns)]
    frame.to_csv(path, index=False)
    return distinct_fraction(frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kdd18", action="store_true", help="only the 18 columns the kdd18 detectors read")
    args = parser.parse_args(argv)
    fraction = write_csv(args.out, args.rows, args.seed, FEATURES if args.kdd18 else RAW_COLUMNS)
    print(f"wrote {args.rows:,} rows to {args.out} ({fraction:.4%} distinct)")
    return 0 if fraction >= 0.999 else 1


if __name__ == "__main__":
    raise SystemExit(main())
