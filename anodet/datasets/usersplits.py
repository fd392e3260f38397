"""The splits of a user's dataset, built in two streamed passes in bounded memory whatever the file's size.

The first pass reads only the label and numeric feature columns and keeps one byte per row (its
class, or "left out" for a row with an empty label or a non-finite number). Which rows go to the
train, validation and test parts is then drawn with a fixed seed, class by class, with stated caps;
the second pass keeps only those rows. Peak memory follows the caps, not the file.

The rules (each part's source is written into the declaration):

* labels in the training file, no test file: normals 60 / 20 / 20 % to train / validation / test;
  anomalies half to validation, half to test (``unsupervised``: 60 / 20 / 20 % like normals);
* labels in the training file and a test file: normals 80 / 20 % to train / validation, anomalies
  to validation (``unsupervised``: 80 / 20 %); the test part is the test file;
* labels in the test file only (the training file holds normal records): the training file is the
  train part; validation is a stratified half of the test file and the test part the other half
  (``validation="train-normals"``: 20 % of the training file, used for unlabelled thresholds only);
* no labels: 80 / 20 % to train / validation (90 / 10 / 10 % with no test file).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from anodet.datasets.errors import DatasetError
from anodet.datasets.files import batches, check_file, conversion_error, file_columns, unreadable
from anodet.datasets.model import NORMAL, OTHER_CATEGORY, UNLABELLED, Part, Splits
from anodet.store.core import sha256_file

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from anodet.datasets.userdata import UserDataset

SPLIT_SEED = 0
VALIDATION_FRACTION = 0.2
TEST_FRACTION = 0.2
SPLIT_MAX_ROWS = 50_000
"""Most rows of each class kept in the validation and in the test part (a seeded random subset beyond that)."""
TRAIN_MAX_ROWS = 500_000
"""Most training rows kept (a seeded random subset beyond that; the slow detectors take fewer still)."""
MAX_CATEGORIES = 8
"""Anomalous label values shown as their own category; the rarer ones become 'other'."""
DROPPED, NORMAL_ROW, ANOMALY_ROW = -1, 0, 1
TRAIN, VALIDATION, TEST, UNUSED = 0, 1, 2, -1
PARTS = ("train", "validation", "test")


def load_splits(dataset: UserDataset) -> Splits:
    """The cached splits of ``dataset``, rebuilt from its input files when missing or out of date."""
    import pandas as pd

    folder = dataset.folder / "splits"
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("checksums") == dataset.checksums() and meta.get("layout") == 2:
            parts = {k: _part(pd.read_parquet(folder / f"{k}.parquet"), pd.read_parquet(folder / f"{k}.meta.parquet"),
                              k in meta["labelled"]) for k in PARTS}
            return Splits(parts["train"], parts["validation"], parts["test"], meta["checksums"],
                          tuple(meta.get("notes", [])))
    except (OSError, ValueError, KeyError):
        pass
    return build_splits(dataset)


def _part(rows: pd.DataFrame, meta: pd.DataFrame, labelled: bool) -> Part:
    from anodet.datasets.userdata import LABEL_VIEW

    labels = {LABEL_VIEW: meta["y"].to_numpy(dtype=np.int8)} if labelled else {}
    return Part(rows, labels, meta["label_text"].to_numpy(dtype=object), meta["category"].to_numpy(dtype=object),
                meta["record_id"].to_numpy(dtype=object))


def build_splits(dataset: UserDataset) -> Splits:
    """Read the input files in two passes, draw the parts with the fixed seed, and cache them; return them."""
    notes: list[str] = []
    rng = np.random.default_rng(SPLIT_SEED)
    label = dataset.label
    has_test = dataset.doc["files"].get("test") is not None
    files = {"train": _checked(dataset, "train")}
    if has_test:
        files["test"] = _checked(dataset, "test")
    classes = {key: _classes(dataset, key, path, notes) for key, path in files.items()}
    plan, sources, labelled_parts = _plan(dataset, classes, rng, notes)
    kept = {key: _route(dataset, key, files[key], plan[key]) for key in files}
    categories = _categories(label)
    parts = {}
    for split, code in zip(PARTS, (TRAIN, VALIDATION, TEST), strict=True):
        pieces = [kept[key][code] for key in files if code in kept[key]]
        parts[split] = _assemble(pieces, dataset, categories, split in labelled_parts)
    if label and len(parts["validation"]) and not parts["validation"].labelled and "validation" in labelled_parts:
        raise DatasetError(f"Dataset {dataset.name!r} has no labelled row to choose thresholds on.")
    if label and "validation" in labelled_parts:
        y = parts["validation"].label("label")
        if y is not None and not y.any():
            raise DatasetError(f"Dataset {dataset.name!r} has no {dataset.words.positive} to choose thresholds on "
                               f"(every labelled row is {dataset.words.negative}); add {dataset.words.positives}, or "
                               "leave out --label.")
    if len(parts["train"]) == 0:
        raise DatasetError(f"Dataset {dataset.name!r} has no {dataset.words.negative} rows left to train on.")
    if len(parts["test"]) == 0:
        raise DatasetError(f"Dataset {dataset.name!r} has no rows left to test on; give more rows or a test file.")
    dataset.doc.setdefault("split", {})["sources"] = sources
    splits = Splits(parts["train"], parts["validation"], parts["test"], dataset.checksums(), tuple(notes))
    _write(dataset, splits, labelled_parts)
    return splits


def _checked(dataset: UserDataset, key: str) -> Any:
    entry = dataset.doc["files"][key]
    path = check_file(entry["path"])
    if sha256_file(path) != entry["sha256"]:
        raise DatasetError(f"The {key} file {path.name} changed since dataset {dataset.name!r} was declared (its "
                           f"sha256 differs); declare it again with `python -m anodet dataset add {dataset.name} ... "
                           "--replace`.")
    return path


def _types(dataset: UserDataset, path: Any,
           numeric_only: bool) -> tuple[dict[str, pa.DataType], str | None, str | None]:
    """(column → Arrow type to read, the file's label column, the file's id column)."""
    import pyarrow as pa

    names, _ = file_columns(path)
    lowered = {n.lower(): n for n in names}
    types: dict[str, pa.DataType] = {}
    for name, kind in dataset.feature_columns:
        if kind != "categorical":
            types[name] = pa.float64()
        elif not numeric_only:
            types[name] = pa.string()
    label = (dataset.label or {}).get("column")
    label_col = (label if label in names else lowered.get(label.lower())) if label else None
    if label_col:
        types[label_col] = pa.string()
    id_col = dataset.id_column if dataset.id_column in names else None
    if id_col and not numeric_only:
        types[id_col] = pa.string()
    return types, label_col, id_col


def _stream(path: Any, types: dict[str, pa.DataType]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    names = list(types)
    try:
        yield from batches(path, types, names)
    except pa.ArrowInvalid as exc:
        raise conversion_error(path, file_columns(path)[0], exc) from None
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(path, exc) from None


def _row_classes(batch: pa.RecordBatch, numeric: list[str], label_col: str | None, normal: set[str]) -> np.ndarray:
    """Per row: -1 (an empty label or a non-finite number: left out), 0 normal, 1 anomaly."""
    import pyarrow.compute as pc

    n = batch.num_rows
    ok = np.ones(n, dtype=bool)
    for name in numeric:
        values = batch.column(batch.schema.get_field_index(name))
        ok &= np.isfinite(values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
    cls = np.zeros(n, dtype=np.int8)
    if label_col is not None:
        text = pc.utf8_lower(pc.utf8_trim_whitespace(batch.column(batch.schema.get_field_index(label_col))))
        empty = pc.fill_null(pc.equal(text, ""), True).to_numpy(zero_copy_only=False)
        is_normal = pc.fill_null(pc.is_in(text, value_set=_string_array(sorted(normal))), False)
        cls = np.where(is_normal.to_numpy(zero_copy_only=False), NORMAL_ROW, ANOMALY_ROW).astype(np.int8)
        ok &= ~empty
    cls[~ok] = DROPPED
    return cls


def _string_array(values: list[str]) -> pa.Array:
    import pyarrow as pa

    return pa.array(values, pa.string())


def _classes(dataset: UserDataset, key: str, path: Any, notes: list[str]) -> np.ndarray:
    """First pass: one byte per row of the file (see :func:`_row_classes`)."""
    types, label_col, _ = _types(dataset, path, numeric_only=True)
    numeric = [n for n, k in dataset.feature_columns if k != "categorical"]
    normal = {v.strip().lower() for v in (dataset.label or {}).get("normal", [])}
    out = [_row_classes(b, numeric, label_col, normal) for b in _stream(path, types)]
    cls = np.concatenate(out) if out else np.zeros(0, np.int8)
    what = "training" if key == "train" else "test"
    dropped = int((cls == DROPPED).sum())
    if dropped:
        why = "an empty label or an empty or non-finite number" if label_col else "an empty or non-finite number"
        notes.append(f"{dropped:,} row(s) of the {what} file have {why} and are left out.")
    if dataset.label and label_col is None:  # a training file of normal records only
        cls[cls != DROPPED] = NORMAL_ROW
    return cls


def _draw(rng: np.random.Generator, rows: np.ndarray, counts: list[int]) -> list[np.ndarray]:
    """Disjoint seeded random subsets of ``rows`` of the given sizes, each in file order."""
    total = min(sum(counts), len(rows))
    picked = rows[rng.choice(len(rows), size=total, replace=False)] if total else rows[:0]
    out, start = [], 0
    for k in counts:
        out.append(np.sort(picked[start:start + k]))
        start += k
    return out


def _plan(dataset: UserDataset, classes: dict[str, np.ndarray], rng: np.random.Generator,
          notes: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str], set[str]]:
    """(per file: each row's part or -1, where each part's rows come from, the parts that carry labels)."""
    label = dataset.label
    unsupervised = dataset.protocol == "unsupervised"
    plan = {key: np.full(len(cls), UNUSED, dtype=np.int8) for key, cls in classes.items()}
    has_test = "test" in classes
    labelled_parts: set[str] = set()
    sources: dict[str, str] = {}
    train_cls = classes["train"]
    normals = np.flatnonzero(train_cls == NORMAL_ROW)
    anomalies = np.flatnonzero(train_cls == ANOMALY_ROW)
    in_train = bool(label) and "train" in (label or {}).get("in", [])
    in_test = bool(label) and has_test and "test" in (label or {}).get("in", [])
    carve_from_test = bool(label) and has_test and not len(anomalies) and dataset.doc.get("split", {}).get(
        "validation", "auto") in ("auto", "test-file") and in_test

    def share(n: int, fraction: float) -> int:
        return min(round(n * fraction), SPLIT_MAX_ROWS)

    if not label:
        n_val = share(len(normals), VALIDATION_FRACTION / (1 if has_test else 2))
        n_test = 0 if has_test else share(len(normals), VALIDATION_FRACTION / 2)
        val, test, train = _draw(rng, normals, [n_val, n_test, min(len(normals) - n_val - n_test, TRAIN_MAX_ROWS)])
        sources.update(validation="held-out training rows", test="the test file" if has_test else "held-out "
                       "training rows", train="the training file")
        notes.append("No labels: validation rows are held-out training rows, taken as normal.")
    elif carve_from_test:
        val, test = np.zeros(0, np.int64), np.zeros(0, np.int64)
        train = _draw(rng, normals, [min(len(normals), TRAIN_MAX_ROWS)])[0]
        plan["train"][train] = TRAIN
        test_cls = classes["test"]
        for c in (NORMAL_ROW, ANOMALY_ROW):
            rows = np.flatnonzero(test_cls == c)
            half = (len(rows) + 1) // 2
            v, t = _draw(rng, rows, [min(half, SPLIT_MAX_ROWS), min(len(rows) - half, SPLIT_MAX_ROWS)])
            plan["test"][v], plan["test"][t] = VALIDATION, TEST
        labelled_parts |= {"validation", "test"}
        sources.update(train="the training file", validation="a stratified half of the test file (seeded)",
                       test="the other half of the test file")
        notes.append("The training file holds no anomalies, so validation rows are a stratified half of the labelled "
                     "test file (by class, fixed seed) and the test split is the other half.")
    else:
        n_val = share(len(normals), VALIDATION_FRACTION)
        n_test = 0 if has_test else share(len(normals), TEST_FRACTION)
        val, test, train = _draw(rng, normals, [n_val, n_test, min(len(normals) - n_val - n_test, TRAIN_MAX_ROWS)])
        if in_train:
            if unsupervised:
                a_val = share(len(anomalies), VALIDATION_FRACTION)
                a_test = 0 if has_test else share(len(anomalies), TEST_FRACTION)
                a_train = len(anomalies) - a_val - a_test
            else:
                a_val = len(anomalies) if has_test else (len(anomalies) + 1) // 2
                a_val, a_test, a_train = min(a_val, SPLIT_MAX_ROWS), min(len(anomalies) - a_val, SPLIT_MAX_ROWS), 0
            av, at, atr = _draw(rng, anomalies, [a_val, a_test, a_train])
            val, test, train = np.sort(np.r_[val, av]), np.sort(np.r_[test, at]), np.sort(np.r_[train, atr])
            labelled_parts.add("validation")
        labelled_parts |= {"train"} if in_train else set()
        if in_test or (in_train and not has_test):
            labelled_parts.add("test")
        sources.update(train="the training file", validation="held-out training rows",
                       test="the test file" if has_test else "held-out training rows")
        if has_test and not in_train:
            notes.append("Validation rows are held-out rows of the training file, all normal: thresholds are chosen "
                         "without labels (mean_3sigma, target_fpr, contamination).")
    if not carve_from_test:
        plan["train"][val], plan["train"][train] = VALIDATION, TRAIN
        plan["train"][test] = TEST
        if has_test:
            rows = np.flatnonzero(classes["test"] != DROPPED)
            keep = _draw(rng, rows, [min(len(rows), SPLIT_MAX_ROWS)])[0]
            plan["test"][keep] = TEST
            if len(keep) < len(rows):
                notes.append(f"The test split is a random {len(keep):,} of the test file's {len(rows):,} rows.")
    if len(normals) > TRAIN_MAX_ROWS:
        notes.append(f"The training split is a random {int((plan['train'] == TRAIN).sum()):,} of the training file's "
                     f"{len(normals) + (len(anomalies) if unsupervised else 0):,} rows (fixed seed).")
    if in_train or carve_from_test:
        labelled_parts.add("train")
    return plan, sources, labelled_parts


@dataclass
class Kept:
    """The rows of one file kept for one part: the input columns read (features and id), each row's number in
    its file (1-based), and its label cell (None without a label column). Kept apart from the user's columns,
    so no column name of theirs can collide with them."""

    tables: list[pa.Table] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)


def _route(dataset: UserDataset, key: str, path: Any, plan: np.ndarray) -> dict[int, Kept]:
    """Second pass: the kept rows of the file by part."""
    import pyarrow as pa

    types, label_col, id_col = _types(dataset, path, numeric_only=False)
    if dataset.id_column and id_col is None:
        raise DatasetError(f"The {key} file {path.name} has no id column {dataset.id_column!r}; give both files the "
                           "same columns.")
    columns = [c for c in types if c != label_col]
    kept: dict[int, Kept] = {}
    offset = 0
    for batch in _stream(path, types):
        where = plan[offset:offset + batch.num_rows]
        numbers = np.arange(offset + 1, offset + 1 + batch.num_rows)
        offset += batch.num_rows
        table = pa.Table.from_batches([batch])
        labels = (np.asarray(table.column(label_col).to_pylist(), dtype=object) if label_col is not None
                  else None)
        for code in np.unique(where[where != UNUSED]):
            mask = where == code
            part = kept.setdefault(int(code), Kept())
            part.tables.append(table.select(columns).filter(pa.array(mask)))
            part.rows.append(numbers[mask])
            if labels is not None:
                part.labels.append(labels[mask])
    return kept


def _categories(label: dict[str, Any] | None) -> set[str]:
    """The anomalous label values shown as their own category (the most common; the rest are 'other')."""
    if not label:
        return set()
    normal = {v.strip().lower() for v in label["normal"]}
    counts = {v.strip(): n for v, n in label.get("counts", {}).items() if v.strip().lower() not in normal}
    return set(sorted(counts, key=lambda v: (-counts[v], v))[:MAX_CATEGORIES])


def _assemble(pieces: list[Kept], dataset: UserDataset, categories: set[str], labelled: bool) -> Part:
    """One part from the kept rows of each file: input columns untouched, what anodet knows beside them."""
    import pandas as pd
    import pyarrow as pa

    from anodet.datasets.userdata import LABEL_VIEW

    columns = [n for n, _ in dataset.feature_columns] + ([dataset.id_column] if dataset.id_column else [])
    tables = [t for piece in pieces for t in piece.tables]
    if not tables:
        kinds = dict(dataset.feature_columns)
        empty = pd.DataFrame({c: pd.Series(dtype=float if kinds.get(c, "categorical") != "categorical" else object)
                              for c in columns})
        nothing = np.zeros(0, dtype=object)
        return Part(empty, {LABEL_VIEW: np.zeros(0, np.int8)} if labelled else {}, nothing, nothing, nothing)
    table = pa.concat_tables(tables, promote_options="default")
    frame = table.select(columns).to_pandas()
    for name, kind in dataset.feature_columns:
        if kind == "categorical":
            frame[name] = frame[name].fillna("").astype(str)
    n = len(frame)
    rows = np.concatenate([r for piece in pieces for r in piece.rows])
    record_id = (table.column(dataset.id_column).to_numpy(zero_copy_only=False).astype(object)
                 if dataset.id_column else rows.astype(object))
    with_labels = [piece for piece in pieces if piece.tables]
    if dataset.label and all(piece.labels for piece in with_labels):
        text = np.concatenate([lab for piece in with_labels for lab in piece.labels])
        stripped = np.array(["" if t is None else str(t).strip() for t in text], dtype=object)
        normal = {v.strip().lower() for v in dataset.label["normal"]}
        y = np.array([0 if t.lower() in normal else 1 for t in stripped], dtype=np.int8)
        category = np.where(y == 0, NORMAL, np.where(np.isin(stripped, list(categories)), stripped, OTHER_CATEGORY))
        label_text = stripped
    else:
        y = np.zeros(n, np.int8)
        label_text = np.full(n, NORMAL if dataset.label else UNLABELLED, dtype=object)
        category = label_text.copy()
    labels = {LABEL_VIEW: y} if labelled else {}
    return Part(frame, labels, label_text, category.astype(object), record_id)


def _write(dataset: UserDataset, splits: Splits, labelled: set[str]) -> None:
    import pandas as pd

    folder = dataset.folder / "splits"
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for key in PARTS:
        part = splits.part(key)
        part.rows.to_parquet(tmp / f"{key}.parquet", index=False)
        y = part.label("label")
        pd.DataFrame({"y": y if y is not None else np.zeros(len(part), np.int8),
                      "label_text": part.label_text.astype(str), "category": part.category.astype(str),
                      "record_id": part.record_id}).to_parquet(tmp / f"{key}.meta.parquet", index=False)
    meta = {"layout": 2, "checksums": splits.checksums, "notes": list(splits.notes),
            "labelled": sorted(k for k in PARTS if splits.part(k).labelled)}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    del labelled
