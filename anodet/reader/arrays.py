"""Arrow arrays to and from numpy through their buffers, without pyarrow importing pandas.

``pa.array``, ``pa.scalar`` and ``to_numpy`` look for pandas on first use and import it, so a
command that scores three rows would spend most of its time loading a library it never calls.
These helpers build and read the few layouts the scoring path uses (float64, int64, bool, UTF-8 text,
each with an optional validity mask) straight from their buffers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def _bits(mask: np.ndarray) -> pa.Buffer:
    """A boolean numpy array as Arrow's little-endian bitmap."""
    return pa.py_buffer(np.packbits(np.asarray(mask, dtype=bool), bitorder="little"))


def _validity(valid: np.ndarray | None, n: int) -> tuple[pa.Buffer | None, int]:
    if valid is None:
        return None, 0
    valid = np.asarray(valid, dtype=bool)
    nulls = int(n - np.count_nonzero(valid))
    return (_bits(valid) if nulls else None), nulls


def float_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """float64 array of ``values`` (null where ``valid`` is False)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    bitmap, nulls = _validity(valid, len(values))
    return pa.Array.from_buffers(pa.float64(), len(values), [bitmap, pa.py_buffer(values)], null_count=nulls)


def int_array(values: np.ndarray) -> pa.Array:
    """int64 array of ``values``."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def bool_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """bool array of ``values`` (null where ``valid`` is False)."""
    bitmap, nulls = _validity(valid, len(values))
    return pa.Array.from_buffers(pa.bool_(), len(values), [bitmap, _bits(values)], null_count=nulls)


def text_array(values: Sequence[str]) -> pa.Array:
    """UTF-8 string array of Python strings."""
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets),
                                                             pa.py_buffer(b"".join(encoded))])


def repeated_text(value: str, n: int) -> pa.Array:
    """UTF-8 string array holding ``value`` ``n`` times."""
    encoded = value.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int32) * len(encoded)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(encoded * n)])


def float_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A float64 column's values as numpy (NaN where null)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [np.empty(0)]
    for chunk in chunks:
        validity, data = chunk.buffers()[:2]
        values = np.frombuffer(data, dtype=np.float64, count=len(chunk), offset=chunk.offset * 8) if len(chunk) \
            else np.empty(0)
        if chunk.null_count:
            values = np.where(_present(validity, chunk.offset, len(chunk)), values, np.nan)
        parts.append(values)
    return np.concatenate(parts) if len(parts) > 2 else parts[-1]


def int_values(column: pa.ChunkedArray | pa.Array, null: int = -1) -> np.ndarray:
    """A signed integer column as int64 numpy (``null`` where null)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [np.empty(0, dtype=np.int64)]
    for chunk in chunks:
        if not pa.types.is_signed_integer(chunk.type):
            raise ValueError(f"expected signed integers, not {chunk.type}")
        dtype = np.dtype(f"int{chunk.type.bit_width}")
        validity, data = chunk.buffers()[:2]
        values = np.frombuffer(data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize) \
            if len(chunk) else np.empty(0, dtype=dtype)
        values = values.astype(np.int64)
        if chunk.null_count:
            values[~_present(validity, chunk.offset, len(chunk))] = null
        parts.append(values)
    return np.concatenate(parts)


def _present(validity: pa.Buffer, offset: int, n: int) -> np.ndarray:
    """Arrow's validity bitmap as booleans."""
    return np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=offset + n,
                         bitorder="little")[offset:].astype(bool)


def dictionary_codes(column: pa.ChunkedArray | pa.Array) -> tuple[list[str | None], np.ndarray]:
    """(the distinct values of a text column, each row's index into them; -1 where null)."""
    encoded = column.dictionary_encode()
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    values: list[str | None] = []
    codes = [np.empty(0, dtype=np.int64)]
    for chunk in chunks:
        local = int_values(chunk.indices)
        codes.append(np.where(local >= 0, local + len(values), -1))
        values.extend(chunk.dictionary.to_pylist())
    return values, np.concatenate(codes)
