"""Parse streamed CSV lines into the 18 model features, in bulk, with a reason for every reject.

Two input formats are accepted, decided by the first non-blank line of a stream:

* **header**: a CSV header naming all 18 :data:`~anodet.schema.FEATURES` (any order, extra
  columns allowed; a ``label`` column, if present, is carried into alerts), then one record a line;
* **raw KDD**: no header, 41 comma-separated KDD fields, optionally followed by the label.

Why bulk: parsing floats one line at a time in Python costs microseconds per record, which
caps a stream far below 100,000 records/s. A micro-batch of lines is joined and parsed once by
pandas' C reader; only when that batch holds a malformed line does it fall back to a line-by-line
pass that names what is wrong with each bad line.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from anodet.schema import FEATURES, N_FEATURES, RAW_COLUMNS

RAW_FIELDS = len(RAW_COLUMNS)
RAW_FEATURE_INDEX: tuple[int, ...] = tuple(RAW_COLUMNS.index(f) for f in FEATURES)
LABEL_COLUMNS = ("label", "attack")
SMALL_BATCH = 128
"""Up to this many lines, parsing line by line beats pandas' fixed cost per call (about 1 ms),
which is what keeps latency low when traffic is light and micro-batches are small."""
"""Header columns whose value is carried into alerts as the record's label."""


class FormatError(ValueError):
    """The stream's first line is a header that cannot be used (the message says why)."""


@dataclass(frozen=True)
class Layout:
    """Where the 18 features (and the optional label) sit in a line of one input format."""

    kind: str  # "header" or "raw"
    n_fields: tuple[int, ...]  # accepted field counts per line
    feature_index: tuple[int, ...]  # column of each FEATURES entry
    label_index: int | None
    column_names: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return max(self.n_fields)


RAW_LAYOUT = Layout("raw", (RAW_FIELDS, RAW_FIELDS + 1), RAW_FEATURE_INDEX, RAW_FIELDS)


def _split(line: str) -> list[str]:
    return [f.strip() for f in next(csv.reader([line]))] if line else []


def detect_layout(first_line: bytes | str) -> tuple[Layout, bool]:
    """The layout of a stream from its first non-blank line; True when that line is a header.

    A line naming any of the 18 features is taken as a header; it must then name all of them.
    """
    text = first_line.decode("utf-8", "replace") if isinstance(first_line, bytes) else first_line
    names = [n.strip().strip('"').strip().lower() for n in _split(text.strip())]
    if not any(n in FEATURES for n in names):
        return RAW_LAYOUT, False
    missing = [f for f in FEATURES if f not in names]
    if missing:
        raise FormatError(
            f"the header line names {len(FEATURES) - len(missing)} of the 18 features; missing: "
            f"{', '.join(missing)}. Send a header with all 18 feature columns, or raw KDD lines without a header."
        )
    dupes = sorted({n for n in names if names.count(n) > 1 and n in FEATURES})
    if dupes:
        raise FormatError(f"the header names feature column(s) {', '.join(dupes)} more than once.")
    label = next((names.index(c) for c in LABEL_COLUMNS if c in names), None)
    index = tuple(names.index(f) for f in FEATURES)
    return Layout("header", (len(names),), index, label, tuple(names)), True


@dataclass
class Parsed:
    """The outcome of one batch of lines.

    ``X`` holds the raw feature values of the accepted lines (FEATURES order); ``ok`` marks
    which input lines were accepted; ``rejects`` lists ``(position in batch, reason)``.
    """

    X: np.ndarray
    ok: np.ndarray
    labels: list[str | None] | None
    rejects: list[tuple[int, str]] = field(default_factory=list)


def _reason_for(line: str, layout: Layout) -> tuple[str | None, list[float] | None, str | None]:
    """Validate one line: (reason or None, the 18 values, the label)."""
    try:
        fields = _split(line)
    except csv.Error as exc:
        return f"not a valid CSV line ({exc})", None, None
    if len(fields) not in layout.n_fields:
        expected = " or ".join(str(n) for n in layout.n_fields)
        what = "raw KDD line (41 features, optional label)" if layout.kind == "raw" else "line under the header"
        return f"{len(fields)} fields, expected {expected} for a {what}", None, None
    values = []
    for name, col in zip(FEATURES, layout.feature_index, strict=True):
        token = fields[col]
        try:
            value = float(token)
        except ValueError:
            return f"field {col + 1} ({name}) is not a number: {token[:40]!r}", None, None
        if not math.isfinite(value):
            return f"field {col + 1} ({name}) is not a finite number: {token[:40]!r}", None, None
        values.append(value)
    label = None
    if layout.label_index is not None and layout.label_index < len(fields):
        label = fields[layout.label_index] or None
    return None, values, label


def _slow(lines: list[bytes], layout: Layout) -> Parsed:
    rows, labels, ok, rejects = [], [], np.zeros(len(lines), dtype=bool), []
    for i, raw in enumerate(lines):
        reason, values, label = _reason_for(raw.decode("utf-8", "replace"), layout)
        if reason:
            rejects.append((i, reason))
        else:
            ok[i] = True
            rows.append(values)
            labels.append(label)
    X = np.asarray(rows, dtype=np.float64).reshape(-1, N_FEATURES)
    return Parsed(X, ok, labels if layout.label_index is not None else None, rejects)


def parse_lines(lines: list[bytes], layout: Layout) -> Parsed:
    """Parse non-blank lines (without their newline) of one layout into features and rejects."""
    if not lines:
        return Parsed(np.empty((0, N_FEATURES)), np.zeros(0, dtype=bool), None)
    if len(lines) <= SMALL_BATCH:
        return _slow(lines, layout)
    blob = b"\n".join(lines)
    width = layout.width
    usecols = list(layout.feature_index) + ([layout.label_index] if layout.label_index is not None else [])
    try:
        frame = pd.read_csv(
            io.BytesIO(blob), header=None, names=range(width), usecols=usecols, engine="c",
            dtype={c: np.float64 for c in layout.feature_index} | (
                {layout.label_index: str} if layout.label_index is not None else {}),
            skip_blank_lines=False, na_filter=True, keep_default_na=False, na_values=[""],
            quoting=csv.QUOTE_MINIMAL, low_memory=False,
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OverflowError):
        return _slow(lines, layout)
    if len(frame) != len(lines):
        return _slow(lines, layout)
    X = frame[list(layout.feature_index)].to_numpy(dtype=np.float64)
    labels = None
    if layout.label_index is not None:
        label_col = frame[layout.label_index]
        present = label_col.notna().to_numpy()
        labels = label_col.where(label_col.notna(), None).tolist()
    else:
        present = np.zeros(len(lines), dtype=bool)
    # Every line must have exactly an accepted number of fields: the parser refuses longer
    # lines, and the total comma count pins down shorter ones.
    if layout.kind == "raw":
        expected_commas = int(present.sum()) * RAW_FIELDS + int((~present).sum()) * (RAW_FIELDS - 1)
    else:
        expected_commas = len(lines) * (width - 1)
    if blob.count(b",") != expected_commas or not np.isfinite(X).all():
        return _slow(lines, layout)
    return Parsed(X, np.ones(len(lines), dtype=bool), labels)
