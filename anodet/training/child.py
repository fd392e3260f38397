"""A dataset's training in a child Python process, its log lines and progress relayed to the caller.

Why a child process (``python -m anodet.training.child``): once Keras is imported, Streamlit calls
``keras.backend.clear_session()`` after every script run (the progress fragment reruns each second),
which collects garbage and clears TensorFlow's kernel cache under a training in the same process:
the neural models took up to twice as long and, as the stateful random kernels restarted, came out
different from the same seed's models on the command line. A child process keeps TensorFlow out of
the server, and a cancelled training is stopped at once by ending the child (the store is swapped in
only when complete, so it stays as it was).

Access checks and the audit log stay with the caller (:func:`anodet.training.datasets.train` with
``fit=``): the child only fits (:func:`anodet.training.datasets.run_training`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from anodet import PROJECT_ROOT
from anodet.training.datasets import Cancelled

logger = logging.getLogger(__name__)

MESSAGE = "\x1eanodet-job "
"""Marks the child's stdout lines that carry a message (JSON) for :func:`train_in_child`."""
STOP_POLL_S = 0.2
"""How often the caller's stop request is checked while the child runs."""


class ChildFailed(RuntimeError):
    """A training in a child process failed; the message is already the one sentence to show."""


def main(argv: list[str]) -> int:
    """``python -m anodet.training.child NAME SEED LOCK_TIMEOUT DETECTORS_JSON EPOCHS_JSON PRESET_JSON``: train,
    printing messages ("log", line), ("progress", done, total, detector), then ("done", manifest) or
    ("failed", sentence)."""
    from anodet.datasets.errors import DatasetError
    from anodet.store.core import StoreError
    from anodet.training.datasets import run_training
    from anodet.training.jobs import failure_sentence

    name, seed, lock_timeout = argv[0], int(argv[1]), json.loads(argv[2])
    detectors, epochs, preset = json.loads(argv[3]), json.loads(argv[4]), json.loads(argv[5])

    def say(*message: Any) -> None:
        print(MESSAGE + json.dumps(message), flush=True)  # a closed pipe (the server went away) ends the training

    try:
        manifest = run_training(name, detectors, seed, lambda line: say("log", str(line)),
                                lambda done, total, det: say("progress", done, total, det), epochs, lock_timeout,
                                preset)
    except Exception as exc:  # told to the caller as one sentence; the details go to this process's stderr
        if not isinstance(exc, DatasetError | StoreError):
            logger.error("training dataset %s failed", name, exc_info=exc)
        say("failed", failure_sentence(exc))
        return 1
    say("done", manifest)
    return 0


def train_in_child(name: str, detectors: list[str] | None, seed: int, log: Callable[[str], None],
                   progress: Callable[[int, int, str], None] | None, epochs: int | None,
                   lock_timeout: float | None, preset: str | None = None,
                   should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """:func:`anodet.training.datasets.run_training` in a child process (the arguments are its own); returns its
    manifest, raises :class:`ChildFailed` with the one sentence saying why it failed, or
    :class:`~anodet.training.datasets.Cancelled` once ``should_stop()`` turned true and the child was ended.
    An exception raised by ``log`` or ``progress`` ends the
    child too, and is raised here."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))
                                                       if p)}
    command = [sys.executable, "-m", "anodet.training.child", name, str(seed), json.dumps(lock_timeout),
               json.dumps(detectors), json.dumps(epochs), json.dumps(preset)]
    result: dict[str, Any] | None = None
    failure = None
    stopped = threading.Event()
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdout is not None

        def watch() -> None:
            while child.poll() is None:
                if should_stop is not None and should_stop():
                    stopped.set()
                    child.terminate()
                    return
                threading.Event().wait(STOP_POLL_S)

        threading.Thread(target=watch, name=f"anodet-train-watch-{name}", daemon=True).start()
        try:
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
        except BaseException:
            child.terminate()
            raise
    if stopped.is_set() and result is None:
        raise Cancelled()
    if failure is not None:
        raise ChildFailed(failure)
    if result is None:
        raise ChildFailed(f"The training process ended without a result (exit code {child.returncode}); the server's "
                          "log has the details.")
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
