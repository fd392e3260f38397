"""Read a Parquet file as the same chunks a CSV gives: typed columns in, rows with reasons out.

A Parquet file carries its column names and types, so there is no sniffing of a first line:
the column names are checked by the same header rules as a CSV's (:func:`header_layout`), model
columns are cast to numbers (a value that is not one makes its row invalid, with the reason, as in a
CSV) and every other column is passed through as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from anodet.reader.errors import InputError
from anodet.reader.layout import InputSchema, Layout, header_layout
from anodet.reader.parse import Chunk, _feature_matrix, _value_reasons

PARQUET_SUFFIXES = (".parquet", ".pq")
BATCH_ROWS = 262_144


def is_parquet(path: object) -> bool:
    """Does ``path`` name a Parquet file (by its suffix)?"""
    return isinstance(path, str | Path) and str(path).lower().endswith(PARQUET_SUFFIXES)


def read_parquet_chunks(path: str | Path, on_layout: Callable[[Layout], None] | None = None,
                        progress: Callable[[float], None] | None = None,
                        batch_rows: int = BATCH_ROWS, schema: InputSchema | None = None) -> Iterator[Chunk]:
    """Chunks of a Parquet file, ``batch_rows`` rows at a time, numbered 1, 2, … like a CSV's rows."""
    import pyarrow.parquet as pq  # here: a CSV input never needs it

    name = str(path)
    try:
        handle = pq.ParquetFile(path)
    except FileNotFoundError:
        raise InputError(f"{name} does not exist. Check the path.") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{name} is not a readable Parquet file ({exc}). Check that it was written completely.") \
            from None
    layout = header_layout(list(handle.schema_arrow.names), name, compressed=False, schema=schema)
    if on_layout:
        on_layout(layout)
    total = max(handle.metadata.num_rows, 1)
    row = 1
    numeric = layout.numeric_columns
    for batch in handle.iter_batches(batch_size=batch_rows):
        table = pa.Table.from_batches([batch]).rename_columns(list(layout.columns))
        table = _typed(table, layout)
        X = _feature_matrix(table, numeric)
        valid, reasons, closed = _value_reasons(X, numeric)
        yield Chunk(table, X, valid, reasons, row, numeric, closed)
        row += table.num_rows
        if progress:
            progress(min(1.0, (row - 1) / total))


NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
"""Text that reads as a number (anything else in a numeric column makes its row invalid)."""


def _typed(table: pa.Table, layout: Layout) -> pa.Table:
    """Numeric model columns as float64 (anything that is not a number becomes null: its row is invalid), the rest
    text."""
    columns = []
    for name in layout.columns:
        column = table.column(name)
        if name in layout.numeric_columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                numeric = pc.match_substring_regex(column, NUMBER)
                column = pc.cast(pc.if_else(numeric, column, pa.scalar(None, pa.string())), pa.float64())
            else:
                column = pc.cast(column, pa.float64(), safe=False)
        else:
            column = pc.cast(column, pa.string())
        columns.append(column)
    return pa.table(columns, names=list(layout.columns))


__all__ = ["PARQUET_SUFFIXES", "is_parquet", "read_parquet_chunks"]
