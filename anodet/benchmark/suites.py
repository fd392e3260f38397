"""Benchmark suites: which datasets a benchmark runs on, and reading each one as (X, y).

A suite is named by paths and names, in any mix:

* a folder: every ADBench ``.npz`` (arrays ``X`` and ``y``), ``.csv`` (optionally ``.gz``) and
  ``.parquet`` file in it, in natural order (``2_annthyroid`` before ``10_cover``);
* one such file;
* the name of a declared anodet dataset (``python -m anodet dataset add``), encoded by its own
  feature set (log and min-max scaling, one-hot categories) fitted on all its rows, labels unused.

A CSV or Parquet file needs a label column (``--label COL``, else one named label, y, class,
anomaly, is_anomaly, outlier or target) and numeric features. Every problem is a
:class:`SuiteError` whose message is one sentence saying what is wrong and how to fix it.
Datasets are read where the task runs (a Dask worker reads the file from the same path).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUITE_ENV = "ANODET_ADBENCH"
DEFAULT_SUITE = Path("..") / "shared" / "adbench"
FILE_SUFFIXES = (".npz", ".csv", ".csv.gz", ".parquet", ".pq")
LABEL_NAMES = ("label", "y", "class", "anomaly", "is_anomaly", "outlier", "target")
NORMAL_VALUES = ("0", "0.0", "false", "normal", "benign", "b", "inlier")
DATASET_PREFIX = "dataset:"


class SuiteError(ValueError):
    """A suite or one of its datasets cannot be used; the message is one sentence."""


@dataclass(frozen=True)
class SuiteDataset:
    """One dataset of a suite: its name in the results and where it is read from (a path or ``dataset:NAME``)."""

    name: str
    source: str
    label: str | None = None
    normal: tuple[str, ...] = ()

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(X float64 (rows, features), y int8 with 1 = anomaly), checked: finite, both classes present."""
        if self.source.startswith(DATASET_PREFIX):
            X, y = _declared(self.source[len(DATASET_PREFIX):])
        elif self.source.endswith(".npz"):
            X, y = _npz(Path(self.source))
        else:
            X, y = _table(Path(self.source), self.label, self.normal)
        return _checked(self.name, X, y)

    def fingerprint(self) -> str:
        """What the data is: the file's sha256, or the declared dataset's checksums (a change redoes its tasks)."""
        if self.source.startswith(DATASET_PREFIX):
            from anodet.datasets import userdata as datasets

            checks = datasets.load(self.source[len(DATASET_PREFIX):]).checksums()
            return hashlib.sha256(repr(sorted(checks.items())).encode()).hexdigest()
        digest = hashlib.sha256()
        with open(self.source, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest() + f"|label={self.label}|normal={','.join(self.normal)}"


def default_suite() -> Path | None:
    """``$ANODET_ADBENCH``, else ``../shared/adbench`` when it exists, else None."""
    if os.environ.get(SUITE_ENV):
        return Path(os.environ[SUITE_ENV])
    return DEFAULT_SUITE if DEFAULT_SUITE.is_dir() else None


def _natural(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(FILE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _is_data_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(FILE_SUFFIXES)


def resolve(items: list[str], label: str | None = None, normal: tuple[str, ...] = ()) -> list[SuiteDataset]:
    """The datasets named by ``items`` (folders, files, declared dataset names), each once, in order."""
    out: list[SuiteDataset] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files = sorted((p for p in path.iterdir() if _is_data_file(p)), key=lambda p: _natural(p.name))
            if not files:
                raise SuiteError(f"The folder {path} holds no dataset file ({', '.join(FILE_SUFFIXES)}); point to a "
                                 "folder of ADBench .npz files or CSV/Parquet files with a label column.")
            out.extend(SuiteDataset(_stem(p), str(p), label, normal) for p in files)
        elif path.is_file():
            if not _is_data_file(path):
                raise SuiteError(f"{path} is not a dataset file; give an ADBench .npz, a .csv (or .csv.gz) or a "
                                 ".parquet file with a label column.")
            out.append(SuiteDataset(_stem(path), str(path), label, normal))
        else:
            out.append(_declared_entry(item))
    names = [d.name for d in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SuiteError(f"Two datasets of the suite are named {twice[0]!r}; rename one file (results are keyed by "
                         "dataset name).")
    return out


def check(datasets: list[SuiteDataset], protocols: list[str]) -> None:
    """Read every dataset and build its seed-0 split under each protocol: a SuiteError names the first problem."""
    from anodet.benchmark.protocols import make_split

    for dataset in datasets:
        X, y = dataset.load()
        for protocol in protocols:
            make_split(X, y, protocol, 0, dataset.name)


def _declared_entry(name: str) -> SuiteDataset:
    from anodet.datasets import userdata as datasets

    declared = datasets.list_datasets()
    if name not in declared:
        known = f"declared datasets: {', '.join(declared)}" if declared else "no dataset is declared"
        raise SuiteError(f"{name!r} is neither a folder, a dataset file nor a declared anodet dataset ({known}); "
                         "check the path or declare it with `python -m anodet dataset add`.")
    if not datasets.load(name).labelled:
        raise SuiteError(f"Dataset {name!r} has no label column, and a benchmark needs labels to score detectors; "
                         f"declare it again with --label COLUMN.")
    return SuiteDataset(name, DATASET_PREFIX + name)


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data.files or "y" not in data.files:
                raise SuiteError(f"{path} holds arrays {', '.join(data.files) or 'none'}, not X and y as an ADBench "
                                 ".npz does; save the features as X and the 0/1 labels as y.")
            return np.asarray(data["X"]), np.asarray(data["y"])
    except (OSError, ValueError) as exc:
        if isinstance(exc, SuiteError):
            raise
        raise SuiteError(f"{path} cannot be read as an .npz of plain arrays ({exc}); check the file.") from None


def _read_frame(path: Path):
    import pandas as pd

    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # any reader failure is the user's file: say so in one sentence
        raise SuiteError(f"{path} cannot be read as {'Parquet' if 'parq' in path.suffix else 'CSV'} "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); check the file.") from None


def _table(path: Path, label: str | None, normal: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    frame = _read_frame(path)
    if label is None:
        found = [c for c in frame.columns if str(c).strip().lower() in LABEL_NAMES]
        if len(found) != 1:
            raise SuiteError(f"{path} has {'no' if not found else 'more than one'} label column (looked for "
                             f"{', '.join(LABEL_NAMES)}); name it with --label COLUMN.")
        label = str(found[0])
    elif label not in frame.columns:
        raise SuiteError(f"{path} has no column {label!r}; its columns are {', '.join(map(str, frame.columns[:12]))}"
                         f"{' …' if len(frame.columns) > 12 else ''}.")
    features = frame.drop(columns=[label])
    text = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])
            or pd.api.types.is_bool_dtype(features[c])]
    if text:
        raise SuiteError(f"{path} has non-numeric column(s) {', '.join(text[:5])}; the benchmark takes numeric "
                         "features: drop them, or declare the file as an anodet dataset (python -m anodet dataset "
                         "add, which encodes categories) and benchmark it by name.")
    return features.to_numpy(dtype=np.float64), _labels(frame[label], label, normal, path)


def _labels(column, label: str, normal: tuple[str, ...], path: Path) -> np.ndarray:
    values = column.astype(str).str.strip()
    if column.isna().any():
        raise SuiteError(f"The label column {label!r} of {path} has {int(column.isna().sum()):,} empty cell(s); "
                         "give every row a label.")
    present = sorted(values.unique())
    if normal:
        missing = [v for v in normal if v not in present]
        if missing:
            raise SuiteError(f"The label column {label!r} of {path} has no value {missing[0]!r}; it holds "
                             f"{', '.join(present[:10])}.")
        normal_set = set(normal)
    else:
        guessed = [v for v in present if v.lower().rstrip(".") in NORMAL_VALUES]
        if len(guessed) != 1:
            raise SuiteError(f"Which value of the label column {label!r} of {path} marks a normal row? It holds "
                             f"{', '.join(present[:10])}; give --normal VALUE.")
        normal_set = set(guessed)
    return (~values.isin(normal_set)).to_numpy().astype(np.int8)


def _declared(name: str) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    from anodet.datasets import userdata as datasets
    from anodet.features.sets import FeatureSet

    dataset = datasets.load(name)
    splits = dataset.splits()
    parts = [splits.train, splits.validation, splits.test]
    labels = [_zeros_or(p.label(datasets.LABEL_VIEW), len(p)) for p in parts]
    frame = pd.concat([p.rows for p in parts], ignore_index=True)
    encoding = FeatureSet.fit(dataset.feature_set_spec(), frame)
    return encoding.transform_frame(frame).astype(np.float64), np.concatenate(labels).astype(np.int8)


def _checked(name: str, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y) or X.shape[1] == 0:
        raise SuiteError(f"Dataset {name!r}: X must be rows × features and y one label per row (got X {X.shape}, "
                         f"y {y.shape}); fix the file.")
    if X.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise SuiteError(f"Dataset {name!r}: X and y must be numeric; fix the file.")
    y_values = set(np.unique(y).tolist())
    if not y_values <= {0, 1}:
        raise SuiteError(f"Dataset {name!r}: y must hold 0 (normal) and 1 (anomaly), not {sorted(y_values)[:5]}; "
                         "fix the labels.")
    if y_values != {0, 1}:
        raise SuiteError(f"Dataset {name!r} has {'no anomaly' if 1 not in y_values else 'no normal row'}, so no "
                         "detector can be scored on it; leave it out.")
    X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise SuiteError(f"Dataset {name!r} has {int(bad.sum()):,} missing or infinite value(s) (first: row {rows[0]}, "
                         f"column {cols[0]}); fill or drop them first.")
    return X, y.astype(np.int8)


def _zeros_or(y: np.ndarray | None, n: int) -> np.ndarray:
    """A part's 0/1 labels, or all 0 where it has none."""
    return np.zeros(n, np.int8) if y is None else y
