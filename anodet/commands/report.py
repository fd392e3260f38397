"""``python -m anodet report``: the decision report on one detector at one operating point, as a self-contained
HTML file and/or Markdown (:mod:`anodet.evaluation.report`).

An existing output file is replaced only when it is a report anodet wrote (or empty); the new one is written
beside it first and moved into place when complete.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

from anodet.commands.evaluate import add_point_arguments, open_dataset, point_from_args
from anodet.evaluation.operating import OperatingPointError
from anodet.evaluation.thresholds import ThresholdError, read_thresholds_file

SUFFIXES = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}


class OutputError(ValueError):
    """An output file the report cannot be written to; one sentence."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write the decision report on one detector at one operating point: its threshold (chosen on the validation "
        "split), recall overall and per anomaly category with counts and 95 % intervals, what it misses, the alerts "
        "a day, the best alternative at the same point, the charts, the thresholds file to deploy, and the inputs "
        "(store hash, split checksums, seed, resamples) that reproduce every number.")
    parser.add_argument("--detector", required=True, metavar="NAME",
                        help="the stored detector to report on, e.g. pca, bigan@kdd41")
    add_point_arguments(parser, presets=True)
    parser.add_argument("--dataset", metavar="NAME", help="a declared user dataset (default: KDD Cup 99)")
    parser.add_argument("--label-view", metavar="VIEW",
                        help="the label view (KDD: reference or true; default: the dataset's first, or the "
                             "thresholds file's)")
    parser.add_argument("--thresholds", metavar="FILE",
                        help="a thresholds file (exported from the dashboard): its threshold for the detector "
                             "replaces the operating point's")
    parser.add_argument("-o", "--output", action="append", required=True, metavar="FILE",
                        help="report file: .html (self-contained, opens offline) or .md; give -o twice for both")
    parser.add_argument("--data-source", metavar="FOLDER|URL", help="where the raw KDD files are")
    parser.add_argument("--store", metavar="DIR", help="KDD model store folder (default: $ANODET_STORE or "
                                                       "models_store/)")


def _is_ours(path: Path) -> bool:
    """Is ``path`` empty or a report anodet wrote (so replacing it loses nothing of anyone else's)?"""
    from anodet.evaluation.report_render import GENERATOR, MARKDOWN_MARK

    try:
        with path.open("rb") as handle:
            head = handle.read(4096).decode("utf-8", errors="replace")
    except OSError as exc:
        raise OutputError(f"Cannot read {path} to check it is a report: {exc.strerror or exc}.") from None
    return not head.strip() or f'<meta name="generator" content="{GENERATOR}">' in head or head.startswith(
        MARKDOWN_MARK)


def _targets(outputs: list[str]) -> list[tuple[Path, str]]:
    targets = []
    for text in outputs:
        path = Path(text)
        kind = SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise OutputError(f"{text} does not end in .html or .md; name the report file report.html or report.md.")
        if path.is_dir():
            raise OutputError(f"{text} is a folder; give a file name such as {path / 'report.html'}.")
        if path.exists() and not _is_ours(path):
            raise OutputError(f"{text} exists and is not a report anodet wrote; it is left as it is: choose another "
                              "file name.")
        if not path.parent.is_dir():
            raise OutputError(f"The folder {path.parent} does not exist; create it or write the report elsewhere.")
        targets.append((path, kind))
    return targets


def _write(path: Path, text: str) -> None:
    """``text`` to a new file beside ``path``, then moved into place (an interrupted run changes nothing)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as an ordinary new file (mkstemp's is private)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def run(args: argparse.Namespace) -> int:
    from anodet.cli import stored_name
    from anodet.evaluation import report

    try:
        stored_name(args.detector)  # a well-formed name (whether the store holds it: below)
        point = point_from_args(args)
        assert point is not None  # the group is required
        targets = _targets(args.output)
    except (argparse.ArgumentTypeError, OperatingPointError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    declaration, store, splits = open_dataset(args)
    overrides, view = None, args.label_view
    try:
        if args.thresholds:
            file_view, overrides = read_thresholds_file(args.thresholds, store.names)
            if args.detector not in overrides:
                raise ThresholdError(f"{args.thresholds} holds no threshold for {args.detector} (it names "
                                     f"{', '.join(overrides) or 'none'}); leave out --thresholds or export one that "
                                     "does.")
            if file_view and view and file_view != view:
                raise ThresholdError(f"{args.thresholds} holds thresholds for label view {file_view!r}, not "
                                     f"{view!r}; give --label-view {file_view} or another file.")
            view = view or file_view
        html, markdown = report.build(declaration.key, view, args.detector, point, overrides,
                                      declaration=declaration, store=store, splits=splits, resamples=args.resamples,
                                      seed=args.seed, thresholds_source=args.thresholds or "")
    except (ThresholdError, OperatingPointError, report.ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, kind in targets:
        try:
            _write(path, html if kind == "html" else markdown)
        except OSError as exc:
            print(f"error: cannot write {path}: {exc.strerror or exc}.", file=sys.stderr)
            return 1
        print(f"wrote {path}")
    return 0
