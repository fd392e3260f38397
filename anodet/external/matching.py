"""Reading a file of scores made elsewhere and matching each one to a record of the dataset by its record id.

A dataset names its records (:attr:`anodet.datasets.model.Part.record_id`): KDD by the record's line in
its raw file, counted from 0 (test and validation records are lines of ``corrected``); a user dataset by
its declared id column, else by the record's data row in its input file, counted from 1. The file
holds one score per record, higher = more anomalous (``invert`` for the other way), for every record of
the test split and, optionally, every record of the validation split (thresholds are chosen there).

What does not fit is counted and said in one sentence each: rows naming other records of the dataset
(its training rows, records outside the splits) and ids the dataset does not have are ignored (notes);
a test record without a score, one with two different scores, a score that is not a finite number, or
some validation records scored and others not are refused (every page needs one score per test record,
and a silent choice between two scores, or thresholds on part of the validation split, would be a
number the user did not give).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anodet.datasets.errors import DatasetError
from anodet.datasets.files import batches, check_file, file_columns, first_bad_value, listed, unreadable

if TYPE_CHECKING:
    from anodet.datasets.model import Declaration, Splits

ID_NAMES = ("record_id", "record", "id")
SCORE_NAMES = ("score", "anomaly_score")
_INTEGRAL = re.compile(r"^\+?(\d+)(?:\.0*)?$")


@dataclass
class Matched:
    """A score file matched to a dataset's splits: scores in the splits' record order, and what was left over."""

    test: np.ndarray
    validation: np.ndarray | None
    id_column: str
    score_column: str
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _pick(names: list[str], given: str | None, guesses: tuple[str, ...], what: str, flag: str, path: Path,
          taken: str | None = None) -> str:
    lowered = {n.strip().lower(): n for n in names}
    if given:
        found = given if given in names else lowered.get(given.strip().lower())
        if found is None:
            raise DatasetError(f"{path.name} has no column {given!r} (given as {flag}); its columns are "
                               f"{listed(names)}.")
        return found
    for guess in guesses:
        if guess in lowered and lowered[guess] != taken:
            return lowered[guess]
    rest = [n for n in names if n != taken]
    if what == "score" and len(rest) == 1:
        return rest[0]
    raise DatasetError(f"Which column of {path.name} holds the {what}? Looked for {', '.join(guesses)}; its columns "
                       f"are {listed(names)}. Name it with {flag} COLUMN.")


def read_file(path: Path | str, id_column: str | None = None, score_column: str | None = None,
              dataset_id: str | None = None, shown: str | None = None) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(ids as text, scores as float64 with NaN where empty, the id column, the score column) of a CSV/Parquet file.

    ``dataset_id``: the dataset's own id column, looked for first when ``id_column`` is not given; ``shown``:
    what sentences call the file (default its name).
    """
    import pyarrow as pa

    path = check_file(path)
    names, _ = file_columns(path)
    shown_path = Path(shown or path.name)
    guesses = ((dataset_id.lower(),) if dataset_id else ()) + ID_NAMES
    id_col = _pick(names, id_column, guesses, "record ids", "--id", shown_path)
    score_col = _pick(names, score_column, SCORE_NAMES, "score", "--score", shown_path, taken=id_col)
    if score_col == id_col:
        raise DatasetError(f"--id and --score both name {id_col!r}; give the column of record ids and the column of "
                           "scores.")
    ids: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    try:
        for batch in batches(path, {id_col: pa.string(), score_col: pa.float64()}, [id_col, score_col]):
            ids.append(batch.column(batch.schema.get_field_index(id_col)).to_numpy(zero_copy_only=False))
            column = batch.column(batch.schema.get_field_index(score_col))
            scores.append(column.to_numpy(zero_copy_only=False).astype(np.float64))
    except pa.ArrowInvalid:
        bad = first_bad_value(path, score_col, "number")
        where = f" (data row {bad[0]:,} holds {bad[1]!r})" if bad else ""
        raise DatasetError(f"Column {score_col!r} of {shown_path.name} holds text where a score belongs{where}; every "
                           "score must be a number.") from None
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(path, exc) from None
    if not ids:
        raise DatasetError(f"{shown_path.name} holds no rows; give one score per record of the dataset's test split.")
    return np.concatenate(ids).astype(object), np.concatenate(scores), id_col, score_col


def _as_text(ids: np.ndarray, integral: bool) -> np.ndarray:
    """Ids as stripped text; where the dataset's ids are whole numbers, ``12.0``, ``+12`` and ``012`` read as ``12``."""
    import pandas as pd

    text = pd.Series(ids, dtype=object).astype("string").str.strip().fillna("")
    if integral:
        digits = text.str.extract(_INTEGRAL.pattern, expand=False)
        whole = digits.str.lstrip("0").mask(lambda d: d == "", "0")
        text = text.where(digits.isna(), whole)
    return text.to_numpy(dtype=object)


def _is_integral(ids: np.ndarray) -> bool:
    return bool(len(ids)) and all(_INTEGRAL.match(str(v)) for v in ids[: min(len(ids), 1000)])


def how_ids_work(dataset: Declaration) -> str:
    """One phrase on how the dataset numbers its records, for the sentences that say an id did not match."""
    if dataset.builtin:
        return ("KDD's record id is the record's line in the raw test file corrected, counted from 0 (its first line "
                "is record 0)")
    if dataset.id_column:
        return f"dataset {dataset.key}'s records are named by their {dataset.id_column!r} column"
    return (f"dataset {dataset.key} has no id column, so a record's id is its data row in its input file, counted "
            "from 1 after the header")


def known_ids(dataset: Declaration, splits: Splits) -> tuple[str, Any]:
    """(kind, what) telling whether an id is a record of the dataset at all: ``("range", (low, high))`` for
    numbered records, ``("set", ids)`` for a declared id column."""
    if dataset.builtin:
        from anodet.datasets.kdd import RAW_LINES

        return "range", (0, max(RAW_LINES.values()) - 1)
    from anodet.datasets import userdata

    declared = userdata.load(dataset.key)
    if not dataset.id_column:
        rows = [int(f["rows"]) for f in declared.doc["files"].values() if f]
        return "range", (1, max(rows, default=0))
    found = {str(v).strip() for part in (splits.train, splits.validation, splits.test) for v in part.record_id}
    for entry in (f for f in declared.doc["files"].values() if f):
        try:
            import pyarrow as pa

            for batch in batches(Path(entry["path"]), {dataset.id_column: pa.string()}, [dataset.id_column]):
                found.update(str(v).strip() for v in batch.column(0).to_pylist() if v is not None)
        except Exception:  # the input file moved or changed: the parts' ids are what is known
            continue
    return "set", found


def _known_mask(ids: np.ndarray, known: tuple[str, Any]) -> np.ndarray:
    import pandas as pd

    kind, what = known
    text = pd.Series(ids, dtype=object)
    if kind == "range":
        low, high = what
        number = pd.to_numeric(text.where(text.astype("string").str.fullmatch(r"\d+").fillna(False)), errors="coerce")
        return ((number >= low) & (number <= high)).to_numpy(dtype=bool)
    return text.isin(what).to_numpy(dtype=bool)


def _positions(part_ids: np.ndarray, ids: np.ndarray, dataset: Declaration, split: str):
    import pandas as pd

    index = pd.Index(part_ids)
    if not index.is_unique:
        twice = index[index.duplicated()][0]
        raise DatasetError(f"Dataset {dataset.key}'s {split} records share ids ({twice!r} names more than one), so "
                           "scores cannot be matched by id; declare it again with a unique id column, or none (then "
                           "records are named by their row).")
    return index.get_indexer(ids)


def _assigned(positions: np.ndarray, scores: np.ndarray, ids: np.ndarray, n: int, split: str,
              counts: dict[str, int], notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(one score per record of the split, NaN where none; whether each record got one); two different scores
    for a record are refused, the same score twice is counted once."""
    hit = positions >= 0
    rows, where = np.flatnonzero(hit), positions[hit]
    out = np.full(n, np.nan)
    got = np.zeros(n, dtype=bool)
    seen = np.bincount(where, minlength=n)
    repeated = np.flatnonzero(seen > 1)
    if len(repeated):
        order = np.argsort(where, kind="stable")
        w, s = where[order], scores[rows][order]
        first = np.r_[True, w[1:] != w[:-1]]
        base = np.maximum.accumulate(np.where(first, np.arange(len(w)), 0))
        differ = ~((s == s[base]) | (np.isnan(s) & np.isnan(s[base])))
        if differ.any():
            k = int(np.flatnonzero(differ)[0])
            bad_records = len(np.unique(w[differ]))
            raise DatasetError(f"{bad_records:,} {split} record(s) have two different scores in the file (first: id "
                               f"{ids[rows][order][k]!r}, {s[base[k]]:g} and {s[k]:g}); give one score per record.")
        counts[f"{split}_repeats"] = int((seen[repeated] - 1).sum())
        notes.append(f"{counts[f'{split}_repeats']:,} row(s) repeat a {split} record's id with the same score; each "
                     "record is counted once.")
    out[where] = scores[rows]
    got[where] = True
    return out, got


def match(path: Path | str, dataset: Declaration, splits: Splits, id_column: str | None = None,
          score_column: str | None = None, invert: bool = False, shown: str | None = None) -> Matched:
    """Read ``path`` and give every test (and validation) record of ``splits`` its score (see the module's rules);
    ``shown``: what sentences call the file."""
    raw_ids, scores, id_col, score_col = read_file(path, id_column, score_column, dataset.id_column, shown)
    name = shown or Path(path).name
    test_ids = np.asarray(splits.test.record_id).astype(str).astype(object)
    val_ids = np.asarray(splits.validation.record_id).astype(str).astype(object)
    integral = _is_integral(test_ids)
    ids = _as_text(raw_ids, integral)
    counts: dict[str, int] = {"rows": len(ids)}
    notes: list[str] = []
    t = _positions(test_ids, ids, dataset, "test")
    shared = not set(val_ids).isdisjoint(test_ids)
    v = np.full(len(ids), -1) if shared or not len(val_ids) else _positions(val_ids, ids, dataset, "validation")
    if shared:
        notes.append(f"Dataset {dataset.key}'s validation and test records share ids (they come from different files "
                     "and are named by their row), so the scores are matched to test records only; declare the "
                     "dataset with an id column (--id) to give validation scores too.")
    test, got_test = _assigned(t, scores, ids, len(test_ids), "test", counts, notes)
    missing = int((~got_test).sum())
    if missing:
        first = test_ids[np.flatnonzero(~got_test)[0]]
        raise DatasetError(f"{missing:,} of the {len(test_ids):,} test records have no score in {name} (first: record "
                           f"{first}); every page needs one per test record, matched by record id in column "
                           f"{id_col!r}: {how_ids_work(dataset)}.")
    bad = ~np.isfinite(test)
    if bad.any():
        raise DatasetError(f"{int(bad.sum()):,} test record(s) have an empty or non-finite score in {name} (first: "
                           f"record {test_ids[np.flatnonzero(bad)[0]]}); give every test record a finite number.")
    validation, got_val = _assigned(v, scores, ids, len(val_ids), "validation", counts, notes)
    counts["test"], counts["validation"] = len(test_ids), int(got_val.sum())
    if got_val.any() and not got_val.all():
        raise DatasetError(f"Only {int(got_val.sum()):,} of the {len(val_ids):,} validation records have a score in "
                           f"{name}; give all of them (thresholds are chosen on the validation split) or none.")
    if got_val.all() and len(val_ids):
        bad = ~np.isfinite(validation)
        if bad.any():
            raise DatasetError(f"{int(bad.sum()):,} validation record(s) have an empty or non-finite score in {name} "
                               f"(first: record {val_ids[np.flatnonzero(bad)[0]]}); give every one a finite number.")
    else:
        notes.append(f"{name} has no validation scores, so the thresholds are chosen on the test scores without their "
                     "labels (mean + 3σ, FPR and contamination presets); add validation scores to choose them on "
                     "validation as for anodet's detectors.")
    rest = (t < 0) & (v < 0)
    if rest.any():
        known = _known_mask(ids[rest], known_ids(dataset, splits))
        counts["other_records"], counts["unknown_ids"] = int(known.sum()), int((~known).sum())
        if counts["other_records"]:
            notes.append(f"{counts['other_records']:,} row(s) score other records of the dataset (its training rows "
                         "or records outside the test and validation splits): ignored.")
        if counts["unknown_ids"]:
            first_unknown = ids[rest][~known][0]
            notes.append(f"{counts['unknown_ids']:,} row(s) name ids the dataset does not have (first: "
                         f"{first_unknown!r}; {how_ids_work(dataset)}): ignored.")
    sign = -1.0 if invert else 1.0
    return Matched(sign * test, sign * validation if got_val.all() and len(val_ids) else None, id_col, score_col,
                   counts, notes)
