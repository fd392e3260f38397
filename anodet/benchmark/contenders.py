"""What a benchmark runs: the anodet family's detectors and PyOD's as peers, behind one fit/score call.

Family detectors run with their class defaults (not the KDD-tuned ``hyperparams.json``), adapted
only where a dataset is too small or too narrow for them (fewer PCA components than features,
fewer clusters, neighbours or tree samples than rows); the parameters used go into the results.
The ensemble is built on :data:`ENSEMBLE_MEMBERS`. The neural detectors run when asked, each
within a time budget: one epoch is timed and the model is trained again for as many epochs as the
budget allows (up to its default), or kept after that one epoch.

PyOD's detectors (an optional extra, ``pip install pyod``) run with PyOD's default settings, their
seed set where the constructor takes one; their names start with ``pyod:`` and they are marked as
peers in every table and chart.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import time
import warnings
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from anodet.detectors import NEURAL, SUPERVISED, create, detector_class, known_kinds
from anodet.detectors import display_name as kind_display_name

QUICK = ("pca", "iforest", "ocsvm", "lof", "kmeans", "zscore", "mahalanobis", "ecod", "knn", "ensemble")
"""The quick classical set a benchmark runs by default."""
ENSEMBLE_MEMBERS = ("iforest", "ecod", "knn")
"""The benchmark's ensemble: one member per kind of evidence (isolation depth, marginal tails, neighbour distance)."""
NOT_BENCHMARKED = {"supervised": "it trains on labels"}
PEER_PREFIX = "pyod:"
PYOD_PEERS: dict[str, str] = {
    "ECOD": "pyod.models.ecod:ECOD", "COPOD": "pyod.models.copod:COPOD", "IForest": "pyod.models.iforest:IForest",
    "KNN": "pyod.models.knn:KNN", "LOF": "pyod.models.lof:LOF", "OCSVM": "pyod.models.ocsvm:OCSVM",
    "HBOS": "pyod.models.hbos:HBOS", "CBLOF": "pyod.models.cblof:CBLOF", "PCA": "pyod.models.pca:PCA",
}
"""PyOD's common detectors, run with default settings as peers (``--peers pyod``)."""
PYOD_VERSION = "3.6.7"
NEURAL_BUDGET_S = 60.0


class ContenderError(ValueError):
    """A detector or peer name that cannot run here; the message is one sentence."""


def is_peer(name: str) -> bool:
    return name.startswith(PEER_PREFIX)


def display_name(name: str) -> str:
    """How a contender is shown: ``ECOD`` for the family's, ``ECOD (PyOD)`` for a peer."""
    if is_peer(name):
        return f"{name[len(PEER_PREFIX):]} (PyOD)"
    return kind_display_name(name) if name in known_kinds() else name


def family_names(value: str | None) -> list[str]:
    """Family detector kinds from a comma list (default: the quick set); refuses unknown and unbenchmarkable ones."""
    if value is None:
        return list(QUICK)
    names = [v.strip() for v in value.replace(",", " ").split() if v.strip()]
    if names == ["quick"]:
        return list(QUICK)
    for name in names:
        if name == "quick":
            continue
        if name not in known_kinds():  # built-in kinds and installed plug-ins (anodet.detectors entry points)
            known = ", ".join(k for k in known_kinds() if k not in NOT_BENCHMARKED)
            raise ContenderError(f"Unknown detector {name!r}; choose from {known} (or 'quick').")
        if name in NOT_BENCHMARKED:
            raise ContenderError(f"{name} cannot be benchmarked on its own: {NOT_BENCHMARKED[name]}.")
    expanded = [n for v in names for n in (QUICK if v == "quick" else (v,))]
    return list(dict.fromkeys(expanded))


def peer_names(value: str | None) -> list[str]:
    """Peer names from ``--peers``: ``pyod`` (PyOD's common detectors) or ``pyod:KNN,pyod:ECOD``; PyOD must be there."""
    if not value:
        return []
    out: list[str] = []
    for item in (v.strip() for v in value.replace(",", " ").split() if v.strip()):
        if item.lower() == "pyod":
            out.extend(PEER_PREFIX + n for n in PYOD_PEERS)
            continue
        if not item.lower().startswith(PEER_PREFIX):
            raise ContenderError(f"Unknown peer {item!r}; give pyod (PyOD's common detectors) or names such as "
                                 "pyod:KNN,pyod:ECOD.")
        wanted = item[len(PEER_PREFIX):]
        match = {n.lower(): n for n in PYOD_PEERS}.get(wanted.lower())
        if match is None:
            raise ContenderError(f"Unknown PyOD peer {wanted!r}; choose from {', '.join(PYOD_PEERS)}.")
        out.append(PEER_PREFIX + match)
    if importlib.util.find_spec("pyod") is None:
        raise ContenderError(f"--peers pyod needs PyOD, which is not installed; install it with "
                             f"`pip install pyod=={PYOD_VERSION}` (or `pip install anodet[peers]`).")
    return list(dict.fromkeys(out))


def check_neural(names: list[str]) -> None:
    """Refuse neural detectors when TensorFlow/Keras is missing, in one sentence."""
    if any(n in NEURAL for n in names) and importlib.util.find_spec("keras") is None:
        raise ContenderError("The neural detectors need TensorFlow and Keras; install them with "
                             "`pip install -r requirements-train.txt`, or leave them out of --detectors.")


def family_params(kind: str, n_rows: int, n_features: int) -> dict[str, Any]:
    """The class defaults of ``kind``, adapted to a dataset of ``n_rows`` fitting rows and ``n_features`` columns."""
    params = dict(detector_class(kind).default_params)
    if kind == "pca":
        params["n_components"] = max(1, min(params["n_components"], n_features - 1, n_rows - 1))
    elif kind == "kmeans":
        params["n_clusters"] = max(1, min(params["n_clusters"], n_rows))
    elif kind == "lof":
        params["n_neighbors"] = max(1, min(params["n_neighbors"], n_rows - 1))
    elif kind == "iforest":
        params["max_samples"] = max(1, min(params["max_samples"], n_rows))
    return params


class Fitted:
    """A fitted contender: scores (kept per array, so a row set is scored once per task), parameters, seconds.

    An ensemble's scores come from its members' (each member scores a row set once, whoever asks
    first); its seconds include theirs, so its row reports what running it alone costs.
    """

    def __init__(self, name: str, scorer: Callable[[np.ndarray], np.ndarray] | None, params: dict[str, Any],
                 fit_seconds: float, members: dict[str, Fitted] | None = None,
                 combine: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None) -> None:
        self.name, self.params, self.fit_seconds = name, params, fit_seconds
        self._scorer, self.members, self._combine = scorer, members or {}, combine
        self._memo: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Scores of ``rows`` (computed once per array object)."""
        hit = self._memo.get(id(rows))
        if hit is not None and hit[0] is rows:
            return hit[1]
        if self._combine is not None:
            member_scores = {m: f.score(rows) for m, f in self.members.items()}
            start = time.perf_counter()
            scores = self._combine(member_scores)
            seconds = time.perf_counter() - start + sum(f.seconds(rows) for f in self.members.values())
        else:
            assert self._scorer is not None
            start = time.perf_counter()
            scores = self._scorer(rows)
            seconds = time.perf_counter() - start
        self._memo[id(rows)] = (rows, scores, seconds)
        return scores

    def seconds(self, rows: np.ndarray) -> float:
        """Seconds scoring ``rows`` took (0 before they are scored)."""
        hit = self._memo.get(id(rows))
        return hit[2] if hit is not None and hit[0] is rows else 0.0


class _MemberView:
    """A fitted member as the ensemble sees it: ``decision_function`` from the member's kept scores."""

    def __init__(self, fitted: Fitted) -> None:
        self.fitted = fitted

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.fitted.score(X)


def fit(name: str, X: np.ndarray, seed: int, budget_s: float = NEURAL_BUDGET_S,
        fitted: dict[str, Fitted] | None = None, calibration: np.ndarray | None = None) -> Fitted:
    """Fit contender ``name`` on ``X`` (float32, scaled) with ``seed``.

    ``fitted``: contenders already fitted on ``X`` in this task (an ensemble reuses its members);
    ``calibration``: a sample of ``X`` the ensemble puts its members' scores on a common scale with.
    """
    if is_peer(name):
        return _fit_peer(name, X, seed)
    if name in SUPERVISED or name in NOT_BENCHMARKED:
        raise ContenderError(f"{name} cannot be benchmarked: it trains on labels.")
    if name == "ensemble":
        return _fit_ensemble(X, seed, fitted or {}, X if calibration is None else calibration)
    params = family_params(name, len(X), X.shape[1])
    if name in NEURAL:
        return _fit_neural(name, X, seed, params, budget_s)
    start = time.perf_counter()
    detector = create(name, seed=seed, **params).fit(X)
    return Fitted(name, detector.decision_function, params, time.perf_counter() - start)


def _fit_ensemble(X: np.ndarray, seed: int, fitted: dict[str, Fitted], calibration: np.ndarray) -> Fitted:
    """The ensemble of :data:`ENSEMBLE_MEMBERS` (members fitted in this task are reused, the others fitted here),
    calibrated on ``calibration``; its fit seconds are its members' plus the calibration's."""
    members = {m: fitted[m] if m in fitted else fit(m, X, seed) for m in ENSEMBLE_MEMBERS}
    start = time.perf_counter()
    detector = create("ensemble", seed=seed, members=list(members))
    detector.attach(cast(Any, {m: _MemberView(f) for m, f in members.items()}))
    detector.fit(calibration)
    seconds = time.perf_counter() - start + sum(f.fit_seconds for f in members.values())
    return Fitted("ensemble", None, {"members": list(members), "calibration_rows": len(calibration)}, seconds,
                  members=members, combine=detector.score_from_members)


def _fit_neural(name: str, X: np.ndarray, seed: int, params: dict[str, Any], budget_s: float) -> Fitted:
    from anodet.detectors.neural import _frameworks

    _frameworks()  # importing TensorFlow is not training: it stays out of the timed epoch
    start = time.perf_counter()
    detector = create(name, seed=seed, **{**params, "epochs": 1}).fit(X)
    one_epoch = max(time.perf_counter() - start, 1e-3)
    epochs = int(min(params["epochs"], (budget_s - one_epoch) // one_epoch))
    if epochs > 1:
        detector = create(name, seed=seed, **{**params, "epochs": epochs}).fit(X)
    else:
        epochs = 1
    return Fitted(name, detector.decision_function, {**params, "epochs": epochs}, time.perf_counter() - start)


_WARM: set[str] = set()


def _peer_class(name: str) -> Any:
    """PyOD's class for peer ``name``, fitted once on a tiny matrix first in this process, so its just-in-time
    compilation (numba, in HBOS, ECOD, COPOD…) is not timed as the first dataset's fit."""
    module_name, class_name = PYOD_PEERS[name[len(PEER_PREFIX):]].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if name not in _WARM:
        _WARM.add(name)
        tiny = np.random.default_rng(0).uniform(size=(64, 4))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cls().fit(tiny).decision_function(tiny)
            except Exception:  # the warm-up is only for timing; the real fit reports its own errors
                pass
    return cls


def _fit_peer(name: str, X: np.ndarray, seed: int) -> Fitted:
    cls = _peer_class(name)
    kwargs = {"random_state": seed} if "random_state" in inspect.signature(cls.__init__).parameters else {}
    model = cls(**kwargs)
    X64 = X.astype(np.float64)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X64)
    seconds = time.perf_counter() - start

    def score(rows: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(model.decision_function(np.asarray(rows, dtype=np.float64)), dtype=np.float64)

    return Fitted(name, score, {**kwargs, "defaults": "pyod"}, seconds)
