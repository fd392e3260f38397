"""``python -m anodet dataset``: declare, list, show, share and delete users' datasets (bring your own data).

The command line acts as the operator (the admin role: it sees and manages every dataset) unless
``--as EMAIL`` says to act as that user would on the app: their role from the access policy,
only the datasets they see, their quotas.
"""

from __future__ import annotations

import argparse
import json
import sys

from anodet.access import SHARING, AccessDenied, Principal, cli_principal, require
from anodet.access.identity import as_user
from anodet.access.policy import PolicyError, load_policy
from anodet.datasets import ownership, userdata
from anodet.datasets.model import PROTOCOLS


def _add_as(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="as_user", metavar="EMAIL",
                        help="act as this signed-in user would on the app (their role from the access policy, the "
                             "datasets they see, their quotas) instead of as the operator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("A user dataset is declared once from a CSV or Parquet file (columns inferred, splits cached "
                          "under data/datasets/NAME/), then trained with `python -m anodet train --dataset NAME`. "
                          "The command line acts as the operator (admin) unless --as EMAIL.")
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
    add.add_argument("--share", choices=SHARING, help="who sees it on the app besides its owner and the admins: "
                     "private (default for a new dataset: nobody) or team (everyone signed in)")
    add.add_argument("--replace", action="store_true", help="declare an existing dataset again (its owner stays)")
    _add_as(add)
    listing = sub.add_parser("list", help="List the declared datasets (with --as: the ones that user sees).")
    _add_as(listing)
    show = sub.add_parser("show", help="Show a dataset's declaration.")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="print dataset.json as it is")
    _add_as(show)
    share = sub.add_parser("share", help="Make a dataset private (its owner and the admins see it) or shared with "
                                         "the team (everyone signed in sees it).")
    share.add_argument("name", metavar="NAME")
    share.add_argument("sharing", choices=SHARING)
    _add_as(share)
    delete = sub.add_parser("delete", help="Delete a dataset: its declaration, splits, store and kept input files.")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--yes", action="store_true", help="do not ask first")
    _add_as(delete)


def _principal(args: argparse.Namespace) -> Principal:
    if not getattr(args, "as_user", None):
        return cli_principal()
    try:
        found = as_user(args.as_user, load_policy())
    except PolicyError as exc:
        raise userdata.DatasetError(str(exc)) from None
    if found is None:
        raise userdata.DatasetError(f"The access policy gives {args.as_user} no role, so they may not use the app; "
                                    "add them to it, or leave out --as.")
    return found


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args, _principal(args))
    except AccessDenied as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _visible(name: str, who: Principal) -> userdata.UserDataset:
    """Dataset ``name`` if ``who`` sees it (one sentence, as if it did not exist, otherwise)."""
    doc = ownership.read_doc(name)
    if doc is not None and not ownership.sees(who, name):
        raise userdata.DatasetError(f"There is no dataset {name!r} that {who.id} may see; `dataset list --as "
                                    f"{who.id}` shows the ones they may.")
    return userdata.load(name)


def _run(args: argparse.Namespace, who: Principal) -> int:
    if args.dataset_command == "list":
        names = ownership.visible(who)
        if not names:
            print("no datasets declared" + (f" that {who.id} sees" if who.source != "cli" else "")
                  + "; declare one with `python -m anodet dataset add NAME --train FILE`")
        for name in names:
            try:
                d = userdata.load(name)
                sp = d.doc.get("splits", {})
                trained = "trained" if (d.store_root / "manifest.json").exists() else "not trained"
                print(f"{name:<24} {sp.get('train', {}).get('rows', 0):>10,} train rows  "
                      f"{len(d.feature_columns):>4} columns  {'labelled' if d.labelled else 'no labels':<10} "
                      f"{trained:<12} {ownership.sharing_of(d.doc):<8} {ownership.owner_of(d.doc) or '(no owner)'}")
            except userdata.DatasetError as exc:
                print(f"{name:<24} unreadable: {exc}")
        return 0
    if args.dataset_command == "show":
        d = _visible(args.name, who)
        print(json.dumps(d.doc, indent=1) if args.json else "\n".join(d.lines()))
        return 0
    if args.dataset_command == "share":
        ownership.share(args.name, args.sharing, who)
        print(f"dataset {args.name}: " + ("shared with the team" if args.sharing == "team" else
                                          "private (its owner and the admins see it)"))
        return 0
    if args.dataset_command == "delete":
        d = userdata.load(args.name)
        ownership.hidden_from(who, args.name, d.doc, "delete")  # refused (and audited) before the question
        require(who, "delete", ownership.owner_of(d.doc), resource=f"dataset:{args.name}")
        if not args.yes:
            if not sys.stdin.isatty():
                print(f"error: deleting dataset {args.name} removes its declaration, splits, store and kept input "
                      "files; add --yes to do it without a question.", file=sys.stderr)
                return 2
            answer = input(f"Delete dataset {args.name} (declaration, splits, store and kept input files)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        removed = ownership.delete(d.name, who)
        print(f"deleted dataset {args.name} ({len(removed):,} files)")
        return 0
    d = userdata.add(args.name, args.train, args.test, args.label, args.normal, args.id_column, args.exclude,
                     args.categorical, args.log, args.numeric, replace=args.replace,
                     progress=lambda m: print(m, file=sys.stderr, flush=True), protocol=args.protocol,
                     positive=args.positive, negative=args.negative, validation=args.validation, principal=who,
                     sharing=args.share)
    print("\n".join(d.lines()))
    return 0
