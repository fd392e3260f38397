"""``python -m anodet external``: add, list and remove external detectors (scores made elsewhere, no code runs)."""

from __future__ import annotations

import argparse
import sys

from anodet.datasets.catalog import KDD


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "An external detector is a file of scores your own pipeline made, one per record of a dataset's test split "
        "(and, for thresholds, its validation split), matched by the dataset's record id (KDD: the record's line in "
        "the raw test file corrected, from 0; your dataset: its id column, else its data row from 1). Higher = more "
        "anomalous. It is compared with anodet's detectors on every page and in evaluate; it cannot score new "
        "records. Kept under data/external/DATASET/NAME/.")
    sub = parser.add_subparsers(dest="external_command", required=True)
    add = sub.add_parser("add", help="Match a score file to a dataset's records and keep it as detector NAME.")
    add.add_argument("name", metavar="NAME", help="the detector's name: letters, digits, '-' and '_'")
    add.add_argument("--dataset", default=KDD, metavar="D", help=f"the dataset the scores are for (default {KDD})")
    add.add_argument("--scores", required=True, metavar="FILE", help="CSV (optionally .gz) or Parquet: a record id "
                     "column and a score column")
    add.add_argument("--id", dest="id_column", metavar="COLUMN",
                     help="the column of record ids (default: the dataset's id column, else record_id, record or id)")
    add.add_argument("--score", dest="score_column", metavar="COLUMN",
                     help="the column of scores (default: score or anomaly_score, or the only other column)")
    add.add_argument("--invert", action="store_true", help="the scores are higher = more normal (as scikit-learn's "
                     "score_samples): anodet negates them")
    add.add_argument("--replace", action="store_true", help="replace external scores of the same name")
    listing = sub.add_parser("list", help="List a dataset's external detectors.")
    listing.add_argument("--dataset", default=KDD, metavar="D", help=f"default {KDD}")
    remove = sub.add_parser("remove", help="Remove an external detector (the files anodet kept for it).")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--dataset", default=KDD, metavar="D", help=f"default {KDD}")


def _left_out(dataset: str) -> dict[str, str]:
    """The external detectors of ``dataset`` its pages cannot show, each with the reason (none without a store)."""
    from anodet.datasets import catalog
    from anodet.external.view import with_externals
    from anodet.store.core import MANIFEST, Store, StoreError

    root = catalog.get(dataset).store_root
    try:
        view = with_externals(Store.open(root)) if (root / MANIFEST).exists() else None
    except StoreError:
        return {}
    return dict(getattr(view, "left_out", {}))


def run(args: argparse.Namespace) -> int:
    """0 when done; a DatasetError (one sentence, exit 2) for what cannot be used."""
    from anodet.external import kept

    if args.external_command == "add":
        external, notes = kept.add(args.name, args.dataset, args.scores, args.id_column, args.score_column,
                                   args.invert, args.replace)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        print("\n".join(external.lines()))
        print(f"Shown beside anodet's detectors on every page (dataset {external.dataset}) and in "
              f"`python -m anodet evaluate{'' if external.dataset == KDD else ' --dataset ' + external.dataset}`.")
        return 0
    if args.external_command == "list":
        externals = kept.list_externals(args.dataset)
        if not externals:
            print(f"dataset {args.dataset} has no external detectors; add one with `python -m anodet external add NAME "
                  f"--dataset {args.dataset} --scores FILE`")
        left_out = _left_out(args.dataset) if externals else {}
        for external in externals:
            print("\n".join(external.lines()))
            if external.name in left_out:
                print(f"  not shown: {left_out[external.name]}")
        return 0
    removed = kept.remove(args.dataset, args.name)
    print(f"removed external detector {args.name} of dataset {args.dataset} ({len(removed)} file(s))")
    return 0
