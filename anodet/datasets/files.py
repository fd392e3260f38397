"""Reading a user's CSV or Parquet file in bounded batches, with one sentence for what cannot be read."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from anodet.datasets.errors import DatasetError

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK_BYTES = 8 << 20
"""Bytes of CSV text read per batch."""
PARQUET_BATCH_ROWS = 65_536
NUMBER = r"^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$"
"""A cell that reads as a plain number."""


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def check_file(path: Path | str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"There is no file {path}; check the path (CSV or Parquet).")
    if not path.is_file():
        raise DatasetError(f"{path} is not a file; give a CSV or Parquet file.")
    return path


def unreadable(path: Path, exc: Exception) -> DatasetError:
    what = "Parquet" if is_parquet(path) else "CSV"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatasetError(f"{path} cannot be read as {what} ({reason}); save it as comma-separated CSV with a header "
                        "row, or as Parquet.")


def file_columns(path: Path) -> tuple[list[str], dict[str, pa.DataType]]:
    """(column names, types as inferred from the first block) of a CSV or Parquet file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = check_file(path)
    try:
        if is_parquet(path):
            schema = pq.ParquetFile(path).schema_arrow
        else:
            with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES)) as reader:
                schema = reader.schema
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise unreadable(path, exc) from None
    names = list(schema.names)
    lowered = [n.strip().lower() for n in names]
    duplicates = sorted({n for n in lowered if lowered.count(n) > 1})
    if duplicates:
        raise DatasetError(f"The header of {path} names {', '.join(duplicates)} more than once; give every column "
                           "its own name.")
    if any(not n.strip() for n in names):
        raise DatasetError(f"Column {lowered.index('') + 1} of {path} has no name; give every column a name.")
    return names, {f.name: f.type for f in schema}


def batches(path: Path, types: dict[str, pa.DataType], columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """``columns`` of the file in record batches, read as ``types``; ArrowInvalid on a value that does not convert."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if is_parquet(path):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=list(columns)):
            yield _cast_batch(batch, types)
        return
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(columns),
                                                                 strings_can_be_null=True))
    with reader:
        yield from reader


def _cast_batch(batch: pa.RecordBatch, types: dict[str, pa.DataType]) -> pa.RecordBatch:
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = []
    for name, array in zip(batch.schema.names, batch.columns, strict=True):
        want = types.get(name)
        if want is not None and array.type != want:
            array = pc.cast(array, want)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def is_number_type(t: pa.DataType) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_integer(t) or pt.is_floating(t) or pt.is_decimal(t))


def is_bool(t: pa.DataType) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_boolean(t))


def is_temporal(t: pa.DataType) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_temporal(t))


def first_bad_value(path: Path, column: str, kind: str) -> tuple[int, str] | None:
    """(data row, value) of the first non-empty cell of ``column`` that is not a number (kind "number") or
    that is one (kind "text"); None if there is none."""
    import pyarrow as pa
    import pyarrow.compute as pc

    offset = 0
    for batch in batches(path, {column: pa.string()}, [column]):
        values = batch.column(0)
        numeric = pc.match_substring_regex(values, NUMBER)
        wanted = pc.invert(numeric) if kind == "number" else numeric
        hits = pc.indices_nonzero(pc.fill_null(wanted, False))
        if len(hits):
            i = hits[0].as_py()
            return offset + i + 1, values[i].as_py()
        offset += len(values)
    return None


def conversion_error(path: Path, names: list[str], exc: Exception) -> DatasetError:
    """The sentence for a value that would not convert (a text cell in a column of numbers)."""
    found = re.search(r"column #(\d+)", str(exc))
    if found and int(found.group(1)) < len(names):
        column = names[int(found.group(1))]
        bad = first_bad_value(path, column, "number")
        where = f" (data row {bad[0]:,} holds {bad[1]!r})" if bad else ""
        return DatasetError(f"Column {column!r} of {path} mixes numbers and text{where}; fix those rows, or declare "
                            f"it categorical (--categorical {column}) to treat every value as a category.")
    return unreadable(path, exc)


def listed(names: Sequence[str], limit: int = 12) -> str:
    """Names joined with commas, the first ``limit`` of them and how many more."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
