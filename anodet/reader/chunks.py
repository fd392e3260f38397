"""Read a whole input block by block: sniff its layout, then yield parsed chunks in bounded memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import IO

from anodet.reader.errors import InputError
from anodet.reader.layout import InputSchema, Layout, sniff
from anodet.reader.limits import Limits
from anodet.reader.parse import LINE_END, Chunk, parse_block, problem_chunk, too_long_reason
from anodet.reader.source import _MAGIC, InputStream

CHUNK_BYTES = 4 << 20
"""Bytes of input parsed at a time; bounds memory whatever the input size."""


def check_text(head: bytes, name: str) -> None:
    """Refuse an input whose first block is not text, saying what it looks like instead."""
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise InputError(
                f"{name} is {what}, not CSV text. Export it as CSV (in a spreadsheet: File > Save as > "
                "CSV UTF-8) and use that file."
            )
    sample = head[:8192]
    if not sample.strip(b"\x00"):
        raise InputError(f"{name} starts with {len(sample):,} zero bytes and no text (no line breaks, no values), "
                         "so it is not a CSV file. Check that this is the file you meant.")
    if sample[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(f"{name} is UTF-16 text; anodet reads UTF-8. Save it as CSV UTF-8.")
    if b"\x00" in sample:
        half = max(1, len(sample) // 2)
        zeros = max(sample[0::2].count(0), sample[1::2].count(0))
        if zeros > 0.4 * half and min(sample[0::2].count(0), sample[1::2].count(0)) < 0.05 * half:
            raise InputError(f"{name} looks like UTF-16 text; anodet reads UTF-8. Save it as CSV UTF-8.")
    control = sum(sample.count(bytes([b])) for b in _CONTROL_BYTES)
    first_line = LINE_END.split(sample.lstrip(), maxsplit=1)[0]
    if control > 0.01 * len(sample) or b"\x00" in first_line:
        where = next(i for i, b in enumerate(sample) if b in _CONTROL_BYTES)
        raise InputError(
            f"{name} contains binary data (a control byte 0x{sample[where]:02x} at byte {where:,}), so it is not a CSV "
            "text file. Use the CSV export, not the original binary file."
        )


_CONTROL_BYTES = frozenset(range(0x00, 0x09)) | frozenset(range(0x0E, 0x20)) | {0x0B, 0x0C, 0x7F}
"""Bytes that do not occur in CSV text (tab, line feed and carriage return do)."""


def decode_line(data: bytes, name: str, where: str) -> str:
    """UTF-8 text of a line, or an InputError naming the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{where} of {name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start:,}). "
            "Save the file as CSV UTF-8 (most spreadsheets and editors offer it) and try again."
        ) from None


class _Lines:
    """Splits a byte stream into blocks of complete lines; a line over the limit becomes a problem row."""

    def __init__(self, stream: InputStream, chunk_bytes: int, max_line: int) -> None:
        self.stream, self.chunk_bytes, self.max_line = stream, chunk_bytes, max_line
        self.buffer = b""
        self.eof = False

    def fill(self) -> None:
        more = self.stream.read(self.chunk_bytes)
        self.eof = not more
        self.buffer += more

    def first_line(self) -> tuple[bytes, bytes] | None:
        """(first non-blank line, what follows it), reading as far as needed within the limit."""
        while True:
            stripped = self.buffer.lstrip()
            end = LINE_END.search(stripped)
            complete = end is not None and not (end.group() == b"\r" and end.end() == len(stripped) and not self.eof)
            if end is not None and complete:
                return stripped[:end.start()], stripped[end.end():]
            if len(stripped) > self.max_line:
                raise InputError(
                    f"The first line of {self.stream.name} is longer than {self.max_line / 2**20:,.0f} MiB without a "
                    "line break, so it is not a CSV of records. Check the file."
                )
            if self.eof:
                return (stripped, b"") if stripped.strip() else None
            self.fill()

    def blocks(self) -> Iterator[bytes | str]:
        """Blocks of complete lines; a line over the length limit is yielded as its reason (a str)."""
        while True:
            if not self.eof:
                self.fill()
            if self.eof:
                block, self.buffer = self.buffer, b""
                if len(block) > self.max_line and LINE_END.search(block) is None:
                    yield self._too_long()
                elif block.strip():
                    yield block
                return
            cut = self.buffer.rfind(b"\n")
            if cut < 0:  # old Mac line ends: a carriage return that is not the last byte
                cut = self.buffer.rfind(b"\r", 0, len(self.buffer) - 1)
            if cut < 0:
                if len(self.buffer) > self.max_line:
                    yield self._too_long()
                    self._skip_rest_of_line()
                continue
            block, self.buffer = self.buffer[:cut + 1], self.buffer[cut + 1:]
            if block.strip():
                yield block

    def _too_long(self) -> str:
        return too_long_reason(self.max_line)

    def _skip_rest_of_line(self) -> None:
        """Drop bytes up to the end of the over-long line, reading on in bounded steps."""
        while True:
            end = LINE_END.search(self.buffer)
            if end is not None:
                self.buffer = self.buffer[end.end():]
                return
            self.buffer = b""
            if self.eof:
                return
            self.fill()


def read_chunks(
    source: str | os.PathLike | IO[bytes], name: str | None = None, chunk_bytes: int = CHUNK_BYTES,
    limits: Limits | None = None, on_layout: Callable[[Layout], None] | None = None,
    progress: Callable[[float], None] | None = None, schema: InputSchema | None = None,
) -> Iterator[Chunk]:
    """Open, sniff and parse an input block by block; raise :class:`InputError` on a bad input.

    Rows are numbered 1, 2, … in input order, not counting the header or blank lines; every
    row is in exactly one chunk, valid or with its reason.
    """
    limits = limits or Limits()
    handle = InputStream(source, name, limits)
    try:
        if handle.size == 0:
            raise InputError(f"{handle.name} is empty (0 bytes). Choose the CSV file that holds your records.")
        lines = _Lines(handle, chunk_bytes, limits.max_line_bytes)
        lines.fill()
        if not lines.buffer:
            raise InputError(f"{handle.name} is empty (0 bytes). Choose the CSV file that holds your records.")
        check_text(lines.buffer, handle.name)
        first = lines.first_line()
        if first is None:
            raise InputError(f"{handle.name} holds no records (only blank lines). Choose the CSV file that "
                             "holds your records.")
        line, rest = first
        layout = sniff(decode_line(line, handle.name, "The first line"), handle.name, handle.compressed,
                       limits.max_columns, schema)
        if on_layout:
            on_layout(layout)
        lines.buffer = rest if layout.kind == "header" else line + b"\n" + rest
        row, emitted = 1, False
        for block in lines.blocks():
            chunk = problem_chunk(layout, row, [block]) if isinstance(block, str) else parse_block(block, layout, row)
            row += len(chunk)
            emitted = emitted or len(chunk) > 0
            if progress:
                progress(handle.fraction)
            yield chunk
        if not emitted:
            raise InputError(
                f"{handle.name} has a header but no data rows. Add the records below the header line."
                if layout.kind == "header" else f"{handle.name} holds no records."
            )
    finally:
        handle.close()
