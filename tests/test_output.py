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
