"""``python -m anodet evaluate``: the leaderboard of a store on its dataset's test part, every label view.

One path for KDD Cup 99 and users' datasets: the dataset's declaration says its label views and
anomaly categories, :mod:`anodet.evaluation.leaderboard` computes the rows. Text, Markdown (as in
the README) or JSON (one object per detector and label view) for other tools.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np
import pandas as pd

from anodet.datasets import catalog
from anodet.datasets.model import Declaration, Splits
from anodet.evaluation.leaderboard import boards_on_test
from anodet.store.core import Store

COLUMNS = ["roc_auc", "pr_auc", "precision", "recall", "f1", "f2", "accuracy"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                        help="text (default), Markdown tables as in the README, or JSON: one object per detector and "
                             "label view")
    parser.add_argument("--markdown", action="store_true", help="the same as --format markdown")


def open_dataset(args: argparse.Namespace) -> tuple[Declaration, Store, Splits]:
    """The dataset ``--dataset`` names (KDD by default), its store with the dataset's external detectors
    (:func:`anodet.external.view.with_externals`), and its splits."""
    from anodet.external.view import with_externals

    if getattr(args, "dataset", None):
        from anodet.training.datasets import open_store

        declaration = catalog.get(args.dataset)
        return declaration, with_externals(open_store(args.dataset)), declaration.load_splits()
    from anodet.datasets.kdd import load_splits

    return catalog.get(catalog.KDD), with_externals(Store.open(args.store)), load_splits(args.data_source)


def records(board: pd.DataFrame, view: str) -> list[dict[str, Any]]:
    """JSON-ready rows: ``detector`` (the stored name) and ``label_view`` keys, then one key per column."""
    out = []
    for name, row in board.iterrows():
        item: dict[str, Any] = {"detector": name, "label_view": view, "name": row["detector"]}
        for key, value in row.items():
            if key == "detector":
                continue
            if isinstance(value, (bool, np.bool_)):
                item[key] = bool(value)
            elif isinstance(value, (int, np.integer)):
                item[key] = int(value)
            elif isinstance(value, (float, np.floating)):
                item[key] = None if math.isnan(value) else float(value)
            else:
                item[key] = value
        out.append(item)
    return out


def _cell(value: Any, digits: int = 4) -> str:
    return "–" if isinstance(value, float) and math.isnan(value) else f"{value:.{digits}f}"


def markdown(board: pd.DataFrame, view: str, declaration: Declaration, preset: str) -> str:
    """One view's leaderboard as a Markdown table."""
    categories = [c.removeprefix("detect_") for c in board if c.startswith("detect_")]
    cols = [c for c in COLUMNS if c in board] or ["threshold", "flagged"]
    head = ["detector", *cols, *(f"detected {c}" for c in categories)]
    lines = [f"**{declaration.title}, label view: {view}** (metrics at each detector's {preset} threshold on "
             "validation; the supervised ceiling, trained on labels, listed last in italics)", "",
             "| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for _, row in board.iterrows():
        name = f"*{row['detector']}*" if row["uses_labels"] else row["detector"]
        cells = [_cell(row[c]) if c != "flagged" else f"{row[c]:,}" for c in cols]
        lines.append("| " + " | ".join([name, *cells, *(_cell(row["detect_" + c], 3) for c in categories)]) + " |")
    return "\n".join(lines)


def text(board: pd.DataFrame, view: str, declaration: Declaration, splits: Splits, preset: str) -> str:
    """One view's leaderboard as an aligned text table."""
    categories = [c.removeprefix("detect_") for c in board if c.startswith("detect_")]
    cols = [c for c in COLUMNS if c in board] or ["threshold", "share_flagged"]
    header = f"{'detector':<44}" + "".join(f"{c:>10}" for c in cols) + "".join(f"{'det_' + c[:6]:>11}"
                                                                             for c in categories)
    title = (f"{declaration.title}, test split ({len(splits.test):,} records), label view: {view} "
             f"(thresholds: {preset} on validation)")
    lines = [title, header, "-" * len(header)]
    for _, row in board.iterrows():
        lines.append(f"{row['detector']:<44}" + "".join(f"{row[c]:>10.4f}" for c in cols)
                     + "".join(f"{row['detect_' + c]:>11.3f}" if not math.isnan(row["detect_" + c]) else f"{'-':>11}"
                               for c in categories))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    declaration, store, splits = open_dataset(args)
    fmt = "markdown" if args.markdown else args.format
    for name, why in getattr(store, "left_out", {}).items():
        print(f"note: the external detector {name} is left out: {why}.", file=sys.stderr)
    got = boards_on_test(declaration, store, splits, args.detectors)
    if fmt == "json":
        print(json.dumps([r for view, board in got.items() for r in records(board, view)], indent=1))
        return 0
    for view, board in got.items():
        print(markdown(board, view, declaration, store.default_preset) if fmt == "markdown"
              else text(board, view, declaration, splits, store.default_preset))
        print()
    return 0
