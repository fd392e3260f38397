"""Issue 24, row 1: a producer who controls one field cannot keep a record out of the alerts.

An infinite value (``inf``, ``1e400``) or a passthrough field that is not UTF-8 used to get the
record rejected, with no flag and no alert, while ``1e300`` was flagged. Now such a record fails
closed, in ``stream`` and ``score`` alike: scored +inf by every detector, flagged, its reason kept.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.adversarial.conftest import header_csv, run_cli

pytestmark = pytest.mark.slow  # subprocesses: CI runs them; the inner loop skips them

HOSTILE = {3: ("src_bytes", "1e400"), 4: ("srv_count", "inf"), 5: ("dst_host_count", "-inf"),
           7: ("srv_count", "1e300")}
"""Row → (column, value) written into that row; row 6's id is made not UTF-8."""
CLOSED = {3: "src_bytes is infinite", 4: "srv_count is infinite", 5: "dst_host_count is infinite",
          6: "not UTF-8 text"}


def hostile_csv(sample_rows: pd.DataFrame) -> bytes:
    frame = sample_rows.iloc[:40].copy()
    frame = frame.astype({c: object for c, _ in HOSTILE.values()})
    for row, (column, value) in HOSTILE.items():
        frame.iloc[row, frame.columns.get_loc(column)] = value
    return header_csv(frame).replace(b"\nr6,", b"\nr\xff6,")


def test_stream_alerts_infinite_values_and_non_utf8_fields_with_the_reason(tmp_path, sample_rows):
    alerts, rejects = tmp_path / "alerts.jsonl", tmp_path / "rejects.jsonl"
    done = run_cli("stream", "--detector", "pca", "--alerts", str(alerts), "--rejects", str(rejects),
                   "--status-every", "0", stdin=hostile_csv(sample_rows))
    assert done.returncode == 0, done.stderr.decode()
    got = {a["fields"]["id"]: a for a in map(json.loads, alerts.read_text().splitlines())}
    assert not rejects.exists() or rejects.read_text() == ""  # nothing refused
    for row, reason in CLOSED.items():
        alert = got["r\\xff6" if row == 6 else f"r{row}"]
        assert alert["saturated"] is True and alert["score"] == pytest.approx(1.7976931348623157e308)
        assert reason in alert["reason"] and "fail closed" in alert["reason"]
    assert "reason" not in got["r7"] and got["r7"]["saturated"] is True  # 1e300: far out, flagged as before
    assert got["r3"]["values"].get("srv_count") is not None and got["r4"]["values"]["srv_count"] == "inf"
    for line in alerts.read_text().splitlines():  # every alert line is strict JSON
        json.dumps(json.loads(line), allow_nan=False)


def test_score_flags_the_same_rows_with_the_reason_in_status(tmp_path, sample_rows):
    src, out = tmp_path / "hostile.csv", tmp_path / "out.csv"
    src.write_bytes(hostile_csv(sample_rows))
    done = run_cli("score", str(src), "-o", str(out), "--detectors", "pca,zscore,autoencoder")
    assert done.returncode == 0, done.stderr.decode()
    assert b"skipped: 0" in done.stderr and b"fail closed" in done.stderr
    table = pd.read_csv(out, dtype={"id": str})
    for row, reason in CLOSED.items():
        result = table.iloc[row]
        assert result["status"].startswith("fail closed: ") and reason in result["status"]
        for name in ("pca", "zscore", "autoencoder"):
            assert result[f"score_{name}"] == np.inf and bool(result[f"flag_{name}"]), (row, name)
    assert table.iloc[6]["id"] == "r\\xff6"
    assert (table["status"] == "scored").sum() == len(table) - len(CLOSED)
