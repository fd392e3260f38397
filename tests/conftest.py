"""Shared fixtures: the KDD splits and the committed model store."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Library actions write audit lines: the tests' go to a temporary file, never the repository's data/ (a test that
# reads the log sets its own).
os.environ.setdefault("ANODET_AUDIT_LOG", os.path.join(tempfile.mkdtemp(prefix="anodet-audit-"), "audit.jsonl"))


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture(scope="session")
def splits():
    from anodet.datasets.kdd import load_splits

    return load_splits()


@pytest.fixture(scope="session")
def store():
    from anodet.store.core import Store

    return Store.open(ROOT / "models_store")


def wdbc_frame():
    """ODDS/ADBench "WDBC": the 357 benign records of scikit-learn's breast-cancer table and 10 malignant ones
    drawn with a fixed seed, labels in ``diagnosis`` (B/M). Generated at test time; nothing is committed."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    benign = frame[frame.target == 1]  # scikit-learn: 0 = malignant, 1 = benign
    malignant = frame[frame.target == 0].sample(10, random_state=0)
    out = pd.concat([benign, malignant]).sample(frac=1, random_state=0)
    out["diagnosis"] = np.where(out.pop("target") == 1, "B", "M")
    return out


def odds_files(tmp_path, label_in_train: bool = False):
    """WDBC built the ODDS way, split as the most common set-up: benign records to train on (no label column) and
    a labelled test file (the rest of the benign records and the malignant ones), with an id column."""
    import pandas as pd

    frame = wdbc_frame().reset_index(drop=True)
    frame.insert(0, "patient_id", [f"p{i:04d}" for i in range(len(frame))])
    benign = frame[frame["diagnosis"] == "B"]
    train = benign.iloc[:250]
    test = pd.concat([benign.iloc[250:], frame[frame["diagnosis"] == "M"]])
    train_path, test_path = tmp_path / "normals.csv", tmp_path / "labelled.csv"
    (train if label_in_train else train.drop(columns="diagnosis")).to_csv(train_path, index=False)
    test.to_csv(test_path, index=False)
    return train_path, test_path


def kdd_frame(part):
    """A KDD part as one frame, the way the cached splits keep it: the 41 raw columns, the attack name, its category
    and both label views' 0/1 columns, indexed by the record's line in its raw file (tests read it like that)."""
    frame = part.rows.copy()
    frame["attack"] = part.label_text
    frame["category"] = part.category
    for view, y in part.labels.items():
        frame[f"label_{view}"] = y
    frame.index = part.record_id
    return frame


def threshold_in_force(at, name: str, view: str) -> float:
    """A detector's threshold in an AppTest session: moved by hand, else the operating point's (the default preset,
    best F1, on the committed KDD store)."""
    from anodet.store.core import Store

    moved = at.session_state["thresholds"].get(view, {}) if "thresholds" in at.session_state else {}
    return float(moved[name]) if name in moved else Store.open(ROOT / "models_store").default_threshold(name, view)


def principals():
    """The four people the access tests act as: a viewer, two analysts and an admin (anodet.access.Principal)."""
    from anodet.access.identity import Principal

    return (Principal(id="vera@example.com", name="Vera", role="viewer"),
            Principal(id="ann@example.com", name="Ann", role="analyst"),
            Principal(id="otto@example.com", name="Otto", role="analyst"),
            Principal(id="adam@example.com", name="Adam", role="admin"))
