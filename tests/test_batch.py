"""Many files into a folder of parts, one after another or on Dask: the same rows, the same scores."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow.parquet as pq
import pytest

from anodet.datasets.kdd_schema import FEATURES, RAW_COLUMNS
from anodet.evaluation.thresholds import resolve_thresholds
from anodet.reader import BadRowsError, InputError
from anodet.scoring.batch import expand_inputs, score_many
from anodet.scoring.files import score_source
from anodet.scoring.output import ResultsFile
from tests.conftest import kdd_frame

NAMES = ["pca", "ocsvm@kdd41", "ensemble@kdd41", "supervised"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, splits):
    folder = tmp_path_factory.mktemp("many")
    rows = kdd_frame(splits.test)[list(RAW_COLUMNS)].assign(
        conn_id=[f"c{i}" for i in range(len(kdd_frame(splits.test)))])
    rows.iloc[:1500].to_csv(folder / "a.csv", index=False)
    rows.iloc[1500:3000].to_csv(folder / "b.csv.gz", index=False, compression="gzip")
    rows.iloc[3000:4500].to_parquet(folder / "c.parquet", index=False)
    return folder


@pytest.mark.slow
def test_dask_parts_are_the_local_engines_row_for_row(store, inputs, tmp_path):
    files = expand_inputs([str(inputs / "*")])
    assert [p.rsplit("/", 1)[1] for p in files] == ["a.csv", "b.csv.gz", "c.parquet"]
    thresholds = resolve_thresholds(store, NAMES, None, "reference")
    local = score_many(files, tmp_path / "local", store, NAMES, thresholds)
    dask = score_many(files, tmp_path / "dask", store, NAMES, thresholds, engine="dask", workers=2)
    assert local.summary.rows_scored == dask.summary.rows_scored == 4500
    assert local.summary.flagged == dask.summary.flagged and not local.failed and not dask.failed
    local_parts, dask_parts = local.parts, dask.parts
    for a, b in zip(local_parts, dask_parts, strict=True):
        assert a.read_bytes() == b.read_bytes()
    # Passthrough columns survive, and each part holds its own file's rows.
    third = pd.read_csv(dask_parts[2])
    assert third["conn_id"].iloc[0] == "c3000" and len(third) == 1500
    assert (tmp_path / "dask" / "summary.json").exists()


def test_parquet_in_and_out_with_the_local_engine(store, inputs, tmp_path):
    thresholds = resolve_thresholds(store, NAMES, None, "reference")
    results = ResultsFile(tmp_path / "out.parquet")
    sink = results.open()
    summary = score_source(str(inputs / "c.parquet"), store, NAMES, thresholds, sink=sink)
    results.commit()
    table = pq.read_table(tmp_path / "out.parquet")
    assert summary.rows_scored == table.num_rows == 1500
    csv = []
    score_source(io.BytesIO(pd.read_parquet(inputs / "c.parquet").to_csv(index=False).encode()), store, NAMES,
                 thresholds, sink=csv.append)
    for name in NAMES:
        assert table.column(f"score_{name}").to_pylist() == csv[0].column(f"score_{name}").to_pylist()


def test_a_bad_parquet_value_is_a_skipped_row_or_a_rejection(store, splits, tmp_path):
    # numbers written as text, one of them not a number
    rows = kdd_frame(splits.test).iloc[:20][list(FEATURES)].astype(str)
    rows.iloc[4, 2] = "oops"
    rows.to_parquet(tmp_path / "bad.parquet")
    tables = []
    summary = score_source(str(tmp_path / "bad.parquet"), store, ["pca"], {"pca": 1.0}, sink=tables.append)
    assert summary.rows_skipped == 1 and summary.problems[0].row == 5
    assert "srv_serror_rate" in summary.problems[0].reason
    with pytest.raises(BadRowsError):
        score_source(str(tmp_path / "bad.parquet"), store, ["pca"], {"pca": 1.0}, on_bad_rows="reject")


def test_inputs_that_match_nothing_are_named(tmp_path):
    with pytest.raises(InputError, match="No file matches"):
        expand_inputs([str(tmp_path / "*.csv")])
    with pytest.raises(InputError, match="is a folder"):
        expand_inputs([str(tmp_path)])


def test_a_failing_write_is_said_per_input_and_leaves_no_temporary_file(store, inputs, tmp_path, monkeypatch):
    import errno

    from anodet.scoring.output import CsvSink

    def full(self, table):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(CsvSink, "_write", full)
    files = [str(inputs / "a.csv"), str(inputs / "b.csv.gz")]
    batch = score_many(files, tmp_path / "out", store, ["pca"], resolve_thresholds(store, ["pca"], None, "reference"))
    assert [source for source, _ in batch.failed] == files and not batch.parts
    assert all("is full" in reason for _, reason in batch.failed)  # a write error, not "cannot read"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["summary.json"]
