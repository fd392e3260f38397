"""Shared fixtures: the KDD splits and the committed model store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def splits():
    from anodet.data import load_splits

    return load_splits()


@pytest.fixture(scope="session")
def store():
    from anodet.store import Store

    return Store.open(ROOT / "models_store")
