"""Background training of user datasets: one job per dataset, shared by every session of the server.

A page starts :func:`start` and returns at once; the job trains in a daemon thread through
:func:`anodet.datasets.train` and keeps its progress (detectors done / total, the one being
fitted), its log lines and its outcome (the manifest, or one sentence saying what went wrong)
in a module-level registry keyed by dataset name. Any session reads it with :func:`get`.

Only one job runs per dataset; jobs of different datasets queue behind :data:`MAX_RUNNING`
so that a small server is not asked to train several families at once. Streamlit-free.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anodet import datasets
from anodet.access import Principal, require
from anodet.store import StoreError

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


def failure_sentence(exc: BaseException) -> str:
    """One sentence for a failed training: the library's own sentence, else the kind of error and its first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, datasets.DatasetError) or isinstance(exc, StoreError):
        return text or type(exc).__name__
    return (f"Training stopped on an unexpected {type(exc).__name__}" + (f" ({text})" if text else "")
            + "; the server's log has the details.")


def start(name: str, detectors: list[str] | None = None, seed: int = 0, trainer: Trainer | None = None,
          principal: Principal | None = None) -> Job:
    """Start training dataset ``name`` in a background thread and return its job at once.

    A JobError when that dataset is already being trained; a DatasetError when it is not declared;
    an :class:`~anodet.access.AccessDenied` when ``principal`` (default: the command line's operator)
    may not train. ``trainer`` replaces :func:`anodet.datasets.train` (tests); it gets ``principal``.
    """
    principal = require(principal, "train", resource=f"dataset:{name}")  # refused in the caller's thread
    datasets.load(name)  # a DatasetError now, in the caller's thread, for a name that is not declared
    train = trainer or datasets.train
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
                             lock_timeout=LOCK_TIMEOUT, principal=principal)
            with job._lock:
                job.manifest, job.status = manifest, DONE
                job.done = job.total = max(job.total, len(manifest.get("detectors", {})))
        except Exception as exc:  # any failure ends the job with one sentence
            if not isinstance(exc, datasets.DatasetError):
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
    for name in datasets.list_datasets():
        try:
            d = datasets.load(name)
        except datasets.DatasetError:
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

    d = datasets.load(name)
    skip, _, _ = datasets.plan(d, d.splits())
    return [k for k in REGISTRY if k not in skip], skip
