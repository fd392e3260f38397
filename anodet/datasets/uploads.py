"""Files uploaded from the browser for a user dataset: where they are kept, and nowhere else.

An upload is written once under ``data/uploads/<upload id>/`` (git-ignored, ``$ANODET_DATA_DIR``
moves it) for :func:`anodet.datasets.inspect` to read; when the user confirms, it is moved to
``data/datasets/NAME/input/`` so the declaration's paths stay valid, and the upload folder is
removed. Nothing is written outside the data folder. Streamlit-free.

Each upload folder records who uploaded it (``owner.json``), so a user's unconfirmed uploads
count against their quota (:mod:`anodet.access.quotas`). The page removes a session's
unconfirmed uploads when the session ends; :func:`clean_stale` (run on every upload and by
:func:`start_sweeper` every few minutes) removes the rest once untouched for :data:`STALE_SECONDS`.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from anodet.access import quotas
from anodet.access.identity import Principal
from anodet.access.permissions import require
from anodet.datasets import userdata
from anodet.datasets.kdd import cache_root
from anodet.datasets.ownership import folder_bytes, hidden_from, owner_of, read_doc

logger = logging.getLogger(__name__)

UPLOADS = "uploads"
INPUT_DIR = "input"
OWNER_FILE = "owner.json"
STALE_SECONDS = 3600
"""Upload folders not touched for this long are removed (a page touches the ones it shows on every run)."""
SWEEP_SECONDS = 300
"""How often :func:`start_sweeper`'s thread looks for stale upload folders."""
_ID = re.compile(r"[^A-Za-z0-9_-]")
_SWEEPER: threading.Thread | None = None
_SWEEPER_LOCK = threading.Lock()


def uploads_root() -> Path:
    return cache_root() / UPLOADS


def suffix(filename: str) -> str:
    """``.parquet`` for a Parquet file name, ``.csv.gz`` for a compressed CSV, else ``.csv``."""
    lower = filename.lower()
    return ".parquet" if lower.endswith((".parquet", ".pq")) else ".csv.gz" if lower.endswith(".gz") else ".csv"


def save(upload_id: str, role: str, filename: str, source: BinaryIO, principal: Principal | None = None) -> Path:
    """Write an uploaded file (once per upload id) under ``data/uploads/`` and return its path.

    ``role`` is ``train`` or ``test`` (a dataset's files) or ``scores`` (an external detector's); the user's
    file name only decides the suffix, so no name of theirs becomes a path. ``principal`` (default: the command
    line's operator) must be allowed to upload files, within their quota of unconfirmed uploads.
    """
    if role not in ("train", "test", "scores"):
        raise ValueError(f"role must be train, test or scores, not {role!r}")
    actor = require(principal, "upload", resource=f"file:{filename}")
    folder = uploads_root() / (_ID.sub("_", upload_id)[:80] or "upload")
    path = folder / f"{role}{suffix(filename)}"
    if path.exists():
        touch(path)
        return path
    clean_stale()
    if quotas.bound(actor):
        here = source.tell()
        size = source.seek(0, 2) - here
        source.seek(here)
        quotas.check_uploads(actor, upload_usage(actor.id), size, f"file:{filename}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNER_FILE).write_text(json.dumps({"owner": actor.id, "saved": time.time()}))
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    tmp.replace(path)
    return path


def uploader(folder: Path) -> str | None:
    """Who uploaded the files of an upload folder (None when it does not say)."""
    try:
        doc = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return doc.get("owner") if isinstance(doc, dict) and isinstance(doc.get("owner"), str) else None


def upload_usage(owner: str) -> int:
    """Bytes of ``owner``'s unconfirmed uploads on this server."""
    root = uploads_root()
    if not root.is_dir():
        return 0
    return sum(folder_bytes(f) for f in root.iterdir() if f.is_dir() and uploader(f) == owner)


def touch(path: Path) -> None:
    """Mark an upload as in use, so the sweeper leaves it alone for another :data:`STALE_SECONDS`."""
    try:
        path.parent.touch()
    except OSError:
        pass


def clean_stale(now: float | None = None) -> int:
    """Remove upload folders not touched for :data:`STALE_SECONDS`; return how many."""
    root = uploads_root()
    if not root.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for folder in root.iterdir():
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def start_sweeper(every: float = SWEEP_SECONDS) -> None:
    """Run :func:`clean_stale` every ``every`` seconds in a daemon thread (once per process): uploads of sessions
    that ended without saying so (a closed laptop, a crashed browser) do not stay."""
    global _SWEEPER
    with _SWEEPER_LOCK:
        if _SWEEPER is not None and _SWEEPER.is_alive():
            return

        def sweep() -> None:
            while True:
                try:
                    clean_stale()
                except Exception as exc:  # never let the sweeper die
                    logger.error("sweeping stale uploads failed: %s", exc)
                time.sleep(every)

        _SWEEPER = threading.Thread(target=sweep, name="anodet-upload-sweeper", daemon=True)
        _SWEEPER.start()


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
                     principal: Principal | None = None, **options: object) -> userdata.UserDataset:
    """Declare dataset ``name`` from uploaded files: move them into its ``input/`` folder, then
    :func:`anodet.datasets.userdata.add` (``options``: label, normal, id_column, exclude, categorical, ...).

    On a DatasetError nothing is left behind: a new dataset's folder is removed, a replaced
    one keeps its previous input files. ``principal`` (default: the command line's operator) must
    be allowed to declare (or replace) it; a refusal touches no file.
    """
    folder = userdata.dataset_dir(name)
    existed = (folder / userdata.DECLARATION).exists()
    if existed and not replace:
        raise userdata.DatasetError(f"Dataset {name!r} is already declared; tick 'Replace it' to declare it again, "
                                    "or choose another name.")
    if existed:
        previous = read_doc(name) or {}
        hidden_from(principal, name, previous, "replace")
        require(principal, "replace", owner_of(previous), resource=f"dataset:{name}")
    else:
        require(principal, "declare", resource=f"dataset:{name}")
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
        dataset = userdata.add(name, final / train.name, final / test.name if test is not None else None,
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
