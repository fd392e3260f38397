"""The manifest of a model store: one JSON Schema checked on every read and write, and an optional HMAC.

Everything the loader trusts about a store comes from ``manifest.json``, so it is validated as a
whole before anything else is read: a wrong shape, a non-finite threshold or a file path that
leaves the store is one :class:`StoreError` sentence rather than a traceback (or a silent NaN).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from anodet.datasets.kdd_schema import LABEL_VIEWS
from anodet.detectors import REGISTRY

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
KEY_ENV = "ANODET_STORE_KEY"
FORMAT_VERSION = 3
TRAIN_HINT = ("Run `python -m anodet train` to rebuild the store, "
              "or `git checkout models_store` to restore the committed one.")


class StoreError(RuntimeError):
    """The model store is missing, incomplete, tampered with or unreadable."""


_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
# A relative POSIX path with no empty, "." or ".." part: it cannot name anything outside the store.
_SAFE_PART = r"(?!\.{1,2}(?:/|$))[A-Za-z0-9_.@-]+"
_NUMBER = {"type": "number"}
# Long number arrays (quantiles) are checked by one keyword rather than item by item: 20x faster.
_QUANTILES = {"type": "array", "minItems": 1, "numbers": True}


def _files(prefix: str) -> dict[str, Any]:
    return {"type": "object", "minProperties": 1, "additionalProperties": _HEX64,
            "propertyNames": {"pattern": f"^{prefix}(?:{_SAFE_PART}/)*{_SAFE_PART}$"}}


_VIEW = r"^[a-z][a-z0-9_]*$"
_WHY = {"type": "object", "additionalProperties": {"type": "string"}}
DEFAULT_PRESET = "best_f1"


def _per_view(schema: dict[str, Any]) -> dict[str, Any]:
    """One ``schema`` per label view; which views (the manifest's ``label_views``) is checked after."""
    return {"type": "object", "minProperties": 1, "propertyNames": {"pattern": _VIEW},
            "additionalProperties": schema}


def label_views(manifest: dict[str, Any]) -> list[str]:
    """The label views a store's thresholds and metrics are kept under: KDD's two unless it names its own."""
    return list(manifest.get("label_views") or LABEL_VIEWS)


def default_preset(manifest: dict[str, Any]) -> str:
    """The threshold preset a store's detectors flag at by default (best F1 unless it has no labels)."""
    return str(manifest.get("default_preset") or DEFAULT_PRESET)


_SET_NAME = r"[A-Za-z0-9_-]+"
_MEMBER = {"type": "string", "pattern": "^(?:" + "|".join(REGISTRY) + f")(?:@{_SET_NAME})?$"}


def _key(kind: str) -> str:
    """The pattern of the names a detector of ``kind`` is stored under: ``kind`` or ``kind@set``."""
    return f"^{kind}(?:@{_SET_NAME})?$"


_PLUGIN_KIND = r"[a-z][a-z0-9_]{0,39}"
_CLASS_PATH = r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$"
_PLUGIN_KEY = f"^(?!(?:{'|'.join(REGISTRY)})(?:@|$)){_PLUGIN_KIND}(?:@{_SET_NAME})?$"
"""Names a plug-in detector may be stored under: any kind but a built-in one (:mod:`anodet.detectors.plugins`)."""
_PLUGIN_INFO = {"type": "object", "required": ["mode", "higher_is"], "properties": {
    "mode": {"enum": ["state", "refit", "detector"]},
    "source": {"enum": ["class", "entry point"]},
    "higher_is": {"enum": ["anomalous", "normal"]},
    "method": {"enum": ["decision_function", "score_samples"]},
    "versions": {"type": "object", "additionalProperties": {"type": "string"}},
    "refit_on_load": {"type": "object", "required": ["rows", "seconds"],
                      "properties": {"rows": {"type": "integer", "minimum": 1}, "seconds": {"type": "number",
                                                                                          "minimum": 0}}}}}


def _entry(name: str | None) -> dict[str, Any]:
    """The schema of an entry of detector kind ``name`` (None: a plug-in kind); its files live in its own folder
    (checked after)."""
    has_members = {"required": ["params"],
                   "properties": {"params": {"required": ["members"], "properties": {"members": {"minItems": 1}}}}}
    files_prefix = f"{name}(?:@{_SET_NAME})?/" if name else f"{_PLUGIN_KIND}(?:@{_SET_NAME})?/"
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["class", "display_name", "family", "feature_set", "files", "params", "seed", "thresholds",
                     "validation_quantiles", "metrics"],
        "properties": {
            "class": {"const": REGISTRY[name]} if name else {"type": "string", "pattern": _CLASS_PATH},
            "display_name": {"type": "string"},
            "family": {"enum": ["neural", "classical", "ensemble", "supervised", "plugin"]},
            "feature_set": {"type": "string", "pattern": f"^{_SET_NAME}$"},
            "files": _files(files_prefix),
            "params": {"type": "object", "properties": {
                "members": {"type": "array", "uniqueItems": True, "items": _MEMBER}}},
            "members": {"type": "object", "propertyNames": _MEMBER, "additionalProperties": _files("")},
            "seed": {"type": "integer"},
            "train_seconds": {"type": "number", "minimum": 0},
            "train_rows": {"type": "integer", "minimum": 1},
            "thresholds": _per_view({"type": "object", "minProperties": 1, "additionalProperties": _NUMBER}),
            "validation_quantiles": _per_view({"type": "object", "required": ["normal", "all"],
                                               "properties": {"normal": _QUANTILES, "all": _QUANTILES}}),
            "metrics": {"type": "object"},
            "plugin": _PLUGIN_INFO,
            "training": {"type": "object"},  # a neural detector's epochs: which ran and why
        },
        # A detector built on members records each member's file hashes at fit time.
        "if": has_members, "then": {"required": ["members"]},
    }
    if not name:
        schema["required"] = [*schema["required"], "plugin"]
    return schema


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["format", "detectors", "feature_sets", "data"],
    "properties": {
        "format": {"const": FORMAT_VERSION},
        "created": {"type": "string"},
        "data": {"type": "object", "required": ["checksums"], "properties": {
            "checksums": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "versions": {"type": "object", "additionalProperties": {"type": "string"}},
        "reproducibility": {"type": "object", "properties": {"rule": {"type": "string"}, "not_reproducible": _WHY}},
        "label_views": {"type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"type": "string", "pattern": _VIEW}},
        "default_preset": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "feature_sets": {"type": "object", "minProperties": 1,
                         "propertyNames": {"pattern": f"^{_SET_NAME}$"},
                         "additionalProperties": {"type": "object", "required": ["file", "sha256"], "properties": {
                             "file": {"type": "string", "pattern": f"^featuresets/{_SAFE_PART}$"},
                             "sha256": _HEX64}}},
        "detectors": {"type": "object", "additionalProperties": False,
                      "patternProperties": {**{_key(kind): _entry(kind) for kind in REGISTRY},
                                            _PLUGIN_KEY: _entry(None)}},
    },
}


def _numbers(validator, wanted: bool, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """The ``numbers`` keyword: every item of an array is a number (not a bool)."""
    if wanted and isinstance(instance, list):
        for i, item in enumerate(instance):
            if isinstance(item, bool) or not isinstance(item, int | float):
                yield ValidationError(f"item {i}, {item!r}, is not a number")
                return


_VALIDATOR = validators.extend(Draft202012Validator, {"numbers": _numbers})(SCHEMA)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def _no_constants(text: str) -> float:
    raise ValueError(f"{text} is not a number JSON allows")


def parse(raw: bytes, where: Path) -> dict[str, Any]:
    """The manifest in ``raw``, checked against :data:`SCHEMA` and for member cycles."""
    try:
        manifest = json.loads(raw, parse_float=_finite, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise StoreError(f"{where} is not a valid anodet manifest ({exc}). {TRAIN_HINT}") from None
    if isinstance(manifest, dict) and manifest.get("format") not in (FORMAT_VERSION, None):
        raise StoreError(f"{where} has format {manifest.get('format')!r}, expected {FORMAT_VERSION}. {TRAIN_HINT}")
    error = best_match(_VALIDATOR.iter_errors(manifest))
    if error is not None:
        at = ".".join(str(p) for p in error.absolute_path) or "top level"
        message = error.message.replace("None", "null") if error.instance is None else error.message
        raise StoreError(f"{where} is not a valid anodet manifest (at {at}: {message}). {TRAIN_HINT}")
    _check_entries(manifest, where)
    _check_members(manifest["detectors"], where)
    return manifest


def _check_entries(manifest: dict[str, Any], where: Path) -> None:
    """Each detector's files live in its own folder (with its params.json), its feature set is in the store, and
    it has thresholds and quantiles for exactly the store's label views, each with the default preset."""
    views, preset = label_views(manifest), default_preset(manifest)
    for name, entry in manifest["detectors"].items():
        for key in ("thresholds", "validation_quantiles"):
            if sorted(entry[key]) != sorted(views):
                raise StoreError(f"{where} is not a valid anodet manifest (detector {name} has {key} for the label "
                                 f"view(s) {', '.join(sorted(entry[key]))}, expected {', '.join(views)}). {TRAIN_HINT}")
        lacking = [view for view in views if preset not in entry["thresholds"][view]]
        if lacking:
            raise StoreError(f"{where} is not a valid anodet manifest (detector {name} has no {preset} threshold "
                             f"for the {lacking[0]} label view). {TRAIN_HINT}")
        outside = [f for f in entry["files"] if not f.startswith(f"{name}/")]
        if outside or f"{name}/params.json" not in entry["files"]:
            what = f"lists {outside[0]} outside its folder" if outside else f"does not list {name}/params.json"
            raise StoreError(f"{where} is not a valid anodet manifest (detector {name} {what}). {TRAIN_HINT}")
        if entry["feature_set"] not in manifest["feature_sets"]:
            raise StoreError(f"{where} is not a valid anodet manifest (detector {name} uses feature set "
                             f"{entry['feature_set']!r}, which the store does not hold). {TRAIN_HINT}")


def _check_members(detectors: dict[str, Any], where: Path) -> None:
    """Each entry's recorded members match its params, and no detector contains itself through members."""
    for name, entry in detectors.items():
        members = entry["params"].get("members", [])
        if sorted(entry.get("members", {})) != sorted(members):
            raise StoreError(f"{where} is not a valid anodet manifest ({name}'s recorded member hashes do not "
                             f"match its members {members}). {TRAIN_HINT}")
    for start in detectors:
        path, todo = [start], [(start, [start])]
        while todo:
            name, path = todo.pop()
            for member in detectors.get(name, {}).get("params", {}).get("members", []):
                if member in path:
                    cycle = " → ".join([*path[path.index(member):], member])
                    raise StoreError(f"{where} is not a valid anodet manifest: an ensemble cannot contain itself "
                                     f"({cycle}). {TRAIN_HINT}")
                todo.append((member, [*path, member]))


def signature(raw: bytes, key: str) -> str:
    """HMAC-SHA256 of the manifest bytes under ``key``."""
    return hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()


def check_signature(root: Path, raw: bytes) -> None:
    """If ``$ANODET_STORE_KEY`` is set, the store must carry a matching ``manifest.sig``."""
    key = os.environ.get(KEY_ENV)
    if not key:
        return
    try:
        recorded = (root / SIGNATURE).read_text().strip()
    except FileNotFoundError:
        raise StoreError(f"{KEY_ENV} is set but the store at {root} has no {SIGNATURE}, so it was not signed with "
                         f"that key; retrain it with the key set, or unset {KEY_ENV}.") from None
    if not hmac.compare_digest(recorded, signature(raw, key)):
        raise StoreError(f"{root / MANIFEST} does not match its signature under {KEY_ENV}: it was changed by someone "
                         f"without the key, or signed with another key; refusing to load it. {TRAIN_HINT}")


def dump(manifest: dict[str, Any]) -> bytes:
    """The bytes written as ``manifest.json``; refuses (StoreError) anything a read would refuse."""
    raw = (json.dumps(manifest, indent=1, allow_nan=False) + "\n").encode()
    parse(raw, Path(MANIFEST))
    return raw
