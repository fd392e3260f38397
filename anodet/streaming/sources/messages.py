"""Broker messages (field → value mappings) into :class:`~anodet.streaming.sources.base.Entries`.

An entry (message) is one record: either one field per column (the model's feature columns in any
order plus passthrough fields such as an id, a timestamp or an address, as in a header CSV), or a
single field ``line`` holding a raw KDD line (other fields beside it are passed through). Redis
and Kafka sources share this conversion, so both accept and refuse the same entries.

A whole entry (names and values) may hold at most as many bytes as one line of a file
(:data:`~anodet.reader.limits.MAX_LINE_BYTES`): a bigger one is refused with that reason and
only its first bytes are kept, so a producer cannot fill the alert log or the consumer's memory
through passthrough fields.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from anodet.reader.limits import MAX_LINE_BYTES
from anodet.streaming.sources.base import Entries

LINE_FIELD = b"line"
SHOWN_BYTES = 200
"""Bytes of a refused entry kept to show in the rejects."""

_SPECIAL = re.compile(rb'["\r\n]')
BREAK_REASON = "a field holds a line break; send one record per entry, each value on one line"
LINE_ALONE_REASON = "the entry's line field is empty"
DELETED_REASON = "the entry has no fields (it was deleted from the stream before it was read)"


def too_big_reason(limit: int) -> str:
    return (f"the entry is longer than {limit / 2**20:,.0f} MiB (the limit, fields and values together); it was "
            f"not read (the first {SHOWN_BYTES} bytes are shown)")


def _quote(value: bytes) -> bytes:
    return b'"' + value.replace(b'"', b'""') + b'"'


def csv_line(values: Sequence[bytes]) -> bytes:
    """The values as one CSV line, quoting only those that need it."""
    line = b",".join(values)
    if line.count(b",") == len(values) - 1 and b'"' not in line:
        return line
    return b",".join(_quote(v) if (b"," in v or b'"' in v) else v for v in values)


def _text(raw: bytes, name: str, notes: list[str]) -> str:
    """A passthrough value as text; bytes that are not UTF-8 are shown escaped and noted (fail closed)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        notes.append(f"the field {name!r} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start + 1})")
        return raw.decode("utf-8", "backslashreplace")


def _extras(values: dict[bytes, bytes]) -> tuple[dict[str, str] | None, str | None]:
    """Passthrough fields beside a raw line, and why the record fails closed (None: it does not)."""
    if not values:
        return None, None
    notes: list[str] = []
    out = {}
    for k, v in values.items():
        name = _text(k, k.decode("utf-8", "backslashreplace"), notes)
        out[name] = _text(v, name, notes)
    return out, "; ".join(notes) or None


def to_entries(messages: Sequence[tuple[str, Any]], max_bytes: int = MAX_LINE_BYTES,
               largest: list[int] | None = None) -> list[Entries]:
    """Group consecutive messages of the same shape into :class:`Entries` the pipeline can parse.

    A message is (id, fields): a dict, or the flat ``[name, value, name, value, …]`` list Redis
    sends. Fields with a ``line`` field are raw KDD lines (other fields are kept as passthrough
    ``extras``); otherwise the field names make a header line and the values a CSV line. A message
    without fields (deleted before it was read), with a line break in a value, or of more than
    ``max_bytes`` is an entry the pipeline rejects (and acknowledges), with the reason.
    ``largest[0]``, when given, is raised to the size of the largest entry seen (the reader sizes its
    next read by it).
    """
    out: list[Entries] = []
    t_read = time.perf_counter()
    current: Entries | None = None
    current_key: Any = None
    header_names: list[bytes] | None = None  # field names of the current run of header-style entries
    names_bytes = 0
    special = _SPECIAL.search
    biggest = 0
    for entry_id, fields in messages:
        if isinstance(fields, dict):
            fields = [x for pair in fields.items() for x in pair]
        if header_names is not None and fields and current is not None:
            # Fast path: the same fields as the entry before (a producer sends one shape).
            values = fields[1::2]
            line = b",".join(values)
            if (fields[0::2] == header_names and line.count(b",") == len(values) - 1 and not special(line)
                    and len(line) + names_bytes <= max_bytes):
                if len(line) > biggest:
                    biggest = len(line)
                current.lines.append(line)
                current.ids.append(entry_id)
                continue
        header_names = None
        extras: dict[str, str] | None = None
        note: str | None = None
        size = sum(map(len, fields)) if fields else 0
        biggest = max(biggest, size)
        if not fields:
            key: Any = ("reject", DELETED_REASON)
            line = b""
        elif size > max_bytes:
            key = ("reject", too_big_reason(max_bytes))
            names = fields[0::2]
            line = (dict(zip(names, fields[1::2], strict=False))[LINE_FIELD] if LINE_FIELD in names
                    else b",".join(fields[1::2][:8]))[:SHOWN_BYTES]
        else:
            names = fields[0::2]
            if LINE_FIELD in names:
                values_by_name = dict(zip(names, fields[1::2], strict=False))
                line = values_by_name.pop(LINE_FIELD).strip()
                extras, note = _extras(values_by_name)
                reason = BREAK_REASON if (b"\n" in line or b"\r" in line) else None if line else LINE_ALONE_REASON
                key = ("reject", reason) if reason else ("line",)
            else:
                values = fields[1::2]
                line = b",".join(values)
                if line.count(b",") != len(values) - 1 or b'"' in line:
                    line = csv_line(values)
                key = tuple(names)
                header_names = names
                names_bytes = sum(map(len, names))
                if b"\n" in line or b"\r" in line:
                    header_names = None
                    key = ("reject", BREAK_REASON)
                    line = line.replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        if current is None or key != current_key:
            if key[0] == "reject":
                current = Entries([], [], reject_reason=key[1], t_read=t_read)
            elif key[0] == "line":
                current = Entries([], [], extras=[], notes=[], t_read=t_read)
            else:
                current = Entries([], [], header=csv_line(list(key)), t_read=t_read)
            current_key = key
            out.append(current)
        current.lines.append(line)
        current.ids.append(entry_id)
        if current.extras is not None:
            current.extras.append(extras)
        if current.notes is not None:
            current.notes.append(note)
    if largest is not None:
        largest[0] = max(largest[0], biggest)
    for entries in out:
        if entries.extras is not None and not any(entries.extras):
            entries.extras = None
        if entries.notes is not None and not any(entries.notes):
            entries.notes = None
    return out
