"""Shared helpers of the adversarial suite: hostile inputs for every entry point, kept so they stay fixed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anodet.datasets.kdd_schema import RAW_COLUMNS
from tests.conftest import kdd_frame

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 120, cwd: Path | None = None,
            **popen) -> subprocess.CompletedProcess:
    """``python -m anodet ARGS`` in a subprocess; fails the test (not hangs) past ``timeout``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "anodet", *args], input=stdin, capture_output=True,
                          timeout=timeout, cwd=cwd or ROOT, env=env, **popen)


@pytest.fixture(scope="session")
def sample_rows(splits) -> pd.DataFrame:
    """2,000 test records (both classes), the 41 KDD columns (so every feature set scores them)."""
    test = kdd_frame(splits.test)
    rows = test.iloc[np.r_[0:1000, len(test) - 1000:len(test)]]
    return rows[list(RAW_COLUMNS)]


def header_csv(rows: pd.DataFrame, extra: dict | None = None) -> bytes:
    frame = rows.copy()
    frame.insert(0, "id", [f"r{i}" for i in range(len(frame))])
    for k, v in (extra or {}).items():
        frame[k] = v
    return frame.to_csv(index=False).encode()


EXTREME_VALUES = ["1e308", "-1e308", "1e39", "-1e39", "1.7976931348623157e308", "1e300", "4.9e-324",
                  "2.2250738585072014e-308", "-0.0", "0", "-1e-300", "123456789012345678901234567890"]


@pytest.fixture(scope="session")
def raw_test_lines() -> list[bytes]:
    """Raw KDD test lines (41 values and the label), read from the raw file (never committed)."""
    import gzip

    from anodet.datasets.kdd import fetch_raw

    return gzip.decompress(fetch_raw()["test"].read_bytes()).splitlines()[:2000]
