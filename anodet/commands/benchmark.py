"""``python -m anodet benchmark``: the detector family (and PyOD's detectors as peers) over a suite of datasets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROTOCOL_CHOICES = ("unsupervised", "normal-only")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (imports nothing heavy: the parser is built for every command)."""
    parser.description = (
        "Run the detector family on a suite of labelled datasets under ADBench's protocol (subsample to 10,000 rows, "
        "stratified 70/30 split, min-max on the training part), one task per dataset × seed, and write a tidy "
        "results table (Parquet and CSV), a summary (mean ROC AUC, mean rank, wins; Friedman, Nemenyi and "
        "Wilcoxon–Holm) and a critical-difference diagram per protocol. Finished tasks are not run again.")
    parser.add_argument("suite", nargs="*", metavar="SUITE",
                        help="folders of datasets (ADBench .npz, or .csv/.parquet with a label column), single such "
                             "files, or declared anodet dataset names (default: $ANODET_ADBENCH, else "
                             "../shared/adbench)")
    parser.add_argument("-o", "--output", required=True, metavar="FOLDER",
                        help="folder for the results (created; a second run resumes there)")
    parser.add_argument("--protocol", default="unsupervised", metavar="NAME[,NAME]",
                        help="unsupervised (ADBench's: fit on every training row; default), normal-only (fit on the "
                             "training normals, with a labelled validation part for the per-dataset choice), or both")
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds 0..N-1 per dataset (default 3)")
    parser.add_argument("--detectors", metavar="LIST",
                        help="family detectors, comma-separated (default: the quick classical set: pca, iforest, "
                             "ocsvm, lof, kmeans, zscore, mahalanobis, ecod, knn; 'quick' names it; neural ones: "
                             "autoencoder, vae, bigan, seq2seq)")
    parser.add_argument("--peers", metavar="pyod|pyod:NAME,…",
                        help="also run PyOD's common detectors with default settings (ECOD, COPOD, IForest, KNN, LOF, "
                             "OCSVM, HBOS, CBLOF, PCA), or the ones named, as peers")
    parser.add_argument("--budget", type=float, metavar="S",
                        help="seconds of training per neural detector and task (default 60)")
    parser.add_argument("--fpr", type=float, default=0.05, metavar="RATE",
                        help="false-positive rate at which recall is reported (default 0.05)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the rank tests (default 0.05)")
    parser.add_argument("--label", metavar="COLUMN", help="label column of CSV/Parquet datasets (default: guessed)")
    parser.add_argument("--normal", metavar="VALUE[,VALUE]", help="label value(s) of normal rows (default: guessed)")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="local: one task after another here (default); dask: tasks on a Dask cluster")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="the Dask scheduler (default: a LocalCluster on this machine)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")


def _bad(message: str) -> ValueError:
    """A one-sentence input error (a :class:`~anodet.benchmark.suites.SuiteError`)."""
    from anodet.benchmark.suites import SuiteError

    return SuiteError(message)


def _protocols(value: str) -> list[str]:
    names = [v.strip() for v in value.replace(",", " ").split() if v.strip()]
    if names == ["both"]:
        return list(PROTOCOL_CHOICES)
    unknown = [n for n in names if n not in PROTOCOL_CHOICES]
    if unknown or not names:
        raise _bad(f"Unknown protocol {unknown[0] if unknown else value!r}; choose unsupervised, normal-only or "
                         "both.")
    return list(dict.fromkeys(names))


def _suite(items: list[str]) -> list[str]:
    if items:
        return items
    from anodet.benchmark.suites import SUITE_ENV, default_suite

    found = default_suite()
    if found is None:
        raise _bad(f"Name a suite (a folder of datasets or dataset names), or set ${SUITE_ENV} to the ADBench "
                         "folder.")
    if not found.is_dir():
        raise _bad(f"${SUITE_ENV} is {found}, which is not a folder; point it to the ADBench datasets.")
    return [str(found)]


def _check(args: argparse.Namespace) -> None:
    if args.seeds < 1:
        raise _bad("--seeds must be at least 1.")
    if not 0 < args.fpr < 1:
        raise _bad("--fpr must lie strictly between 0 and 1, e.g. 0.05.")
    if not 0 < args.alpha < 1:
        raise _bad("--alpha must lie strictly between 0 and 1, e.g. 0.05.")
    if args.budget is not None and not args.budget > 0:
        raise _bad("--budget must be a positive number of seconds.")
    if args.workers < 1:
        raise _bad("--workers must be at least 1.")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise _bad(f"{out} is a file; -o names a folder for the results.")


def run(args: argparse.Namespace) -> int:
    """Run the command; 0 when done, 2 with one sentence on stderr for bad input."""
    from anodet.benchmark import run_benchmark
    from anodet.benchmark.contenders import ContenderError, check_neural, family_names, peer_names
    from anodet.benchmark.suites import SuiteError

    try:
        _check(args)
        protocols = _protocols(args.protocol)
        detectors = family_names(args.detectors)
        check_neural(detectors)
        peers = peer_names(args.peers)
        items = _suite(args.suite)
        normal = tuple(v.strip() for v in args.normal.split(",") if v.strip()) if args.normal else ()
        outcome = run_benchmark(items, Path(args.output), protocols, args.seeds, detectors, peers, args.engine,
                                args.scheduler, args.workers, args.fpr, args.budget, args.label, normal, args.alpha,
                                progress=_progress)
    except (SuiteError, ContenderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from anodet.benchmark.summary import markdown

    for summary in outcome.summaries:
        print(markdown(summary, args.fpr))
        print()
    done = outcome.progress
    print(f"{len(done.run)} task(s) run, {len(done.skipped)} already done; {outcome.seconds:.1f} s. Wrote "
          + ", ".join(str(p) for p in outcome.files), file=sys.stderr)
    return 0


def _progress(done: int, total: int, what: str) -> None:
    print(f"[{done}/{total}] {what}", file=sys.stderr, flush=True)
