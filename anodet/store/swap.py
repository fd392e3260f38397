"""Writing a model store safely: one training at a time, a private staging folder, a journalled swap.

Folders and files beside a store ``<parent>/<name>``:

* ``.<name>.lock`` — held (``fcntl.flock``) by the one training writing the store; it names that
  run (pid, host, start time) so a second run can say whom it waits for. The kernel drops the lock
  when the process dies, even by SIGKILL, so it never goes stale.
* ``.<name>.staging-<run>`` — where a run builds the new store; never seen by readers.
* ``.<name>.swap.json`` — the journal, written once the staging store is complete. It is the
  commit point: without it an interrupted run is discarded, with it the swap is finished.
* ``.<name>.old-<run>`` — the previous store between the two renames of the swap; it is deleted
  only by a run (or recovery) whose journal says the new store was built from it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from anodet.store.manifest import MANIFEST, StoreError

logger = logging.getLogger(__name__)

FAULT_ENV = "ANODET_STORE_FAULT"
"""Test hook: ``kill:<step>`` SIGKILLs the process at a step, ``pause:<step>:<file>`` waits there
(after creating ``<file>.waiting``) until ``<file>`` exists. Steps: see :func:`checkpoint`."""
STEPS = ("locked", "staged", "committed", "old-moved", "new-moved", "old-removed")
POLL_SECONDS = 0.2
SWAP_WAIT_SECONDS = 5.0


def sibling(root: Path, kind: str) -> Path:
    """``<parent>/.<name>.<kind>``: a hidden neighbour of the store, on the same file system."""
    return root.with_name(f".{root.name}.{kind}")


def checkpoint(step: str) -> None:
    """Die or pause at a named step when the test hook ``$ANODET_STORE_FAULT`` asks for it."""
    action, _, rest = os.environ.get(FAULT_ENV, "").partition(":")
    target, _, release = rest.partition(":")
    if target != step:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "pause" and release:
        Path(release + ".waiting").write_text(str(os.getpid()))
        while not Path(release).exists():
            time.sleep(0.05)


class StoreLock:
    """The exclusive lock on a store for one training (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = sibling(self.root, "lock")
        self._handle: TextIO | None = None

    def holder(self) -> str:
        """Who holds the lock, as words: "pid 123 on host, started 2025-01-01T10:00:00+00:00"."""
        try:
            info = json.loads(self.path.read_text() or "{}")
            return f"pid {info['pid']} on {info['host']}, started {info['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a run that has not yet said who it is"

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                 "command": " ".join(sys.argv)[:300]}))
        handle.flush()
        self._handle = handle
        return True

    def acquire(self, timeout: float | None = None) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (None: as long as it takes, 0: not at all)."""
        if self.try_acquire():
            return
        holder = self.holder()
        if timeout == 0:
            raise StoreError(f"Another training is writing the store at {self.root} ({holder}); wait for it to "
                             f"finish, or stop that process, then run this again.")
        logger.warning("store %s is locked by another training (%s); waiting for it to finish", self.root, holder)
        start = time.monotonic()
        while not self.try_acquire():
            if timeout is not None and time.monotonic() - start > timeout:
                raise StoreError(f"Gave up after {timeout:.0f} s waiting for the training that is writing the store "
                                 f"at {self.root} ({self.holder()}); run this again when it has finished.")
            time.sleep(POLL_SECONDS)
        logger.info("store %s: lock acquired after %.1f s", self.root, time.monotonic() - start)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.truncate(0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    @contextlib.contextmanager
    def held(self, timeout: float | None = None) -> Iterator[StoreLock]:
        self.acquire(timeout)
        try:
            yield self
        finally:
            self.release()


def new_staging(root: Path) -> Path:
    """An empty staging folder private to this run."""
    staging = sibling(root, f"staging-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    return staging


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def commit(staging: Path, root: Path, new_hash: str, built_from: str | None) -> None:
    """Replace ``root`` by the complete store in ``staging`` (call with the lock held).

    ``new_hash`` is the sha256 of the staging manifest and ``built_from`` that of the store it was
    built from (None if there was none); recovery relies on both.
    """
    journal = sibling(root, "swap.json")
    old = sibling(root, "old-" + staging.name.rsplit("staging-", 1)[1])
    _write_atomically(journal, json.dumps({"staging": staging.name, "old": old.name, "new_manifest": new_hash,
                                           "built_from": built_from, "pid": os.getpid()}).encode())
    checkpoint("committed")
    _finish(journal, staging, root, old, new_hash)


def _manifest_hash(root: Path) -> str | None:
    import hashlib

    try:
        return hashlib.sha256((root / MANIFEST).read_bytes()).hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _finish(journal: Path, staging: Path, root: Path, old: Path, new_hash: str) -> None:
    """Carry a journalled swap through from wherever it stopped; idempotent.

    The staging store is moved in whenever it is still there, even if the store in place has the same
    manifest (a retraining with the same seed writes the same one): then only ``run.json`` differs.
    """
    if _manifest_hash(staging) == new_hash:
        if root.exists():
            if old.exists():
                raise StoreError(f"Both {root} and {old} exist while {journal} says one replaces the other; "
                                 f"nothing was deleted. Keep the one you want as {root}, then delete {journal}.")
            root.rename(old)
        checkpoint("old-moved")
        staging.rename(root)
        _fsync_dir(root.parent)
    elif _manifest_hash(root) != new_hash:
        raise StoreError(
            f"An interrupted training left {journal}, but neither {root} nor {staging} holds the store it "
            f"describes; nothing was deleted. Restore {old if old.exists() else root} by hand (rename it to "
            f"{root}), delete {journal}, and run training again.")
    checkpoint("new-moved")
    shutil.rmtree(old, ignore_errors=True)
    checkpoint("old-removed")
    journal.unlink()


def leftovers(root: Path) -> list[Path]:
    """Folders an interrupted training may have left beside the store (staging, old, journal)."""
    pattern = f".{root.name}."
    if not root.parent.is_dir():
        return []
    return sorted(p for p in root.parent.iterdir()
                  if p.name.startswith(pattern) and not p.name.endswith((".lock", ".tmp")))


def recover(root: Path) -> None:
    """Finish or discard what an interrupted training left (call with the lock held).

    A journalled swap is finished; staging folders without a journal are runs that never
    committed and are deleted. A missing store with only unjournalled copies left (as an older
    anodet left them) is not guessed at: the error names the folders to restore from.
    """
    journal = sibling(root, "swap.json")
    sibling(root, "swap.json.tmp").unlink(missing_ok=True)  # a journal never finished: nothing was committed
    if journal.exists():
        try:
            record = json.loads(journal.read_text())
            staging, old = root.parent / record["staging"], root.parent / record["old"]
            new_hash = record["new_manifest"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{journal}, left by an interrupted training, is unreadable ({exc}); nothing was changed. "
                             f"Check {root} and the hidden folders beside it, then delete {journal}.") from None
        logger.warning("store %s: finishing the swap of a training that was interrupted (pid %s)",
                       root, record.get("pid"))
        _finish(journal, staging, root, old, new_hash)
    for path in leftovers(root):
        if path.name.startswith(f".{root.name}.staging-"):
            logger.warning("store %s: deleting %s, the unfinished work of a training that never committed", root, path)
            shutil.rmtree(path, ignore_errors=True)
    if not (root / MANIFEST).exists():
        copies = [p for p in leftovers(root) if (p / MANIFEST).exists()]
        if copies:
            listed = ", ".join(f"{p} (written "
                               f"{dt.datetime.fromtimestamp((p / MANIFEST).stat().st_mtime):%Y-%m-%d %H:%M})"
                               for p in copies)
            raise StoreError(f"The store {root} is missing but an interrupted training left {listed}; nothing was "
                             f"deleted. Rename the one to keep to {root} (a `.staging` folder holds the newer "
                             f"training, `.old` the store before it), then run again.")
    else:
        for path in leftovers(root):
            logger.warning("store %s: leaving %s alone (not written by this version of anodet; delete it if "
                           "you do not need it)", root, path)


def wait_for_swap(root: Path) -> bool:
    """For a reader: True once ``root`` has a manifest, waiting out a swap in progress (a few ms)."""
    deadline = time.monotonic() + SWAP_WAIT_SECONDS
    while not (root / MANIFEST).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
