"""The one rule that keeps text cells from running as spreadsheet formulas (CSV injection).

A cell whose text starts with ``= + - @``, a tab or a carriage return gets a leading apostrophe,
unless the whole cell is a plain number (``-5``, ``+1.5e3``): a number cannot run as a formula,
and prefixing it would turn a negative value into text. Every download anodet writes (scored
CSV files, flagged records) goes through this module.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pandas as pd

FORMULA_START = r"^[=+\-@\t\r]"
PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_FORMULA_RE, _NUMBER_RE = re.compile(FORMULA_START), re.compile(PLAIN_NUMBER)


def is_risky(text: str) -> bool:
    """Would a spreadsheet run this cell as a formula?"""
    return bool(_FORMULA_RE.match(text)) and not _NUMBER_RE.match(text)


def neutralise_cell(text: str) -> str:
    """One cell, made safe."""
    return "'" + text if is_risky(text) else text


def neutralise_arrow(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A text column with risky cells prefixed (other types are returned unchanged)."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    starts = pc.match_substring_regex(column, FORMULA_START)
    if not pc.any(starts).as_py():  # the usual case: one scan of the column
        return column
    risky = pc.fill_null(pc.and_(starts, pc.invert(pc.match_substring_regex(column, PLAIN_NUMBER))), False)
    if not pc.any(risky).as_py():
        return column
    quote, empty = pa.scalar("'", column.type), pa.scalar("", column.type)
    return pc.if_else(risky, pc.binary_join_element_wise(quote, column, empty), column)


def neutralise_table(table: pa.Table) -> pa.Table:
    """Every text column and every column name of an Arrow table, made safe."""
    return pa.table([neutralise_arrow(table.column(i)) for i in range(table.num_columns)],
                    names=[neutralise_cell(c) for c in table.column_names])


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a pandas frame whose text cells, column names and text index are safe."""
    import pandas as pd  # here: files written from Arrow tables never need it

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            text = out[column].astype(str)
            out[column] = text.where(~text.map(is_risky), "'" + text)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    if out.index.dtype == object or pd.api.types.is_string_dtype(out.index):
        out.index = pd.Index([neutralise_cell(str(v)) for v in out.index], name=out.index.name)
    return out


def markdown_text(text: object) -> str:
    """User-controlled text (file names, cells, column names, alert fields) made safe for Markdown.

    Every character Markdown or Streamlit would interpret (links, emphasis, code, HTML, LaTeX,
    emoji and colour directives) is backslash-escaped, so the text shows exactly as typed and
    nothing in it becomes a link or formatting. Streamlit also turns bare URLs, ``www.`` names
    and e-mail addresses in the rendered text into links, which no escape prevents, so a
    zero-width space breaks those patterns without changing what the reader sees.
    """
    raw = str(text).replace("\n", " ")
    raw = _AUTOLINK.sub(lambda m: m.group(0)[:-1] + "\u200b" + m.group(0)[-1], raw)
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", raw)


_AUTOLINK = re.compile(r"(?i)(:/|www\.|\w@)")


"""The starts of what the renderer would auto-link: ``scheme://``, ``www.``, ``name@``."""


_MARKDOWN_SPECIAL = re.compile(r"[\\`*_{}\[\]()<>#+\-.!|~:$=&\"']")


_ABS_PATH = re.compile(r"(?<![\w:/.~\\-])/(?:[^\s/'\"`,;:()\[\]{}<>|*]+/)*[^\s/'\"`,;:()\[\]{}<>|*]+/?")


def without_paths(text: object) -> str:
    """Text for a page with no server path in it: the data folder shown as ``data/…``, the project's folder left
    out, any other absolute path shown as its last name (a file name, a folder name)."""
    from anodet import PROJECT_ROOT
    from anodet.datasets.kdd import cache_root

    out = str(text)
    data = cache_root()
    for root, shown in ((data.resolve(), "data"), (data.absolute(), "data"), (PROJECT_ROOT.resolve(), ""),
                        (PROJECT_ROOT.absolute(), "")):
        prefix = str(root)
        if len(prefix) > 1:
            out = out.replace(prefix + "/", f"{shown}/" if shown else "").replace(prefix, shown or ".")
    return _ABS_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "/", out)
