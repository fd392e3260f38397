"""Background training of user datasets: one job per dataset, shared by every session of the server.

A page starts :func:`start` and returns at once; the job trains in a daemon thread through
:func:`anodet.training.datasets.train`, fitting in a child process (:mod:`anodet.training.child`: TensorFlow stays
out of the server), and keeps its progress (detectors done / total, the one being
fitted), its log lines and its outcome (the manifest, or one sentence saying what went wrong)
in a module-level registry keyed by dataset name. Any session reads it with :func:`get`.

Only one job runs per dataset; jobs of different datasets queue behind :data:`MAX_RUNNING`
so that a small server is not asked to train several families at once. A user has at most their
``trainings`` quota queued or running, and the server at most :data:`MAX_QUEUED`; whoever started
a job (or an admin) cancels it: a queued job never starts, a running one's process is ended and the
store stays as it was. Streamlit-free.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anodet.access import audit, quotas
from anodet.access.identity import Principal, cli_principal
from anodet.access.permissions import AccessDenied, require
from anodet.datasets import ownership, userdata
from anodet.store.core import StoreError
from anodet.textsafe import without_paths
from anodet.training import datasets as dataset_training
from anodet.training.child import ChildFailed, train_in_child
from anodet.training.datasets import Cancelled

logger = logging.getLogger(__name__)

MAX_RUNNING = 1
"""Trainings that run at the same time in this process; more wait their turn ("queued")."""
LOG_LINES = 200
"""Log lines kept per job (the last ones)."""
LOCK_TIMEOUT = 5.0
"""Seconds to wait for a store lock held by another process (say, the command line) before giving up."""
MAX_QUEUED = 8
"""Trainings queued or running on the server at once (every user's together)."""

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"

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
    started_by: str = ""
    """The id of the principal who started it (they, or an admin, may cancel it)."""
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_requested: bool = False
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
        """Keep a log line for the page (server paths shown as names: anyone who sees the dataset reads it)."""
        if self.cancel_requested:
            raise Cancelled()
        with self._lock:
            self.lines.append(without_paths(line))
            del self.lines[:-LOG_LINES]

    def progress(self, done: int, total: int, detector: str) -> None:
        if self.cancel_requested:
            raise Cancelled()
        with self._lock:
            self.status, self.done, self.total, self.current = RUNNING, done, total, detector

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of what a page shows (no half-updated fields)."""
        with self._lock:
            return {"name": self.name, "status": self.status, "done": self.done, "total": self.total,
                    "current": self.current, "lines": list(self.lines), "error": self.error,
                    "started_by": self.started_by, "cancelling": self.cancel_requested and self.active,
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
    if isinstance(exc, userdata.DatasetError | StoreError | AccessDenied | ChildFailed):
        return text or type(exc).__name__
    return (f"Training stopped on an unexpected {type(exc).__name__}" + (f" ({text})" if text else "")
            + "; the server's log has the details.")


def start(name: str, detectors: list[str] | None = None, seed: int = 0, trainer: Trainer | None = None,
          principal: Principal | None = None) -> Job:
    """Start training dataset ``name`` in the background (fitting in a child process) and return its job at once.

    A JobError when that dataset is already being trained or the server's queue is full; a
    DatasetError when it is not declared; an :class:`~anodet.access.AccessDenied` when ``principal``
    (default: the command line's operator) may not train it (its owner or an admin may) or has their
    quota of trainings queued. ``trainer`` replaces :func:`anodet.training.datasets.train` (tests).
    """
    doc = ownership.read_doc(name)
    if doc is None:
        userdata.load(name)  # a DatasetError now, in the caller's thread, for a name that is not declared
    ownership.hidden_from(principal, name, doc or {}, "train")
    resource = f"dataset:{name}"
    actor = require(principal, "train", ownership.owner_of(doc), resource=resource)  # refused in the caller's thread
    owner = ownership.owner_of(doc) or actor.id
    quotas.check_disk(actor, owner, ownership.disk_usage(owner), 0, "train", resource)
    with _REGISTRY_LOCK:
        old = _JOBS.get(name)
        if old is not None and old.active:
            raise JobError(f"Dataset {name!r} is already being trained ({old.done} of {old.total or '?'} detectors "
                           "done); wait for it to end.")
        active = [j for j in _JOBS.values() if j.active]
        if len(active) >= MAX_QUEUED:
            raise JobError(f"This server already has {len(active)} trainings queued or running, the most it takes; "
                           "try again when one has ended.")
        quotas.check_trainings(actor, sum(1 for j in active if j.started_by == actor.id), resource)
        job = Job(name, list(detectors) if detectors else None, started_by=actor.id)
        _JOBS[name] = job
    audit.record(actor, "train", audit.STARTED, resource, ", ".join(job.detectors or []) or "every detector")

    def run() -> None:
        acquired = False
        try:
            while not (acquired := _SLOTS.acquire(timeout=0.5)):
                if job.cancel_requested:
                    raise Cancelled()
                if not job.lines:
                    job.log("waiting for another training on this server to end …")
            with job._lock:
                job.status = RUNNING
            if trainer is None:  # it audits the outcome; the child is ended as soon as a cancel is asked for
                manifest = dataset_training.train(
                    name, job.detectors, seed=seed, log=job.log, progress=job.progress, lock_timeout=LOCK_TIMEOUT,
                    principal=actor, fit=functools.partial(train_in_child, should_stop=lambda: job.cancel_requested))
            else:
                manifest = trainer(name, job.detectors, seed=seed, log=job.log, progress=job.progress,
                                   lock_timeout=LOCK_TIMEOUT, principal=actor)
            with job._lock:
                job.manifest, job.status = manifest, DONE
                job.done = job.total = max(job.total, len(manifest.get("detectors", {})))
        except Cancelled:
            if not acquired:  # never reached the trainer: the audit line is this one
                audit.record(actor, "train", audit.CANCELLED, resource, "cancelled while queued")
            with job._lock:
                job.status, job.error = CANCELLED, "Cancelled; the store is as it was before this training."
        except Exception as exc:  # any failure ends the job with one sentence
            if not isinstance(exc, userdata.DatasetError | ChildFailed):
                logger.error("training dataset %s failed", name, exc_info=exc)
            with job._lock:
                job.error, job.status = without_paths(failure_sentence(exc)), FAILED
        finally:
            with job._lock:
                job.finished = time.time()
                job.current = ""
            if acquired:
                _SLOTS.release()

    job._thread = threading.Thread(target=run, name=f"anodet-train-{name}", daemon=True)
    job._thread.start()
    return job


def cancel(name: str, principal: Principal | None = None) -> Job | None:
    """Cancel dataset ``name``'s queued or running training (None when there is none); whoever started it or an
    admin (``principal``, the command line's operator when None) may. A running one stops before its next step."""
    job = get(name)
    if job is None or not job.active:
        return None
    resource = f"training:{name}"
    actor = require(principal, "cancel", job.started_by or None, resource=resource)
    with job._lock:
        job.cancel_requested = True
    audit.record(actor, "cancel", audit.OK, resource, f"started by {job.started_by}")
    return job


def delete_dataset(name: str, principal: Principal | None = None) -> list[Any]:
    """Delete dataset ``name`` (:func:`anodet.datasets.ownership.delete`), refused while it is queued or being
    trained here (cancel it first)."""
    job = get(name)
    if job is not None and job.active:
        actor = principal if principal is not None else cli_principal()
        message = (f"Dataset {name!r} is queued or being trained on this server; cancel the training (or wait for it "
                   "to end), then delete the dataset.")
        audit.record(actor, "delete", audit.FAILED, f"dataset:{name}", message)
        raise userdata.DatasetError(message)
    removed = ownership.delete(name, principal)
    forget(name)
    return removed


# -- what a page shows about the declared datasets -----------------------------------------------------


def catalogue(principal: Principal | None = None) -> list[dict[str, Any]]:
    """One row per dataset ``principal`` sees (the command line's operator, who sees all, when None; from its
    declaration): name, owner, sharing, rows, columns, labelled, trained, training."""
    out = []
    active = set(running())
    for name in ownership.visible(principal):
        try:
            d = userdata.load(name)
        except userdata.DatasetError:
            continue
        files = d.doc.get("files", {})
        rows = sum(int(f["rows"]) for f in files.values() if f)
        out.append({"dataset": name, "owner": ownership.owner_of(d.doc) or "", "shared": ownership.sharing_of(d.doc),
                    "rows": rows, "columns": len(d.feature_columns), "labelled": d.labelled,
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
