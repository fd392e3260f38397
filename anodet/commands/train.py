"""``python -m anodet train``: train detectors into the KDD store or a user dataset's, plug-ins included."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anodet.detectors import known_kinds


def _plugin(args: argparse.Namespace) -> None:
    """``--detector-class``: bind the plug-in (its parameters become its kind's defaults) and add it to
    ``--detectors``; a plug-in option without it is refused."""
    import json

    from anodet.detectors import plugins

    if not args.detector_class:
        given = [flag for flag, value, default in (("--detector-params", args.detector_params, "{}"),
                                                   ("--detector-name", args.detector_name, None),
                                                   ("--higher-is", args.higher_is, "auto")) if value != default]
        if given:
            raise plugins.PluginError(f"{given[0]} describes a plug-in: give --detector-class MODULE:CLASS with it.")
        return
    try:
        params = json.loads(args.detector_params)
    except ValueError:
        params = None
    if not isinstance(params, dict):
        raise plugins.PluginError(f"--detector-params must be a JSON object such as '{{\"n_neighbors\": 10}}', not "
                                  f"{args.detector_params!r}.")
    if not plugins.TARGET.match(args.detector_class):
        raise plugins.PluginError(f"--detector-class {args.detector_class!r} is not a class path; give "
                                  "package.module:Class (e.g. pyod.models.ecod:ECOD).")
    kind = plugins.check_kind(args.detector_name or plugins.default_kind(args.detector_class))
    plugins.bind(plugins.Spec(kind, args.detector_class, args.higher_is), params)
    args.detectors = [*(args.detectors or []), kind]


def run(args: argparse.Namespace) -> int:
    """``python -m anodet train``: the KDD store (or ``--dataset``'s), then the dashboard's scores on its splits."""
    import importlib.util

    from anodet.detectors import NEURAL
    from anodet.features.sets import BUILTIN
    from anodet.training.estimates import preset_kinds
    from anodet.training.train import train

    if args.detectors and args.preset:
        print("error: give --detectors or --preset, not both.", file=sys.stderr)
        return 2
    _plugin(args)
    if args.dataset:
        return _train_dataset(args)
    if args.preset:
        args.detectors = preset_kinds(args.preset)
    unknown = [s for s in args.feature_sets or [] if s not in BUILTIN]
    if unknown:
        print(f"error: unknown feature set(s) {', '.join(unknown)}; choose from {', '.join(BUILTIN)}.", file=sys.stderr)
        return 2
    wanted = args.detectors or known_kinds()
    if any(n.split("@", 1)[0] in NEURAL for n in wanted) and importlib.util.find_spec("keras") is None:
        print("error: training the neural detectors needs TensorFlow and Keras, which the app alone does not install. "
              "Run `.venv/bin/python -m pip install -r requirements-train.txt`, then train again.", file=sys.stderr)
        return 2

    train(args.detectors, seed=args.seed, source=args.data_source, store_root=args.store,
          train_rows=args.train_rows, epochs=args.epochs, log=lambda m: print(m, flush=True),
          feature_sets=args.feature_sets,
          lock_timeout=args.lock_timeout, named=f"in the {args.preset} preset" if args.preset else "named")
    if args.store is None:  # the store the dashboard opens: score its splits now, not on its first page
        from anodet.datasets.kdd import load_splits

        fill_score_cache(load_splits(args.data_source), None)
    return 0


def _train_dataset(args: argparse.Namespace) -> int:
    from anodet.training.datasets import train

    clash = [flag for flag, value in (("--feature-sets", args.feature_sets), ("--train-rows", args.train_rows),
                                      ("--data-source", args.data_source), ("--store", args.store)) if value]
    if clash:
        print(f"error: {clash[0]} does not apply to --dataset (a dataset has one feature set, its own splits and its "
              f"store under data/datasets/{args.dataset}/).", file=sys.stderr)
        return 2
    bar = None
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(total=1, unit="detector", desc=f"training {args.dataset}", file=sys.stderr)

    def progress(done: int, total: int, name: str) -> None:
        if bar is not None:
            bar.total, bar.n = total, done
            bar.set_postfix_str(name)

    try:
        train(args.dataset, args.detectors, seed=args.seed, log=lambda m: print(m, flush=True),
              progress=progress, epochs=args.epochs, lock_timeout=args.lock_timeout, preset=args.preset)
    finally:
        if bar is not None:
            bar.close()
    return 0


def fill_score_cache(splits, store_root: str | None) -> None:
    """Score the splits the dashboard reads with the model store, once per store (its first page then draws
    without scoring). A missing or unusable store only skips this: the data itself is ready."""
    from anodet.scoring import cache as score_cache
    from anodet.store.core import Store, StoreError

    try:
        store = Store.open(Path(store_root) if store_root else None)
        spent = score_cache.fill(store, splits)
    except StoreError as exc:
        print(f"dashboard scores not cached ({exc})", file=sys.stderr)
        return
    if spent:
        print(f"    scores: {len(store.names)} detectors on " + ", ".join(
            f"{split} ({len(getattr(splits, split)):,} rows, {seconds:.1f} s)" for split, seconds in spent.items())
            + " cached for the dashboard")
    else:
        print(f"    scores: cached for this store ({len(store.names)} detectors)")
