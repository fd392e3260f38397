"""The command line: ``python -m anodet {train,evaluate,score,stream}``."""

from __future__ import annotations

import argparse
import importlib
import sys

import numpy as np

from anodet.data import SOURCE_ENV, DataError
from anodet.detectors import REGISTRY
from anodet.schema import ATTACK_CATEGORIES, LABEL_VIEWS
from anodet.store import StoreError

SUBCOMMAND_MODULES = {
    "score": ("anodet.scoring", "Score CSV files with the pretrained detectors."),
    "stream": ("anodet.stream", "Stream records through a detector and raise alerts."),
}


def detector_list(value: str) -> list[str]:
    """argparse type: comma- or space-separated detector names, each checked against the registry."""
    names = [v.strip() for v in value.replace(",", " ").split() if v.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(REGISTRY)}")
    return names


def _add_data_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-source", metavar="FOLDER|URL",
                        help=f"where the raw KDD files are (default: ${SOURCE_ENV} or the official archive)")


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="DIR", help="model store folder (default: $ANODET_STORE or models_store/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m anodet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="Build the data, train detectors and write the model store.")
    train.add_argument("--detectors", type=detector_list, help="comma-separated names (default: all)")
    train.add_argument("--seed", type=int, default=0, help="random seed (same seed, same models)")
    train.add_argument("--train-rows", type=int, help="train on a random subset of this many normals (quick runs)")
    train.add_argument("--epochs", type=int, help="override the epochs of the neural detectors (quick runs)")
    _add_data_source(train)
    _add_store(train)

    ev = sub.add_parser("evaluate", help="Print the leaderboard on the test split for both label views.")
    ev.add_argument("--detectors", type=detector_list, help="comma-separated names (default: all in the store)")
    ev.add_argument("--markdown", action="store_true", help="print Markdown tables (as in the README)")
    _add_data_source(ev)
    _add_store(ev)

    data = sub.add_parser("data", help="Fetch, verify and cache the KDD splits.")
    data.add_argument("--rebuild", action="store_true", help="rebuild the cached splits")
    _add_data_source(data)

    for name, (module, help_text) in SUBCOMMAND_MODULES.items():
        command = sub.add_parser(name, help=help_text)
        adder = getattr(importlib.import_module(module), "add_arguments", None)
        if adder:
            adder(command)
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    from anodet.train import train

    train(args.detectors, seed=args.seed, source=args.data_source, store_root=args.store,
          train_rows=args.train_rows, epochs=args.epochs, log=lambda m: print(m, flush=True))
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from anodet.data import load_splits

    splits = load_splits(args.data_source, rebuild=args.rebuild)
    for name in ("train", "validation", "test"):
        print(f"{name:>10}: {len(getattr(splits, name)):,} rows")
    return 0


LEADERBOARD_COLUMNS = ["roc_auc", "pr_auc", "precision", "recall", "f1", "f2", "accuracy"]


def format_leaderboard_markdown(table, view: str) -> str:
    """The leaderboard as a Markdown table."""
    cols = LEADERBOARD_COLUMNS
    head = ["detector", *cols, *(f"detected {c}" for c in ATTACK_CATEGORIES)]
    lines = [f"**Label view: {view}** (metrics at each detector's best-F1 threshold on validation)", "",
             "| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for _, row in table.sort_values("roc_auc", ascending=False).iterrows():
        rates = [f"{row['detect_' + c]:.3f}" if not np.isnan(row["detect_" + c]) else "–" for c in ATTACK_CATEGORIES]
        lines.append("| " + " | ".join([row["name"], *(f"{row[c]:.4f}" for c in cols), *rates]) + " |")
    return "\n".join(lines)


def format_leaderboard(table, view: str) -> str:
    """The leaderboard as an aligned text table."""
    cols = LEADERBOARD_COLUMNS
    header = f"{'detector':<24}" + "".join(f"{c:>10}" for c in cols) + "".join(
        f"{'det_' + c:>10}" for c in ATTACK_CATEGORIES)
    lines = [f"Test split kdd-8020, label view: {view} (thresholds: best F1 on validation)", header,
             "-" * len(header)]
    for _, row in table.sort_values("roc_auc", ascending=False).iterrows():
        cells = "".join(f"{row[c]:>10.4f}" for c in cols)
        rates = "".join(f"{row['detect_' + c]:>10.3f}" if not np.isnan(row["detect_" + c]) else f"{'-':>10}"
                        for c in ATTACK_CATEGORIES)
        lines.append(f"{row['name']:<24}{cells}{rates}")
    return "\n".join(lines)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from anodet.data import load_splits
    from anodet.leaderboard import leaderboard, score_frame
    from anodet.store import Store

    store = Store.open(args.store)
    splits = load_splits(args.data_source)
    names = args.detectors or store.names  # a name not in the store is a StoreError saying how to add it
    scores = score_frame(store, splits.test, names)
    formatter = format_leaderboard_markdown if args.markdown else format_leaderboard
    for view in LABEL_VIEWS:
        print(formatter(leaderboard(store, splits, view, scores), view))
        print()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"train": _cmd_train, "evaluate": _cmd_evaluate, "data": _cmd_data}
    try:
        if args.command in handlers:
            return handlers[args.command](args)
        return importlib.import_module(SUBCOMMAND_MODULES[args.command][0]).run(args)
    except (DataError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
