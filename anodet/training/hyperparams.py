"""Hyperparameters per detector kind and feature set, as chosen on the validation split.

``scripts/search_hyperparams.py`` searches a small grid per kind and feature set, scoring each
candidate by its validation ROC AUC only (never the test split), and writes its choice into
``hyperparams.json`` next to this module; training reads it. A kind or set it does not list
trains with the class defaults.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

CHOICES_FILE = Path(__file__).with_name("hyperparams.json")


@lru_cache(maxsize=1)
def _choices() -> dict[str, dict[str, dict[str, Any]]]:
    try:
        doc = json.loads(CHOICES_FILE.read_text())
    except FileNotFoundError:
        return {}
    return doc.get("chosen", {})


def chosen_params(kind: str, feature_set: str) -> dict[str, Any]:
    """The parameters to train ``kind`` on ``feature_set`` with (a fresh dict; class defaults fill the rest)."""
    from anodet.detectors import detector_class

    params = {k: (list(v) if isinstance(v, list) else v) for k, v in detector_class(kind).default_params.items()}
    params.update(_choices().get(feature_set, {}).get(kind, {}))
    return params
