"""Files uploaded from the browser for a user dataset: where they are kept, and nowhere else.

An upload is written once under ``data/uploads/<upload id>/`` (git-ignored, ``$ANODET_DATA_DIR``
moves it) for :func:`anodet.datasets.inspect` to read; when the user confirms, it is moved to
``data/datasets/NAME/input/`` so the declaration's paths stay valid, and the upload folder is
removed. Nothing is written outside the data folder. Streamlit-free.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from anodet import datasets
from anodet.access import Principal, require
from anodet.data import cache_root

UPLOADS = "uploads"
INPUT_DIR = "input"
STALE_SECONDS = 24 * 3600
"""Upload folders older than this are removed when a new upload is written."""
_ID = re.compile(r"[^A-Za-z0-9_-]")


def uploads_root() -> Path:
    return cache_root() / UPLOADS


def suffix(filename: str) -> str:
    """``.parquet`` for a Parquet file name, else ``.csv`` (the only two kinds a dataset reads)."""
    return ".parquet" if filename.lower().endswith((".parquet", ".pq")) else ".csv"


def save(upload_id: str, role: str, filename: str, source: BinaryIO, principal: Principal | None = None) -> Path:
    """Write an uploaded file (once per upload id) under ``data/uploads/`` and return its path.

    ``role`` is ``train`` or ``test``; the user's file name only decides the suffix, so no name
    of theirs becomes a path. ``principal`` (default: the command line's operator) must be allowed
    to upload files.
    """
    if role not in ("train", "test"):
        raise ValueError(f"role must be train or test, not {role!r}")
    require(principal, "upload", resource=f"file:{filename}")
    folder = uploads_root() / (_ID.sub("_", upload_id)[:80] or "upload")
    path = folder / f"{role}{suffix(filename)}"
    if path.exists():
        return path
    clean_stale()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    tmp.replace(path)
    return path


def clean_stale(now: float | None = None) -> None:
    """Remove upload folders not touched for :data:`STALE_SECONDS`."""
    root = uploads_root()
    if not root.is_dir():
        return
    now = time.time() if now is None else now
    for folder in root.iterdir():
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def discard(paths: Iterable[Path | None]) -> None:
    """Remove the upload folders holding ``paths`` (only folders under ``data/uploads/``)."""
    root = uploads_root().resolve()
    for p in paths:
        if p is None:
            continue
        folder = Path(p).resolve().parent
        if folder.parent == root:
            shutil.rmtree(folder, ignore_errors=True)


def add_from_uploads(name: str, train: Path, test: Path | None = None, replace: bool = False,
                     principal: Principal | None = None, **options: object) -> datasets.Dataset:
    """Declare dataset ``name`` from uploaded files: move them into its ``input/`` folder, then
    :func:`anodet.datasets.add` (``options``: label, normal, id_column, exclude, categorical).

    On a DatasetError nothing is left behind: a new dataset's folder is removed, a replaced
    one keeps its previous input files. ``principal`` (default: the command line's operator) must
    be allowed to declare (or replace) it; a refusal touches no file.
    """
    folder = datasets.dataset_dir(name)
    existed = (folder / datasets.DECLARATION).exists()
    if existed and not replace:
        raise datasets.DatasetError(f"Dataset {name!r} is already declared; tick 'Replace it' to declare it again, "
                                    "or choose another name.")
    principal = require(principal, "replace" if existed else "declare", datasets.owner(name) if existed else None,
                        resource=f"dataset:{name}")
    staging = folder / (INPUT_DIR + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    kept_train = staging / train.name
    shutil.copyfile(train, kept_train)
    kept_test = None
    if test is not None:
        kept_test = staging / test.name
        shutil.copyfile(test, kept_test)
    final = folder / INPUT_DIR
    old = folder / (INPUT_DIR + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    try:
        dataset = datasets.add(name, final / train.name, final / test.name if test is not None else None,
                               replace=replace, principal=principal, **options)  # type: ignore[arg-type]
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        if old.exists():
            old.rename(final)
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    discard([train, test])
    return dataset
