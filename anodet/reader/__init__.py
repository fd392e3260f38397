"""Bytes in, validated feature rows out: the one reader of files, uploads and streams.

* :mod:`~anodet.reader.layout` recognises the format from the first line;
* :mod:`~anodet.reader.parse` parses blocks of lines into typed rows with a reason per bad row;
* :mod:`~anodet.reader.source` opens paths, standard input, FIFOs and uploads (gzip included);
* :mod:`~anodet.reader.chunks` reads a whole input block by block in bounded memory;
* :mod:`~anodet.reader.limits` holds the bounds on the work any input can cause.

Names are imported lazily, so that reading :mod:`~anodet.reader.limits` (the command line's
defaults) does not import pyarrow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CHUNK_BYTES": "chunks", "read_chunks": "chunks",
    "BadRowsError": "errors", "InputError": "errors", "RowProblem": "errors", "describe_problems": "errors",
    "listed": "errors",
    "RANGE_COLUMN": "layout", "RESERVED_COLUMNS": "layout", "ROW_COLUMN": "layout", "STATUS_COLUMN": "layout",
    "Layout": "layout", "sniff": "layout",
    "InputSchema": "layout",
    "Limits": "limits",
    "Chunk": "parse", "parse_block": "parse",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'anodet.reader' has no attribute {name!r}")
    return getattr(importlib.import_module(f"anodet.reader.{_EXPORTS[name]}"), name)
