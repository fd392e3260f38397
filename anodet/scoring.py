"""Validate and score tabular input in chunks: the one scoring module of the page and the CLI.

Two input formats are accepted, optionally gzip-compressed:

* a CSV whose header names the 18 features (:data:`anodet.schema.FEATURES`) in any order;
  every other column (an id, a timestamp, a label) is passed through untouched;
* raw KDD Cup 99 lines: 41 values and an optional label, no header.

The input is read in blocks of bytes and each block is parsed by pyarrow (multithreaded, typed);
only a block that fails the fast parse is re-read line by line to say exactly which rows are
bad and why. Memory therefore stays bounded by the block size whatever the input size.

Every input row ends up in the output exactly once: scored, or skipped with its row number and
the reason. Rows are numbered 1, 2, … in file order, not counting the header or blank lines.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from anodet.schema import FEATURES, LABEL_VIEWS, NORMAL, RAW_COLUMNS

DEFAULT_EXCLUDED: tuple[str, ...] = ("lof", "seq2seq")
"""Detectors left out by default: they score one to two orders of magnitude slower than the rest."""

CHUNK_BYTES = 4 << 20
"""Bytes of input parsed at a time; bounds memory whatever the input size."""

MAX_PROBLEMS_KEPT = 1_000
"""Row problems kept in detail (all are counted, and every skipped row is in the output)."""

CACHE_ROWS = 200_000
"""Distinct feature vectors whose scores are remembered across chunks (network records repeat)."""

LABEL_NAMES = ("label", "attack", "class", "attack_type")
"""Header names recognised (case-insensitively) as a label column."""

TRAINING_ATTACK_TYPES: dict[str, str] = {
    "back": "dos", "land": "dos", "neptune": "dos", "pod": "dos", "smurf": "dos", "teardrop": "dos",
    "ipsweep": "probe", "nmap": "probe", "portsweep": "probe", "satan": "probe",
    "ftp_write": "r2l", "guess_passwd": "r2l", "imap": "r2l", "multihop": "r2l", "phf": "r2l",
    "spy": "r2l", "warezclient": "r2l", "warezmaster": "r2l",
    "buffer_overflow": "u2r", "loadmodule": "u2r", "perl": "u2r", "rootkit": "u2r",
}
"""The 22 attack types of KDD's ``training_attack_types`` file (checked against it in the tests)."""

ROW_COLUMN, STATUS_COLUMN, RANGE_COLUMN = "row", "status", "out_of_range"
OK = "scored"

_MAGIC = {
    b"PK\x03\x04": "a ZIP archive or an Excel/OpenDocument workbook (.xlsx/.ods)",
    b"\xd0\xcf\x11\xe0": "an old-style Excel workbook (.xls) or another Office document",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x7fELF": "a program (ELF binary)",
    b"BZh": "a bzip2-compressed file",
    b"\xfd7zXZ": "an xz-compressed file",
    b"\x28\xb5\x2f\xfd": "a zstd-compressed file",
    b"SQLite format 3": "an SQLite database",
}
_GZIP_MAGIC = b"\x1f\x8b"
_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}
_FORMULA_START = r"^[=+\-@\t\r]"
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


class InputError(ValueError):
    """The input cannot be scored as a whole; the message says what is wrong, where, and the fix."""


@dataclass(frozen=True)
class RowProblem:
    """One row that cannot be scored."""

    row: int
    reason: str


class BadRowsError(InputError):
    """Rows cannot be scored and the caller asked to reject the file rather than skip them."""

    def __init__(self, problems: list[RowProblem], total: int) -> None:
        self.problems, self.total = problems, total
        super().__init__(
            f"{total:,} row(s) cannot be scored, so the file was rejected as asked: "
            f"{describe_problems(problems)} Fix those rows, or choose to skip bad rows "
            "(they are then listed with their row numbers in the results)."
        )


def describe_problems(problems: list[RowProblem], limit: int = 5) -> str:
    """A sentence listing the first few problems ("row 7: …; row 9: …")."""
    shown = "; ".join(f"row {p.row}: {p.reason}" for p in problems[:limit])
    more = f" (and {len(problems) - limit:,} more listed)" if len(problems) > limit else ""
    return f"{shown}{more}."


# ---------------------------------------------------------------- input: opening and sniffing


@dataclass
class Layout:
    """What the sniffer learned about the input: its format and columns."""

    kind: str  # "header" or "raw"
    columns: list[str]  # output names of the input columns, in file order
    label: str | None  # name of the label column, if any
    compressed: bool

    @property
    def text_columns(self) -> list[str]:
        return [c for c in self.columns if c not in FEATURES]

    def describe(self) -> str:
        what = "CSV with a header" if self.kind == "header" else "raw KDD Cup 99 records (no header)"
        extras = [c for c in self.text_columns if c != self.label]
        parts = [what + (", gzip-compressed" if self.compressed else "")]
        if self.label:
            parts.append(f"labels in column '{self.label}'")
        if extras:
            parts.append(f"{len(extras)} other column(s) passed through")
        return "; ".join(parts)


class _Input:
    """A binary input (path or file object), transparently gunzipped, with byte progress."""

    def __init__(self, source: str | os.PathLike | IO[bytes], name: str | None = None) -> None:
        if isinstance(source, (str, os.PathLike)):
            self.name = name or Path(source).name
            try:
                self._raw: IO[bytes] = open(source, "rb")
            except OSError as exc:
                raise InputError(f"Cannot open {source}: {exc.strerror or exc}. Check the path.") from None
            self._owned = True
        else:
            self.name = name or getattr(source, "name", "the upload")
            self._raw, self._owned = source, False
            self._raw.seek(0)
        self._raw.seek(0, os.SEEK_END)
        self.size = self._raw.tell()
        self._raw.seek(0)
        self.compressed = self._raw.read(2) == _GZIP_MAGIC
        self._raw.seek(0)
        self._stream: IO[bytes] = gzip.GzipFile(fileobj=self._raw, mode="rb") if self.compressed else self._raw

    def read(self, n: int) -> bytes:
        try:
            return self._stream.read(n)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(
                f"{self.name} is gzip-compressed but the compressed data is corrupt or truncated "
                f"(near byte {self._raw.tell():,} of {self.size:,}: {exc}). Compress it again or upload "
                "the uncompressed CSV."
            ) from None

    @property
    def fraction(self) -> float:
        """Share of the (compressed) input consumed so far."""
        return min(1.0, self._raw.tell() / self.size) if self.size else 1.0

    def close(self) -> None:
        if self.compressed:
            self._stream.close()
        if self._owned:
            self._raw.close()


def _normalise(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower()


_LINE_END = re.compile(rb"\r\n|\r|\n")
"""Line ends as pyarrow reads them: a lone carriage return ends a line too."""


def _split_line(line: str, delimiter: str = ",") -> list[str]:
    """The fields of one CSV line; raises csv.Error on a line the csv module cannot read."""
    return next(csv.reader([line], delimiter=delimiter, strict=True), [])


def _check_binary(head: bytes, name: str) -> None:
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise InputError(
                f"{name} is {what}, not CSV text. Export it as CSV (in a spreadsheet: File > Save as > "
                "CSV UTF-8) and upload that file."
            )
    sample = head[:8192]
    if b"\x00" in sample:
        half = max(1, len(sample) // 2)
        if sample[:2] in (b"\xff\xfe", b"\xfe\xff") or max(sample[0::2].count(0), sample[1::2].count(0)) > 0.4 * half:
            raise InputError(f"{name} looks like UTF-16 text; anodet reads UTF-8. Save it as CSV UTF-8.")
        raise InputError(
            f"{name} contains binary data (a NUL byte at byte {sample.index(0):,}), so it is not a CSV text file. "
            "Upload the CSV export, not the original binary file."
        )


def _decode(data: bytes, name: str, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{where} of {name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start:,}). "
            "Save the file as CSV UTF-8 (most spreadsheets and editors offer it) and try again."
        ) from None


def _header_layout(fields: list[str], name: str, compressed: bool) -> Layout:
    names = [f.strip().lstrip("\ufeff").strip() for f in fields]
    lowered = [n.lower() for n in names]
    duplicates = sorted({n for n in lowered if lowered.count(n) > 1})
    if duplicates:
        raise InputError(
            f"The header of {name} names these column(s) more than once: {', '.join(duplicates)}. "
            "Rename or remove the duplicates so every column has one name."
        )
    if "" in lowered:
        raise InputError(
            f"Column {lowered.index('') + 1} of the header of {name} has no name. Give every column a name "
            "(or delete the empty column)."
        )
    missing = [f for f in FEATURES if f not in lowered]
    if missing:
        raise InputError(
            f"The header of {name} lacks {len(missing)} of the 18 feature columns anodet needs: "
            f"{', '.join(missing)}. Add them (any order; names as listed), or upload raw KDD records "
            "without a header."
        )
    columns = [lowered[i] if lowered[i] in FEATURES else names[i] for i in range(len(names))]
    reserved = [c for c in (ROW_COLUMN, STATUS_COLUMN, RANGE_COLUMN) if c in lowered]
    if reserved:
        raise InputError(
            f"The header of {name} uses the column name(s) {', '.join(reserved)}, which anodet writes into "
            "the results. Rename those columns and try again."
        )
    label = next((c for c in columns if c.lower() in LABEL_NAMES), None)
    return Layout("header", columns, label, compressed)


def sniff(first_line: str, name: str, compressed: bool) -> Layout:
    """The layout of an input from its first non-blank line, or an InputError saying what is wrong."""
    try:
        fields = _split_line(first_line)
    except csv.Error as exc:
        raise InputError(f"The first line of {name} cannot be read as CSV ({exc}): {first_line[:80]!r}. "
                         "Check its quotes and separators.") from None
    lowered = {_normalise(f) for f in fields}
    if len(fields) <= 1:
        for delimiter, word in _OTHER_DELIMITERS.items():
            if delimiter in first_line and len(_split_line(first_line, delimiter)) > 1:
                raise InputError(
                    f"{name} separates its values with {word}, not commas. Save it as comma-separated CSV "
                    "(or replace the separators with commas) and try again."
                )
        raise InputError(
            f"The first line of {name} holds a single value ({first_line[:60]!r}), so it is not a CSV of "
            "network records. anodet expects comma-separated columns: a header naming the 18 features, "
            "or raw KDD records."
        )
    if lowered & {f.lower() for f in FEATURES} or (len(fields) not in (41, 42)):
        if not lowered & set(FEATURES) and len(fields) not in (41, 42):
            raise InputError(
                f"The first line of {name} is neither a header naming the 18 feature columns nor a raw KDD "
                f"record (41 values, then an optional label); it has {len(fields)} field(s). Add a header "
                f"with the columns {', '.join(FEATURES)}, or upload raw KDD records."
            )
        return _header_layout(fields, name, compressed)
    columns = list(RAW_COLUMNS) + (["label"] if len(fields) == 42 else [])
    return Layout("raw", columns, "label" if len(fields) == 42 else None, compressed)


# ---------------------------------------------------------------- parsing chunks


@dataclass
class Chunk:
    """Parsed rows of one block: the passthrough table, features, validity and problems."""

    table: pa.Table  # every input column; features float64, the rest strings; bad rows null
    features: np.ndarray  # (n, 18) float64, raw values (garbage where not valid)
    valid: np.ndarray  # (n,) bool
    reasons: list[str | None]  # per row: None if valid, else why not
    first_row: int  # row number of the first row


def _convert_options(layout: Layout) -> pacsv.ConvertOptions:
    types = {c: (pa.float64() if c in FEATURES else pa.string()) for c in layout.columns}
    return pacsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                quoted_strings_can_be_null=False)


def _fast_parse(data: bytes, layout: Layout, options: pacsv.ConvertOptions) -> pa.Table | None:
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=layout.columns, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=","),
            convert_options=options,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _feature_matrix(table: pa.Table) -> np.ndarray:
    return np.column_stack([table.column(f).to_numpy(zero_copy_only=False) for f in FEATURES]).astype(
        np.float64, copy=False) if table.num_rows else np.empty((0, len(FEATURES)))


def _value_reasons(table: pa.Table, X: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
    """Rows whose features are missing, NaN or infinite (after a successful typed parse)."""
    finite = np.isfinite(X)
    valid = finite.all(axis=1)
    reasons: list[str | None] = [None] * len(valid)
    for i in np.flatnonzero(~valid):
        j = int(np.flatnonzero(~finite[i])[0])
        value = X[i, j]
        what = "missing (empty or NaN)" if np.isnan(value) else "infinite"
        reasons[i] = f"{FEATURES[j]} is {what}"
    return valid, reasons


def _slow_parse(data: bytes, layout: Layout, first_row: int) -> tuple[Chunk, int]:
    """Line by line: exact row numbers and reasons for every row the fast parse could not take."""
    ncols = len(layout.columns)
    rows: list[list[str] | None] = []
    reasons: list[str | None] = []
    for line in _LINE_END.split(data):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            rows.append(None)
            reasons.append(f"not UTF-8 text (byte 0x{line[exc.start]:02x} at column {exc.start + 1}); "
                           "save the file as CSV UTF-8")
            continue
        try:
            fields = _split_line(text)
        except csv.Error as exc:
            rows.append(None)
            reasons.append(f"cannot be read as CSV ({exc}; a quote that is not closed?); the line: {text[:300]!r}")
            continue
        if len(fields) != ncols:
            rows.append(None)
            reasons.append(f"has {len(fields)} field(s), expected {ncols} (a stray comma, a missing value, "
                           f"or a line break inside a quoted value?); the line: {text[:300]!r}")
            continue
        rows.append(fields)
        reasons.append(None)
    n = len(rows)
    feature_pos = [layout.columns.index(f) for f in FEATURES]
    X = np.full((n, len(FEATURES)), np.nan)
    for i, fields in enumerate(rows):
        if fields is None:
            continue
        for j, pos in enumerate(feature_pos):
            text = fields[pos].strip()
            try:
                value = float(text)
            except ValueError:
                reasons[i] = reasons[i] or (f"{FEATURES[j]} is missing (empty)" if not text else
                                            f"{FEATURES[j]} is not a number ({text[:40]!r})")
                continue
            if not np.isfinite(value):
                reasons[i] = reasons[i] or f"{FEATURES[j]} is {'NaN' if np.isnan(value) else 'infinite'}"
            X[i, j] = value
    valid = np.array([r is None for r in reasons], dtype=bool)
    columns = {}
    for pos, col in enumerate(layout.columns):
        if col in FEATURES:
            j = FEATURES.index(col)
            columns[col] = pa.array(np.where(valid, X[:, j], np.nan), mask=~valid, type=pa.float64())
        else:
            columns[col] = pa.array([f[pos] if f is not None else None for f in rows], type=pa.string())
    table = pa.table(columns) if n else pa.table({c: pa.array([], pa.float64() if c in FEATURES else pa.string())
                                                  for c in layout.columns})
    return Chunk(table, X, valid, reasons, first_row), n


def release_memory() -> None:
    """Hand freed memory back to the system after a chunk, so RSS tracks the working set.

    glibc keeps freed blocks in per-thread arenas; without this the resident size of a long run
    creeps up with every chunk even though the working set does not grow.
    """
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    pa.default_memory_pool().release_unused()
    if _libc:
        _libc.malloc_trim(0)


_libc: Any = None


def _parse_block(data: bytes, layout: Layout, options: pacsv.ConvertOptions, first_row: int) -> Chunk:
    table = _fast_parse(data, layout, options)
    if table is None:
        chunk, _ = _slow_parse(data, layout, first_row)
        return chunk
    X = _feature_matrix(table)
    valid, reasons = _value_reasons(table, X)
    return Chunk(table, X, valid, reasons, first_row)


def read_chunks(
    source: str | os.PathLike | IO[bytes], name: str | None = None, chunk_bytes: int = CHUNK_BYTES,
    max_bytes: int | None = None, on_layout: Callable[[Layout], None] | None = None,
    progress: Callable[[float], None] | None = None,
) -> Iterator[Chunk]:
    """Open, sniff and parse an input block by block; raise :class:`InputError` on a bad file."""
    handle = _Input(source, name)
    try:
        if max_bytes is not None and handle.size > max_bytes:
            raise InputError(
                f"{handle.name} is {handle.size / 1e6:,.1f} MB, over the {max_bytes / 1e6:,.0f} MB limit. "
                "Score it with `python -m anodet score` (no size limit), or split it into smaller files."
            )
        if handle.size == 0:
            raise InputError(f"{handle.name} is empty (0 bytes). Choose the CSV file that holds your records.")
        head = handle.read(chunk_bytes)
        _check_binary(head, handle.name)
        if not head.strip():
            raise InputError(f"{handle.name} holds no records (only blank lines). Choose the CSV file that "
                             "holds your records.")
        # The first non-blank line decides the format.
        start = len(head) - len(head.lstrip())
        end = _LINE_END.search(head, start)
        while end is None or (end.group() == b"\r" and end.end() == len(head)):
            more = handle.read(chunk_bytes)
            if not more:
                break
            head += more
            end = _LINE_END.search(head, start)
        stop, after = (end.start(), end.end()) if end else (len(head), len(head))
        first = _decode(head[start:stop], handle.name, "The first line")
        layout = sniff(first.lstrip("\ufeff"), handle.name, handle.compressed)
        if on_layout:
            on_layout(layout)
        buffer = head[after:] if layout.kind == "header" else head[start:]
        options = _convert_options(layout)
        row = 1
        emitted = False
        eof = False
        while not eof:
            more = handle.read(chunk_bytes)
            eof = not more
            buffer += more
            if eof:
                block, buffer = buffer, b""
            else:
                cut = buffer.rfind(b"\n")
                if cut < 0:  # old Mac line ends: a carriage return that is not the last byte
                    cut = buffer.rfind(b"\r", 0, len(buffer) - 1)
                if cut < 0:  # no line ends in the buffer yet: read on
                    continue
                block, buffer = buffer[:cut + 1], buffer[cut + 1:]
            if block.strip():
                chunk = _parse_block(block, layout, options, row)
                row += len(chunk.valid)
                emitted = emitted or len(chunk.valid) > 0
                if progress:
                    progress(handle.fraction)
                yield chunk
        if not emitted:
            raise InputError(
                f"{handle.name} has a header but no data rows. Add the records below the header line."
                if layout.kind == "header" else f"{handle.name} holds no records."
            )
    finally:
        handle.close()


# ---------------------------------------------------------------- labels


def label_views(values: np.ndarray | list) -> dict[str, np.ndarray]:
    """0/1 labels per label view (NaN where the label is empty or unreadable).

    ``normal``/``0`` is normal; ``1``/``attack`` and the training attack names (``smurf.``…) are
    attacks in both views; any other name is a novel attack: an attack in the ``true`` view and
    normal in the ``reference`` view, as the reference prototype labelled them.
    """
    text = np.char.lower(np.char.strip(np.asarray(values, dtype=str)))
    text = np.char.rstrip(text, ".")
    empty = np.isin(text, ["", "nan", "none", "null"])
    normal = np.isin(text, [NORMAL, "0", "0.0", "benign"])
    known_attack = np.isin(text, [*TRAINING_ATTACK_TYPES, "1", "1.0", "attack", "anomaly"])
    true = np.where(normal, 0.0, 1.0)
    reference = np.where(known_attack, 1.0, 0.0)
    true[empty], reference[empty] = np.nan, np.nan
    return {"reference": reference, "true": true}


# ---------------------------------------------------------------- scoring


def distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first occurrence of each distinct row, row → distinct index), exactly.

    Rows are hashed to 64 bits and factorised (fast, linear); the grouping is then checked
    against the rows themselves and, on a hash collision, redone exactly with pandas.
    """
    import pandas as pd

    X = np.ascontiguousarray(X, dtype=np.float64) + 0.0  # -0.0 and 0.0 are the same value
    bits = X.view(np.uint64)
    h = np.full(len(X), np.uint64(0xCBF29CE484222325))
    with np.errstate(over="ignore"):
        for j in range(X.shape[1]):
            col = np.ascontiguousarray(bits[:, j])
            h ^= col ^ (col >> np.uint64(29))
            h *= np.uint64(0x100000001B3)
            h ^= h >> np.uint64(32)
    codes, _ = pd.factorize(h)
    first = np.unique(codes, return_index=True)[1]
    if not (X[first][codes] == X).all():  # a collision: group exactly instead
        codes = pd.DataFrame(X).groupby(list(range(X.shape[1])), sort=False, dropna=False).ngroup().to_numpy()
        first = np.unique(codes, return_index=True)[1]
    return first, codes


def default_detectors(available: list[str]) -> list[str]:
    """The default selection: every stored detector but the slow ones."""
    return [n for n in available if n not in DEFAULT_EXCLUDED]


class Scorer:
    """Scores raw feature rows with the chosen detectors, each distinct row once.

    Network records repeat heavily (KDD's test file: 13% distinct), so rows are de-duplicated
    within a chunk and scores of distinct rows are remembered across chunks (up to
    :data:`CACHE_ROWS`). The ensemble is computed from its members' scores, so members that are
    also selected are not scored twice.
    """

    def __init__(self, store: Any, names: list[str], cache_rows: int = CACHE_ROWS) -> None:
        unknown = [n for n in names if n not in store.names]
        if unknown:
            raise InputError(f"Detector(s) {', '.join(unknown)} are not in the model store; choose from "
                             f"{', '.join(store.names)}.")
        if not names:
            raise InputError("No detector chosen. Choose at least one detector to score with.")
        self.store, self.names = store, list(names)
        self.scaler = store.scaler
        self._ensemble = store.detector("ensemble") if "ensemble" in names else None
        members = list(self._ensemble.params["members"]) if self._ensemble is not None else []
        self._base = [n for n in dict.fromkeys([*names, *members]) if n != "ensemble"]
        self._detectors = {n: store.detector(n) for n in self._base}
        self.seconds: dict[str, float] = dict.fromkeys(self.names, 0.0)
        self.rows_scored: dict[str, int] = dict.fromkeys(self.names, 0)
        self._cache: dict[bytes, int] = {}
        self._cached = np.empty((0, len(self.names) + 1))
        self._cache_rows = cache_rows

    def _score_distinct(self, X_raw: np.ndarray) -> np.ndarray:
        """(n, detectors + 1): each chosen detector's score, then the out-of-range flag."""
        X = self.scaler.transform(X_raw)
        base: dict[str, np.ndarray] = {}
        for name in self._base:
            t0 = time.perf_counter()
            base[name] = np.asarray(self._detectors[name].score(X), dtype=np.float64)
            if name in self.seconds:
                self.seconds[name] += time.perf_counter() - t0
                self.rows_scored[name] += len(X)
        out = np.empty((len(X), len(self.names) + 1))
        for i, name in enumerate(self.names):
            if name == "ensemble":
                t0 = time.perf_counter()
                out[:, i] = self._ensemble.score_from_members(base)
                self.seconds[name] += time.perf_counter() - t0
                self.rows_scored[name] += len(X)
            else:
                out[:, i] = base[name]
        out[:, -1] = self.scaler.out_of_range(X_raw)
        return out

    def score(self, X_raw: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per detector the scores of raw rows ``X_raw``, and per row whether it is out of range."""
        X_raw = np.ascontiguousarray(X_raw, dtype=np.float64)
        n = len(X_raw)
        if n == 0:
            return {name: np.empty(0) for name in self.names}, np.zeros(0, dtype=bool)
        first, inverse = distinct_rows(X_raw)
        distinct = X_raw[first]
        keys = [row.tobytes() for row in distinct]
        where = np.array([self._cache.get(k, -1) for k in keys], dtype=np.int64)
        missing = np.flatnonzero(where < 0)
        results = np.empty((len(distinct), len(self.names) + 1))
        if len(where) - len(missing):
            results[where >= 0] = self._cached[where[where >= 0]]
        if len(missing):
            fresh = self._score_distinct(distinct[missing])
            results[missing] = fresh
            room = max(0, self._cache_rows - len(self._cache))
            if room:
                keep = missing[:room]
                base = len(self._cached)
                self._cached = np.concatenate([self._cached, fresh[:room]])
                self._cache.update({keys[k]: base + i for i, k in enumerate(keep)})
        full = results[inverse]
        return {name: full[:, i] for i, name in enumerate(self.names)}, full[:, -1].astype(bool)


def resolve_thresholds(store: Any, names: list[str], spec: str | float | None, view: str) -> dict[str, float]:
    """Per detector the threshold for ``spec``: a preset name, one number for all, or the default (best F1)."""
    if spec is None or spec == "":
        return {n: store.default_threshold(n, view) for n in names}
    if isinstance(spec, str):
        presets = store.thresholds(names[0], view) if names else {}
        if spec in presets:
            return {n: float(store.thresholds(n, view)[spec]) for n in names}
        try:
            spec = float(spec)
        except ValueError:
            raise InputError(f"Unknown threshold {spec!r}: give a preset ({', '.join(presets)}) or a number.") from None
    if not np.isfinite(spec):
        raise InputError(f"The threshold must be a finite number, not {spec}.")
    return dict.fromkeys(names, float(spec))


# ---------------------------------------------------------------- the pipeline


@dataclass
class Summary:
    """What happened to the input: counts per detector, problems, timings."""

    layout: Layout | None = None
    names: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    rows_read: int = 0
    rows_scored: int = 0
    rows_skipped: int = 0
    out_of_range: int = 0
    flagged: dict[str, int] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    confusion: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # view → name → tp, fp, fn, tn
    labelled: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    detector_seconds: dict[str, float] = field(default_factory=dict)
    distinct_rows: dict[str, int] = field(default_factory=dict)  # rows each detector actually scored

    def metrics(self, view: str) -> dict[str, dict[str, float]]:
        """Precision, recall, F1… per detector at its threshold, from the streamed confusion counts."""
        from anodet.evaluate import metrics_from_counts

        return {n: metrics_from_counts(*c) for n, c in self.confusion.get(view, {}).items()}

    def lines(self) -> list[str]:
        """The human summary (CLI and page share it)."""
        out = [f"Rows read: {self.rows_read:,}; scored: {self.rows_scored:,}; skipped: {self.rows_skipped:,}; "
               f"outside the training range (scored, marked out_of_range): {self.out_of_range:,}."]
        if self.problems:
            out.append(f"Skipped rows: {describe_problems(self.problems)}")
        for n in self.names:
            share = self.flagged[n] / self.rows_scored if self.rows_scored else 0.0
            out.append(f"  {n:<12} threshold {self.thresholds[n]:>12.6g}  flagged {self.flagged[n]:>10,} "
                       f"({share:.1%})")
        return out


def _neutralise(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Prefix cells that a spreadsheet would run as a formula (=, +, -, @) with a quote."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    risky = pc.and_(pc.match_substring_regex(column, _FORMULA_START),
                    pc.invert(pc.match_substring_regex(column, _NUMBER)))
    risky = pc.fill_null(risky, False)
    if not pc.any(risky).as_py():
        return column
    quote, empty = pa.scalar("'", column.type), pa.scalar("", column.type)
    return pc.if_else(risky, pc.binary_join_element_wise(quote, column, empty), column)


def neutralise_cell(text: str) -> str:
    """One header cell, neutralised as :func:`_neutralise` does for data cells."""
    if re.match(_FORMULA_START, text) and not re.match(_NUMBER, text):
        return "'" + text
    return text


def for_download(table: pa.Table, layout: Layout) -> pa.Table:
    """The results table as written to a file: text cells neutralised against formula injection."""
    columns = [_neutralise(table.column(c)) if c in layout.text_columns or c == STATUS_COLUMN else table.column(c)
               for c in table.column_names]
    return pa.table(columns, names=[neutralise_cell(c) for c in table.column_names])


def score_source(
    source: str | os.PathLike | IO[bytes], store: Any, names: list[str], thresholds: dict[str, float],
    on_bad_rows: str = "skip", name: str | None = None, sink: Callable[[pa.Table, Layout], None] | None = None,
    progress: Callable[[float, int], None] | None = None, chunk_bytes: int = CHUNK_BYTES,
    max_bytes: int | None = None, scorer: Scorer | None = None,
) -> Summary:
    """Validate and score an input chunk by chunk; hand each results chunk to ``sink``.

    A results chunk holds the input columns, then ``row``, ``status`` and ``out_of_range``, then
    ``score_<name>`` and ``flag_<name>`` per detector. With ``on_bad_rows="reject"`` the first
    chunk holding a bad row raises :class:`BadRowsError`; with ``"skip"`` bad rows are kept in the
    results with empty scores and the reason in ``status``.
    """
    if on_bad_rows not in ("skip", "reject"):
        raise ValueError(f"on_bad_rows must be 'skip' or 'reject', not {on_bad_rows!r}")
    t_start = time.perf_counter()
    scorer = scorer or Scorer(store, names)
    summary = Summary(names=list(names), thresholds=dict(thresholds), flagged=dict.fromkeys(names, 0))

    def on_layout(layout: Layout) -> None:
        summary.layout = layout

    for chunk in read_chunks(source, name, chunk_bytes, max_bytes, on_layout,
                             (lambda f: progress(f, summary.rows_read)) if progress else None):
        n = len(chunk.valid)
        rows = np.arange(chunk.first_row, chunk.first_row + n)
        bad = np.flatnonzero(~chunk.valid)
        problems = [RowProblem(int(rows[i]), chunk.reasons[i] or "") for i in bad]
        if len(bad) and on_bad_rows == "reject":
            raise BadRowsError(problems, len(bad))
        summary.problems.extend(problems[:max(0, MAX_PROBLEMS_KEPT - len(summary.problems))])
        summary.rows_read += n
        summary.rows_skipped += len(bad)
        summary.rows_scored += n - len(bad)
        good = np.flatnonzero(chunk.valid)
        scores, out_of_range = scorer.score(chunk.features[good])
        status = np.full(n, OK, dtype=object)
        status[bad] = [f"skipped: {chunk.reasons[i]}" for i in bad]
        mask = ~chunk.valid
        table = chunk.table
        table = table.append_column(ROW_COLUMN, pa.array(rows, pa.int64()))
        table = table.append_column(STATUS_COLUMN, pa.array(status, pa.string()))
        oor = np.zeros(n, dtype=bool)
        oor[good] = out_of_range
        summary.out_of_range += int(oor.sum())
        table = table.append_column(RANGE_COLUMN, pa.array(oor, mask=mask))
        labels = label_views(table.column(summary.layout.label).to_numpy(zero_copy_only=False)[good]) \
            if summary.layout.label else None
        for name_ in names:
            s = np.full(n, np.nan)
            s[good] = scores[name_]
            flag = np.zeros(n, dtype=bool)
            flag[good] = scores[name_] >= thresholds[name_]
            summary.flagged[name_] += int(flag.sum())
            table = table.append_column(f"score_{name_}", pa.array(s, mask=mask))
            table = table.append_column(f"flag_{name_}", pa.array(flag, mask=mask))
            if labels is not None:
                for view in LABEL_VIEWS:
                    y = labels[view]
                    known = ~np.isnan(y)
                    f, pos = flag[good][known], y[known] == 1
                    counts = summary.confusion.setdefault(view, {}).setdefault(name_, [0, 0, 0, 0])
                    tp, fp = int((f & pos).sum()), int((f & ~pos).sum())
                    counts[0] += tp
                    counts[1] += fp
                    counts[2] += int(pos.sum()) - tp
                    counts[3] += int((~pos).sum()) - fp
        if labels is not None:
            for view in LABEL_VIEWS:
                summary.labelled[view] = summary.labelled.get(view, 0) + int((~np.isnan(labels[view])).sum())
        if sink:
            sink(table, summary.layout)
        del table, chunk
        release_memory()
    summary.seconds = time.perf_counter() - t_start
    summary.detector_seconds = dict(scorer.seconds)
    summary.distinct_rows = dict(scorer.rows_scored)
    return summary


class CsvSink:
    """Writes results chunks to a CSV file (gzip if the name ends in .gz) or a binary stream.

    Formatting numbers as text is as costly as scoring them, so chunks are written by a
    background thread while the next chunk is parsed and scored (at most one chunk waits).
    """

    def __init__(self, target: str | os.PathLike | IO[bytes]) -> None:
        import queue
        import threading

        self._target = target
        self._writer: pacsv.CSVWriter | None = None
        self._schema: pa.Schema | None = None
        self._file: IO[bytes] | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="anodet-csv-writer", daemon=True)
        self._thread.start()

    def __call__(self, table: pa.Table, layout: Layout) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((table, layout))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue
            try:
                self._write(*item)
            except BaseException as exc:
                self._error = exc

    def _write(self, table: pa.Table, layout: Layout) -> None:
        table = for_download(table, layout)
        if self._writer is None:
            if isinstance(self._target, (str, os.PathLike)):
                path = str(self._target)
                self._file = gzip.open(path, "wb", compresslevel=3) if path.endswith(".gz") else open(path, "wb")
            else:
                self._file = self._target
            self._schema = table.schema
            self._writer = pacsv.CSVWriter(self._file, table.schema)
        self._writer.write_table(table.cast(self._schema))

    def close(self) -> None:
        """Finish writing (waits for the queued chunks); raise any error the writer met."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None and isinstance(self._target, (str, os.PathLike)):
            self._file.close()
            self._file = None
        if self._error is not None:
            raise self._error


def results_csv(table: pa.Table, layout: Layout) -> bytes:
    """A whole results table as downloadable CSV bytes (formula cells neutralised)."""
    buffer = io.BytesIO()
    pacsv.write_csv(for_download(table, layout), buffer)
    return buffer.getvalue()


def example_csv(test_frame: Any, rows: int = 400, seed: int = 7) -> bytes:
    """A small example input built at run time from the cached test split (never committed).

    It has an ``id`` column, the 18 features in a shuffled order and the attack name as label,
    so it exercises column reordering, passthrough and labels.
    """
    rng = np.random.default_rng(seed)
    sample = test_frame.iloc[np.sort(rng.choice(len(test_frame), min(rows, len(test_frame)), replace=False))]
    features = list(FEATURES)
    rng.shuffle(features)
    out = sample[features].copy()
    out.insert(0, "id", [f"rec-{i:05d}" for i in range(len(out))])
    out["label"] = sample["attack"].astype(str).to_numpy() + "."
    return out.to_csv(index=False).encode()


def unlabelled_histogram(scores: np.ndarray, threshold: float, title: str, bins: int = 60) -> Any:
    """Histogram of scores without labels (one neutral colour), the threshold as a dashed line."""
    import plotly.graph_objects as go

    scores = np.asarray(scores, dtype=float)
    lo, hi = float(scores.min()), float(scores.max())
    counts, edges = np.histogram(scores, bins=np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1))
    fig = go.Figure(
        data=[{"type": "bar", "x": (edges[:-1] + edges[1:]) / 2, "y": counts, "width": np.diff(edges),
               "name": "records (no labels)", "marker": {"color": "#7f7f7f", "line": {"width": 0}},
               "hovertemplate": "score %{x:.4g}<br>%{y} records<extra></extra>"}],
        layout={"title": {"text": title, "x": 0.0, "xanchor": "left"}, "bargap": 0, "height": 340,
                "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
                "xaxis": {"title": {"text": "anomaly score"}},
                "yaxis": {"title": {"text": "records (log scale)"}, "type": "log"},
                "shapes": [{"type": "line", "x0": threshold, "x1": threshold, "y0": 0, "y1": 1, "yref": "paper",
                            "line": {"color": "#222222", "width": 2, "dash": "dash"}}],
                "annotations": [{"x": threshold, "y": 1, "yref": "paper", "text": f"threshold {threshold:.4g}",
                                 "showarrow": False, "xanchor": "left", "yanchor": "bottom"}]})
    return fig


# ---------------------------------------------------------------- the command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Configure the ``score`` subcommand."""
    from anodet.cli import detector_list

    parser.description = (
        "Score a CSV file (header naming the 18 features, any order, other columns passed through) or raw "
        "KDD records, optionally .gz, in bounded memory. Writes the input columns, then row, status, "
        "out_of_range, and score_<detector>, flag_<detector> per detector.")
    parser.add_argument("input", metavar="INPUT", help="CSV or raw KDD file (.gz accepted)")
    parser.add_argument("-o", "--output", metavar="OUTPUT",
                        help="results CSV (.gz to compress; '-' for standard output); "
                             "default: INPUT's name with .scored.csv, in the current folder")
    parser.add_argument("--detectors", type=detector_list,
                        help=f"comma-separated names (default: all stored but {', '.join(DEFAULT_EXCLUDED)})")
    parser.add_argument("--threshold", metavar="PRESET|VALUE",
                        help="best_f1 (default), best_accuracy, mean_3sigma, target_fpr, contamination, "
                             "or one number for every detector")
    parser.add_argument("--on-bad-rows", choices=("skip", "reject"), default="skip",
                        help="skip rows that cannot be scored (listed in the output) or reject the file "
                             "(default: skip)")
    parser.add_argument("--label-view", choices=LABEL_VIEWS, default=LABEL_VIEWS[0],
                        help="label view of the threshold presets and of the metrics when the file has labels")
    parser.add_argument("--store", metavar="DIR", help="model store folder (default: $ANODET_STORE or models_store/)")
    parser.add_argument("--chunk-mb", type=float, default=CHUNK_BYTES / 2**20, help=argparse.SUPPRESS)


def _default_output(path: str) -> Path:
    stem = Path(path).name
    for suffix in (".gz", ".csv", ".txt", ".data"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return Path(f"{stem or 'input'}.scored.csv")


def run(args: argparse.Namespace) -> int:
    """Run ``python -m anodet score``; 0 on success, 1 on bad input, with a message on stderr."""
    from tqdm.auto import tqdm

    from anodet.store import Store

    store = Store.open(args.store)
    names = args.detectors or default_detectors(store.names)
    try:
        thresholds = resolve_thresholds(store, names, args.threshold, args.label_view)
        scorer = Scorer(store, names)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    to_stdout = args.output == "-"
    output = None if to_stdout else Path(args.output) if args.output else _default_output(args.input)
    if output is not None and output.resolve() == Path(args.input).resolve():
        print("error: the output would overwrite the input; choose another name with -o.", file=sys.stderr)
        return 1
    partial = None if output is None else output.with_name(output.name + ".part")
    # A .gz output name compresses; the partial file keeps the .gz ending so CsvSink sees it.
    if partial is not None and output.name.endswith(".gz"):
        partial = output.with_name(output.name[:-3] + ".part.gz")
    bar = tqdm(total=100, unit="%", desc="scoring", disable=not sys.stderr.isatty(), file=sys.stderr,
               bar_format="{l_bar}{bar}| {postfix}")

    def progress(fraction: float, rows: int) -> None:
        bar.n = round(fraction * 100, 1)
        bar.set_postfix_str(f"{rows:,} rows")

    sink = CsvSink(sys.stdout.buffer if to_stdout else partial)

    def discard() -> None:
        bar.close()
        with contextlib.suppress(Exception):
            sink.close()
        if partial is not None:
            partial.unlink(missing_ok=True)

    try:
        summary = score_source(args.input, store, names, thresholds, args.on_bad_rows, sink=sink,
                               progress=progress, chunk_bytes=int(args.chunk_mb * 2**20), scorer=scorer,
                               name=args.input)
        sink.close()
    except (InputError, OSError) as exc:
        discard()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BaseException:
        discard()
        raise
    bar.close()
    if partial is not None:
        partial.replace(output)
    _print_summary(summary, args.label_view, output)
    return 0


def _print_summary(summary: Summary, view: str, output: Path | None) -> None:
    err = sys.stderr
    if summary.layout:
        print(f"Input: {summary.layout.describe()}.", file=err)
    for line in summary.lines():
        print(line, file=err)
    if summary.confusion.get(view):
        print(f"Against the file's labels ({view} view, {summary.labelled.get(view, 0):,} labelled rows):", file=err)
        for n, m in summary.metrics(view).items():
            print(f"  {n:<12} precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}  "
                  f"accuracy {m['accuracy']:.3f}", file=err)
    rate = summary.rows_read / summary.seconds if summary.seconds else 0.0
    where = f" → {output}" if output else ""
    print(f"Done in {summary.seconds:.1f} s ({rate:,.0f} rows/s){where}", file=err)
