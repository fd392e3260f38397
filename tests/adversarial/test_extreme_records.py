"""Fail closed: a record far outside the training range is the most anomalous, never the least.

Every entry point (the score command, the scoring library behind the upload page, the stream)
gives such a record a finite or +inf score and flags it, with every detector.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pandas as pd
import pytest

from anodet.datasets.kdd_schema import FEATURES, NUMERIC_COLUMNS
from anodet.evaluation.thresholds import resolve_thresholds
from anodet.scoring import files
from anodet.scoring.core import SATURATION_RANGES, score_rows
from anodet.streaming.pipeline import Detection, Outputs, Pipeline, StreamConfig
from anodet.streaming.sources.local import FdSource
from tests.adversarial.conftest import EXTREME_VALUES, header_csv, run_cli

pytestmark = pytest.mark.slow  # subprocesses, sockets, trainings: CI runs them; the inner loop skips them


def extreme_frame(sample_rows: pd.DataFrame) -> pd.DataFrame:
    """Normal-looking rows with one or all numeric columns replaced by extreme values."""
    base = sample_rows.iloc[[0]]
    rows = []
    for value in EXTREME_VALUES:
        every, one = base.copy(), base.copy()
        every[list(NUMERIC_COLUMNS)] = float(value)
        one[FEATURES[3]] = float(value)
        rows += [every, one]
    return pd.concat(rows, ignore_index=True)


def far_out(store, frame: pd.DataFrame, name: str) -> np.ndarray:
    """Rows outside the saturation box of ``name``'s feature set, worked out here from its stored ranges."""
    fs = store.feature_set_for(name)
    values = frame[fs.numeric_columns].to_numpy(dtype=float)
    logged = np.array([c.kind == "log" for c in fs.numeric])
    with np.errstate(over="ignore", invalid="ignore"):
        values[:, logged] = np.log1p(np.maximum(values[:, logged], 0))
        scaled = (values - fs.data_min_) / fs.scale_
    return ~((scaled >= -SATURATION_RANGES) & (scaled <= 1 + SATURATION_RANGES)).all(axis=1)


def test_every_detector_scores_extremes_finite_or_inf_and_flags_far_out_rows(store, sample_rows):
    frame = extreme_frame(sample_rows)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow may escape the scoring routine
        scores = score_rows(store, frame).by_detector
    assert set(scores) == set(store.names)
    for name, s in scores.items():
        far = far_out(store, frame, name)
        assert far.sum() >= 10, name
        assert not np.isnan(s).any(), name
        assert np.all(np.isfinite(s) | (s == np.inf)), name
        assert np.all(s[far] >= store.default_threshold(name, "reference")), name


def test_score_command_flags_extremes_without_warnings(tmp_path, store, sample_rows):
    src = tmp_path / "extreme.csv"
    src.write_bytes(header_csv(extreme_frame(sample_rows)))
    out = tmp_path / "out.csv"
    done = run_cli("score", str(src), "-o", str(out), "--detectors", ",".join(store.names))
    assert done.returncode == 0, done.stderr.decode()
    assert b"Warning" not in done.stderr and b"overflow" not in done.stderr
    results = pd.read_csv(out)
    for name in store.names:
        far = far_out(store, extreme_frame(sample_rows), name)
        assert results[f"flag_{name}"][far].all(), name
        assert not results[f"score_{name}"].isna().any(), name


def test_upload_path_flags_extremes(store, sample_rows):
    """The upload page scores through files.score_source, as the command does."""
    tables = []
    names = store.names
    data = header_csv(extreme_frame(sample_rows))
    summary = files.score_source(io.BytesIO(data), store, names, resolve_thresholds(store, names, None, "reference"),
                                   sink=tables.append)
    assert summary.saturated >= 10 and summary.rows_skipped == 0
    assert all(summary.flagged[n] >= summary.saturated for n in names)


@pytest.mark.parametrize("detector", ["ensemble", "ocsvm", "lof", "autoencoder"])
def test_stream_scores_a_batch_with_one_huge_row_and_writes_valid_json(store, sample_rows, detector):
    rows = sample_rows.iloc[:199].copy()
    huge = rows.iloc[:1].copy()
    huge["srv_count"] = 1e300
    lines = header_csv(pd.concat([rows.iloc[:100], huge, rows.iloc[100:]])).splitlines()
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"\n".join(lines) + b"\n")
    os.close(write_fd)
    out = io.StringIO()
    threshold = store.default_threshold(detector, "reference")
    detection = Detection.from_store(store, detector, threshold)
    pipeline = Pipeline(FdSource(read_fd, "pipe"), detection, Outputs(out),
                               StreamConfig(status_every=0), status=lambda m: None)
    result = pipeline.run()
    os.close(read_fd)
    assert pipeline.error is None and result["scored"] == 200 and result["rejected"] == 0
    alerts = [json.loads(line) for line in out.getvalue().splitlines()]  # every line valid JSON
    huge_alert = [a for a in alerts if a["fields"].get("id") == "r100"]
    assert huge_alert and huge_alert[0]["saturated"] is True and huge_alert[0]["score"] > 1e300
    assert all(json.dumps(a, allow_nan=False) for a in alerts)


def test_stream_refuses_non_finite_thresholds():
    for value in ("nan", "inf", "-inf"):
        done = run_cli("stream", "--detector", "pca", f"--threshold={value}", stdin=b"")
        assert done.returncode == 2 and b"finite number" in done.stderr, done.stderr
    done = run_cli("score", "-", "--threshold", "nan", stdin=b"")
    assert done.returncode == 1 and b"finite number" in done.stderr
