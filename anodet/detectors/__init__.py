"""The detector family behind one interface, with a registry that imports lazily.

Importing this package never imports TensorFlow: only asking for a neural detector does. Beside the
built-in kinds of :data:`REGISTRY`, plug-in kinds (:mod:`anodet.detectors.plugins`: installed entry
points of the ``anodet.detectors`` group, or classes bound by ``train --detector-class``) are found by
the same :func:`detector_class`.
"""

from __future__ import annotations

import importlib

from anodet.detectors.base import Detector

REGISTRY: dict[str, str] = {
    "autoencoder": "anodet.detectors.neural:Autoencoder",
    "vae": "anodet.detectors.neural:VariationalAutoencoder",
    "bigan": "anodet.detectors.neural:BiGAN",
    "seq2seq": "anodet.detectors.neural:Seq2Seq",
    "pca": "anodet.detectors.classical:PCAReconstruction",
    "ocsvm": "anodet.detectors.classical:OneClassSVMDetector",
    "iforest": "anodet.detectors.classical:IsolationForestDetector",
    "lof": "anodet.detectors.classical:LocalOutlierFactorDetector",
    "kmeans": "anodet.detectors.classical:KMeansDistance",
    "zscore": "anodet.detectors.classical:ZScore",
    "mahalanobis": "anodet.detectors.classical:Mahalanobis",
    "ecod": "anodet.detectors.empirical:ECOD",
    "knn": "anodet.detectors.neighbours:KNearestNeighbours",
    "ensemble": "anodet.detectors.ensemble:Ensemble",
    "supervised": "anodet.detectors.supervised:SupervisedForest",
}
"""Detector name → ``module:Class``; the order is the order they are trained and shown."""

SUPERVISED = ("supervised",)
"""Kinds trained on labels: reference rows, never counted as the best detector."""

NEURAL = ("autoencoder", "vae", "bigan", "seq2seq")


def detector_class(name: str) -> type[Detector]:
    """The class registered under ``name`` (a built-in or a plug-in kind), imported on first use."""
    target = REGISTRY.get(name)
    if target is None:
        from anodet.detectors.plugins import resolve

        found = resolve(name)
        if found is None:
            raise KeyError(f"unknown detector {name!r}; known detectors: {', '.join(known_kinds())}")
        return found
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create(name: str, seed: int = 0, **params) -> Detector:
    """A new, unfitted detector."""
    return detector_class(name)(seed=seed, **params)


def known_kinds() -> list[str]:
    """Every detector kind this process can train: the built-in ones, then the plug-ins (entry points, bound)."""
    from anodet.detectors.plugins import known

    return [*REGISTRY, *(k for k in known() if k not in REGISTRY)]


def display_name(kind: str) -> str:
    """What pages call a detector kind (its class's ``display_name``; importing it never imports TensorFlow)."""
    return detector_class(kind).display_name


__all__ = ["NEURAL", "REGISTRY", "SUPERVISED", "Detector", "create", "detector_class", "display_name", "known_kinds"]
