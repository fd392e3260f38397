"""Training time on small data (issue 26): WDBC, 367 rows x 30 columns, the quick preset and the whole family.

Declares WDBC (tests/conftest.py ``wdbc_frame``: scikit-learn's breast-cancer table the ODDS way) in a
temporary data folder, then times, each as its own process (what a user waits for, Python's start and
imports included):

1. ``python -m anodet train --dataset wdbc --preset quick`` (the classical detectors; target ≤ 10 s)
2. ``python -m anodet train --dataset wdbc --preset full`` (the whole family; target ≤ 60 s)

and, for the Your data page's path, the whole family through :func:`anodet.training.jobs.start` while
Streamlit's after-every-run cleanup (``keras.backend.clear_session()`` once Keras is loaded) is called
each second, as the page's progress fragment does: in a child process (the page's way) and, for
comparison, in the server's own thread (where the page trained before; today's training code).

Prints and, with ``--write``, writes ``bench/results/training.md``: wall times, each detector's fit
seconds beside its estimate, the neural models' epochs and why, and test ROC AUC. The machine is
shared (its load average is reported); figures are one run each.

    python bench/bench_training.py [--write] [--no-page]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "training.md"
TARGETS = {"quick": 10.0, "full": 60.0}


def run_cli(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "anodet", *args], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout


def estimates_of(log: str) -> dict[str, str]:
    return dict(re.findall(r"\n  (\S+@wdbc): ((?:up to )?[\d.]+ (?:s|min))", log))


def store_rows(store: Path, log: str) -> list[dict]:
    manifest = json.loads((store / "manifest.json").read_text())
    seconds = json.loads((store / "run.json").read_text())["fit_seconds"]
    guessed = estimates_of(log)
    rows = []
    for name, entry in manifest["detectors"].items():
        training = entry.get("training") or {}
        epochs = (f"{training['epochs_run']} of {training['max_epochs']} ({training['stopped']})"
                  if "max_epochs" in training else str(training.get("epochs_run", "")))
        rows.append({"detector": name, "fit": seconds[name], "estimate": guessed.get(name, ""), "epochs": epochs,
                     "auc": entry["metrics"]["test"]["label"]["roc_auc"]})
    return rows


def page_path(in_child: bool, env: dict[str, str]) -> tuple[float, int, dict[str, float]]:
    """The whole family through jobs.start, Streamlit's cleanup called every second meanwhile (in this process)."""
    os.environ.update(env)
    from streamlit.runtime.scriptrunner.script_runner import _clean_problem_modules

    from anodet.training import datasets as training_datasets
    from anodet.training import jobs

    start = time.perf_counter()
    job = jobs.start("wdbc", None, trainer=None if in_child else training_datasets.train)
    cleanups = 0
    while job.active:
        time.sleep(1.0)
        _clean_problem_modules()
        cleanups += 1
    wall = time.perf_counter() - start
    assert job.status == jobs.DONE, job.error
    seconds = dict(re.findall(r"  (\S+@wdbc): trained in ([\d.]+)s", "\n".join(job.lines)))
    jobs.forget("wdbc")
    return wall, cleanups, {k: float(v) for k, v in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--no-page", action="store_true", help="skip the Your data page's path")
    args = parser.parse_args()
    from tests.conftest import wdbc_frame

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="anodet-bench-training-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "ANODET_DATA_DIR": str(folder / "data"), "PYTHONPATH": str(ROOT),
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        wdbc_frame().to_csv(folder / "wdbc.csv", index=False)
        run_cli(["dataset", "add", "wdbc", "--train", str(folder / "wdbc.csv"), "--label", "diagnosis",
                 "--normal", "B"], env)
        store = folder / "data" / "datasets" / "wdbc" / "store"
        figures, tables, logs = {}, {}, {}
        for preset in ("quick", "full"):
            wall, log = run_cli(["train", "--dataset", "wdbc", "--preset", preset], env)
            figures[preset], tables[preset], logs[preset] = wall, store_rows(store, log), log
            print(f"{preset}: {wall:.1f} s wall (target ≤ {TARGETS[preset]:.0f} s)", flush=True)
        page: dict[str, tuple[float, int, dict[str, float]]] = {}
        if not args.no_page:
            for label, in_child in (("a child process (the page now)", True),
                                     ("the server's own thread (as the page trained before)", False)):
                page[label] = page_path(in_child, env)
                print(f"page path, {label}: {page[label][0]:.1f} s, {page[label][1]} cleanups", flush=True)
    loads = (load, os.getloadavg()[0])
    for preset, rows in tables.items():
        print(f"\n{preset}:")
        for r in rows:
            print(f"  {r['detector']:<20} fit {r['fit']:6.2f} s  estimate {r['estimate']:>12}  AUC {r['auc']:.4f}  "
                  f"{r['epochs']}")
    if args.write:
        write(figures, tables, logs, page, loads)


def write(figures, tables, logs, page, load) -> None:
    lines = ["# Training time on small data (`bench/bench_training.py`)", "",
             f"WDBC the ODDS way (367 rows x 30 columns; 215 training rows after the validation and test splits), "
             f"declared in a temporary folder. Machine: {platform.machine()}, {os.cpu_count()} cores shared with "
             f"other work (load average {load[0]:.1f} at the start, {load[1]:.1f} at the end), Python "
             f"{platform.python_version()}. One run each; "
             "wall time of the whole command (Python's start, imports and TensorFlow's included).", "",
             "| command | wall time | target | met |", "| --- | ---: | ---: | :---: |"]
    for preset, wall in figures.items():
        lines.append(f"| `train --dataset wdbc --preset {preset}` | {wall:.1f} s | ≤ {TARGETS[preset]:.0f} s | "
                     f"{'yes' if wall <= TARGETS[preset] else 'NO'} |")
    if page:
        lines += ["", "The Your data page's path: the whole family through `jobs.start` while Streamlit's after-run "
                  "cleanup (`keras.backend.clear_session()`) runs every second, as the page's progress fragment "
                  "makes it:", "", "| training runs in | wall time | cleanups | neural fit seconds (ae, vae, bigan, "
                  "seq2seq) |", "| --- | ---: | ---: | --- |"]
        for label, (wall, cleanups, seconds) in page.items():
            neural = ", ".join(f"{seconds.get(f'{k}@wdbc', float('nan')):.1f}"
                               for k in ("autoencoder", "vae", "bigan", "seq2seq"))
            lines.append(f"| {label} | {wall:.1f} s | {cleanups} | {neural} |")
    for preset, rows in tables.items():
        lines += ["", f"## `--preset {preset}`: each detector", "",
                  "| detector | fit seconds | estimate printed before | epochs run (neural) | test ROC AUC |",
                  "| --- | ---: | ---: | --- | ---: |"]
        lines += [f"| {r['detector']} | {r['fit']:.2f} | {r['estimate']} | {r['epochs']} | {r['auc']:.4f} |"
                  for r in rows]
    lines += ["", "The full run's log:", "", "```", *logs["full"].strip().splitlines(), "```", ""]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
