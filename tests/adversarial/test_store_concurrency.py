"""Two trainings on one store, and a training killed at each step of its swap: no trained detector is lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anodet.store.core import MANIFEST, Store, StoreError
from anodet.store.swap import FAULT_ENV, STEPS, leftovers
from anodet.training.train import train
from tests.conftest import ROOT

TRAIN = ("import sys; from anodet.training.train import train; "
         "train([sys.argv[1]], seed=int(sys.argv[2]), store_root=sys.argv[3], train_rows=2000)")

pytestmark = pytest.mark.slow  # subprocesses, sockets, trainings: CI runs them; the inner loop skips them


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(ROOT / "models_store", root)
    return root


def start(name: str, seed: int, root: Path, log: Path, fault: str = "") -> subprocess.Popen:
    env = {**os.environ, FAULT_ENV: fault}
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-c", TRAIN, name, str(seed), str(root)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def wait_for(condition, what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def detectors(root: Path) -> dict:
    return json.loads((root / MANIFEST).read_text())["detectors"]


def test_two_trainings_at_once_both_land(store, tmp_path):
    """The second run waits for the first (saying for whom) and builds on its result."""
    go = tmp_path / "go"
    first = start("zscore", 11, store, tmp_path / "first.log", f"pause:staged:{go}")
    try:
        wait_for(Path(str(go) + ".waiting").exists, "the first training to reach its swap")
        second = start("kmeans", 12, store, tmp_path / "second.log")
        wait_for(lambda: f"pid {first.pid} on" in (tmp_path / "second.log").read_text(),
                 "the second training to say it waits for the first")
        with pytest.raises(StoreError, match=rf"Another training is writing the store at .*\(pid {first.pid} on "
                                             r".+, started \d{4}-\d\d-\d\dT"):
            train(["iforest"], seed=13, store_root=store, train_rows=2000, log=lambda m: None, lock_timeout=0)
        go.touch()
        assert first.wait(180) == 0, (tmp_path / "first.log").read_text()
        assert second.wait(180) == 0, (tmp_path / "second.log").read_text()
    finally:
        for process in (first, locals().get("second")):
            if process is not None and process.poll() is None:
                process.kill()
    entries = detectors(store)
    assert len(entries) == 26  # 13 kinds on two feature sets
    assert entries["zscore"]["seed"] == 11 and entries["kmeans"]["seed"] == 12
    assert entries["iforest"]["seed"] == 0
    Store.open(store).verify()
    assert leftovers(store) == []


@pytest.mark.parametrize("step", STEPS)
def test_a_training_killed_at_any_step_loses_nothing(store, tmp_path, step):
    before = detectors(store)
    killed = start("zscore", 11, store, tmp_path / "run.log", f"kill:{step}")
    assert killed.wait(180) == -signal.SIGKILL, (tmp_path / "run.log").read_text()
    assert leftovers(store) or step == "locked"  # something was left for recovery to deal with

    opened = Store.open(store)  # recovery happens here
    opened.verify()
    assert opened.names == list(before)
    committed = STEPS.index(step) >= STEPS.index("committed")
    assert opened.entry("zscore")["seed"] == (11 if committed else 0)
    assert {n: e for n, e in opened.manifest["detectors"].items() if not n.startswith("zscore")} == {
        n: e for n, e in before.items() if not n.startswith("zscore")}
    assert leftovers(store) == []


def test_the_next_training_recovers_a_swap_killed_between_its_renames(store, tmp_path):
    """The reported loss: killed between the renames, then `train --detectors pca`-like rerun."""
    killed = start("zscore", 11, store, tmp_path / "run.log", "kill:old-moved")
    assert killed.wait(180) == -signal.SIGKILL
    assert not store.exists()
    train(["kmeans"], seed=12, store_root=store, train_rows=2000, log=lambda m: None)
    entries = detectors(store)
    assert len(entries) == 26 and entries["zscore"]["seed"] == 11 and entries["kmeans"]["seed"] == 12
    assert leftovers(store) == []


def test_copies_left_by_an_older_anodet_are_named_not_deleted(store):
    """Without a journal nothing says which copy is the right one: name them and touch nothing."""
    old, staging = store.with_name(f".{store.name}.old"), store.with_name(f".{store.name}.staging")
    shutil.copytree(store, staging)
    store.rename(old)
    for attempt in (lambda: Store.open(store),
                    lambda: train(["pca"], store_root=store, train_rows=2000, log=lambda m: None)):
        with pytest.raises(StoreError, match="interrupted training left") as caught:
            attempt()
        assert str(old) in str(caught.value) and str(staging) in str(caught.value)
        assert (old / MANIFEST).exists() and (staging / MANIFEST).exists() and not store.exists()
