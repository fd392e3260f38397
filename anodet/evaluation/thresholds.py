"""The one threshold resolver: what ``--threshold``/``--thresholds`` (or a page's choice) mean per detector.

A record is flagged when its score is ``>= threshold``, everywhere in anodet. The rule, for
``score`` and ``stream`` alike: a number applies to every detector; a preset name
(``best_f1``, ``best_accuracy``, ``mean_3sigma``, ``target_fpr``, ``contamination``) takes each
detector's validation-chosen value under the label view; nothing means ``best_f1``. A
thresholds file exported from the dashboard overrides those for the detectors it names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

DEFAULT_PRESET = "best_f1"


class ThresholdError(ValueError):
    """A threshold cannot be used; the message says which and what to give instead."""


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ThresholdError(f"{what} must be a finite number, not {value}. Give a number or a preset name.")
    return float(value)


def resolve_thresholds(store: Any, names: list[str], spec: str | float | None, view: str,
                       overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Per detector the threshold for ``spec`` (a preset name, one number for all, or None for best F1).

    ``overrides`` (e.g. read from a thresholds file) replace the result for the detectors they name.
    """
    if spec is None or spec == "":
        spec = DEFAULT_PRESET
    if isinstance(spec, str):
        try:
            number: float | None = float(spec)
        except ValueError:
            number = None
        if number is None:
            presets = store.thresholds(names[0], view) if names else {}
            if spec not in presets:
                raise ThresholdError(f"Unknown threshold {spec!r}: give a preset ({', '.join(presets)}) or a number.")
            chosen = {n: _finite(float(store.thresholds(n, view)[spec]), f"The {spec} threshold of {n}")
                      for n in names}
        else:
            chosen = dict.fromkeys(names, _finite(number, "The threshold"))
    else:
        chosen = dict.fromkeys(names, _finite(float(spec), "The threshold"))
    for name, value in (overrides or {}).items():
        if name in chosen:
            chosen[name] = _finite(float(value), f"The threshold of {name}")
    return chosen


THRESHOLDS_FORMAT = "anodet-thresholds/1"


def thresholds_document(values: Mapping[str, float], view: str, store_hash: str | None = None,
                        operating_point: str | None = None, moved: list[str] | None = None) -> bytes:
    """A thresholds file (what the dashboard exports and ``--thresholds`` reads back), as UTF-8 JSON.

    ``operating_point``: what chose the thresholds, in words; ``moved``: the detectors moved away from it by hand.
    """
    import json

    document: dict[str, Any] = {
        "format": THRESHOLDS_FORMAT, "label_view": view,
        "thresholds": {name: _finite(float(value), f"The threshold of {name}") for name, value in values.items()},
    }
    if store_hash:
        document["store"] = store_hash
    if operating_point:
        document["operating_point"] = operating_point
    if moved:
        document["moved_by_hand"] = list(moved)
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def read_thresholds_file(path: Any, known: list[str] | None = None,
                         name: str | None = None) -> tuple[str | None, dict[str, float]]:
    """(label view, {detector: threshold}) from a thresholds file exported by the dashboard.

    ``path`` is a file path or the file's bytes (an upload); ``name`` is what messages call it.
    """
    import json
    from pathlib import Path

    where = name or ("the uploaded file" if isinstance(path, (bytes, bytearray)) else str(path))
    try:
        raw = Path(path).read_bytes() if not isinstance(path, (bytes, bytearray)) else bytes(path)
        data = json.loads(raw)
    except OSError as exc:
        raise ThresholdError(f"Cannot read the thresholds file {where}: {exc.strerror or exc}.") from None
    except ValueError:
        raise ThresholdError(f"{where} is not a thresholds file (not JSON). Export one from the Threshold "
                             "explorer.") from None
    if not isinstance(data, dict) or data.get("format") != THRESHOLDS_FORMAT or not isinstance(
            data.get("thresholds"), dict):
        raise ThresholdError(f"{where} is not an anodet thresholds file (format {THRESHOLDS_FORMAT!r} with a "
                             "'thresholds' object). Export one from the Threshold explorer.")
    values: dict[str, float] = {}
    for detector, value in data["thresholds"].items():
        if known is not None and detector not in known:
            raise ThresholdError(f"{where} names detector {detector!r}, which is not in the model store "
                                 f"({', '.join(known)}).")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ThresholdError(f"The threshold of {detector} in {where} is not a number ({value!r}).")
        values[detector] = _finite(float(value), f"The threshold of {detector} in {where}")
    view = data.get("label_view")
    return (view if isinstance(view, str) else None), values
