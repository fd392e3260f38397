"""A benchmark's summary per protocol: mean ROC AUC, mean rank and wins per detector, the oracle, rank tests.

Seeds are averaged first, so each dataset counts once: a detector's mean ROC AUC is the mean over
datasets of its mean over seeds, and each dataset ranks every row of the table (family, peers and
the per-dataset choice; 1 = best, ties share the mean rank). A detector that failed on a dataset ×
seed counts as a random guess there (ROC AUC 0.5, PR AUC the test part's anomaly share, recall at
the stated FPR equal to it) and its failures are counted. The oracle — the best detector of each
dataset by test ROC AUC, which nobody can know in advance — is shown for reference, never ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodet.benchmark import ranks

METRICS = ("roc_auc", "pr_auc", "recall_at_fpr")
ALPHA = 0.05


@dataclass
class ProtocolSummary:
    """Everything the summary says about one protocol."""

    protocol: str
    table: Any  # one row per detector, best mean rank first
    oracle: dict[str, float]
    datasets: int
    seeds: int
    friedman: ranks.Friedman | None
    cd: float | None
    alpha: float
    nemenyi_groups: list[list[str]] = field(default_factory=list)
    wilcoxon: list[ranks.PairTest] = field(default_factory=list)
    wilcoxon_groups: list[list[str]] = field(default_factory=list)

    @property
    def average_ranks(self) -> dict[str, float]:
        return dict(zip(self.table["detector"], self.table["mean_rank"], strict=True))

    def best(self, group: str) -> tuple[str, float] | None:
        """(detector, mean ROC AUC) of the best of ``group`` (family, peer or choice) by mean ROC AUC."""
        rows = self.table[self.table["group"] == group]
        if rows.empty:
            return None
        top = rows.sort_values("mean_roc_auc", ascending=False, kind="stable").iloc[0]
        return str(top["detector"]), float(top["mean_roc_auc"])


def filled(table: Any) -> Any:
    """The results with a failed row's metrics set to a random guess's (see the module docstring)."""
    table = table.copy()
    failed = table["error"].fillna("") != ""
    share = table["test_anomalies"].astype(float) / table["test_rows"].astype(float)
    table.loc[failed, "roc_auc"] = 0.5
    table.loc[failed, "pr_auc"] = share[failed]
    table.loc[failed, "recall_at_fpr"] = table.loc[failed, "fpr"].astype(float)
    table["failed"] = failed.astype(int)
    return table


def per_dataset(table: Any, protocol: str, metric: str = "roc_auc") -> Any:
    """Datasets × detectors: ``metric`` averaged over seeds (failures as a random guess), in the table's order."""
    rows = filled(table[table["protocol"] == protocol])
    matrix = rows.pivot_table(index="dataset", columns="detector", values=metric, aggfunc="mean", sort=False)
    return matrix[list(dict.fromkeys(rows["detector"]))]


def summarize(table: Any, protocol: str, alpha: float = ALPHA) -> ProtocolSummary:
    """The summary of ``protocol``'s rows of a results table."""
    import pandas as pd

    rows = filled(table[table["protocol"] == protocol])
    auc = per_dataset(table, protocol)
    complete = auc.dropna(axis=0, how="any")
    order = list(auc.columns)
    groups = rows.drop_duplicates("detector").set_index("detector")
    ranked = ranks.rank_matrix(complete.to_numpy()) if len(complete) else np.zeros((0, len(order)))
    mean_rank = ranked.mean(axis=0) if len(complete) else np.full(len(order), np.nan)
    wins = (ranked == ranked.min(axis=1, keepdims=True)).sum(axis=0) if len(complete) else np.zeros(len(order))
    by = rows.groupby("detector", sort=False)
    out = pd.DataFrame({
        "detector": order,
        "display": [groups.loc[d, "display"] for d in order],
        "group": [groups.loc[d, "group"] for d in order],
        "mean_roc_auc": [float(auc[d].mean()) for d in order],
        "mean_pr_auc": [float(per_dataset(table, protocol, "pr_auc")[d].mean()) for d in order],
        "mean_recall_at_fpr": [float(per_dataset(table, protocol, "recall_at_fpr")[d].mean()) for d in order],
        "mean_rank": mean_rank,
        "wins": wins.astype(int),
        "failures": [int(by.get_group(d)["failed"].sum()) for d in order],
        "fit_s": [float(by.get_group(d)["fit_s"].fillna(0).sum()) for d in order],
        "score_s": [float(by.get_group(d)["score_s"].fillna(0).sum()) for d in order],
    }).sort_values(["mean_rank", "mean_roc_auc"], ascending=[True, False], kind="stable").reset_index(drop=True)
    detectors = [d for d in order if groups.loc[d, "group"] != "choice"]
    oracle = {}
    for label, members in (("family", [d for d in detectors if groups.loc[d, "group"] == "family"]),
                           ("peers", [d for d in detectors if groups.loc[d, "group"] == "peer"]),
                           ("all", detectors)):
        if members:
            oracle[label] = float(auc[members].max(axis=1).mean())
    summary = ProtocolSummary(protocol, out, oracle, int(auc.shape[0]), int(rows["seed"].nunique()), None, None, alpha)
    if len(complete) >= 2 and len(order) >= 2:
        summary.friedman = ranks.friedman(complete.to_numpy())
        summary.cd = ranks.critical_difference(len(order), len(complete), alpha)
        average = summary.average_ranks
        summary.nemenyi_groups = ranks.nemenyi_groups(average, summary.cd)
        summary.wilcoxon = ranks.wilcoxon_holm(complete.to_numpy(), order, alpha)
        summary.wilcoxon_groups = ranks.wilcoxon_groups(average, summary.wilcoxon)
    return summary


def summarize_all(table: Any, alpha: float = ALPHA) -> list[ProtocolSummary]:
    """One summary per protocol present in the table, in the order they appear."""
    return [summarize(table, p, alpha) for p in dict.fromkeys(table["protocol"])]


def _name(row: Any) -> str:
    return f"{row['display']} *(peer)*" if row["group"] == "peer" else (
        f"**{row['display']}**" if row["group"] == "choice" else str(row["display"]))


def markdown(summary: ProtocolSummary, fpr: float) -> str:
    """The summary of one protocol as Markdown: the table, the oracle, the rank tests."""
    from anodet.benchmark.results import CRITERIA

    s = summary
    lines = [f"**Protocol {s.protocol}** — {s.datasets} datasets × {s.seeds} seed(s); ranks among {len(s.table)} "
             f"rows (1 = best); per-dataset choice by {CRITERIA[s.protocol]}.", "",
             f"| detector | group | mean ROC AUC | mean PR AUC | recall at {fpr:.0%} FPR | mean rank | wins | "
             "failures | fit s | score s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for _, row in s.table.iterrows():
        lines.append(f"| {_name(row)} | {row['group']} | {row['mean_roc_auc']:.4f} | {row['mean_pr_auc']:.4f} | "
                     f"{row['mean_recall_at_fpr']:.4f} | {row['mean_rank']:.2f} | {row['wins']} | {row['failures']} | "
                     f"{row['fit_s']:.1f} | {row['score_s']:.1f} |")
    lines.append("")
    if s.oracle:
        lines.append("Oracle (the best detector of each dataset by test ROC AUC; uses test labels, not ranked): "
                     + ", ".join(f"{k} {v:.4f}" for k, v in s.oracle.items()) + ".")
    lines.extend(_comparison(s))
    if s.friedman is not None and s.cd is not None:
        f = s.friedman
        lines.append(f"Friedman test over {f.n} datasets and {f.k} rows: χ²_F = {f.chi2:.2f} (p = {f.p_chi2:.2g}), "
                     f"F_F = {f.f:.2f} (p = {f.p_f:.2g}). Nemenyi critical difference at α = {s.alpha}: "
                     f"{s.cd:.2f} ranks; Wilcoxon–Holm finds {sum(t.significant for t in s.wilcoxon)} of "
                     f"{len(s.wilcoxon)} pairs different.")
    return "\n".join(lines)


def _comparison(s: ProtocolSummary) -> list[str]:
    family, peer = s.best("family"), s.best("peer")
    out = []
    if family and peer:
        out.append(f"Best of the family: {family[0]} {family[1]:.4f}; best peer: {peer[0]} {peer[1]:.4f} "
                   f"(difference {family[1] - peer[1]:+.4f}).")
    for choice in ("choice:family", "choice:all"):
        row = s.table[s.table["detector"] == choice]
        if not row.empty:
            value = float(row["mean_roc_auc"].iloc[0])
            versus = f"; {value - peer[1]:+.4f} against the best peer" if peer else ""
            out.append(f"{row['display'].iloc[0]}: {value:.4f}{versus}.")
    return out


def to_json(summary: ProtocolSummary) -> dict[str, Any]:
    """The summary as plain JSON (for the page and for scripts)."""
    s = summary
    doc: dict[str, Any] = {
        "protocol": s.protocol, "datasets": s.datasets, "seeds": s.seeds, "alpha": s.alpha,
        "detectors": s.table.replace({np.nan: None}).to_dict(orient="records"), "oracle": s.oracle,
        "cd": s.cd, "nemenyi_groups": s.nemenyi_groups, "wilcoxon_groups": s.wilcoxon_groups,
        "wilcoxon": [vars(t) for t in s.wilcoxon],
    }
    if s.friedman is not None:
        f = s.friedman
        doc["friedman"] = {"chi2": f.chi2, "p_chi2": f.p_chi2, "f": f.f, "p_f": f.p_f, "n": f.n, "k": f.k}
    return doc
