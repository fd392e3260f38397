"""Hyperparameters per detector kind and feature set, as chosen on the validation split.

Training reads two choice files, each ``{"chosen": {feature set: {kind: parameters}}, "criterion": ...}``:

- ``hyperparams.json`` next to this module: each kind's parameters chosen by full validation ROC AUC
  (``python scripts/search_hyperparams.py``).
- the operating-point choices, ``operating_point.json`` next to it (or the file ``$ANODET_HYPERPARAMS_OVERLAY``
  names): parameters chosen by validation partial ROC AUC up to a strict false-positive rate
  (``python scripts/search_hyperparams.py --criterion pauc``), including an ensemble's members and weights.
  Where it names a kind on a feature set, it overrides the first file's choice; absent, nothing changes.

A kind or set neither file lists trains with the class defaults. The test split is never used to choose.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from anodet.store.manifest import StoreError

CHOICES_FILE = Path(__file__).with_name("hyperparams.json")
OPERATING_POINT_FILE = Path(__file__).with_name("operating_point.json")
OVERLAY_ENV = "ANODET_HYPERPARAMS_OVERLAY"
"""Names another operating-point choices file (benchmarks and tests train with choices they wrote elsewhere)."""


def overlay_file() -> Path:
    """The operating-point choices file training reads (it need not exist)."""
    named = os.environ.get(OVERLAY_ENV, "").strip()
    return Path(named) if named else OPERATING_POINT_FILE


class ChoicesError(StoreError):
    """A choices file training cannot use; the message is one sentence naming the file and the fix."""


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


@lru_cache(maxsize=8)
def _read(path: Path, stamp: int | None) -> dict[str, Any]:
    """A choices file's document ({} when it does not exist); re-read when it changes (``stamp``)."""
    if stamp is None:
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ChoicesError(f"{path} is not a readable hyperparameter choices file ({exc}), so no store was written; "
                           "fix it or delete it.") from None
    chosen = doc.get("chosen") if isinstance(doc, dict) else None
    if not isinstance(chosen, dict) or not all(
            isinstance(kinds, dict) and all(isinstance(p, dict) for p in kinds.values()) for kinds in chosen.values()):
        raise ChoicesError(f"{path} is not a hyperparameter choices file: it needs \"chosen\": {{feature set: {{kind: "
                           "parameters}}}}, so no store was written; fix it or delete it.")
    return doc


def choices(path: Path) -> dict[str, Any]:
    """The document of the choices file at ``path`` ({} when there is none); a :class:`ChoicesError` when it cannot be
    read."""
    return _read(Path(path), _stamp(Path(path)))


def chosen_params(kind: str, feature_set: str) -> dict[str, Any]:
    """The parameters to train ``kind`` on ``feature_set`` with (a fresh dict; class defaults fill the rest)."""
    from anodet.detectors import detector_class

    cls = detector_class(kind)
    params = {k: (list(v) if isinstance(v, list) else v) for k, v in cls.default_params.items()}
    for path in (CHOICES_FILE, overlay_file()):
        given = choices(path).get("chosen", {}).get(feature_set, {}).get(kind)
        if given is None:
            continue
        params.update(json.loads(json.dumps(given)))
        try:
            cls(seed=0, **params)
        except (TypeError, ValueError) as exc:
            raise ChoicesError(f"{path} gives {kind} on {feature_set} parameters it cannot take ({exc}), so no store "
                               "was written; fix them or delete the entry.") from None
    return params
