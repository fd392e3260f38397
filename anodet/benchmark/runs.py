"""Benchmark runs kept under the data folder: finding them, reading one, and what the Benchmark page shows of it.

A run is a folder holding ``results.parquet`` and ``summary.json`` (:func:`anodet.benchmark.run_benchmark`
writes both when it ends): the page's runs go to ``data/benchmarks/NAME/``, and any folder written by
``python -m anodet benchmark -o FOLDER`` under the data folder (``$ANODET_DATA_DIR``) is found too.
Runs are named by their folder, never by a server path. Streamlit-free.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anodet.benchmark import SUMMARY_JSON, results, summary

RUNS_DIR = "benchmarks"
RUN_JSON = "run.json"
"""What a run started from the page asked for (written when it starts; resuming reads it)."""
MAX_DEPTH = 4
"""Folder levels under the data folder searched for runs."""
SKIPPED = frozenset({"tasks", "datasets", "uploads", "raw", "cache", "splits", "store"})
"""Folders that never hold a run (a run's own task files, user datasets, downloads, caches)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
GROUPS = {"family": "anodet", "peer": "PyOD peer", "choice": "per-dataset choice"}
"""How the page names a row's group."""


class RunError(ValueError):
    """A run cannot be read or named; the message is one sentence."""


def data_root() -> Path:
    """The data folder (``$ANODET_DATA_DIR``, else ``data/`` in the project)."""
    from anodet.datasets.kdd import cache_root

    return cache_root()


def runs_root() -> Path:
    """``data/benchmarks``: where runs started from the page are written."""
    return data_root() / RUNS_DIR


def check_name(name: str) -> str:
    """``name`` if it can name a run folder, else a RunError saying what a name may hold."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise RunError(f"{name!r} cannot name a run: use 1 to 64 letters, digits, '-', '_' or '.', starting with a "
                       "letter or digit (e.g. adbench-3-seeds).")
    return name


@dataclass(frozen=True)
class RunRef:
    """A finished run: its name on the page, its folder (never shown) and its results file's version."""

    name: str
    folder: Path
    stamp: int

    @property
    def from_page(self) -> bool:
        return (self.folder / RUN_JSON).is_file()


def _is_run(folder: Path) -> bool:
    return (folder / results.RESULTS_PARQUET).is_file() and (folder / SUMMARY_JSON).is_file()


def _walk(folder: Path, depth: int, found: list[Path]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False) or entry.name in SKIPPED or entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if _is_run(path):
            found.append(path)
        elif depth > 1:
            _walk(path, depth - 1, found)


def find_runs(root: Path | None = None) -> list[RunRef]:
    """Every finished run under the data folder, newest results first."""
    root = root or data_root()
    found: list[Path] = []
    _walk(root, MAX_DEPTH, found)
    relative = [p.relative_to(root).as_posix() for p in found]
    short = [r[len(RUNS_DIR) + 1:] if r.startswith(RUNS_DIR + "/") else r for r in relative]
    names = [s if short.count(s) == 1 else r for s, r in zip(short, relative, strict=True)]
    refs = []
    for name, path in zip(names, found, strict=True):
        try:
            stamp = (path / results.RESULTS_PARQUET).stat().st_mtime_ns
        except OSError:
            continue
        refs.append(RunRef(name, path, stamp))
    return sorted(refs, key=lambda r: (-r.stamp, r.name))


def unfinished(root: Path | None = None) -> list[str]:
    """Runs started from the page that have no results (cancelled, failed or cut short), by name."""
    root = root or runs_root()
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return []
    return [p.name for p in folders if (p / RUN_JSON).is_file() and not _is_run(p)]


def read_request(folder: Path) -> dict[str, Any] | None:
    """What a page run asked for (its ``run.json``), or None for a run from the command line."""
    try:
        doc = json.loads((folder / RUN_JSON).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclass
class Run:
    """A run read for the page: the results table, one summary per protocol, and what it was run with."""

    name: str
    table: Any
    summaries: list[summary.ProtocolSummary]
    fpr: float
    request: dict[str, Any] | None = None
    protocols: list[str] = field(default_factory=list)

    def summary_of(self, protocol: str) -> summary.ProtocolSummary:
        return next(s for s in self.summaries if s.protocol == protocol)

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.table["dataset"]))

    def declared(self, known: list[str]) -> list[str]:
        """The run's datasets that are declared anodet datasets (``known``: the declared names)."""
        asked = set(self.request.get("declared", [])) if self.request else None
        return [d for d in self.datasets if d in known and (asked is None or d in asked)]


def load(ref: RunRef) -> Run:
    """Read a run's results and summarise them (rank tests at the run's own α)."""
    import pandas as pd

    try:
        table = results.typed(pd.read_parquet(ref.folder / results.RESULTS_PARQUET))
        doc = json.loads((ref.folder / SUMMARY_JSON).read_text())
    except (OSError, ValueError, KeyError) as exc:
        raise RunError(f"The run {ref.name!r} cannot be read ({type(exc).__name__}); run it again.") from None
    if table.empty:
        raise RunError(f"The run {ref.name!r} holds no results; run it again.")
    alphas = [d.get("alpha") for d in doc if isinstance(d, dict)] if isinstance(doc, list) else []
    alpha = float(alphas[0]) if alphas and isinstance(alphas[0], int | float) else summary.ALPHA
    fpr = float(table["fpr"].dropna().iloc[0]) if table["fpr"].notna().any() else float("nan")
    return Run(ref.name, table, summary.summarize_all(table, alpha), fpr, read_request(ref.folder),
               list(dict.fromkeys(table["protocol"])))


# -- what the page shows -----------------------------------------------------------------------------------


def rank_table(run: Run, protocol: str) -> Any:
    """The protocol's summary as the page shows it: one row per detector, best mean rank first, with the count of
    datasets × seeds behind each mean."""
    s = run.summary_of(protocol)
    rows = run.table[run.table["protocol"] == protocol]
    counts = rows.groupby("detector", sort=False).agg(datasets=("dataset", "nunique"), seeds=("seed", "nunique"))
    out = s.table.copy()
    out["runs"] = [f"{counts.loc[d, 'datasets']} × {counts.loc[d, 'seeds']}" for d in out["detector"]]
    out["kind"] = out["group"].map(GROUPS).fillna(out["group"])
    return out[["display", "kind", "mean_roc_auc", "runs", "mean_rank", "wins", "mean_pr_auc", "mean_recall_at_fpr",
                "failures", "fit_s", "score_s", "detector", "group"]]


def times(run: Run, protocol: str) -> Any:
    """Mean fit and score seconds per dataset × seed of each detector (the per-dataset choice left out: its seconds
    are every candidate's), slowest first."""
    rows = run.table[(run.table["protocol"] == protocol) & (run.table["group"] != "choice")]
    out = rows.groupby("detector", sort=False).agg(display=("display", "first"), group=("group", "first"),
                                                  fit_s=("fit_s", "mean"), score_s=("score_s", "mean"))
    out = out.fillna({"fit_s": 0.0, "score_s": 0.0})
    out["total_s"] = out["fit_s"] + out["score_s"]
    return out.sort_values("total_s", ascending=False, kind="stable").reset_index()


def per_dataset_table(run: Run, protocol: str) -> Any:
    """One row per dataset: test rows and anomalies, the best detector (family and peers) by mean ROC AUC over
    seeds, and the detector the per-dataset choice picked most often."""
    import pandas as pd

    rows = run.table[run.table["protocol"] == protocol]
    matrix = summary.per_dataset(run.table, protocol)
    names = dict(zip(rows["detector"], rows["display"], strict=False))
    contenders = [d for d in matrix.columns if not str(d).startswith("choice:")]
    out = []
    for dataset in matrix.index:
        these = rows[rows["dataset"] == dataset]
        values = matrix.loc[dataset, contenders].astype(float)
        best = str(values.idxmax()) if values.notna().any() else ""
        picked = these.loc[these["detector"] == "choice:family", "chosen"]
        out.append({"dataset": str(dataset), "test rows": int(these["test_rows"].iloc[0]),
                    "test anomalies": int(these["test_anomalies"].iloc[0]),
                    "best detector": names.get(best, best),
                    "best ROC AUC": float(values.max()) if best else np.nan,
                    "choice picked": names.get(picked.mode().iloc[0], picked.mode().iloc[0]) if len(picked) else ""})
    return pd.DataFrame(out)
