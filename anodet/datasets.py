"""User datasets: declare a table of records, split it, and train the detector family on it.

A dataset lives under ``data/datasets/NAME/`` (git-ignored; ``$ANODET_DATA_DIR`` moves it):

* ``dataset.json`` — the declaration (format ``anodet-dataset/1``): input files with their sha256,
  label column and normal values, id and excluded columns, every column with its inferred kind,
  what was dropped and why, and the row counts of the splits;
* ``splits/{train,validation,test}.parquet`` — the processed splits;
* ``store/`` — the model store trained on it (same manifest, hashes, lock and swap as ``models_store/``).

Training rows are the normal ones (every row when there is no label column). With labels, a
validation split (to choose thresholds) is carved from the labelled rows with a fixed seed, and a
test split too when no test file is given. Without labels only the unlabelled threshold presets
are chosen (``mean_3sigma``, ``target_fpr``, ``contamination``).

The functions a page calls: :func:`inspect` (what would be declared, for a user to confirm),
:func:`add`, :func:`list_datasets`, :func:`load`, :func:`train` (with a progress callback),
:func:`open_store` and :func:`leaderboard`. Every problem with the user's data is a
:class:`DatasetError` whose message is one sentence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anodet.access import Principal, audit, require
from anodet.data import cache_root
from anodet.featureset import MAX_CATEGORIES, OTHER, ColumnSpec, FeatureSetSpec, qualified
from anodet.store import sha256_file

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FORMAT = "anodet-dataset/1"
DECLARATION = "dataset.json"
SPLITS_DIR = "splits"
STORE_DIR = "store"
LABEL_VIEW = "label"
"""The one label view of a user dataset (KDD has two: ``reference`` and ``true``)."""
LABEL_COLUMN = "y"
"""0/1 column of the processed splits (1 = anomaly), present when the dataset has labels."""
LABEL_TEXT = "label_value"
"""The label cell as given, kept in the processed splits beside ``y``."""

SPLIT_SEED = 0
VALIDATION_FRACTION = 0.2
TEST_FRACTION = 0.2
SPLIT_MAX_ROWS = 50_000
"""Most rows kept in the validation and in the test split (a random subset beyond that)."""
LEVEL_LIMIT = 100_000
"""Distinct values counted per text column while inspecting; past this a column is "over 100,000 levels"."""
LABEL_LIMIT = 1_000
"""Most distinct values a label column may hold."""
BLOCK_BYTES = 8 << 20

ROW_CAPS: dict[str, int] = {"autoencoder": 100_000, "vae": 100_000, "bigan": 100_000, "seq2seq": 5_000,
                            "kmeans": 100_000}
"""Training rows per detector kind on large data (a random subset); OCSVM and LOF take their own
``max_rows`` distinct rows and the Isolation Forest its ``max_samples`` per tree."""
LARGE_PARAMS: dict[str, dict[str, Any]] = {"seq2seq": {"epochs": 4}}
"""Parameters changed on large data (more than a row cap of training rows), as for KDD's 41 features."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_NUMBER = r"^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$"
_DEFAULT_NORMAL = ("normal", "0", "0.0", "benign", "false", "b")

Progress = Callable[[int, int, str], None]


class DatasetError(ValueError):
    """Something is wrong with a user's dataset or its declaration; the message is one sentence."""


# -- where things are ------------------------------------------------------------------------------


def datasets_root() -> Path:
    """``data/datasets`` (under ``$ANODET_DATA_DIR`` when set)."""
    return cache_root() / "datasets"


def check_name(name: str) -> str:
    """``name`` if it is a safe dataset name, else a DatasetError saying what a name may hold."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DatasetError(f"{name!r} is not a dataset name: use 1 to 64 letters, digits, '-' or '_', starting with a "
                           "letter or digit (e.g. wdbc or flows-2024).")
    if name.lower().startswith("kdd"):
        raise DatasetError(f"Dataset names starting with 'kdd' are kept for the built-in KDD Cup 99 feature sets; "
                           f"choose another name than {name!r}.")
    return name


def dataset_dir(name: str) -> Path:
    return datasets_root() / check_name(name)


def store_root(name: str) -> Path:
    """Where the model store of dataset ``name`` is written."""
    return dataset_dir(name) / STORE_DIR


# -- reading files in batches -----------------------------------------------------------------------


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def _check_file(path: Path | str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"There is no file {path}; check the path (CSV or Parquet).")
    if not path.is_file():
        raise DatasetError(f"{path} is not a file; give a CSV or Parquet file.")
    return path


def _unreadable(path: Path, exc: Exception) -> DatasetError:
    what = "Parquet" if _is_parquet(path) else "CSV"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatasetError(f"{path} cannot be read as {what} ({reason}); save it as comma-separated CSV with a header "
                        "row, or as Parquet.")


def file_columns(path: Path) -> tuple[list[str], dict[str, pa.DataType]]:
    """(column names, types as inferred from the first block) of a CSV or Parquet file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = _check_file(path)
    try:
        if _is_parquet(path):
            schema = pq.ParquetFile(path).schema_arrow
        else:
            with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES)) as reader:
                schema = reader.schema
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    names = list(schema.names)
    lowered = [n.strip().lower() for n in names]
    duplicates = sorted({n for n in lowered if lowered.count(n) > 1})
    if duplicates:
        raise DatasetError(f"The header of {path} names {', '.join(duplicates)} more than once; give every column "
                           "its own name.")
    if any(not n.strip() for n in names):
        raise DatasetError(f"Column {lowered.index('') + 1} of {path} has no name; give every column a name.")
    return names, {f.name: f.type for f in schema}


def _batches(path: Path, types: dict[str, pa.DataType], columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """``columns`` of the file in record batches, read as ``types``; ArrowInvalid on a value that does not convert."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if _is_parquet(path):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=list(columns)):
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


def _is_number_type(t: pa.DataType) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_integer(t) or pt.is_floating(t) or pt.is_decimal(t))


def _is_bool(t: pa.DataType) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_boolean(t))


def _is_temporal(t: pa.DataType) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_temporal(t))


def _first_bad_value(path: Path, column: str, kind: str) -> tuple[int, str] | None:
    """(data row, value) of the first non-empty cell of ``column`` that is not a number (kind "number") or
    that is one (kind "text"); None if there is none."""
    import pyarrow as pa
    import pyarrow.compute as pc

    offset = 0
    for batch in _batches(path, {column: pa.string()}, [column]):
        values = batch.column(0)
        numeric = pc.match_substring_regex(values, _NUMBER)
        wanted = pc.invert(numeric) if kind == "number" else numeric
        hits = pc.indices_nonzero(pc.fill_null(wanted, False))
        if len(hits):
            i = hits[0].as_py()
            return offset + i + 1, values[i].as_py()
        offset += len(values)
    return None


# -- inspecting a file -----------------------------------------------------------------------------


@dataclass
class ColumnInfo:
    """One input column as inspected: its role and kind, and what was seen in it."""

    name: str
    role: str  # "feature", "label", "id", "excluded", "dropped"
    kind: str | None = None  # for features: "numeric", "log" or "categorical"
    type: str = ""  # the Arrow type it was read as
    nulls: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    levels: int | None = None  # distinct values (text columns); LEVEL_LIMIT + 1 means "more than LEVEL_LIMIT"
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "role": self.role}
        for key in ("kind", "type", "nulls", "min", "max", "mean", "levels", "note"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ColumnInfo:
        return cls(**{k: doc[k] for k in ("name", "role", "kind", "type", "nulls", "min", "max", "mean", "levels",
                                          "note") if k in doc})


@dataclass
class Inspection:
    """What :func:`inspect` found in a file: every column with its inferred role and kind, and the labels."""

    path: Path
    rows: int
    columns: list[ColumnInfo]
    label: str | None = None
    normal: list[str] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[ColumnInfo]:
        return [c for c in self.columns if c.role == "feature"]

    def feature_columns(self) -> list[tuple[str, str]]:
        """(name, kind) of each feature column, in file order."""
        return [(c.name, str(c.kind)) for c in self.features]

    def lines(self) -> list[str]:
        """The human summary (CLI and page share it)."""
        kinds: dict[str, list[str]] = {}
        for c in self.features:
            kinds.setdefault(str(c.kind), []).append(c.name)
        out = [f"{self.path}: {self.rows:,} rows, {len(self.columns)} columns."]
        for kind in ("numeric", "log", "categorical"):
            if kinds.get(kind):
                what = {"numeric": "numeric", "log": "numeric (log scale)", "categorical": "categorical"}[kind]
                out.append(f"  {what} ({len(kinds[kind])}): {_listed(kinds[kind])}")
        for role in ("label", "id", "excluded", "dropped"):
            cols = [c for c in self.columns if c.role == role]
            if cols:
                out.append(f"  {role}: " + ", ".join(c.name + (f" ({c.note})" if c.note else "") for c in cols))
        if self.label:
            counts = ", ".join(f"{v!r}: {n:,}" for v, n in sorted(self.label_counts.items(), key=lambda kv: -kv[1]))
            out.append(f"  labels in {self.label!r} ({counts}); normal: {', '.join(map(repr, self.normal))}")
        else:
            out.append("  no label column: every row is taken as normal, and only unlabelled thresholds are chosen")
        out.extend(f"  note: {n}" for n in self.notes)
        return out


def _listed(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _split_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def _resolve(names: list[str], wanted: Sequence[str], what: str, path: Path) -> list[str]:
    """The file's spelling of each of ``wanted`` (matched exactly, else case-insensitively)."""
    lowered = {n.lower(): n for n in names}
    out = []
    for w in wanted:
        got = w if w in names else lowered.get(w.lower())
        if got is None:
            raise DatasetError(f"{path} has no column {w!r} (given as {what}); its columns are {_listed(names)}.")
        out.append(got)
    return out


class _Stats:
    """Running statistics of one column over the batches of a file."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nulls = 0
        self.min = math.inf
        self.max = -math.inf
        self.total = 0.0
        self.count = 0
        self.levels: dict[str, int] = {}
        self.more_levels = False
        self.numeric_text = 0  # text cells that read as numbers
        self.other_text = 0  # text cells that do not
        self.first_numeric: tuple[int, str] | None = None
        self.first_other: tuple[int, str] | None = None

    def numbers(self, array: pa.Array) -> None:
        import pyarrow.compute as pc

        self.nulls += array.null_count
        if len(array) == array.null_count:
            return
        values = pc.cast(array, "float64")
        finite = pc.filter(values, pc.is_finite(values))
        self.nulls += len(values) - values.null_count - len(finite) + 0  # non-finite values count as empty
        if len(finite):
            got = pc.min_max(finite)
            self.min = min(self.min, got["min"].as_py())
            self.max = max(self.max, got["max"].as_py())
            self.total += pc.sum(finite).as_py()
            self.count += len(finite)

    def text(self, array: pa.Array, offset: int, check_numbers: bool) -> None:
        import pyarrow.compute as pc

        self.nulls += array.null_count
        if not self.more_levels:
            counts = pc.value_counts(array.drop_null())
            for value, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
                self.levels[value] = self.levels.get(value, 0) + n
            if len(self.levels) > LEVEL_LIMIT:
                self.more_levels = True
                self.levels = {}
        if check_numbers:
            numeric = pc.fill_null(pc.match_substring_regex(array, _NUMBER), False)
            valid = pc.is_valid(array)
            n_numeric = pc.sum(numeric).as_py() or 0
            n_other = (pc.sum(valid).as_py() or 0) - n_numeric
            if n_numeric and self.first_numeric is None:
                i = pc.indices_nonzero(numeric)[0].as_py()
                self.first_numeric = (offset + i + 1, array[i].as_py())
            if n_other and self.first_other is None:
                i = pc.indices_nonzero(pc.and_(valid, pc.invert(numeric)))[0].as_py()
                self.first_other = (offset + i + 1, array[i].as_py())
            self.numeric_text += n_numeric
            self.other_text += n_other

    @property
    def n_levels(self) -> int:
        return LEVEL_LIMIT + 1 if self.more_levels else len(self.levels)


def _read_types(names: list[str], inferred: dict[str, pa.DataType], text: set[str]) -> dict[str, pa.DataType]:
    """How each column is read: numbers as float64, booleans as they are, everything else (and ``text``) as text."""
    import pyarrow as pa

    types = {}
    for name in names:
        t = inferred[name]
        if name in text or not (_is_number_type(t) or _is_bool(t)):
            types[name] = pa.string()
        elif _is_number_type(t):
            types[name] = pa.float64()
        else:
            types[name] = pa.bool_()
    return types


def _conversion_error(path: Path, names: list[str], exc: Exception) -> DatasetError:
    """The sentence for a value that would not convert (a text cell in a column of numbers)."""
    found = re.search(r"column #(\d+)", str(exc))
    if found and int(found.group(1)) < len(names):
        column = names[int(found.group(1))]
        bad = _first_bad_value(path, column, "number")
        where = f" (data row {bad[0]:,} holds {bad[1]!r})" if bad else ""
        return DatasetError(f"Column {column!r} of {path} mixes numbers and text{where}; fix those rows, or declare "
                            f"it categorical (--categorical {column}) to treat every value as a category.")
    return _unreadable(path, exc)


def _scan(path: Path, names: list[str], types: dict[str, pa.DataType], text_checks: set[str],
          progress: Callable[[int], None] | None = None) -> tuple[int, dict[str, _Stats]]:
    """(rows, per-column statistics) in one streamed pass over the file."""
    import pyarrow as pa

    stats = {n: _Stats(n) for n in names}
    rows = 0
    try:
        for batch in _batches(path, types, names):
            for name, array in zip(batch.schema.names, batch.columns, strict=True):
                if array.type == pa.string():
                    stats[name].text(array, rows, name in text_checks)
                else:
                    stats[name].numbers(array)
            rows += batch.num_rows
            if progress:
                progress(rows)
    except pa.ArrowInvalid as exc:
        raise _conversion_error(path, names, exc) from None
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None
    return rows, stats


def _normal_values(label: str, counts: dict[str, int], normal: list[str], path: Path) -> list[str]:
    """The label values taken as normal (given, or guessed from the usual names), checked against the file."""
    present = sorted(counts, key=lambda v: -counts[v])
    shown = ", ".join(repr(v) for v in present[:10]) + (" …" if len(present) > 10 else "")
    if len(present) < 2:
        only = f" ({present[0]!r})" if present else " (it is empty)"
        raise DatasetError(f"The label column {label!r} of {path} holds one class only{only}, so there is nothing to "
                           "tell normal from anomalous rows; leave out --label to train on every row without labels.")
    if normal:
        stripped = {v.strip(): v for v in present}
        missing = [v for v in normal if v.strip() not in stripped]
        if missing:
            raise DatasetError(f"The label column {label!r} of {path} has no value {missing[0]!r}; it holds {shown}. "
                               "Give --normal with the value(s) of the normal rows.")
        chosen = [stripped[v.strip()] for v in normal]
        if len(chosen) == len(present):
            raise DatasetError(f"Every value of the label column {label!r} ({shown}) is declared normal, so no row "
                               "is an anomaly; give --normal only the value(s) of the normal rows.")
        return chosen
    guessed = [v for v in present if v.strip().lower().rstrip(".") in _DEFAULT_NORMAL]
    if len(guessed) != 1:
        raise DatasetError(f"Which value of the label column {label!r} marks a normal row? It holds {shown}; give "
                           "--normal VALUE (several: --normal A,B).")
    return guessed


def inspect(path: Path | str, label: str | None = None, normal: str | Sequence[str] | None = None,
            id_column: str | None = None, exclude: str | Sequence[str] | None = None,
            categorical: str | Sequence[str] | None = None, log: str | Sequence[str] | None = None,
            numeric: str | Sequence[str] | None = None,
            progress: Callable[[int], None] | None = None) -> Inspection:
    """Inspect a CSV or Parquet file in one streamed pass and infer each column's role and kind.

    Numbers are ``numeric`` (``log`` when non-negative and heavy-tailed), text is ``categorical``;
    ``categorical``/``log``/``numeric`` override the inference for the columns they name. A
    constant or empty column is dropped (with a note), a categorical column with more than
    :data:`~anodet.featureset.MAX_CATEGORIES` levels keeps its most frequent ones (with a note).
    A DatasetError (one sentence) for a missing or unreadable file, a column of numbers and text
    mixed, no numeric column, or a label column that cannot tell normal from anomalous rows.
    """
    path = _check_file(path)
    names, inferred = file_columns(path)
    label_col = _resolve(names, [label], "--label", path)[0] if label else None
    id_col = _resolve(names, [id_column], "--id", path)[0] if id_column else None
    excluded = _resolve(names, _split_list(exclude), "--exclude", path)
    as_categorical = set(_resolve(names, _split_list(categorical), "--categorical", path))
    as_log = set(_resolve(names, _split_list(log), "--log", path))
    as_numeric = set(_resolve(names, _split_list(numeric), "--numeric", path))
    clash = (as_categorical & (as_log | as_numeric)) | ({label_col, id_col} & (as_categorical | as_log | as_numeric))
    if clash:
        raise DatasetError(f"Column {sorted(c for c in clash if c)[0]!r} is given two roles; name each column in "
                           "one of --label, --id, --categorical, --log or --numeric.")
    text = {c for c in (label_col, id_col) if c} | as_categorical | set(excluded)
    types = _read_types(names, inferred, text - as_numeric - as_log)
    features = [n for n in names if n not in text or n in as_categorical]
    checks = {n for n in features if n not in as_categorical}
    rows, stats = _scan(path, names, types, checks, progress)
    if rows == 0:
        raise DatasetError(f"{path} has a header but no rows; give a file with records.")

    import pyarrow as pa

    columns: list[ColumnInfo] = []
    notes: list[str] = []
    for name in names:
        s = stats[name]
        info = ColumnInfo(name, "feature", type=str(types[name]), nulls=s.nulls)
        if name == label_col:
            info.role, info.levels = "label", s.n_levels
        elif name == id_col:
            info.role, info.note = "id", "passed through"
        elif name in excluded:
            info.role, info.note = "excluded", "--exclude"
        elif types[name] == pa.string() and name not in as_categorical:
            if s.numeric_text and s.other_text:
                number, other = s.first_numeric, s.first_other
                assert number is not None and other is not None
                minority = other if s.other_text <= s.numeric_text else number
                raise DatasetError(
                    f"Column {name!r} of {path} mixes numbers and text (data row {minority[0]:,} holds "
                    f"{minority[1]!r}, data row {(number if minority is other else other)[0]:,} holds "
                    f"{(number if minority is other else other)[1]!r}); fix those rows, or declare it categorical "
                    f"(--categorical {name}) to treat every value as a category.")
            if s.numeric_text and (name in as_numeric or name in as_log or not s.other_text):
                raise DatasetError(f"Column {name!r} of {path} holds numbers the reader took as text; check that "
                                   "every row of it is a plain number.")
            _categorical(info, s, rows, notes, inferred[name])
        elif name in as_categorical:
            _categorical(info, s, rows, notes, inferred[name])
        else:
            _numeric(info, s, rows, name in as_log, name in as_numeric)
        if info.role == "feature" and info.kind != "categorical" and s.nulls:
            notes.append(f"{name!r} has {s.nulls:,} empty or non-finite cell(s): those rows are left out.")
        columns.append(info)
    for info in columns:
        if info.role == "dropped":
            notes.insert(0, f"{info.name!r} is dropped: {info.note}.")
    if not any(c.role == "feature" and c.kind in ("numeric", "log") for c in columns):
        cats = [c.name for c in columns if c.role == "feature"]
        raise DatasetError(f"{path} has no usable numeric column" + (f" (only categorical ones: {_listed(cats)})"
                                                                        if cats else "")
                           + "; anodet's detectors need at least one column of numbers that is not constant.")
    counts: dict[str, int] = {}
    normals: list[str] = []
    if label_col:
        s = stats[label_col]
        if s.more_levels or len(s.levels) > LABEL_LIMIT:
            raise DatasetError(f"The label column {label_col!r} of {path} holds over {LABEL_LIMIT:,} distinct values, "
                               "so it is not a label; name the right column with --label, or leave it out.")
        counts = dict(s.levels)
        if s.nulls:
            notes.append(f"{s.nulls:,} row(s) have an empty label: they are left out.")
        normals = _normal_values(label_col, counts, _split_list(normal), path)
    elif normal:
        raise DatasetError("--normal needs --label: name the column that holds the labels.")
    return Inspection(path, rows, columns, label_col, normals, counts, notes)


def _categorical(info: ColumnInfo, s: _Stats, rows: int, notes: list[str], inferred: pa.DataType) -> None:
    info.kind, info.levels, info.type = "categorical", s.n_levels, "string"
    if _is_temporal(inferred):
        info.role, info.kind, info.note = "dropped", None, "dates or times (convert them to a number to use them)"
    elif s.nulls == rows:
        info.role, info.kind, info.note = "dropped", None, "empty in every row"
    elif s.n_levels + (1 if s.nulls else 0) <= 1:
        value = next(iter(s.levels), "")
        info.role, info.kind, info.note = "dropped", None, f"constant (always {value!r})"
    elif s.n_levels > MAX_CATEGORIES:
        many = f"over {LEVEL_LIMIT:,}" if s.more_levels else f"{s.n_levels:,}"
        info.note = f"{many} levels: the {MAX_CATEGORIES} most frequent are kept, the rest share {OTHER}"
        notes.append(f"{info.name!r} has {many} levels: the {MAX_CATEGORIES} most frequent in training are kept and "
                     f"the rest share one '{OTHER}' bucket.")
        if s.more_levels or s.n_levels > 0.5 * rows:
            notes.append(f"{info.name!r} is nearly unique per row: if it is an identifier, give --id {info.name} or "
                         f"--exclude {info.name}.")


def _numeric(info: ColumnInfo, s: _Stats, rows: int, as_log: bool, as_numeric: bool) -> None:
    if s.count == 0:
        info.role, info.note = "dropped", "empty in every row"
        return
    info.min, info.max = float(s.min), float(s.max)
    info.mean = float(s.total / s.count)
    if s.min == s.max:
        info.role, info.note = "dropped", f"constant (always {s.min:g})"
        return
    heavy = s.min >= 0 and s.max >= 1e3 and s.max > 100 * max(info.mean, 1e-12)
    info.kind = "log" if as_log or (heavy and not as_numeric) else "numeric"


# -- the declaration ----------------------------------------------------------------------------------


@dataclass
class Dataset:
    """A declared user dataset: its declaration (``dataset.json``) and where its files are."""

    name: str
    doc: dict[str, Any]

    @property
    def folder(self) -> Path:
        return dataset_dir(self.name)

    @property
    def store_root(self) -> Path:
        return self.folder / STORE_DIR

    @property
    def labelled(self) -> bool:
        return self.doc.get("label") is not None

    @property
    def label_views(self) -> list[str]:
        return [LABEL_VIEW]

    @property
    def columns(self) -> list[ColumnInfo]:
        return [ColumnInfo.from_json(c) for c in self.doc["columns"]]

    @property
    def feature_columns(self) -> list[tuple[str, str]]:
        """(name, kind) of each column the detectors see."""
        return [(c["name"], c["kind"]) for c in self.doc["columns"] if c["role"] == "feature"]

    @property
    def width(self) -> int:
        """Model inputs per record (about: a categorical column gives one per kept level and one for others)."""
        return sum(1 if c["kind"] != "categorical" else min(int(c.get("levels") or 1), MAX_CATEGORIES) + 1
                   for c in self.doc["columns"] if c["role"] == "feature")

    @property
    def feature_set_name(self) -> str:
        return self.name

    def feature_set_spec(self) -> FeatureSetSpec:
        """The dataset's feature set: its feature columns with their kinds, named after the dataset."""
        cols = tuple(ColumnSpec(n, k) for n, k in self.feature_columns)
        return FeatureSetSpec(self.feature_set_name, f"Dataset {self.name}: {len(cols)} columns of "
                              f"{Path(self.doc['files']['train']['path']).name}.", cols)

    def checksums(self) -> dict[str, str]:
        """What the splits (and so a store) were built from: input file hashes and the declaration's digest."""
        out = {k: v["sha256"] for k, v in self.doc["files"].items() if v}
        out["declaration"] = declaration_digest(self.doc)
        return out

    def splits(self) -> DatasetSplits:
        """The processed splits, from their Parquet cache (rebuilt from the input files when missing)."""
        return load_splits(self)

    def lines(self) -> list[str]:
        """The human summary of the declaration (``dataset show``)."""
        d = self.doc
        out = [f"dataset {self.name} ({d['format']}), declared {d.get('created', '?')}"]
        for key, f in d["files"].items():
            if f:
                out.append(f"  {key} file: {f['path']} ({f['rows']:,} rows, sha256 {f['sha256'][:12]}…)")
        kinds: dict[str, list[str]] = {}
        for n, k in self.feature_columns:
            kinds.setdefault(k, []).append(n)
        for kind in ("numeric", "log", "categorical"):
            if kinds.get(kind):
                out.append(f"  {kind} ({len(kinds[kind])}): {_listed(kinds[kind])}")
        for role in ("id", "excluded", "dropped"):
            cols = [c for c in d["columns"] if c["role"] == role]
            if cols:
                out.append(f"  {role}: " + ", ".join(c["name"] + (f" ({c['note']})" if c.get("note") else "")
                                                     for c in cols))
        if d.get("label"):
            lab = d["label"]
            out.append(f"  label column {lab['column']!r}; normal value(s): {', '.join(map(repr, lab['normal']))}")
        else:
            out.append("  no labels: thresholds are the unlabelled presets (mean_3sigma, target_fpr, contamination)")
        sp = d.get("splits", {})
        for key in ("train", "validation", "test"):
            if key in sp:
                anomalies = f", {sp[key]['anomalies']:,} anomalies" if sp[key].get("anomalies") is not None else ""
                out.append(f"  {key} split: {sp[key]['rows']:,} rows{anomalies}")
        out.extend(f"  note: {n}" for n in d.get("notes", []))
        trained = (self.store_root / "manifest.json").exists()
        out.append(f"  store: {self.store_root}" + ("" if trained else
                                                   f" (not trained yet: python -m anodet train --dataset {self.name})"))
        return out


def declaration_digest(doc: dict[str, Any]) -> str:
    """The sha256 of what decides the splits: files, label, columns (not notes or dates)."""
    keep = {k: doc.get(k) for k in ("format", "files", "label", "id", "excluded", "columns", "split")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


def list_datasets() -> list[str]:
    """Names of the declared datasets, sorted."""
    root = datasets_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / DECLARATION).is_file() and _NAME.match(p.name))


def load(name: str) -> Dataset:
    """The declared dataset ``name``, or a DatasetError saying how to declare it."""
    path = dataset_dir(name) / DECLARATION
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        known = list_datasets()
        raise DatasetError(f"There is no dataset {name!r}" + (f" (declared: {', '.join(known)})" if known else "")
                           + f"; declare it with `python -m anodet dataset add {name} --train FILE`.") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} cannot be read ({exc}); declare the dataset again with "
                           f"`python -m anodet dataset add {name} --train FILE --replace`.") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a dataset declaration of format {FORMAT!r}; declare the dataset again "
                           f"with `python -m anodet dataset add {name} --train FILE --replace`.")
    return Dataset(name, doc)


def owner(name: str) -> str | None:
    """The principal id that declared dataset ``name`` (its owner), or None when unknown or not declared."""
    try:
        doc = json.loads((dataset_dir(name) / DECLARATION).read_text())
    except (OSError, ValueError):
        return None
    found = doc.get("owner") if isinstance(doc, dict) else None
    return found if isinstance(found, str) and found else None


def add(name: str, train: Path | str, test: Path | str | None = None, label: str | None = None,
        normal: str | Sequence[str] | None = None, id_column: str | None = None,
        exclude: str | Sequence[str] | None = None, categorical: str | Sequence[str] | None = None,
        log: str | Sequence[str] | None = None, numeric: str | Sequence[str] | None = None,
        replace: bool = False, progress: Callable[[str], None] | None = None,
        principal: Principal | None = None) -> Dataset:
    """Inspect ``train`` (and ``test``), write the declaration and build the splits; return the dataset.

    An existing dataset of that name is a DatasetError unless ``replace``. ``progress`` gets one
    line per step. ``principal`` (default: the command line's operator) must be allowed to declare
    it, or to replace it (its owner or an admin); the outcome goes to the audit log.
    """
    folder = dataset_dir(check_name(name))
    existed = (folder / DECLARATION).exists()
    if existed and not replace:
        raise DatasetError(f"Dataset {name!r} is already declared ({folder / DECLARATION}); add --replace to declare "
                           "it again, or choose another name.")
    action, previous = ("replace", owner(name)) if existed else ("declare", None)
    actor = require(principal, action, previous, resource=f"dataset:{name}")
    try:
        dataset = _add(name, folder, train, test, label, normal, id_column, exclude, categorical, log, numeric,
                       progress, previous or actor.id)
    except Exception as exc:
        audit.record(actor, action, audit.FAILED, f"dataset:{name}", str(exc) or type(exc).__name__)
        raise
    audit.record(actor, action, audit.OK, f"dataset:{name}")
    return dataset


def _add(name: str, folder: Path, train: Path | str, test: Path | str | None, label: str | None,
         normal: str | Sequence[str] | None, id_column: str | None, exclude: str | Sequence[str] | None,
         categorical: str | Sequence[str] | None, log: str | Sequence[str] | None,
         numeric: str | Sequence[str] | None, progress: Callable[[str], None] | None, owner_id: str) -> Dataset:
    say = progress or (lambda _m: None)
    say(f"inspecting {train} …")
    found = inspect(train, label, normal, id_column, exclude, categorical, log, numeric)
    test_info = _inspect_test(Path(test), found) if test is not None else None
    files = {"train": _file_entry(found.path, found.rows), "test": _file_entry(*test_info) if test_info else None}
    doc: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": files,
        "label": ({"column": found.label, "normal": found.normal, "counts": found.label_counts}
                  if found.label else None),
        "id": next((c.name for c in found.columns if c.role == "id"), None),
        "excluded": [c.name for c in found.columns if c.role == "excluded"],
        "columns": [c.to_json() for c in found.columns],
        "split": {"seed": SPLIT_SEED, "validation_fraction": VALIDATION_FRACTION,
                  "test_fraction": None if test is not None else TEST_FRACTION, "max_rows": SPLIT_MAX_ROWS},
        "notes": list(found.notes),
        "owner": owner_id,
    }
    dataset = Dataset(name, doc)
    folder.mkdir(parents=True, exist_ok=True)
    say("building the splits …")
    splits = build_splits(dataset)
    _write_declaration(dataset, splits)
    say(f"wrote {folder / DECLARATION}")
    return dataset


def _file_entry(path: Path, rows: int) -> dict[str, Any]:
    return {"path": str(Path(path).resolve()), "format": "parquet" if _is_parquet(Path(path)) else "csv",
            "rows": rows, "sha256": sha256_file(Path(path))}


def _inspect_test(path: Path, train: Inspection) -> tuple[Path, int]:
    """(path, rows) of a test file once it holds every feature column, readable as the training file's kinds."""
    import pyarrow as pa

    path = _check_file(path)
    names, _ = file_columns(path)
    needed = [c.name for c in train.features]
    lacking = [c for c in needed if c not in names]
    if lacking:
        raise DatasetError(f"The test file {path} lacks the column(s) {_listed(lacking)} of the training file; give a "
                           "test file with the same columns.")
    kinds = dict(train.feature_columns())
    types = {c: (pa.string() if kinds[c] == "categorical" else pa.float64()) for c in needed}
    if train.label and train.label in names:
        types[train.label] = pa.string()
    rows, _ = _scan(path, list(types), types, set())
    return path, rows


def _write_declaration(dataset: Dataset, splits: DatasetSplits) -> None:
    doc = dataset.doc
    doc["splits"] = {k: {"rows": len(getattr(splits, k)),
                         "anomalies": (int(getattr(splits, k)[LABEL_COLUMN].sum())
                                       if LABEL_COLUMN in getattr(splits, k) else None)}
                     for k in ("train", "validation", "test")}
    doc["notes"] = list(dict.fromkeys([*doc.get("notes", []), *splits.notes]))
    path = dataset.folder / DECLARATION
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


# -- the splits -----------------------------------------------------------------------------------------


@dataclass
class DatasetSplits:
    """A user dataset's splits, shaped like :class:`anodet.data.Splits`: raw feature columns, plus ``y``
    (1 = anomaly) and the label as given where the dataset has labels, plus the id column if any."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    checksums: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def labels(self, split: str, view: str = LABEL_VIEW) -> np.ndarray | None:
        """0/1 labels of ``split`` ("validation" or "test"), or None where it has no labels."""
        if view != LABEL_VIEW:
            raise ValueError(f"a user dataset has one label view, {LABEL_VIEW!r}, not {view!r}")
        frame = getattr(self, split)
        return frame[LABEL_COLUMN].to_numpy() if LABEL_COLUMN in frame else None

    def labelled_train(self) -> tuple[pd.DataFrame, np.ndarray] | None:
        """(rows, 1 = anomaly) the supervised ceiling learns from: the validation split (None without labels)."""
        y = self.labels("validation")
        return None if y is None or len(np.unique(y)) < 2 else (self.validation, y)


def _read_frame(dataset: Dataset, key: str) -> pd.DataFrame:
    """The declared columns of input file ``key`` ("train" or "test"), checked against its recorded sha256."""
    import pyarrow as pa

    entry = dataset.doc["files"][key]
    path = _check_file(entry["path"])
    if sha256_file(path) != entry["sha256"]:
        raise DatasetError(f"{path} changed since dataset {dataset.name!r} was declared (its sha256 differs); declare "
                           f"it again with `python -m anodet dataset add {dataset.name} ... --replace`.")
    names, _ = file_columns(path)
    types: dict[str, pa.DataType] = {}
    for n, kind in dataset.feature_columns:
        types[n] = pa.string() if kind == "categorical" else pa.float64()
    label = (dataset.doc.get("label") or {}).get("column")
    for extra in (label, dataset.doc.get("id")):
        if extra and extra in names:
            types[extra] = pa.string()
    wanted = [n for n in names if n in types]
    try:
        batches = list(_batches(path, types, wanted))
    except pa.ArrowInvalid as exc:
        raise _conversion_error(path, names, exc) from None
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None
    table = pa.Table.from_batches(batches, schema=batches[0].schema if batches else None) if batches else None
    if table is None:
        raise DatasetError(f"{path} has no rows.")
    del batches
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _clean(dataset: Dataset, frame: pd.DataFrame, what: str, notes: list[str]) -> pd.DataFrame:
    """Rows with every numeric feature finite; categorical cells as text ('' for empty); ``y`` from the label."""
    numeric = [n for n, k in dataset.feature_columns if k != "categorical"]
    categorical = [n for n, k in dataset.feature_columns if k == "categorical"]
    values = frame[numeric].to_numpy(dtype=np.float64)
    ok = np.isfinite(values).all(axis=1)
    del values
    label = dataset.doc.get("label")
    if label and label["column"] in frame:
        text = frame[label["column"]]
        known = text.notna().to_numpy()
        if (~known & ok).any():
            notes.append(f"{int((~known & ok).sum()):,} row(s) of the {what} file have no label and are left out.")
        ok &= known
    if (~ok).sum() and numeric:
        dropped = int((~np.isfinite(frame[numeric].to_numpy(dtype=np.float64)).any(axis=1)).sum())
        if dropped:
            notes.append(f"{dropped:,} row(s) of the {what} file have an empty or non-finite number and are left out.")
    frame = frame[ok] if not ok.all() else frame
    for c in categorical:
        frame[c] = frame[c].fillna("").astype(str)
    if label and label["column"] in frame:
        text = frame[label["column"]].astype(str)
        normal = {v.strip() for v in label["normal"]}
        frame[LABEL_COLUMN] = (~text.str.strip().isin(normal)).to_numpy().astype(np.int8)
        frame[LABEL_TEXT] = text.to_numpy()
        if label["column"] not in (LABEL_COLUMN, LABEL_TEXT):
            frame = frame.drop(columns=[label["column"]])
    return frame.reset_index(drop=True)


def _take(n: int, fraction: float, cap: int) -> int:
    return min(round(n * fraction), cap)


def build_splits(dataset: Dataset) -> DatasetSplits:
    """Read the input files, carve train/validation/test with the fixed seed, and cache them as Parquet."""
    import pandas as pd

    notes: list[str] = []
    rng = np.random.default_rng(SPLIT_SEED)
    frame = _clean(dataset, _read_frame(dataset, "train"), "training", notes)
    has_test = dataset.doc["files"].get("test") is not None
    test_frame = _clean(dataset, _read_frame(dataset, "test"), "test", notes) if has_test else None
    if not dataset.labelled:
        order = rng.permutation(len(frame))
        n_val = _take(len(frame), VALIDATION_FRACTION / (1 if has_test else 2), SPLIT_MAX_ROWS)
        n_test = 0 if has_test else _take(len(frame), VALIDATION_FRACTION / 2, SPLIT_MAX_ROWS)
        val = frame.iloc[np.sort(order[:n_val])]
        test = test_frame if test_frame is not None else frame.iloc[np.sort(order[n_val:n_val + n_test])]
        train = frame.iloc[np.sort(order[n_val + n_test:])]
        notes.append("No labels: validation rows are held-out training rows, taken as normal.")
    else:
        y = frame[LABEL_COLUMN].to_numpy()
        normals, anomalies = rng.permutation(np.flatnonzero(y == 0)), rng.permutation(np.flatnonzero(y == 1))
        n_val = _take(len(normals), VALIDATION_FRACTION, SPLIT_MAX_ROWS)
        n_test = 0 if has_test else _take(len(normals), TEST_FRACTION, SPLIT_MAX_ROWS)
        a_val = len(anomalies) if has_test else (len(anomalies) + 1) // 2
        a_val_kept = min(a_val, max(1, int(SPLIT_MAX_ROWS * 0.5)))
        a_test_kept = min(len(anomalies) - a_val, max(1, int(SPLIT_MAX_ROWS * 0.5)))
        val_rows = np.concatenate([normals[:n_val], anomalies[:a_val_kept]])
        test_rows = np.concatenate([normals[n_val:n_val + n_test], anomalies[a_val:a_val + a_test_kept]])
        train = frame.iloc[np.sort(normals[n_val + n_test:])]
        val = frame.iloc[np.sort(val_rows)]
        test = test_frame if test_frame is not None else frame.iloc[np.sort(test_rows)]
        if not val[LABEL_COLUMN].any() and test_frame is not None and LABEL_COLUMN in test_frame and \
                test_frame[LABEL_COLUMN].nunique() == 2:
            # the training file holds normals only: carve validation from the labelled test file instead
            t = test_frame[LABEL_COLUMN].to_numpy()
            half = np.concatenate([rng.permutation(np.flatnonzero(t == k))[: (int((t == k).sum()) + 1) // 2]
                                   for k in (0, 1)])
            mask = np.zeros(len(test_frame), dtype=bool)
            mask[half] = True
            val = pd.concat([val, test_frame[mask]], ignore_index=True)
            test = test_frame[~mask]
            notes.append("The training file holds no anomalies, so half of the labelled test file (by class) is the "
                         "validation split.")
        if not val[LABEL_COLUMN].any():
            raise DatasetError(f"Dataset {dataset.name!r} has no anomalous row to choose thresholds on (every "
                               "labelled row is normal); add anomalous rows, or leave out --label.")
    if len(train) == 0:
        raise DatasetError(f"Dataset {dataset.name!r} has no normal rows left to train on.")
    if len(val) >= SPLIT_MAX_ROWS:
        notes.append(f"The validation split is a random {len(val):,} rows (at most {SPLIT_MAX_ROWS:,} normal ones).")
    if test_frame is None and len(test) >= SPLIT_MAX_ROWS:
        notes.append(f"The test split is a random {len(test):,} rows (at most {SPLIT_MAX_ROWS:,} normal ones).")
    if test_frame is not None and len(test) > SPLIT_MAX_ROWS:
        keep = np.sort(rng.choice(len(test), SPLIT_MAX_ROWS, replace=False))
        test = test.iloc[keep]
        notes.append(f"The test split is a random {SPLIT_MAX_ROWS:,} rows of the test file.")
    splits = DatasetSplits(train.reset_index(drop=True), val.reset_index(drop=True), test.reset_index(drop=True),
                           dataset.checksums(), notes)
    _write_splits(dataset, splits)
    return splits


def _write_splits(dataset: Dataset, splits: DatasetSplits) -> None:
    folder = dataset.folder / SPLITS_DIR
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for key in ("train", "validation", "test"):
        getattr(splits, key).to_parquet(tmp / f"{key}.parquet", index=False)
    (tmp / "meta.json").write_text(json.dumps({"checksums": splits.checksums, "notes": splits.notes}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def load_splits(dataset: Dataset) -> DatasetSplits:
    """The cached splits of ``dataset``, rebuilt from its input files when missing or out of date."""
    import pandas as pd

    folder = dataset.folder / SPLITS_DIR
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("checksums") == dataset.checksums():
            frames = {k: pd.read_parquet(folder / f"{k}.parquet") for k in ("train", "validation", "test")}
            return DatasetSplits(**frames, checksums=meta["checksums"], notes=meta.get("notes", []))
    except (OSError, ValueError):
        pass
    return build_splits(dataset)


# -- training and evaluating ---------------------------------------------------------------------------


def _keras_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("keras") is not None


def plan(dataset: Dataset, splits: DatasetSplits) -> tuple[dict[str, str], dict[str, int], dict[str, dict[str, Any]]]:
    """(detector kinds skipped → why, training-row caps per kind, parameter changes) for this dataset's size."""
    from anodet.detectors import NEURAL, REGISTRY, detector_class

    rows, width = len(splits.train), dataset.width
    skip: dict[str, str] = {}
    if splits.labelled_train() is None:
        skip["supervised"] = "needs labels (anomalous and normal rows in the validation split)"
    if not _keras_available():
        for kind in NEURAL:
            skip[kind] = "needs TensorFlow/Keras (pip install -r requirements-train.txt)"
    for kind in REGISTRY:
        params = detector_class(kind).default_params
        if kind == "lof" and rows <= params["n_neighbors"]:
            skip[kind] = f"needs more than {params['n_neighbors']} training rows"
        if kind == "kmeans" and rows < params["n_clusters"]:
            skip[kind] = f"needs at least {params['n_clusters']} training rows"
        if kind == "pca" and min(rows, width) <= params["n_components"]:
            skip[kind] = f"needs more than {params['n_components']} columns and training rows"
        if kind == "mahalanobis" and rows < 2:
            skip[kind] = "needs at least 2 training rows"
    caps = {k: v for k, v in ROW_CAPS.items() if rows > v and k not in skip}
    params = {k: dict(v) for k, v in LARGE_PARAMS.items() if k in caps}
    return skip, caps, params


def corpus(dataset: Dataset, splits: DatasetSplits | None = None) -> Any:
    """The :class:`anodet.train.Corpus` of a dataset: its splits, its one feature set, its one label view."""
    from anodet.train import Corpus

    splits = splits or dataset.splits()
    skip, caps, params = plan(dataset, splits)
    labelled = splits.labels("validation") is not None
    data = {"split": f"dataset:{dataset.name}", "dataset": dataset.name, "labelled": labelled,
            "row_caps": caps, "skipped": skip}
    extra = {"label_views": [LABEL_VIEW], "default_preset": "best_f1" if labelled else "mean_3sigma"}
    return Corpus(splits, {dataset.feature_set_name: dataset.feature_set_spec()}, (LABEL_VIEW,), data,
                  splits.labelled_train, caps, skip, extra, params)


def train(name: str, detectors: list[str] | None = None, seed: int = 0, log: Callable[[str], None] = print,
          progress: Progress | None = None, epochs: int | None = None,
          lock_timeout: float | None = None, principal: Principal | None = None) -> dict[str, Any]:
    """Train the detector family on dataset ``name`` into its store; return the manifest.

    ``detectors``: kinds (``pca``) or stored names (``pca@NAME``); default every one that fits
    the data. ``progress(done, total, detector)`` is called before each detector and at the end.
    ``principal`` (default: the command line's operator) must be allowed to train (admins); the
    outcome goes to the audit log.
    """
    actor = require(principal, "train", resource=f"dataset:{name}")
    try:
        manifest = _train(name, detectors, seed, log, progress, epochs, lock_timeout)
    except Exception as exc:
        audit.record(actor, "train", audit.FAILED, f"dataset:{name}", str(exc) or type(exc).__name__)
        raise
    audit.record(actor, "train", audit.OK, f"dataset:{name}", f"{len(manifest.get('detectors', {}))} detectors")
    return manifest


def _train(name: str, detectors: list[str] | None, seed: int, log: Callable[[str], None], progress: Progress | None,
           epochs: int | None, lock_timeout: float | None) -> dict[str, Any]:
    from anodet.detectors import REGISTRY
    from anodet.train import train as train_store

    dataset = load(name)
    splits = dataset.splits()
    got = corpus(dataset, splits)
    fs = dataset.feature_set_name
    wanted = [qualified(d, fs) if "@" not in d else d for d in (detectors or [])]
    asked_skipped = [d for d in wanted if d.split("@", 1)[0] in got.skip]
    if asked_skipped:
        kind = asked_skipped[0].split("@", 1)[0]
        raise DatasetError(f"{kind} cannot be trained on dataset {name!r}: it {got.skip[kind]}.")
    wrong = [d for d in wanted if d.split("@", 1)[1] != fs or d.split("@", 1)[0] not in REGISTRY]
    if wrong:
        raise DatasetError(f"{wrong[0]} is not a detector of dataset {name!r}; give kinds such as pca or "
                           f"{qualified('pca', fs)}.")
    log(f"dataset {name}: {len(splits.train):,} training rows, {len(splits.validation):,} validation, "
        f"{len(splits.test):,} test; {len(dataset.feature_columns)} columns")
    if got.skip:
        log("skipped: " + "; ".join(f"{k} ({why})" for k, why in got.skip.items()))
    if got.row_caps:
        log("subsampled for the slow detectors: " + ", ".join(f"{k} on {v:,} rows" for k, v in got.row_caps.items())
            + f" of {len(splits.train):,}; ocsvm and lof fit on at most their own max_rows distinct rows")
    if not dataset.labelled:
        log("no labels: thresholds are mean_3sigma (default), target_fpr and contamination, chosen on held-out rows; "
            "ROC and PR curves need labels")
    return train_store(wanted or None, seed=seed, store_root=dataset.store_root, epochs=epochs, log=log,
                       lock_timeout=lock_timeout, corpus=got, progress=progress)


def open_store(name: str) -> Any:
    """The model store trained on dataset ``name`` (a StoreError saying how to train it when missing)."""
    from anodet.store import Store, StoreError

    root = load(name).store_root
    if not (root / "manifest.json").exists():
        raise StoreError(f"Dataset {name!r} has no model store yet; train it with "
                         f"`python -m anodet train --dataset {name}`.")
    return Store.open(root)


def leaderboard(name: str, detectors: list[str] | None = None) -> pd.DataFrame:
    """One row per detector on the dataset's test split: ROC AUC, PR AUC and metrics at its default threshold
    (without test labels: the threshold and the share flagged only)."""
    import pandas as pd

    from anodet import evaluate
    from anodet.leaderboard import score_frame

    dataset = load(name)
    store = open_store(name)
    splits = dataset.splits()
    names = detectors or store.names
    scores = score_frame(store, splits.test, names)
    y = splits.labels("test")
    rows = []
    for n, s in scores.items():
        threshold = store.default_threshold(n, LABEL_VIEW)
        row: dict[str, Any] = {"detector": n, "name": store.entry(n)["display_name"],
                               "supervised": store.uses_labels(n), "threshold": threshold,
                               "flagged": float(np.mean(s >= threshold))}
        if y is not None:
            row.update(evaluate.summary(y, s, threshold))
        rows.append(row)
    return pd.DataFrame(rows).set_index("detector")
