"""The operating point: where the user works (a false-positive rate, an alert budget, or a cost ratio), and every
detector judged there.

An alert budget means alerts on normal traffic: ``A`` alerts a day out of ``R`` records a day, of which a share
``s`` is expected to be attacks, allows a false-positive rate of ``A / (R · (1 − s))`` (the attacks the detector
catches are alerts too, but they are the ones the analyst wants). Each detector's threshold for the operating
point is chosen on the validation part (the lowest threshold whose validation false-positive rate fits), then
judged on the test part: recall and FPR there, the alerts a day that would bring, and the partial ROC AUC up to
the target FPR, standardised as McClish's (0.5 is chance, 1 is perfect). A target finer than the test part can
resolve (fewer than one normal record) is said so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from anodet.evaluation import intervals
from anodet.evaluation.metrics import ThresholdCurve

KINDS = ("preset", "fpr", "budget", "cost")
RANKED_BY = {"preset": "roc_auc", "fpr": "recall", "budget": "recall", "cost": "expected_cost"}
"""What "best at the operating point" means for each kind: ROC AUC (threshold-free) with a preset, recall within
a target FPR or budget, the least expected cost on the test part for a cost ratio."""


class OperatingPointError(ValueError):
    """An operating point that cannot be used; the message is one sentence saying what to give instead."""


@dataclass(frozen=True)
class OperatingPoint:
    """Where the user works: a threshold preset chosen on validation (``preset``, the store's default until the user
    says otherwise), a target false-positive rate (``fpr``), an alert budget (``budget``) or a cost ratio (``cost``)."""

    kind: str = "preset"
    preset: str = "best_f1"
    fpr: float = 0.0001
    alerts_per_day: float = 50.0
    records_per_day: float = 500_000.0
    attack_share: float = 0.0
    cost_ratio: float = 10.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OperatingPointError(f"Unknown operating point {self.kind!r}; choose preset, fpr, budget or cost.")
        if self.kind == "preset":
            return
        checks = {"fpr": (self.fpr, 0.0, 1.0, "The target false-positive rate"),
                  "budget": (self.alerts_per_day, 0.0, math.inf, "The alerts a day")}
        value, low, high, what = checks.get(self.kind, (self.cost_ratio, 0.0, math.inf, "The cost ratio"))
        if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
            raise OperatingPointError(f"{what} must be a number from {low:g} to {high:g}, not {value!r}.")
        if self.kind == "budget":
            if not (math.isfinite(self.records_per_day) and self.records_per_day > 0):
                raise OperatingPointError("The records a day must be a positive number.")
            if not 0.0 <= self.attack_share < 1.0:
                raise OperatingPointError("The expected attack share must be from 0 up to (not including) 1.")
            if self.alerts_per_day > self.records_per_day:
                raise OperatingPointError("The alerts a day cannot exceed the records a day.")

    @property
    def target_fpr(self) -> float | None:
        """The false-positive rate this point allows (None for a cost ratio, which chooses its own)."""
        if self.kind == "fpr":
            return self.fpr
        if self.kind == "budget":
            return min(1.0, self.alerts_per_day / (self.records_per_day * (1.0 - self.attack_share)))
        return None

    def describe(self) -> str:
        """The point in words, for captions and reports."""
        if self.kind == "preset":
            return f"each detector's {PRESET_WORDS.get(self.preset, self.preset)} threshold on the validation split"
        if self.kind == "fpr":
            return f"a false-positive rate of {percent(self.fpr)}"
        if self.kind == "budget":
            share = f", {percent(self.attack_share)} of them attacks" if self.attack_share else ""
            return (f"an alert budget of {self.alerts_per_day:,.0f} alerts a day for {self.records_per_day:,.0f} "
                    f"records a day{share} (a false-positive rate of {percent(self.target_fpr or 0.0)})")
        return f"a missed attack costing {self.cost_ratio:g} times a false alarm"

    def to_params(self) -> dict[str, str]:
        """The point as URL query parameters (what :meth:`from_params` reads back)."""
        if self.kind == "preset":
            return {"op": "preset", "preset": self.preset}
        if self.kind == "fpr":
            return {"op": "fpr", "fpr": repr(self.fpr)}
        if self.kind == "budget":
            return {"op": "budget", "alerts": repr(self.alerts_per_day), "records": repr(self.records_per_day),
                    "share": repr(self.attack_share)}
        return {"op": "cost", "cost": repr(self.cost_ratio)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> OperatingPoint:
        """The point a link names (:meth:`to_params`); an OperatingPointError when it cannot be read."""
        kind = str(params.get("op", "preset"))
        try:
            if kind == "preset":
                return cls("preset", preset=str(params.get("preset", "best_f1")))
            if kind == "fpr":
                return cls("fpr", fpr=float(params.get("fpr", cls.fpr)))
            if kind == "budget":
                return cls("budget", alerts_per_day=float(params.get("alerts", cls.alerts_per_day)),
                           records_per_day=float(params.get("records", cls.records_per_day)),
                           attack_share=float(params.get("share", 0.0)))
            if kind == "cost":
                return cls("cost", cost_ratio=float(params.get("cost", cls.cost_ratio)))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, OperatingPointError):
                raise
            raise OperatingPointError(f"The operating point in this link is not a number ({exc}).") from None
        raise OperatingPointError(f"Unknown operating point {kind!r}; choose preset, fpr, budget or cost.")

    @classmethod
    def parse_budget(cls, text: str, attack_share: float = 0.0) -> OperatingPoint:
        """``"50/500000"`` (alerts a day / records a day) as a budget point."""
        alerts, _, records = str(text).partition("/")
        try:
            numbers = float(alerts), float(records)
        except ValueError:
            raise OperatingPointError(f"{text!r} is not an alert budget: give ALERTS/RECORDS a day, e.g. "
                                      "50/500000.") from None
        return cls("budget", alerts_per_day=numbers[0], records_per_day=numbers[1], attack_share=attack_share)


def percent_range(low: float, high: float) -> str:
    """An interval of rates, compactly: ``7–9.4 %``."""
    return f"{percent(low).removesuffix(' %')}–{percent(high)}"


def percent(rate: float) -> str:
    """A rate as a percentage with two significant digits, never in scientific notation (0.01 %, 1.2 %, 20 %)."""
    value = rate * 100
    if value == 0:
        return "0 %"
    return f"{np.format_float_positional(value, precision=2, unique=False, fractional=False, trim='-')} %"


PRESET_WORDS = {"best_f1": "best-F1", "best_accuracy": "best-accuracy", "mean_3sigma": "mean + 3σ",
                "target_fpr": "1 % FPR", "contamination": "20 % contamination"}


def threshold_at(point: OperatingPoint, validation: ThresholdCurve | None,
                 presets: Mapping[str, float] | None = None) -> float:
    """The detector's threshold for ``point``, chosen on its validation part.

    A preset: the store's validation-chosen value (``presets``). A target FPR (or budget): the lowest
    threshold whose false-positive rate among the validation part's normal records is at most the target
    (an exact count, not an interpolated quantile). A cost ratio: the threshold of least expected cost there.
    """
    if point.kind == "preset":
        if presets is None or point.preset not in presets:
            raise OperatingPointError(f"There is no {point.preset} threshold here; choose one of "
                                      f"{', '.join(presets or {})}.")
        return float(presets[point.preset])
    if validation is None:
        raise OperatingPointError("This operating point needs labelled validation records; this dataset has none, "
                                  "so choose a preset.")
    target = point.target_fpr
    if target is None:
        return validation.min_cost_threshold(point.cost_ratio, 1.0)
    return validation.threshold_within_fpr(target)


@dataclass(frozen=True)
class Resolution:
    """How finely a part resolves a false-positive rate: one normal record's share, and the 95 % upper bound on
    the FPR when none of them is flagged."""

    normals: int
    step: float
    zero_upper: float

    @classmethod
    def of(cls, normals: int) -> Resolution:
        if normals <= 0:
            return cls(0, math.nan, math.nan)
        return cls(normals, *intervals.fpr_resolution(normals))

    def finer_than(self, fpr: float | None) -> bool:
        """Is ``fpr`` finer than the part can tell (below one normal record)?"""
        return fpr is not None and self.normals > 0 and fpr < self.step

    def sentence(self, fpr: float | None) -> str:
        """What a target this fine means on this part ("" when the part resolves it)."""
        if not self.finer_than(fpr):
            return ""
        return (f"The target ({percent(fpr or 0.0)}) is finer than the {self.normals:,} normal test records can show "
                f"(one of them is {percent(self.step)}): fewer than one false alarm is expected among them, and "
                f"seeing none still allows a false-positive rate up to {percent(self.zero_upper)} (95 % one-sided "
                "upper bound; the tables' intervals are two-sided).")


def at_point(point: OperatingPoint, thresholds: Mapping[str, float],
             test: Mapping[str, ThresholdCurve]) -> pd.DataFrame:
    """Per detector (index), at its threshold for the operating point (:func:`threshold_at`): ``threshold_at_op``,
    and on the test part ``recall_at_op``, ``fpr_at_op``, ``tp/fp/fn/tn_at_op``, ``alerts_per_day`` (for
    :attr:`OperatingPoint.records_per_day` records a day, with its attack share), ``expected_cost`` (misses
    × cost ratio + false alarms, for a cost point) and ``pauc`` (McClish-standardised ROC AUC up to the target
    FPR; for a preset or a cost ratio, up to each detector's own test FPR there)."""
    rows = []
    for name, curve in test.items():
        threshold = float(thresholds[name])
        tp, fp, fn, tn = curve.counts(threshold)
        attacks, normals = tp + fn, fp + tn
        recall = tp / attacks if attacks else math.nan
        fpr = fp / normals if normals else math.nan
        limit = point.target_fpr if point.target_fpr is not None else fpr
        share = point.attack_share if point.kind == "budget" else 0.0
        alerts = point.records_per_day * ((1.0 - share) * fpr + share * (0.0 if math.isnan(recall) else recall))
        rows.append({"name": name, "threshold_at_op": threshold, "recall_at_op": recall, "fpr_at_op": fpr,
                     "tp_at_op": tp, "fp_at_op": fp, "fn_at_op": fn, "tn_at_op": tn, "alerts_per_day": alerts,
                     "expected_cost": point.cost_ratio * fn + fp,
                     "pauc": curve.partial_auc(limit) if limit and not math.isnan(limit) else math.nan})
    return pd.DataFrame(rows).set_index("name")


def thresholds_for(point: OperatingPoint, names: list[str], validation: Mapping[str, ThresholdCurve] | None,
                   presets: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Every named detector's threshold for ``point`` (``presets``: each detector's stored presets for the view).

    A detector without validation scores while others have them (an external one given only test scores) gets
    none: at a point chosen on the validation part, and at a preset it lacks (its presets are chosen without
    labels). :func:`without_threshold` names it for the page to say so.
    """
    if point.kind != "preset" and validation:
        names = [n for n in names if n in validation]
    elif point.kind == "preset" and any(point.preset in (presets.get(n) or {}) for n in names):
        names = [n for n in names if point.preset in (presets.get(n) or {})]
    return {n: threshold_at(point, (validation or {}).get(n), presets.get(n)) for n in names}


def without_threshold(point: OperatingPoint, missing: Sequence[str]) -> str:
    """The sentence for the detectors (named as the reader sees them) :func:`thresholds_for` gave no threshold
    ("" when there are none)."""
    if not missing:
        return ""
    one = len(missing) == 1
    return (f"{', '.join(missing)} came without validation scores, so no threshold is chosen for "
            f"{'it' if one else 'them'} at this operating point: {'its' if one else 'their'} own preset on the test "
            "scores (chosen without labels) is in force instead.")


def rank(table: pd.DataFrame, point: OperatingPoint) -> pd.DataFrame:
    """``table`` (a leaderboard joined with :func:`at_point`) ordered best first at the operating point, the
    supervised ceiling last: ROC AUC for a preset, recall (then fewer false alarms) for an FPR or a budget,
    the least expected cost for a cost ratio."""
    by = RANKED_BY[point.kind]
    keys = {"roc_auc": (["roc_auc"], [False]), "recall": (["recall_at_op", "fpr_at_op"], [False, True]),
            "expected_cost": (["expected_cost"], [True])}[by]
    ceiling = table["uses_labels"].astype(bool).to_numpy() if "uses_labels" in table else np.zeros(len(table), bool)
    return (table.assign(_ceiling=ceiling)
            .sort_values(["_ceiling", *keys[0]], ascending=[True, *keys[1]], kind="stable", na_position="last")
            .drop(columns="_ceiling"))


def flagged_elsewhere(flagged: np.ndarray, labels: Mapping[str, np.ndarray], view: str) -> dict[str, int]:
    """Among flagged records, how many another label view counts differently: ``{other view: records labelled
    normal in ``view`` but attacks there}`` (KDD: the novel attacks the reference view counts as normal)."""
    here = np.asarray(labels[view]) == 1
    out = {}
    for other, y in labels.items():
        if other != view:
            out[other] = int((flagged & ~here & (np.asarray(y) == 1)).sum())
    return out
