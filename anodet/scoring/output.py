"""Write scored results: CSV (gzip by name) to a file or standard output, with nothing half-written.

Results go to ``NAME.part`` first and are renamed into place only when complete, so a failed
or interrupted run never leaves a file that looks finished. Every output problem (a folder
named as the output, a missing folder, a read-only disk, a full disk) is one sentence; cleaning
up after a failure never hides the first error.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import queue
import sys
import threading
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from anodet.textsafe import neutralise_table


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
    shortest round-trip numbers. Text is quoted only where CSV needs it; a float column whose values
    in a chunk are all whole numbers is written without ``.0`` (``128``, as the input had it).
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

    def __call__(self, table: pa.Table) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(table)

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

    def _write(self, table: pa.Table) -> None:
        import polars as pl  # only when results are written: ~0.2 s to import

        table = for_download(table)
        header = self._schema is None
        if header:
            if isinstance(self._target, (str, os.PathLike)):
                path = str(self._target)
                self._file = (gzip.open(path, "wb", compresslevel=self._compresslevel)  # type: ignore[assignment]
                              if path.endswith(".gz") else open(path, "wb"))
            else:
                self._file = self._target
            self._schema = table.schema
        frame = pl.from_arrow(whole_numbers_as_integers(table.cast(self._schema)))
        assert isinstance(frame, pl.DataFrame)  # a table gives a frame (a lone array would give a Series)
        frame.write_csv(self._file, include_header=header)

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


def whole_numbers_as_integers(table: pa.Table) -> pa.Table:
    """``table`` with each float column whose values are all whole numbers (and exact as integers) cast to
    int64, so a count read as ``128`` is written back as ``128``, not ``128.0``."""
    columns = table.columns
    for i, column in enumerate(columns):
        if not pa.types.is_floating(column.type) or column.null_count == len(column):
            continue
        values = pc.drop_null(column).to_numpy()
        if np.all(np.abs(values) <= 2**53) and np.array_equal(values, np.trunc(values)):
            columns[i] = pc.cast(column, pa.int64())
    return pa.table(columns, names=table.column_names)


class ParquetSink:
    """Writes results chunks to a Parquet file (same columns as the CSV; text neutralised the same way)."""

    def __init__(self, target: str | os.PathLike) -> None:
        self._target = target
        self._writer: pq.ParquetWriter | None = None

    def __call__(self, table: pa.Table) -> None:
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


class ResultsFile:
    """Where ``score`` writes: a file (via ``NAME.part``) or standard output (``-``)."""

    def __init__(self, output: str | os.PathLike) -> None:
        self.to_stdout = str(output) == "-"
        self.path = None if self.to_stdout else Path(output)
        self.partial: Path | None = None
        self.sink: CsvSink | ParquetSink | None = None

    def check(self, input_path: str | None = None) -> None:
        """Refuse an unusable output before any input is read."""
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

    def open(self) -> CsvSink | ParquetSink:
        if self.path is None:
            self.sink = CsvSink(sys.stdout.buffer)
            return self.sink
        name = self.path.name
        # A .gz output name compresses; the partial file keeps the .gz ending so the sink sees it.
        self.partial = self.path.with_name(name[:-3] + ".part.gz" if name.endswith(".gz") else name + ".part")
        try:
            with open(self.partial, "wb"):
                pass
        except OSError as exc:
            self.partial = None
            raise OutputError(describe_os_error(exc, self.path)) from None
        self.sink = ParquetSink(self.partial) if is_parquet_name(self.path) else CsvSink(self.partial)
        return self.sink

    def commit(self) -> None:
        """Finish writing and move the results into place."""
        assert self.sink is not None
        try:
            self.sink.close()
            if self.path is None:
                sys.stdout.flush()
                return
            assert self.partial is not None
            self.partial.replace(self.path)
        except OSError as exc:
            self.discard()
            raise OutputError(describe_os_error(exc, self.path or "standard output")) from None

    def discard(self) -> None:
        """Drop a failed run's partial file; never raises (the first error is what the user must see)."""
        if self.sink is not None:
            with contextlib.suppress(BaseException):
                self.sink.close()
        if self.partial is not None:
            with contextlib.suppress(OSError):
                self.partial.unlink(missing_ok=True)
