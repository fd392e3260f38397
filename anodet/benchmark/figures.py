"""Critical-difference diagrams (Demšar 2006) as a self-contained SVG or a plotly figure, from the same layout.

The axis runs from rank 1 (best, left) to k. Each method hangs from its average rank to a label,
the better half on the left, the rest on the right; thick bars join methods no test tells apart
(Nemenyi: average ranks within the critical difference; or Wilcoxon–Holm), and a bar the length
of the critical difference sits above the axis. Peers are drawn in grey italics, the per-dataset
choice in bold. Pure functions: the Streamlit page and the CLI draw the same thing.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

WIDTH = 1000
AXIS_Y = 70
ROW_H = 20
LABEL_W = 290
COLORS = {"family": "#1f3b73", "peer": "#7a7a7a", "choice": "#b3470b"}


@dataclass
class Layout:
    """Everything to draw, in pixel coordinates (y grows downwards)."""

    width: int
    height: int
    low: int
    high: int
    ticks: list[tuple[float, str]]
    lines: list[tuple[float, float, float, float, str, float]] = field(default_factory=list)  # x0 y0 x1 y1 colour width
    labels: list[tuple[float, float, str, str, str, str]] = field(default_factory=list)  # x y text anchor group rank
    title: str = ""


def _x(rank: float, low: int, high: int) -> float:
    span = max(high - low, 1)
    return LABEL_W + (rank - low) / span * (WIDTH - 2 * LABEL_W)


def layout(average_ranks: Mapping[str, float], cd: float | None = None, groups: Iterable[Iterable[str]] = (),
           kinds: Mapping[str, str] | None = None, names: Mapping[str, str] | None = None, title: str = "") -> Layout:
    """The diagram's layout: ``average_ranks`` (method → rank, 1 = best), ``cd`` (a bar; None: none), ``groups``
    (sets of methods joined by a bar), ``kinds`` (method → family/peer/choice), ``names`` (method → label)."""
    kinds, names = kinds or {}, names or {}
    ordered = sorted(average_ranks, key=lambda m: average_ranks[m])
    if not ordered:
        raise ValueError("a critical-difference diagram needs at least one method")
    low, high = 1, max(2, math.ceil(max(average_ranks.values())))
    bars = [sorted(g, key=lambda m: average_ranks[m]) for g in groups]
    bars_h = 8 + 6 * len(bars)
    half = math.ceil(len(ordered) / 2)
    left, right = ordered[:half], ordered[half:][::-1]
    height = AXIS_Y + bars_h + ROW_H * (max(len(left), len(right)) + 1) + 10
    out = Layout(WIDTH, height, low, high, [(_x(t, low, high), str(t)) for t in range(low, high + 1)], title=title)
    out.lines.append((_x(low, low, high), AXIS_Y, _x(high, low, high), AXIS_Y, "#000000", 1.2))
    for x, _ in out.ticks:
        out.lines.append((x, AXIS_Y - 5, x, AXIS_Y, "#000000", 1.0))
    if cd is not None and math.isfinite(cd):
        x0, x1 = _x(low, low, high), _x(min(low + cd, high + 0.0), low, high)
        out.lines.append((x0, AXIS_Y - 32, x1, AXIS_Y - 32, "#000000", 1.6))
        out.lines.extend([(x0, AXIS_Y - 36, x0, AXIS_Y - 28, "#000000", 1.0),
                          (x1, AXIS_Y - 36, x1, AXIS_Y - 28, "#000000", 1.0)])
        out.labels.append(((x0 + x1) / 2, AXIS_Y - 40, f"CD = {cd:.2f}", "middle", "", ""))
    for i, group in enumerate(bars):
        y = AXIS_Y + 8 + 6 * i
        out.lines.append((_x(average_ranks[group[0]], low, high) - 3, y, _x(average_ranks[group[-1]], low, high) + 3,
                          y, "#000000", 3.0))
    base = AXIS_Y + bars_h + ROW_H
    for side, methods in (("left", left), ("right", right)):
        for j, method in enumerate(methods):
            x, y = _x(average_ranks[method], low, high), base + j * ROW_H
            colour = COLORS.get(kinds.get(method, "family"), COLORS["family"])
            end = LABEL_W - 10 if side == "left" else WIDTH - LABEL_W + 10
            out.lines.extend([(x, AXIS_Y, x, y, colour, 1.0), (x, y, end, y, colour, 1.0)])
            text = f"{names.get(method, method)} ({average_ranks[method]:.2f})"
            out.labels.append((end + (-4 if side == "left" else 4), y + 4, text, "end" if side == "left" else "start",
                               kinds.get(method, "family"), f"{average_ranks[method]:.2f}"))
    return out


def svg(lay: Layout) -> str:
    """The layout as a self-contained SVG document (no script, no external reference)."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width}" height="{lay.height + 24}" '
             f'viewBox="0 0 {lay.width} {lay.height + 24}" font-family="Helvetica, Arial, sans-serif" '
             'font-size="12">', '<rect width="100%" height="100%" fill="#ffffff"/>']
    if lay.title:
        parts.append(f'<text x="{lay.width / 2:.1f}" y="16" text-anchor="middle" font-size="14" '
                     f'font-weight="bold">{html.escape(lay.title)}</text>')
    for x, label in lay.ticks:
        parts.append(f'<text x="{x:.1f}" y="{AXIS_Y - 9}" text-anchor="middle">{html.escape(label)}</text>')
    for x0, y0, x1, y1, colour, width in lay.lines:
        parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="{colour}" '
                     f'stroke-width="{width}"/>')
    for x, y, text, anchor, kind, _ in lay.labels:
        style = {"peer": ' font-style="italic"', "choice": ' font-weight="bold"'}.get(kind, "")
        colour = COLORS.get(kind, "#000000")
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}"{style}>'
                     f'{html.escape(text)}</text>')
    parts.append(f'<text x="{lay.width / 2:.1f}" y="{lay.height + 16}" text-anchor="middle" fill="#555555" '
                 'font-size="11">average rank (1 = best); bars join rows no test tells apart; grey italics: peers '
                 '(PyOD); bold: per-dataset choice</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def figure(lay: Layout) -> Any:
    """The layout as a plotly figure (same drawing as :func:`svg`)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for x0, y0, x1, y1, colour, width in lay.lines:
        fig.add_shape(type="line", x0=x0, y0=y0, x1=x1, y1=y1, line={"color": colour, "width": width})
    for x, label in lay.ticks:
        fig.add_annotation(x=x, y=AXIS_Y - 9, text=label, showarrow=False, yanchor="bottom")
    for x, y, text, anchor, kind, _ in lay.labels:
        shown = {"peer": f"<i>{html.escape(text)}</i>", "choice": f"<b>{html.escape(text)}</b>"}.get(
            kind, html.escape(text))
        fig.add_annotation(x=x, y=y - 4, text=shown, showarrow=False,
                           xanchor={"end": "right", "start": "left"}.get(anchor, "center"),
                           font={"color": COLORS.get(kind, "#000000"), "size": 12})
    fig.update_xaxes(visible=False, range=[0, lay.width])
    fig.update_yaxes(visible=False, range=[lay.height, 0])
    fig.update_layout(width=lay.width, height=lay.height + 30, margin={"l": 0, "r": 0, "t": 30, "b": 0},
                      plot_bgcolor="#ffffff", title={"text": lay.title, "x": 0.5}, showlegend=False)
    return fig


def cd_layout(summary: Any, test: str = "nemenyi", title: str | None = None) -> Layout:
    """The diagram of a :class:`~anodet.benchmark.summary.ProtocolSummary` (``test``: nemenyi or wilcoxon-holm)."""
    if test not in ("nemenyi", "wilcoxon-holm"):
        raise ValueError("test must be nemenyi or wilcoxon-holm")
    table = summary.table
    groups = summary.nemenyi_groups if test == "nemenyi" else summary.wilcoxon_groups
    heading = title if title is not None else (
        f"{summary.protocol}: {summary.datasets} datasets, {'Nemenyi' if test == 'nemenyi' else 'Wilcoxon–Holm'} "
        f"at α = {summary.alpha}")
    return layout(summary.average_ranks, summary.cd if test == "nemenyi" else None, groups,
                  dict(zip(table["detector"], table["group"], strict=True)),
                  dict(zip(table["detector"], table["display"], strict=True)), heading)


def auc_heatmap(matrix: Any, kinds: Mapping[str, str] | None = None, names: Mapping[str, str] | None = None,
                title: str = "ROC AUC per dataset (mean over seeds)") -> Any:
    """A plotly heatmap of a datasets × detectors matrix (:func:`anodet.benchmark.summary.per_dataset`); peers'
    columns in italics, the per-dataset choice's in bold."""
    import plotly.graph_objects as go

    kinds, names = kinds or {}, names or {}
    labels = []
    for column in matrix.columns:
        text = html.escape(str(names.get(column, column)))
        labels.append({"peer": f"<i>{text}</i>", "choice": f"<b>{text}</b>"}.get(kinds.get(column, ""), text))
    values = matrix.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(z=values, x=labels, y=[str(i) for i in matrix.index], zmin=0.0, zmax=1.0,
                               colorscale="RdYlGn", text=[[f"{v:.3f}" for v in row] for row in values],
                               texttemplate="%{text}", hovertemplate="%{y} · %{x}: %{z:.4f}<extra></extra>"))
    fig.update_layout(title=title, height=max(300, 22 * len(matrix.index) + 160), margin={"l": 140, "b": 140})
    return fig
