"""Benchmark the family against PyOD on the shared ADBench suite (issue 30), both protocols, and write the figures.

The whole suite (``$ANODET_ADBENCH`` or ``../shared/adbench``), 3 seeds, the family's quick set
plus PyOD's common detectors as peers, under the ``unsupervised`` and the ``normal-only``
protocol, through the same :func:`anodet.benchmark.run_benchmark` as ``python -m anodet benchmark``,
on a Dask ``LocalCluster`` of 2 worker processes (one task per worker, on the 2 cores). The run
starts afresh in a temporary folder (nothing resumed), so the wall time is the whole suite's.
Prints the figures and writes ``bench/results/suite.md`` (and the run's results table, summary and
CD diagrams into ``--keep FOLDER`` when given).

    python bench/bench_suite.py [--seeds 3] [--engine dask|local] [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anodet.benchmark import run_benchmark  # noqa: E402
from anodet.benchmark.contenders import ENSEMBLE_MEMBERS, QUICK, peer_names  # noqa: E402
from anodet.benchmark.results import CRITERIA  # noqa: E402
from anodet.benchmark.suites import default_suite  # noqa: E402
from anodet.benchmark.summary import ProtocolSummary  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "suite.md"
ISSUE: dict[str, dict[str, Any]] = {"unsupervised": {"best": ("IForest", 0.7721), "oracle": 0.8309},
         "normal-only": {"best": ("KNN", 0.8582), "oracle": 0.8875}}
"""The issue's figures (PyOD 3.6.7 defaults, ADBench protocol, 3 seeds, fitted on all normal training rows)."""
BUDGET_S = 20 * 60


def _row(s: ProtocolSummary, detector: str) -> dict:
    return s.table[s.table["detector"] == detector].iloc[0].to_dict()


def _targets(summaries: list[ProtocolSummary]) -> list[str]:
    by = {s.protocol: s for s in summaries}
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    if "unsupervised" in by:
        s = by["unsupervised"]
        family, peer = s.best("family"), s.best("peer")
        if family and peer:
            lines.append(f"| unsupervised: the family's best mean ROC AUC ≥ the best PyOD detector's, same run | "
                         f"{family[0]} {family[1]:.4f} vs {peer[0]} {peer[1]:.4f} ({family[1] - peer[1]:+.4f}) | "
                         f"{'yes' if family[1] >= peer[1] else '**no**'} |")
    if "normal-only" in by:
        s = by["normal-only"]
        peer = s.best("peer")
        for choice in ("choice:family", "choice:all"):
            rows = s.table[s.table["detector"] == choice]
            if peer and not rows.empty:
                value = float(rows["mean_roc_auc"].iloc[0])
                lines.append(f"| normal-only: {rows['display'].iloc[0]} ≥ best PyOD + 0.02 (same run: "
                             f"≥ {peer[1] + 0.02:.4f}) | {value:.4f} ({value - peer[1]:+.4f} vs {peer[0]}) | "
                             f"{'yes' if value >= peer[1] + 0.02 else '**no**'} |")
                lines.append(f"| normal-only: {rows['display'].iloc[0]} ≥ 0.878 (the issue's figures + 0.02) | "
                             f"{value:.4f} | {'yes' if value >= 0.878 else '**no**'} |")
    return lines


def _protocol_section(s: ProtocolSummary) -> list[str]:
    issue = ISSUE[s.protocol]
    peer = s.best("peer")
    out = [f"### Protocol `{s.protocol}`", "",
           f"{s.datasets} datasets × {s.seeds} seeds; seeds averaged per dataset, then datasets; ranks among the "
           f"{len(s.table)} rows (1 = best). Per-dataset choice: {CRITERIA[s.protocol]}.", "",
           "| detector | group | mean ROC AUC | mean PR AUC | recall at 5% FPR | mean rank | wins | failures | "
           "fit + score s |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for _, r in s.table.iterrows():
        name = f"{r['display']} *(peer)*" if r["group"] == "peer" else (
            f"**{r['display']}**" if r["group"] == "choice" else r["display"])
        out.append(f"| {name} | {r['group']} | {r['mean_roc_auc']:.4f} | {r['mean_pr_auc']:.4f} | "
                   f"{r['mean_recall_at_fpr']:.4f} | {r['mean_rank']:.2f} | {r['wins']} | {r['failures']} | "
                   f"{r['fit_s'] + r['score_s']:.0f} |")
    out.append("")
    out.append("Oracle (best detector per dataset by test ROC AUC, which nobody knows in advance): "
               + ", ".join(f"{k} {v:.4f}" for k, v in s.oracle.items())
               + f"; the issue's PyOD oracle: {issue['oracle']:.4f}.")
    if peer:
        out.append(f"Best PyOD detector here: {peer[0]} {peer[1]:.4f} (the issue: {issue['best'][0]} "
                   f"{issue['best'][1]:.4f}).")
    if s.friedman is not None and s.cd is not None:
        f = s.friedman
        out.append(f"Friedman: χ²_F = {f.chi2:.1f} (p = {f.p_chi2:.2g}), F_F = {f.f:.2f} (p = {f.p_f:.2g}) over "
                   f"{f.n} datasets and {f.k} rows; Nemenyi CD at α = {s.alpha}: {s.cd:.2f} ranks; Wilcoxon–Holm: "
                   f"{sum(t.significant for t in s.wilcoxon)} of {len(s.wilcoxon)} pairs differ.")
    failed = s.table[s.table["failures"] > 0]
    if not failed.empty:
        out.append("Failures (counted as a random guess): " + ", ".join(
            f"{r['display']} {r['failures']}" for _, r in failed.iterrows()) + " (dataset × seed runs).")
    return [*out, ""]


def _errors(table) -> list[str]:
    failed = table[(table["error"] != "") & (table["group"] != "choice")]
    if failed.empty:
        return []
    lines = ["Errors, as the results table records them:", ""]
    for (detector, error), rows in failed.groupby(["detector", "error"]):
        lines.append(f"- {detector} on {', '.join(sorted(set(rows['dataset'])))} ({len(rows)} runs): {error}")
    return [*lines, ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--engine", choices=("local", "dask"), default="dask")
    parser.add_argument("--keep", metavar="FOLDER", help="also keep the run's folder here")
    args = parser.parse_args()
    suite = default_suite()
    if suite is None:
        print("No suite: set ANODET_ADBENCH to the ADBench folder.", file=sys.stderr)
        return 2
    peers = peer_names("pyod")
    load = os.getloadavg()
    cpu_before = os.times()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        start = time.perf_counter()
        outcome = run_benchmark([str(suite)], folder, ["unsupervised", "normal-only"], args.seeds, list(QUICK), peers,
                                engine=args.engine, progress=lambda d, t, w: print(f"[{d}/{t}] {w}", flush=True))
        wall = time.perf_counter() - start
        cpu_after = os.times()
        if args.keep:
            shutil.copytree(folder, args.keep, dirs_exist_ok=True)
    load_end = os.getloadavg()
    cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("user", "system", "children_user",
                                                                           "children_system"))
    table = outcome.table
    tasks = table[["protocol", "dataset", "seed"]].drop_duplicates().shape[0]
    detector_s = float(table.loc[table["group"] != "choice", ["fit_s", "score_s", "select_s"]].fillna(0).sum().sum())
    import pyod

    lines = ["# The family against PyOD on the ADBench suite (issue 30)", "",
             f"`python bench/bench_suite.py --seeds {args.seeds} --engine {args.engine}` — "
             f"{table['dataset'].nunique()} datasets from `{suite}`, {args.seeds} seeds, protocols `unsupervised` "
             f"and `normal-only`; the family's quick set ({', '.join(QUICK)}; the ensemble is built on "
             f"{', '.join(ENSEMBLE_MEMBERS)}) and PyOD {pyod.__version__}'s {len(peers)} common detectors with "
             f"default settings as peers, on the same splits. {platform.machine()}, {os.cpu_count()} CPUs shared "
             f"with other work, Python {platform.python_version()}.",
             "", "## Targets", "", *_targets(outcome.summaries), "",
             "## Wall time", "",
             "| measure | value | target |", "| --- | ---: | ---: |",
             f"| whole suite, both protocols, {args.seeds} seeds, family + PyOD peers ({tasks} tasks) | "
             f"**{wall / 60:.1f} min** | ≤ {BUDGET_S // 60} min |",
             f"| CPU time of this process and its workers | {cpu / 60:.1f} min ({cpu / 120:.1f} min on 2 cores) "
             "| – |",
             f"| seconds inside detectors (fit, score, selection scoring) | {detector_s / 60:.1f} min | – |",
             f"| load average (1 min) at the start / end | {load[0]:.1f} / {load_end[0]:.1f} | – |", "",
             "## Results", ""]
    for s in outcome.summaries:
        lines.extend(_protocol_section(s))
    lines.extend(_errors(table))
    lines.extend([
        "How to read: the ADBench protocol (stratified subsample to 10,000 rows, stratified 70/30 split, min-max on "
        "the training part); `unsupervised` fits on every training row (anomalies included, labels unseen); "
        "`normal-only` fits on 75% of the training normals and holds out the other 25% with every training anomaly "
        "as a labelled validation part, used only by the per-dataset choice (so its detectors see fewer normal rows "
        "than the issue's figures, which fitted on all of them). Failed runs count as a random guess. Family "
        "detectors run with their class defaults, not the KDD-tuned hyperparameters.", ""])
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
