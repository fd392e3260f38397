"""Open an input for reading: a file path, ``-`` (standard input), a FIFO, or an uploaded file object.

Gzip is recognised by its magic bytes and decompressed on the fly. Every read is bounded
(:mod:`anodet.reader.limits`): inflation ratio, decompressed size, and silence on a pipe.
"""

from __future__ import annotations

import os
import select
import stat
import sys
import time
import zlib
from pathlib import Path
from typing import IO

from anodet.reader.errors import InputError
from anodet.reader.limits import Limits

GZIP_MAGIC = b"\x1f\x8b"
_MAGIC = {
    b"PK\x03\x04": "a ZIP archive or an Excel/OpenDocument workbook (.xlsx/.ods)",
    b"\xd0\xcf\x11\xe0": "an old-style Excel workbook (.xls) or another Office document",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x7fELF": "a program (ELF binary)",
    b"BZh": "a bzip2-compressed file",
    b"\xfd7zXZ": "an xz-compressed file",
    b"\x28\xb5\x2f\xfd": "a zstd-compressed file",
    b"SQLite format 3": "an SQLite database",
}
_READ = 1 << 20


class _PipeReader:
    """Reads a pipe, FIFO or terminal; gives up with a sentence after ``timeout`` seconds of silence."""

    def __init__(self, fd: int, name: str, timeout: float, owned: bool) -> None:
        self.fd, self.name, self.timeout, self.owned = fd, name, timeout, owned
        self._pending = b""

    def read(self, n: int) -> bytes:
        if self._pending:
            out, self._pending = self._pending[:n], self._pending[n:]
            return out
        return self._wait_read(n)

    def _wait_read(self, n: int) -> bytes:
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise InputError(
                    f"No data arrived from {self.name} for {self.timeout:,.0f} s, so reading stopped. Check that "
                    "the program writing to it is running (or raise --read-timeout)."
                )
            try:
                ready, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            except InterruptedError:
                continue
            if ready:
                return os.read(self.fd, n)

    def peek(self, n: int) -> bytes:
        """The first ``n`` bytes, kept to be read again."""
        while len(self._pending) < n:
            more = self._wait_read(n - len(self._pending))
            if not more:
                break
            self._pending += more
        return self._pending[:n]

    def tell(self) -> int:
        return 0

    def close(self) -> None:
        if self.owned:
            os.close(self.fd)


class InputStream:
    """A binary input, transparently gunzipped, with byte progress and the read limits applied."""

    def __init__(self, source: str | os.PathLike | IO[bytes], name: str | None = None,
                 limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.size: int | None = None  # bytes of (compressed) input; None for a pipe
        self._raw: IO[bytes] | _PipeReader
        self._owned = False
        if isinstance(source, (str, os.PathLike)) and str(source) == "-":
            self.name = name or "standard input"
            self._raw = _PipeReader(sys.stdin.fileno(), self.name, self.limits.read_timeout_s, owned=False)
        elif isinstance(source, (str, os.PathLike)):
            self.name = name or Path(source).name
            self._raw = self._open_path(Path(source))
            self._owned = True
        else:
            self.name = name or str(getattr(source, "name", None) or "the upload")
            self._raw = source
            source.seek(0, os.SEEK_END)
            self.size = source.tell()
            source.seek(0)
        self._check_size()
        head = self._raw.peek(2)[:2] if isinstance(self._raw, _PipeReader) else self._peek_seekable(2)
        self.compressed = head == GZIP_MAGIC
        self._inflate = zlib.decompressobj(wbits=31) if self.compressed else None
        self._consumed = 0  # compressed bytes read
        self._produced = 0  # decompressed bytes returned
        self._leftover = b""

    def _open_path(self, path: Path) -> IO[bytes] | _PipeReader:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise InputError(f"{path} does not exist. Check the path (and that the file was not moved).") from None
        except OSError as exc:
            raise InputError(f"Cannot open {path}: {exc.strerror or exc}. Check the path.") from None
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path} is a folder, not a file. Name a CSV file inside it.")
        if stat.S_ISFIFO(info.st_mode):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                raise InputError(f"Cannot open {path}: {exc.strerror or exc}.") from None
            os.set_blocking(fd, True)
            return _PipeReader(fd, str(path), self.limits.read_timeout_s, owned=True)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path} is not a regular file (a device, socket or similar), so it is not a CSV of "
                             "records. Name a CSV file, or use - to read standard input.")
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise InputError(f"Cannot open {path}: {exc.strerror or exc}. Check the path and its "
                             "permissions.") from None
        self.size = info.st_size
        return handle

    def _peek_seekable(self, n: int) -> bytes:
        raw = self._raw
        assert not isinstance(raw, _PipeReader)
        where = raw.tell()
        head = raw.read(n)
        raw.seek(where)
        return head

    def _check_size(self) -> None:
        cap = self.limits.max_input_bytes
        if cap is not None and self.size is not None and self.size > cap:
            raise InputError(
                f"{self.name} is {self.size / 1e6:,.1f} MB, over the {cap / 1e6:,.0f} MB limit. Score it with "
                "`python -m anodet score` (no size limit), or split it into smaller files."
            )

    def _read_raw(self, n: int) -> bytes:
        data = self._raw.read(n)
        self._consumed += len(data)
        return data

    def read(self, n: int) -> bytes:
        """Up to ``n`` decompressed bytes; b"" at the end of input."""
        if self._inflate is None:
            data = self._read_raw(n)
            self._produced += len(data)
            self._check_produced()
            return data
        out = self._leftover
        while len(out) < n:
            if self._inflate.eof:
                rest = self._inflate.unused_data
                if rest.startswith(GZIP_MAGIC):  # a multi-member gzip file: the next member
                    self._inflate = zlib.decompressobj(wbits=31)
                    out += self._decompress(rest, n - len(out))
                    continue
                break
            compressed = self._inflate.unconsumed_tail or self._read_raw(_READ)
            if not compressed:
                raise self._truncated("the compressed data ends before the end of the gzip stream")
            out += self._decompress(compressed, n - len(out))
        self._leftover = out[n:]
        data = out[:n]
        self._produced += len(data)
        self._check_produced()
        return data

    def _decompress(self, compressed: bytes, want: int) -> bytes:
        assert self._inflate is not None
        try:
            return self._inflate.decompress(compressed, max(want, 1 << 16))
        except zlib.error as exc:
            raise self._truncated(str(exc)) from None

    def _truncated(self, what: str) -> InputError:
        return InputError(
            f"{self.name} is gzip-compressed but the compressed data is corrupt or truncated (near byte "
            f"{self._consumed:,}{f' of {self.size:,}' if self.size else ''}: {what}). Compress it again or use the "
            "uncompressed CSV."
        )

    def _check_produced(self) -> None:
        limits = self.limits
        cap = limits.max_decompressed_bytes
        if cap is not None and self._produced > cap:
            raise InputError(
                f"{self.name} holds more than {cap / 1e6:,.0f} MB of text"
                f"{' once decompressed' if self.compressed else ''}"
                f", over the limit here. Score it with `python -m anodet score`, or split it into smaller files."
            )
        if (self.compressed and self._produced > limits.inflation_grace_bytes
                and self._produced > limits.max_inflation * max(self._consumed, 1)):
            raise InputError(
                f"{self.name} expands more than {limits.max_inflation:,.0f}-fold when decompressed (a decompression "
                "bomb, or a file of repeated bytes), which no CSV of network records does. Check the file."
            )

    @property
    def fraction(self) -> float:
        """Share of the (compressed) input consumed so far (0 when the size is unknown)."""
        if not self.size:
            return 0.0 if self.size is None else 1.0
        return min(1.0, self._consumed / self.size)

    def close(self) -> None:
        if self._owned:
            self._raw.close()
