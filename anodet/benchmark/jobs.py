"""A benchmark run started from the page, in the background: one at a time per server, with progress and Cancel.

:func:`start` checks the request in the caller's thread (one sentence for anything wrong), writes the
run's ``run.json`` and runs :func:`anodet.benchmark.run_benchmark` in a daemon thread, so the page
that started it, and every other session, stays responsive. The job keeps its progress (tasks done
of total, the last one finished) and its outcome; any session reads it with :func:`current`. A
second request while one runs is refused with a sentence. Cancel takes effect when the task being
run ends; the tasks finished so far are kept, and resuming the run does not redo them.
Messages never name a server path. Streamlit-free.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from anodet.benchmark import runs
from anodet.textsafe import without_paths

logger = logging.getLogger(__name__)

STARTING, RUNNING, DONE, FAILED, CANCELLED = "starting", "running", "done", "failed", "cancelled"
MAX_SEEDS = 10


class JobError(ValueError):
    """A benchmark cannot be started (one sentence)."""


class Cancelled(Exception):
    """Raised from the progress callback to stop a run between tasks."""


@dataclass(frozen=True)
class Request:
    """What a page asks to run: datasets of the ADBench folder and declared anodet datasets, by name."""

    run: str
    adbench: tuple[str, ...] = ()
    declared: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ("unsupervised",)
    seeds: int = 3
    detectors: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Request:
        return cls(str(doc["run"]), tuple(doc.get("adbench", ())), tuple(doc.get("declared", ())),
                   tuple(doc.get("protocols", ("unsupervised",))), int(doc.get("seeds", 3)),
                   tuple(doc.get("detectors", ())), tuple(doc.get("peers", ())))


# -- what can be run here ------------------------------------------------------------------------------------


def adbench_folder() -> Path | None:
    """The shared ADBench folder (``$ANODET_ADBENCH``, else ``../shared/adbench``) when it is a folder."""
    from anodet.benchmark.suites import default_suite

    folder = default_suite()
    return folder if folder is not None and folder.is_dir() else None


def adbench_datasets() -> dict[str, Path]:
    """The ADBench folder's datasets: name → file, in natural order ({} without the folder)."""
    from anodet.benchmark.suites import SuiteError, resolve

    folder = adbench_folder()
    if folder is None:
        return {}
    try:
        return {d.name: Path(d.source) for d in resolve([str(folder)])}
    except SuiteError:
        return {}


def declared_datasets() -> list[str]:
    """Declared anodet datasets with labels (a benchmark scores on labels)."""
    from anodet.datasets import userdata
    from anodet.datasets.errors import DatasetError

    out = []
    for name in userdata.list_datasets():
        try:
            if userdata.load(name).labelled:
                out.append(name)
        except DatasetError:
            continue
    return out


def family_choices() -> list[str]:
    """Family detectors the page offers: every benchmarkable kind, the neural ones only with Keras installed."""
    from anodet.benchmark.contenders import NOT_BENCHMARKED
    from anodet.detectors import NEURAL, REGISTRY, SUPERVISED

    keras = importlib.util.find_spec("keras") is not None
    return [k for k in REGISTRY if k not in NOT_BENCHMARKED and k not in SUPERVISED and (keras or k not in NEURAL)]


def peer_choices() -> list[str]:
    """PyOD's detectors offered as peers ([] when PyOD is not installed)."""
    from anodet.benchmark.contenders import PYOD_PEERS

    return list(PYOD_PEERS) if importlib.util.find_spec("pyod") is not None else []


# -- sentences without server paths ---------------------------------------------------------------------------


def public(message: object) -> str:
    """A library sentence for the page: the ADBench folder and the data folder by name, any other path as
    :func:`anodet.textsafe.without_paths` shows it (its last name)."""
    text = str(message)
    for folder, shown in ((adbench_folder(), "the ADBench folder"), (runs.data_root(), "the data folder")):
        if folder is not None:
            for spelled in {str(folder.resolve()), str(folder)}:
                text = text.replace(spelled + "/", "").replace(spelled, shown)
    return without_paths(text)


# -- the job ---------------------------------------------------------------------------------------------------


@dataclass
class Job:
    """One benchmark run: what a page shows while it runs and once it ends."""

    request: Request
    status: str = STARTING
    done: int = 0
    total: int = 0
    current: str = ""
    ran: int = 0
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def run(self) -> str:
        return self.request.run

    @property
    def active(self) -> bool:
        return self.status in (STARTING, RUNNING)

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set() and self.active

    def progress(self, done: int, total: int, what: str) -> None:
        """The runner's callback after each task; stops the run here when Cancel was pressed."""
        with self._lock:
            self.status, self.done, self.total = RUNNING, done, total
            if what != "already done":
                self.current, self.ran = what, self.ran + 1
        if self._cancel.is_set():
            raise Cancelled

    def cancel(self) -> None:
        """Stop when the task being run ends (the finished ones are kept)."""
        self._cancel.set()

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of what a page shows."""
        with self._lock:
            elapsed = (self.finished or time.time()) - self.started
            return {"run": self.run, "status": self.status, "done": self.done, "total": self.total,
                    "current": self.current, "ran": self.ran, "error": self.error, "elapsed": elapsed,
                    "fraction": min(self.done / self.total, 1.0) if self.total else 0.0,
                    "cancelling": self._cancel.is_set() and self.status in (STARTING, RUNNING)}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (True) or ``timeout`` seconds passed (False)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.active


_JOB: Job | None = None
_LOCK = threading.Lock()

Runner = Callable[..., Any]


def current() -> Job | None:
    """The server's latest benchmark job (running or ended), or None."""
    with _LOCK:
        return _JOB


def forget() -> None:
    """Drop an ended job (a running one is kept)."""
    global _JOB
    with _LOCK:
        if _JOB is not None and not _JOB.active:
            _JOB = None


def _items(request: Request) -> list[str]:
    """The suite ``run_benchmark`` is given: the ADBench files asked for, then the declared datasets' names."""
    from anodet.datasets import userdata

    if not request.adbench and not request.declared:
        raise JobError("Choose at least one dataset to run the benchmark on.")
    files = adbench_datasets() if request.adbench else {}
    if request.adbench and not files:
        raise JobError("The ADBench folder is not on this server; set $ANODET_ADBENCH to it, or choose declared "
                       "datasets.")
    missing = [n for n in request.adbench if n not in files]
    if missing:
        raise JobError(f"The ADBench folder has no dataset {missing[0]!r}; choose among {', '.join(list(files)[:6])}"
                       f"{' …' if len(files) > 6 else ''}.")
    known = set(userdata.list_datasets())
    gone = [n for n in request.declared if n not in known]
    if gone:
        raise JobError(f"{gone[0]!r} is not a declared dataset (any more); add it on the Your data page.")
    clash = sorted(set(request.adbench) & set(request.declared))
    if clash:
        raise JobError(f"{clash[0]!r} is both an ADBench dataset and a declared one; leave one of them out.")
    return [str(files[n]) for n in request.adbench] + list(request.declared)


def check(request: Request, resume: bool = False) -> tuple[list[str], Path]:
    """(the suite's items, the run's folder) for ``request``, or a JobError saying what is wrong."""
    from anodet.benchmark.contenders import ContenderError, check_neural, family_names, peer_names
    from anodet.benchmark.protocols import PROTOCOLS

    try:
        name = runs.check_name(request.run)
    except runs.RunError as exc:
        raise JobError(str(exc)) from None
    folder = runs.runs_root() / name
    if folder.exists() and not resume:
        raise JobError(f"A run named {name!r} exists already; choose another name.")
    if resume and runs.read_request(folder) is None:
        raise JobError(f"There is no run {name!r} started from this page to resume.")
    if not request.protocols or any(p not in PROTOCOLS for p in request.protocols):
        raise JobError("Choose the protocol: unsupervised, normal-only or both.")
    if not 1 <= request.seeds <= MAX_SEEDS:
        raise JobError(f"Seeds must be 1 to {MAX_SEEDS}.")
    if not request.detectors:
        raise JobError("Choose at least one detector of the family.")
    try:
        family_names(",".join(request.detectors))
        check_neural(list(request.detectors))
        peer_names(",".join(f"pyod:{p}" for p in request.peers))
    except ContenderError as exc:
        raise JobError(str(exc)) from None
    return _items(request), folder


def start(request: Request, resume: bool = False, runner: Runner | None = None) -> Job:
    """Start ``request`` in a background thread and return its job at once.

    A JobError (one sentence) when another run is going on this server or the request is wrong;
    ``resume``: go on with a page run of the same name (finished tasks are not redone);
    ``runner`` replaces :func:`anodet.benchmark.run_benchmark` (tests).
    """
    global _JOB
    with _LOCK:
        if _JOB is not None and _JOB.active:
            snap = _JOB.snapshot()
            raise JobError(f"A benchmark is running on this server (run {snap['run']!r}, {snap['done']} of "
                           f"{snap['total'] or '?'} tasks done); one runs at a time: wait for it to end or cancel it.")
        items, folder = check(request, resume)
        if not resume:
            folder.mkdir(parents=True)
            (folder / runs.RUN_JSON).write_text(json.dumps({**request.to_json(), "started": time.time()}, indent=1))
        job = Job(request)
        _JOB = job
    job._thread = threading.Thread(target=_run, args=(job, items, folder, runner), name=f"anodet-bench-{request.run}",
                                   daemon=True)
    job._thread.start()
    return job


def _run(job: Job, items: list[str], folder: Path, runner: Runner | None) -> None:
    from anodet.benchmark import run_benchmark
    from anodet.benchmark.contenders import PEER_PREFIX, ContenderError
    from anodet.benchmark.suites import SuiteError

    request = job.request
    try:
        (runner or run_benchmark)(items, folder, list(request.protocols), request.seeds, list(request.detectors),
                                  [PEER_PREFIX + p for p in request.peers], progress=job.progress)
        status, error = DONE, None
    except Cancelled:
        status, error = CANCELLED, None
    except (SuiteError, ContenderError, JobError) as exc:
        status, error = FAILED, public(exc)
    except Exception as exc:  # any other failure ends the job with one sentence; the log has the rest
        logger.error("benchmark run %s failed", request.run, exc_info=exc)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        status, error = FAILED, (f"The benchmark stopped on an unexpected {type(exc).__name__}"
                                 + (f" ({public(first)})" if first else "") + "; the server's log has the details.")
    with job._lock:
        job.status, job.error, job.finished = status, error, time.time()
