"""``python -m anodet score``: score CSV files (or standard input) with the stored detectors."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import Any

from anodet.cli import stdout_closed
from anodet.evaluation.thresholds import ThresholdError, resolve_thresholds
from anodet.reader import InputError, Limits
from anodet.scoring.core import Scorer, default_detectors
from anodet.scoring.files import Summary, score_source
from anodet.scoring.output import OutputError, ResultsFile


def default_output(path: str) -> Path:
    """INPUT's name with ``.scored.csv``, in the current folder (``stdin.scored.csv`` for ``-``)."""
    stem = "stdin" if path == "-" else Path(path).name
    for suffix in (".gz", ".csv", ".txt", ".data"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return Path(f"{stem or 'input'}.scored.csv")


def run(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 1 on bad input or output, with one sentence on stderr."""
    from threadpoolctl import threadpool_limits

    # Rows are spread over the cores by the scoring threads; BLAS threads on top only compete with
    # them (and one BLAS thread gives the same bits as the Dask engine's workers).
    with threadpool_limits(limits=1, user_api="blas"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    store = command_store(args)  # a DatasetError or a --dataset clash: one line and exit 2 (cli.main)
    names = args.detectors or default_detectors(store.names)
    if args.engine == "dask" or len(args.input) > 1 or any(glob.has_magic(i) for i in args.input):
        return _run_many(args, store, names)
    args.input = args.input[0]
    try:
        overrides = _thresholds_file(args, store.names)
        thresholds = resolve_thresholds(store, names, args.threshold, args.label_view, overrides)
        scorer = Scorer(store, names)
        results = ResultsFile(args.output or default_output(args.input))
        results.check(args.input)
    except (InputError, ThresholdError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar = _progress_bar()

    def progress(fraction: float, rows: int) -> None:
        if bar is not None:
            bar.n = round(fraction * 100, 1)
            bar.set_postfix_str(f"{rows:,} rows")

    limits = Limits(read_timeout_s=args.read_timeout)
    try:
        sink = results.open()
        summary = score_source(args.input, store, names, thresholds, args.on_bad_rows, sink=sink,
                               progress=progress, chunk_bytes=int(args.chunk_mb * 2**20), scorer=scorer,
                               name=None if args.input == "-" else args.input, limits=limits)
        results.commit()
    except BaseException as exc:
        results.discard()
        if bar is not None:
            bar.close()
        if isinstance(exc, (OSError, OutputError)) and results.to_stdout and stdout_closed():
            # ``-o - | head``: the reader has what it wanted; cli.main ends quietly
            raise BrokenPipeError("standard output was closed") from None
        if isinstance(exc, (InputError, OutputError)):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, OSError):
            from anodet.scoring.output import describe_os_error

            print(f"error: {describe_os_error(exc, results.path or 'standard output')}", file=sys.stderr)
            return 1
        raise
    if bar is not None:
        bar.close()
    print_summary(summary, args.label_view, results.path)
    return 0


def _progress_bar() -> Any:
    """A progress bar on standard error when it is a terminal (tqdm is imported only then), else None."""
    if not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=100, unit="%", desc="scoring", file=sys.stderr, bar_format="{l_bar}{bar}| {postfix}")


def command_store(args: argparse.Namespace) -> Any:
    """The store ``score`` and ``stream`` use: a user dataset's (``--dataset``), else ``--store`` or the default
    one; a missing ``--threshold`` becomes the store's default preset."""
    from anodet.store.core import Store

    _leave_out_externals(args)
    store = dataset_store(args) if getattr(args, "dataset", None) else Store.open(
        Path(args.store) if args.store else None)
    if args.threshold is None:
        args.threshold = store.default_preset
    return store


def _leave_out_externals(args: argparse.Namespace) -> None:
    """External detectors (scores made elsewhere) cannot score new records: one asked for by name is refused, and
    when none is named the dataset's are left out with a note. Their names go to ``args.externals``."""
    from anodet.datasets.catalog import KDD
    from anodet.external.kept import list_externals
    from anodet.external.view import not_scorable
    from anodet.store.core import StoreError

    args.externals = [e.name for e in list_externals(getattr(args, "dataset", None) or KDD)]
    asked = [*(getattr(args, "detectors", None) or []), *([args.detector] if getattr(args, "detector", None) else [])]
    named = [n for n in asked if n in args.externals]
    if named:
        raise StoreError(not_scorable(named[0]))
    if args.externals and not asked:
        one = len(args.externals) == 1
        what = "is an external detector" if one else "are external detectors"
        print(f"note: {', '.join(args.externals)} {what} (scores made elsewhere), left out: {'it' if one else 'they'} "
              "cannot score new records.", file=sys.stderr)


def dataset_store(args: argparse.Namespace) -> Any:
    """``--dataset NAME``: its store, its one label view, and detector names qualified with its feature set
    (``pca`` means ``pca@NAME``); refuses ``--store`` beside it. Used by ``score`` and ``stream``."""
    from anodet.datasets import userdata
    from anodet.training.datasets import open_store

    if args.store:
        raise ValueError("--dataset names the store (data/datasets/NAME/store); leave out --store.")
    store = open_store(args.dataset)
    args.label_view = userdata.LABEL_VIEW
    qualify_names(args)
    return store


def qualify_names(args: argparse.Namespace) -> None:
    """``--detectors``/``--detector`` names without ``@`` as the ``--dataset``'s own (``pca`` means ``pca@NAME``)."""
    from anodet.datasets import userdata
    from anodet.features.sets import qualified

    feature_set = userdata.load(args.dataset).feature_set_name
    for attr in ("detectors", "detector"):
        value = getattr(args, attr, None)
        if isinstance(value, list):
            setattr(args, attr, [d if "@" in d else qualified(d, feature_set) for d in value])
        elif isinstance(value, str) and "@" not in value:
            setattr(args, attr, qualified(value, feature_set))


def _run_many(args: argparse.Namespace, store, names: list[str]) -> int:
    """Several inputs (or --engine dask): a folder of parts, one per input, and summary.json."""
    from tqdm.auto import tqdm

    from anodet.scoring.batch import ClusterError, expand_inputs, score_many

    try:
        if not args.output or args.output == "-":
            raise OutputError("Several inputs (or --engine dask) write a folder of parts: name it with -o FOLDER.")
        inputs = expand_inputs(args.input)
        if "-" in inputs:
            raise InputError("Standard input ('-') cannot be one of several inputs; score it on its own.")
        out = Path(args.output)
        overrides = _thresholds_file(args, store.names)
        thresholds = resolve_thresholds(store, names, args.threshold, args.label_view, overrides)
    except (InputError, ThresholdError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar = tqdm(total=len(inputs), unit="file", desc=f"scoring ({args.engine})", disable=not sys.stderr.isatty(),
               file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.n = done
        bar.refresh()

    part_format = "parquet" if out.name.lower().endswith((".parquet", ".pq")) else "csv"
    try:
        batch = score_many(inputs, out, store, names, thresholds, args.on_bad_rows, part_format, args.engine,
                           args.scheduler, args.workers, progress)
    except (InputError, OutputError, ClusterError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar.close()
    for source, reason in batch.failed:
        print(f"error: {source} was not scored: {reason}", file=sys.stderr)
    failed = f"; {len(batch.failed)} not scored (listed in summary.json)" if batch.failed else ""
    print(f"Inputs: {len(inputs)} file(s) → {len(batch.parts)} part(s) in {out} (engine {args.engine}){failed}.",
          file=sys.stderr)
    print_summary(batch.summary, args.label_view, out / "summary.json")
    return 1 if batch.failed else 0


def _thresholds_file(args: argparse.Namespace, known: list[str]) -> dict[str, float] | None:
    """The thresholds a ``--thresholds`` file sets (an external detector's, which the dashboard exports too, are
    not used: it does not score)."""
    if not getattr(args, "thresholds", None):
        return None
    from anodet.evaluation.thresholds import read_thresholds_file

    view, values = read_thresholds_file(Path(args.thresholds), [*known, *getattr(args, "externals", [])])
    if view and view != args.label_view:
        print(f"note: {args.thresholds} was exported under the {view} label view.", file=sys.stderr)
    return {n: v for n, v in values.items() if n in known}


def print_summary(summary: Summary, view: str, output: Path | None) -> None:
    err = sys.stderr
    if summary.layout:
        print(f"Input: {summary.layout.describe()}.", file=err)
    for line in summary.lines():
        print(line, file=err)
    if summary.confusion.get(view):
        print(f"Against the file's labels ({view} view, {summary.labelled.get(view, 0):,} labelled rows):", file=err)
        for n, m in summary.metrics(view).items():
            print(f"  {n:<20} precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}  "
                  f"accuracy {m['accuracy']:.3f}", file=err)
    rate = summary.rows_read / summary.seconds if summary.seconds else 0.0
    where = f" → {output}" if output else ""
    print(f"Done in {summary.seconds:.1f} s ({rate:,.0f} rows/s){where}", file=err)
