"""Results CSVs: every number written back exactly, counts without a trailing .0, text made safe, gzip by name."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from anodet.scoring.output import CsvSink


def _chunks() -> list[pa.Table]:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(size=998) * 10.0 ** rng.integers(-300, 300, 998), [1e-5, 1 / 3]])
    first = pa.table({"count": pa.array(np.arange(1000, dtype=np.float64) * 128),
                      "rate": pa.array(rng.uniform(0, 1, 1000)),
                      "note": pa.array(["=HYPERLINK(1)", "a,b", 'say "hi"'] + ["ok"] * 997),
                      "score_x": pa.array(scores, mask=np.arange(1000) == 5),
                      "flag_x": pa.array(scores > 0, mask=np.arange(1000) == 5)})
    second = first.slice(0, 10).set_column(1, "rate", pa.array(np.full(10, 0.5)))
    return [first, second]


def test_csv_results_round_trip_exactly_and_write_counts_as_integers(tmp_path):
    out = tmp_path / "results.csv.gz"
    sink = CsvSink(out)
    for chunk in _chunks():
        sink(chunk)
    sink.close()
    text = gzip.decompress(out.read_bytes()).decode()
    lines = text.splitlines()
    assert lines[0] == "count,rate,note,score_x,flag_x"
    assert lines[2].startswith("128,") and ".0," not in lines[2].split(",", 1)[0]
    assert "'=HYPERLINK(1)" in lines[1] and '"a,b"' in lines[2] and '"say ""hi"""' in lines[3]
    back = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(
        column_types={"count": pa.float64(), "rate": pa.float64(), "score_x": pa.float64(), "note": pa.string()}))
    expected = pa.concat_tables(_chunks())
    assert back.num_rows == expected.num_rows == 1010
    for name in ("count", "rate", "score_x"):  # shortest round-trip text: the same float64 values
        np.testing.assert_array_equal(back.column(name).to_numpy(zero_copy_only=False),
                                      expected.column(name).to_numpy(zero_copy_only=False))
    assert back.column("score_x")[5].as_py() is None and back.column("flag_x")[5].as_py() is None
    assert back.column("note")[1].as_py() == "a,b"


# ------------------------------------------------------------------ input lines copied as read


def _scored_csv(store, data: bytes, tmp_path, chunk_bytes: int = 1 << 20, names=("pca", "iforest")) -> bytes:
    """``data`` scored through the file pipeline into a CSV file, as ``python -m anodet score`` writes it."""
    import io

    from anodet.evaluation.thresholds import resolve_thresholds
    from anodet.scoring.files import score_source

    out = tmp_path / "scored.csv"
    sink = CsvSink(out)
    score_source(io.BytesIO(data), store, list(names), resolve_thresholds(store, list(names), None, "reference"),
                 sink=sink, chunk_bytes=chunk_bytes, name="in.csv")
    sink.close()
    return out.read_bytes()


def _kdd18_lines(splits, rows: int) -> list[bytes]:
    from anodet.datasets.kdd_schema import FEATURES
    from tests.conftest import kdd_frame

    frame = kdd_frame(splits.test).iloc[:rows][list(FEATURES)]
    lines = [",".join(f"{v:g}" for v in row).encode() for row in frame.to_numpy()]
    return [b"id," + ",".join(FEATURES).encode()] + [f"r{i},".encode() + line for i, line in enumerate(lines)]


def test_input_lines_are_written_as_read_and_scores_as_formatted(store, splits, tmp_path):
    lines = _kdd18_lines(splits, 400)
    lines[3] = lines[3].replace(b"r2,", b'"r2, quoted",', 1)  # quoting kept as it was
    lines[5] = lines[5].replace(b"r4,", b"r4,", 1).replace(b",0,", b",0.000,", 1)  # a number as written
    data = b"\n".join(lines) + b"\n"
    text = _scored_csv(store, data, tmp_path, chunk_bytes=8192)  # several chunks
    out = text.splitlines()
    assert out[0] == lines[0] + b",row,status,out_of_range,score_pca,flag_pca,score_iforest,flag_iforest"
    for i, line in enumerate(out[1:], start=1):
        assert line.startswith(lines[i] + b"," + str(i).encode() + b",scored,"), i
    # the same file formatted column by column (a chunk handed over without its lines) reads back the same
    import io

    from anodet.evaluation.thresholds import resolve_thresholds
    from anodet.scoring.files import score_source

    tables: list[pa.Table] = []
    score_source(io.BytesIO(data), store, ["pca", "iforest"], resolve_thresholds(store, ["pca", "iforest"], None,
                                                                                  "reference"), sink=tables.append)
    expected = pa.concat_tables(tables)
    back = pacsv.read_csv(io.BytesIO(text), convert_options=pacsv.ConvertOptions(column_types=expected.schema))
    assert back.equals(expected)


def test_lines_that_cannot_be_copied_are_formatted(store, splits, tmp_path):
    lines = _kdd18_lines(splits, 30)
    crlf = _scored_csv(store, b"\r\n".join(lines) + b"\r\n", tmp_path)
    assert crlf == _scored_csv(store, b"\n".join(lines) + b"\n", tmp_path)  # CRLF: the same lines, LF ends
    risky = list(lines)
    risky[2] = risky[2].replace(b"r1,", b"=cmd(),", 1)
    text = _scored_csv(store, b"\n".join(risky) + b"\n", tmp_path).decode()
    assert "\n'=cmd()," in text  # neutralised, as every download is
    blank = _scored_csv(store, b"\n".join(lines[:10]) + b"\n\n" + b"\n".join(lines[10:]) + b"\n", tmp_path)
    assert [line.split(b",")[0] for line in blank.splitlines()[1:]] == [f"r{i}".encode() for i in range(30)]
    bad = list(lines)
    bad[4] = bad[4].replace(b"r3,", b"r3,abc,", 1)  # a field too many: skipped, in its place
    rows = pacsv.read_csv(pa.py_buffer(_scored_csv(store, b"\n".join(bad) + b"\n", tmp_path)))
    assert rows.column("row").to_pylist() == list(range(1, 31))
    assert rows.column("status").to_pylist()[3].startswith("skipped: ")


def test_small_chunks_are_written_byte_for_byte_as_polars_writes_them():
    """A chunk of a few rows is formatted in Python (no polars import for a 3-row file): the same bytes."""
    import io

    import polars as pl

    from anodet.scoring.output import _python_csv

    rng = np.random.default_rng(1)
    n = 40_000
    floats = rng.random(n) * np.power(10.0, rng.integers(-320, 309, n).astype(float))
    floats[:12] = [0.0, -0.0, 1e-5, 9.999999999999999e-06, 1e-4, 1e15, 1e16, 9999999999999998.0, 5e-324,
                   np.inf, -np.inf, np.nan]
    floats[12:4000] = np.round(floats[12:4000] % 1e17)  # whole numbers of every size
    text = ["ok", "a,b", 'say "hi"', "line\nbreak", "cr\rx", " lead", "", "'=x", "é", "#x"]
    table = pa.table({
        "score, of x": pa.array(floats, mask=np.arange(n) % 97 == 3),
        "row": pa.array(np.arange(n) - 5),
        "flag": pa.array(floats > 1, mask=np.arange(n) % 89 == 1),
        "note": pa.array([text[i % len(text)] for i in range(n)], mask=np.arange(n) % 83 == 2),
        'say "x"': pa.array([text[i % len(text)] for i in range(n)], pa.large_string()),
    })
    for header in (True, False):
        expected = io.BytesIO()
        pl.from_arrow(table).write_csv(expected, include_header=header)
        assert _python_csv(table, header) == expected.getvalue()
