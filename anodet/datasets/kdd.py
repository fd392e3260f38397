"""Find or fetch the raw KDD Cup 99 files, verify them, and build and cache the splits.

The test split ``kdd-8020`` is rebuilt exactly as the reference prototype built it, so our
numbers sit beside its published ones; both label views are kept on the same rows.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from anodet import PROJECT_ROOT
from anodet.datasets.kdd_schema import (
    ATTACK_CATEGORIES,
    LABEL_VIEW_HELP,
    LABEL_VIEWS,
    NORMAL,
    NOVEL,
    NUMERIC_COLUMNS,
    RAW_COLUMNS,
    TEXT_COLUMNS,
    TRAINING_ATTACK_TYPES,
    label_column,
)
from anodet.datasets.labels import label_views
from anodet.datasets.model import Declaration, LabelView, Part, Splits, Vocabulary

if TYPE_CHECKING:  # pandas (and with it pyarrow) is imported only by what reads or builds the splits
    import pandas as pd


SOURCE_ENV = "ANODET_KDD_SOURCE"
CACHE_ENV = "ANODET_DATA_DIR"
OFFICIAL_SOURCE = "http://kdd.ics.uci.edu/databases/kddcup99/"

SPLIT_NAME = "kdd-8020"
CACHE_VERSION = 2
"""Bumped when what a cached split holds changes (2: all 41 raw columns and the labelled training file)."""
META_COLUMNS = ("attack", "category", *(label_column(v) for v in LABEL_VIEWS))
"""What the cached frames hold beside the 41 raw columns (none of them a KDD column name)."""
SPLIT_SEED = 200
SAMPLE_SEED = 250
VALIDATION_FRACTION = 0.2
TEST_INLIERS = 8_000
TEST_OUTLIERS = 2_000


@dataclass(frozen=True)
class RawFile:
    """One raw input: its name(s) at the source and the sha256 of its decompressed content."""

    key: str
    names: tuple[str, ...]
    sha256: str
    gzipped: bool


RAW_FILES: tuple[RawFile, ...] = (
    RawFile("train", ("kddcup.data_10_percent.gz",),
            "f8c8267ebcd9c0ed1fd7d6277fe5bfff8732e9b7db8e61b873542b2a534b6f9a", True),
    RawFile("test", ("corrected.gz",),
            "547dfb9c0f0dc1d9944219ec79e851191faebaeb8acbfa1cd171c418397052a4", True),
    RawFile("attack_types", ("training_attack_types.txt", "training_attack_types"),
            "0762f0d4405ef457e60b0179145e5fca328b5103a9364a81e63b99d9f0620c74", False),
)

RAW_LINES = {"train": 494_021, "test": 311_029}
"""Records (lines) in the raw training and test files (their sha256 fixes them): KDD's record ids run from 0 to one
less."""


class DataError(RuntimeError):
    """The raw data is missing, partial or corrupt; the message says where and how to fix it."""


def default_source() -> str:
    """The configured raw-data source: ``$ANODET_KDD_SOURCE`` or the official archive."""
    return os.environ.get(SOURCE_ENV) or OFFICIAL_SOURCE


def cache_root() -> Path:
    """Where downloaded raw files and processed splits are kept (git-ignored)."""
    return Path(os.environ.get(CACHE_ENV) or PROJECT_ROOT / "data")


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in {"http", "https", "ftp", "file"}


def _fix_hint() -> str:
    return (
        f"Point {SOURCE_ENV} (or --data-source) at a folder or base URL holding "
        + ", ".join(f.names[0] for f in RAW_FILES)
        + f"; by default anodet downloads them from {OFFICIAL_SOURCE}."
    )


def _read_content(path: Path, raw: RawFile) -> bytes:
    """Decompressed content of a raw file, or a DataError naming what is wrong."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if raw.gzipped else data
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{path} is not a readable {'gzip ' if raw.gzipped else ''}file ({exc}); it is "
            f"probably partial or corrupt. Delete it and fetch it again. {_fix_hint()}"
        ) from exc


def _verify(path: Path, raw: RawFile) -> bytes:
    content = _read_content(path, raw)
    digest = hashlib.sha256(content).hexdigest()
    if digest != raw.sha256:
        raise DataError(
            f"{path} does not hold the expected KDD data: the sha256 of its decompressed "
            f"content is {digest[:16]}…, expected {raw.sha256[:16]}…. The file is partial, "
            f"corrupt or a different version. Replace it with the original. {_fix_hint()}"
        )
    return content


def _locate_in_folder(folder: Path, raw: RawFile) -> Path | None:
    for name in raw.names:
        if (folder / name).is_file():
            return folder / name
    return None


def _download(base_url: str, raw: RawFile, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for name in raw.names:
        url = urllib.parse.urljoin(base_url if base_url.endswith("/") else base_url + "/", name)
        target = dest_dir / raw.names[0]
        partial = target.with_suffix(target.suffix + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
            partial.replace(target)
            return target
        except OSError as exc:
            partial.unlink(missing_ok=True)
            errors.append(f"{url}: {exc}")
    raise DataError(
        f"Could not download {raw.names[0]} ({'; '.join(errors)}). {_fix_hint()}"
    )


def fetch_raw(source: str | None = None) -> dict[str, Path]:
    """Find (in a folder) or download (from a URL) the three raw files; return their paths.

    Files are verified by :func:`load_raw`; this only makes sure each one is on disk.
    """
    source = source or default_source()
    paths: dict[str, Path] = {}
    if _is_url(source) and not source.startswith("file:"):
        raw_dir = cache_root() / "raw"
        for raw in RAW_FILES:
            local = _locate_in_folder(raw_dir, raw)
            paths[raw.key] = local if local else _download(source, raw, raw_dir)
        return paths
    folder = Path(urllib.parse.urlparse(source).path if source.startswith("file:") else source)
    missing = []
    for raw in RAW_FILES:
        found = _locate_in_folder(folder, raw)
        if found is None:
            missing.append(raw.names[0])
        else:
            paths[raw.key] = found
    if missing:
        where = f"folder {folder.resolve()}" if folder.is_dir() else f"{folder} (no such folder)"
        raise DataError(f"Missing KDD raw file(s) {', '.join(missing)} in {where}. {_fix_hint()}")
    return paths


def parse_raw_lines(content: bytes | str) -> pd.DataFrame:
    """Parse raw KDD lines (41 features and a label, no header) into a DataFrame."""
    import pandas as pd

    buffer = io.BytesIO(content) if isinstance(content, bytes) else io.StringIO(content)
    frame = pd.read_csv(buffer, header=None, names=[*RAW_COLUMNS, "label"])
    frame["label"] = frame["label"].astype(str).str.rstrip(".")
    return frame


def parse_attack_types(content: bytes) -> dict[str, str]:
    """Map each training attack name to its category (dos, probe, r2l, u2r)."""
    mapping = {}
    for line in content.decode("utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2:
            mapping[parts[0]] = parts[1]
    return mapping


def annotate(frame: pd.DataFrame, attack_types: dict[str, str]) -> pd.DataFrame:
    """Add attack name, category and both label views (by the one label rule) to parsed raw records."""
    if attack_types != TRAINING_ATTACK_TYPES:
        raise DataError("The training_attack_types file does not list the 22 attack types anodet knows; it is a "
                        f"different version. {_fix_hint()}")
    attack = frame["label"]
    category = attack.map(attack_types)
    category = category.where(attack != NORMAL, NORMAL).fillna(NOVEL)
    out = frame[list(RAW_COLUMNS)].astype({c: "float64" for c in NUMERIC_COLUMNS} | {c: "str" for c in TEXT_COLUMNS})
    out["attack"] = attack.to_numpy()
    out["category"] = category.to_numpy()
    views = label_views(attack.to_numpy())
    for view in LABEL_VIEWS:
        out[label_column(view)] = views[view].astype("int8")
    return out


def example_csv(test: Part, rows: int = 400, seed: int = 7) -> bytes:
    """A small example input built at run time from the cached test split (never committed).

    It has an ``id`` column, the 41 KDD columns in a shuffled order (so every feature set's
    detectors score it) and the attack name as label: column reordering, passthrough and labels.
    """
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(test), min(rows, len(test)), replace=False))
    features = list(RAW_COLUMNS)
    rng.shuffle(features)
    out = test.rows.iloc[picked][features].copy()
    out.insert(0, "id", [f"rec-{i:05d}" for i in range(len(out))])
    out["label"] = test.label_text[picked].astype(str) + "."
    return out.to_csv(index=False).encode()


def reference_split(test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validation and ``kdd-8020`` test frames, drawn exactly as the reference prototype drew them."""
    shuffled = test.sample(frac=1, random_state=SPLIT_SEED)
    target = shuffled[label_column("reference")]
    inliers, outliers = shuffled[target == 0], shuffled[target == 1]
    val_in = inliers.sample(frac=VALIDATION_FRACTION, random_state=SPLIT_SEED)
    val_out = outliers.sample(frac=VALIDATION_FRACTION, random_state=SPLIT_SEED)
    inliers, outliers = inliers.drop(val_in.index), outliers.drop(val_out.index)
    test_in = inliers.sample(TEST_INLIERS, random_state=SAMPLE_SEED)
    test_out = outliers.sample(TEST_OUTLIERS, random_state=SAMPLE_SEED)
    import pandas as pd

    return pd.concat([val_in, val_out]), pd.concat([test_in, test_out])


def _fingerprint(paths: dict[str, Path]) -> dict[str, list[int]]:
    stats = {key: path.stat() for key, path in paths.items()}
    return {key: [s.st_size, s.st_mtime_ns] for key, s in stats.items()}


def _split_dir() -> Path:
    key = hashlib.sha256("".join(r.sha256 for r in RAW_FILES).encode()).hexdigest()[:12]
    return cache_root() / "cache" / f"{SPLIT_NAME}-{key}-v{CACHE_VERSION}"


def build_splits(source: str | None = None, progress: bool = False) -> Splits:
    """Verify the raw files, build the three splits and cache them; return them."""
    paths = fetch_raw(source)
    contents = {raw.key: _verify(paths[raw.key], raw) for raw in RAW_FILES}
    attack_types = parse_attack_types(contents["attack_types"])
    train_all = annotate(parse_raw_lines(contents["train"]), attack_types)
    train = train_all[train_all["attack"] == NORMAL][list(RAW_COLUMNS)]
    validation, test = reference_split(annotate(parse_raw_lines(contents["test"]), attack_types))
    checksums = {raw.key: raw.sha256 for raw in RAW_FILES}
    frames = {"train": train, "validation": validation, "test": test, "labelled_train": train_all}
    _write_cache(frames, checksums, paths)
    return _splits(frames, checksums)


def _write_cache(frames: dict[str, pd.DataFrame], checksums: dict[str, str], paths: dict[str, Path]) -> None:
    folder = _split_dir()
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("train", "validation", "test", "labelled_train"):
        frames[name].to_parquet(tmp / f"{name}.parquet")
    meta = {"checksums": checksums, "raw_paths": {k: str(p.resolve()) for k, p in paths.items()},
            "raw_fingerprint": _fingerprint(paths)}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def _read_cache() -> Splits | None:
    folder = _split_dir()
    try:
        meta = json.loads((folder / "meta.json").read_text())
        import pandas as pd

        frames = {n: pd.read_parquet(folder / f"{n}.parquet") for n in ("train", "validation", "test")}
    except (OSError, ValueError):
        return None
    # Rebuild when the raw files it was built from changed on disk since.
    raw_paths = {k: Path(p) for k, p in meta.get("raw_paths", {}).items()}
    if raw_paths and all(p.exists() for p in raw_paths.values()):
        if _fingerprint(raw_paths) != meta.get("raw_fingerprint"):
            return None
    return _splits(frames, meta["checksums"], folder / "labelled_train.parquet")


def to_part(frame: pd.DataFrame) -> Part:
    """A KDD frame (41 raw columns, with or without labels) as a part; the record id is its line in its raw file."""
    rows = frame[list(RAW_COLUMNS)].reset_index(drop=True)
    if "attack" not in frame:
        n = len(frame)
        return Part(rows, {}, np.full(n, NORMAL, dtype=object), np.full(n, NORMAL, dtype=object),
                    frame.index.to_numpy())
    labels = {v: frame[label_column(v)].to_numpy(dtype=np.int8) for v in LABEL_VIEWS}
    return Part(rows, labels, frame["attack"].to_numpy(dtype=object), frame["category"].to_numpy(dtype=object),
                frame.index.to_numpy())


def _splits(frames: dict[str, pd.DataFrame], checksums: dict[str, str], labelled_path: Path | None = None) -> Splits:
    """Parts from the cached frames; the labelled training file (for the supervised ceiling) is read on demand."""
    kept: dict[str, Part] = {}

    def labelled() -> Part:
        if "labelled" not in kept:
            import pandas as pd

            frame = frames.get("labelled_train")
            if frame is None:
                if labelled_path is None or not labelled_path.exists():
                    raise DataError("These splits were built without the labelled training file; rebuild them "
                                    "(python -m anodet data --rebuild).")
                frame = pd.read_parquet(labelled_path)
            kept["labelled"] = to_part(frame)
        return kept["labelled"]

    train = to_part(frames["train"])  # the training file's normal records: label 0 in both views
    train = Part(train.rows, {v: np.zeros(len(train), np.int8) for v in LABEL_VIEWS}, train.label_text,
                 train.category, train.record_id)
    return Splits(train, to_part(frames["validation"]), to_part(frames["test"]), dict(checksums),
                  labelled_source=labelled)


def declaration() -> Declaration:
    """KDD Cup 99 as a dataset: two label views, attacks named by category, the built-in feature sets."""
    from anodet.store.core import default_root

    views = tuple(LabelView(v, LABEL_VIEW_HELP[v]) for v in LABEL_VIEWS)
    return Declaration("kdd", "KDD Cup 99", views, Vocabulary("attack", "attacks", "normal", "normal connections"),
                       NUMERIC_COLUMNS, default_root(), load_splits, categories=ATTACK_CATEGORIES,
                       source="the KDD Cup 99 test split", builtin=True)


def load_splits(source: str | None = None, rebuild: bool = False) -> Splits:
    """The cached splits, built first from ``source`` when missing or stale."""
    if not rebuild:
        cached = _read_cache()
        if cached is not None:
            return cached
    return build_splits(source)
