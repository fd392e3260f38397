"""Recognise an input's format from its first line: a header CSV or raw KDD Cup 99 records.

* a CSV whose header names KDD feature columns (:data:`anodet.datasets.kdd_schema.RAW_COLUMNS`) in any
  order; numeric ones are parsed as numbers, every other column (an id, a timestamp, a label) is
  passed through as text. Which detectors the columns are enough for is the scorer's call
  (:func:`anodet.scoring.core.applicable`): each feature set names the columns it needs;
* raw KDD Cup 99 lines: 41 values, then optionally the label, no header. The first line fixes
  whether a label follows.

Files, uploads and streams all decide their layout here, with the same rules and messages.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from anodet.datasets.kdd_schema import LABEL_COLUMN_NAMES, NUMERIC_COLUMNS, RAW_COLUMNS
from anodet.reader.errors import InputError
from anodet.reader.limits import MAX_COLUMNS

ROW_COLUMN, STATUS_COLUMN, RANGE_COLUMN = "row", "status", "out_of_range"
RESERVED_COLUMNS = (ROW_COLUMN, STATUS_COLUMN, RANGE_COLUMN)
"""Names anodet writes into results; an input column of the same name is written as "NAME (input)"."""

_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}
_MODEL_COLUMNS = frozenset(RAW_COLUMNS)
_NUMERIC = frozenset(NUMERIC_COLUMNS)


@dataclass(frozen=True)
class InputSchema:
    """A user dataset's columns as inputs hold them (KDD's are this module's defaults).

    ``numeric``: the columns parsed as numbers (matched by exact name); ``label``: the declared label
    column, read when an input has it, with ``normal`` its normal values (every other value is an
    anomaly: the dataset's one label view, ``label``).
    """

    numeric: frozenset[str]
    label: str | None = None
    normal: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Layout:
    """What the first line told: the input's format and its columns."""

    kind: str  # "header" or "raw"
    columns: tuple[str, ...]  # output names of the input columns, in file order
    label: str | None  # name of the label column, if any
    compressed: bool = False
    numeric: frozenset[str] = _NUMERIC
    """The model's numeric columns: KDD's 38, or a user dataset's (see :func:`header_layout`)."""
    normal: frozenset[str] | None = None
    """A user dataset's normal label values (its label rule); None: KDD's rule (:mod:`anodet.datasets.labels`)."""

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """Model columns parsed as numbers, in file order."""
        return tuple(c for c in self.columns if c in self.numeric)

    @property
    def text_columns(self) -> list[str]:
        """Columns kept as text (every column but the numeric model columns)."""
        return [c for c in self.columns if c not in self.numeric]

    @property
    def passthrough(self) -> list[str]:
        """Text columns other than the label (an id, a timestamp, an address)."""
        return [c for c in self.text_columns if c != self.label]

    def describe(self) -> str:
        what = "CSV with a header" if self.kind == "header" else "raw KDD Cup 99 records (no header)"
        parts = [what + (", gzip-compressed" if self.compressed else "")]
        if self.label:
            parts.append(f"labels in column '{self.label}'")
        if self.passthrough:
            parts.append(f"{len(self.passthrough)} other column(s) passed through")
        return "; ".join(parts)


RAW_LAYOUT = Layout("raw", tuple(RAW_COLUMNS), None)
RAW_LABELLED_LAYOUT = Layout("raw", (*RAW_COLUMNS, "label"), "label")


def split_line(line: str, delimiter: str = ",") -> list[str]:
    """The fields of one CSV line; raises csv.Error on a line the csv module cannot read."""
    return next(csv.reader([line], delimiter=delimiter, strict=True), [])


def header_layout(fields: list[str], name: str, compressed: bool, schema: InputSchema | None = None) -> Layout:
    """The layout of a header naming ``fields`` (a CSV's first line, or a Parquet file's columns).

    ``schema``: a user dataset's columns (its store's), matched by exact name; KDD's columns are
    matched case-insensitively.
    """
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
    if schema is not None:
        label = schema.label if schema.label in names and schema.label not in schema.numeric else None
        return Layout("header", tuple(names), label, compressed, schema.numeric, schema.normal)
    columns = tuple(lowered[i] if lowered[i] in _MODEL_COLUMNS else names[i] for i in range(len(names)))
    label = next((c for c in columns if c.lower() in LABEL_COLUMN_NAMES), None)
    return Layout("header", columns, label, compressed)


def sniff(first_line: str, name: str, compressed: bool = False, max_columns: int = MAX_COLUMNS,
          schema: InputSchema | None = None) -> Layout:
    """The layout of an input from its first non-blank line, or an InputError saying what is wrong.

    ``schema`` (a user dataset's columns): the first line must be a header naming them.
    """
    first_line = first_line.lstrip("\ufeff")
    if first_line.count(",") >= max_columns:
        raise InputError(
            f"The first line of {name} has more than {max_columns:,} columns (the limit), so it is not a CSV of "
            "network records. anodet expects a header naming KDD feature columns, or raw KDD records (42 fields)."
        )
    try:
        fields = split_line(first_line)
    except csv.Error as exc:
        raise InputError(f"The first line of {name} cannot be read as CSV ({exc}): {first_line[:80]!r}. "
                         "Check its quotes and separators.") from None
    lowered = {f.strip().lstrip("\ufeff").strip().lower() for f in fields}
    if len(fields) <= 1:
        for delimiter, word in _OTHER_DELIMITERS.items():
            if delimiter in first_line and len(split_line(first_line, delimiter)) > 1:
                raise InputError(
                    f"{name} separates its values with {word}, not commas. Save it as comma-separated CSV "
                    "(or replace the separators with commas) and try again."
                )
        raise InputError(
            f"The first line of {name} holds a single value ({first_line[:60]!r}), so it is not a CSV of "
            "network records. anodet expects comma-separated columns: a header naming KDD feature columns, "
            "or raw KDD records."
        )
    if schema is not None:
        names = {f.strip().lstrip("\ufeff").strip() for f in fields}
        if not names & schema.numeric:
            raise InputError(
                f"The first line of {name} is not a header naming the dataset's columns (e.g. "
                f"{', '.join(sorted(schema.numeric)[:4])}). Add a header line with the column names."
            )
        return header_layout(fields, name, compressed, schema)
    if lowered & _MODEL_COLUMNS:
        return header_layout(fields, name, compressed)
    if len(fields) == len(RAW_COLUMNS):
        return Layout(RAW_LAYOUT.kind, RAW_LAYOUT.columns, None, compressed)
    if len(fields) == len(RAW_COLUMNS) + 1:
        return Layout(RAW_LABELLED_LAYOUT.kind, RAW_LABELLED_LAYOUT.columns, "label", compressed)
    raise InputError(
        f"The first line of {name} is neither a header naming KDD feature columns nor a raw KDD "
        f"record (41 values, then an optional label); it has {len(fields)} field(s). Add a header "
        f"naming the columns (e.g. {', '.join(RAW_COLUMNS[:4])}, …), or send raw KDD records."
    )
