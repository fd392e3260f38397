"""The decision report: one detector at one operating point, with everything needed to deploy it and to check it.

:func:`facts` gathers every number the report shows into one JSON-ready dict (the detector's threshold
and how it was chosen, recall overall and per anomaly category with counts and Wilson intervals, what it
misses, the alerts a day, the best alternative at the same point and whether the two tie, the thresholds
file to deploy, and the inputs that reproduce it all: store manifest hash, split checksums, seed,
resamples). :func:`build` renders it as a self-contained HTML file and as Markdown
(:mod:`anodet.evaluation.report_render`); both carry the facts verbatim, so a reader can check each
number against the store and the split. Nothing here imports Streamlit.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from anodet.datasets import catalog
from anodet.datasets.model import NORMAL, Declaration, Splits
from anodet.evaluation import boards, comparison, intervals
from anodet.evaluation.boards import Scored, ViewBoard
from anodet.evaluation.operating import OperatingPoint
from anodet.evaluation.thresholds import thresholds_document
from anodet.store.reproducibility import read_run

FORMAT = "anodet-report/1"
TOP_VALUES = 10
"""How many of the most common missed (and falsely flagged) label values the report lists."""


class ReportError(ValueError):
    """A report that cannot be written as asked; the message is one sentence saying what to give instead."""


def _f(value: Any) -> float | None:
    """A JSON number (None for NaN)."""
    value = float(value)
    return None if np.isnan(value) else value


def _ci(row: pd.Series, metric: str) -> list[float | None] | None:
    if f"{metric}_ci_low" not in row:
        return None
    return [_f(row[f"{metric}_ci_low"]), _f(row[f"{metric}_ci_high"])]


def _wilson(k: int, n: int) -> list[float | None]:
    low, high = intervals.wilson(k, n, comparison.LEVEL)
    return [_f(low), _f(high)]


def open_dataset(dataset: str, declaration: Declaration | None = None, store: Any = None,
                 splits: Splits | None = None) -> tuple[Declaration, Any, Splits]:
    """A dataset's declaration, model store and splits, by key (``kdd`` or a user dataset's name); each is opened
    only when it is not given."""
    declaration = declaration or catalog.get(dataset)
    if store is None and declaration.builtin:
        from anodet.store.core import Store

        store = Store.open(declaration.store_root)
    elif store is None:
        from anodet.training.datasets import open_store

        store = open_store(dataset)
    return declaration, store, splits if splits is not None else declaration.load_splits()


def command_line(dataset: str, view: str, detector: str, point: OperatingPoint, seed: int, resamples: int,
                 thresholds_source: str = "") -> str:
    """The ``python -m anodet report`` command that writes this report again."""
    parts = ["python -m anodet report", f"--detector {detector}"]
    if point.kind == "fpr":
        parts.append(f"--fpr {point.fpr!r}")
    elif point.kind == "budget":
        parts.append(f"--budget {point.alerts_per_day:g}/{point.records_per_day:g}")
        if point.attack_share:
            parts.append(f"--attack-share {point.attack_share!r}")
    elif point.kind == "cost":
        parts.append(f"--cost {point.cost_ratio:g}")
    else:
        parts.append(f"--preset {point.preset}")
    if point.kind != "budget" and point.records_per_day != OperatingPoint.records_per_day:
        parts.append(f"--records-per-day {point.records_per_day:g}")
    if dataset != catalog.KDD:
        parts.append(f"--dataset {dataset}")
    parts.append(f"--label-view {view}")
    if thresholds_source:
        parts.append(f"--thresholds {thresholds_source}")
    parts += [f"--seed {seed}", f"--resamples {resamples}", "-o report.html"]
    return " ".join(parts)


def _categories(declaration: Declaration, splits: Splits, view: str,
                flagged: np.ndarray) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per anomaly category: records, caught, missed, recall and its interval; categories of records this view
    counts as normal though they are not labelled normal: records and how many are flagged)."""
    test = splits.test
    y = test.label(view)
    assert y is not None
    category = test.category.astype(str)
    caught, counted_normal = [], []
    for name in declaration.categories_in(test):
        here = category == name
        attacks = here & (y == 1)
        n = int(attacks.sum())
        if n:
            k = int((flagged & attacks).sum())
            caught.append({"category": name, "records": n, "caught": k, "missed": n - k, "recall": k / n,
                           "recall_ci": _wilson(k, n)})
        others = here & (y != 1)
        if name != NORMAL and int(others.sum()):
            counted_normal.append({"category": name, "records": int(others.sum()),
                                   "flagged": int((flagged & others).sum())})
    return caught, counted_normal


def _top_values(splits: Splits, mask: np.ndarray, among: np.ndarray, key: str) -> list[dict[str, Any]]:
    """The most common label values among ``mask``'s records, with their category and how many of ``among``'s
    records hold each value."""
    test = splits.test
    text = pd.Series(test.label_text.astype(str))
    counts = text[mask].value_counts(sort=True)
    totals = text[among].value_counts()
    category = pd.Series(test.category.astype(str)).groupby(text).first()
    ordered = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))[:TOP_VALUES]
    return [{"value": str(value), "category": str(category[value]), key: int(count), "records": int(totals[value])}
            for value, count in ordered]


def _at(vb: ViewBoard, name: str) -> dict[str, Any]:
    """One detector's numbers at the point, from the view's board: counts, rates with their intervals, alerts a
    day (split into false alarms on normal traffic and caught attacks, and at the ends of the rates' intervals)."""
    row = vb.board.loc[name]
    point = vb.point
    assert point is not None
    tp, fp = int(row["tp_at_op"]), int(row["fp_at_op"])
    recall, fpr = _f(row["recall_at_op"]), _f(row["fpr_at_op"])
    recall_ci, fpr_ci = _ci(row, "recall_at_op"), _ci(row, "fpr_at_op")
    share = point.attack_share if point.kind == "budget" else 0.0
    normal_traffic, attack_traffic = point.records_per_day * (1 - share), point.records_per_day * share
    alerts_ci = None
    if recall_ci and fpr_ci and None not in (*recall_ci, *fpr_ci):
        alerts_ci = [normal_traffic * float(fpr_ci[i] or 0.0) + attack_traffic * float(recall_ci[i] or 0.0)
                     for i in (0, 1)]
    out: dict[str, Any] = {"name": name, "display": str(row["detector"]), "threshold": float(row["threshold_at_op"]),
           "tp": tp, "fp": fp, "fn": int(row["fn_at_op"]), "tn": int(row["tn_at_op"]),
           "recall": recall, "recall_ci": recall_ci, "fpr": fpr, "fpr_ci": fpr_ci,
           "precision": tp / (tp + fp) if tp + fp else None, "precision_ci": _wilson(tp, tp + fp) if tp + fp else None,
           "alerts_per_day": _f(row["alerts_per_day"]), "pauc": _f(row["pauc"]), "pauc_ci": _ci(row, "pauc"),
           "roc_auc": _f(row["roc_auc"]), "roc_auc_ci": _ci(row, "roc_auc"),
           "false_alerts_per_day": None if fpr is None else normal_traffic * fpr,
           "attack_alerts_per_day": None if recall is None else attack_traffic * recall,
           "alerts_per_day_ci": alerts_ci}
    return out


def _versions() -> dict[str, str]:
    from importlib import metadata

    import anodet

    out = {"python": platform.python_version(), "anodet": anodet.__version__}
    for package in ("numpy", "pandas", "scipy", "scikit-learn", "plotly"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def facts(dataset: str, view: str | None, detector: str, point: OperatingPoint,
          thresholds: Mapping[str, float] | None = None, *, declaration: Declaration | None = None,
          store: Any = None, splits: Splits | None = None, scores: Scored | None = None,
          resamples: int = comparison.RESAMPLES, seed: int = 0, thresholds_source: str = "") -> dict[str, Any]:
    """Every number of the decision report on ``detector`` at ``point`` under label ``view`` (default: the dataset's
    first), as a JSON-ready dict. ``thresholds`` (e.g. a thresholds file, or the thresholds in force in a session)
    replaces the point's threshold for the detectors it names; every other detector is judged at the point.
    ``declaration``, ``store``, ``splits`` and ``scores`` may be given when the caller holds them already."""
    declaration, store, splits = open_dataset(dataset, declaration, store, splits)
    views = declaration.view_keys or tuple(store.label_views[:1])
    view = view or views[0]
    if view not in views:
        raise ReportError(f"Label view {view!r} is not one of this dataset's ({', '.join(views)}); give one of them.")
    store.entry(detector)  # a StoreError saying how to train a detector the store lacks
    if splits.test.label(view) is None:
        raise ReportError("A decision report needs labelled test records to say what a detector catches; this "
                          "dataset's test split has no labels.")
    scores = scores or boards.cached_scores(store, splits)
    overrides = {n: float(v) for n, v in (thresholds or {}).items() if n in store.names}
    vb = boards.view_board(declaration, store, splits, view, scores, point, store.names, resamples, seed, overrides)
    y = splits.test.label(view)
    assert y is not None
    threshold = vb.thresholds_at_op[detector]
    flagged = np.asarray(scores.test[detector]) >= threshold
    at = _at(vb, detector)
    row = vb.board.loc[detector]
    at.update({"pauc_max_fpr": at["fpr"] if point.target_fpr is None else point.target_fpr,
               "tied_with_best": bool(row.get("op_tied", False))})
    if point.kind == "cost":
        at["expected_cost"] = _f(row["expected_cost"])
    ranked = [n for n in vb.board.index if not store.uses_labels(n)]
    best = vb.best
    others = [n for n in ranked if n != detector]
    words = declaration.words
    y_val = splits.validation.label(view)
    validation: dict[str, Any] | None = None
    if y_val is not None and detector in scores.validation:  # an external detector may come without them
        val_flagged = np.asarray(scores.validation[detector]) >= threshold
        n_val, k_val = int((y_val != 1).sum()), int((val_flagged & (y_val != 1)).sum())
        validation = {"records": len(y_val), "attacks": int((y_val == 1).sum()), "normals": n_val,
                      "normals_flagged": k_val, "attacks_flagged": int((val_flagged & (y_val == 1)).sum()),
                      "fpr": k_val / n_val if n_val else None}
    categories, counted_normal = _categories(declaration, splits, view, flagged)
    alternative = None
    if others:
        alt = others[0]
        alternative = _at(vb, alt)
        alt_flagged = np.asarray(scores.test[alt]) >= alternative["threshold"]
        attacks = y == 1
        a, b = flagged[attacks], alt_flagged[attacks]
        p = comparison.mcnemar(a, b)
        diff = comparison.paired_rows(y, scores.test, alt, detector, resamples=resamples, seed=seed)["roc_auc"]
        alternative.update({"caught_by_both": int((a & b).sum()), "caught_only_by_detector": int((a & ~b).sum()),
                            "caught_only_by_alternative": int((b & ~a).sum()), "mcnemar_p": p,
                            "tied": bool(p > 0.05), "roc_auc_difference": [_f(v) for v in diff]})
    document = json.loads(thresholds_document({detector: threshold}, view, store.hash))
    document.update({"dataset": dataset, "operating_point": point.to_params()})
    test = splits.test
    return {
        "format": FORMAT,
        "dataset": {"key": dataset, "title": declaration.title, "label_view": view,
                    "view_help": declaration.view_help(view), "positive": words.positive,
                    "positives": words.positives, "negatives": words.negatives},
        "point": {"kind": point.kind, "description": point.describe(), "params": point.to_params(),
                  "target_fpr": point.target_fpr, "records_per_day": point.records_per_day,
                  "attack_share": point.attack_share if point.kind == "budget" else 0.0,
                  **({"alerts_per_day": point.alerts_per_day} if point.kind == "budget" else {}),
                  **({"cost_ratio": point.cost_ratio} if point.kind == "cost" else {})},
        "detector": {"name": detector, "display": at["display"], "feature_set": store.feature_set_of(detector),
                     "uses_labels": store.uses_labels(detector), "threshold": threshold,
                     "threshold_source": (f"the thresholds file {thresholds_source}" if detector in overrides
                                          and thresholds_source else "given" if detector in overrides
                                          else "the operating point"),
                     "infinite_test_scores": int(np.isinf(np.asarray(scores.test[detector])).sum()),
                     "rank": ranked.index(detector) + 1 if detector in ranked else None, "ranked": len(ranked),
                     "best": best, "best_display": str(vb.board.loc[best, "detector"]) if best else None},
        "test": {"records": len(test), "attacks": vb.n_attacks, "normals": vb.n_normals},
        "resolution": {"normals": vb.resolution.normals, "step": _f(vb.resolution.step),
                       "zero_upper": _f(vb.resolution.zero_upper),
                       "finer": vb.resolution.finer_than(point.target_fpr)},
        "validation": validation,
        "at_point": at,
        "categories": categories,
        "counted_normal": counted_normal,
        "elsewhere": boards.flagged_elsewhere_sentence(vb, splits, scores, detector, words),
        "missed_values": _top_values(splits, (y == 1) & ~flagged, y == 1, "missed"),
        "false_positive_values": _top_values(splits, (y != 1) & flagged, y != 1, "flagged"),
        "alternative": alternative,
        "notes": list(vb.notes),
        "thresholds_file": document,
        "inputs": {"store_root": str(store.root), "store_manifest_sha256": store.hash,
                   "store_created": str(store.manifest.get("created") or read_run(store.root).get("created", "")),
                   "split_checksums": dict(splits.checksums),
                   "split_records": {p: len(splits.part(p)) for p in ("train", "validation", "test")},
                   "seed": seed, "resamples": resamples, "level": comparison.LEVEL,
                   "scoring_code_sha256": _scoring_stamp(),
                   "versions": _versions(),
                   "command": command_line(dataset, view, detector, point, seed, resamples, thresholds_source),
                   "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }


def _scoring_stamp() -> str:
    from anodet.scoring.cache import scoring_code_stamp

    return scoring_code_stamp()


def build(dataset: str, view: str | None, detector: str, point: OperatingPoint,
          thresholds: Mapping[str, float] | None = None, *, declaration: Declaration | None = None,
          store: Any = None, splits: Splits | None = None, scores: Scored | None = None,
          resamples: int = comparison.RESAMPLES, seed: int = 0, thresholds_source: str = "") -> tuple[str, str]:
    """The decision report on ``detector`` at ``point`` as (self-contained HTML, Markdown); see :func:`facts`."""
    from anodet.evaluation import report_render

    declaration, store, splits = open_dataset(dataset, declaration, store, splits)
    scores = scores or boards.cached_scores(store, splits)
    got = facts(dataset, view, detector, point, thresholds, declaration=declaration, store=store, splits=splits,
                scores=scores, resamples=resamples, seed=seed, thresholds_source=thresholds_source)
    figures = report_render.figures(got, splits, scores)
    return report_render.html(got, figures), report_render.markdown(got)
