"""The pipeline's reading half: what a source yields, turned into :class:`Chunk` objects of lines.

Bytes are cut into lines per segment (each TCP connection, each generation of a rotated file
keeps its own half line and its own format); the first line of a segment that is a valid header
or record decides its format (a rejected line never does). A line over the length limit is
rejected without being kept. Broker entries arrive one record per message and are grouped by
shape. Chunks go to the scorer through a bounded queue, so a slow scorer holds the producer back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from anodet.datasets.kdd_schema import FEATURES
from anodet.reader import InputError, InputSchema, Layout, sniff
from anodet.reader.parse import LINE_END
from anodet.streaming.sources.base import Entries, Source
from anodet.streaming.stats import Stats

SEGMENT_NAME = "the stream"
SHOWN_BYTES = 200
"""Bytes of a line over the length limit kept to show in the rejects."""


@dataclass
class Chunk:
    """Lines read together: when they were read, their line and record numbers, their format."""

    t_read: float
    lines: list[bytes]
    line_numbers: np.ndarray
    first_record: int
    layout: Layout | None
    reject_reason: str | None = None
    """When set, every line of the chunk is rejected with this reason instead of parsed."""
    ids: list[str] | None = None
    """Broker message ids of the lines (acknowledged once decided; carried by alerts and rejects)."""
    extras: list[dict[str, str] | None] | None = None
    """Fields sent beside a raw line in a broker message, passed through into its alert."""
    records: np.ndarray | None = None
    """Record numbers of the lines when they are not consecutive from ``first_record``."""
    notes: list[str | None] | None = None
    """Per line, why it fails closed before parsing (a passthrough field that is not UTF-8)."""
    deliveries: list[int] | None = None
    """Per line, how often the broker has handed its message out (redelivered entries only)."""
    dead_reason: str | None = None
    """When set, the lines are set aside in the dead-letter stream with this reason (poison entries)."""


@dataclass
class _Segment:
    layout: Layout | None = None
    carry: bytes = b""
    skipping: bool = False  # inside a line over the length limit: drop bytes until its end


def too_long(limit: int) -> str:
    return f"the line is longer than {limit / 2**20:,.0f} MiB (the limit)"


class Reader:
    """Reads ``source`` and hands :class:`Chunk` objects to ``put`` until the end or ``stop``."""

    def __init__(self, source: Source, put: Callable[[Chunk], None], stop: threading.Event, stats: Stats,
                 max_line_bytes: int, schema: InputSchema | None = None, max_deliveries: int = 0) -> None:
        self.source, self.put, self.stop, self.stats = source, put, stop, stats
        self.limit, self.schema, self.max_deliveries = max_line_bytes, schema, max_deliveries
        self.line_no = 0  # lines seen (1-based numbering), header and blank lines included
        self.record_no = 0  # data lines seen (header and blank lines excluded)
        self._entry_layouts: dict[bytes | int, Layout] = {}

    def _reject_now(self, raw: bytes, line_no: int, layout: Layout | None, reason: str) -> None:
        self.record_no += 1
        with self.stats.lock:
            self.stats.read += 1
        self.put(Chunk(time.perf_counter(), [raw], np.array([line_no]), self.record_no, layout, reason))

    def run(self) -> None:
        """Read to the end (or the stop); a line cut by the stop is rejected, never silently lost."""
        segments: dict[int, _Segment] = {}
        limit = self.limit
        for item in self.source.chunks(self.stop):
            if isinstance(item, Entries):
                self._emit_entries(item)
                continue
            key, data = item
            seg = segments.setdefault(key, _Segment())
            if not data:  # the segment ended: its last line needs no newline
                if seg.carry.strip():
                    self._emit(seg, [seg.carry.rstrip(b"\r")])
                del segments[key]
                continue
            t_read = time.perf_counter()
            if seg.skipping:
                end = LINE_END.search(data)
                if end is None:
                    continue
                data, seg.skipping = data[end.end():], False
            data = seg.carry + data
            cut = data.rfind(b"\n")
            if cut < 0:
                seg.carry = data
                if len(seg.carry) > limit:
                    self.line_no += 1
                    self._reject_now(seg.carry[:SHOWN_BYTES], self.line_no, seg.layout,
                                     f"{too_long(limit)}; it was not read (the first {SHOWN_BYTES} bytes are shown)")
                    seg.carry, seg.skipping = b"", True
                continue
            seg.carry = data[cut + 1:]
            body = data[:cut]
            self._emit(seg, LINE_END.split(body[:-1] if body.endswith(b"\r") else body), t_read)
        for seg in segments.values():
            if not seg.carry.strip():
                continue
            if self.stop.is_set():
                self._reject_now(seg.carry, self.line_no + 1, seg.layout,
                                 "incomplete line: the stream was stopped before its end was read")
            else:
                self._emit(seg, [seg.carry.rstrip(b"\r")])

    def _emit(self, seg: _Segment, lines: list[bytes], t_read: float | None = None) -> None:
        """Queue ``lines`` (numbered after the lines seen); the first valid line of a segment decides its format."""
        t_read = time.perf_counter() if t_read is None else t_read
        numbers = np.arange(self.line_no + 1, self.line_no + len(lines) + 1)
        self.line_no += len(lines)
        keep = [i for i, ln in enumerate(lines) if ln.strip()]
        too_big = {i for i in keep if len(lines[i]) > self.limit}
        for i in sorted(too_big):
            self._reject_now(lines[i][:SHOWN_BYTES], int(numbers[i]), seg.layout, too_long(self.limit))
        keep = [i for i in keep if i not in too_big]
        while seg.layout is None and keep:
            first = keep[0]
            try:
                seg.layout = sniff(lines[first].decode("utf-8", "replace"), SEGMENT_NAME, schema=self.schema)
            except InputError as exc:
                self._reject_now(lines[first], int(numbers[first]), None,
                                 f"cannot decide the stream's format from this line: {exc}")
                keep = keep[1:]
                continue
            if seg.layout.kind == "header":
                keep = keep[1:]
        if keep and seg.layout is not None:
            chosen = [lines[i] for i in keep]
            with self.stats.lock:
                self.stats.read += len(chosen)
            self.put(Chunk(t_read, chosen, numbers[keep], self.record_no + 1, seg.layout))
            self.record_no += len(chosen)

    def _entry_layout(self, header: bytes | None, line: bytes) -> Layout | str:
        """The layout of a broker entry's line (its header's, or a raw line's by its number of
        values), or why the entry is not a record."""
        key: bytes | int = header if header is not None else line.count(b",")
        layout = self._entry_layouts.get(key)
        if layout is not None:
            return layout
        if header is not None and self.schema is None and not {
                n.strip().lower() for n in header.decode("utf-8", "replace").split(",")} & set(FEATURES):
            return ("the entry has neither a 'line' field holding a raw KDD line nor fields named after the model's "
                    f"feature columns ({', '.join(FEATURES[:3])}, …)")
        try:
            layout = sniff((header if header is not None else line).decode("utf-8", "replace"), "this entry",
                           schema=self.schema)
        except InputError as exc:
            return f"cannot read this entry as a record: {exc}"
        if header is not None and layout.kind != "header":
            return ("the entry has neither a 'line' field holding a raw KDD line nor fields named after the "
                    "model's feature columns")
        if header is None and layout.kind != "raw":
            return "the 'line' field holds a header, not a record; send one raw KDD line per entry"
        self._entry_layouts[key] = layout
        return layout

    def _emit_entries(self, entries: Entries) -> None:
        """Queue records that came one per broker message, grouped by what becomes of them."""
        n = len(entries.lines)
        numbers = np.arange(self.record_no + 1, self.record_no + n + 1)
        self.record_no += n
        with self.stats.lock:
            self.stats.read += n
        limit = self.limit
        dead = set()
        if self.max_deliveries and entries.deliveries:
            dead = {i for i, d in enumerate(entries.deliveries) if d > self.max_deliveries}
        kinds: dict[Layout | str, list[int]] = {}
        if not dead and entries.reject_reason:
            kinds[entries.reject_reason] = list(range(n))
        elif not dead and entries.header is not None and all(len(ln) <= limit for ln in entries.lines):
            kinds[self._entry_layout(entries.header, b"")] = list(range(n))
        for i, line in enumerate(entries.lines if not kinds else ()):
            if i in dead:
                kind: Layout | str = "dead"
            elif entries.reject_reason:
                kind = entries.reject_reason
            elif len(line) > limit:
                kind = too_long(limit)
            else:
                kind = self._entry_layout(entries.header, line)
            kinds.setdefault(kind, []).append(i)
        for kind, positions in kinds.items():
            def pick(values: list | None, positions: list[int] = positions) -> list | None:
                return None if values is None else [values[i] for i in positions]

            lines = [entries.lines[i] for i in positions]
            ids = [entries.ids[i] for i in positions]
            at = numbers[positions]
            if kind == "dead":
                deliveries = pick(entries.deliveries)
                assert deliveries is not None
                reason = (f"delivered {max(deliveries)} times without its decision being written (each consumer "
                          "stopped, or its alert was refused, before acknowledging it)")
                self.put(Chunk(entries.t_read, lines, at, int(at[0]), None, ids=ids, extras=pick(entries.extras),
                               records=at, deliveries=deliveries, dead_reason=reason))
            elif isinstance(kind, str):
                lines = [ln[:SHOWN_BYTES] if len(ln) > limit else ln for ln in lines]
                self.put(Chunk(entries.t_read, lines, at, int(at[0]), None, kind, ids=ids, records=at))
            else:
                self.put(Chunk(entries.t_read, lines, at, int(at[0]), kind, ids=ids, extras=pick(entries.extras),
                               records=at, notes=pick(entries.notes), deliveries=pick(entries.deliveries)))
