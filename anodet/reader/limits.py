"""The bounds on the work any input can cause; each has a documented default and a sentence.

They keep a hostile or broken input (a header of a million columns, a line of 200 MB, a gzip
bomb, a pipe nobody writes to) from hanging a command or taking the server's memory.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_COLUMNS = 1_000
"""Columns a header (or a raw line) may have."""

MAX_LINE_BYTES = 4 << 20
"""Bytes one line may hold (a 1 MB text cell fits; a 200 MB line without a newline does not)."""

MAX_INFLATION = 1_000
"""Decompressed bytes per compressed byte beyond which a .gz is refused as a decompression bomb
(CSV text compresses 5–50×; a file of zeros compresses about 1,000×)."""

INFLATION_GRACE_BYTES = 64 << 20
"""Decompressed bytes read before the inflation ratio is checked (small files may compress well)."""

READ_TIMEOUT_S = 600.0
"""Seconds a pipe, FIFO or standard input may stay silent before reading gives up."""


@dataclass(frozen=True)
class Limits:
    """The limits one read runs under (defaults above; the upload page adds a size cap)."""

    max_columns: int = MAX_COLUMNS
    max_line_bytes: int = MAX_LINE_BYTES
    max_inflation: float = MAX_INFLATION
    inflation_grace_bytes: int = INFLATION_GRACE_BYTES
    read_timeout_s: float = READ_TIMEOUT_S
    max_input_bytes: int | None = None
    """Bytes of (compressed) input accepted; None: no cap."""
    max_decompressed_bytes: int | None = None
    """Bytes of decompressed text accepted; None: no cap."""
