"""The command line: ``python -m anodet {train,evaluate,report,data,dataset,external,score,stream,benchmark}``.

Building the parser imports nothing heavy: only the subcommand being run gets its options (so only its
module is imported), and each subcommand's module is imported only when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import sys
from collections.abc import Callable

from anodet.datasets.kdd_schema import LABEL_VIEWS
from anodet.detectors import known_kinds

SUBCOMMAND_MODULES = {
    "train": "anodet.commands.train",
    "data": "anodet.commands.data",
    "score": "anodet.commands.score",
    "stream": "anodet.commands.stream",
    "evaluate": "anodet.commands.evaluate",
    "dataset": "anodet.commands.dataset",
    "external": "anodet.commands.external",
    "benchmark": "anodet.commands.benchmark",
    "report": "anodet.commands.report",
}
CHUNK_MB = 4.0
PRESETS_HELP = "best_f1 (default), best_accuracy, mean_3sigma, target_fpr, contamination, or one number"


def detector_list(value: str) -> list[str]:
    """argparse type: comma- or space-separated detector names to train (``pca`` or ``pca@kdd41``), kinds checked
    against the built-in and installed plug-in kinds."""
    names = _names(value)
    unknown = [n for n in names if n.split("@", 1)[0] not in known_kinds()]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown detector(s) {', '.join(unknown)}; choose from "
                                         f"{', '.join(known_kinds())} (add @SET for another feature set, e.g. "
                                         "pca@kdd41)")
    return names


_STORED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(?:@[A-Za-z0-9_-]+)?$")


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.replace(",", " ").split() if v.strip()]


def stored_list(value: str) -> list[str]:
    """argparse type: names of stored detectors (built-in, plug-in or external; whether the store holds them is
    checked when it is opened)."""
    names = _names(value)
    bad = [n for n in names if not _STORED.match(n)]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"{bad[0] if bad else value!r} is not a detector name (such as pca, "
                                         "pca@kdd41 or a plug-in's name)")
    return names


def stored_name(value: str) -> str:
    """argparse type: one stored detector's name."""
    names = stored_list(value)
    if len(names) != 1:
        raise argparse.ArgumentTypeError(f"give one detector, not {value!r}")
    return names[0]


def _add_data_source(parser: argparse.ArgumentParser) -> None:
    from anodet.datasets.kdd import SOURCE_ENV

    parser.add_argument("--data-source", metavar="FOLDER|URL",
                        help=f"where the raw KDD files are (default: ${SOURCE_ENV} or the official archive)")


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="DIR", help="model store folder (default: $ANODET_STORE or models_store/)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; with ``command``, only that one gets its options (the others are listed
    with their help: what ``python -m anodet --help`` shows is the same), so running one builds no other."""
    parser = argparse.ArgumentParser(
        prog="python -m anodet", description=__doc__,
        epilog="The command line acts as the operator: it has full access (the admin role) to the data folder, "
               "whatever the app's access policy says, and its dataset changes go to the audit log as cli:ACCOUNT.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, add in _SUBCOMMANDS:
        subparser = sub.add_parser(name, help=help_text)
        if command is None or command == name:
            add(subparser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    return parser


def _add_train(train: argparse.ArgumentParser) -> None:
    from anodet.training.estimates import DEFAULT_PRESET, PRESETS

    train.add_argument("--detectors", type=detector_list, help="comma-separated names (default: the --preset's)")
    train.add_argument("--preset", choices=list(PRESETS),
                       help="; ".join(f"{k}: {v}" for k, v in PRESETS.items())
                       + f" (default: {DEFAULT_PRESET}; each detector's estimated fit time is printed first)")
    train.add_argument("--seed", type=int, default=0, help="random seed (same seed, same models)")
    train.add_argument("--feature-sets", type=lambda v: [s.strip() for s in v.split(",") if s.strip()],
                       help="comma-separated feature sets to train on (default: all built in, kdd18,kdd41)")
    train.add_argument("--train-rows", type=int, help="train on a random subset of this many normals (quick runs)")
    train.add_argument("--epochs", type=int,
                       help="train the neural detectors for exactly this many epochs, without early stopping (quick "
                            "runs)")
    train.add_argument("--lock-timeout", type=float, metavar="S",
                       help="when another training holds the store: wait at most S seconds (0: refuse at once; "
                            "default: wait)")
    train.add_argument("--dataset", metavar="NAME",
                       help="train on a declared user dataset (python -m anodet dataset add) into its own store")
    train.add_argument("--detector-class", metavar="MODULE:CLASS",
                       help="also train a plug-in: any class with fit(X, y=None) and decision_function(X) or "
                            "score_samples(X), e.g. pyod.models.ecod:ECOD (kept as arrays and JSON through its "
                            "get_state/from_state, or refitted from the stored training rows when first loaded)")
    train.add_argument("--detector-params", metavar="JSON", default="{}",
                       help="the plug-in's constructor parameters as a JSON object, e.g. '{\"n_neighbors\": 10}' (the "
                            "seed goes in as random_state or seed when its constructor takes one)")
    train.add_argument("--detector-name", metavar="NAME",
                       help="the kind the plug-in is stored under (default: its package and class, e.g. pyod_ecod)")
    train.add_argument("--higher-is", choices=("auto", "anomalous", "normal"), default="auto",
                       help="which way the plug-in's scores point (default auto: decision_function is higher = more "
                            "anomalous, as PyOD's, except scikit-learn's outlier detectors and score_samples, higher = "
                            "more normal, which anodet negates)")
    _add_data_source(train)
    _add_store(train)


def _add_evaluate(ev: argparse.ArgumentParser) -> None:
    ev.add_argument("--detectors", type=stored_list, help="comma-separated names (default: all in the store and the "
                    "dataset's external detectors)")
    ev.add_argument("--dataset", metavar="NAME", help="the leaderboard of a user dataset's store on its test split")
    from anodet.commands import evaluate

    evaluate.add_arguments(ev)
    _add_data_source(ev)
    _add_store(ev)


def _add_data(data: argparse.ArgumentParser) -> None:
    data.add_argument("--rebuild", action="store_true", help="rebuild the cached splits")
    data.add_argument("--no-scores", action="store_true",
                      help="do not score the test and validation splits with the model store for the dashboard")
    _add_data_source(data)
    _add_store(data)


def _add_dataset(parser: argparse.ArgumentParser) -> None:
    from anodet.commands import dataset

    dataset.add_arguments(parser)


def _add_report(parser: argparse.ArgumentParser) -> None:
    from anodet.commands.report import add_arguments

    add_arguments(parser)


def _add_external(parser: argparse.ArgumentParser) -> None:
    from anodet.commands import external

    external.add_arguments(parser)


def _add_benchmark(parser: argparse.ArgumentParser) -> None:
    from anodet.commands.benchmark import add_arguments

    add_arguments(parser)


def _add_thresholds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", metavar="PRESET|VALUE", help=f"{PRESETS_HELP} for every detector")
    parser.add_argument("--thresholds", metavar="FILE",
                        help="a thresholds file exported from the dashboard; overrides --threshold for the "
                             "detectors it names")
    parser.add_argument("--label-view", choices=LABEL_VIEWS, default=LABEL_VIEWS[0],
                        help="label view of the threshold presets (and of the metrics when the input has labels)")


def _add_score(parser: argparse.ArgumentParser) -> None:
    from anodet.reader.limits import READ_TIMEOUT_S

    parser.description = (
        "Score CSV files (header naming KDD columns, any order, other columns passed through), raw KDD records "
        "(optionally .gz) or Parquet, in bounded memory; '-' reads standard input. Writes the input columns, "
        "then row, status, out_of_range, and score_<detector>, flag_<detector> per detector. Several inputs (or a "
        "glob, or --engine dask) write a folder of parts, one per input, and summary.json.")
    parser.add_argument("input", metavar="INPUT", nargs="+",
                        help="CSV, raw KDD (.gz accepted) or Parquet file, a glob such as 'logs/*.csv.gz', a FIFO, "
                             "or - for stdin")
    parser.add_argument("-o", "--output", metavar="OUTPUT",
                        help="results file: CSV (.gz to compress), .parquet, or '-' for standard output; default: "
                             "INPUT's name with .scored.csv, in the current folder; an existing file is replaced only "
                             "if "
                             "anodet wrote it. With several inputs: a new or empty folder, or one anodet wrote before "
                             "(parts are .parquet if the folder's name ends in .parquet, else .csv)")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="local: this process (default); dask: one task per input on a Dask cluster")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="the Dask scheduler to use (default: start a LocalCluster on this machine)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--detectors", type=stored_list,
                        help="comma-separated names (default: all stored but lof, seq2seq)")
    parser.add_argument("--dataset", metavar="NAME",
                        help="score with a user dataset's store: inputs hold the dataset's columns (a header), "
                             "detector names without @ are the dataset's (pca = pca@NAME); default threshold: the "
                             "store's default preset")
    _add_thresholds(parser)
    parser.add_argument("--on-bad-rows", choices=("skip", "reject"), default="skip",
                        help="skip rows that cannot be scored (listed in the output) or reject the file "
                             "(default: skip)")
    parser.add_argument("--read-timeout", type=float, default=READ_TIMEOUT_S, metavar="S",
                        help="give up when a pipe or standard input stays silent this long "
                             f"(default {READ_TIMEOUT_S:.0f})")
    _add_store(parser)
    parser.add_argument("--chunk-mb", type=float, default=CHUNK_MB, help=argparse.SUPPRESS)


def _add_stream(parser: argparse.ArgumentParser) -> None:
    from anodet.streaming.pipeline import MAX_DELIVERIES
    from anodet.streaming.sinks import ALERTS_MAXLEN, DEAD_LETTER_SUFFIX
    from anodet.streaming.sources.local import IDLE_TIMEOUT_S
    from anodet.streaming.sources.redis import CLAIM_IDLE_S

    defaults = {"batch_size": 8192, "max_wait": 0.01, "status_every": 5.0}
    parser.add_argument("--detector", required=True, type=stored_name,
                        help="detector to score with: any stored one, e.g. pca, ocsvm@kdd41, supervised@kdd41")
    _add_thresholds(parser)
    parser.add_argument("--dataset", metavar="NAME",
                        help="stream through a user dataset's detector (records with the dataset's columns; "
                             "--detector pca means pca@NAME)")
    parser.add_argument("--input", "--source", dest="input", default="-", metavar="SRC",
                        help="'-' for stdin (default), a file path, tcp://127.0.0.1:PORT to listen for producers "
                             "(served concurrently), redis://[:PASSWORD@]HOST:PORT/STREAM (a Redis Stream, read in "
                             "--group; rediss:// for TLS; or the password in $ANODET_REDIS_PASSWORD) or "
                             "kafka://HOST:PORT/TOPIC")
    parser.add_argument("--group", metavar="NAME",
                        help="consumer group of a redis:// or kafka:// source: processes in one group share the "
                             "records, each acknowledged only after its decision is written")
    parser.add_argument("--consumer", metavar="NAME",
                        help="this process's name in the group (default: HOST-PID); restarting under the same "
                             "name first re-reads what it had not acknowledged")
    parser.add_argument("--claim-idle", type=float, default=CLAIM_IDLE_S, metavar="S",
                        help="Redis: take over entries another consumer left unacknowledged this long (it died) "
                             f"(default {CLAIM_IDLE_S:.0f})")
    parser.add_argument("--max-deliveries", type=int, default=MAX_DELIVERIES, metavar="N",
                        help="Redis: an entry handed out more often than this without a decision (a poison message) "
                             f"goes to the dead-letter stream instead (default {MAX_DELIVERIES}; 0: never)")
    parser.add_argument("--dead-letter", metavar="redis://HOST:PORT/STREAM",
                        help="where entries that cannot be decided go, each with its reason (default for a Redis "
                             f"source: its stream's name + '{DEAD_LETTER_SUFFIX}' on the same server; otherwise the "
                             "rejects)")
    parser.add_argument("--follow", action="store_true",
                        help="at the end of input keep waiting: a file is read as it grows (tail -F), a TCP "
                             "listener accepts the next connection; stop with Ctrl-C or SIGTERM")
    parser.add_argument("--alerts", action="append", metavar="FILE|redis://HOST:PORT/STREAM",
                        help="alert log, one JSON line per anomaly, appended (default: stdout); a redis:// URL "
                             "also adds each alert to that stream (field 'alert'); may be given twice")
    parser.add_argument("--alerts-maxlen", type=int, default=ALERTS_MAXLEN, metavar="N",
                        help=f"trim an alert stream to about N entries (default {ALERTS_MAXLEN:,}; 0: never)")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus metrics on http://ADDR:PORT/metrics")
    parser.add_argument("--metrics-addr", default="127.0.0.1", metavar="ADDR",
                        help="address the metrics endpoint listens on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--rejects", metavar="FILE",
                        help="malformed lines as JSON lines (line, reason, raw); default: the first few on stderr")
    parser.add_argument("--webhook", metavar="URL", help="POST each alert (its JSON) to this URL")
    parser.add_argument("--webhook-retries", type=int, default=3, metavar="N", help="retries per alert (default 3)")
    parser.add_argument("--webhook-timeout", type=float, default=5.0, metavar="S", help="seconds per POST (default 5)")
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"], metavar="N",
                        help=f"most records per micro-batch (default {defaults['batch_size']})")
    parser.add_argument("--max-wait", type=float, default=defaults["max_wait"], metavar="S",
                        help=f"seconds a micro-batch waits to fill up (default {defaults['max_wait']})")
    parser.add_argument("--status-every", type=float, default=defaults["status_every"], metavar="S",
                        help="seconds between status lines on stderr; 0: only the final one (default 5)")
    parser.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT_S, metavar="S",
                        help=f"close a TCP connection silent this long (default {IDLE_TIMEOUT_S:.0f})")
    parser.add_argument("--stats", metavar="FILE",
                        help="also keep the latest status as JSON in FILE (the Live monitor page reads it)")
    _add_store(parser)


_SUBCOMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("train", "Build the data, train detectors and write the model store.", _add_train),
    ("evaluate", "Print the leaderboard on the test split for every label view, with 95 %% intervals; "
                 "--fpr/--budget/--cost rank at an operating point.", _add_evaluate),
    ("report", "Write the decision report on one detector at an operating point (HTML and/or Markdown).",
     _add_report),
    ("data", "Fetch, verify and cache the KDD splits (and the dashboard's scores on them).", _add_data),
    ("dataset", "Declare, list, show and delete user datasets (bring your own data).", _add_dataset),
    ("external", "Add, list and remove external detectors: scores made elsewhere, compared with anodet's on a "
                 "dataset's test split.", _add_external),
    ("score", "Score CSV files with the pretrained detectors.", _add_score),
    ("stream", "Stream records through a detector and raise alerts.", _add_stream),
    ("benchmark", "Benchmark the detector family (and PyOD's detectors) on a suite of labelled datasets.",
     _add_benchmark),
)
"""Subcommands in the order ``--help`` lists them: name, help, and what adds their options."""


def _command_of(argv: list[str]) -> str | None:
    """The subcommand ``argv`` runs (its first word that is not an option), or None."""
    return next((a for a in argv if not a.startswith("-")), None)


def _user_errors() -> tuple[type[BaseException], ...]:
    """The raw-data and model-store errors (one sentence, exit 2), from their modules where those are loaded:
    an error of a module that was never imported was never raised."""
    found = []
    for module, name in (("anodet.datasets.kdd", "DataError"), ("anodet.store.manifest", "StoreError"),
                         ("anodet.detectors.plugins", "PluginError")):
        loaded = sys.modules.get(module)
        if loaded is not None:
            found.append(getattr(loaded, name))
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command_of(argv)).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        code = importlib.import_module(SUBCOMMAND_MODULES[args.command]).run(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe must be seen while it can still be answered
        return code
    except BrokenPipeError:  # ``… | head``: the reader has what it wanted
        if not stdout_closed():
            raise
        _drop_stdout()
        return 0
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not isinstance(exc, ValueError):  # a ValueError may be a DatasetError (one sentence about the user's data)
            raise
        from anodet.datasets.errors import DatasetError

        if not isinstance(exc, DatasetError) and args.command != "dataset" and not getattr(args, "dataset", None):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone (what ``python -m anodet … | head`` leaves)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def _drop_stdout() -> None:
    """Point standard output at /dev/null, so what is still buffered does not fail again when Python exits."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
