"""Users' datasets: declare a table of records, and read a declaration back as the one dataset model.

A dataset lives under ``data/datasets/NAME/`` (git-ignored; ``$ANODET_DATA_DIR`` moves it):

* ``dataset.json``: the declaration: input files with their sha256, the label rule (column,
  normal values, and which file holds labels), id and excluded columns, every column with its
  inferred kind, what the records are called, the training protocol, and the row counts of the splits;
* ``splits/``: the processed splits (:mod:`anodet.datasets.usersplits`);
* ``store/``: the model store trained on it (same manifest, hashes, lock and swap as ``models_store/``).

The declaration records who declared the dataset (its ``owner``: only they or an admin replace,
train, share or delete it) and whom it is shared with (``sharing``: ``private``, the default, or
``team``); :mod:`anodet.datasets.ownership` answers who sees which dataset, shares and deletes.
:func:`add` checks the acting principal (the command line's operator when none is given) and its
quotas, and writes the outcome to the audit log.

The most common set-up is a training file of normal records (no label column) and a labelled
test file: the label column may come from the test file alone, and the training file is then
taken as all normal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anodet.access import audit, quotas
from anodet.access.identity import Principal
from anodet.access.permissions import PRIVATE, SHARING, require
from anodet.datasets.errors import DatasetError
from anodet.datasets.files import check_file, is_parquet, listed
from anodet.datasets.inspection import ColumnInfo, Inspection, inspect, inspect_test, normal_values
from anodet.datasets.kdd import cache_root
from anodet.datasets.model import PROTOCOLS, Declaration, LabelView, Vocabulary
from anodet.features.sets import MAX_CATEGORIES, ColumnSpec, FeatureSetSpec
from anodet.store.core import sha256_file

if TYPE_CHECKING:
    from anodet.datasets.model import Splits

FORMAT = "anodet-dataset/2"
READABLE_FORMATS = ("anodet-dataset/1", FORMAT)
DECLARATION = "dataset.json"
SPLITS_DIR = "splits"
STORE_DIR = "store"
LABEL_VIEW = "label"
"""The one label view of a user dataset (KDD has two: ``reference`` and ``true``)."""
VALIDATION_SOURCES = ("auto", "test-file", "train-normals")
"""Where validation rows come from when the training file holds no anomalies: ``test-file`` (a stratified,
seeded half of the labelled test file), ``train-normals`` (held-out training rows: unlabelled thresholds only);
``auto`` is ``test-file`` when the test file has labels."""
BROWSER_MAX_ROWS = 5_000_000
"""Most rows a file declared from the browser may hold (checked while inspecting, before anything is kept)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

Progress = Callable[[str], None]


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


# -- the declaration ----------------------------------------------------------------------------------


@dataclass
class UserDataset:
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
    def label(self) -> dict[str, Any] | None:
        """``{"column", "normal", "counts", "in": ["train"|"test", ...]}`` or None without labels."""
        label: dict[str, Any] | None = self.doc.get("label")
        if label is not None and "in" not in label:
            label = {**label, "in": ["train", *(["test"] if self.doc["files"].get("test") else [])]}
        return label

    @property
    def labelled(self) -> bool:
        return self.label is not None

    @property
    def id_column(self) -> str | None:
        value = self.doc.get("id")
        return str(value) if value else None

    @property
    def protocol(self) -> str:
        return str(self.doc.get("protocol", PROTOCOLS[0]))

    @property
    def words(self) -> Vocabulary:
        given = self.doc.get("words")
        return Vocabulary(**given) if isinstance(given, dict) else Vocabulary()

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

    def splits(self) -> Splits:
        """The processed splits, from their cache (rebuilt from the input files when missing or stale)."""
        from anodet.datasets.usersplits import load_splits

        return load_splits(self)

    def declaration(self) -> Declaration:
        """This dataset in the one dataset model every page and command reads."""
        label = self.label
        help_text = "This dataset has no labels."
        if label:
            help_text = (f"Your label column {label['column']!r}: {', '.join(map(repr, label['normal']))} "
                         f"{self.words.negative}, every other value "
                         f"{'an' if self.words.positive[:1] in 'aeiou' else 'a'} {self.words.positive}.")
        numeric = tuple(n for n, k in self.feature_columns if k != "categorical")
        return Declaration(self.name, self.name, (LabelView(LABEL_VIEW, help_text),), self.words, numeric,
                           self.store_root, self.splits, id_column=self.id_column, protocol=self.protocol,
                           source=f"the test split of dataset {self.name!r}", labelled=label is not None)

    def lines(self) -> list[str]:
        """The human summary of the declaration (``dataset show``): names and hashes, never server paths."""
        d = self.doc
        out = [f"dataset {self.name} ({d['format']}), declared {d.get('created', '?')}"
               + (f" by {d['owner']}" if d.get("owner") else "")
               + ("; shared with the team" if d.get("sharing") == "team" else "; private")]
        for key, f in d["files"].items():
            if f:
                out.append(f"  {key} file: {Path(f['path']).name} ({f['rows']:,} rows, sha256 {f['sha256'][:12]}…)")
        kinds: dict[str, list[str]] = {}
        for n, k in self.feature_columns:
            kinds.setdefault(k, []).append(n)
        for kind in ("numeric", "log", "categorical"):
            if kinds.get(kind):
                out.append(f"  {kind} ({len(kinds[kind])}): {listed(kinds[kind])}")
        for role in ("id", "excluded", "dropped"):
            cols = [c for c in d["columns"] if c["role"] == role]
            if cols:
                out.append(f"  {role}: " + ", ".join(c["name"] + (f" ({c['note']})" if c.get("note") else "")
                                                     for c in cols))
        label = self.label
        if label:
            where = " and ".join(f"the {k} file" for k in label["in"])
            out.append(f"  label column {label['column']!r} in {where}; {self.words.negative} value(s): "
                       f"{', '.join(map(repr, label['normal']))}; a {self.words.positive} is any other value")
        else:
            out.append("  no labels: thresholds are the unlabelled presets (mean_3sigma, target_fpr, contamination)")
        out.append(f"  protocol: {self.protocol} (detectors fitted on "
                   + ("the normal training rows)" if self.protocol == "normal-only" else "every training row)"))
        sp = d.get("splits", {})
        for key in ("train", "validation", "test"):
            if key in sp:
                anomalies = (f", {self.words.count(sp[key]['anomalies'])}" if sp[key].get("anomalies") is not None
                             else "")
                source = f" ({sp[key]['source']})" if sp[key].get("source") else ""
                out.append(f"  {key} split: {sp[key]['rows']:,} rows{anomalies}{source}")
        out.extend(f"  note: {n}" for n in d.get("notes", []))
        trained = (self.store_root / "manifest.json").exists()
        out.append("  store: " + ("trained" if trained else
                                  f"not trained yet (python -m anodet train --dataset {self.name})"))
        return out


def declaration_digest(doc: dict[str, Any]) -> str:
    """The sha256 of what decides the splits: files, label, columns, protocol (not notes, dates or owner)."""
    keep = {k: doc.get(k) for k in ("format", "files", "label", "id", "excluded", "columns", "split", "protocol")}
    keep["files"] = {k: ({"sha256": v["sha256"], "rows": v["rows"]} if v else None) for k, v in doc["files"].items()}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


def list_datasets() -> list[str]:
    """Names of the declared datasets, sorted."""
    root = datasets_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / DECLARATION).is_file() and _NAME.match(p.name))


def load(name: str) -> UserDataset:
    """The declared dataset ``name``, or a DatasetError saying how to declare it."""
    path = dataset_dir(name) / DECLARATION
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        known = list_datasets()
        raise DatasetError(f"There is no dataset {name!r}" + (f" (declared: {', '.join(known)})" if known else "")
                           + f"; declare it with `python -m anodet dataset add {name} --train FILE`.") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"The declaration of dataset {name!r} cannot be read ({type(exc).__name__}); declare it "
                           f"again with `python -m anodet dataset add {name} --train FILE --replace`.") from None
    if not isinstance(doc, dict) or doc.get("format") not in READABLE_FORMATS:
        raise DatasetError(f"The declaration of dataset {name!r} is not of format {FORMAT!r}; declare it again "
                           f"with `python -m anodet dataset add {name} --train FILE --replace`.")
    return UserDataset(name, doc)


def add(name: str, train: Path | str, test: Path | str | None = None, label: str | None = None,
        normal: str | Sequence[str] | None = None, id_column: str | None = None,
        exclude: str | Sequence[str] | None = None, categorical: str | Sequence[str] | None = None,
        log: str | Sequence[str] | None = None, numeric: str | Sequence[str] | None = None,
        replace: bool = False, progress: Progress | None = None, protocol: str = PROTOCOLS[0],
        positive: str | None = None, negative: str | None = None, validation: str = "auto",
        max_rows: int | None = None, principal: Principal | None = None,
        sharing: str | None = None) -> UserDataset:
    """Inspect ``train`` (and ``test``), write the declaration and build the splits; return the dataset.

    ``label`` may be a column of the test file only: the training file is then all normal records.
    ``protocol``: ``normal-only`` or ``unsupervised`` (see :data:`anodet.datasets.model.PROTOCOLS`);
    ``positive``/``negative``: what the two classes are called; ``validation``: see
    :data:`VALIDATION_SOURCES`; ``max_rows``: the most rows a file may hold (the browser's cap).
    An existing dataset of that name is a DatasetError unless ``replace``.

    ``principal`` (default: the command line's operator) must be allowed to declare it, or to
    replace it (its owner or an admin; the owner stays), within the owner's quotas; the outcome goes
    to the audit log. ``sharing``: ``private`` or ``team`` (default: private, or what a replaced
    dataset had).
    """
    from anodet.datasets.ownership import disk_usage, hidden_from, owned_by, owner_of, read_doc, sharing_of

    folder = dataset_dir(check_name(name))
    previous = (read_doc(name) or {}) if (folder / DECLARATION).exists() else None  # unreadable: no owner, admins
    if previous is not None and not replace:
        raise DatasetError(f"Dataset {name!r} is already declared; add --replace to declare it again, or choose "
                           "another name.")
    action, resource = ("replace" if previous is not None else "declare"), f"dataset:{name}"
    if previous is not None:
        hidden_from(principal, name, previous, action)
    actor = require(principal, action, owner_of(previous) if previous else None, resource=resource)
    owner = (owner_of(previous) if previous else None) or actor.id
    shared = sharing or (sharing_of(previous) if previous else PRIVATE)
    if shared not in SHARING:
        raise DatasetError(f"Unknown sharing {shared!r}; choose {' or '.join(SHARING)}.")
    if previous is None:
        quotas.check_datasets(actor, len(owned_by(owner)), resource)
    incoming = sum(os.stat(f).st_size for f in (train, test) if f is not None and Path(f).is_file())
    quotas.check_disk(actor, owner, disk_usage(owner, excluding=name), incoming, action, resource)
    try:
        dataset = _declare(name, folder, train, test, label, normal, id_column, exclude, categorical, log, numeric,
                           progress, protocol, positive, negative, validation, max_rows, owner, shared)
    except Exception as exc:
        audit.record(actor, action, audit.FAILED, resource, str(exc) or type(exc).__name__)
        raise
    audit.record(actor, action, audit.OK, resource, f"owner {owner}, {shared}")
    return dataset


def _declare(name: str, folder: Path, train: Path | str, test: Path | str | None, label: str | None,
             normal: str | Sequence[str] | None, id_column: str | None, exclude: str | Sequence[str] | None,
             categorical: str | Sequence[str] | None, log: str | Sequence[str] | None,
             numeric: str | Sequence[str] | None, progress: Progress | None, protocol: str, positive: str | None,
             negative: str | None, validation: str, max_rows: int | None, owner: str,
             sharing: str) -> UserDataset:
    say = progress or (lambda _m: None)
    if protocol not in PROTOCOLS:
        raise DatasetError(f"Unknown protocol {protocol!r}; choose {' or '.join(PROTOCOLS)}.")
    if validation not in VALIDATION_SOURCES:
        raise DatasetError(f"Unknown validation source {validation!r}; choose one of {', '.join(VALIDATION_SOURCES)}.")
    normals = [v.strip() for v in ([normal] if isinstance(normal, str) else list(normal or [])) for v in v.split(",")
               if v.strip()]
    say(f"inspecting {Path(train).name} …")
    found = inspect(train, label, normals or None, id_column, exclude, categorical, log, numeric, max_rows=max_rows,
                    label_elsewhere=test is not None)
    found.refuse_suspected()
    label_doc, test_entry = _label_and_test(found, label, normals, test, max_rows, say)
    if protocol == "unsupervised" and label_doc is not None and "train" not in label_doc["in"]:
        raise DatasetError("The unsupervised protocol fits detectors on every training row, anomalies included, "
                           "so the training file needs the label column; use the normal-only protocol for a "
                           "training file of normal records.")
    words = Vocabulary.of(positive, negative) if (positive or negative) else Vocabulary()
    doc: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "owner": owner,
        "sharing": sharing,
        "files": {"train": _file_entry(found.path, found.rows), "test": test_entry},
        "label": label_doc,
        "id": next((c.name for c in found.columns if c.role == "id"), None),
        "excluded": [c.name for c in found.columns if c.role == "excluded"],
        "columns": [c.to_json() for c in found.columns],
        "protocol": protocol,
        "words": words.to_json(),
        "split": {"validation": validation},
        "notes": list(found.notes),
    }
    dataset = UserDataset(name, doc)
    folder.mkdir(parents=True, exist_ok=True)
    say("building the splits …")
    from anodet.datasets.usersplits import build_splits

    splits = build_splits(dataset)
    _write_declaration(dataset, splits)
    say(f"declared dataset {name}")
    return dataset


def _label_and_test(found: Inspection, label: str | None, normals: list[str], test: Path | str | None,
                    max_rows: int | None, say: Progress) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The declaration's label rule (from the training file, the test file or both) and the test file's entry."""
    if test is None:
        if label and not found.label:
            raise DatasetError(f"{found.path.name} has no column {label!r} (given as --label); its columns are "
                               f"{listed([c.name for c in found.columns])}.")
        return (({"column": found.label, "normal": found.normal, "counts": found.label_counts, "in": ["train"]}
                 if found.label else None), None)
    say(f"inspecting {Path(test).name} …")
    column = found.label or label
    chosen = found.normal or normals
    if column and not chosen:  # the test file's labels (with the training file's) decide what is normal
        merged = dict(found.label_counts)
        for value, n in _test_label_counts(test, column).items():
            merged[value] = merged.get(value, 0) + n
        chosen = normal_values(column, merged, normals, f"{Path(train_name(found))} and {Path(test).name}")
    path, rows, counts = inspect_test(test, found, column, chosen, max_rows)
    entry = _file_entry(path, rows)
    if not column:
        return None, entry
    where = ["train"] if found.label else []
    if counts:
        where.append("test")
    if not found.label and len(counts) < 2:
        normal_values(column, counts, chosen, path.name)  # the one-class sentence
    merged = dict(found.label_counts)
    for value, n in counts.items():
        merged[value] = merged.get(value, 0) + n
    return {"column": column, "normal": chosen, "counts": merged, "in": where}, entry


def train_name(found: Inspection) -> str:
    return found.path.name


def _test_label_counts(test: Path | str, column: str) -> dict[str, int]:
    """The values of ``column`` in the test file with their counts
    (to guess the normal value when only it has labels)."""
    import pyarrow as pa

    from anodet.datasets.files import file_columns
    from anodet.datasets.scan import scan

    path = check_file(test)
    names, _ = file_columns(path)
    found = [n for n in names if n.lower() == column.lower()]
    if not found:
        raise DatasetError(f"Neither the training file nor the test file {path.name} has a column {column!r} (given "
                           "as --label); name the column that holds the labels.")
    _, stats = scan(path, found, {found[0]: pa.string()}, set())
    return dict(stats[found[0]].levels)


def _file_entry(path: Path, rows: int) -> dict[str, Any]:
    return {"path": str(Path(path).resolve()), "format": "parquet" if is_parquet(Path(path)) else "csv",
            "rows": rows, "sha256": sha256_file(Path(path))}


def _write_declaration(dataset: UserDataset, splits: Splits) -> None:
    doc = dataset.doc
    counts = {}
    for key in ("train", "validation", "test"):
        part = splits.part(key)
        y = part.label(LABEL_VIEW)
        counts[key] = {"rows": len(part), "anomalies": int(y.sum()) if y is not None else None}
    for key, source in (doc.get("split", {}).get("sources") or {}).items():
        counts[key]["source"] = source
    doc["splits"] = counts
    doc["notes"] = list(dict.fromkeys([*doc.get("notes", []), *splits.notes]))
    path = dataset.folder / DECLARATION
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
