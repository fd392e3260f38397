"""Plug-in detectors: estimators users install, trained, stored, scored and shown like the built-in kinds.

A plug-in is any class with scikit-learn's / PyOD's shape, ``fit(X, y=None)`` and ``decision_function(X)``
or ``score_samples(X)``, named by an entry point of the ``anodet.detectors`` group (the entry point's
name is the detector kind) or given to ``python -m anodet train --detector-class package.module:Class``.
A class that already is an :class:`~anodet.detectors.base.Detector` is used as it is; any other is
wrapped in :class:`PluginDetector`.

The store never holds pickles, so a wrapped estimator's fitted state is kept one of two ways:

* **the state protocol**: the class has ``get_state()``, returning ``(arrays, meta)`` (a dict of
  numpy arrays and a JSON-able dict), and a classmethod ``from_state(arrays, meta)`` that rebuilds a
  fitted instance; anodet writes them as ``state.npz`` (no pickle) and ``state.json``;
* **refit**: any other estimator is fitted again when a store first loads it, from the training rows
  kept beside it (``train_rows.npz``), its parameters and seed (given as ``random_state`` or ``seed``
  when its constructor takes one). Training reloads it once to prove the refit gives the same scores,
  and the manifest records the refit's cost.

Either way ``check.npz`` keeps a few training rows and their scores at training time, and loading
refuses a plug-in that no longer reproduces them (its library changed, or it is not deterministic).

Orientation: anodet's scores are higher = more anomalous. ``decision_function`` is taken as it is
(anodet's and PyOD's convention) unless the class is a scikit-learn outlier detector, whose
``decision_function`` and ``score_samples`` are higher = more normal (negated); a class with only
``score_samples`` follows scikit-learn (negated). A class attribute ``anodet_higher_is`` ("anomalous"
or "normal") or ``--higher-is`` overrides the guess.

A store names a plug-in by its import path: anodet imports it and constructs it only if it is a
class with the estimator's shape. Installing a plug-in runs its code; a store is as trustworthy as
the plug-ins it names.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import logging
import re
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from anodet.detectors.base import Detector, load_arrays, save_arrays

logger = logging.getLogger(__name__)

GROUP = "anodet.detectors"
"""The entry-point group plug-in packages declare their detector classes in."""
KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TARGET = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
HIGHER_IS = ("anomalous", "normal")
SEED_PARAMS = ("random_state", "seed")
PLUGIN_FILE = "plugin.json"
STATE_ARRAYS, STATE_META, TRAIN_ROWS, CHECK = "state.npz", "state.json", "train_rows.npz", "check.npz"
CHECK_ROWS = 256
CHECK_RTOL = 1e-6


class PluginError(ValueError):
    """A plug-in that cannot be imported, constructed, fitted or stored; the message is one sentence."""


@dataclass(frozen=True)
class Spec:
    """A plug-in detector kind: the name it is stored under, its class's import path, which way its scores point."""

    kind: str
    target: str
    higher_is: str = "auto"
    source: str = "class"  # "class" (--detector-class) or "entry point"


@functools.cache
def entry_points() -> dict[str, str]:
    """Detector kind → ``module:Class`` for every installed entry point of :data:`GROUP` (bad ones are logged)."""
    from anodet.detectors import REGISTRY

    out: dict[str, str] = {}
    for point in metadata.entry_points(group=GROUP):
        if point.name in REGISTRY or not KIND.match(point.name) or not TARGET.match(point.value):
            logger.warning("ignoring the anodet.detectors entry point %s = %s: its name must be a new detector kind "
                           "(a-z, 0-9, _) and its value package.module:Class", point.name, point.value)
            continue
        out[point.name] = point.value
    return out


_BOUND: dict[str, type[Detector]] = {}


def check_kind(kind: str) -> str:
    """``kind`` if it can name a plug-in (not a built-in kind, a-z, 0-9 and _), else a PluginError."""
    from anodet.detectors import REGISTRY

    if kind in REGISTRY:
        raise PluginError(f"{kind!r} is a built-in detector's name; store the plug-in under another one "
                          "(--detector-name, e.g. pyod_ecod).")
    if not KIND.match(kind):
        raise PluginError(f"{kind!r} cannot name a detector: use 1 to 40 lower-case letters, digits or '_', starting "
                          "with a letter (e.g. pyod_ecod).")
    return kind


def default_kind(target: str) -> str:
    """The kind a ``--detector-class`` is stored under by default: its top package and class, ``pyod_ecod``."""
    module, cls = target.split(":")
    name = re.sub(r"[^a-z0-9_]", "_", f"{module.split('.')[0]}_{cls}".lower())
    return name if name[:1].isalpha() else f"p_{name}"


def import_target(target: str) -> type:
    """The class ``target`` names, once it is known to have the estimator's shape (else a PluginError)."""
    if not TARGET.match(target):
        raise PluginError(f"{target!r} is not a class path; give package.module:Class (e.g. pyod.models.ecod:ECOD).")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raised while importing: one sentence
        raise PluginError(f"Cannot import {module_name} for the plug-in {target} ({type(exc).__name__}: {exc}); "
                          "install the package that provides it.") from None
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise PluginError(f"{module_name} has no class {class_name}; check the spelling of {target}.")
    if not callable(getattr(cls, "fit", None)) or not any(
            callable(getattr(cls, m, None)) for m in ("decision_function", "score_samples")):
        raise PluginError(f"{target} is not a detector: it needs fit(X, y=None) and decision_function(X) or "
                          "score_samples(X), as scikit-learn's and PyOD's detectors have.")
    return cls


def bind(spec: Spec, params: dict[str, Any] | None = None) -> type[Detector]:
    """The detector class of plug-in ``spec`` (registered for this process, so ``detector_class(kind)`` finds it).

    ``params``: constructor parameters that become the kind's defaults (``train --detector-params``).
    """
    check_kind(spec.kind)
    if spec.higher_is not in ("auto", *HIGHER_IS):
        raise PluginError(f"higher_is must be auto, anomalous or normal, not {spec.higher_is!r}.")
    cls = import_target(spec.target)
    if issubclass(cls, Detector):
        unknown = sorted(set(params or {}) - set(cls.default_params))
        if unknown:
            raise PluginError(f"{spec.target} takes no parameter {', '.join(unknown)}; it takes "
                              f"{', '.join(['seed', *cls.default_params])}.")
        bound: type[Detector] = type(cls.__name__, (cls,), {
            "name": spec.kind, "__module__": cls.__module__, "plugin_target": spec.target, "plugin_source": spec.source,
            "default_params": {**cls.default_params, **(params or {})}})
    else:
        method, sign, higher_is = orientation(cls, spec.higher_is)
        defaults, free = constructor_params(cls)
        wrapped: type[PluginDetector] = type(f"Plugin_{spec.kind}", (PluginDetector,), {
            "name": spec.kind, "display_name": display_name_of(cls), "estimator_class": cls, "target": spec.target,
            "plugin_target": spec.target, "plugin_source": spec.source, "method": method, "sign": sign,
            "higher_is": higher_is,
            "default_params": {**defaults, **(params or {})}, "free_params": free, "__module__": __name__})
        if params:
            try:
                wrapped._check(params)
            except TypeError as exc:
                raise PluginError(f"{exc}.") from None
        bound = wrapped
    _BOUND[spec.kind] = bound
    return bound


def bind_entry(kind: str, entry: dict[str, Any]) -> type[Detector]:
    """The class of a stored plug-in detector, from its manifest entry (its class path and orientation)."""
    bound = _BOUND.get(kind)
    info = entry.get("plugin") or {}
    if bound is not None and getattr(bound, "plugin_target", None) == entry["class"]:
        return bound
    return bind(Spec(kind, entry["class"], info.get("higher_is", "auto"), info.get("source", "class")))


def resolve(kind: str) -> type[Detector] | None:
    """The plug-in class of ``kind`` (bound in this process, or an installed entry point), or None."""
    if kind in _BOUND:
        return _BOUND[kind]
    target = entry_points().get(kind)
    if target is None:
        return None
    try:
        return bind(Spec(kind, target, source="entry point"))
    except PluginError as exc:
        raise KeyError(f"the plug-in detector {kind!r} cannot be used: {exc}") from None


def known() -> list[str]:
    """Plug-in kinds this process knows: installed entry points and classes bound so far."""
    return list(dict.fromkeys([*entry_points(), *_BOUND]))


def is_plugin(detector: type[Detector] | Detector) -> bool:
    """Was this detector (or class) bound from a plug-in rather than registered as a built-in kind?"""
    return bool(getattr(detector, "plugin_target", ""))


def plugin_info(detector: Detector) -> dict[str, Any]:
    """What a store's manifest records about a plug-in detector (how it is kept, which way it points, its cost)."""
    if isinstance(detector, PluginDetector):
        return detector.manifest_info()
    return {"mode": "detector", "source": getattr(detector, "plugin_source", "class"), "higher_is": "anomalous",
            "versions": versions(type(detector).__mro__[1])}


def display_name_of(cls: type) -> str:
    """``cls.display_name`` when it has one, else its class name and top package: ``ECOD (pyod)``."""
    own = getattr(cls, "display_name", None)
    return own if isinstance(own, str) else f"{cls.__name__} ({cls.__module__.split('.')[0]})"


def orientation(cls: type, higher_is: str = "auto") -> tuple[str, float, str]:
    """(the scoring method, the sign making it higher = more anomalous, "anomalous" or "normal") of ``cls``."""
    has_decision = callable(getattr(cls, "decision_function", None))
    method = "decision_function" if has_decision else "score_samples"
    if higher_is == "auto":
        declared = getattr(cls, "anodet_higher_is", None)
        mro = [(c.__module__ or "", c.__name__) for c in cls.__mro__]
        if declared in HIGHER_IS:
            higher_is = declared
        elif any(module.split(".")[0] == "pyod" for module, _ in mro):
            higher_is = "anomalous"
        elif not has_decision or any(module.startswith("sklearn") and name == "OutlierMixin" for module, name in mro):
            higher_is = "normal"
        else:
            higher_is = "anomalous"
    return method, (1.0 if higher_is == "anomalous" else -1.0), higher_is


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def constructor_params(cls: type) -> tuple[dict[str, Any], bool]:
    """(the constructor's JSON-able defaults but the seed's, whether it takes any keyword: ``**kwargs``)."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return {}, True
    defaults, free = {}, False
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            free = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in SEED_PARAMS:
            if p.default is not p.empty and _jsonable(p.default):
                defaults[p.name] = p.default
    return defaults, free


def _accepted(cls: type) -> set[str]:
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()


def versions(cls: type) -> dict[str, str]:
    """The installed version of the distribution providing ``cls`` (empty when it is not a distribution)."""
    top = cls.__module__.split(".")[0]
    try:
        dists = metadata.packages_distributions().get(top, [top])
        return {dists[0]: metadata.version(dists[0])}
    except metadata.PackageNotFoundError:
        return {}


class PluginDetector(Detector):
    """An estimator of scikit-learn's or PyOD's shape behind the detector interface (bound per kind by :func:`bind`)."""

    name: ClassVar[str] = "plugin"
    display_name: ClassVar[str] = "Plug-in"
    family: ClassVar[str] = "plugin"
    estimator_class: ClassVar[type]
    target: ClassVar[str] = ""
    method: ClassVar[str] = "decision_function"
    sign: ClassVar[float] = 1.0
    higher_is: ClassVar[str] = "anomalous"
    plugin_target: ClassVar[str] = ""
    plugin_source: ClassVar[str] = "class"
    free_params: ClassVar[bool] = False

    @classmethod
    def _check(cls, params: dict[str, Any]) -> None:
        unknown = sorted(set(params) - _accepted(cls.estimator_class))
        if unknown and not cls.free_params:
            raise TypeError(f"{cls.target} takes no parameter {', '.join(unknown)}; it takes "
                            f"{', '.join(sorted(_accepted(cls.estimator_class))) or 'none'}")
        seeds = sorted(set(params) & set(SEED_PARAMS))
        if seeds:
            raise TypeError(f"give the seed with --seed, not as the parameter {seeds[0]} (anodet passes it on)")
        if not _jsonable(params):
            raise TypeError(f"the parameters of {cls.target} must be JSON values (numbers, text, lists, objects)")

    def _check_names(self, params: dict[str, Any]) -> None:
        self._check(params)

    @property
    def mode(self) -> str:
        """``state`` (the class keeps its state as arrays and JSON) or ``refit`` (fitted again when loaded)."""
        cls = self.estimator_class
        return "state" if callable(getattr(cls, "get_state", None)) and callable(getattr(cls, "from_state", None)) \
            else "refit"

    def _estimator(self) -> Any:
        kwargs = dict(self.params)
        for key in SEED_PARAMS:
            if key in _accepted(self.estimator_class):
                kwargs[key] = self.seed
        try:
            return self.estimator_class(**kwargs)
        except Exception as exc:
            raise PluginError(f"{self.target}({', '.join(kwargs)}) failed: {type(exc).__name__}: {exc}.") from None

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> PluginDetector:
        """Fit a new estimator on ``X`` (as float64; ``y`` is not passed: plug-ins learn what normal looks like)."""
        self.train_rows_ = np.asarray(X)
        estimator = self._estimator()
        start = time.perf_counter()
        estimator.fit(np.asarray(X, dtype=np.float64))
        self.fit_seconds_ = time.perf_counter() - start
        self.estimator_ = estimator
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The estimator's scores, turned so that higher = more anomalous; shape ``(n,)``."""
        X = np.asarray(X, dtype=np.float64)
        if len(X) == 0:
            return np.zeros(0)
        values = np.asarray(getattr(self.estimator_, self.method)(X), dtype=np.float64).reshape(-1)
        if values.shape != (len(X),):
            raise PluginError(f"{self.target}.{self.method} gave {values.size} values for {len(X)} records; it must "
                              "give one score per record.")
        return self.sign * values

    def manifest_info(self) -> dict[str, Any]:
        """What the manifest says about this plug-in: how it is kept, which way it points, and a refit's cost."""
        info: dict[str, Any] = {"mode": self.mode, "source": self.plugin_source, "higher_is": self.higher_is,
                                "method": self.method, "versions": versions(self.estimator_class)}
        if self.mode == "refit":
            info["refit_on_load"] = {"rows": len(self.train_rows_), "seconds": round(self.fit_seconds_, 3)}
        return info

    def _save_state(self, folder: Path) -> list[Path]:
        files = [folder / PLUGIN_FILE]
        files[0].write_text(json.dumps({"format": "anodet-plugin/1", "class": self.target, **self.manifest_info()},
                                       indent=1))
        if self.mode == "state":
            arrays, meta = self._state()
            files.append(save_arrays(folder / STATE_ARRAYS, **arrays))
            (folder / STATE_META).write_text(json.dumps(meta, indent=1))
            files.append(folder / STATE_META)
        else:
            np.savez_compressed(folder / TRAIN_ROWS, X=self.train_rows_)
            files.append(folder / TRAIN_ROWS)
        check = np.ascontiguousarray(self.train_rows_[:CHECK_ROWS])
        files.append(save_arrays(folder / CHECK, X=check, scores=self.decision_function(check)))
        return files

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        got = self.estimator_.get_state()
        if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], dict) and isinstance(got[1], dict)):
            raise PluginError(f"{self.target}.get_state() must return (arrays, meta): a dict of numpy arrays and a "
                              "dict of JSON values.")
        arrays = {str(k): np.asarray(v) for k, v in got[0].items()}
        bad = [k for k, v in arrays.items() if v.dtype.kind not in "biufcUS"]
        if bad:
            raise PluginError(f"{self.target}.get_state() gave {bad[0]!r} as an array of Python objects; give numbers "
                              "or text (anodet never stores pickles).")
        if not _jsonable(got[1]):
            raise PluginError(f"{self.target}.get_state() gave a meta dict that is not JSON (numbers, text, lists).")
        return arrays, got[1]

    def _load_state(self, folder: Path) -> None:
        saved = json.loads((folder / PLUGIN_FILE).read_text())
        if saved.get("class") != self.target:
            raise PluginError(f"{folder} holds {saved.get('class')!r}, not {self.target}")
        if saved.get("mode") == "state":
            meta = json.loads((folder / STATE_META).read_text())
            self.estimator_ = cast(Any, self.estimator_class).from_state(load_arrays(folder / STATE_ARRAYS), meta)
        else:
            rows = load_arrays(folder / TRAIN_ROWS)["X"]
            self.fit(rows)
            logger.info("refitted the plug-in %s on %d stored rows in %.2f s", self.name, len(rows), self.fit_seconds_)
        check = load_arrays(folder / CHECK)
        got = self.decision_function(check["X"])
        if not np.allclose(got, check["scores"], rtol=CHECK_RTOL, atol=1e-12, equal_nan=True):
            now = versions(self.estimator_class)
            raise PluginError(f"{'refitting' if saved.get('mode') != 'state' else 'from_state'} gave other scores than "
                              f"at training, so {self.target} changed (trained with {saved.get('versions') or '?'}, "
                              f"now {now or '?'}) or is not deterministic given its parameters and seed")
