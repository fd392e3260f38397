"""Score an upload for the dashboard in bounded memory: full results to disk, only what is shown kept.

An upload of a few megabytes can expand to gigabytes of rows, and a server holds many sessions,
so no session keeps scored rows. The full results are written, gzip-compressed, to a file under
``data/uploads/`` (what the download serves), and the session keeps only:

* the summary (exact counts, streamed confusion counts per label view),
* a uniform random sample of at most :data:`SAMPLE_ROWS` scored rows for the charts,
* the :data:`TOP_ROWS` highest-scoring flagged rows per detector for the table.

So the server's memory stays flat however large the input; the input itself is capped at
:data:`MAX_DECOMPRESSED_BYTES` of text.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa

from anodet.access.identity import Principal
from anodet.access.permissions import require
from anodet.datasets.kdd import cache_root
from anodet.datasets.labels import views_of
from anodet.reader import Chunk, Layout, Limits
from anodet.scoring.files import OK, Summary, score_source
from anodet.scoring.output import CsvSink

SAMPLE_ROWS = 200_000
TOP_ROWS = 5_000
MAX_DECOMPRESSED_BYTES = 2_000_000_000
"""Bytes of CSV text an upload may hold once decompressed (uploads themselves are capped by
Streamlit's ``server.maxUploadSize``)."""
KEEP_FILES_S = 24 * 3600
"""Results files older than this are deleted when a new upload is scored."""
CONCURRENT_SCORINGS = max(1, int(os.environ.get("ANODET_UPLOAD_SLOTS", "2")))
"""Uploads scored at once by one server (scoring already uses every core; more at once only
multiplies the memory of the chunks in flight). Further uploads wait their turn."""
_SLOTS = threading.BoundedSemaphore(CONCURRENT_SCORINGS)


def uploads_dir() -> Path:
    """Where results files of uploads are kept (git-ignored, under ``data/``)."""
    return cache_root() / "uploads"


@dataclass
class Sample:
    """A uniform random sample (reservoir) of scored rows: scores per detector and both label views.

    Scores are kept as float32 and labels as int8 per view (-1: no label), so a full sample of
    :data:`SAMPLE_ROWS` rows costs a few MB per session.
    """

    capacity: int
    names: list[str]
    seed: int = 0
    seen: int = 0
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self.scores = {n: np.empty(0, dtype=np.float32) for n in self.names}

    def add(self, scores: dict[str, np.ndarray], label_text: np.ndarray | None,
            normal: frozenset[str] | None = None) -> None:
        if self.seen == 0 and set(self.names) - set(scores):  # detectors the input's columns could not feed
            self.names = [k for k in self.names if k in scores]
            self.scores = {k: self.scores[k] for k in self.names}
        n = len(scores[self.names[0]]) if self.names else 0
        if n == 0:
            return
        views = None
        if label_text is not None:
            views = {v: np.nan_to_num(y, nan=-1).astype(np.int8) for v, y in views_of(label_text, normal).items()}
            if self.labels is None:
                self.labels = {v: np.empty(0, dtype=np.int8) for v in views}
        index = self.seen + np.arange(n)
        self.seen += n
        have = len(self.scores[self.names[0]])
        # Fill first, then replace with probability capacity / index (Algorithm R, vectorised).
        fill = min(n, max(0, self.capacity - have))
        for k in self.names:
            self.scores[k] = np.concatenate([self.scores[k], scores[k][:fill].astype(np.float32)])
        if views is not None and self.labels is not None:
            for v in views:
                self.labels[v] = np.concatenate([self.labels[v], views[v][:fill]])
        rest = np.arange(fill, n)
        if len(rest):
            slots = (self._rng.random(len(rest)) * (index[rest] + 1)).astype(np.int64)
            hit = slots < self.capacity
            for k in self.names:
                self.scores[k][slots[hit]] = scores[k][rest[hit]]
            if views is not None and self.labels is not None:
                for v in views:
                    self.labels[v][slots[hit]] = views[v][rest[hit]]

    def labels_of(self, view: str) -> np.ndarray | None:
        """0/1 labels of the sampled rows under ``view``, NaN where a row has no label."""
        if self.labels is None:
            return None
        y = self.labels[view].astype(np.float64)
        y[y < 0] = np.nan
        return y


class TopRows:
    """The highest-scoring flagged rows per detector (results rows, every column).

    Detectors flag mostly the same rows, so the rows are kept once, in one table, and each
    detector keeps only the row numbers and scores of its top :data:`TOP_ROWS`.
    """

    def __init__(self, names: list[str], keep: int = TOP_ROWS) -> None:
        self.names, self.keep = names, keep
        self._top = {n: (np.empty(0), np.empty(0, dtype=np.int64)) for n in names}  # (scores, row numbers)
        self._rows: pa.Table | None = None

    def add(self, results: pa.Table) -> None:
        row_numbers = results.column("row").to_numpy()
        self.names = [n for n in self.names if f"flag_{n}" in results.column_names]  # skipped detectors drop out
        for name in self.names:
            flags = results.column(f"flag_{name}").to_numpy(zero_copy_only=False)
            flagged = np.flatnonzero(np.asarray(flags, dtype=object) == True)  # noqa: E712  (nulls are not flagged)
            if not len(flagged):
                continue
            scores = results.column(f"score_{name}").to_numpy(zero_copy_only=False).astype(np.float64)[flagged]
            old_scores, old_rows = self._top[name]
            both_scores = np.concatenate([old_scores, scores])
            both_rows = np.concatenate([old_rows, row_numbers[flagged]])
            order = np.argsort(-both_scores, kind="stable")[:self.keep]
            self._top[name] = (both_scores[order], both_rows[order])
        needed = np.unique(np.concatenate([rows for _, rows in self._top.values()]))
        fresh = results.filter(pa.array(np.isin(row_numbers, needed)))
        kept = fresh if self._rows is None else pa.concat_tables([self._rows, fresh])
        self._rows = kept.filter(pa.array(np.isin(kept.column("row").to_numpy(), needed))).combine_chunks()

    def table(self, name: str) -> pa.Table | None:
        """The detector's top flagged rows, highest score first (None when it flagged nothing)."""
        rows = self._top[name][1]
        if self._rows is None or not len(rows):
            return None
        position = {int(r): i for i, r in enumerate(self._rows.column("row").to_numpy())}
        return self._rows.take(pa.array([position[int(r)] for r in rows]))


@dataclass
class UploadResult:
    """What the page keeps of one scored upload."""

    name: str
    summary: Summary
    sample: Sample
    top: TopRows
    results_path: Path

    def results_bytes(self) -> bytes:
        """The full results file (gzip-compressed CSV), read when the download is clicked."""
        return self.results_path.read_bytes()


_RESULTS_NAME = re.compile(r"[0-9a-f]{32}\.csv(\.part)?\.gz")
"""The names :func:`score_upload` gives results files (and their temporary files): only those are cleaned up."""


def _clean_old(folder: Path) -> None:
    """Delete results files (and temporary files of interrupted scorings) older than :data:`KEEP_FILES_S`."""
    cutoff = time.time() - KEEP_FILES_S
    for path in folder.glob("*.gz"):
        if not _RESULTS_NAME.fullmatch(path.name):
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


def score_upload(source: IO[bytes], name: str, store: Any, names: list[str], thresholds: dict[str, float],
                 on_bad_rows: str = "skip", progress: Any = None, max_bytes: int | None = None,
                 previous: UploadResult | None = None, waiting: Callable[[], None] | None = None,
                 principal: Principal | None = None) -> UploadResult:
    """Score an upload into a results file on disk, keeping only what the page shows.

    At most :data:`CONCURRENT_SCORINGS` uploads are scored at once per server; ``waiting()``
    (optional) is called every second while this one waits for its turn. ``principal`` (default:
    the command line's operator) must be allowed to score files, else :class:`~anodet.access.AccessDenied`.
    """
    require(principal, "score", resource=f"file:{name}")
    while not _SLOTS.acquire(timeout=1.0):
        if waiting:
            waiting()
    try:
        return _score_upload(source, name, store, names, thresholds, on_bad_rows, progress, max_bytes, previous)
    finally:
        _SLOTS.release()


def _score_upload(source: IO[bytes], name: str, store: Any, names: list[str], thresholds: dict[str, float],
                  on_bad_rows: str, progress: Any, max_bytes: int | None,
                  previous: UploadResult | None) -> UploadResult:
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _clean_old(folder)
    if previous is not None:
        previous.results_path.unlink(missing_ok=True)
    path = folder / f"{uuid.uuid4().hex}.csv.gz"
    partial = path.with_name(path.stem + ".part.gz")
    sink = CsvSink(partial, compresslevel=1)
    sample = Sample(SAMPLE_ROWS, list(names))
    top = TopRows(list(names))

    def keep(chunk: Chunk, scores: Any, layout: Layout) -> None:
        labels = (chunk.table.column(layout.label).to_numpy(zero_copy_only=False)[chunk.valid].astype(str)
                  if layout.label else None)
        sample.add(scores.by_detector, labels, layout.normal)

    def write(results: pa.Table) -> None:
        top.add(results)
        sink(results)

    limits = Limits(max_input_bytes=max_bytes, max_decompressed_bytes=MAX_DECOMPRESSED_BYTES)
    try:
        summary = score_source(source, store, names, thresholds, on_bad_rows, name=name, sink=write,
                               progress=progress, limits=limits, on_scores=keep)
        sink.close()
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(BaseException):
            sink.close()
        partial.unlink(missing_ok=True)
        raise
    return UploadResult(name, summary, sample, top, path)


__all__ = ["MAX_DECOMPRESSED_BYTES", "OK", "Sample", "TopRows", "UploadResult", "score_upload"]
