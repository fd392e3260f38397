"""The one detector interface (scikit-learn's shape):
``fit(X, y=None)``, ``decision_function`` higher = more anomalous."""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

PARAMS_FILE = "params.json"


class Detector(ABC):
    """Base class of every anodet detector, in the shape scikit-learn and PyOD users know.

    ``fit(X, y=None)`` learns what normal looks like and returns the detector;
    ``decision_function(X)`` gives one float per record, higher = more anomalous, everywhere in
    anodet. Parameters go to ``__init__`` (``seed`` and the kind's :attr:`default_params`) and are
    read and changed with :meth:`get_params` / :meth:`set_params`, so ``sklearn.base.clone`` and
    grid searches work on any detector; learned state lives in attributes ending in ``_``. ``X`` is
    a feature set's output (:mod:`anodet.features.sets`), shape ``(n, d)``. Thresholds are not part of
    a detector: they belong to the user's operating point and to the store's validation-chosen defaults.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    """What pages and tables call the kind: the one source of display names."""
    family: ClassVar[str]  # "neural", "classical", "ensemble" or "supervised"
    uses_labels: ClassVar[bool] = False  # fitted on labelled records (the supervised ceiling)
    default_params: ClassVar[dict[str, Any]] = {}
    training_: dict[str, Any] | None = None
    """What the last fit ran and why (the neural detectors' epochs: :mod:`anodet.detectors.epochs`), or None."""

    def __init__(self, seed: int = 0, **params: Any) -> None:
        self._check_names(params)
        self.seed = seed
        self.params: dict[str, Any] = {**self.default_params, **params}

    def _check_names(self, params: dict[str, Any]) -> None:
        unknown = set(params) - set(self.default_params)
        if unknown:
            raise TypeError(f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                            f"it takes {', '.join(['seed', *self.default_params])}")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """``seed`` and every parameter, as scikit-learn's ``get_params`` returns them."""
        return {"seed": self.seed, **self.params}

    def set_params(self, **params: Any) -> Detector:
        """Change parameters (scikit-learn's ``set_params``); the detector must be fitted again."""
        if "seed" in params:
            self.seed = int(params.pop("seed"))
        self._check_names(params)
        self.params.update(params)
        return self

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (asked for by its tools, which have imported it already): an outlier
        detector on 2-D float arrays that needs ``y`` only when it uses labels."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(estimator_type="outlier_detector", target_tags=TargetTags(required=self.uses_labels),
                    input_tags=InputTags(), non_deterministic=False)

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.params.items() if self.default_params.get(k) != v}
        shown = ", ".join(f"{k}={v!r}" for k, v in {"seed": self.seed, **changed}.items() if k != "seed" or v)
        return f"{type(self).__name__}({shown})"

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Detector:
        """Learn what normal looks like from records ``X``; ``y`` only for detectors that use labels."""

    @abstractmethod
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """One float per record, higher = more anomalous; shape ``(n,)``."""

    def score(self, X: np.ndarray) -> np.ndarray:
        """Deprecated alias of :meth:`decision_function` (scikit-learn's ``score`` is a metric);
        kept for one release."""
        warnings.warn(f"{type(self).__name__}.score(X) is deprecated: call decision_function(X) (higher = more "
                      "anomalous); score will be removed in the next release", FutureWarning, stacklevel=2)
        return self.decision_function(X)

    @property
    def members(self) -> list[str]:
        """Names of the detectors this one is built on (its scores need theirs); [] for most."""
        return []

    def attach(self, members: dict[str, Detector]) -> Detector:
        """Give the fitted detectors named in :attr:`members` (before ``fit`` or ``score``)."""
        return self

    def score_from_members(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """The score from the raw scores of :attr:`members` already computed (detectors with members only)."""
        raise TypeError(f"{self.name} is not built on other detectors; call decision_function(X)")

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
