"""``python -m anodet data``: the KDD splits, fetched, verified and cached."""

from __future__ import annotations

import argparse

from anodet.commands.train import fill_score_cache


def run(args: argparse.Namespace) -> int:
    """``python -m anodet data``: fetch, verify and cache the KDD splits, and the dashboard's scores on them."""
    from anodet.datasets.kdd import load_splits

    splits = load_splits(args.data_source, rebuild=args.rebuild)
    for name in ("train", "validation", "test"):
        print(f"{name:>10}: {len(getattr(splits, name)):,} rows")
    if not args.no_scores:
        fill_score_cache(splits, args.store)
    return 0
