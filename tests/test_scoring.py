"""Scoring: every class of bad input gets its own clear message; good input is scored exactly once per row."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from anodet import reader
from anodet.datasets import labels
from anodet.datasets.kdd_schema import FEATURES, RAW_COLUMNS, TRAINING_ATTACK_TYPES
from anodet.evaluation import thresholds
from anodet.scoring import core, files, output
from tests.conftest import ROOT, kdd_frame

FAST = ["pca", "zscore", "kmeans"]


@pytest.fixture(scope="module")
def sample(splits) -> pd.DataFrame:
    return kdd_frame(splits.test).iloc[:300]


def header_csv(sample: pd.DataFrame, extra: dict | None = None, order=None) -> bytes:
    frame = sample[list(order or FEATURES)].copy()
    frame.insert(0, "id", [f"r{i}" for i in range(len(frame))])
    for k, v in (extra or {}).items():
        frame[k] = v
    return frame.to_csv(index=False).encode()


def score(data: bytes | str, store, names=FAST, policy="skip", **kw):
    tables = []
    source = io.BytesIO(data.encode() if isinstance(data, str) else data)
    chosen = thresholds.resolve_thresholds(store, names, None, "reference")
    summary = files.score_source(source, store, names, chosen, policy, name="t.csv",
                                   sink=tables.append, **kw)
    return summary, (pa.concat_tables(tables).to_pandas() if tables else None)


def error_of(data: bytes | str, store, **kw) -> str:
    with pytest.raises(reader.InputError) as info:
        score(data, store, **kw)
    return str(info.value)


# ------------------------------------------------------------------ good input


def test_header_csv_any_order_passes_columns_through(store, sample):
    order = list(FEATURES)[::-1]
    summary, out = score(header_csv(sample, {"when": "2024-01-01"}, order), store)
    assert summary.rows_read == summary.rows_scored == len(sample)
    assert list(out.columns[: len(order) + 2]) == ["id", *order, "when"][: len(order) + 2]
    assert out["id"].tolist() == [f"r{i}" for i in range(len(sample))]
    assert out["row"].tolist() == list(range(1, len(sample) + 1))
    X = store.feature_set("kdd18").transform(sample[list(FEATURES)].to_numpy())
    for name in FAST:
        # float32 sums in other block sizes
        np.testing.assert_allclose(out[f"score_{name}"], store.detector(name).decision_function(X), rtol=1e-5,
                                   atol=1e-9)
        assert (out[f"flag_{name}"] == (out[f"score_{name}"] >= summary.thresholds[name])).all()


def test_raw_kdd_format_gzip_and_labels(store):
    from anodet.datasets.kdd import fetch_raw

    lines = gzip.decompress(fetch_raw()["test"].read_bytes()).split(b"\n")[:500]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    summary, out = score(data, store)
    assert summary.layout.kind == "raw" and summary.layout.compressed and summary.layout.label == "label"
    assert summary.rows_read == 500 and list(out.columns[:41]) == list(RAW_COLUMNS)
    y = labels.label_views(out["label"].to_numpy(dtype=str))
    expected = np.array([0.0 if line.split(b",")[-1] == b"normal." else 1.0 for line in lines])
    np.testing.assert_array_equal(y["true"], expected)
    assert summary.labelled["true"] == 500 and sum(summary.confusion["true"]["pca"]) == 500


def test_raw_format_without_label(store):
    from anodet.datasets.kdd import fetch_raw

    lines = gzip.decompress(fetch_raw()["test"].read_bytes()).split(b"\n")[:50]
    data = b"\n".join(line.rsplit(b",", 1)[0] for line in lines) + b"\n"
    summary, out = score(data, store)
    assert summary.layout.kind == "raw" and summary.layout.label is None and len(out) == 50


def test_label_views_novel_attacks():
    y = labels.label_views(np.array(["normal.", "smurf.", "mscan.", "", "1", "0", "Neptune"]))
    np.testing.assert_array_equal(y["true"], [0, 1, 1, np.nan, 1, 0, 1])
    np.testing.assert_array_equal(y["reference"], [0, 1, 0, np.nan, 1, 0, 1])


def test_training_attack_types_match_the_kdd_file():
    from anodet.datasets.kdd import fetch_raw, parse_attack_types

    assert parse_attack_types(fetch_raw()["attack_types"].read_bytes()) == TRAINING_ATTACK_TYPES


def test_ensemble_from_member_scores_equals_its_own_score(store, sample):
    X = sample[list(FEATURES)].to_numpy()
    scores = core.Scorer(store, ["ensemble", "pca"]).score(X).by_detector
    # float32 networks differ in the last bits with the batch a row is scored in
    np.testing.assert_allclose(scores["ensemble"],
                               store.detector("ensemble").decision_function(store.feature_set("kdd18").transform(X)),
                               rtol=1e-4, atol=1e-6)


def test_duplicates_and_cache_give_the_same_scores(store, sample):
    X = np.concatenate([sample[list(FEATURES)].to_numpy()] * 3)
    cache = core.Scorer(store, ["pca", "zscore"], cache_rows=50)
    first = cache.score(X).by_detector
    again = cache.score(X[::-1]).by_detector
    direct = store.detector("pca").decision_function(store.feature_set("kdd18").transform(X))
    np.testing.assert_allclose(first["pca"], direct, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(again["pca"], direct[::-1], rtol=1e-5, atol=1e-9)


def test_after_an_all_distinct_batch_repeats_are_looked_for_again_every_few_batches(store):
    rng = np.random.default_rng(3)
    distinct = rng.uniform(0, 1, (core.RECHECK_MIN_ROWS, len(FEATURES)))
    repeating = np.repeat(distinct[:10], 500, axis=0)  # 5,000 rows, 10 distinct
    s = core.Scorer(store, ["pca"])
    pca = store.detector("pca")
    s.score(distinct)
    counted = [s.rows_scored]
    for _ in range(core.DISTINCT_RECHECK):
        got = s.score(repeating).by_detector["pca"]
        np.testing.assert_allclose(got, pca.decision_function(store.feature_set("kdd18").transform(repeating)),
                                   rtol=1e-5, atol=1e-9)
        counted.append(s.rows_scored)
    scored = np.diff(counted)
    # unchecked batches are scored row by row; then the batch is checked again and its repeats found
    assert list(scored) == [5000] * (core.DISTINCT_RECHECK - 1) + [10]


@pytest.mark.parametrize("hashing", ["as shipped", "every row collides"])
def test_distinct_rows_is_exact(hashing, monkeypatch):
    if hashing == "every row collides":  # the hash groups everything: the exact fallback must regroup
        monkeypatch.setattr(core, "_ROW_WEIGHTS", np.zeros(512, dtype=np.uint64))
    rng = np.random.default_rng(0)
    for X in (rng.integers(0, 3, (5000, 18)).astype(float), rng.normal(size=(3000, 41))):
        X[0, 0] = -0.0
        X[1] = X[0] + 0.0
        first, codes = core.distinct_rows(X)
        assert len(first) == len(np.unique(X + 0.0, axis=0))
        assert np.array_equal(first, np.sort(first)) and codes[0] == codes[1] == 0  # first occurrences, in order
        np.testing.assert_array_equal(X[first][codes], X)


def test_out_of_range_rows_are_scored_and_marked(store, sample):
    frame = sample.iloc[:20].copy()
    frame.loc[frame.index[3], "srv_count"] = 1e9
    frame.loc[frame.index[4], "serror_rate"] = -5
    summary, out = score(header_csv(frame), store)
    assert summary.rows_scored == 20 and summary.out_of_range >= 2
    assert out.loc[3, "out_of_range"] and out.loc[4, "out_of_range"]
    assert out.loc[3, "score_pca"] > out["score_pca"].median()


def test_chunking_does_not_change_results(store, sample):
    data = header_csv(sample)
    _, whole = score(data, store)
    summary, chunked = score(data, store, chunk_bytes=997)
    assert summary.rows_read == len(sample)
    pd.testing.assert_frame_equal(whole, chunked)


# ------------------------------------------------------------------ bad input: the whole file


def test_empty_file(store):
    assert "empty (0 bytes)" in error_of(b"", store)
    assert "no records" in error_of(b"\n \n", store)


def test_header_without_rows(store):
    assert "header but no data rows" in error_of(",".join(FEATURES) + "\n\n", store)


def test_missing_columns_are_listed(store, sample):
    data = header_csv(sample).replace(b"id,srv_count,", b"id,srvcount,", 1).replace(b"dst_host_count,", b"dhc,")
    message = error_of(data, store)
    assert "the kdd18 detectors need srv_count, dst_host_count" in message


def test_duplicate_columns(store):
    message = error_of(",".join([*FEATURES, "serror_rate"]) + "\n" + ",".join(["0"] * 19) + "\n", store)
    assert "more than once: serror_rate" in message


def test_unrecognised_first_line(store):
    message = error_of("a,b,c\n1,2,3\n", store)
    assert "neither a header naming KDD feature columns nor a raw KDD record" in message


@pytest.mark.parametrize("delimiter,word", [(";", "semicolons"), ("\t", "tabs")])
def test_wrong_delimiter(store, sample, delimiter, word):
    data = sample[list(FEATURES)].to_csv(index=False, sep=delimiter).encode()
    assert f"separates its values with {word}" in error_of(data, store)


def test_not_utf8_header(store):
    header = (",".join(FEATURES) + ",caf\xe9\n").encode("latin-1")
    assert "not UTF-8 text" in error_of(header + b"0," * 18 + b"x\n", store)


def test_utf16_file(store, sample):
    assert "UTF-16" in error_of(header_csv(sample).decode().encode("utf-16"), store)


@pytest.mark.parametrize("magic,what", [(b"PK\x03\x04\x14\x00", "Excel"), (b"\xd0\xcf\x11\xe0\xa1\xb1", "Excel"),
                                        (b"%PDF-1.7\n", "PDF"), (b"\x00\x01\x02binary", "binary data")])
def test_binary_or_spreadsheet_renamed_to_csv(store, magic, what):
    assert what in error_of(magic + bytes(range(256)) * 4, store)


def test_corrupt_gzip(store, sample):
    data = gzip.compress(header_csv(sample))
    assert "corrupt or truncated" in error_of(data[: len(data) // 2], store)


def test_file_over_the_limit(store, sample):
    message = error_of(header_csv(sample), store, limits=reader.Limits(max_input_bytes=1000))
    assert "over the 0 MB limit" in message or "limit" in message
    assert "python -m anodet score" in message


# ------------------------------------------------------------------ bad input: rows


def bad_rows_csv(sample: pd.DataFrame) -> bytes:
    text = header_csv(sample.iloc[:10]).decode().splitlines()
    rows = [line.split(",") for line in text]
    col = rows[0].index("srv_count")
    rows[2][col] = "abc"  # row 2: not a number
    rows[4][col] = ""  # row 4: missing
    rows[5][col] = "inf"  # row 5: infinite (scored +inf: fail closed)
    rows[6][col] = "NaN"  # row 6: NaN
    rows[8] = rows[8][:-3]  # row 8: too few fields
    return ("\n".join(",".join(r) for r in rows) + "\n").encode()


def test_bad_rows_are_skipped_listed_and_kept_in_the_output(store, sample):
    summary, out = score(bad_rows_csv(sample), store)
    assert summary.rows_read == 10 and summary.rows_skipped == 4 and summary.rows_scored == 6
    reasons = {p.row: p.reason for p in summary.problems}
    assert set(reasons) == {2, 4, 6, 8}
    assert "srv_count is not a number ('abc')" in reasons[2]
    assert "missing" in reasons[4] and "NaN" in reasons[6]
    assert "has 16 field(s), expected 19" in reasons[8] and "the line: 'r7," in reasons[8]
    assert out["row"].tolist() == list(range(1, 11))
    skipped = out[out["status"].str.startswith("skipped: ")]
    assert skipped["row"].tolist() == [2, 4, 6, 8] and skipped["score_pca"].isna().all()
    closed = out[out["row"] == 5].iloc[0]  # infinite: fail closed, never skipped
    assert closed["status"].startswith("fail closed: srv_count is infinite")
    assert all(closed[f"score_{n}"] == np.inf and closed[f"flag_{n}"] for n in FAST)
    assert summary.fail_closed == 1 and all(summary.flagged[n] >= 1 for n in FAST)


def test_bad_rows_reject_names_rows(store, sample):
    with pytest.raises(reader.BadRowsError) as info:
        score(bad_rows_csv(sample), store, policy="reject")
    assert info.value.total == 4 and "row 2: srv_count is not a number ('abc')" in str(info.value)


def test_non_utf8_data_row(store, sample):
    data = header_csv(sample.iloc[:5]).replace(b"r3,", b"r\xff3,")
    summary, out = score(data, store)
    assert summary.problems == [] and summary.rows_scored == 5 and summary.fail_closed == 1
    assert len(out) == 5
    row = out[out["row"] == 4].iloc[0]  # a passthrough field that is not UTF-8: fail closed, flagged
    assert row["id"] == "r\\xff3" and "not UTF-8 text (byte 0xff" in row["status"]
    assert all(row[f"score_{n}"] == np.inf and row[f"flag_{n}"] for n in FAST)


def test_nan_and_empty_found_by_the_fast_path(store, sample):
    frame = sample.iloc[:5].copy()
    frame.loc[frame.index[2], "srv_count"] = np.nan
    summary, _ = score(header_csv(frame).replace(b",,", b",NaN,"), store)
    assert ([p.row for p in summary.problems] == [3]
            and "srv_count is missing (empty or NaN)" in summary.problems[0].reason)


# ------------------------------------------------------------------ downloads


def test_formula_cells_are_neutralised_in_downloads(store, sample):
    data = header_csv(sample.iloc[:4], {"note": ["=1+2", "+cmd", "-5", "@SUM(A1)"]})
    summary, _ = score(data, store)
    tables = []
    files.score_source(io.BytesIO(data), store, FAST, summary.thresholds, sink=tables.append)
    text = _csv(pa.concat_tables(tables)).decode()
    notes = [row["note"] for row in csv.DictReader(io.StringIO(text))]
    assert notes == ["'=1+2", "'+cmd", "-5", "'@SUM(A1)"]
    # the page rebuilds the download from its pandas frame, whose text columns come back as large_string
    frame = pa.concat_tables(tables).to_pandas()
    text = _csv(pa.Table.from_pandas(frame, preserve_index=False)).decode()
    assert [row["note"] for row in csv.DictReader(io.StringIO(text))] == notes


def test_thresholds(store):
    names = ["pca", "zscore"]
    assert thresholds.resolve_thresholds(store, names, "target_fpr", "true") == {
        n: store.thresholds(n, "true")["target_fpr"] for n in names}
    assert thresholds.resolve_thresholds(store, names, "0.5", "true") == {"pca": 0.5, "zscore": 0.5}
    with pytest.raises(thresholds.ThresholdError, match="Unknown threshold 'best'"):
        thresholds.resolve_thresholds(store, names, "best", "true")


# ------------------------------------------------------------------ the command


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anodet", "score", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_cli_round_trip_every_row_once(tmp_path, sample):
    src = tmp_path / "in.csv.gz"
    src.write_bytes(gzip.compress(bad_rows_csv(sample) + header_csv(sample).split(b"\n", 1)[1]))
    out = tmp_path / "out.csv"
    result = run_cli(str(src), "-o", str(out), "--detectors", "pca,zscore,kmeans", "--threshold", "best_f1")
    assert result.returncode == 0, result.stderr
    assert "Rows read: 310; scored: 306; skipped: 4" in result.stderr and "fail closed" in result.stderr
    table = pd.read_csv(out, dtype={"id": str})
    assert table["row"].tolist() == list(range(1, 311))
    # the row with too few fields cannot be split into columns: its whole line is in the status
    assert table["id"].fillna("?").tolist() == [f"r{i}" if i != 7 else "?" for i in range(10)] + [
        f"r{i}" for i in range(300)]
    assert "the line: 'r7," in table.loc[7, "status"]
    assert {"score_pca", "flag_pca", "score_kmeans", "flag_kmeans"} <= set(table.columns)
    assert table["score_kmeans"].notna().sum() == 306 and table.loc[4, "score_kmeans"] == np.inf


def test_scoring_a_small_file_loads_only_what_it_uses(tmp_path, sample, store):
    """Every default detector scores a 3-row file without importing scikit-learn, scipy, pandas, TensorFlow,
    polars or tqdm: the command's start-up is Python, numpy and pyarrow, and the models."""
    src, out = tmp_path / "three.csv", tmp_path / "three.scored.csv"
    sample.iloc[:3][list(RAW_COLUMNS)].to_csv(src, index=False)
    code = ("import sys\nfrom anodet.cli import main\n"
            f"status = main(['score', {str(src)!r}, '-o', {str(out)!r}])\n"
            "heavy = {'sklearn', 'scipy', 'pandas', 'tensorflow', 'keras', 'polars', 'tqdm', 'numba', 'dask'}\n"
            "print(status, sorted({m.split('.')[0] for m in sys.modules} & heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stderr[-2000:]
    scored = pd.read_csv(out)
    assert len(scored) == 3
    assert set(scored.filter(like="score_").columns) == {f"score_{n}" for n in core.default_detectors(store.names)}


@pytest.mark.slow
def test_cli_bad_input_exit_code_and_message(tmp_path, sample):
    src = tmp_path / "bad.csv"
    src.write_bytes(bad_rows_csv(sample))
    out = tmp_path / "out.csv"
    result = run_cli(str(src), "-o", str(out), "--detectors", "pca", "--on-bad-rows", "reject")
    assert result.returncode == 1 and "row 2: srv_count is not a number" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists() and not list(tmp_path.glob("*.part*"))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = run_cli(str(empty), "--detectors", "pca", cwd=tmp_path)
    assert result.returncode == 1 and "is empty" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_help():
    result = run_cli("--help")
    assert result.returncode == 0 and "--on-bad-rows" in result.stdout


def _csv(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    sink = output.CsvSink(buffer)
    sink(table)
    sink.close()
    return buffer.getvalue()


@pytest.mark.slow
def test_a_thresholds_file_exported_from_the_dashboard_drives_the_command(tmp_path, sample, store):
    """The explorer's "Export thresholds" file is what `anodet score --thresholds FILE` applies, per detector."""
    scores = store.score_raw("pca", sample)
    chosen = float(np.quantile(scores, 0.7))  # flags about 30% of these rows, unlike any preset
    exported = tmp_path / "anodet-thresholds-true.json"
    exported.write_bytes(thresholds.thresholds_document({"pca": chosen}, "true", store.hash))
    assert thresholds.read_thresholds_file(exported, store.names) == ("true", {"pca": chosen})  # exact round trip
    src = tmp_path / "in.csv"
    src.write_bytes(header_csv(sample))
    out = tmp_path / "out.csv"
    result = run_cli(str(src), "-o", str(out), "--detectors", "pca,zscore", "--thresholds", str(exported),
                     "--label-view", "true")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert table["flag_pca"].astype(bool).tolist() == (table["score_pca"] >= chosen).tolist()
    assert 0.2 < table["flag_pca"].mean() < 0.4
    default = store.thresholds("zscore", "true")["best_f1"]  # zscore is not in the file: the default preset
    assert table["flag_zscore"].astype(bool).tolist() == (table["score_zscore"] >= default).tolist()

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": thresholds.THRESHOLDS_FORMAT, "thresholds": {"pca": "high"}}))
    result = run_cli(str(src), "-o", str(out), "--detectors", "pca", "--thresholds", str(wrong))
    assert result.returncode != 0 and "The threshold of pca in" in result.stderr and "is not a number" in result.stderr
    assert "Traceback" not in result.stderr
