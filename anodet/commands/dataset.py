"""``python -m anodet dataset``: declare, list, show and delete users' datasets (bring your own data)."""

from __future__ import annotations

import argparse
import json
import sys

from anodet.datasets import userdata
from anodet.datasets.model import PROTOCOLS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("A user dataset is declared once from a CSV or Parquet file (columns inferred, splits cached "
                          "under data/datasets/NAME/), then trained with `python -m anodet train --dataset NAME`.")
    sub = parser.add_subparsers(dest="dataset_command", required=True)
    add = sub.add_parser("add", help="Inspect a file, infer its columns, and declare it as dataset NAME.")
    add.add_argument("name", metavar="NAME", help="dataset name: letters, digits, '-' and '_'")
    add.add_argument("--train", required=True, metavar="FILE", help="training file: .csv (optionally .gz) or .parquet")
    add.add_argument("--test", metavar="FILE", help="test file with the same columns (default: carved from --train)")
    add.add_argument("--label", metavar="COLUMN", help="the column holding labels, in the training file, the test file "
                     "or both (default: none, every row normal); a training file without it is all normal records")
    add.add_argument("--normal", metavar="VALUE[,VALUE]", help="label value(s) of normal rows, any case (default: "
                     "guessed from normal, 0, benign, false, B)")
    add.add_argument("--id", dest="id_column", metavar="COLUMN", help="an identifier column: what every page calls "
                     "a record")
    add.add_argument("--exclude", metavar="COL,...", help="columns to leave out")
    add.add_argument("--categorical", metavar="COL,...", help="columns to treat as categories (overrides inference)")
    add.add_argument("--log", metavar="COL,...", help="numeric columns to scale on a log scale")
    add.add_argument("--numeric", metavar="COL,...", help="numeric columns to scale linearly (no log)")
    add.add_argument("--protocol", choices=PROTOCOLS, default=PROTOCOLS[0],
                     help="normal-only (default): fit detectors on the normal training rows; unsupervised: on every "
                          "training row, anomalies included (ADBench's protocol)")
    add.add_argument("--validation", choices=userdata.VALIDATION_SOURCES, default="auto",
                     help="when the training file holds no anomalies: validation rows from a stratified half of the "
                          "labelled test file (auto, test-file) or from held-out training rows (train-normals)")
    add.add_argument("--positive", metavar="WORD", help="what an anomalous record is called (default: anomaly)")
    add.add_argument("--negative", metavar="WORD", help="what a normal record is called (default: normal)")
    add.add_argument("--replace", action="store_true", help="declare an existing dataset again")
    sub.add_parser("list", help="List the declared datasets.")
    show = sub.add_parser("show", help="Show a dataset's declaration.")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="print dataset.json as it is")
    delete = sub.add_parser("delete", help="Delete a dataset: its declaration, splits, store and kept input files.")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--yes", action="store_true", help="do not ask first")


def run(args: argparse.Namespace) -> int:
    if args.dataset_command == "list":
        names = userdata.list_datasets()
        if not names:
            print("no datasets declared; declare one with `python -m anodet dataset add NAME --train FILE`")
        for name in names:
            try:
                d = userdata.load(name)
                sp = d.doc.get("splits", {})
                trained = "trained" if (d.store_root / "manifest.json").exists() else "not trained"
                print(f"{name:<24} {sp.get('train', {}).get('rows', 0):>10,} train rows  "
                      f"{len(d.feature_columns):>4} columns  {'labelled' if d.labelled else 'no labels':<10} "
                      f"{trained}")
            except userdata.DatasetError as exc:
                print(f"{name:<24} unreadable: {exc}")
        return 0
    if args.dataset_command == "show":
        d = userdata.load(args.name)
        print(json.dumps(d.doc, indent=1) if args.json else "\n".join(d.lines()))
        return 0
    if args.dataset_command == "delete":
        d = userdata.load(args.name)
        if not args.yes:
            if not sys.stdin.isatty():
                print(f"error: deleting dataset {args.name} removes its declaration, splits, store and kept input "
                      "files; add --yes to do it without a question.", file=sys.stderr)
                return 2
            answer = input(f"Delete dataset {args.name} (declaration, splits, store and kept input files)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        removed = userdata.delete(d.name)
        print(f"deleted dataset {args.name} ({len(removed):,} files)")
        return 0
    d = userdata.add(args.name, args.train, args.test, args.label, args.normal, args.id_column, args.exclude,
                     args.categorical, args.log, args.numeric, replace=args.replace,
                     progress=lambda m: print(m, file=sys.stderr, flush=True), protocol=args.protocol,
                     positive=args.positive, negative=args.negative, validation=args.validation)
    print("\n".join(d.lines()))
    return 0
