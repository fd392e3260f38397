"""Run a benchmark: one task per dataset × seed × protocol, here or on a Dask cluster, resumable.

A task reads its dataset where it runs, builds the split (:mod:`anodet.benchmark.protocols`), fits
and scores each contender (:mod:`anodet.benchmark.contenders`) and writes its rows to
``OUT/tasks/PROTOCOL/DATASET/seed-N.parquet``, with the scores the per-dataset choice needs
(``.npz``) and what it was run with (``.json``), the Parquet file last and each file renamed into
place only when complete. A task whose files hold every asked contender, for the same data and
protocol settings, is not run again; one missing some contenders runs only those.

The Dask engine runs the same :func:`run_task` in worker processes (a ``LocalCluster`` on this
machine when no scheduler is given, as ``score --engine dask`` does); the suite's files and the
output folder must be at the same paths on every worker.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anodet.benchmark import protocols
from anodet.benchmark.contenders import NEURAL_BUDGET_S, Fitted, display_name, fit, is_peer
from anodet.benchmark.suites import SuiteDataset

ENGINES = ("local", "dask")
DEFAULT_FPR = 0.05
ROW_COLUMNS = ["dataset", "seed", "protocol", "detector", "display", "group", "roc_auc", "pr_auc", "recall_at_fpr",
               "fpr", "fit_s", "score_s", "select_s", "validation_roc_auc", "chosen", "params", "error",
               "fit_rows", "test_rows", "test_anomalies"]
"""The tidy results table: one row per dataset × seed × protocol × detector (``group``: family, peer or choice)."""


@dataclass(frozen=True)
class Task:
    """One dataset × seed × protocol and the contenders to run on it."""

    dataset: SuiteDataset
    seed: int
    protocol: str
    contenders: tuple[str, ...]
    folder: str
    fingerprint: str
    fpr: float = DEFAULT_FPR
    budget_s: float = NEURAL_BUDGET_S

    @property
    def stem(self) -> Path:
        return Path(self.folder) / "tasks" / self.protocol / self.dataset.name / f"seed-{self.seed}"


@dataclass
class Progress:
    """What a run did: tasks run, tasks already done, and wall seconds."""

    run: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """The ROC curve's highest recall at a false-positive rate of at most ``fpr`` (test labels set the threshold)."""
    from anodet.evaluation.metrics import roc_points

    false_rate, true_rate, _ = roc_points(y, scores)
    within = false_rate <= fpr + 1e-12
    return float(true_rate[within].max()) if within.any() else 0.0


def _metrics(y: np.ndarray, scores: np.ndarray, fpr: float) -> dict[str, float]:
    from anodet.evaluation.metrics import pr_auc, roc_auc

    return {"roc_auc": roc_auc(y, scores), "pr_auc": pr_auc(y, scores), "recall_at_fpr": recall_at_fpr(y, scores, fpr)}


def _checked_scores(scores: np.ndarray, rows: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != rows:
        raise ValueError(f"gave {len(scores)} scores for {rows} rows")
    if not np.isfinite(scores).all():
        raise ValueError(f"gave {int((~np.isfinite(scores)).sum())} non-finite score(s)")
    return scores


def _run_one(name: str, split: protocols.Split, task: Task,
             fitted: dict[str, Fitted]) -> tuple[dict[str, Any], np.ndarray | None]:
    """One contender's row (metrics or the error) and its scores on the criterion rows (unsupervised)."""
    row: dict[str, Any] = {"detector": name, "display": display_name(name), "group": "peer" if is_peer(name) else
                           "family", "fpr": task.fpr, "error": ""}
    criterion = None
    try:
        model = fit(name, split.fit, task.seed, task.budget_s, fitted, split.calibration)
        fitted[name] = model
        row.update(fit_s=model.fit_seconds, params=json.dumps(model.params, sort_keys=True, default=str))
        test_scores = _checked_scores(model.score(split.test), len(split.test))
        row["score_s"] = model.seconds(split.test)
        row.update(_metrics(split.y_test, test_scores, task.fpr))
        select_s = 0.0
        if split.validation is not None and split.y_validation is not None:
            from anodet.evaluation.metrics import roc_auc

            validation = _checked_scores(model.score(split.validation), len(split.validation))
            row["validation_roc_auc"] = roc_auc(split.y_validation, validation)
            select_s += model.seconds(split.validation)
        if split.criterion is not None:
            criterion = _checked_scores(model.score(split.criterion), len(split.criterion))
            select_s += model.seconds(split.criterion)
        row["select_s"] = select_s
    except Exception as exc:  # a detector that fails on a dataset is a result (its row says why), not a crash
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        row["error"] = f"{type(exc).__name__}: {message}"[:300]
        criterion = None
    return row, criterion


def _save_scores(path: Path, scores: dict[str, np.ndarray]) -> None:
    with path.open("wb") as handle:  # a file object: np.savez would add ".npz" to the temporary name
        np.savez(handle, **scores)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def run_task(task: Task) -> str:
    """Run ``task`` (only the contenders its files do not hold yet) and write its files; returns the Parquet path."""
    import pandas as pd

    stem = task.stem
    stem.parent.mkdir(parents=True, exist_ok=True)
    previous, kept_scores = _previous(task)
    present = set(previous["detector"]) if previous is not None else set()
    todo = [c for c in task.contenders if c not in present]
    X, y = task.dataset.load()
    split = protocols.make_split(X, y, task.protocol, task.seed, task.dataset.name)
    rows, scores = [], dict(kept_scores)
    fitted: dict[str, Fitted] = {}
    # an ensemble runs after the detectors it is built on, so it reuses them (rows keep the asked order)
    for name in sorted(todo, key=lambda n: n == "ensemble"):
        row, criterion = _run_one(name, split, task, fitted)
        rows.append(row)
        if criterion is not None:
            scores[name] = criterion
    rows.sort(key=lambda r: todo.index(r["detector"]))
    frame = pd.DataFrame(rows)
    for column, value in (("dataset", task.dataset.name), ("seed", task.seed), ("protocol", task.protocol),
                          ("fit_rows", split.info["fit"]), ("test_rows", split.info["test"]),
                          ("test_anomalies", split.info["test_anomalies"])):
        frame[column] = value
    if previous is not None:
        frame = pd.concat([previous, frame], ignore_index=True)
    frame = frame.reindex(columns=ROW_COLUMNS)
    meta = {"fingerprint": task.fingerprint, "split": split.info, "fpr": task.fpr}
    _write_atomic(stem.with_suffix(".npz"), lambda p: _save_scores(p, scores))
    _write_atomic(stem.with_suffix(".json"), lambda p: _write_text(p, json.dumps(meta, indent=1)))
    _write_atomic(stem.with_suffix(".parquet"), lambda p: frame.to_parquet(p, index=False))
    return str(stem.with_suffix(".parquet"))


def _previous(task: Task) -> tuple[Any, dict[str, np.ndarray]]:
    """(rows already written for ``task`` under the same fingerprint, their criterion scores), or (None, {})."""
    import pandas as pd

    stem = task.stem
    try:
        meta = json.loads(stem.with_suffix(".json").read_text())
        if meta.get("fingerprint") != task.fingerprint or meta.get("fpr") != task.fpr:
            return None, {}
        frame = pd.read_parquet(stem.with_suffix(".parquet"))
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as data:
            scores = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError):
        return None, {}
    return frame, scores


def is_done(task: Task) -> bool:
    """Whether ``task``'s files hold every asked contender for the same data and settings."""
    frame, _ = _previous(task)
    return frame is not None and set(task.contenders) <= set(frame["detector"])


def fingerprint(dataset: SuiteDataset, data_digest: str) -> str:
    """What a task's results depend on besides its contenders: the data and the protocol settings."""
    return json.dumps({"data": data_digest, "protocol": protocols.settings()}, sort_keys=True)


def plan(datasets: list[SuiteDataset], protocol_names: list[str], seeds: list[int], contenders: list[str],
         folder: Path, fpr: float = DEFAULT_FPR, budget_s: float = NEURAL_BUDGET_S) -> list[Task]:
    """Every task of a benchmark, in order (protocol, dataset, seed)."""
    digests = {d.name: d.fingerprint() for d in datasets}
    return [Task(d, seed, p, tuple(contenders), str(folder), fingerprint(d, digests[d.name]), fpr, budget_s)
            for p in protocol_names for d in datasets for seed in seeds]


def run(tasks: list[Task], engine: str = "local", scheduler: str | None = None, workers: int = 2,
        progress: Callable[[int, int, str], None] | None = None) -> Progress:
    """Run the tasks not done yet on ``engine``; ``progress(done, total, what)`` after each one."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose local or dask")
    start = time.perf_counter()
    report = Progress()
    todo = []
    for task in tasks:
        if is_done(task):
            report.skipped.append(_label(task))
        else:
            todo.append(task)
    if progress:
        progress(len(report.skipped), len(tasks), "already done")
    if engine == "local" or not todo:
        for task in todo:
            run_task(task)
            report.run.append(_label(task))
            if progress:
                progress(len(report.skipped) + len(report.run), len(tasks), _label(task))
    else:
        def finished(label: str) -> None:
            report.run.append(label)
            if progress:
                progress(len(report.skipped) + len(report.run), len(tasks), label)

        _on_dask(todo, scheduler, workers, finished)
    report.seconds = time.perf_counter() - start
    return report


def _label(task: Task) -> str:
    return f"{task.protocol} {task.dataset.name} seed {task.seed}"


def _on_dask(tasks: list[Task], scheduler: str | None, workers: int, done: Callable[[str], Any]) -> None:
    import dask
    from distributed import Client, LocalCluster, as_completed

    if logging.getLogger().getEffectiveLevel() > logging.INFO:  # without -v, Dask's start-up chatter stays quiet
        logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = None
    if scheduler is None:
        # one task per worker process, each on one core: no scoring or BLAS threads competing with the other worker
        dask.config.set({"distributed.nanny.pre-spawn-environ": {"ANODET_THREADS": "1", "OMP_NUM_THREADS": "1",
                                                                 "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}})
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout=30)
    try:
        # big datasets first, so the last tasks to finish are short ones
        ordered = sorted(tasks, key=lambda t: -_size_hint(t))
        futures = client.map(run_task, ordered, pure=False)
        labels = {f.key: _label(t) for f, t in zip(futures, ordered, strict=True)}
        for future in as_completed(futures):
            future.result()  # a task's error is raised here, with its message
            done(labels[future.key])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _size_hint(task: Task) -> float:
    try:
        return float(Path(task.dataset.source).stat().st_size)
    except OSError:
        return math.inf
