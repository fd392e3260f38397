"""Column statistics of a whole file in one streamed pass: nulls, range and mean of numbers, levels of text."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from anodet.datasets.errors import DatasetError
from anodet.datasets.files import NUMBER, batches, conversion_error, is_bool, is_number_type, unreadable

if TYPE_CHECKING:
    import pyarrow as pa

LEVEL_LIMIT = 100_000
"""Distinct values counted per text column; past this a column is "over 100,000 levels"."""


class ColumnStats:
    """Running statistics of one column over the batches of a file."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nulls = 0
        self.min = math.inf
        self.max = -math.inf
        self.total = 0.0
        self.count = 0
        self.levels: dict[str, int] = {}
        self.more_levels = False
        self.numeric_text = 0  # text cells that read as numbers
        self.other_text = 0  # text cells that do not
        self.first_numeric: tuple[int, str] | None = None
        self.first_other: tuple[int, str] | None = None

    def numbers(self, array: pa.Array) -> None:
        import pyarrow.compute as pc

        self.nulls += array.null_count
        if len(array) == array.null_count:
            return
        values = pc.cast(array, "float64")
        finite = pc.filter(values, pc.is_finite(values))
        self.nulls += len(values) - values.null_count - len(finite) + 0  # non-finite values count as empty
        if len(finite):
            got = pc.min_max(finite)
            self.min = min(self.min, got["min"].as_py())
            self.max = max(self.max, got["max"].as_py())
            self.total += pc.sum(finite).as_py()
            self.count += len(finite)

    def text(self, array: pa.Array, offset: int, check_numbers: bool) -> None:
        import pyarrow.compute as pc

        self.nulls += array.null_count
        if not self.more_levels:
            counts = pc.value_counts(array.drop_null())
            for value, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
                self.levels[value] = self.levels.get(value, 0) + n
            if len(self.levels) > LEVEL_LIMIT:
                self.more_levels = True
                self.levels = {}
        if check_numbers:
            numeric = pc.fill_null(pc.match_substring_regex(array, NUMBER), False)
            valid = pc.is_valid(array)
            n_numeric = pc.sum(numeric).as_py() or 0
            n_other = (pc.sum(valid).as_py() or 0) - n_numeric
            if n_numeric and self.first_numeric is None:
                i = pc.indices_nonzero(numeric)[0].as_py()
                self.first_numeric = (offset + i + 1, array[i].as_py())
            if n_other and self.first_other is None:
                i = pc.indices_nonzero(pc.and_(valid, pc.invert(numeric)))[0].as_py()
                self.first_other = (offset + i + 1, array[i].as_py())
            self.numeric_text += n_numeric
            self.other_text += n_other

    @property
    def n_levels(self) -> int:
        return LEVEL_LIMIT + 1 if self.more_levels else len(self.levels)


def read_types(names: list[str], inferred: dict[str, pa.DataType], text: set[str]) -> dict[str, pa.DataType]:
    """How each column is read: numbers as float64, booleans as they are, everything else (and ``text``) as text."""
    import pyarrow as pa

    types = {}
    for name in names:
        t = inferred[name]
        if name in text or not (is_number_type(t) or is_bool(t)):
            types[name] = pa.string()
        elif is_number_type(t):
            types[name] = pa.float64()
        else:
            types[name] = pa.bool_()
    return types


def too_many_rows(path: Path, max_rows: int) -> DatasetError:
    return DatasetError(f"{path.name} has more than {max_rows:,} rows, the most a dataset declared from the browser "
                        "may hold; declare it from the command line (python -m anodet dataset add NAME --train FILE), "
                        "where splits are sampled in bounded memory.")


def scan(path: Path, names: list[str], types: dict[str, pa.DataType], text_checks: set[str],
          progress: Callable[[int], None] | None = None,
          max_rows: int | None = None) -> tuple[int, dict[str, ColumnStats]]:
    """(rows, per-column statistics) in one streamed pass over the file; a DatasetError past ``max_rows`` rows."""
    import pyarrow as pa

    stats = {n: ColumnStats(n) for n in names}
    rows = 0
    try:
        for batch in batches(path, types, names):
            for name, array in zip(batch.schema.names, batch.columns, strict=True):
                if array.type == pa.string():
                    stats[name].text(array, rows, name in text_checks)
                else:
                    stats[name].numbers(array)
            rows += batch.num_rows
            if max_rows is not None and rows > max_rows:
                raise too_many_rows(path, max_rows)
            if progress:
                progress(rows)
    except pa.ArrowInvalid as exc:
        raise conversion_error(path, names, exc) from None
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(path, exc) from None
    return rows, stats
