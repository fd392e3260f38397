"""Inspecting a user's file before it is declared: every column's role and kind, the labels, and what looks wrong.

One streamed pass over the file (bounded memory whatever its size) infers each column's kind
(numeric, log-scaled numeric, categorical), drops what cannot be used (with a note), suggests the
columns that look like labels (and never uses one of them as a feature unless told to), and reads
the label column's values. Every problem is a :class:`~anodet.datasets.errors.DatasetError` whose
message is one sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anodet.datasets.errors import DatasetError
from anodet.datasets.files import (
    check_file,
    file_columns,
    is_temporal,
    listed,
)
from anodet.datasets.scan import LEVEL_LIMIT, ColumnStats, read_types, scan
from anodet.features.sets import MAX_CATEGORIES, OTHER

if TYPE_CHECKING:
    import pyarrow as pa

LEVELS_KEPT = 1_000
"""Values of each categorical column an inspection keeps (the most frequent), to check a test file's coding."""
LABEL_LIMIT = 1_000
"""Most distinct values a label column may hold."""
NORMAL_WORDS = ("normal", "0", "0.0", "benign", "false", "b", "negative", "legit", "legitimate", "no", "inlier")
"""Label values guessed to mark a normal row (case-insensitive, a trailing dot ignored)."""
LABEL_NAMES = ("label", "labels", "class", "target", "y", "attack", "attack_type", "anomaly", "is_anomaly", "outlier",
               "is_outlier", "is_attack", "malicious", "is_malicious", "fraud", "is_fraud", "diagnosis", "ground_truth",
               "verdict", "status_label")
"""Column names that look like labels (case-insensitive)."""

def _split_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


@dataclass
class ColumnInfo:
    """One input column as inspected: its role and kind, and what was seen in it."""

    name: str
    role: str  # "feature", "label", "id", "excluded", "dropped", "suspected-label"
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
    suggested_labels: list[str] = field(default_factory=list)
    """Columns that look like labels, most likely first (the page preselects the first one)."""
    levels: dict[str, list[str]] = field(default_factory=dict)
    """The most frequent values of each categorical feature (to check a test file against)."""

    @property
    def features(self) -> list[ColumnInfo]:
        return [c for c in self.columns if c.role == "feature"]

    def feature_columns(self) -> list[tuple[str, str]]:
        """(name, kind) of each feature column, in file order."""
        return [(c.name, str(c.kind)) for c in self.features]

    @property
    def suspected(self) -> list[ColumnInfo]:
        """Columns that look like labels and were given no role: never used as features unless told to."""
        return [c for c in self.columns if c.role == "suspected-label"]

    def refuse_suspected(self) -> None:
        """A DatasetError naming a column that looks like a label and was given no role (declaring needs one)."""
        if self.suspected:
            c = self.suspected[0]
            raise DatasetError(f"Column {c.name!r} looks like a label ({c.note}); give it as the label (--label "
                               f"{c.name}), or as a feature (--categorical {c.name}), or leave it out (--exclude "
                               f"{c.name}).")

    def lines(self) -> list[str]:
        """The human summary (CLI and page share it)."""
        kinds: dict[str, list[str]] = {}
        for c in self.features:
            kinds.setdefault(str(c.kind), []).append(c.name)
        out = [f"{self.path.name}: {self.rows:,} rows, {len(self.columns)} columns."]
        for kind in ("numeric", "log", "categorical"):
            if kinds.get(kind):
                what = {"numeric": "numeric", "log": "numeric (log scale)", "categorical": "categorical"}[kind]
                out.append(f"  {what} ({len(kinds[kind])}): {listed(kinds[kind])}")
        for role in ("label", "suspected-label", "id", "excluded", "dropped"):
            cols = [c for c in self.columns if c.role == role]
            if cols:
                title = "looks like a label" if role == "suspected-label" else role
                out.append(f"  {title}: " + ", ".join(c.name + (f" ({c.note})" if c.note else "") for c in cols))
        if self.label:
            counts = ", ".join(f"{v!r}: {n:,}" for v, n in sorted(self.label_counts.items(), key=lambda kv: -kv[1]))
            out.append(f"  labels in {self.label!r} ({counts}); normal: {', '.join(map(repr, self.normal))}")
        else:
            out.append("  no label column: every row is taken as normal, and only unlabelled thresholds are chosen")
        out.extend(f"  note: {n}" for n in self.notes)
        return out


def _resolve(names: list[str], wanted: Sequence[str], what: str, path: Path) -> list[str]:
    """The file's spelling of each of ``wanted`` (matched exactly, else case-insensitively)."""
    lowered = {n.lower(): n for n in names}
    out = []
    for w in wanted:
        got = w if w in names else lowered.get(w.lower())
        if got is None:
            raise DatasetError(f"{path.name} has no column {w!r} (given as {what}); its columns are {listed(names)}.")
        out.append(got)
    return out


def is_normal_word(value: str) -> bool:
    """Does a label value read as "normal" (the usual names, case-insensitive, a trailing dot ignored)?"""
    return value.strip().lower().rstrip(".") in NORMAL_WORDS


def normal_values(label: str, counts: dict[str, int], normal: list[str], where: str) -> list[str]:
    """The label values taken as normal (given, or guessed from the usual names), checked against the counts.

    Values match case-insensitively and without surrounding blanks, as the one label rule reads them
    (:func:`anodet.datasets.labels.views_of`).
    """
    present = sorted(counts, key=lambda v: -counts[v])
    shown = ", ".join(repr(v) for v in present[:10]) + (" …" if len(present) > 10 else "")
    if len(present) < 2:
        only = f" ({present[0]!r})" if present else " (it is empty)"
        raise DatasetError(f"The label column {label!r} of {where} holds one class only{only}, so there is nothing to "
                           "tell normal from anomalous rows; leave out --label to train on every row without labels.")
    if normal:
        folded = {v.strip().lower(): v for v in present}
        missing = [v for v in normal if v.strip().lower() not in folded]
        if missing:
            raise DatasetError(f"The label column {label!r} of {where} has no value {missing[0]!r}; it holds {shown}. "
                               "Give --normal with the value(s) of the normal rows.")
        chosen = list(dict.fromkeys(v.strip() for v in normal))
        if {v.lower() for v in chosen} >= set(folded):
            raise DatasetError(f"Every value of the label column {label!r} ({shown}) is declared normal, so no row "
                               "is an anomaly; give --normal only the value(s) of the normal rows.")
        return chosen
    guessed = [v for v in present if is_normal_word(v)]
    if len(guessed) != 1:
        raise DatasetError(f"Which value of the label column {label!r} marks a normal row? It holds {shown}; give "
                           "--normal VALUE (several: --normal A,B).")
    return [guessed[0].strip()]


def _label_suspicion(name: str, s: ColumnStats, kind: str | None) -> str:
    """Why a column looks like a label ("" when it does not): its name, or two text values one of which is normal."""
    values = sorted(s.levels.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{v} {n:,}" for v, n in values[:3])
    if name.strip().lower() in LABEL_NAMES:
        if values:
            return f"named like one; values {shown}"
        return f"named like one; values {s.min:g} to {s.max:g}" if s.count else "named like one"
    if kind == "categorical" and s.n_levels == 2 and any(is_normal_word(v) for v, _ in values):
        return f"two values, one of them a usual normal value: {shown}"
    return ""


def inspect(path: Path | str, label: str | None = None, normal: str | Sequence[str] | None = None,
            id_column: str | None = None, exclude: str | Sequence[str] | None = None,
            categorical: str | Sequence[str] | None = None, log: str | Sequence[str] | None = None,
            numeric: str | Sequence[str] | None = None, progress: Callable[[int], None] | None = None,
            max_rows: int | None = None, label_elsewhere: bool = False, columns_of: Callable[..., Any] = file_columns,
            scanner: Callable[..., Any] = scan) -> Inspection:
    """Inspect a CSV or Parquet file in one streamed pass and infer each column's role and kind.

    Numbers are ``numeric`` (``log`` when non-negative and heavy-tailed), text is ``categorical``;
    ``categorical``/``log``/``numeric`` override the inference for the columns they name. A
    constant or empty column is dropped (with a note), a categorical column with more than
    :data:`~anodet.features.sets.MAX_CATEGORIES` levels keeps its most frequent ones (with a note).
    A column that looks like a label and is given no role becomes ``suspected-label``: suggested,
    never a feature. ``label_elsewhere``: the label column may be missing here (a training file of
    normal records whose test file holds the labels). ``max_rows``: a DatasetError past that many
    rows (uploads from the browser). A DatasetError (one sentence) for a missing or unreadable file,
    a column of numbers and text mixed, no numeric column, or a label that cannot tell normal from
    anomalous rows. ``columns_of`` and ``scanner`` read the header and scan the columns
    (:func:`~anodet.datasets.files.file_columns`, :func:`~anodet.datasets.scan.scan`; the page's
    cached ones in :mod:`anodet.datasets.inspection_cache`).
    """
    path = check_file(path)
    names, inferred = columns_of(path)
    if label and label_elsewhere and label not in names and label.lower() not in {n.lower() for n in names}:
        label = None
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
    types = read_types(names, inferred, text - as_numeric - as_log)
    features = [n for n in names if n not in text or n in as_categorical]
    checks = {n for n in features if n not in as_categorical}
    rows, stats = scanner(path, names, types, checks, progress, max_rows)
    if rows == 0:
        raise DatasetError(f"{path.name} has a header but no rows; give a file with records.")

    import pyarrow as pa

    columns: list[ColumnInfo] = []
    notes: list[str] = []
    told = as_categorical | as_log | as_numeric
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
                    f"Column {name!r} of {path.name} mixes numbers and text (data row {minority[0]:,} holds "
                    f"{minority[1]!r}, data row {(number if minority is other else other)[0]:,} holds "
                    f"{(number if minority is other else other)[1]!r}); fix those rows, or declare it categorical "
                    f"(--categorical {name}) to treat every value as a category.")
            if s.numeric_text and (name in as_numeric or name in as_log or not s.other_text):
                raise DatasetError(f"Column {name!r} of {path.name} holds numbers the reader took as text; check that "
                                   "every row of it is a plain number.")
            _categorical(info, s, rows, notes, inferred[name])
        elif name in as_categorical:
            _categorical(info, s, rows, notes, inferred[name])
        else:
            _numeric(info, s, rows, name in as_log, name in as_numeric)
        if info.role == "feature" and name not in told and label_col is None:
            why = _label_suspicion(name, s, info.kind)
            if why:
                info.role, info.kind, info.note = "suspected-label", None, why
        if info.role == "feature" and info.kind != "categorical" and s.nulls:
            notes.append(f"{name!r} has {s.nulls:,} empty or non-finite cell(s): those rows are left out.")
        columns.append(info)
    for info in columns:
        if info.role == "dropped":
            notes.insert(0, f"{info.name!r} is dropped: {info.note}.")
    suggested = [c.name for c in columns if c.role == "suspected-label"]
    if suggested:
        notes.insert(0, f"{suggested[0]!r} looks like a label ({columns[names.index(suggested[0])].note}): it is not "
                        "used as a feature unless you say so; choose it as the label column to compare on it.")
    if not any(c.role == "feature" and c.kind in ("numeric", "log") for c in columns):
        cats = [c.name for c in columns if c.role == "feature"]
        raise DatasetError(f"{path.name} has no usable numeric column" + (f" (only categorical ones: {listed(cats)})"
                                                                             if cats else "")
                           + "; anodet's detectors need at least one column of numbers that is not constant.")
    counts: dict[str, int] = {}
    normals: list[str] = []
    if label_col:
        counts, normals = _labels_of(stats[label_col], label_col, _split_list(normal), path.name, notes,
                                     one_class_ok=label_elsewhere)
    elif normal and not label_elsewhere:
        raise DatasetError("--normal needs --label: name the column that holds the labels.")
    levels = {c.name: [v for v, _ in sorted(stats[c.name].levels.items(), key=lambda kv: -kv[1])[:LEVELS_KEPT]]
              for c in columns if c.role == "feature" and c.kind == "categorical"}
    return Inspection(path, rows, columns, label_col, normals, counts, notes, suggested, levels)


def _labels_of(s: ColumnStats, label: str, normal: list[str], where: str, notes: list[str],
               one_class_ok: bool = False) -> tuple[dict[str, int], list[str]]:
    if s.more_levels or len(s.levels) > LABEL_LIMIT:
        raise DatasetError(f"The label column {label!r} of {where} holds over {LABEL_LIMIT:,} distinct values, "
                           "so it is not a label; name the right column with --label, or leave it out.")
    if s.nulls:
        notes.append(f"{s.nulls:,} row(s) of {where} have an empty label: they are left out.")
    counts = dict(s.levels)
    if one_class_ok and len(counts) < 2:  # a training file of one class: the test file's labels decide
        return counts, []
    return counts, normal_values(label, counts, normal, where)


def inspect_test(path: Path | str, train: Inspection, label: str | None, normal: Sequence[str],
                 max_rows: int | None = None) -> tuple[Path, int, dict[str, int]]:
    """(path, rows, label counts) of a test file once it holds every feature column, readable as the training
    file's kinds, with a usable label when the dataset has one.

    One sentence when it lacks a feature column or the label column, when none of its labels is a normal
    value, or when a categorical column shares no level with the training file.
    """
    import pyarrow as pa

    path = check_file(path)
    names, _ = file_columns(path)
    needed = [c.name for c in train.features]
    lacking = [c for c in needed if c not in names]
    if lacking:
        raise DatasetError(f"The test file {path.name} lacks the column(s) {listed(lacking)} of the training file; "
                           "give a test file with the same columns.")
    kinds = dict(train.feature_columns())
    types = {c: (pa.string() if kinds[c] == "categorical" else pa.float64()) for c in needed}
    label_col = None
    if label:
        found = [n for n in names if n.lower() == label.lower()]
        if not found:
            raise DatasetError(f"The test file {path.name} has no label column {label!r}, so nothing could be compared "
                               f"on labels; add the column, or leave out --label to declare the dataset "
                               "without labels.")
        label_col = found[0]
        types[label_col] = pa.string()
    categorical = [c for c in needed if kinds[c] == "categorical"]
    rows, stats = scan(path, list(types), types, set(), None, max_rows)
    if rows == 0:
        raise DatasetError(f"The test file {path.name} has a header but no rows; give a file with records.")
    for c in categorical:
        train_levels = next((i for i in train.columns if i.name == c), None)
        seen = set(stats[c].levels)
        kept = _train_levels(train, c)
        if train_levels is not None and seen and 0 < len(kept) <= MAX_CATEGORIES and not (seen & set(kept)):
            raise DatasetError(f"Column {c!r} of the test file {path.name} shares no value with the training file "
                               f"(it holds {listed(sorted(seen), 5)}); check that both files code it the same way.")
    counts: dict[str, int] = {}
    if label_col:
        counts = dict(stats[label_col].levels)
        normal_seen = [v for v in counts if v.strip().lower() in {n.strip().lower() for n in normal}]
        if not normal_seen:
            shown = ", ".join(f"{v!r}: {n:,}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1])[:6])
            raise DatasetError(f"None of the labels of the test file {path.name} is a normal value "
                               f"({', '.join(map(repr, normal))}); it holds {shown}. Give --normal with the value(s) "
                               "of its normal rows.")
    return path, rows, counts


def _train_levels(train: Inspection, column: str) -> list[str]:
    return train.levels.get(column, [])



def _categorical(info: ColumnInfo, s: ColumnStats, rows: int, notes: list[str], inferred: pa.DataType) -> None:
    info.kind, info.levels, info.type = "categorical", s.n_levels, "string"
    if is_temporal(inferred):
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


def _numeric(info: ColumnInfo, s: ColumnStats, rows: int, as_log: bool, as_numeric: bool) -> None:
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
