"""Property tests: whatever the bytes or table, scoring raises nothing but its own InputError,
and every data row comes out exactly once."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anodet import reader
from anodet.datasets.kdd_schema import FEATURES
from anodet.evaluation import thresholds
from anodet.scoring import files

NAMES = ["pca", "zscore"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(data: bytes, store, policy: str = "skip", chunk_bytes: int = reader.CHUNK_BYTES):
    tables = []
    chosen = thresholds.resolve_thresholds(store, NAMES, None, "reference")
    try:
        summary = files.score_source(io.BytesIO(data), store, NAMES, chosen, policy, name="p.csv",
                                       sink=tables.append, chunk_bytes=chunk_bytes)
    except reader.InputError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return None, None
    return summary, pa.concat_tables(tables) if tables else None


@pytest.mark.slow
@SETTINGS
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_input_error(store, data):
    run(data, store)
    run(gzip.compress(data), store)


cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.sampled_from(["", "nan", "inf", "-inf", "=1+1", "@x", "1e400", " 3 ", '"q,uoted"', "\r"]),
)


@st.composite
def tables(draw):
    extra = draw(st.lists(st.sampled_from(["id", "ts", "label", "note"]), unique=True, max_size=3))
    columns = list(draw(st.permutations([*FEATURES, *extra])))
    if draw(st.booleans()):  # sometimes drop or duplicate a feature column
        columns = columns[1:] if draw(st.booleans()) else [*columns, columns[0]]
    n = draw(st.integers(0, 12))
    rows = [[draw(cell) for _ in columns] for _ in range(n)]
    if n and draw(st.booleans()):  # a ragged row
        rows[draw(st.integers(0, n - 1))].append("1")
    lines = [",".join(columns)] + [",".join(r) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass"), n


@pytest.mark.slow
@SETTINGS
@given(table=tables(), chunk=st.sampled_from([64, 1000, reader.CHUNK_BYTES]))
def test_arbitrary_tables_every_row_once_or_input_error(store, table, chunk):
    data, _ = table
    summary, out = run(data, store, chunk_bytes=chunk)
    if summary is None:
        return
    assert summary.rows_read == summary.rows_scored + summary.rows_skipped
    assert out.num_rows == summary.rows_read
    assert out.column("row").to_pylist() == list(range(1, summary.rows_read + 1))
    status = np.array(out.column("status").to_pylist(), dtype=object)
    scores = out.column("score_pca").to_numpy(zero_copy_only=False)
    assert np.isfinite(scores[status == files.OK].astype(float)).all()
    closed = np.array([str(s).startswith("fail closed: ") for s in status], dtype=bool)
    assert (scores[closed].astype(float) == np.inf).all()  # an infinite value: scored +inf, never skipped
    assert (status == files.OK).sum() + closed.sum() == summary.rows_scored
