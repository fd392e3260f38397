"""Score many files into a folder of parts: one after another here, or in parallel on Dask.

Each input file is one task and becomes one part (``part-00000.csv`` or ``.parquet``, numbered by its
place among the inputs) through the very routine a single file goes through
(:func:`anodet.scoring.files.score_source`), so the engines agree row for row. An input that cannot be
scored (unreadable, truncated, without the columns a detector needs) does not stop the others: it gets
no part, and ``summary.json`` names it with the reason, beside the parts written and the files'
summaries added up.

The folder is anodet's to write: a new or empty folder, or one holding an earlier run's
``summary.json``. Parts are written to temporary files and moved into place once every input has been
tried; then the parts of the earlier run (only those its summary.json lists) that this run did not
write again are removed. Nothing else in the folder is touched, and an interrupted run changes nothing.

On Dask, each worker process opens the model store itself from its path (the store, the inputs and
the output folder must be at the same paths there, e.g. a shared disk) and keeps it for the tasks that
follow: models are never shipped through the scheduler. With no scheduler address a ``LocalCluster``
on this machine runs the tasks.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import re
import secrets
import socket
import struct
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from anodet.reader import InputError
from anodet.scoring.files import MAX_PROBLEMS_KEPT, Summary
from anodet.scoring.output import OutputError, ResultsFile, create_partial, describe_os_error

PART_FORMATS = ("csv", "parquet")
SUMMARY_NAME = "summary.json"
SUMMARY_FORMAT = "anodet-parts/1"
_PART_NAME = re.compile(r"part-\d{5}\.(csv|parquet)")
SUMMARY_MAX_BYTES = 1 << 24
CONNECT_TIMEOUT_S = 10.0
"""Seconds a Dask scheduler has to answer (and to have a worker) before the run gives up with one sentence."""
HANDSHAKE_MAX_BYTES = 1 << 20


class ClusterError(RuntimeError):
    """The Dask cluster cannot run the job; the message says why and what to do."""


def expand_inputs(patterns: list[str]) -> list[str]:
    """Files named by ``patterns`` (paths or globs), in order, each once; InputError when one matches nothing."""
    out: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise InputError(f"No file matches {pattern!r}. "
                             "Check the pattern (quote it so the shell does not expand it).")
        for match in matches:
            if Path(match).is_dir():
                raise InputError(f"{match} is a folder; name the files in it (e.g. {Path(match) / '*.csv'}).")
            if not Path(match).exists():
                raise InputError(f"{match} does not exist. Check the path.")
            if match not in out:
                out.append(match)
    return out


@dataclass(frozen=True)
class Task:
    """One input file to score into one part (written to a temporary file named with ``token``)."""

    source: str
    part: str
    store_root: str
    manifest_hash: str
    names: tuple[str, ...]
    thresholds: tuple[tuple[str, float], ...]
    on_bad_rows: str
    token: str = ""


@dataclass
class Outcome:
    """What became of one input: its summary and its finished part (a temporary file, not yet in place),
    or why it could not be scored."""

    summary: Summary | None = None
    staged: str | None = None
    error: str | None = None


@dataclass
class Batch:
    """A finished run: the summary of the inputs scored, the parts written, and each input that failed with why."""

    summary: Summary
    parts: list[Path]
    failed: list[tuple[str, str]]


_STORES: dict[tuple[str, str], Any] = {}


def _open_store(task: Task) -> Any:
    """The task's store, opened once per process and checked against the one the job was started with."""
    from anodet.store.core import Store, StoreError

    key = (task.store_root, task.manifest_hash)
    store = _STORES.get(key)
    if store is None:
        store = Store.open(Path(task.store_root))
        if store.hash != task.manifest_hash:
            raise StoreError(f"The model store at {task.store_root} differs on this worker from the one the job was "
                             "started with; give every worker the same store.")
        _STORES[key] = store
    return store


def run_task(task: Task) -> Outcome:
    """Score one file into its part's temporary file (in whichever process runs it). An input or output that
    cannot be used is an Outcome with the reason, not an exception: the other inputs go on."""
    from threadpoolctl import threadpool_limits

    from anodet.scoring.core import Scorer
    from anodet.scoring.files import score_source
    from anodet.store.core import StoreError

    results = ResultsFile(task.part)
    try:
        store = _open_store(task)
        sink = results.open(task.token or None)

        def write(table: Any) -> None:  # a failing write is said as one, not as a failing read
            try:
                sink(table)
            except OSError as exc:
                raise OutputError(describe_os_error(exc, task.part)) from None

        # One BLAS thread, as ``anodet score`` uses: rows are already spread over the cores by the
        # scoring threads (and by the workers), and a float32 matrix product can round a last bit
        # differently with another BLAS thread count, so every engine computes the same bits.
        with threadpool_limits(limits=1, user_api="blas"):
            summary = score_source(task.source, store, list(task.names), dict(task.thresholds), task.on_bad_rows,
                                   sink=write, scorer=Scorer(store, list(task.names)))
        staged = results.finish()
    except (InputError, OutputError, StoreError) as exc:
        results.discard()
        return Outcome(error=str(exc))
    except OSError as exc:  # reading the input (writing errors are OutputErrors)
        results.discard()
        return Outcome(error=f"Cannot read {task.source}: {exc.strerror or exc}.")
    except BaseException:
        results.discard()
        raise
    return Outcome(summary, str(staged))


def merge(summaries: list[Summary]) -> Summary:
    """One summary for many files: counts added, problems kept up to the usual number."""
    total = Summary(layout=summaries[0].layout if summaries else None)
    total.names = list(dict.fromkeys(n for s in summaries for n in s.names))
    total.thresholds = {k: v for s in summaries for k, v in s.thresholds.items()}
    total.flagged = dict.fromkeys(total.names, 0)
    for s in summaries:
        for field in ("rows_read", "rows_scored", "rows_skipped", "out_of_range", "saturated", "distinct_rows"):
            setattr(total, field, getattr(total, field) + getattr(s, field))
        total.out_of_range_columns.update(s.out_of_range_columns)
        total.unseen_categories.update(s.unseen_categories)
        for n, c in s.flagged.items():
            total.flagged[n] += c
        total.problems.extend(s.problems[:max(0, MAX_PROBLEMS_KEPT - len(total.problems))])
        for view, by_name in s.confusion.items():
            for n, counts in by_name.items():
                mine = total.confusion.setdefault(view, {}).setdefault(n, [0, 0, 0, 0])
                for i, c in enumerate(counts):
                    mine[i] += c
        for view, count in s.labelled.items():
            total.labelled[view] = total.labelled.get(view, 0) + count
        total.skipped_detectors = total.skipped_detectors or s.skipped_detectors
        total.seconds = max(total.seconds, s.seconds)
    return total


def earlier_parts(summary: Path) -> list[str] | None:
    """The part names an earlier run's summary.json lists; None when ``summary`` is not such a file."""
    try:
        if not summary.is_file():
            return None
        with open(summary, "rb") as f:
            doc = json.loads(f.read(SUMMARY_MAX_BYTES))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format", SUMMARY_FORMAT) != SUMMARY_FORMAT:
        return None
    parts = doc.get("parts")
    if not {"inputs", "detectors", "rows_read"} <= doc.keys() or not isinstance(parts, list):
        return None
    if not all(isinstance(p, str) and _PART_NAME.fullmatch(p) for p in parts):
        return None
    return parts


class OutputFolder:
    """The folder a run writes its parts and summary.json to, and the parts an earlier run left there."""

    def __init__(self, path: Path, part_format: str, count: int) -> None:
        self.path = path
        self.parts = [path / f"part-{i:05d}.{part_format}" for i in range(count)]
        self.token = secrets.token_hex(4)  # names this run's temporary files
        self.earlier: list[Path] = []
        self.created = self.committed = False

    def check(self) -> None:
        """Create a missing folder; refuse one holding files anodet did not write. An earlier run's folder
        (its summary.json) is taken, as long as no part this run writes has the name of a file that run
        did not list."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{self.path} is a file; with several inputs -o names a folder for the parts.")
        try:
            if not self.path.exists():
                self.path.mkdir(parents=True)
                self.created = True
                return
            entries = sorted(p.name for p in self.path.iterdir())
        except OSError as exc:
            raise OutputError(describe_os_error(exc, self.path)) from None
        if not entries:
            return
        earlier = earlier_parts(self.path / SUMMARY_NAME)
        if earlier is None:
            raise OutputError(f"{self.path} already holds files anodet did not write (such as {entries[0]}); so that "
                              "none of them is replaced, name a new or empty folder with -o.")
        clash = [p.name for p in self.parts if p.name in entries and p.name not in earlier]
        if clash:
            raise OutputError(f"{self.path / clash[0]} is not one of the parts listed by the summary.json there, so it "
                              "is left as it is; name a new or empty folder with -o.")
        self.earlier = [self.path / name for name in earlier]

    def commit(self, outcomes: list[Outcome], document: dict[str, Any]) -> list[Path]:
        """Move the finished parts into place, write summary.json, then remove the earlier run's parts that
        were not written again; the parts now in place."""
        written = []
        try:
            for part, outcome in zip(self.parts, outcomes, strict=True):
                if outcome.staged:
                    os.replace(outcome.staged, part)
                    written.append(part)
            document["parts"] = [p.name for p in written]
            summary = self.path / SUMMARY_NAME
            partial = create_partial(summary, self.token)
            partial.write_text(json.dumps(document, indent=1) + "\n")
            partial.replace(summary)
        except OSError as exc:
            raise OutputError(describe_os_error(exc, self.path)) from None
        self.committed = True
        for old in self.earlier:
            if old not in written and old.is_file() and not old.is_symlink():
                with contextlib.suppress(OSError):
                    old.unlink()
        return written

    def clean(self) -> None:
        """Remove this run's temporary files (parts not moved into place, summary.json not written), and the
        folder itself when this run created it and wrote nothing there."""
        for leftover in self.path.glob(f"*.{self.token}.part*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        if self.created and not self.committed:
            with contextlib.suppress(OSError):
                self.path.rmdir()


def score_many(inputs: list[str], out_dir: Path, store: Any, names: list[str], thresholds: dict[str, float],
               on_bad_rows: str = "skip", part_format: str = "csv", engine: str = "local",
               scheduler: str | None = None, workers: int = 2,
               progress: Callable[[int, int], None] | None = None) -> Batch:
    """Score ``inputs`` into ``out_dir``/part-NNNNN.{csv,parquet} and ``summary.json``.

    An input that cannot be scored is listed in :attr:`Batch.failed` (and summary.json) and gets no part;
    the folder's rules are :class:`OutputFolder`'s. A ClusterError when the Dask cluster cannot be used.
    """
    if part_format not in PART_FORMATS:
        raise ValueError(f"part_format must be one of {PART_FORMATS}")
    if engine not in ("local", "dask"):
        raise ValueError(f"unknown engine {engine!r}; choose local or dask")
    if engine == "dask" and scheduler is not None:
        scheduler = scheduler_address(scheduler)  # before anything is written
    folder = OutputFolder(out_dir, part_format, len(inputs))
    folder.check()
    start = time.perf_counter()
    tasks = [Task(src, str(part), str(store.root), store.hash, tuple(names), tuple(sorted(thresholds.items())),
                  on_bad_rows, folder.token) for src, part in zip(inputs, folder.parts, strict=True)]
    try:
        if engine == "local":
            outcomes = []
            for i, task in enumerate(tasks):
                outcomes.append(run_task(task))
                if progress:
                    progress(i + 1, len(tasks))
        else:
            outcomes = _on_dask(tasks, scheduler, workers, progress)
        summary = merge([o.summary for o in outcomes if o.summary is not None])
        summary.seconds = time.perf_counter() - start
        failed = [(src, o.error) for src, o in zip(inputs, outcomes, strict=True) if o.error is not None]
        parts = folder.commit(outcomes, _summary_json(summary, inputs, folder.parts, outcomes))
    finally:
        folder.clean()
    return Batch(summary, parts, failed)


def _summary_json(summary: Summary, inputs: list[str], parts: list[Path], outcomes: list[Outcome]) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    for source, part, outcome in zip(inputs, parts, outcomes, strict=True):
        if outcome.summary is None:
            files.append({"input": source, "part": None, "error": outcome.error})
            continue
        s = outcome.summary
        files.append({"input": source, "part": part.name, "rows_read": s.rows_read, "rows_scored": s.rows_scored,
                      "rows_skipped": s.rows_skipped, "flagged": s.flagged})
    return {
        "format": SUMMARY_FORMAT, "inputs": inputs, "parts": [], "files": files,
        "failed": [{"input": f["input"], "reason": f["error"]} for f in files if f["part"] is None],
        "detectors": summary.names, "thresholds": summary.thresholds, "rows_read": summary.rows_read,
        "rows_scored": summary.rows_scored, "rows_skipped": summary.rows_skipped,
        "out_of_range": summary.out_of_range, "saturated": summary.saturated, "flagged": summary.flagged,
        "skipped_detectors": summary.skipped_detectors, "unseen_categories": dict(Counter(summary.unseen_categories)),
        "problems": [asdict(p) for p in summary.problems[:100]],
    }


def scheduler_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> str:
    """``address`` as ``tcp://HOST:PORT`` once something there answers as a Dask scheduler does, else a
    ClusterError.

    A Dask server speaks first on a new connection: its handshake, one message whose first 8 bytes give
    its (small) length. Anything else is refused here (a web server waits for a request; other services
    answer in their own protocol), before Dask's client would wait on it without bound, or take the
    first bytes of an answer for a message length of exabytes.
    """
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    host, colon, port_text = rest.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if scheme != "tcp" or not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ClusterError(f"--scheduler {address!r} is not a Dask scheduler address; give tcp://HOST:PORT (a "
                           "scheduler listens on port 8786 unless told otherwise).")
    port = int(port_text)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterError(f"Cannot reach a Dask scheduler at {address} ({reason}); start one there with "
                           "`dask scheduler`, or check the address.") from None
    head = b""
    with sock:
        deadline = time.monotonic() + timeout
        with contextlib.suppress(OSError):
            while len(head) < 8 and time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                more = sock.recv(8 - len(head))
                if not more:
                    break
                head += more
    if len(head) < 8 or not 0 < struct.unpack("<Q", head)[0] <= HANDSHAKE_MAX_BYTES:
        raise ClusterError(f"{address} does not answer as a Dask scheduler does; check the host and port "
                           "`dask scheduler` printed (its default port is 8786).")
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


@contextlib.contextmanager
def _dask_logs(verbose: bool) -> Iterator[None]:
    """Dask's own log lines (tens per run, at INFO) only with ``-v``; otherwise not even its errors, as every
    failure that matters reaches the user as a sentence."""
    if verbose:
        yield
        return
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.filterwarnings("ignore", module=r"(distributed|tornado|bokeh)\b")
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "bokeh")]
    loggers += [logger for name, logger in logging.root.manager.loggerDict.items()
                if name.startswith(("distributed.", "tornado.")) and isinstance(logger, logging.Logger)
                and logger.level != logging.NOTSET]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        with stack:
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _on_dask(tasks: list[Task], scheduler: str | None, workers: int,
             progress: Callable[[int, int], None] | None) -> list[Outcome]:
    """Run the tasks on a Dask cluster (a LocalCluster when ``scheduler`` is None); their outcomes in task order."""
    from concurrent.futures import CancelledError

    import dask
    from distributed import Client, KilledWorker, LocalCluster, as_completed

    verbose = logging.getLogger().isEnabledFor(logging.INFO)
    with _dask_logs(verbose), contextlib.ExitStack() as stack:
        if scheduler is None:
            # Dask's defaults for worker processes (MALLOC_TRIM_THRESHOLD_=65536, one OpenMP/BLAS thread)
            # are tuned for many small pandas tasks; anodet's tasks allocate large arrays per chunk and
            # set their own BLAS threads (run_task), so the workers start with this process's environment.
            stack.enter_context(dask.config.set({"distributed.nanny.pre-spawn-environ": {}}))
            try:
                # No dashboard; the scheduler's own HTTP endpoints (health, metrics) on any free local port,
                # not on 8787, which another cluster on this machine may hold.
                cluster = stack.enter_context(LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.INFO if verbose else logging.CRITICAL + 1))
            except OSError as exc:
                raise ClusterError(f"Could not start Dask workers on this machine ({exc}); run with --engine "
                                   "local.") from None
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT_S))
            except OSError as exc:
                raise ClusterError(f"Cannot use the Dask scheduler at {scheduler} ({exc}); check that `dask "
                                   "scheduler` runs there.") from None
            try:
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
            except TimeoutError:
                raise ClusterError(f"The Dask scheduler at {scheduler} has no worker; start one with `dask worker "
                                   f"{scheduler}`.") from None
        futures = client.map(run_task, tasks, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Outcome] = [Outcome() for _ in tasks]
        for done, future in enumerate(as_completed(futures), start=1):
            i = index[future.key]
            try:
                results[i] = future.result()
            except KilledWorker:
                results[i] = Outcome(error="The Dask worker scoring it died (out of memory, or killed); score it on "
                                           "its own to see why.")
            except ImportError as exc:
                raise ClusterError(f"A Dask worker cannot run anodet ({exc}); install anodet (this checkout or the "
                                   "package) on every worker.") from None
            except (OSError, CancelledError) as exc:
                raise ClusterError(f"The Dask cluster went away while scoring ({exc or type(exc).__name__}); nothing "
                                   "was written. Run again.") from None
            if progress:
                progress(done, len(tasks))
        return results
