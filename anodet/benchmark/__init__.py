"""Benchmark the detector family on suites of labelled datasets, beside PyOD's detectors as peers.

``python -m anodet benchmark SUITE… -o FOLDER`` (:mod:`anodet.commands.benchmark`) and the future
benchmark page use these pieces:

* :mod:`~anodet.benchmark.suites` — which datasets (ADBench ``.npz``, CSV/Parquet with a label
  column, declared anodet datasets) and reading them;
* :mod:`~anodet.benchmark.protocols` — ADBench's split and scaling; ``unsupervised`` and ``normal-only``;
* :mod:`~anodet.benchmark.contenders` — the family's detectors and PyOD's peers behind one fit/score;
* :mod:`~anodet.benchmark.runner` — dataset × seed × protocol tasks, local or on Dask, resumable;
* :mod:`~anodet.benchmark.results` — the tidy results table with the per-dataset choice rows;
* :mod:`~anodet.benchmark.summary` and :mod:`~anodet.benchmark.ranks` — means, ranks, wins, the
  oracle, Friedman, Nemenyi and Wilcoxon–Holm;
* :mod:`~anodet.benchmark.figures` — critical-difference diagrams (SVG or plotly).

:func:`run_benchmark` runs them in order and writes the folder: ``results.parquet`` and
``results.csv``, ``summary.md`` and ``summary.json``, and ``cd-PROTOCOL.svg`` per protocol.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anodet.benchmark.runner import DEFAULT_FPR, Progress

SUMMARY_MD = "summary.md"
SUMMARY_JSON = "summary.json"


@dataclass
class Outcome:
    """What :func:`run_benchmark` did and wrote."""

    table: Any
    summaries: list[Any]
    progress: Progress
    files: list[Path]
    seconds: float


def run_benchmark(items: list[str], folder: Path, protocols: list[str], seeds: int, detectors: list[str],
                  peers: list[str], engine: str = "local", scheduler: str | None = None, workers: int = 2,
                  fpr: float = DEFAULT_FPR, budget_s: float | None = None, label: str | None = None,
                  normal: tuple[str, ...] = (), alpha: float = 0.05,
                  progress: Callable[[int, int, str], None] | None = None) -> Outcome:
    """Run the benchmark of ``items`` (suite folders, files, dataset names) into ``folder`` and summarise it."""
    from anodet.benchmark import figures, results, runner, suites, summary
    from anodet.benchmark.contenders import NEURAL_BUDGET_S

    start = time.perf_counter()
    datasets = suites.resolve(items, label, normal)
    suites.check(datasets, protocols)  # every dataset readable and splittable before any task runs
    folder.mkdir(parents=True, exist_ok=True)
    tasks = runner.plan(datasets, protocols, list(range(seeds)), [*detectors, *peers], folder, fpr,
                        budget_s if budget_s is not None else NEURAL_BUDGET_S)
    report = runner.run(tasks, engine, scheduler, workers, progress)
    table = results.typed(results.gather(tasks))
    files = list(results.write_table(table, folder))
    summaries = summary.summarize_all(table, alpha)
    text = [f"# Benchmark: {len(datasets)} datasets, {seeds} seed(s), {len(detectors)} family detector(s)"
            f"{f', {len(peers)} peer(s)' if peers else ''}", ""]
    for s in summaries:
        text.extend([summary.markdown(s, fpr), ""])
        path = folder / f"cd-{s.protocol}.svg"
        if s.cd is not None:
            path.write_text(figures.svg(figures.cd_layout(s)))
            files.append(path)
    (folder / SUMMARY_MD).write_text("\n".join(text))
    (folder / SUMMARY_JSON).write_text(json.dumps([summary.to_json(s) for s in summaries], indent=1, default=str))
    files.extend([folder / SUMMARY_MD, folder / SUMMARY_JSON])
    return Outcome(table, summaries, report, files, time.perf_counter() - start)
