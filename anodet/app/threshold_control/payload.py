"""What the browser's threshold control needs to answer any threshold without the server.

Built once per detector and label view (pure numpy, no Streamlit): every distinct test score
with the records and attacks scoring at or above it, the histogram bins, and the ROC and PR
curves. With those, a move of the handle is a lookup and a few divisions in the browser, and
the numbers it shows are exactly the ones :class:`anodet.evaluation.metrics.ThresholdCurve` gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from anodet.app.figures import ATTACK_COLOUR, NORMAL_COLOUR, THRESHOLD_COLOUR, HistogramBins
from anodet.evaluation.leaderboard import METRIC_LABELS, CurveSummary
from anodet.evaluation.metrics import METRIC_HELP, ThresholdCurve

TILES = ("precision", "recall", "f1", "f2", "accuracy", "fpr")
"""The metric tiles the control redraws on every move, in order."""

STATIC_PARTS = ("grid", "hist", "roc", "pr", "tiles", "colours", "n", "n_attacks", "label", "positive")
"""What does not change between reruns for one ``version``: sent once, then kept by the browser."""


def threshold_grid(curve: ThresholdCurve) -> pd.DataFrame:
    """Every distinct test score (ascending) with the records and attacks flagged at it.

    Row ``i`` answers the threshold ``score[i]``: records scoring ``>= score[i]`` are flagged.
    A last row just above the highest score flags nothing, so the handle can reach "no alerts".
    Any other threshold ``t`` gives the counts of the first row whose score is ``>= t``.
    """
    scores = curve.sorted_scores
    n = len(scores)
    starts = np.flatnonzero(np.r_[True, np.diff(scores) > 0]) if n else np.zeros(0, dtype=np.int64)
    top = np.nextafter(scores[-1], np.inf) if n else 0.0
    return pd.DataFrame({
        "score": np.r_[scores[starts], top].astype(np.float64),
        "flagged": np.r_[n - starts, 0].astype(np.int32),
        "attacks": np.r_[curve.attacks_at_or_above[starts], 0].astype(np.int32),
    })


def grid_position(grid: pd.DataFrame, threshold: float) -> int:
    """The grid row whose counts hold at ``threshold`` (the first score at or above it)."""
    return min(int(np.searchsorted(grid["score"].to_numpy(), threshold, side="left")), len(grid) - 1)


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64)]


def static_parts(name: str, label: str, view: str, curve: ThresholdCurve, bins: HistogramBins,
                 summary: CurveSummary, positive: str = "attack") -> dict[str, Any]:
    """What one detector's control needs under one label view, the same on every rerun.

    Built once per detector, view and store (``ui.get_control_static`` caches it for all
    sessions); ``version`` changes only when those change, so the browser rebuilds its static
    drawing only then. The grid is sent as Arrow, the rest as JSON. ``positive`` is what a label-1
    record is called in the control's text ("attack" on KDD, "anomaly" on a user's dataset).
    """
    grid = threshold_grid(curve)
    n = len(curve.sorted_scores)
    return {
        "version": f"{name}|{view}|{n}|{curve.n_attacks}|{float(grid['score'].iloc[0]):.17g}|"
                   f"{float(grid['score'].iloc[-1]):.17g}|{len(grid)}",
        "name": name, "label": label, "view": view, "positive": positive,
        "grid": grid,
        "n": n, "n_attacks": int(curve.n_attacks),
        "hist": {"edges": _floats(bins.edges), "normal": [int(v) for v in bins.normal],
                 "attack": [int(v) for v in bins.attack], "log_x": bool(bins.log_x)},
        "roc": {"x": _floats(summary.roc[0]), "y": _floats(summary.roc[1]), "auc": _or_none(summary.roc_auc)},
        "pr": {"x": _floats(summary.pr[0]), "y": _floats(summary.pr[1]), "auc": _or_none(summary.pr_auc),
               "base_rate": float(summary.base_rate)},
        "tiles": [{"key": k, "label": METRIC_LABELS[k], "help": METRIC_HELP[k]} for k in TILES],
        "colours": {"normal": NORMAL_COLOUR, "attack": ATTACK_COLOUR, "threshold": THRESHOLD_COLOUR},
    }


def control_payload(static: dict[str, Any], threshold: float, log_count: bool = False, compact: bool = False,
                    presets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``data=`` of one threshold control: :func:`static_parts` plus this rerun's choices.

    ``threshold`` is the server's current value, which the handle moves to whenever it differs
    from what the browser last knew (a preset, an import). ``compact`` draws the handle, read-out
    and tiles without the charts. ``presets`` are buttons (``{"key", "label", "value", "help"}``)
    that move the handle at once and send the value back; the one in force is marked in the browser.
    """
    return {**static, "threshold": float(threshold), "log_count": bool(log_count), "compact": bool(compact),
            "presets": [{**p, "value": float(p["value"])} for p in presets or []]}


def without_static_parts(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload for a browser that already holds this ``version``'s static parts (a few hundred bytes)."""
    return {k: v for k, v in payload.items() if k not in STATIC_PARTS}


def _or_none(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)
