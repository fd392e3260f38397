"""Plotly figure builders for the dashboard: pure functions of arrays, testable without Streamlit.

Figures are built from plain dicts (not ``add_trace``/``update_layout`` calls) and without
plotly's per-property validation: that is several times faster, and a slider move redraws a
histogram, two curves and a confusion matrix within the server-side budget of a rerun. The
tests validate every builder's output instead. Normal records are always drawn in :data:`NORMAL_COLOUR`
and attacks in :data:`ATTACK_COLOUR`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

NORMAL_COLOUR = "#1f77b4"
ATTACK_COLOUR = "#d62728"
"""The two colours for normal and attack records, everywhere."""

THRESHOLD_COLOUR = "#222222"
OPERATING_POINT = {"size": 12, "color": THRESHOLD_COLOUR, "symbol": "x", "line": {"width": 2}}
_MARGIN = {"l": 60, "r": 20, "t": 50, "b": 50}
LOG_FPR_TICKS = {"tickvals": [0.0001, 0.001, 0.01, 0.1, 1.0], "ticktext": ["0.01%", "0.1%", "1%", "10%", "100%"]}
"""Five ticks on a log false-positive-rate axis: readable at any panel width."""
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#393b79", "#637939")


def _figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain dicts, without plotly's per-property validation.

    Validation would double the cost of a slider move; ``tests/test_figures.py`` validates
    every builder's output instead.
    """
    base = {"margin": _MARGIN, "legend": {"orientation": "h", "y": -0.2}}
    return go.Figure(data=[_plain_trace(t) for t in data], layout={**base, **layout}, _validate=False)


def plain(text: object) -> str:
    """Text as plotly shows it literally: it renders a subset of HTML (links, styled spans) in labels, names and
    hover text, and a column name, a category or a label value is the user's, so its ``<`` and ``&`` are escaped."""
    return html.escape(str(text), quote=False)


def _plain_values(values: Any) -> Any:
    if isinstance(values, str):
        return plain(values)
    if isinstance(values, (list, tuple)) or (isinstance(values, np.ndarray) and values.dtype.kind in "OUS"):
        return [_plain_values(v) for v in values]
    return values


def _plain_trace(trace: dict) -> dict:
    """A trace whose category labels, names and text are shown as typed (never as markup)."""
    out = dict(trace)
    for key in ("x", "y", "text", "name", "labels"):
        if key in out:
            out[key] = _plain_values(out[key])
    return out


def _title(text: str) -> dict:
    return {"text": plain(text), "x": 0.0, "xanchor": "left"}


@dataclass(frozen=True)
class HistogramBins:
    """Score histogram of normal and attack records, binned once per detector and label view.

    With ``log_x`` the edges are spaced evenly in ``log10(score)`` (heavy-tailed, positive
    scores); otherwise evenly in the score itself.
    """

    edges: np.ndarray
    normal: np.ndarray
    attack: np.ndarray
    log_x: bool


def histogram_bins(scores: np.ndarray, y: np.ndarray, bins: int = 60) -> HistogramBins:
    """Bin ``scores`` for normal (``y == 0``) and attack (``y == 1``) records.

    Positive scores spanning more than two decades get log-spaced bins, so that the bulk of
    normal records near zero and the far tail of attacks are both visible.
    """
    scores = np.asarray(scores, dtype=float)
    y = np.asarray(y)
    lo, hi = float(scores.min()), float(scores.max())
    log_x = lo > 0 and hi / lo > 100
    if log_x:
        edges = np.geomspace(lo, hi, bins + 1)
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    normal, _ = np.histogram(scores[y == 0], bins=edges)
    attack, _ = np.histogram(scores[y == 1], bins=edges)
    return HistogramBins(edges, normal, attack, log_x)


def _log_ticks(lo: float, hi: float) -> dict:
    """Tick marks at powers of ten, labelled with the raw score (the axis is in log10 units)."""
    powers = np.arange(np.floor(lo), np.ceil(hi) + 1)
    return {"tickvals": powers.tolist(), "ticktext": [f"{10.0 ** p:g}" for p in powers]}


def score_histogram(bins: HistogramBins, threshold: float | None = None, log_count: bool = False,
                    title: str = "Score distribution") -> go.Figure:
    """Normal vs attack score histogram with the threshold as a vertical line.

    Each bar's ``customdata`` holds its bin's raw ``[low, high)`` edges, so a selected bar
    can be mapped back to records.
    """
    edges = np.log10(bins.edges) if bins.log_x else bins.edges
    centres = (edges[:-1] + edges[1:]) / 2
    widths = np.diff(edges)
    custom = np.column_stack([bins.edges[:-1], bins.edges[1:]])
    hover = "score %{customdata[0]:.4g} – %{customdata[1]:.4g}<br>%{y} records<extra>%{fullData.name}</extra>"
    data = [
        {"type": "bar", "x": centres, "y": counts, "width": widths, "name": name, "customdata": custom,
         "marker": {"color": colour, "line": {"width": 0}}, "opacity": 0.65, "hovertemplate": hover}
        for name, counts, colour in (("normal", bins.normal, NORMAL_COLOUR), ("attack", bins.attack, ATTACK_COLOUR))
    ]
    xaxis: dict[str, Any] = {"title": {"text": "anomaly score" + (" (log scale)" if bins.log_x else "")}}
    if bins.log_x:
        xaxis.update(_log_ticks(edges[0], edges[-1]))
        xaxis["range"] = [float(edges[0]), float(edges[-1])]
    layout = {
        "title": _title(title), "barmode": "overlay", "bargap": 0, "xaxis": xaxis,
        "yaxis": {"title": {"text": "records" + (" (log scale)" if log_count else "")},
                  "type": "log" if log_count else "linear"},
        "height": 340,
    }
    if threshold is not None and (threshold > 0 or not bins.log_x):
        x = float(np.log10(threshold)) if bins.log_x else float(threshold)
        layout["shapes"] = [{"type": "line", "x0": x, "x1": x, "y0": 0, "y1": 1, "yref": "paper",
                             "line": {"color": THRESHOLD_COLOUR, "width": 2, "dash": "dash"}}]
        layout["annotations"] = [{"x": x, "y": 1, "yref": "paper", "text": f"threshold {threshold:.4g}",
                                  "showarrow": False, "xanchor": "left", "yanchor": "bottom"}]
    return _figure(data, layout)


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], aucs: dict[str, float] | None = None,
               points: dict[str, tuple[float, float]] | None = None, title: str = "ROC curves",
               log_fpr: bool = False, min_fpr: float = 1e-3, shown: set[str] | None = None,
               target_fpr: float | None = None) -> go.Figure:
    """ROC curves (false-positive rate vs detection rate), overlaid, each with its operating point.

    ``log_fpr`` puts the false-positive rate on a log axis from ``min_fpr`` (the split's resolution) to 100 %:
    good detectors all hug the top-left corner, and the low-FPR region is where they differ. ``shown``: the
    curves drawn at first (the others are one legend click away); ``target_fpr``: a line at the operating point.
    """
    single = len(curves) == 1
    data: list[dict] = [] if log_fpr else [
        {"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "name": "chance",
         "line": {"color": "#bbbbbb", "dash": "dot"}, "hoverinfo": "skip", "showlegend": False}]
    for i, (name, (fpr, tpr)) in enumerate(curves.items()):
        colour = ATTACK_COLOUR if single else _PALETTE[i % len(_PALETTE)]
        label = f"{name} (AUC {aucs[name]:.3f})" if aucs and name in aucs else name
        visible: bool | str = True if shown is None or name in shown else "legendonly"
        x = np.maximum(np.asarray(fpr, float), min_fpr / 2) if log_fpr else fpr  # FPR 0 drawn at the axis' edge
        data.append({"type": "scatter", "x": x, "y": tpr, "mode": "lines", "name": label, "visible": visible,
                     "legendgroup": name, "line": {"color": colour, "width": 2},
                     "hovertemplate": "FPR %{x:.3%}<br>detection rate %{y:.3f}<extra>" + name + "</extra>"})
        if points and name in points:
            px, py = points[name]
            data.append({"type": "scatter", "x": [max(px, min_fpr / 2) if log_fpr else px], "y": [py],
                         "mode": "markers", "legendgroup": name, "visible": visible,
                         "showlegend": False, "name": f"{name} at threshold",
                         "marker": {**OPERATING_POINT, "color": colour if not single else THRESHOLD_COLOUR},
                         "hovertemplate": f"at threshold: FPR {px:.3%}, detection rate "
                                          f"%{{y:.3f}}<extra>{name}</extra>"})
    xaxis: dict[str, Any] = {"title": {"text": "false-positive rate" + (" (log scale)" if log_fpr else "")},
                             "range": [0, 1]}
    if log_fpr:
        low = float(np.floor(np.log10(min_fpr / 2) * 4) / 4)
        xaxis.update({"type": "log", "range": [low, 0], **LOG_FPR_TICKS})
    layout = {"title": _title(title), "height": 340, "xaxis": xaxis,
              "yaxis": {"title": {"text": "detection rate (recall)"}, "range": [0, 1.02]}}
    if target_fpr:
        layout["shapes"] = [{"type": "line", "x0": target_fpr, "x1": target_fpr, "y0": 0, "y1": 1, "yref": "paper",
                             "line": {"color": THRESHOLD_COLOUR, "dash": "dash", "width": 1.5}}]
    if single:
        layout["showlegend"] = False
    else:
        layout["height"] = 560
        layout["legend"] = {"orientation": "h", "y": -0.18, "yanchor": "top", "font": {"size": 11}}
    return _figure(data, layout)


def curves_figure(roc: tuple[np.ndarray, np.ndarray], pr: tuple[np.ndarray, np.ndarray],
                  roc_point: tuple[float, float], pr_point: tuple[float, float] | None,
                  roc_auc: float, ap: float, base_rate: float) -> go.Figure:
    """ROC (left) and precision-recall (right) curves of one detector, × at the current threshold.

    One figure with two panels rather than two charts: a slider move then redraws one chart
    less in the browser.
    """
    hover_roc = "FPR %{x:.3f}<br>detection rate %{y:.3f}<extra></extra>"
    hover_pr = "recall %{x:.3f}<br>precision %{y:.3f}<extra></extra>"
    data: list[dict] = [
        {"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "line": {"color": "#bbbbbb", "dash": "dot"},
         "hoverinfo": "skip", "name": "chance"},
        {"type": "scatter", "x": roc[0], "y": roc[1], "mode": "lines", "name": "ROC",
         "line": {"color": ATTACK_COLOUR, "width": 2}, "hovertemplate": hover_roc},
        {"type": "scatter", "x": [roc_point[0]], "y": [roc_point[1]], "mode": "markers", "name": "ROC at threshold",
         "marker": OPERATING_POINT, "hovertemplate": "at threshold: " + hover_roc},
        {"type": "scatter", "x": [0, 1], "y": [base_rate, base_rate], "mode": "lines", "xaxis": "x2", "yaxis": "y2",
         "line": {"color": "#bbbbbb", "dash": "dot"}, "hoverinfo": "skip", "name": "chance"},
        {"type": "scatter", "x": pr[0], "y": pr[1], "mode": "lines", "name": "PR", "xaxis": "x2", "yaxis": "y2",
         "line": {"color": ATTACK_COLOUR, "width": 2}, "hovertemplate": hover_pr},
    ]
    if pr_point is not None:
        data.append({"type": "scatter", "x": [pr_point[0]], "y": [pr_point[1]], "mode": "markers", "xaxis": "x2",
                     "yaxis": "y2", "name": "PR at threshold", "marker": OPERATING_POINT,
                     "hovertemplate": "at threshold: " + hover_pr})
    panel_title = {"xref": "paper", "yref": "paper", "y": 1.0, "yanchor": "bottom", "showarrow": False,
                   "font": {"size": 13}}
    return _figure(data, {
        "title": _title("ROC and precision-recall curves (× = current threshold)"), "height": 360,
        "showlegend": False, "margin": {**_MARGIN, "t": 70},
        "xaxis": {"domain": [0, 0.44], "range": [0, 1], "title": {"text": "false-positive rate"}},
        "yaxis": {"range": [0, 1.02], "title": {"text": "detection rate (recall)"}},
        "xaxis2": {"domain": [0.56, 1], "range": [0, 1], "anchor": "y2", "title": {"text": "recall"}},
        "yaxis2": {"range": [0, 1.02], "anchor": "x2", "title": {"text": "precision"}},
        "annotations": [
            {**panel_title, "x": 0.0, "xanchor": "left", "text": f"ROC, AUC {roc_auc:.3f}"},
            {**panel_title, "x": 0.56, "xanchor": "left",
             "text": f"Precision-recall, AP {ap:.3f} (dotted: {base_rate:.0%} attacks)"},
        ],
    })


def rate_heatmap(detectors: Sequence[str], categories: Sequence[str], rates: np.ndarray,
                 title: str = "Detection rate per attack category", positive: str = "attack",
                 counts: Sequence[int] | None = None) -> go.Figure:
    """Share of each category's records flagged (rows detectors, columns categories), 0–1; with ``counts`` (the
    records of each category), the hover says how many were flagged and the rate's 95 % Wilson interval."""
    from anodet.evaluation.intervals import wilson

    rates = np.asarray(rates, dtype=float)
    text = [[("–" if np.isnan(v) else f"{v:.0%}") for v in row] for row in rates]
    data: dict[str, Any] = {"type": "heatmap", "z": rates, "x": list(categories), "y": list(detectors), "text": text,
                            "texttemplate": "%{text}", "zmin": 0, "zmax": 1,
                            "colorscale": [[0, "#fff5f0"], [1, ATTACK_COLOUR]],
                            "colorbar": {"title": {"text": "flagged"}, "tickformat": ".0%"},
                            "hovertemplate": "%{y}<br>%{x}: %{text} flagged<extra></extra>"}
    if counts is not None:
        n = np.broadcast_to(np.asarray(counts, dtype=float), rates.shape)
        k = np.round(np.nan_to_num(rates) * n)
        low, high = wilson(k, n)
        data["customdata"] = np.dstack([k, n, np.nan_to_num(low), np.nan_to_num(high)])
        data["hovertemplate"] = ("%{y}<br>%{x}: %{customdata[0]:,.0f} of %{customdata[1]:,.0f} flagged (%{text}; "
                                 "95 % CI %{customdata[2]:.0%} – %{customdata[3]:.0%})<extra></extra>")
    return _figure([data], {
        "title": _title(title), "height": 120 + 32 * len(detectors),
        "xaxis": {"title": {"text": f"{positive} category (records in the test split)"}, "side": "bottom"},
        "yaxis": {"autorange": "reversed"},
    })


def agreement_heatmap(detectors: Sequence[str], common: np.ndarray,
                      title: str = "Which detectors agree") -> go.Figure:
    """Share of the row detector's flagged records that the column detector flags too.

    Colour is that share, so one detector flagging many records does not flatten the scale for
    the others as raw counts would, and the scale starts at the lowest share between two
    different detectors (the diagonal is always 100%); the counts are in the hover (the
    diagonal: how many each one flags). Plotly cannot select a heat-map cell, so an invisible marker sits on each
    one: clicking a cell selects its marker, whose ``customdata`` starts ``[row index, column index]`` and so names
    the pair.
    """
    common = np.asarray(common, dtype=np.float64)
    totals = np.diag(common)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals[:, None] > 0, common / np.where(totals[:, None] > 0, totals[:, None], 1.0), np.nan)
    n = len(detectors)
    text = [[("–" if np.isnan(v) else f"{v:.0%}") for v in row] for row in shares]
    counts = [[f"{int(c):,}" for c in row] for row in common]
    off_diagonal = shares[~np.eye(n, dtype=bool)] if n > 1 else np.array([0.0])
    low = float(np.nanmin(off_diagonal)) if np.isfinite(off_diagonal).any() else 0.0
    zmin = min(np.floor(low * 10) / 10, 0.9)  # the colour scale spans the pairs, not the trivial 100% diagonal
    custom = [[[i, j, counts[i][j], f"{int(totals[i]):,}"] for j in range(n)] for i in range(n)]
    data = [{"type": "heatmap", "z": shares, "x": list(detectors), "y": list(detectors), "text": text,
             "customdata": custom, "texttemplate": "%{text}", "zmin": zmin, "zmax": 1, "xgap": 1, "ygap": 1,
             "colorscale": [[0, "#f7fbff"], [1, "#2171b5"]],
             "colorbar": {"title": {"text": "share"}, "tickformat": ".0%"}, "hoverinfo": "skip"}]
    rows, columns = np.divmod(np.arange(n * n), n)
    invisible = {"opacity": 0}
    data.append({"type": "scatter", "mode": "markers", "showlegend": False,
                 "x": [detectors[j] for j in columns], "y": [detectors[i] for i in rows],
                 "customdata": [custom[i][j] for i, j in zip(rows, columns, strict=True)],
                 "text": [text[i][j] for i, j in zip(rows, columns, strict=True)],
                 "marker": {"symbol": "square", "size": 30, "opacity": 0},
                 "selected": {"marker": invisible}, "unselected": {"marker": invisible},
                 "hovertemplate": ("%{customdata[2]} of the %{customdata[3]} records %{y} flags are flagged by %{x} "
                                   "too (%{text})<extra></extra>")})
    return _figure(data, {
        "title": _title(title), "height": 120 + 34 * n,
        # the cells' extent, fixed: the markers would otherwise pad the axes and shift the cells under the clicks
        "xaxis": {"title": {"text": "…also flagged by this detector"}, "tickangle": -35, "range": [-0.5, n - 0.5]},
        "yaxis": {"title": {"text": "records flagged by this detector…"}, "range": [n - 0.5, -0.5]},
    })


def pair_curves_figure(summaries: dict[str, tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
                       aucs: dict[str, tuple[float, float]],
                       points: dict[str, tuple[tuple[float, float], tuple[float, float] | None]],
                       base_rate: float) -> go.Figure:
    """ROC (left) and precision-recall (right) curves of two (or a few) detectors, overlaid.

    ``summaries[name] = (roc, pr)``, ``aucs[name] = (roc_auc, pr_auc)`` and
    ``points[name] = (roc point, pr point or None)`` at each detector's threshold.
    """
    data: list[dict] = [
        {"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "line": {"color": "#bbbbbb", "dash": "dot"},
         "hoverinfo": "skip", "showlegend": False},
        {"type": "scatter", "x": [0, 1], "y": [base_rate, base_rate], "mode": "lines", "xaxis": "x2", "yaxis": "y2",
         "line": {"color": "#bbbbbb", "dash": "dot"}, "hoverinfo": "skip", "showlegend": False},
    ]
    for i, (name, (roc, pr)) in enumerate(summaries.items()):
        colour = _PALETTE[i % len(_PALETTE)]
        roc_auc, ap = aucs[name]
        data.append({"type": "scatter", "x": roc[0], "y": roc[1], "mode": "lines", "legendgroup": name,
                     "name": f"{name} (ROC AUC {roc_auc:.3f}, AP {ap:.3f})", "line": {"color": colour, "width": 2},
                     "hovertemplate": "FPR %{x:.3f}<br>detection rate %{y:.3f}<extra>" + name + "</extra>"})
        data.append({"type": "scatter", "x": pr[0], "y": pr[1], "mode": "lines", "legendgroup": name,
                     "showlegend": False, "xaxis": "x2", "yaxis": "y2", "line": {"color": colour, "width": 2},
                     "hovertemplate": "recall %{x:.3f}<br>precision %{y:.3f}<extra>" + name + "</extra>"})
        roc_point, pr_point = points[name]
        data.append({"type": "scatter", "x": [roc_point[0]], "y": [roc_point[1]], "mode": "markers",
                     "legendgroup": name, "showlegend": False, "marker": {**OPERATING_POINT, "color": colour},
                     "hovertemplate": "at threshold: FPR %{x:.3f}, detection rate %{y:.3f}<extra>" + name + "</extra>"})
        if pr_point is not None:
            data.append({"type": "scatter", "x": [pr_point[0]], "y": [pr_point[1]], "mode": "markers",
                         "xaxis": "x2", "yaxis": "y2", "legendgroup": name, "showlegend": False,
                         "marker": {**OPERATING_POINT, "color": colour},
                         "hovertemplate": "at threshold: recall %{x:.3f}, precision %{y:.3f}<extra>" + name
                                          + "</extra>"})
    return _figure(data, {
        "title": _title("ROC and precision-recall curves of the pair (× = current thresholds)"), "height": 400,
        "legend": {"orientation": "h", "y": -0.22, "yanchor": "top"},
        "xaxis": {"domain": [0, 0.44], "type": "log", "range": [-3, 0], **LOG_FPR_TICKS,
                  "title": {"text": "false-positive rate (log scale)"}},
        "yaxis": {"range": [0, 1.02], "title": {"text": "detection rate (recall)"}},
        "xaxis2": {"domain": [0.56, 1], "range": [0, 1], "anchor": "y2", "title": {"text": "recall"}},
        "yaxis2": {"range": [0, 1.02], "anchor": "x2", "title": {"text": "precision"}},
    })


def feature_percentile_figure(features: Sequence[str], percentiles: np.ndarray, values: np.ndarray,
                              title: str = "Feature values against normal training records") -> go.Figure:
    """Where each of a record's feature values falls among normal training records (percentile).

    Bars far from 50 (in either direction) mark values unusual for normal traffic.
    """
    percentiles = np.asarray(percentiles, dtype=float)
    extreme = np.abs(percentiles - 50) >= 49
    colours = [ATTACK_COLOUR if e else NORMAL_COLOUR for e in extreme]
    custom = np.asarray(values, dtype=float)
    data = [{"type": "bar", "orientation": "h", "x": percentiles, "y": list(features), "customdata": custom,
             "marker": {"color": colours}, "name": "percentile",
             "text": [f"{v:.4g}" for v in custom], "textposition": "outside",
             "hovertemplate": "%{y} = %{customdata:.4g}<br>percentile among normals: %{x:.1f}<extra></extra>"}]
    return _figure(data, {
        "title": _title(title), "height": 80 + 24 * len(features),
        "xaxis": {"title": {"text": "percentile among normal training records"},
                  "range": [0, 112]},
        "yaxis": {"autorange": "reversed"}, "showlegend": False,
        "shapes": [{"type": "line", "x0": 50, "x1": 50, "y0": 0, "y1": 1, "yref": "paper",
                    "line": {"color": "#999999", "dash": "dot"}}],
    })


def feature_contribution_figure(features: Sequence[str], contributions: np.ndarray, detector: str) -> go.Figure:
    """Each feature's contribution to a detector's score for one record, largest first
    (signed: negative pulls it down)."""
    contributions = np.asarray(contributions, dtype=float)
    order = np.argsort(-np.abs(contributions))
    share = contributions / (np.abs(contributions).sum() or 1.0)
    data = [{"type": "bar", "orientation": "h", "x": contributions[order], "y": [features[i] for i in order],
             "customdata": share[order], "marker": {"color": ATTACK_COLOUR},
             "hovertemplate": "%{y}: %{x:.4g} (%{customdata:.0%} of all contributions)<extra></extra>"}]
    return _figure(data, {
        "title": _title(f"What drives the {detector} score"), "height": 80 + 24 * len(features),
        "xaxis": {"title": {"text": "contribution to the score"}},
        "yaxis": {"autorange": "reversed"}, "showlegend": False,
    })


def unlabelled_histogram(scores: np.ndarray, threshold: float, title: str, bins: int = 60) -> go.Figure:
    """Histogram of scores without labels (one neutral colour), the threshold as a dashed line."""
    scores = np.asarray(scores, dtype=float)
    lo, hi = float(scores.min()), float(scores.max())
    counts, edges = np.histogram(scores, bins=np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1))
    fig = go.Figure(
        data=[{"type": "bar", "x": (edges[:-1] + edges[1:]) / 2, "y": counts, "width": np.diff(edges),
               "name": "records (no labels)", "marker": {"color": "#7f7f7f", "line": {"width": 0}},
               "hovertemplate": "score %{x:.4g}<br>%{y} records<extra></extra>"}],
        layout={"title": {"text": title, "x": 0.0, "xanchor": "left"}, "bargap": 0, "height": 340,
                "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
                "xaxis": {"title": {"text": "anomaly score"}},
                "yaxis": {"title": {"text": "records (log scale)"}, "type": "log"},
                "shapes": [{"type": "line", "x0": threshold, "x1": threshold, "y0": 0, "y1": 1, "yref": "paper",
                            "line": {"color": "#222222", "width": 2, "dash": "dash"}}],
                "annotations": [{"x": threshold, "y": 1, "yref": "paper", "text": f"threshold {threshold:.4g}",
                                 "showarrow": False, "xanchor": "left", "yanchor": "bottom"}]})
    return fig


def live_score_figure(x: np.ndarray, scores: np.ndarray, is_attack: np.ndarray, threshold: float,
                      x_title: str) -> go.Figure:
    """Scores of the latest records against the threshold, coloured by what they really were (Live monitor)."""
    fig = go.Figure()
    for mask, name, colour in ((~is_attack, "normal", NORMAL_COLOUR), (is_attack, "attack", ATTACK_COLOUR)):
        fig.add_trace(go.Scattergl(x=x[mask], y=scores[mask], mode="markers", name=name,
                                   marker={"color": colour, "size": 5, "opacity": 0.7}))
    fig.add_hline(y=threshold, line={"color": "#444", "dash": "dash"},
                  annotation_text=f"threshold {threshold:.4g}", annotation_position="top left")
    positive = len(scores) and np.all(np.asarray(scores) > 0) and threshold > 0
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title=x_title,
                      yaxis_title="score" + (" (log)" if positive else ""), legend={"orientation": "h", "y": 1.12},
                      yaxis_type="log" if positive else "linear", uirevision="live")
    return fig


def live_rate_figure(t: np.ndarray, rate: np.ndarray, x_title: str) -> go.Figure:
    """The anomaly rate over time (Live monitor)."""
    fig = go.Figure(go.Scatter(x=t, y=np.asarray(rate) * 100, mode="lines+markers", line={"color": ATTACK_COLOUR},
                               marker={"size": 4}, name="anomaly rate"))
    fig.update_layout(height=240, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis_title=x_title,
                      yaxis_title="flagged (%)", yaxis_rangemode="tozero", uirevision="live")
    return fig
