"""Streamlit-specific layout helpers: page CSS, table heights, and reading chart selection events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def customdata_pair(customdata: object) -> tuple[float, float]:
    """The first two values of a clicked point's ``customdata`` (a histogram bar's ``[low, high)``,
    a heat-map cell's ``[row, column]``).

    Streamlit 1.67 sends a point's list customdata as ``{"0": low, "1": high, ...}``; other
    versions send ``[low, high, ...]``. Anything else is a ValueError.
    """
    if isinstance(customdata, Mapping):
        values = [customdata.get("0", customdata.get(0)), customdata.get("1", customdata.get(1))]
    elif isinstance(customdata, Sequence | np.ndarray) and not isinstance(customdata, str):
        values = list(customdata[:2])
    else:
        values = []
    if len(values) != 2 or any(v is None or isinstance(v, str) for v in values):
        raise ValueError(f"not a clicked point's two values: {customdata!r}")
    return float(values[0]), float(values[1])


RESPONSIVE_CSS = """
/* Side-by-side panels become one column below 900 px; rows of metric tiles wrap instead of
   shrinking their numbers to "0.…". */
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"]) { flex-wrap: wrap; }
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has([data-testid="stMetric"]) { min-width: 8.5rem; }
[data-testid="stMetricValue"] > div { text-overflow: clip; }
@media (max-width: 900px) {
  [data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
  [data-testid="stHorizontalBlock"] > [data-testid="stColumn"] { flex: 1 1 100% !important; width: 100% !important; }
  [data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has(> div > div > [data-testid="stMetric"]) {
    flex: 1 1 8.5rem !important; width: auto !important; }
  [data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has(> div > div > [data-testid="stButton"]) {
    flex: 0 1 auto !important; width: auto !important; }
}
"""


"""Page CSS so every page reads at 1280 px and degrades to one column below ~900 px."""


def table_height(rows: int, row_height: int = 35) -> int:
    """Pixel height of a ``st.dataframe`` showing exactly ``rows`` rows and its header, no empty row."""
    return row_height * (rows + 1) + 3
