"""Benchmark: an external score file for the 10,000 KDD test records, added and shown on every page (issue 29).

Target: <= 2 s from adding the scores to every comparison page drawn with them, on a running server. "My
pipeline" here is scikit-learn's IsolationForest fitted on the 18 KDD features of the training normals (not
timed), written the way a pipeline would: record id and ``score_samples`` (higher = more normal, so added with
``--invert``). Two files: the 10,000 test records alone (thresholds then on the test scores without labels), and
test plus the 62,205 validation records (thresholds on validation, as for anodet's detectors).

Timed per file, median of ``--runs``: adding them as the Your data page does (``anodet.external.kept.add`` in the
server's process, with the splits the server has loaded), then each page drawn by the server \
(Streamlit's AppTest runs ``app.py`` as a server does, without
a browser) in one session that already drew every page once: the Overview (leaderboard, charts, agreement), the
threshold explorer on the external detector (its control and presets), Flagged records on it (a record open, every
detector's verdict) and the Live monitor replaying it. Also timed once per file: ``python -m anodet external add``
as a new process (interpreter start and imports included). Prints the table and writes bench/results/external.md.

    python bench/bench_external.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "external.md"
TARGET_S = 2.0
NAME = "my-iforest"
PAGES: dict[str, tuple[str, dict[str, Any]]] = {  # page -> session state that points it at the external detector
    "Overview": ("app_pages/overview.py", {}),
    "Threshold explorer": ("app_pages/threshold_explorer.py", {"focus_detector": NAME, "explorer_detector": NAME}),
    "Flagged records": ("app_pages/flagged_records.py", {"focus_detector": NAME, "flagged_detector": NAME,
                                                         "flagged_record": 0}),
    "Live monitor": ("app_pages/live_monitor.py", {"live_detector": NAME}),
}


def pipeline_scores(folder: Path) -> dict[str, Path]:
    """Two score files made by "my pipeline": the test records alone, and test plus validation."""
    from sklearn.ensemble import IsolationForest

    from anodet.datasets.kdd import load_splits
    from anodet.store.core import Store

    splits = load_splits()
    fs = Store.open().feature_set("kdd18")
    model = IsolationForest(n_estimators=100, random_state=0).fit(fs.transform_frame(splits.train.rows))
    frames = {s: pd.DataFrame({"record_id": splits.part(s).record_id,
                               "normality": model.score_samples(fs.transform_frame(splits.part(s).rows))})
              for s in ("test", "validation")}
    out = {"10,000 test records": folder / "test.csv",
           "test + 62,205 validation records": folder / "test-validation.csv"}
    frames["test"].sample(frac=1, random_state=0).to_csv(out["10,000 test records"], index=False)
    pd.concat(frames.values()).sample(frac=1, random_state=0).to_csv(out["test + 62,205 validation records"],
                                                                     index=False)
    return out


def shown(at, page: str) -> bool:
    """Does the page show the external detector (and no error)?"""
    if at.exception or at.error:
        raise RuntimeError(f"{page}: {[e.value for e in [*at.exception, *at.error]]}")
    if page == "Overview":
        return NAME in next(d.value for d in at.dataframe if "roc_auc" in d.value.columns).index
    if page == "Threshold explorer":
        return any(e.key == f"threshold_control_{NAME}_reference" for e in at.get("bidi_component"))
    if page == "Flagged records":
        verdicts = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
        return f"{NAME} · external" in set(verdicts["detector"])
    return at.session_state["live_replay"] is not None and at.session_state["live_replay_key"][0] == NAME


def run(runs: int) -> dict:
    from streamlit.testing.v1 import AppTest

    from anodet.datasets.kdd import load_splits
    from anodet.external import kept

    folder = Path(tempfile.mkdtemp(prefix="anodet-bench-external-"))
    os.environ["ANODET_EXTERNAL_DIR"] = str(folder / "external")
    files = pipeline_scores(folder)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    for page_file, _state in PAGES.values():  # a server that has drawn every page once: store, scores, curves loaded
        at.switch_page(page_file).run()
    results: dict = {"files": {}}
    splits = load_splits()  # the server's splits, loaded once and shared (the Your data page passes them)
    for label, path in files.items():
        rows = []
        for _ in range(runs):
            if (folder / "external" / "kdd" / NAME).exists():
                kept.remove("kdd", NAME)
                at.switch_page(PAGES["Overview"][0]).run()  # the server sees it gone
            start, cpu = time.perf_counter(), time.process_time()
            external, _notes = kept.add(NAME, "kdd", path, invert=True, splits=splits)
            row = {"add": time.perf_counter() - start}
            for page, (page_path, state) in PAGES.items():
                for key, value in state.items():
                    at.session_state[key] = value
                t0 = time.perf_counter()
                at.switch_page(page_path).run()
                row[page] = time.perf_counter() - t0
                if not shown(at, page):
                    raise RuntimeError(f"{page} does not show {NAME}")
            row["total"] = sum(row.values())
            row["cpu"] = time.process_time() - cpu
            rows.append(row)
        kept.remove("kdd", NAME)
        at.switch_page(PAGES["Overview"][0]).run()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "anodet", "external", "add", NAME, "--scores", str(path),
                               "--invert", "--score", "normality"], cwd=ROOT, capture_output=True, text=True,
                              env=os.environ.copy())
        cli = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(done.stderr)
        kept.remove("kdd", NAME)
        results["files"][label] = {
            "rows": len(pd.read_csv(path)), "median": {k: statistics.median(r[k] for r in rows) for k in rows[0]},
            "max_total": max(r["total"] for r in rows), "cli_add": cli,
            "roc_auc": external.doc["metrics"]["test"]["reference"]["roc_auc"],
            "thresholds_on": external.doc["thresholds_on"]}
    return results


def write(results: dict, runs: int) -> str:
    load = os.getloadavg()[0]
    lines = [f"### An external score file added and shown on every page "
             f"(`python bench/bench_external.py --runs {runs}`)",
             "",
             f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
             f"{load:.1f} when the run ended. Median of {runs} runs, seconds; target: add + every page <= "
             f"{TARGET_S:.0f} s.", "",
             "| file | rows | add (as the Your data page) | Overview | Threshold explorer | Flagged records | "
             "Live monitor | **add + every page** (max) | its CPU time | `python -m anodet external add` (new "
             "process) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, got in results["files"].items():
        m = got["median"]
        lines.append(f"| {label} | {got['rows']:,} | {m['add']:.2f} | {m['Overview']:.2f} | "
                     f"{m['Threshold explorer']:.2f} | {m['Flagged records']:.2f} | {m['Live monitor']:.2f} | "
                     f"**{m['total']:.2f}** ({got['max_total']:.2f}) | {m['cpu']:.2f} | {got['cli_add']:.2f} |")
    lines += ["", "Pages are drawn by the server in one session that had drawn each of them once before the scores "
              "were added (Streamlit's AppTest: the script's run on the server, not a browser's drawing). Adding the "
              "scores changes the key of everything pages share, so the first page after it re-reads the stored "
              "detectors' split scores from the disk cache and sorts every detector's curves again; the pages after "
              "it reuse them. The new process's time includes starting Python and importing pandas and pyarrow. "
              "CPU time: the server process's, from the add to the last page (the shared machine's load stretches "
              "wall time beyond it).",
              "", "The external detector: " + "; ".join(
                  f"{label}: test ROC AUC {got['roc_auc']:.4f} (reference view), thresholds on the "
                  f"{got['thresholds_on']}" for label, got in results["files"].items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = run(args.runs)
    text = write(results, args.runs)
    print(text)
    print(json.dumps(results, indent=1))
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
