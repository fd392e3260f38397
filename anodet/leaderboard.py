"""Score the test split with every stored detector and tabulate the results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anodet import evaluate
from anodet.data import Splits
from anodet.schema import ATTACK_CATEGORIES, label_column
from anodet.store import Store


def leaderboard(store: Store, splits: Splits, view: str, scores: dict[str, np.ndarray],
                thresholds: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per detector: ROC AUC, PR AUC and metrics at its threshold on the test split.

    Thresholds default to each detector's validation-chosen best-F1 threshold.
    """
    y = splits.test[label_column(view)].to_numpy()
    chosen = {name: (thresholds or {}).get(name, store.default_threshold(name, view)) for name in scores}
    rates = evaluate.category_rates(scores, chosen, splits.test["category"].to_numpy(), ATTACK_CATEGORIES)
    rows = []
    for i, (name, s) in enumerate(scores.items()):
        entry = store.entry(name)
        row = {"detector": name, "name": entry["display_name"], "feature_set": entry["feature_set"],
               "supervised": store.uses_labels(name), "threshold": chosen[name],
               **evaluate.summary(y, s, chosen[name])}
        row.update({f"detect_{c}": rates[i, j] for j, c in enumerate(ATTACK_CATEGORIES)})
        rows.append(row)
    return pd.DataFrame(rows).set_index("detector")
