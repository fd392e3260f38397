"""The results table of a benchmark: the tasks' rows gathered, plus the per-dataset choice rows.

The per-dataset choice picks one detector for each dataset × seed without its test labels and is
reported as its own row (``group`` = ``choice``, the chosen detector in ``chosen``), so the table
shows what "pick per dataset" is worth:

* ``normal-only``: the best ROC AUC on the labelled validation part;
* ``unsupervised``: there is no label to choose with, so an unsupervised criterion does it: model
  centrality (Ma et al., "The Need for Unsupervised Outlier Model Selection", 2023) — the detector
  whose scores on a sample of training rows agree best, by mean Spearman correlation, with the
  other candidates' scores.

``choice:family`` chooses among the family's detectors, ``choice:all`` among family and peers. Its
seconds are every candidate's (all must run to choose).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from anodet.benchmark.runner import ROW_COLUMNS, Task

CHOICES = {"choice:family": "Per-dataset choice (family)", "choice:all": "Per-dataset choice (family + peers)"}
CRITERIA = {"normal-only": "best validation ROC AUC", "unsupervised": "model centrality (mean Spearman correlation "
            "with the other candidates' scores on training rows)"}
RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"


def gather(tasks: list[Task]) -> Any:
    """The rows of every task's files, for the contenders each task asked, plus the choice rows."""
    import pandas as pd

    frames = []
    for task in tasks:
        stem = task.stem
        frame = pd.read_parquet(stem.with_suffix(".parquet"))
        frame = frame[frame["detector"].isin(task.contenders)]
        order = {c: i for i, c in enumerate(task.contenders)}
        frame = frame.sort_values("detector", key=lambda s: s.map(order), kind="stable")
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as data:
            criterion = {k: data[k] for k in data.files if k in order}
        frames.append(frame)
        frames.extend(choice_rows(frame, task.protocol, criterion))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)
    return table.reindex(columns=ROW_COLUMNS).reset_index(drop=True)


def centrality(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Each candidate's mean Spearman correlation with the others' scores (model centrality)."""
    from scipy.stats import rankdata

    names = list(scores)
    if len(names) < 2:
        return dict.fromkeys(names, 0.0)
    ranks = np.vstack([rankdata(scores[n]) for n in names])
    ranks = ranks - ranks.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(ranks, axis=1)
    norms[norms == 0] = 1.0  # a constant score agrees with nothing
    corr = (ranks @ ranks.T) / np.outer(norms, norms)
    np.fill_diagonal(corr, np.nan)
    return {n: float(np.nanmean(corr[i])) for i, n in enumerate(names)}


def choice_rows(frame: Any, protocol: str, criterion: dict[str, np.ndarray]) -> list[Any]:
    """The choice rows of one dataset × seed (``frame`` holds its contenders' rows)."""
    ok = frame[frame["error"].fillna("") == ""]
    pools = {"choice:family": ok[ok["group"] == "family"]}
    if (ok["group"] == "peer").any():
        pools["choice:all"] = ok
    out = []
    for name, pool in pools.items():
        if pool.empty:
            continue
        if protocol == "normal-only":
            values = pool.set_index("detector")["validation_roc_auc"].astype(float)
        else:
            values = _series(centrality({d: criterion[d] for d in pool["detector"] if d in criterion}))
        values = values.dropna()
        if values.empty:
            continue
        chosen = str(values.idxmax())  # the first candidate among equals, in the order they were asked
        row = pool[pool["detector"] == chosen].iloc[0].copy()
        row["chosen"] = chosen
        row["validation_roc_auc"] = float(values[chosen]) if protocol == "normal-only" else np.nan
        row["params"] = json.dumps({"criterion": CRITERIA[protocol], "value": float(values[chosen]),
                                    "candidates": len(values)})
        row["detector"], row["display"], row["group"] = name, CHOICES[name], "choice"
        for column in ("fit_s", "score_s", "select_s"):
            row[column] = float(pool[column].fillna(0).sum())
        out.append(row.to_frame().T)
    return out


def _series(values: dict[str, float]) -> Any:
    import pandas as pd

    return pd.Series(values, dtype=float)


def write_table(table: Any, folder: Path) -> tuple[Path, Path]:
    """``results.parquet`` and ``results.csv`` in ``folder`` (each renamed into place when complete)."""
    import os

    table = typed(table)
    paths = []
    for name, write in ((RESULTS_PARQUET, lambda p: table.to_parquet(p, index=False)),
                        (RESULTS_CSV, lambda p: table.to_csv(p, index=False))):
        path = folder / name
        tmp = path.with_name(path.name + ".tmp")
        write(tmp)
        os.replace(tmp, path)
        paths.append(path)
    return paths[0], paths[1]


def typed(table: Any) -> Any:
    """The results table with its columns' types fixed (rows gathered from several files come as objects)."""
    table = table.copy()
    for column in ("roc_auc", "pr_auc", "recall_at_fpr", "fpr", "fit_s", "score_s", "select_s", "validation_roc_auc"):
        table[column] = table[column].astype(float)
    for column in ("seed", "fit_rows", "test_rows", "test_anomalies"):
        table[column] = table[column].astype("int64")
    for column in ("dataset", "protocol", "detector", "display", "group", "chosen", "params", "error"):
        table[column] = table[column].fillna("").astype(str)
    return table
