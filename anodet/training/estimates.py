"""Training presets, and each detector's expected fit time before a training starts.

A detector kind's fit time is modelled as a sum of work terms (:func:`work`: rows × columns for
PCA, subset rows² × columns for the One-Class SVM, gradient steps × batch × columns for the neural
models, ...) times per-kind coefficients measured by ``bench/measure_fit_costs.py`` and kept in
``fit_costs.json`` beside this module. Re-measure after changing a detector, or to calibrate
another machine: ``python bench/measure_fit_costs.py --write`` (a few minutes on 2 cores).

An estimate is a guide, not a promise: a slower machine, or other work on a shared one, scales it.
A neural model on small data stops early (:mod:`anodet.detectors.epochs`), so its estimate is an
upper bound, marked ``up to``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from anodet.detectors import NEURAL, REGISTRY, detector_class
from anodet.features.sets import kind_of, set_of_name

COSTS_FILE = Path(__file__).with_name("fit_costs.json")

PRESETS: dict[str, str] = {
    "quick": "the classical detectors, seconds on any data",
    "full": "every detector that fits the data, neural models too",
}
"""Training presets, the quick one first: what each trains."""
DEFAULT_PRESET = "full"


def preset_kinds(preset: str, available: Iterable[str] | None = None) -> list[str]:
    """The detector kinds of ``preset`` among ``available`` (default: every kind), in training order."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    kinds = [k for k in (available if available is not None else REGISTRY) if k in REGISTRY]
    if preset == "quick":
        return [k for k in kinds if detector_class(k).family == "classical"]
    return list(kinds)


def work(kind: str, rows: int, width: int, params: dict[str, Any]) -> list[float]:
    """The work terms of fitting ``kind`` on ``rows`` × ``width`` under ``params``; the first is 1 (fixed cost)."""
    n, d = max(int(rows), 1), max(int(width), 1)
    if kind in NEURAL:
        from anodet.detectors.epochs import most_steps

        n = min(n, int(params.get("max_rows", n)))
        steps, batch = most_steps(n, params)
        return [1.0, float(steps), float(steps) * min(batch, n) * d]
    if kind in ("pca", "zscore"):
        return [1.0, float(n) * d]
    if kind == "mahalanobis":
        return [1.0, float(n) * d * d]
    if kind == "kmeans":
        return [1.0, float(n) * d * int(params["n_clusters"])]
    if kind in ("ocsvm", "lof"):
        m = min(n, int(params["max_rows"]))
        return [1.0, float(m) * m * d]
    if kind == "iforest":
        return [1.0, float(params["n_estimators"]) * min(n, int(params["max_samples"]))]
    if kind == "ecod":  # each column sorted
        m = min(n, int(params["max_rows"]))
        return [1.0, float(m) * d * math.log2(m + 1)]
    if kind == "knn":  # the training rows kept (a sample of at most max_rows)
        return [1.0, float(min(n, int(params["max_rows"]))) * d]
    if kind == "ensemble":
        from anodet.detectors.ensemble import CALIBRATION_ROWS

        return [1.0, float(min(n, CALIBRATION_ROWS)) * d]
    if kind == "supervised":
        return [1.0, float(params["n_estimators"]) * n * math.sqrt(d)]
    raise KeyError(f"no cost model for detector kind {kind!r}")


@lru_cache(maxsize=1)
def costs() -> dict[str, Any]:
    """The measured coefficients (``fit_costs.json``)."""
    return json.loads(COSTS_FILE.read_text())


def fit_seconds(kind: str, rows: int, width: int, params: dict[str, Any] | None = None) -> float:
    """Expected seconds to fit ``kind`` on ``rows`` rows of ``width`` model inputs (``params``: its parameters)."""
    full = {**detector_class(kind).default_params, **(params or {})}
    coefficients = costs()["kinds"][kind]["seconds"]
    return float(sum(c * t for c, t in zip(coefficients, work(kind, rows, width, full), strict=True)))


def startup_seconds(kinds: Iterable[str]) -> float:
    """Once-per-training costs: importing TensorFlow when a neural model is trained."""
    return float(costs()["startup"]["tensorflow"]) if any(k in NEURAL for k in kinds) else 0.0


def stops_early(kind: str, rows: int, params: dict[str, Any] | None = None) -> bool:
    """Does ``kind`` stop early on ``rows`` rows (so its estimate is an upper bound)?"""
    if kind not in NEURAL:
        return False
    from anodet.detectors.epochs import early_stopping_on

    full = {**detector_class(kind).default_params, **(params or {})}
    return early_stopping_on(full.get("early_stopping", False), min(rows, int(full.get("max_rows", rows))))[0]


@dataclass
class Estimate:
    """Expected fit seconds per detector (in training order), TensorFlow's import, and which are upper bounds."""

    seconds: dict[str, float]
    startup: float = 0.0
    upper: set[str] = field(default_factory=set)

    @property
    def total(self) -> float:
        return self.startup + sum(self.seconds.values())

    def lines(self) -> list[str]:
        """What ``train`` prints before it starts: one line per detector, then the total."""
        out = [f"estimated fit times (measured costs in {COSTS_FILE.name}; the machine's load scales them):"]
        out += [f"  {name}: {'up to ' if name in self.upper else ''}{fmt_seconds(s)}"
                for name, s in self.seconds.items()]
        if self.startup:
            out.append(f"  importing TensorFlow: {fmt_seconds(self.startup)}")
        out.append(f"  total: about {fmt_seconds(self.total)}")
        return out


def estimate(names: list[str], shapes: dict[str, tuple[int, int]], params_of: Callable[[str], dict[str, Any]],
             caps: dict[str, int] | None = None, labelled_rows: int | None = None) -> Estimate:
    """The :class:`Estimate` of training ``names``: ``shapes`` gives (training rows, model inputs) per feature set,
    ``params_of(name)`` its parameters, ``caps`` the row cap per kind, ``labelled_rows`` the supervised rows."""
    seconds, upper = {}, set()
    for name in names:
        kind = kind_of(name)
        rows, width = shapes[set_of_name(name)]
        if kind == "supervised" and labelled_rows:
            rows = labelled_rows
        rows = min(rows, (caps or {}).get(kind, rows))
        params = params_of(name)
        seconds[name] = fit_seconds(kind, rows, width, params)
        if stops_early(kind, rows, params):
            upper.add(name)
    return Estimate(seconds, startup_seconds(kind_of(n) for n in names), upper)


def fmt_seconds(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3.5 min``."""
    if seconds < 10:
        return f"{max(seconds, 0.1):.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"
