"""Write scored results: CSV (gzip by name) or Parquet to a file, or CSV to standard output, with nothing half-written.

Results go to a temporary file beside the output (``NAME.<random>.part``, created anew so it can be
no one else's) and are renamed into place only when complete, so a failed or interrupted run
never leaves a file that looks finished. An existing output is replaced only when it holds
results anodet wrote (or nothing): a file someone else wrote is never overwritten. Every output
problem (a folder named as the output, a missing folder, a read-only disk, a full disk) is one
sentence; cleaning up after a failure never hides the first error.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import io
import math
import os
import queue
import secrets
import sys
import threading
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from anodet.reader.arrays import float_values
from anodet.reader.layout import RANGE_COLUMN, ROW_COLUMN, STATUS_COLUMN
from anodet.textsafe import neutralise_arrow, neutralise_table

RESULT_COLUMNS = (ROW_COLUMN, STATUS_COLUMN, RANGE_COLUMN)
"""Columns every results file holds: an existing file whose header has them (and a score column) is anodet's."""
HEADER_BYTES = 1 << 20


class OutputError(RuntimeError):
    """The results cannot be written; the message says why and what to do."""


def describe_os_error(exc: OSError, path: Path | str) -> str:
    """One sentence for an error writing ``path``."""
    if exc.errno == errno.ENOSPC:
        return f"The disk holding {path} is full. Free some space or write the results elsewhere with -o."
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"Cannot write {path}: {exc.strerror}. Choose a folder you can write to with -o."
    if exc.errno == errno.EISDIR:
        return f"{path} is a folder; name a file for the results with -o (e.g. {Path(path) / 'results.csv'})."
    if exc.errno == errno.ENOENT:
        return f"Cannot write {path}: its folder does not exist. Create it or choose another -o."
    return f"Cannot write {path}: {exc.strerror or exc}."


def for_download(table: pa.Table) -> pa.Table:
    """The results table as written to a file: text cells neutralised against formula injection."""
    return neutralise_table(table)


class CsvSink:
    """Writes results chunks to a CSV file (gzip if the name ends in .gz) or a binary stream.

    Formatting numbers as text is as costly as scoring them, so chunks are written by a
    background thread while the next chunk is parsed and scored (at most two chunks wait), and
    formatted by polars' CSV writer, which needs less CPU time than pyarrow's for the same
    shortest round-trip numbers. A chunk of a few rows is formatted in Python, to the same bytes
    (:func:`csv_text`): importing polars would take longer than scoring it. Text is quoted only
    where CSV needs it; a float column whose values in a chunk are all whole numbers is written
    without ``.0`` (``128``, as the input had it).

    A chunk handed over with the input lines it was parsed from (every row valid, one line each,
    no cell that could run as a formula) keeps those lines as they were read and has only its
    result columns formatted: the input columns are copied, not parsed numbers printed again.
    """

    def __init__(self, target: str | os.PathLike | IO[bytes], compresslevel: int = 3) -> None:
        self._target = target
        self._compresslevel = compresslevel
        self._schema: pa.Schema | None = None
        self._file: IO[bytes] | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="anodet-csv-writer", daemon=True)
        self._thread.start()

    takes_lines = True
    """:func:`anodet.scoring.files.score_source` hands this sink each chunk's input lines too."""

    def __call__(self, table: pa.Table, lines: bytes | None = None, inputs: int = 0) -> None:
        """Queue ``table`` for writing; ``lines``: the input rows as read, one per line, when the table's
        first ``inputs`` columns are those rows (written as read)."""
        if self._error is not None:
            raise self._error
        self._queue.put((table, lines, inputs))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue
            try:
                self._write(item)
            except BaseException as exc:
                self._error = exc

    def _write(self, item: tuple[pa.Table, bytes | None, int]) -> None:
        """Write one queued chunk: (results table, its input lines or None, how many input columns it starts with)."""
        table, lines, inputs = item
        if self._schema is None:
            if isinstance(self._target, (str, os.PathLike)):
                path = str(self._target)
                self._file = (gzip.open(path, "wb", compresslevel=self._compresslevel)  # type: ignore[assignment]
                              if path.endswith(".gz") else open(path, "wb"))
            else:
                self._file = self._target
            header = for_download(table.slice(0, 0))
            self._schema = header.schema
            self._file.write(csv_text(header, include_header=True))  # type: ignore[union-attr]
        assert self._file is not None
        body = _as_read(table, lines, inputs) if lines is not None else None
        if body is not None:
            self._file.write(body)
            return
        self._file.write(csv_text(whole_numbers_as_integers(for_download(table).cast(self._schema))))

    def close(self) -> None:
        """Finish writing (waits for the queued chunks); raise any error the writer met."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        try:
            if self._file is not None and isinstance(self._target, (str, os.PathLike)):
                self._file.close()
            elif self._file is not None:
                self._file.flush()
        finally:
            self._file = None
        if self._error is not None:
            raise self._error


PYTHON_ROWS = 256
"""Chunks of at most this many rows are formatted in Python (:func:`csv_text`), larger ones by polars."""


def csv_text(table: pa.Table, include_header: bool = False) -> bytes:
    """``table`` as CSV text, exactly as polars' ``write_csv`` writes it (shortest round-trip numbers, text
    quoted where needed); a small table of the column types results hold is formatted in Python without
    importing polars (``tests/test_output.py`` checks the bytes are polars')."""
    if table.num_rows <= PYTHON_ROWS:
        text = _python_csv(table, include_header)
        if text is not None:
            return text
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # a table gives a frame (a lone array would give a Series)
    out = io.BytesIO()
    frame.write_csv(out, include_header=include_header)
    return out.getvalue()


def _python_csv(table: pa.Table, include_header: bool) -> bytes | None:
    """:func:`csv_text` in Python for int64, float64, bool and text columns (None for any other table)."""
    columns: list[list[str]] = []
    for column in table.columns:
        kind = column.type
        values = column.to_pylist()
        if kind == pa.float64():
            columns.append(["" if v is None else polars_float(v) for v in values])
        elif kind == pa.int64():
            columns.append(["" if v is None else str(v) for v in values])
        elif kind == pa.bool_():
            columns.append(["" if v is None else ("true" if v else "false") for v in values])
        elif kind in (pa.string(), pa.large_string()):
            columns.append(["" if v is None else _quoted(v) for v in values])
        else:
            return None
    names = table.column_names
    if include_header and not all(names):
        return None  # polars names an unnamed column itself
    lines = [",".join(_quoted(n) for n in names)] if include_header else []
    lines.extend(",".join(row) for row in zip(*columns, strict=True))
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _quoted(text: str) -> str:
    """A text field as polars writes it: quoted (quotes doubled) when it holds a comma, quote or line break,
    or is empty."""
    if not text or any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def polars_float(x: float) -> str:
    """A float64 as polars writes it: the shortest text that reads back as ``x``, in positional notation for
    1e-5 <= |x| < 1e16 (``123.0``, ``0.000015``) and scientific otherwise (``1e-7``, ``1.5e+16``)."""
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "inf" if x > 0 else "-inf"
    text = repr(x)  # Python's shortest round-trip digits; positional for 1e-4 <= |x| < 1e16
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if power == -5:
        sign = "-" if mantissa.startswith("-") else ""
        return f"{sign}0.0000{mantissa.lstrip('-').replace('.', '')}"
    return f"{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"


def _line_ends(data: bytes) -> np.ndarray:
    """Positions of the line feeds in ``data``."""
    return np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)


def _binary(data: bytes, ends: np.ndarray) -> pa.Array:
    """The lines of ``data`` (each with its line feed) as one Arrow binary array, without copying."""
    offsets = np.zeros(len(ends) + 1, dtype=np.int32)
    offsets[1:] = ends + 1
    return pa.Array.from_buffers(pa.binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _as_read(table: pa.Table, lines: bytes, inputs: int) -> bytes | None:
    """The CSV text of ``table``: each input line as read, a comma, its result columns as formatted; None
    when the lines cannot be used (a cell to neutralise, a line end other than LF or CRLF, blank lines)."""
    if has_formula_text(table.select(range(inputs))):
        return None
    if b"\r" in lines:
        lines = lines.replace(b"\r\n", b"\n")
        if b"\r" in lines:
            return None
    if not lines.endswith(b"\n"):
        lines += b"\n"
    ends = _line_ends(lines)
    text = csv_text(whole_numbers_as_integers(table.select(range(inputs, table.num_columns))))
    result_ends = _line_ends(text)
    n = table.num_rows
    if len(ends) != n or len(result_ends) != n or len(lines) + len(text) + n >= 2**31:
        return None
    comma = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(np.arange(n + 1, dtype=np.int32)),
                                                  pa.py_buffer(b"," * n)])
    joined = pc.binary_join_element_wise(pc.binary_slice(_binary(lines, ends), 0, -1), _binary(text, result_ends),
                                         comma)
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=n + 1, offset=joined.offset * 4)
    return joined.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]


def has_formula_text(table: pa.Table) -> bool:
    """Whether a text cell of ``table`` would be neutralised (:func:`anodet.textsafe.neutralise_arrow`)."""
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            if neutralise_arrow(column) is not column:
                return True
    return False


def whole_numbers_as_integers(table: pa.Table) -> pa.Table:
    """``table`` with each float column whose values are all whole numbers (and exact as integers) cast to
    int64, so a count read as ``128`` is written back as ``128``, not ``128.0``."""
    columns = table.columns
    for i, column in enumerate(columns):
        if not pa.types.is_floating(column.type) or column.null_count == len(column):
            continue
        values = float_values(column if column.type == pa.float64() else pc.cast(column, pa.float64()))
        values = values[~np.isnan(values)] if column.null_count else values
        if _whole(values[:64]) and _whole(values):  # a score column fails on its first values
            columns[i] = pc.cast(column, pa.int64())
    return pa.table(columns, names=table.column_names)


def _whole(values: np.ndarray) -> bool:
    """Every value a whole number that int64 holds exactly."""
    return bool(np.all(np.abs(values) <= 2**53) and np.array_equal(values, np.trunc(values)))


class ParquetSink:
    """Writes results chunks to a Parquet file (same columns as the CSV; text neutralised the same way)."""

    def __init__(self, target: str | os.PathLike) -> None:
        self._target = target
        self._writer: Any = None  # a pyarrow.parquet.ParquetWriter once the first chunk arrives

    def __call__(self, table: pa.Table) -> None:
        import pyarrow.parquet as pq  # here: CSV results never need it

        table = for_download(table)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._target, table.schema, compression="zstd")
        self._writer.write_table(table.cast(self._writer.schema))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def is_parquet_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith((".parquet", ".pq"))


def written_by_anodet(path: Path) -> bool:
    """Whether ``path`` holds results anodet writes (its header names the row, status and out_of_range
    columns and a score column) or nothing at all: replacing it then loses nothing anyone else wrote."""
    try:
        if path.stat().st_size == 0:
            return True
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
        if head.startswith(b"PAR1"):
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        else:
            if head.startswith(b"\x1f\x8b"):
                head = zlib.decompressobj(wbits=31).decompress(head, HEADER_BYTES)
            names = next(csv.reader([head.split(b"\n", 1)[0].decode("utf-8", "replace")]), [])
    except (OSError, ValueError, zlib.error, pa.ArrowException):
        return False
    return set(RESULT_COLUMNS) <= set(names) and any(n.startswith("score_") for n in names)


def create_partial(path: Path, token: str | None = None) -> Path:
    """A new, empty file beside ``path`` to write it through: ``NAME.TOKEN.part`` (a random token by default;
    ``.gz`` kept at the end so the sink compresses). Created exclusively, so it is never a file that was
    already there."""
    suffix = ".gz" if path.name.endswith(".gz") else ""
    while True:
        partial = path.with_name(f"{path.name}.{token or secrets.token_hex(4)}.part{suffix}")
        try:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return partial
        except FileExistsError:
            if token:
                raise


class ResultsFile:
    """Where results are written: a file (through a temporary file beside it) or standard output (``-``)."""

    def __init__(self, output: str | os.PathLike) -> None:
        self.to_stdout = str(output) == "-"
        self.path = None if self.to_stdout else Path(output)
        self.partial: Path | None = None
        self.sink: CsvSink | ParquetSink | None = None

    def check(self, input_path: str | None = None) -> None:
        """Refuse an unusable output before any input is read: a folder, a missing folder, the input itself,
        or an existing file anodet did not write."""
        if self.path is None:
            return
        if self.path.is_dir():
            raise OutputError(f"{self.path} is a folder; name a file for the results with -o "
                              f"(e.g. {self.path / 'results.csv'}).")
        if not self.path.parent.exists():
            raise OutputError(f"Cannot write {self.path}: the folder {self.path.parent} does not exist. "
                              "Create it or choose another -o.")
        if input_path not in (None, "-") and self.path.exists() and self.path.resolve() == Path(input_path).resolve():
            raise OutputError("The output would overwrite the input; choose another name with -o.")
        if self.path.is_file() and not written_by_anodet(self.path):
            raise OutputError(f"{self.path} already exists and does not hold anodet's results, so it is left as it is; "
                              "choose another name with -o (or move that file away first).")

    def open(self, token: str | None = None) -> CsvSink | ParquetSink:
        """Start writing: the sink to hand results tables to (``token``: names the temporary file)."""
        if self.path is None:
            self.sink = CsvSink(sys.stdout.buffer)
            return self.sink
        try:
            self.partial = create_partial(self.path, token)
        except OSError as exc:
            raise OutputError(describe_os_error(exc, self.path)) from None
        self.sink = ParquetSink(self.partial) if is_parquet_name(self.path) else CsvSink(self.partial)
        return self.sink

    def finish(self) -> Path | None:
        """Finish writing; the complete temporary file (None for standard output), not yet in place."""
        assert self.sink is not None
        try:
            self.sink.close()
            if self.path is None:
                sys.stdout.flush()
        except OSError as exc:
            self.discard()
            raise OutputError(describe_os_error(exc, self.path or "standard output")) from None
        return self.partial

    def commit(self) -> None:
        """Finish writing and move the results into place."""
        partial = self.finish()
        if partial is None or self.path is None:
            return
        try:
            partial.replace(self.path)
        except OSError as exc:
            self.discard()
            raise OutputError(describe_os_error(exc, self.path)) from None
        self.partial = None

    def discard(self) -> None:
        """Drop a failed run's temporary file; never raises (the first error is what the user must see)."""
        if self.sink is not None:
            with contextlib.suppress(BaseException):
                self.sink.close()
        if self.partial is not None:
            with contextlib.suppress(OSError):
                self.partial.unlink(missing_ok=True)
            self.partial = None

