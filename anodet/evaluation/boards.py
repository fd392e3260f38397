"""Every detector of a store judged on a dataset's test part, per label view: the leaderboard with its intervals
and ties, and (given an operating point) each detector at its validation-chosen threshold for that point.

What ``evaluate`` prints and the decision report builds on, from the same pieces the dashboard uses:
scores from the disk cache (:mod:`anodet.scoring.cache`), the leaderboard (:mod:`.leaderboard`), the
operating point (:mod:`.operating`) and the uncertainty columns (:mod:`.comparison`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from anodet.datasets.model import Declaration, Splits, Vocabulary
from anodet.evaluation import comparison, metrics, operating
from anodet.evaluation.leaderboard import entrants_of, evaluate_test, ranked, unlabelled, with_category_rates
from anodet.evaluation.metrics import ThresholdCurve
from anodet.evaluation.operating import OperatingPoint, OperatingPointError, Resolution


@dataclass(frozen=True)
class Scored:
    """Every detector's scores on the test and validation parts (record order of the parts)."""

    test: Mapping[str, np.ndarray]
    validation: Mapping[str, np.ndarray]


def cached_scores(store: Any, splits: Splits) -> Scored:
    """Every detector's scores on both parts: a stored one's from the score cache the dashboard fills, else scored
    now and kept there (so the next run, and the dashboard, read them); an external one's as it was added (one
    given without validation scores is absent from that part)."""
    from anodet.scoring import cache
    from anodet.scoring.core import score_frame

    base = getattr(store, "base", store)  # a view with external detectors: its stored ones are the base's

    def scored(split: str) -> dict[str, np.ndarray]:
        got, _ = cache.split_scores(base, splits, split, lambda frame: score_frame(base, frame))
        return {**got, **store.external_scores(split, splits.part(split).record_id)}

    return Scored(scored("test"), scored("validation"))


@dataclass(frozen=True)
class ViewBoard:
    """One label view's leaderboard: ``board`` (index: stored names, best first), and what it rests on."""

    view: str
    board: pd.DataFrame
    point: OperatingPoint | None
    labelled: bool
    n_attacks: int = 0
    n_normals: int = 0
    thresholds_at_op: dict[str, float] = field(default_factory=dict)
    resolution: Resolution = field(default_factory=lambda: Resolution.of(0))
    notes: tuple[str, ...] = ()
    """Sentences that qualify the ranking: the split's resolution, a small sample, intervals left out."""
    resamples: int = comparison.RESAMPLES
    seed: int = 0

    @property
    def best(self) -> str | None:
        """The top detector that does not learn from labels (None when there is none)."""
        if "uses_labels" not in self.board:
            return None
        detectors = self.board.index[~self.board["uses_labels"].astype(bool).to_numpy()]
        return str(detectors[0]) if len(detectors) else None


def op_thresholds(point: OperatingPoint, store: Any, splits: Splits, view: str, names: Sequence[str],
                  validation: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each named detector's threshold for ``point`` under ``view``, chosen on the validation part
    (:func:`anodet.evaluation.operating.thresholds_for`)."""
    y_val = splits.validation.label(view)
    curves = None if y_val is None else {n: ThresholdCurve.from_scores(y_val, validation[n]) for n in names
                                         if n in validation}
    return operating.thresholds_for(point, list(names), curves, {n: store.thresholds(n, view) for n in names})


def view_board(declaration: Declaration, store: Any, splits: Splits, view: str, scores: Scored,
               point: OperatingPoint | None = None, names: Sequence[str] | None = None,
               resamples: int = comparison.RESAMPLES, seed: int = 0,
               overrides: Mapping[str, float] | None = None) -> ViewBoard:
    """The leaderboard of ``view`` on the test part: metrics at each detector's default threshold (at the preset's,
    for a preset point), intervals and ties (:func:`anodet.evaluation.comparison.uncertainty`) and, with an
    operating point, every :func:`anodet.evaluation.operating.at_point` column and ``detect_<category>_at_op``,
    ranked at the point (:func:`anodet.evaluation.operating.rank`); without one, ranked by ROC AUC. ``overrides``
    replace the point's threshold for the detectors they name (thresholds in force, e.g. from a thresholds file)."""
    names = list(names or store.names)
    test = splits.test
    y = test.label(view)
    entrants = entrants_of(store, names)
    chosen = op_thresholds(point, store, splits, view, names, scores.validation) if point is not None else {}
    missing = ""
    if point is not None:
        missing = operating.without_threshold(point, [n for n in names if n not in chosen])
        chosen.update({n: store.default_threshold(n, view) for n in names if n not in chosen})  # as the pages do
    chosen.update({n: float(v) for n, v in (overrides or {}).items() if n in chosen})
    defaults = (chosen if point is not None and point.kind == "preset"
                else {n: store.default_threshold(n, view) for n in names})
    test_scores = {n: np.asarray(scores.test[n], dtype=np.float64) for n in names}
    if y is None:
        if point is not None and point.kind != "preset":
            raise OperatingPointError("This operating point needs labelled test records to judge detectors at; this "
                                      "dataset's test split has none, so choose a preset.")
        return ViewBoard(view, unlabelled(test_scores, defaults, entrants), point, False, thresholds_at_op=chosen)
    order = declaration.categories_in(test)
    board = with_category_rates(evaluate_test(y, test_scores, defaults, entrants), test_scores, defaults,
                                test.category, order)
    n_attacks, n_normals = int((y == 1).sum()), int((y != 1).sum())
    resolution = Resolution.of(n_normals)
    notes = [missing]
    op = None
    if point is not None:
        curves = {n: ThresholdCurve.from_scores(y, test_scores[n]) for n in names}
        op = operating.at_point(point, chosen, curves)
        rates = metrics.category_rates(test_scores, chosen, test.category, order)
        op = op.assign(**{f"detect_{c}_at_op": rates[:, j] for j, c in enumerate(order)})
        notes.append(resolution.sentence(point.target_fpr))
    notes.append(comparison.small_sample(n_attacks, n_normals, declaration.words.positives))
    if n_attacks >= 2 and n_normals >= 2:
        extra = comparison.uncertainty(y, test_scores, board, op, point.target_fpr if point else None,
                                       resamples=resamples, seed=seed)
        board = board.join(extra)
    else:
        notes.append(f"Intervals need at least 2 {declaration.words.positives} and 2 {declaration.words.negatives} "
                     f"in the test split; it has {n_attacks:,} and {n_normals:,}, so none are shown.")
    if op is not None and point is not None:
        board = operating.rank(board.join(op), point)
    else:
        board = ranked(board, "roc_auc")
    return ViewBoard(view, board, point, True, n_attacks, n_normals, chosen, resolution,
                     tuple(n for n in notes if n), resamples, seed)


def view_boards(declaration: Declaration, store: Any, splits: Splits, scores: Scored,
                point: OperatingPoint | None = None, names: Sequence[str] | None = None,
                views: Sequence[str] | None = None, resamples: int = comparison.RESAMPLES,
                seed: int = 0) -> dict[str, ViewBoard]:
    """:func:`view_board` for every label view of the dataset (or ``views``)."""
    keys = list(views or declaration.view_keys or store.label_views[:1] or ["label"])
    return {v: view_board(declaration, store, splits, v, scores, point, names, resamples, seed) for v in keys}


def flagged_elsewhere_sentence(vb: ViewBoard, splits: Splits, scores: Scored, name: str,
                               words: Vocabulary | None = None) -> str:
    """Among the test records ``name`` flags at the point, how many another label view counts as anomalies
    though this view counts them as normal ("" when none, or with one view)."""
    words = words or Vocabulary()
    labels = splits.test.labels
    if len(labels) < 2 or name not in vb.thresholds_at_op:
        return ""
    flagged = np.asarray(scores.test[name]) >= vb.thresholds_at_op[name]
    counts = {other: k for other, k in operating.flagged_elsewhere(flagged, labels, vb.view).items() if k}
    if not counts:
        return ""
    display = vb.board.loc[name, "detector"] if name in vb.board.index else name
    parts = [f"{k:,} {'is' if k == 1 else 'are'} labelled normal in the {vb.view} view but "
             f"{words.positive if k == 1 else words.positives} in the {other} view" for other, k in counts.items()]
    return (f"Of the {int(flagged.sum()):,} test records {display} flags at this point, {' and '.join(parts)}: "
            "false positives here.")
