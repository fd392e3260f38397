"""Background training of user datasets: one job per dataset, shared by every session of the server.

A page starts :func:`start` and returns at once; the job's daemon thread runs
:func:`anodet.datasets.dataset_training.train` in a child process (:func:`train_in_child`) and keeps its progress (detectors done / total, the one being
fitted), its log lines and its outcome (the manifest, or one sentence saying what went wrong)
in a module-level registry keyed by dataset name. Any session reads it with :func:`get`.

Only one job runs per dataset; jobs of different datasets queue behind :data:`MAX_RUNNING`
so that a small server is not asked to train several families at once. Streamlit-free.

Why a child process (``python -m anodet.training.jobs``): once Keras is imported, Streamlit calls ``keras.backend.clear_session()``
after every script run (the progress fragment reruns each second), which collects garbage and
clears TensorFlow's kernel cache under a training in the same process: the neural models took
up to twice as long and, as the stateful random kernels restarted, came out different from
the same seed's models on the command line. A child process keeps TensorFlow out of the server.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anodet import PROJECT_ROOT
from anodet.datasets import userdata
from anodet.store.core import StoreError
from anodet.training import datasets as dataset_training

logger = logging.getLogger(__name__)

MAX_RUNNING = 1
"""Trainings that run at the same time in this process; more wait their turn ("queued")."""
LOG_LINES = 200
"""Log lines kept per job (the last ones)."""
LOCK_TIMEOUT = 5.0
"""Seconds to wait for a store lock held by another process (say, the command line) before giving up."""

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"

Trainer = Callable[..., dict[str, Any]]


class JobError(RuntimeError):
    """A job cannot be started (one sentence)."""


@dataclass
class Job:
    """One training of one dataset: what a page shows while it runs and once it ends."""

    name: str
    detectors: list[str] | None
    status: str = QUEUED
    done: int = 0
    total: int = 0
    current: str = ""
    lines: list[str] = field(default_factory=list)
    error: str | None = None
    manifest: dict[str, Any] | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.status in (QUEUED, RUNNING)

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    def log(self, line: str) -> None:
        with self._lock:
            self.lines.append(str(line))
            del self.lines[:-LOG_LINES]

    def progress(self, done: int, total: int, detector: str) -> None:
        with self._lock:
            self.status, self.done, self.total, self.current = RUNNING, done, total, detector

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of what a page shows (no half-updated fields)."""
        with self._lock:
            return {"name": self.name, "status": self.status, "done": self.done, "total": self.total,
                    "current": self.current, "lines": list(self.lines), "error": self.error,
                    "trained": sorted((self.manifest or {}).get("detectors", {})),
                    "elapsed": self.elapsed, "fraction": self.fraction}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (True) or ``timeout`` seconds passed (False)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.active


_JOBS: dict[str, Job] = {}
_REGISTRY_LOCK = threading.Lock()
_SLOTS = threading.BoundedSemaphore(MAX_RUNNING)


def get(name: str) -> Job | None:
    """The latest job of dataset ``name`` (running or ended), or None."""
    with _REGISTRY_LOCK:
        return _JOBS.get(name)


def running() -> list[str]:
    """Names of the datasets being trained or waiting to be."""
    with _REGISTRY_LOCK:
        return [n for n, j in _JOBS.items() if j.active]


def forget(name: str) -> None:
    """Drop an ended job of ``name`` from the registry (a running one is kept)."""
    with _REGISTRY_LOCK:
        job = _JOBS.get(name)
        if job is not None and not job.active:
            del _JOBS[name]


class ChildFailed(RuntimeError):
    """A training in a child process failed; the message is already the one sentence to show."""


def failure_sentence(exc: BaseException) -> str:
    """One sentence for a failed training: the library's own sentence, else the kind of error and its first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, userdata.DatasetError | StoreError | ChildFailed):
        return text or type(exc).__name__
    return (f"Training stopped on an unexpected {type(exc).__name__}" + (f" ({text})" if text else "")
            + "; the server's log has the details.")


MESSAGE = "\x1eanodet-job "
"""Marks the child's stdout lines that carry a message (JSON) for :func:`train_in_child`."""


def _child_main(argv: list[str]) -> int:
    """``python -m anodet.training.jobs NAME SEED LOCK_TIMEOUT DETECTORS_JSON``: train, printing messages
    ("log", line), ("progress", done, total, detector), then ("done", manifest) or ("failed", sentence)."""
    name, seed, lock_timeout, detectors = argv[0], int(argv[1]), json.loads(argv[2]), json.loads(argv[3])

    def say(*message: Any) -> None:
        print(MESSAGE + json.dumps(message), flush=True)  # a closed pipe (the server went away) ends the training

    try:
        manifest = dataset_training.train(name, detectors, seed=seed, log=lambda line: say("log", str(line)),
                                 progress=lambda done, total, det: say("progress", done, total, det),
                                 lock_timeout=lock_timeout)
    except Exception as exc:  # told to the server as one sentence; the details go to this process's stderr
        if not isinstance(exc, userdata.DatasetError | StoreError):
            logger.error("training dataset %s failed", name, exc_info=exc)
        say("failed", failure_sentence(exc))
        return 1
    say("done", manifest)
    return 0


def train_in_child(name: str, detectors: list[str] | None = None, seed: int = 0,
                   log: Callable[[str], None] = print, progress: Callable[[int, int, str], None] | None = None,
                   lock_timeout: float | None = None) -> dict[str, Any]:
    """:func:`anodet.datasets.dataset_training.train` in a child Python process, its log lines and progress relayed here;
    returns its manifest, or raises :class:`ChildFailed` with the one sentence saying why."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))
                                                       if p)}
    command = [sys.executable, "-m", "anodet.training.jobs", name, str(seed), json.dumps(lock_timeout),
               json.dumps(detectors)]
    result: dict[str, Any] | None = None
    failure = None
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if not line.startswith(MESSAGE):
                log(line.rstrip("\n"))  # something a library printed
                continue
            kind, *rest = json.loads(line[len(MESSAGE):])
            if kind == "log":
                log(rest[0])
            elif kind == "progress" and progress is not None:
                progress(*rest)
            elif kind == "done":
                result = rest[0]
            elif kind == "failed":
                failure = rest[0]
    if failure is not None:
        raise ChildFailed(failure)
    if result is None:
        raise ChildFailed(f"The training process ended without a result (exit code {child.returncode}); the server's "
                          "log has the details.")
    return result


def start(name: str, detectors: list[str] | None = None, seed: int = 0, trainer: Trainer | None = None) -> Job:
    """Start training dataset ``name`` in the background (a child process: :func:`train_in_child`); return its job.

    A JobError when that dataset is already being trained; a DatasetError when it is not declared.
    ``trainer`` replaces it, run in the job's thread (tests).
    """
    userdata.load(name)  # a DatasetError now, in the caller's thread, for a name that is not declared
    train = trainer or train_in_child
    with _REGISTRY_LOCK:
        old = _JOBS.get(name)
        if old is not None and old.active:
            raise JobError(f"Dataset {name!r} is already being trained ({old.done} of {old.total or '?'} detectors "
                           "done); wait for it to end.")
        job = Job(name, list(detectors) if detectors else None)
        _JOBS[name] = job

    def run() -> None:
        if not _SLOTS.acquire(blocking=False):
            job.log("waiting for another training on this server to end …")
            _SLOTS.acquire()
        try:
            with job._lock:
                job.status = RUNNING
            manifest = train(name, job.detectors, seed=seed, log=job.log, progress=job.progress,
                             lock_timeout=LOCK_TIMEOUT)
            with job._lock:
                job.manifest, job.status = manifest, DONE
                job.done = job.total = max(job.total, len(manifest.get("detectors", {})))
        except Exception as exc:  # any failure ends the job with one sentence
            if not isinstance(exc, userdata.DatasetError | ChildFailed):
                logger.error("training dataset %s failed", name, exc_info=exc)
            with job._lock:
                job.error, job.status = failure_sentence(exc), FAILED
        finally:
            with job._lock:
                job.finished = time.time()
                job.current = ""
            _SLOTS.release()

    job._thread = threading.Thread(target=run, name=f"anodet-train-{name}", daemon=True)
    job._thread.start()
    return job


# -- what a page shows about the declared datasets -----------------------------------------------------


def catalogue() -> list[dict[str, Any]]:
    """One row per declared dataset (from its declaration): name, rows, columns, labelled, trained, training."""
    out = []
    active = set(running())
    for name in userdata.list_datasets():
        try:
            d = userdata.load(name)
        except userdata.DatasetError:
            continue
        files = d.doc.get("files", {})
        rows = sum(int(f["rows"]) for f in files.values() if f)
        out.append({"dataset": name, "rows": rows, "columns": len(d.feature_columns), "labelled": d.labelled,
                    "test file": bool(files.get("test")),
                    "trained": (d.store_root / "manifest.json").exists(), "training now": name in active})
    return out


def trainable(name: str) -> tuple[list[str], dict[str, str]]:
    """(detector kinds that can be trained on dataset ``name``, kinds that cannot → why), in training order."""
    from anodet.detectors import REGISTRY

    d = userdata.load(name)
    skip, _, _ = dataset_training.plan(d, d.splits())
    return [k for k in REGISTRY if k not in skip], skip


def presets(name: str) -> list[dict[str, Any]]:
    """The training presets offered for dataset ``name``, the quick one first: for each, its name, what it trains,
    its detector kinds (those that fit the data) and the estimated fit time (``seconds``; ``upper``: an upper bound,
    as a neural model may stop early)."""
    from anodet.detectors import REGISTRY
    from anodet.features.sets import qualified
    from anodet.training import estimates
    from anodet.training.train import params_for

    d = userdata.load(name)
    splits = d.splits()
    got = dataset_training.corpus(d, splits)
    available = [k for k in REGISTRY if k not in got.skip]
    shapes = {d.feature_set_name: (len(splits.train), d.width)}
    out = []
    for preset, what in estimates.PRESETS.items():
        kinds = estimates.preset_kinds(preset, available)
        guess = estimates.estimate([qualified(k, d.feature_set_name) for k in kinds], shapes,
                                   lambda n: params_for(n, got), got.row_caps, len(splits.validation))
        out.append({"preset": preset, "what": what, "kinds": kinds, "seconds": guess.total, "upper": bool(guess.upper)})
    return out


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
