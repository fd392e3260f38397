"""The one detector interface: fit on normal records, score with higher = more anomalous."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

PARAMS_FILE = "params.json"


class Detector(ABC):
    """Base class of every anodet detector.

    Parameters go to ``__init__`` and are kept in :attr:`params`; learned state lives in
    attributes ending in ``_``. ``X`` is a feature set's output (:mod:`anodet.features.sets`), shape
    ``(n, d)``; no detector knows ``d`` before it sees the training rows.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    family: ClassVar[str]  # "neural", "classical", "ensemble" or "supervised"
    uses_labels: ClassVar[bool] = False  # fitted on labelled records (the supervised ceiling)
    default_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, seed: int = 0, **params: Any) -> None:
        unknown = set(params) - set(self.default_params)
        if unknown:
            raise TypeError(f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.seed = seed
        self.params: dict[str, Any] = {**self.default_params, **params}

    @abstractmethod
    def fit(self, X: np.ndarray) -> Detector:
        """Learn what normal looks like from normal records ``X``."""

    @abstractmethod
    def score(self, X: np.ndarray) -> np.ndarray:
        """One float per record, higher = more anomalous; shape ``(n,)``."""

    @property
    def members(self) -> list[str]:
        """Names of the detectors this one is built on (its scores need theirs); [] for most."""
        return []

    def attach(self, members: dict[str, Detector]) -> Detector:
        """Give the fitted detectors named in :attr:`members` (before ``fit`` or ``score``)."""
        return self

    def score_from_members(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """The score from the raw scores of :attr:`members` already computed (detectors with members only)."""
        raise TypeError(f"{self.name} is not built on other detectors; call score(X)")

    def feature_scores(self, X: np.ndarray) -> np.ndarray | None:
        """Per-feature contributions to the score, shape ``(n, d)``; None if the model has none."""
        return None

    @abstractmethod
    def _save_state(self, folder: Path) -> list[Path]:
        """Write learned state into ``folder``; return the files written."""

    @abstractmethod
    def _load_state(self, folder: Path) -> None:
        """Read learned state written by :meth:`_save_state`."""

    def save(self, folder: Path) -> list[Path]:
        """Write parameters and learned state into ``folder``; return every file written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        params_path = folder / PARAMS_FILE
        params_path.write_text(json.dumps({"seed": self.seed, "params": self.params}, indent=2))
        return [params_path, *self._save_state(folder)]

    @classmethod
    def load(cls, folder: Path) -> Detector:
        """Rebuild a fitted detector from a folder written by :meth:`save`."""
        folder = Path(folder)
        saved = json.loads((folder / PARAMS_FILE).read_text())
        detector = cls(seed=saved["seed"], **saved["params"])
        detector._load_state(folder)
        return detector


def as_matrix(X: np.ndarray) -> np.ndarray:
    """``X`` as a C-contiguous float32 matrix, the dtype every detector scores in."""
    return np.ascontiguousarray(X, dtype=np.float32)


def save_arrays(path: Path, **arrays: np.ndarray) -> Path:
    """Plain arrays as ``.npz`` (no pickle)."""
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
    return path


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Arrays from an ``.npz`` written by :func:`save_arrays`, refusing pickled objects."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
