"""Score many files into a folder of parts: one after another here, or in parallel on Dask.

Each input file is one task and becomes one part (``part-00000.csv`` or ``.parquet``, in input
order) through the very routine a single file goes through (:func:`anodet.scoring.files.score_source`),
so the engines agree row for row; ``summary.json`` adds up the files' summaries. On Dask, each
worker process opens the model store itself from its path (the store must be readable there,
e.g. a shared disk) and keeps it for the tasks that follow: models are never shipped through the
scheduler. With no scheduler address a ``LocalCluster`` on this machine runs the tasks.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from anodet.reader import InputError
from anodet.scoring.files import MAX_PROBLEMS_KEPT, Summary

PART_FORMATS = ("csv", "parquet")


def expand_inputs(patterns: list[str]) -> list[str]:
    """Files named by ``patterns`` (paths or globs), in order, each once; InputError when one matches nothing."""
    out: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise InputError(f"No file matches {pattern!r}. Check the pattern (quote it so the shell does not expand it).")
        for match in matches:
            if Path(match).is_dir():
                raise InputError(f"{match} is a folder; name the files in it (e.g. {Path(match) / '*.csv'}).")
            if not Path(match).exists():
                raise InputError(f"{match} does not exist. Check the path.")
            if match not in out:
                out.append(match)
    return out


@dataclass(frozen=True)
class Task:
    """One input file to score into one part."""

    source: str
    part: str
    store_root: str
    manifest_hash: str
    names: tuple[str, ...]
    thresholds: tuple[tuple[str, float], ...]
    on_bad_rows: str


_STORES: dict[tuple[str, str], Any] = {}


def run_task(task: Task) -> Summary:
    """Score one file into its part (in whichever process runs it); the store is opened once per process."""
    from anodet.scoring.core import Scorer
    from anodet.scoring.files import score_source
    from anodet.scoring.output import ResultsFile
    from anodet.store import Store, StoreError

    key = (task.store_root, task.manifest_hash)
    store = _STORES.get(key)
    if store is None:
        store = Store.open(Path(task.store_root))
        if store.hash != task.manifest_hash:
            raise StoreError(f"The model store at {task.store_root} differs on this worker from the one the job was "
                             "started with; give every worker the same store.")
        _STORES[key] = store
    from threadpoolctl import threadpool_limits

    results = ResultsFile(task.part)
    sink = results.open()
    # One BLAS thread, as ``anodet score`` uses: rows are already spread over the cores by the
    # scoring threads (and by the workers), and a float32 matrix product can round a last bit
    # differently with another BLAS thread count, so every engine computes the same bits.
    limits = threadpool_limits(limits=1, user_api="blas")
    try:
        summary = score_source(task.source, store, list(task.names), dict(task.thresholds), task.on_bad_rows,
                               sink=sink, scorer=Scorer(store, list(task.names)))
        results.commit()
    except BaseException:
        results.discard()
        raise
    finally:
        limits.restore_original_limits()
    return summary


def merge(summaries: list[Summary]) -> Summary:
    """One summary for many files: counts added, problems kept up to the usual number."""
    total = Summary(layout=summaries[0].layout if summaries else None)
    total.names = list(dict.fromkeys(n for s in summaries for n in s.names))
    total.thresholds = {k: v for s in summaries for k, v in s.thresholds.items()}
    total.flagged = dict.fromkeys(total.names, 0)
    for s in summaries:
        for field in ("rows_read", "rows_scored", "rows_skipped", "out_of_range", "saturated", "distinct_rows"):
            setattr(total, field, getattr(total, field) + getattr(s, field))
        total.out_of_range_columns.update(s.out_of_range_columns)
        total.unseen_categories.update(s.unseen_categories)
        for n, c in s.flagged.items():
            total.flagged[n] += c
        total.problems.extend(s.problems[:max(0, MAX_PROBLEMS_KEPT - len(total.problems))])
        for view, by_name in s.confusion.items():
            for n, counts in by_name.items():
                mine = total.confusion.setdefault(view, {}).setdefault(n, [0, 0, 0, 0])
                for i, c in enumerate(counts):
                    mine[i] += c
        for view, count in s.labelled.items():
            total.labelled[view] = total.labelled.get(view, 0) + count
        total.skipped_detectors = total.skipped_detectors or s.skipped_detectors
        total.seconds = max(total.seconds, s.seconds)
    return total


def score_many(inputs: list[str], out_dir: Path, store: Any, names: list[str], thresholds: dict[str, float],
               on_bad_rows: str = "skip", part_format: str = "csv", engine: str = "local",
               scheduler: str | None = None, workers: int = 2,
               progress: Callable[[int, int], None] | None = None) -> tuple[Summary, list[Path]]:
    """Score ``inputs`` into ``out_dir``/part-NNNNN.{csv,parquet} and ``summary.json``; (summary, parts)."""
    if part_format not in PART_FORMATS:
        raise ValueError(f"part_format must be one of {PART_FORMATS}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("part-*"):
        old.unlink()
    parts = [out_dir / f"part-{i:05d}.{part_format}" for i in range(len(inputs))]
    start = time.perf_counter()
    tasks = [Task(src, str(part), str(store.root), store.hash, tuple(names), tuple(sorted(thresholds.items())),
                  on_bad_rows) for src, part in zip(inputs, parts, strict=True)]
    if engine == "local":
        summaries = []
        for i, task in enumerate(tasks):
            summaries.append(run_task(task))
            if progress:
                progress(i + 1, len(tasks))
    elif engine == "dask":
        summaries = _on_dask(tasks, scheduler, workers, progress)
    else:
        raise ValueError(f"unknown engine {engine!r}; choose local or dask")
    summary = merge(summaries)
    summary.seconds = time.perf_counter() - start
    (out_dir / "summary.json").write_text(json.dumps(_summary_json(summary, inputs, parts), indent=1) + "\n")
    return summary, parts


def _on_dask(tasks: list[Task], scheduler: str | None, workers: int,
             progress: Callable[[int, int], None] | None) -> list[Summary]:
    import dask
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        # Dask's defaults for worker processes (MALLOC_TRIM_THRESHOLD_=65536, one OpenMP/BLAS thread)
        # are tuned for many small pandas tasks; anodet's tasks allocate large arrays per chunk and
        # set their own BLAS threads (run_task), so the workers start with this process's environment.
        dask.config.set({"distributed.nanny.pre-spawn-environ": {}})
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout=30)
    try:
        futures = client.map(run_task, tasks, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Summary | None] = [None] * len(tasks)
        for done, future in enumerate(as_completed(futures), start=1):
            results[index[future.key]] = future.result()  # a task's error is raised here, with its message
            if progress:
                progress(done, len(tasks))
        return [r for r in results if r is not None]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _summary_json(summary: Summary, inputs: list[str], parts: list[Path]) -> dict[str, Any]:
    return {
        "inputs": inputs, "parts": [p.name for p in parts], "detectors": summary.names,
        "thresholds": summary.thresholds, "rows_read": summary.rows_read, "rows_scored": summary.rows_scored,
        "rows_skipped": summary.rows_skipped, "out_of_range": summary.out_of_range, "saturated": summary.saturated,
        "flagged": summary.flagged, "skipped_detectors": summary.skipped_detectors,
        "unseen_categories": dict(Counter(summary.unseen_categories)),
        "problems": [asdict(p) for p in summary.problems[:100]],
    }


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
