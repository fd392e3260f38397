"""The one label rule: from whatever a label cell holds to 0/1 under each label view.

Used by the KDD splits, uploaded and scored files, and streamed records alike.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from anodet.datasets.kdd_schema import NORMAL, TRAINING_ATTACK_TYPES

EMPTY_LABELS = ("", "nan", "none", "null")
NORMAL_LABELS = (NORMAL, "0", "0.0", "benign", "false")
ATTACK_LABELS = ("1", "1.0", "attack", "anomaly", "malicious", "true")


def clean(values: np.ndarray | list) -> np.ndarray:
    """Label cells as lower-case text without surrounding blanks or KDD's trailing dot."""
    text = np.char.lower(np.char.strip(np.asarray(values, dtype=str)))
    return np.char.rstrip(text, ".")


def label_views(values: np.ndarray | list) -> dict[str, np.ndarray]:
    """0/1 labels per label view (NaN where the label is empty).

    ``normal``/``0``/``benign`` is normal; ``1``/``attack`` and the training attack names
    (``smurf.``…) are attacks in both views; any other name is a novel attack: an attack in the
    ``true`` view and normal in the ``reference`` view, as the reference prototype labelled them.
    Case, blanks and a trailing dot do not matter.
    """
    text = clean(values)
    empty = np.isin(text, EMPTY_LABELS)
    normal = np.isin(text, NORMAL_LABELS)
    known_attack = np.isin(text, [*TRAINING_ATTACK_TYPES, *ATTACK_LABELS])
    true = np.where(normal, 0.0, 1.0)
    reference = np.where(known_attack, 1.0, 0.0)
    true[empty], reference[empty] = np.nan, np.nan
    return {"reference": reference, "true": true}


def views_of(values: np.ndarray | list, normal: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """0/1 labels per label view under an input's label rule (NaN where the label is empty).

    ``normal`` None: KDD's rule, :func:`label_views`. Otherwise a user dataset's: its declared normal
    values (any case, blanks stripped) are 0, every other non-empty value 1, in its one view ``label``.
    """
    if normal is None:
        return label_views(values)
    text = np.char.lower(np.char.strip(np.asarray(values, dtype=str)))
    y = np.where(np.isin(text, [v.strip().lower() for v in normal]), 0.0, 1.0)
    y[np.isin(text, EMPTY_LABELS)] = np.nan
    return {"label": y}


def is_attack(values: np.ndarray | list, view: str) -> np.ndarray:
    """Boolean "is an attack" under ``view`` (an empty label counts as not an attack)."""
    y = label_views(values)[view]
    return np.nan_to_num(y, nan=0.0) == 1.0
