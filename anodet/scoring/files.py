"""Score an input file or upload chunk by chunk: read → score → hand each results chunk to a sink.

Every input row ends up in the results exactly once: scored, or skipped with its row number
and the reason. Reading and encoding (a background thread), scoring (both cores) and writing (the
sink's own thread) overlap, so a large file costs about as long as its slowest stage.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

import numpy as np
import pyarrow as pa

from anodet.datasets.labels import views_of
from anodet.reader import (
    CHUNK_BYTES,
    RANGE_COLUMN,
    RESERVED_COLUMNS,
    ROW_COLUMN,
    STATUS_COLUMN,
    BadRowsError,
    Chunk,
    Layout,
    Limits,
    RowProblem,
    describe_problems,
    read_chunks,
)
from anodet.reader.arrays import bool_array, dictionary_codes, float_array, int_array, repeated_text, text_array
from anodet.reader.parquet import is_parquet, read_parquet_chunks
from anodet.scoring.core import Scorer, fail_closed, input_schema

OK = "scored"
MAX_PROBLEMS_KEPT = 1_000
"""Row problems kept in detail (all are counted, and every skipped row is in the output)."""

T = TypeVar("T")


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Run an iterator in a background thread, ``depth`` items ahead; its exceptions are re-raised here."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put((done, None))
        except BaseException as exc:
            box.put((done, exc))

    thread = threading.Thread(target=produce, name="anodet-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = box.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                box.get_nowait()
            except queue.Empty:
                thread.join(0.05)


@dataclass
class Summary:
    """What happened to the input: counts per detector, problems, timings."""

    layout: Layout | None = None
    names: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    rows_read: int = 0
    rows_scored: int = 0
    rows_skipped: int = 0
    out_of_range: int = 0
    saturated: int = 0
    fail_closed: int = 0  # rows scored +inf by every detector: an infinite value, text that is not UTF-8
    out_of_range_columns: Counter = field(default_factory=Counter)  # feature → rows outside its training range
    flagged: dict[str, int] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    confusion: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # view → name → tp, fp, fn, tn
    labelled: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    detector_seconds: dict[str, float] = field(default_factory=dict)
    distinct_rows: int = 0  # rows the detectors actually scored (repeats found in a batch scored once)
    skipped_detectors: str = ""  # the sentence on detectors the input's columns could not feed
    unseen_categories: Counter = field(default_factory=Counter)  # column → rows with a category unseen in training

    def metrics(self, view: str) -> dict[str, dict[str, float]]:
        """Precision, recall, F1… per detector at its threshold, from the streamed confusion counts."""
        from anodet.evaluation.metrics import metrics_from_counts

        return {n: metrics_from_counts(*c) for n, c in self.confusion.get(view, {}).items()}

    def range_note(self) -> str:
        """Which columns put rows outside the training range ("" when none did)."""
        if not self.out_of_range:
            return ""
        top = ", ".join(f"{c} ({n:,})" for c, n in self.out_of_range_columns.most_common(5))
        more = " …" if len(self.out_of_range_columns) > 5 else ""
        return f"Columns outside the training range: {top}{more}."

    def lines(self) -> list[str]:
        """The human summary (CLI and page share it)."""
        out = [f"Rows read: {self.rows_read:,}; scored: {self.rows_scored:,}; skipped: {self.rows_skipped:,}; "
               f"outside the training range (scored, marked out_of_range): {self.out_of_range:,}."]
        if self.skipped_detectors:
            out.append(self.skipped_detectors)
        if self.unseen_categories:
            out.append("Categories never seen in training (scored in the 'other' bucket, marked out_of_range): "
                       + ", ".join(f"{c} ({n:,} rows)" for c, n in self.unseen_categories.most_common()) + ".")
        if self.saturated:
            out.append(f"{self.saturated:,} row(s) lie far outside the training range (over 10 training ranges): "
                       "scored +inf and flagged by every detector.")
        if self.fail_closed:
            out.append(f"{self.fail_closed:,} row(s) hold an infinite value or text that is not UTF-8: scored +inf "
                       "and flagged by every detector (fail closed); the reason is in their status.")
        if self.out_of_range:
            out.append(self.range_note())
        if self.problems:
            out.append(f"Skipped rows: {describe_problems(self.problems)}")
        for n in self.names:
            share = self.flagged[n] / self.rows_scored if self.rows_scored else 0.0
            out.append(f"  {n:<20} threshold {self.thresholds[n]:>12.6g}  flagged {self.flagged[n]:>10,} "
                       f"({share:.1%})")
        return out


def _range_columns(scorer: Scorer, X: np.ndarray, out_of_range: np.ndarray) -> tuple[Counter, Counter]:
    """(numeric column → rows outside its training range, categorical column → rows with an unseen category)."""
    if not out_of_range.any():
        return Counter(), Counter()
    encoder = scorer.encoder
    rows = X[out_of_range]
    numeric: Counter = Counter()
    for name in encoder.sets:
        cols = encoder.sets[name].numeric_columns
        for column, count in zip(cols, encoder.outside(rows, name).sum(axis=0), strict=True):
            if count:
                numeric[column] = max(numeric[column], int(count))
    return numeric, Counter({c: n for c, n in encoder.unseen(rows).items() if n})


def _own_names_apart(table: pa.Table, names: list[str]) -> pa.Table:
    """The input columns, each named like one of the results' own columns renamed ``NAME (input)``, so a user's
    column never shadows (or is shadowed by) ``row``, ``status``, ``out_of_range`` or a score or flag."""
    own = {c.lower() for c in RESERVED_COLUMNS} | {f"{p}_{n}".lower() for n in names for p in ("score", "flag")}
    if not any(c.lower() in own for c in table.column_names):
        return table
    return table.rename_columns([f"{c} (input)" if c.lower() in own else c for c in table.column_names])


def results_table(chunk: Chunk, scores: Any, names: list[str], thresholds: dict[str, float]) -> pa.Table:
    """A chunk's input columns, then ``row``, ``status``, ``out_of_range``, then ``score_``/``flag_`` per detector."""
    n = len(chunk)
    every = bool(chunk.valid.all())
    good = slice(None) if every else np.flatnonzero(chunk.valid)
    valid = None if every else chunk.valid
    if every and not chunk.fail_closed.any():
        status = repeated_text(OK, n)
    else:
        text = np.full(n, OK, dtype=object)
        bad = np.flatnonzero(~chunk.valid)
        text[bad] = [f"skipped: {chunk.reasons[i]}" for i in bad]
        closed = np.flatnonzero(chunk.fail_closed)
        text[closed] = [f"fail closed: {chunk.reasons[i]}" for i in closed]
        status = text_array(list(text))
    table = _own_names_apart(chunk.table, names)
    table = table.append_column(ROW_COLUMN, int_array(np.arange(chunk.first_row, chunk.first_row + n)))
    table = table.append_column(STATUS_COLUMN, status)
    oor = np.zeros(n, dtype=bool)
    oor[good] = scores.out_of_range
    table = table.append_column(RANGE_COLUMN, bool_array(oor, valid))
    for name in names:
        s = np.full(n, np.nan)
        s[good] = scores.by_detector[name]
        table = table.append_column(f"score_{name}", float_array(s, valid))
        table = table.append_column(f"flag_{name}", bool_array(s >= thresholds[name], valid))
    return table


def score_source(
    source: str | os.PathLike | IO[bytes], store: Any, names: list[str], thresholds: dict[str, float],
    on_bad_rows: str = "skip", name: str | None = None, sink: Callable[[pa.Table], None] | None = None,
    progress: Callable[[float, int], None] | None = None, chunk_bytes: int = CHUNK_BYTES,
    limits: Limits | None = None, scorer: Scorer | None = None,
    on_scores: Callable[[Chunk, Any, Layout], None] | None = None,
) -> Summary:
    """Validate and score an input chunk by chunk; hand each results chunk to ``sink``.

    With ``on_bad_rows="reject"`` the first chunk holding a bad row raises :class:`BadRowsError`;
    with ``"skip"`` bad rows are kept in the results with empty scores and the reason in
    ``status``. ``on_scores(chunk, scores, layout)`` sees each chunk's scores (the upload page keeps
    what it shows from there).
    """
    if on_bad_rows not in ("skip", "reject"):
        raise ValueError(f"on_bad_rows must be 'skip' or 'reject', not {on_bad_rows!r}")
    t_start = time.perf_counter()
    scorer = scorer or Scorer(store, names)
    summary = Summary(names=list(names), thresholds=dict(thresholds), flagged=dict.fromkeys(names, 0))

    def on_layout(layout: Layout) -> None:
        summary.layout = layout
        summary.skipped_detectors = scorer.adapt(layout.columns)
        if scorer.names != summary.names:
            summary.names = list(scorer.names)
            summary.flagged = dict.fromkeys(scorer.names, 0)

    fraction = [0.0]  # set by the reading thread; progress is reported from this one (a page's thread)
    schema = input_schema(scorer.store)  # the scorer knows its store (callers may pass only the scorer)
    if is_parquet(source):
        chunks = read_parquet_chunks(source, on_layout, lambda f: fraction.__setitem__(0, f),  # type: ignore[arg-type]
                                     schema=schema)
    else:
        chunks = read_chunks(source, name, chunk_bytes, limits, on_layout, lambda f: fraction.__setitem__(0, f),
                             schema)
    def encoded(chunks: Iterator[Chunk]) -> Iterator[tuple[Chunk, np.ndarray, np.ndarray]]:
        for chunk in chunks:  # in the reading thread, while the main one scores the chunk before
            good = np.flatnonzero(chunk.valid)
            yield chunk, good, scorer.encode_chunk(chunk, good)

    for chunk, good, X in prefetch(encoded(chunks)):
        n = len(chunk)
        bad = np.flatnonzero(~chunk.valid)
        problems = [RowProblem(chunk.first_row + int(i), chunk.reasons[i] or "") for i in bad]
        if len(bad) and on_bad_rows == "reject":
            raise BadRowsError(problems, len(bad))
        summary.problems.extend(problems[:max(0, MAX_PROBLEMS_KEPT - len(summary.problems))])
        summary.rows_read += n
        summary.rows_skipped += len(bad)
        summary.rows_scored += n - len(bad)
        scores = fail_closed(scorer.score(X), chunk.fail_closed[good])
        summary.fail_closed += int(chunk.fail_closed.sum())
        summary.out_of_range += int(scores.out_of_range.sum())
        summary.saturated += int(scores.saturated.sum())
        numeric, unseen = _range_columns(scorer, X, scores.out_of_range)
        summary.out_of_range_columns.update(numeric)
        summary.unseen_categories.update(unseen)
        _count(summary, chunk, good, scores, summary.names, thresholds)
        if on_scores and summary.layout is not None:
            on_scores(chunk, scores, summary.layout)
        if sink:
            table = results_table(chunk, scores, summary.names, thresholds)
            if getattr(sink, "takes_lines", False) and chunk.lines is not None and not len(bad) \
                    and not chunk.fail_closed.any():
                sink(table, chunk.lines, chunk.table.num_columns)  # type: ignore[call-arg]
            else:
                sink(table)
        del chunk
        if progress:
            progress(fraction[0], summary.rows_read)
        release_memory()
    summary.seconds = time.perf_counter() - t_start
    summary.detector_seconds = dict(scorer.seconds)
    summary.distinct_rows = scorer.rows_scored
    return summary


def _count(summary: Summary, chunk: Chunk, good: np.ndarray, scores: Any, names: list[str],
           thresholds: dict[str, float]) -> None:
    """Flag counts and, when the input has labels, streamed confusion counts per view."""
    layout = summary.layout
    labels = None
    if layout is not None and layout.label:  # the label rule on each distinct label text, then per row
        values, codes = dictionary_codes(chunk.table.column(layout.label))
        labels = {view: np.append(y, np.nan)[codes[good]]
                  for view, y in views_of([v if v is not None else "" for v in values], layout.normal).items()}
    for name in names:
        flag = scores.by_detector[name] >= thresholds[name]
        summary.flagged[name] += int(flag.sum())
        if labels is None:
            continue
        for view, y in labels.items():
            known = ~np.isnan(y)
            f, pos = flag[known], y[known] == 1
            counts = summary.confusion.setdefault(view, {}).setdefault(name, [0, 0, 0, 0])
            tp, fp = int((f & pos).sum()), int((f & ~pos).sum())
            counts[0] += tp
            counts[1] += fp
            counts[2] += int(pos.sum()) - tp
            counts[3] += int((~pos).sum()) - fp
    if labels is not None:
        for view, y in labels.items():
            summary.labelled[view] = summary.labelled.get(view, 0) + int((~np.isnan(y)).sum())


_libc: Any = None
RELEASE_GROWTH = 64 << 20
"""Resident memory grown by this many bytes since the last release makes the next chunk release it."""
_released_at = [0]


def release_memory() -> None:
    """Hand freed memory back to the system when the resident size has grown, so RSS tracks the working set.

    glibc keeps freed blocks in per-thread arenas; without this the resident size of a long run
    creeps up with every chunk even though the working set does not grow. Trimming costs more than
    it looks (the pages given back are faulted in again by the next chunk, which can take as long as
    scoring it with a fast detector), so it is done only once RSS has grown by :data:`RELEASE_GROWTH`.
    """
    global _libc
    resident = _resident_bytes()
    if resident is not None and resident - _released_at[0] < RELEASE_GROWTH:
        return
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    pa.default_memory_pool().release_unused()
    if _libc:
        _libc.malloc_trim(0)
    _released_at[0] = _resident_bytes() or 0


def _resident_bytes() -> int | None:
    """This process's resident size (Linux's /proc/self/statm), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
