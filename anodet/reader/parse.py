"""Parse a block of complete lines into typed rows: features, passthrough columns, and a reason per bad row.

Each block is parsed by pyarrow (multithreaded, typed); only a block that fails the fast parse
is re-read line by line to say exactly which rows are bad and why. Files, uploads and stream
micro-batches all come through :func:`parse_block`, so they accept and refuse the same rows.

*Fail closed.* A row whose numbers are all there but one is infinite (``inf``, ``1e400``), or whose
text is not UTF-8 (a passthrough field, a label), is not refused: refusing it would let whoever
writes one field keep a record out of the alerts. It is kept valid, marked in
:attr:`Chunk.fail_closed` with its reason in :attr:`Chunk.reasons`, and the scorer gives it +inf
with every detector (:func:`anodet.scoring.core.fail_closed`). A missing or NaN value, text where a
number belongs, a wrong field count or a NUL byte still make a row invalid.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from anodet.reader.arrays import float_values
from anodet.reader.layout import Layout, split_line
from anodet.reader.limits import MAX_LINE_BYTES

LINE_END = re.compile(rb"\r\n|\r|\n")
"""Line ends as pyarrow reads them: a lone carriage return ends a line too."""

NUL_REASON = "holds a NUL byte (binary data, not CSV text)"

csv.field_size_limit(MAX_LINE_BYTES)


@dataclass
class Chunk:
    """Parsed rows of one block: the passthrough table, features, validity and problems."""

    table: pa.Table  # every input column; numeric model columns float64, the rest strings; bad rows null
    features: np.ndarray  # (n, numeric model columns) float64, raw values (garbage where not valid)
    valid: np.ndarray  # (n,) bool
    reasons: list[str | None]  # per row: None if valid, else why not
    first_row: int  # row number of the first row
    numeric_columns: tuple[str, ...] = ()  # the columns of ``features``, in order
    fail_closed: np.ndarray = None  # type: ignore[assignment]  # (n,) bool: valid rows scored +inf (reasons says why)
    lines: bytes | None = None  # the block as read, when each row is one of its non-empty lines (the fast parse)

    def __post_init__(self) -> None:
        if self.fail_closed is None:
            self.fail_closed = np.zeros(len(self.valid), dtype=bool)

    def __len__(self) -> int:
        return len(self.valid)


def _convert_options(layout: Layout) -> pacsv.ConvertOptions:
    types = {c: (pa.float64() if c in layout.numeric else pa.string()) for c in layout.columns}
    return pacsv.ConvertOptions(column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False)


_OPTIONS: dict[Layout, pacsv.ConvertOptions] = {}


def _fast_parse(data: bytes, layout: Layout) -> pa.Table | None:
    options = _OPTIONS.get(layout)
    if options is None:
        options = _OPTIONS[layout] = _convert_options(layout)
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(layout.columns), use_threads=True,
                                           block_size=max(1 << 20, min(len(data) + 1, 16 << 20))),
            parse_options=pacsv.ParseOptions(delimiter=","),
            convert_options=options,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _feature_matrix(table: pa.Table, columns: tuple[str, ...]) -> np.ndarray:
    if not table.num_rows or not columns:
        return np.empty((table.num_rows, len(columns)))
    return np.column_stack([float_values(table.column(f)) for f in columns])


def _value_reasons(X: np.ndarray, columns: tuple[str, ...]) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """(valid, reasons, fail closed) of rows after a successful typed parse: a missing or NaN value
    makes a row invalid; an infinite one makes it fail closed."""
    finite = np.isfinite(X)
    every = finite.all(axis=1)
    reasons: list[str | None] = [None] * len(every)
    valid = np.ones(len(every), dtype=bool)
    closed = np.zeros(len(every), dtype=bool)
    for i in np.flatnonzero(~every):
        missing = np.flatnonzero(np.isnan(X[i]))
        if len(missing):
            valid[i] = False
            reasons[i] = f"{columns[int(missing[0])]} is missing (empty or NaN)"
        else:
            closed[i] = True
            reasons[i] = infinite_reason(columns[int(np.flatnonzero(~finite[i])[0])])
    return valid, reasons, closed


def infinite_reason(column: str) -> str:
    return f"{column} is infinite (too large for a number; scored +inf, fail closed)"


def _decode(line: bytes) -> tuple[str, str | None]:
    """A line as text, and why it fails closed when it is not UTF-8 (its bad bytes shown escaped)."""
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return line.decode("utf-8", "backslashreplace"), (
            f"not UTF-8 text (byte 0x{line[exc.start]:02x} at column {exc.start + 1}; scored +inf, fail closed)")


def line_problem(line: bytes, ncols: int) -> tuple[list[str] | None, str | None]:
    """The fields of one line, or why the line cannot be a row (wrong field count, bad quotes, binary).
    Bytes that are not UTF-8 do not stop it (see :func:`_decode`)."""
    if len(line) > MAX_LINE_BYTES:
        return None, too_long_reason(MAX_LINE_BYTES)
    if b"\x00" in line:
        return None, NUL_REASON
    text = _decode(line)[0]
    try:
        fields = split_line(text)
    except csv.Error as exc:
        return None, f"cannot be read as CSV ({exc}; a quote that is not closed?); the line: {text[:300]!r}"
    if len(fields) != ncols:
        return None, (f"has {len(fields)} field(s), expected {ncols} (a stray comma, a missing value, "
                      f"or a line break inside a quoted value?); the line: {text[:300]!r}")
    return fields, None


def too_long_reason(limit: int) -> str:
    """Why a line over the length limit was not read."""
    return f"the line is longer than {limit / 2**20:,.0f} MiB (the limit), so it was not read (a missing line break)"


def _slow_parse(data: bytes, layout: Layout, first_row: int) -> Chunk:
    """Line by line: exact row numbers and reasons for every row the fast parse could not take."""
    ncols = len(layout.columns)
    rows: list[list[str] | None] = []
    reasons: list[str | None] = []
    notes: list[str | None] = []  # why a row fails closed
    for line in LINE_END.split(data):
        if not line.strip():
            continue
        fields, reason = line_problem(line, ncols)
        rows.append(fields)
        reasons.append(reason)
        notes.append(_decode(line)[1] if fields is not None else None)
    n = len(rows)
    numeric = layout.numeric_columns
    feature_pos = [layout.columns.index(f) for f in numeric]
    X = np.full((n, len(numeric)), np.nan)
    for i, fields in enumerate(rows):
        if fields is None:
            continue
        for j, pos in enumerate(feature_pos):
            text = fields[pos].strip()
            try:
                value = float(text)
            except ValueError:
                reasons[i] = reasons[i] or (f"{numeric[j]} is missing (empty)" if not text else
                                            f"{numeric[j]} is not a number ({text[:40]!r})")
                continue
            if np.isnan(value):
                reasons[i] = reasons[i] or f"{numeric[j]} is NaN"
            elif not np.isfinite(value):
                notes[i] = notes[i] or infinite_reason(numeric[j])
            X[i, j] = value
    return _assemble(rows, reasons, X, layout, first_row, notes)


def _assemble(rows: list[list[str] | None], reasons: list[str | None], X: np.ndarray, layout: Layout,
              first_row: int, notes: list[str | None] | None = None) -> Chunk:
    valid = np.array([r is None for r in reasons], dtype=bool)
    closed = np.zeros(len(reasons), dtype=bool)
    for i, note in enumerate(notes or []):
        if note and valid[i]:
            closed[i] = True
            reasons[i] = note
    columns = {}
    numeric = layout.numeric_columns
    for pos, col in enumerate(layout.columns):
        if col in layout.numeric:
            j = numeric.index(col)
            columns[col] = pa.array(np.where(valid, X[:, j], np.nan), mask=~valid, type=pa.float64())
        else:
            columns[col] = pa.array([f[pos] if f is not None else None for f in rows], type=pa.string())
    table = pa.table(columns) if rows else empty_table(layout)
    return Chunk(table, X, valid, reasons, first_row, numeric, closed)


def empty_table(layout: Layout) -> pa.Table:
    """A table with the layout's columns and no rows."""
    return pa.table({c: pa.array([], pa.float64() if c in layout.numeric else pa.string()) for c in layout.columns})


def problem_chunk(layout: Layout, first_row: int, reasons: list[str]) -> Chunk:
    """Rows that were refused before parsing (a line over the length limit): kept, with their reason."""
    n = len(reasons)
    return _assemble([None] * n, list(reasons), np.full((n, len(layout.numeric_columns)), np.nan), layout, first_row)


def parse_block(data: bytes, layout: Layout, first_row: int = 1) -> Chunk:
    """Parse complete, non-empty lines of one layout (blank lines are skipped and not numbered)."""
    table = None if b"\x00" in data else _fast_parse(data, layout)
    if table is None:
        return _slow_parse(data, layout, first_row)
    numeric = layout.numeric_columns
    X = _feature_matrix(table, numeric)
    valid, reasons, closed = _value_reasons(X, numeric)
    return Chunk(table, X, valid, reasons, first_row, numeric, closed, data)
