"""``python -m anodet evaluate``: the leaderboard of a store on its dataset's test part, every label view.

One path for KDD Cup 99 and users' datasets: the dataset's declaration says its label views and
anomaly categories, :mod:`anodet.evaluation.boards` computes the rows (scores from the dashboard's
score cache). Every ranking number comes with its 95 % interval and ties with the best are marked.
``--fpr``, ``--budget`` or ``--cost`` add each detector at its validation-chosen threshold for that
operating point and rank there. Text, Markdown (as in the README) or JSON (one object per detector
and label view) for other tools.
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
from anodet.evaluation import boards, comparison
from anodet.evaluation.boards import ViewBoard
from anodet.evaluation.operating import OperatingPoint, OperatingPointError, percent
from anodet.store.core import Store

COLUMNS = ["roc_auc", "pr_auc", "precision", "recall", "f1", "f2", "accuracy"]
RECORDS_PER_DAY = 500_000.0
TIE_MARK = "="


def add_point_arguments(parser: argparse.ArgumentParser, presets: bool = False) -> None:
    """The operating-point options ``evaluate`` and ``report`` share."""
    group = parser.add_mutually_exclusive_group(required=presets)
    group.add_argument("--fpr", metavar="X", help="a target false-positive rate: a fraction (0.0001) or a percentage "
                                                  "(0.01%%); each detector's threshold is chosen on the validation "
                                                  "split's normal records")
    group.add_argument("--budget", metavar="ALERTS/RECORDS",
                       help="an alert budget: ALERTS a day on RECORDS a day of normal traffic, e.g. 50/500000 "
                            "(a false-positive rate of ALERTS / (RECORDS × (1 − attack share)))")
    group.add_argument("--cost", type=str, metavar="RATIO",
                       help="a missed attack costs RATIO false alarms: each detector's threshold of least expected "
                            "cost on validation")
    if presets:
        group.add_argument("--preset", metavar="NAME",
                           help="a validation-chosen preset threshold: best_f1, best_accuracy, mean_3sigma, "
                                "target_fpr or contamination")
    parser.add_argument("--attack-share", metavar="S",
                        help="with --budget: the expected share of attacks among the records a day (a fraction or "
                             "a percentage; default 0)")
    parser.add_argument("--records-per-day", metavar="N",
                        help=f"records a day, for the expected alerts a day (default {RECORDS_PER_DAY:,.0f}; "
                             "--budget gives its own)")
    parser.add_argument("--resamples", type=int, default=comparison.RESAMPLES, metavar="N",
                        help=f"bootstrap resamples behind the PR AUC and partial AUC intervals (default "
                             f"{comparison.RESAMPLES:,})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples (default 0)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                        help="text (default), Markdown tables as in the README, or JSON: one object per detector and "
                             "label view")
    parser.add_argument("--markdown", action="store_true", help="the same as --format markdown")
    add_point_arguments(parser)


def rate(text: str, what: str) -> float:
    """A rate given as a fraction (``0.0001``) or a percentage (``0.01%``)."""
    raw = str(text).strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        raise OperatingPointError(f"{what} {text!r} is not a rate: give a fraction such as 0.0001 or a percentage "
                                  "such as 0.01%.") from None
    value = value / 100 if raw.endswith("%") else value
    if not (math.isfinite(value) and 0 <= value <= 1):
        hint = f" (for a percentage write {raw}%)" if not raw.endswith("%") and 1 < value <= 100 else ""
        raise OperatingPointError(f"{what} must be from 0 to 1 (0 % to 100 %), not {raw}{hint}.")
    return value


def _positive(text: str, what: str) -> float:
    try:
        value = float(str(text).replace(",", "").replace("_", ""))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise OperatingPointError(f"{what} must be a positive number, not {text!r}.")
    return value


def point_from_args(args: argparse.Namespace) -> OperatingPoint | None:
    """The operating point the options name (None for none); an OperatingPointError in one sentence."""
    if getattr(args, "resamples", 0) < 0:
        raise OperatingPointError(f"--resamples must be 0 or more, not {args.resamples}.")
    share = getattr(args, "attack_share", None)
    per_day = getattr(args, "records_per_day", None)
    if share is not None and not getattr(args, "budget", None):
        raise OperatingPointError("--attack-share goes with --budget (it says how many of the records a day are "
                                  "attacks); leave it out or give --budget ALERTS/RECORDS.")
    if per_day is not None and getattr(args, "budget", None):
        raise OperatingPointError("--budget ALERTS/RECORDS already says the records a day; leave out "
                                  "--records-per-day.")
    records = _positive(per_day, "--records-per-day") if per_day is not None else RECORDS_PER_DAY
    if getattr(args, "fpr", None) is not None:
        return OperatingPoint("fpr", fpr=rate(args.fpr, "--fpr"), records_per_day=records)
    if getattr(args, "budget", None):
        return OperatingPoint.parse_budget(args.budget, rate(share, "--attack-share") if share is not None else 0.0)
    if getattr(args, "cost", None) is not None:
        return OperatingPoint("cost", cost_ratio=_positive(args.cost, "--cost"), records_per_day=records)
    if getattr(args, "preset", None):
        return OperatingPoint("preset", preset=args.preset, records_per_day=records)
    return None


def open_dataset(args: argparse.Namespace) -> tuple[Declaration, Store, Splits]:
    """The dataset ``--dataset`` names (KDD by default), its store with the dataset's external detectors
    (:func:`anodet.external.view.with_externals`), and its splits; detector names without ``@`` are the dataset's
    own (``pca`` means ``pca@NAME``)."""
    from anodet.external.view import with_externals

    if getattr(args, "dataset", None):
        from anodet.commands.score import qualify_names
        from anodet.training.datasets import open_store

        if getattr(args, "store", None):
            raise ValueError("--dataset names the store (data/datasets/NAME/store); leave out --store.")
        declaration = catalog.get(args.dataset)
        qualify_names(args)
        return declaration, with_externals(open_store(args.dataset)), declaration.load_splits()
    from anodet.datasets.kdd import load_splits

    return catalog.get(catalog.KDD), with_externals(Store.open(args.store)), load_splits(args.data_source)


def _json_value(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


def records(board: pd.DataFrame, view: str) -> list[dict[str, Any]]:
    """JSON-ready rows, best first: ``detector`` (the stored name), ``label_view``, ``rank`` and ``name`` (the
    display name), then one key per column."""
    out = []
    for rank, (name, row) in enumerate(board.iterrows(), start=1):
        item: dict[str, Any] = {"detector": name, "label_view": view, "rank": rank, "name": row["detector"]}
        item.update({str(k): _json_value(v) for k, v in row.items() if k != "detector"})
        out.append(item)
    return out


def _num(value: Any, digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _ci(row: pd.Series, metric: str, estimate: str | None = None, tie: str | None = None, digits: int = 4) -> str:
    """``0.9715 [0.9690, 0.9738] =``: an estimate, its interval (when computed) and the tie mark."""
    value = float(row[estimate or metric])
    if f"{metric}_ci_low" in row:
        text = comparison.interval_text(value, float(row[f"{metric}_ci_low"]), float(row[f"{metric}_ci_high"]),
                                        digits)
    else:
        text = _num(value, digits)
    return text + (f" {TIE_MARK}" if tie and bool(row.get(tie, False)) else "  ")


def _cells(vb: ViewBoard) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows of cells, the categories' columns) of one view's table, as text and Markdown share."""
    board = vb.board
    if not vb.labelled:
        return (["detector", "threshold", "flagged", "share flagged"],
                [[r["detector"], f"{r['threshold']:.6g}", f"{int(r['flagged']):,}", _num(r["share_flagged"])]
                 for _, r in board.iterrows()], [])
    suffix = "_at_op" if vb.point is not None else ""
    categories = [c.removeprefix("detect_").removesuffix(suffix) for c in board
                  if c.startswith("detect_") and c.endswith(suffix) and (suffix or not c.endswith("_at_op"))]
    if vb.point is not None:
        head = ["detector", "ROC AUC [95% CI]", "threshold@op", "recall@op [95% CI]", "caught", "false pos.",
                "FPR@op", "alerts/day", "pAUC [95% CI]"]
        rows = [[r["detector"], _ci(r, "roc_auc", tie="roc_auc_tied"), f"{r['threshold_at_op']:.6g}",
                 _ci(r, "recall_at_op", tie="op_tied"), comparison.counts_text(r["tp_at_op"], vb.n_attacks),
                 f"{int(r['fp_at_op']):,}", percent(r["fpr_at_op"]), f"{r['alerts_per_day']:,.1f}", _ci(r, "pauc")]
                for _, r in board.iterrows()]
    else:
        head = ["detector", "ROC AUC [95% CI]", "PR AUC [95% CI]", *COLUMNS[2:]]
        rows = [[r["detector"], _ci(r, "roc_auc", tie="roc_auc_tied"), _ci(r, "pr_auc"),
                 *(_num(r[c]) for c in COLUMNS[2:])] for _, r in board.iterrows()]
    for cells, (_, r) in zip(rows, board.iterrows(), strict=True):
        cells.extend(_num(r[f"detect_{c}{suffix}"], 3) for c in categories)
    return head, rows, categories


def notes(vb: ViewBoard, declaration: Declaration, splits: Splits, scores: boards.Scored | None,
          preset: str) -> list[str]:
    """The sentences above a view's table: what it ranks under, the resolution, small samples, ties."""
    words = declaration.words
    out = [f"{declaration.title}, test split ({len(splits.test):,} records"
           + (f": {words.count(vb.n_attacks)}, {words.count(vb.n_normals, positive=False)}" if vb.labelled else "")
           + f"), label view: {vb.view}" + (f" ({declaration.view_help(vb.view)})" if declaration.view_help(vb.view)
                                             else "")]
    point = vb.point
    if point is None:
        out.append(f"Ranked by ROC AUC; the other metrics at each detector's {preset} threshold on validation.")
    elif point.kind == "cost":
        out.append(f"Ranked at {point.describe()}: each detector at its threshold of least expected cost on the "
                   "validation split, ranked by the expected cost on the test split.")
    elif point.kind == "preset":
        out.append(f"Ranked at {point.describe()}, by F1 on the test split.")
    else:
        out.append(f"Ranked at {point.describe()}: each detector's threshold is the lowest that flags at most that "
                   f"share of the validation split's {words.negatives}; ranked by recall on the test split there, "
                   "then fewer false positives.")
    if point is not None:
        out.append(f"Alerts a day for {point.records_per_day:,.0f} records a day"
                   + (f", {percent(point.attack_share)} of them {words.positives}." if point.attack_share else "."))
    out.extend(vb.notes)
    if vb.labelled and "roc_auc_ci_low" in vb.board:
        at_point = (f"; recall at the point: exact McNemar on the {words.positives} both could catch"
                    if point is not None else "")
        out.append(f"95 % intervals: ROC AUC DeLong's, recall Wilson's, PR AUC and pAUC a stratified bootstrap "
                   f"({vb.resamples:,} resamples, seed {vb.seed}). '{TIE_MARK}' marks the best detector and those "
                   f"not significantly different from it (ROC AUC: paired DeLong{at_point}; Holm, 5 %). The "
                   "supervised ceiling, trained on labels, is listed last.")
    best = vb.best
    if point is not None and best is not None and scores is not None:
        out.append(boards.flagged_elsewhere_sentence(vb, splits, scores, best, words))
    return [n for n in out if n]


def text(vb: ViewBoard, lines: list[str]) -> str:
    """One view's leaderboard as an aligned text table under its sentences."""
    head, rows, categories = _cells(vb)
    head = head + [f"det_{c[:6]}" for c in categories]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = [f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths)]
    table = ["  ".join(f.format(c) for f, c in zip(fmt, cells, strict=True)) for cells in [head, *rows]]
    return "\n".join([*lines, "", table[0], "-" * len(table[0]), *table[1:]])


def markdown(vb: ViewBoard, lines: list[str]) -> str:
    """One view's leaderboard as a Markdown table under its sentences (the supervised ceiling in italics)."""
    head, rows, categories = _cells(vb)
    head = head + [f"detected {c}" for c in categories]
    out = [f"**{lines[0]}**", "", *(f"{line}  " for line in lines[1:]), "", "| " + " | ".join(head) + " |",
           "| --- |" + " ---: |" * (len(head) - 1)]
    for cells, (_, row) in zip(rows, vb.board.iterrows(), strict=True):
        name = f"*{cells[0]}*" if bool(row.get("uses_labels", False)) else cells[0]
        out.append("| " + " | ".join([name, *(c.strip() for c in cells[1:])]) + " |")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    try:
        point = point_from_args(args)
    except OperatingPointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    declaration, store, splits = open_dataset(args)
    names = args.detectors or store.names
    for name in names:
        store.entry(name)  # a name not in the store: a StoreError saying how to train it
    fmt = "markdown" if args.markdown else args.format
    for name, why in getattr(store, "left_out", {}).items():
        print(f"note: the external detector {name} is left out: {why}.", file=sys.stderr)
    scores = boards.cached_scores(store, splits)
    try:
        got = boards.view_boards(declaration, store, splits, scores, point, names, resamples=args.resamples,
                                 seed=args.seed)
    except OperatingPointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if fmt == "json":
        print(json.dumps([r for view, vb in got.items() for r in records(vb.board, view)], indent=1))
        return 0
    for vb in got.values():
        lines = notes(vb, declaration, splits, scores, store.default_preset)
        print(markdown(vb, lines) if fmt == "markdown" else text(vb, lines))
        print()
    return 0
