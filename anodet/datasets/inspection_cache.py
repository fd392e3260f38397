"""Inspections of uploaded files for the page: kept per file and options, and the work bounded.

The Your data page re-runs on every widget change, and reading a wide file is seconds of CPU
(its header alone: type inference over the first block; a full inspection: statistics of every
column). So, per version of a file (path, modification time, size):

* the header is read once (:func:`columns`);
* each column's statistics are kept per way of reading it (as numbers, or as text with or without
  the number check): a change of options scans only the columns it reads differently (one column
  when a number column becomes categorical), and none when only the normal label values change;
* whole inspections are kept per set of options (:func:`inspect`).

The work is bounded: at most :data:`SCANS_AT_ONCE` scans run on the server at once, each user
spends at most their ``inspection_seconds`` quota of scanning in any 10 minutes
(:data:`anodet.access.quotas.BUDGET`; what is kept costs nothing), and memory is bounded by
:data:`MAX_FILES` files and :data:`MAX_LEVELS` distinct text values kept across them.
Streamlit-free and thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anodet.access.identity import Principal
from anodet.access.quotas import BUDGET
from anodet.datasets import inspection
from anodet.datasets.errors import DatasetError
from anodet.datasets.files import check_file, file_columns
from anodet.datasets.scan import ColumnStats, scan, too_many_rows

MAX_FILES = 16
"""Files whose header and column statistics are kept (the least recently used go first)."""
MAX_LEVELS = 4_000_000
"""Distinct text values kept across every kept file's column statistics (a bound on memory)."""
MAX_INSPECTIONS = 16
"""Inspections (sets of options) kept per file."""
SCANS_AT_ONCE = 1
"""Scans of files running at once on this server; more wait their turn (the server has other work)."""

_SCANS = threading.BoundedSemaphore(SCANS_AT_ONCE)

FileKey = tuple[str, int, int]
ColumnKey = tuple[str, str, bool]


@dataclass
class _File:
    header: tuple[list[str], dict[str, Any]] | None = None
    rows: int | None = None
    stats: dict[ColumnKey, ColumnStats] = field(default_factory=dict)
    inspections: OrderedDict[tuple[Any, ...], inspection.Inspection | DatasetError] = field(
        default_factory=OrderedDict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def levels(self) -> int:
        return sum(len(s.levels) for s in self.stats.values())


_FILES: OrderedDict[FileKey, _File] = OrderedDict()
_LOCK = threading.Lock()


def _key(path: Path) -> FileKey:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def _entry(path: Path) -> _File:
    key = _key(path)
    with _LOCK:
        entry = _FILES.get(key)
        if entry is None:
            entry = _FILES[key] = _File()
        _FILES.move_to_end(key)
        return entry


def _trim() -> None:
    """Forget the least recently used files past :data:`MAX_FILES` or :data:`MAX_LEVELS`."""
    with _LOCK:
        while len(_FILES) > MAX_FILES or (len(_FILES) > 1 and sum(f.levels for f in _FILES.values()) > MAX_LEVELS):
            _FILES.popitem(last=False)


def _work(principal: Principal | None, what: str, step: Callable[[], Any]) -> Any:
    """Run one scan within the server's limit and the user's budget, charging the seconds it took."""
    BUDGET.check(principal, what)
    with _SCANS:
        start = time.perf_counter()
        try:
            return step()
        finally:
            if principal is not None:
                BUDGET.charge(principal.id, time.perf_counter() - start)


def columns(path: Path | str, principal: Principal | None = None) -> tuple[list[str], dict[str, Any]]:
    """(column names, inferred types) of a file, read once per version of it."""
    path = check_file(path)
    entry = _entry(path)
    with entry.lock:
        if entry.header is None:
            entry.header = _work(principal, f"file:{path.name}", lambda: file_columns(path))
        header = entry.header
    _trim()
    return header


def _column_key(name: str, types: dict[str, Any], checks: set[str]) -> ColumnKey:
    import pyarrow as pa

    text = types[name] == pa.string()
    return name, str(types[name]), text and name in checks


def _scanner(entry: _File, principal: Principal | None) -> Callable[..., tuple[int, dict[str, ColumnStats]]]:
    """A :func:`~anodet.datasets.scan.scan` that reads only the columns not kept yet (and none when all are)."""

    def scanned(path: Path, names: list[str], types: dict[str, Any], checks: set[str],
                progress: Callable[[int], None] | None = None,
                max_rows: int | None = None) -> tuple[int, dict[str, ColumnStats]]:
        keys = {n: _column_key(n, types, checks) for n in names}
        missing = [n for n in names if keys[n] not in entry.stats]
        if missing or entry.rows is None:
            wanted = missing or names[:1]
            rows, got = _work(principal, f"file:{path.name}", lambda: scan(
                path, wanted, {n: types[n] for n in wanted}, set(checks) & set(wanted), progress, max_rows))
            entry.rows = rows
            for n in wanted:
                entry.stats[keys[n]] = got[n]
        assert entry.rows is not None
        if max_rows is not None and entry.rows > max_rows:
            raise too_many_rows(path, max_rows)
        return entry.rows, {n: entry.stats[keys[n]] for n in names}

    return scanned


def inspect(path: Path | str, principal: Principal | None = None, label: str | None = None,
            normal: str | Sequence[str] | None = None, id_column: str | None = None,
            exclude: Sequence[str] = (), categorical: Sequence[str] = (), max_rows: int | None = None,
            label_elsewhere: bool = False) -> inspection.Inspection:
    """:func:`anodet.datasets.inspection.inspect` of a file with these options, kept per file version and
    options; the work is charged to ``principal``'s inspection budget (a QuotaExceeded past it)."""
    path = check_file(path)
    options = (label, normal if isinstance(normal, str) or normal is None else tuple(normal), id_column,
               tuple(exclude), tuple(categorical), max_rows, label_elsewhere)
    entry = _entry(path)
    with entry.lock:
        kept = entry.inspections.get(options)
        if kept is None:
            try:
                kept = inspection.inspect(path, label=label, normal=normal, id_column=id_column, exclude=list(exclude),
                                          categorical=list(categorical), max_rows=max_rows,
                                          label_elsewhere=label_elsewhere,
                                          columns_of=lambda p: columns(p, principal),
                                          scanner=_scanner(entry, principal))
            except DatasetError as exc:
                kept = exc
            entry.inspections[options] = kept
            while len(entry.inspections) > MAX_INSPECTIONS:
                entry.inspections.popitem(last=False)
        entry.inspections.move_to_end(options)
    _trim()
    if isinstance(kept, DatasetError):
        raise DatasetError(str(kept))
    return kept


def forget(path: Path | str | None = None) -> None:
    """Drop what is kept of one file (every file when None)."""
    with _LOCK:
        if path is None:
            _FILES.clear()
            return
        target = str(Path(path).resolve())
        for key in [k for k in _FILES if k[0] == target]:
            del _FILES[key]
