"""Choosing hyperparameters on the validation split: by full ROC AUC, or by partial ROC AUC up to an operating point.

A detector is used at a threshold, and at a strict operating point (0.01 % FPR: 50 alerts a day out of 500,000
records) only the top of its ranking matters; the full ROC AUC also rewards the ranking far below it. The
``pauc`` criterion judges each candidate by its validation partial ROC AUC up to ``max_fpr`` (McClish-standardised,
:meth:`anodet.evaluation.metrics.ThresholdCurve.partial_auc`: 0.5 is chance, 1 perfect), averaged over the chosen
label views. Ties (at a strict point many candidates flag no attack above the top normal record: 0.5) go to the
higher mean ROC AUC. ``roc_tolerance`` keeps the full ranking honest: a candidate whose validation ROC AUC falls
more than that below, in any view, the candidate the ``roc_auc`` criterion would choose is not chosen.

Every number here comes from the validation split; the test split is never looked at. Candidates are fitted on the
training normals with the seed and parameters training uses (:func:`fit_candidate`), so what is chosen is what
``python -m anodet train`` then builds. An ensemble's members and weights are searched over already fitted members
(:func:`ensemble_candidates`), scaled as :meth:`anodet.detectors.ensemble.Ensemble.fit` scales them.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from anodet.detectors import create
from anodet.detectors.ensemble import CALIBRATION_ROWS, Ensemble
from anodet.evaluation import metrics

CRITERIA = ("roc_auc", "pauc")

GRIDS: dict[str, dict[str, list[Any]]] = {
    "pca": {"n_components": [1, 2, 3, 4, 6, 8, 10, 12, 16]},
    "kmeans": {"n_clusters": [4, 8, 16, 32]},
    "zscore": {"min_std": [1e-3, 1e-2, 5e-2, 0.1, 0.3]},
    "mahalanobis": {},
    "ecod": {},
    "knn": {"n_neighbors": [1, 5, 20], "method": ["largest", "mean"]},
    "ocsvm": {"gamma": [0.1, 0.3, 1.0, 3.0], "nu": [0.01, 0.05]},
    "iforest": {"n_estimators": [100, 200], "max_samples": [256, 1024]},
    "lof": {"n_neighbors": [10, 20, 50, 100]},
    "autoencoder": {"latent": [2, 4, 8]},
    "vae": {"latent": [2, 4, 8]},
    "bigan": {"latent": [2, 4, 8], "cycle_weight": [3.0, 10.0, 30.0]},
    "seq2seq": {"units": [32]},
    "supervised": {"max_depth": [8, 16]},
}
"""The candidates per kind (other parameters keep the class defaults). The ensemble's are searched over its members
(:func:`ensemble_candidates`)."""

SET_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    # An LSTM over ~120 one-hot steps costs ~7x the 18-step one: fewer rows and epochs keep the
    # whole training inside its 5-minute budget.
    "kdd41": {"seq2seq": {"max_rows": 10_000, "epochs": 4}},
}
CHEAP = ("pca", "zscore", "mahalanobis", "kmeans", "knn", "ecod", "iforest", "lof", "ocsvm")
"""The kinds a search fits in seconds; the neural ones take minutes each on KDD."""


def grid(kind: str, feature_set: str) -> list[dict[str, Any]]:
    """The candidate parameters of ``kind`` on ``feature_set``."""
    axes = GRIDS.get(kind, {})
    fixed = SET_OVERRIDES.get(feature_set, {}).get(kind, {})
    keys = list(axes)
    return [{**fixed, **dict(zip(keys, values, strict=True))}
            for values in itertools.product(*(axes[k] for k in keys))] or [dict(fixed)]


@dataclass(frozen=True)
class Criterion:
    """How candidates are compared: ``roc_auc`` (mean validation ROC AUC over ``views``) or ``pauc`` (mean
    validation partial ROC AUC up to ``max_fpr`` over ``views``, among candidates whose validation ROC AUC is within
    ``roc_tolerance``, in every view judged, of the candidate with the best mean ROC AUC; None: no such bound)."""

    name: str = "roc_auc"
    max_fpr: float = 1e-3
    views: tuple[str, ...] = ("reference", "true")
    roc_tolerance: float | None = None

    def __post_init__(self) -> None:
        if self.name not in CRITERIA:
            raise ValueError(f"unknown criterion {self.name!r}; choose {' or '.join(CRITERIA)}")
        if not 0 < self.max_fpr <= 1:
            raise ValueError(f"max_fpr must be above 0 and at most 1, not {self.max_fpr}")
        if not self.views:
            raise ValueError("name at least one label view to judge candidates in")
        if self.roc_tolerance is not None and self.roc_tolerance < 0:
            raise ValueError(f"roc_tolerance must be 0 or more, not {self.roc_tolerance}")

    def describe(self) -> str:
        views = " and ".join(self.views)
        if self.name == "roc_auc":
            return f"mean validation ROC AUC ({views} view)"
        bound = (f", among candidates within {self.roc_tolerance:g} in every view of the validation ROC AUC of the "
                 "candidate with the best mean ROC AUC"
                 if self.roc_tolerance is not None else "")
        return f"mean validation partial ROC AUC up to FPR {self.max_fpr:g} ({views} view){bound}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "max_fpr": self.max_fpr, "views": list(self.views),
                "roc_tolerance": self.roc_tolerance}


@dataclass
class Candidate:
    """One candidate and how it did on the validation split: ROC AUC and partial AUC per label view."""

    kind: str
    params: dict[str, Any]
    roc_auc: dict[str, float]
    pauc: dict[str, float]
    seconds: float = 0.0
    validation: np.ndarray | None = field(default=None, repr=False)  # its scores on the validation split
    calibration: np.ndarray | None = field(default=None, repr=False)  # on the rows an ensemble calibrates on

    def forget_scores(self) -> None:
        self.validation = self.calibration = None

    def value(self, criterion: Criterion) -> float:
        judged = self.pauc if criterion.name == "pauc" else self.roc_auc
        return float(np.mean([judged[v] for v in criterion.views]))

    def mean_roc_auc(self) -> float:
        return float(np.mean(list(self.roc_auc.values())))


def judge(kind: str, params: Mapping[str, Any], scores: np.ndarray, labels: Mapping[str, np.ndarray],
          max_fpr: float, seconds: float = 0.0, keep_scores: bool = False) -> Candidate:
    """A candidate's validation ROC AUC and partial AUC up to ``max_fpr`` in every view of ``labels``."""
    roc, pauc = {}, {}
    for view, y in labels.items():
        roc[view] = metrics.roc_auc(y, scores)
        pauc[view] = metrics.ThresholdCurve.from_scores(y, scores).partial_auc(max_fpr)
    return Candidate(kind, dict(params), roc, pauc, seconds, scores if keep_scores else None)


def choose(candidates: Sequence[Candidate], criterion: Criterion) -> Candidate:
    """The best candidate by ``criterion`` (see :class:`Criterion`); ties go to the higher mean ROC AUC, then to the
    earlier candidate."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    eligible = list(candidates)
    if criterion.name == "pauc" and criterion.roc_tolerance is not None:
        by_roc = max(candidates, key=lambda c: round(c.mean_roc_auc(), 12))  # what the roc_auc criterion picks
        eligible = [c for c in candidates
                    if all(c.roc_auc[v] >= by_roc.roc_auc[v] - criterion.roc_tolerance - 1e-12 for v in c.roc_auc)]
    return max(eligible, key=lambda c: (round(c.value(criterion), 12), round(c.mean_roc_auc(), 12)))


def fit_candidate(kind: str, params: Mapping[str, Any], train: np.ndarray, seed: int = 0,
                  labelled: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[Any, float]:
    """(the fitted detector, seconds): ``kind`` with ``params`` fitted as training fits it."""
    detector = create(kind, seed=seed, **params)
    start = time.perf_counter()
    if detector.uses_labels:
        if labelled is None:
            raise ValueError(f"{kind} learns from labelled records; none were given")
        detector.fit(*labelled)
    else:
        detector.fit(train)
    return detector, time.perf_counter() - start


def calibration_rows(train: np.ndarray, seed: int = 0) -> np.ndarray:
    """The training rows an ensemble fitted on ``train`` with ``seed`` calibrates its members on (as
    :meth:`anodet.detectors.ensemble.Ensemble.fit` draws them)."""
    if len(train) > CALIBRATION_ROWS:
        return train[np.random.default_rng(seed).choice(len(train), CALIBRATION_ROWS, replace=False)]
    return train


def ensemble_candidates(members: Sequence[str], sizes: Sequence[int] = (2, 3),
                        emphasis: float = 2.0) -> list[dict[str, Any]]:
    """Ensemble parameters to search: every subset of ``members`` of each size in ``sizes``, combined by a mean or
    a maximum, with equal weights or one member weighted ``emphasis`` times the others."""
    out: list[dict[str, Any]] = []
    for size in sizes:
        for subset in itertools.combinations(members, size):
            weightings: list[list[float] | None] = [None]
            weightings += [[emphasis if j == i else 1.0 for j in range(size)] for i in range(size)]
            for combine in ("mean", "max"):
                out += [{"members": list(subset), "weights": w, "combine": combine} for w in weightings]
    return out


def ensemble_scores(params: Mapping[str, Any], calibration: Mapping[str, np.ndarray],
                    validation: Mapping[str, np.ndarray], seed: int = 0) -> np.ndarray:
    """The validation scores of the ensemble ``params`` describes, from its members' raw scores on the calibration
    rows and on validation (an :class:`~anodet.detectors.ensemble.Ensemble`, calibrated and combined as stored)."""
    ensemble = create("ensemble", seed=seed, **params)
    assert isinstance(ensemble, Ensemble)
    ensemble.calibrate(np.column_stack([calibration[m] for m in ensemble.members]))
    return ensemble.score_from_members(dict(validation))


class SetLike(Protocol):
    """A feature set's transformed splits, as :func:`anodet.training.train.prepare` gives them."""

    train: np.ndarray
    validation: np.ndarray
    labelled: tuple[np.ndarray, np.ndarray] | None


@dataclass
class Search:
    """Every candidate judged, per feature set and kind (in grid order), and the criterion that chooses.

    ``fixed`` ({feature set: {kind: parameters}}) holds detectors whose parameters are not the criterion's to change
    (the store's best by full ROC AUC, which must keep it): for them :meth:`best` is the candidate with those
    parameters, and an ensemble searched over them uses that one.
    """

    criterion: Criterion
    candidates: dict[str, dict[str, list[Candidate]]] = field(default_factory=dict)
    fixed: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def best(self, feature_set: str, kind: str, criterion: Criterion | None = None) -> Candidate:
        candidates = self.candidates[feature_set][kind]
        held = self.fixed.get(feature_set, {}).get(kind)
        if held is not None:
            return next(c for c in candidates if effective(kind, c.params) == effective(kind, held))
        return choose(candidates, criterion or self.criterion)

    def chosen(self, criterion: Criterion | None = None,
               with_fixed: bool = True) -> dict[str, dict[str, dict[str, Any]]]:
        """{feature set: {kind: chosen parameters}} (without the fixed ones unless ``with_fixed``)."""
        return {fs: {kind: self.best(fs, kind, criterion).params for kind in kinds
                     if with_fixed or kind not in self.fixed.get(fs, {})}
                for fs, kinds in self.candidates.items()}


def effective(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the class defaults of ``kind`` filled in (two ways of writing the same detector compare
    equal)."""
    from anodet.detectors import detector_class

    return json.loads(json.dumps({**detector_class(kind).default_params, **params}))


def search(data: Mapping[str, SetLike], labels: Mapping[str, np.ndarray], kinds: Sequence[str], criterion: Criterion,
           seed: int = 0, log=print, keep_scores: bool = False,
           fixed: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> Search:
    """Fit every candidate of every kind on each feature set of ``data`` and judge it on the validation split
    (``labels``: the validation labels per view). Scores are kept for the chosen candidates (an ensemble search
    needs them) or, with ``keep_scores``, for all. ``fixed``: see :class:`Search` (their parameters are judged too,
    when the grid lacks them)."""
    out = Search(criterion, fixed={fs: {k: dict(p) for k, p in kinds.items()} for fs, kinds in (fixed or {}).items()})
    for fs, got in data.items():
        calibration = calibration_rows(got.train, seed)
        for kind in kinds:
            if kind == "ensemble":
                continue
            judged = []
            options = grid(kind, fs)
            held = out.fixed.get(fs, {}).get(kind)
            if held is not None and all(effective(kind, p) != effective(kind, held) for p in options):
                options.append(dict(held))
            for params in options:
                detector, seconds = fit_candidate(kind, params, got.train, seed, got.labelled)
                candidate = judge(kind, params, detector.decision_function(got.validation), labels,
                                  criterion.max_fpr, seconds, keep_scores=True)
                candidate.calibration = detector.decision_function(calibration)
                judged.append(candidate)
                log(f"{kind}@{fs:<6} {_short(params):<48} validation ROC AUC "
                    + " ".join(f"{v} {a:.4f}" for v, a in candidate.roc_auc.items())
                    + f"  pAUC@{criterion.max_fpr:g} " + " ".join(f"{v} {a:.4f}" for v, a in candidate.pauc.items())
                    + f"  ({seconds:.1f} s)")
            out.candidates.setdefault(fs, {})[kind] = judged
            best = out.best(fs, kind)
            if not keep_scores:
                for candidate in judged:
                    if candidate is not best:
                        candidate.forget_scores()
        ensembles = search_ensembles(out, fs, labels, seed) if "ensemble" in kinds else []
        if ensembles:
            out.candidates[fs]["ensemble"] = ensembles
            best = out.best(fs, "ensemble")
            log(f"ensemble@{fs}: {_short(best.params)} validation pAUC@{criterion.max_fpr:g} "
                + " ".join(f"{v} {a:.4f}" for v, a in best.pauc.items()))
    return out


def search_ensembles(found: Search, feature_set: str, labels: Mapping[str, np.ndarray], seed: int = 0,
                     pool: int = 6) -> list[Candidate]:
    """Ensembles over the chosen members on ``feature_set`` (the ``pool`` best by the criterion; the supervised
    ceiling is never a member), judged on the validation split."""
    criterion = found.criterion
    chosen = {kind: found.best(feature_set, kind) for kind in found.candidates[feature_set]
              if kind not in ("ensemble", "supervised")}
    members = sorted(chosen, key=lambda k: (-chosen[k].value(criterion), -chosen[k].mean_roc_auc()))[:pool]
    calibration = {k: chosen[k].calibration for k in members}
    validation = {k: chosen[k].validation for k in members}
    if len(members) < 2 or any(v is None for v in [*calibration.values(), *validation.values()]):
        return []
    judged = []
    for params in ensemble_candidates(members):
        scores = ensemble_scores(params, calibration, validation, seed)  # type: ignore[arg-type]
        judged.append(judge("ensemble", params, scores, labels, criterion.max_fpr, keep_scores=True))
    return judged


def _short(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"

