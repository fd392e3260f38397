"""Benchmark `python -m anodet score` where users wait (issue 32), each figure a ratio to a floor timed in the same run.

* **start-up**: the command on a 3-row file (every default detector) against
  ``python -c "import numpy, pyarrow.csv"`` (target ≤ 3×);
* **one detector**: ``--detectors iforest`` and ``--detectors pca`` on 1,000,000 all-distinct rows of
  the 18 columns the kdd18 detectors read, against pyarrow parsing the same file (target ≤ 3×);
* **the default set**: the 22 default detectors end to end in process (parse, score, write the results
  CSV) on 1,000,000 all-distinct rows of all 41 columns, against the sum of each detector's own scoring
  time on the same rows, alone (target ≤ 1.2×); the command's wall time beside it;
* **memory** (unless ``--skip-big``): peak RSS on a ~5 GB input.

Runs alternate between a floor and what is measured against it, and medians of ``--runs`` are kept:
the shared machine's speed moves by tens of percent from minute to minute. Inputs are generated in a
temporary folder (``bench/inputs.py``: KDD test rows with their rate columns jittered) and deleted
afterwards. Prints the figures and writes ``bench/results/score.md``.

    python bench/bench_score.py [--rows 1000000] [--runs 5] [--skip-big] [--part startup,one,default,memory]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anodet.datasets.kdd_schema import FEATURES  # noqa: E402
from anodet.reader import CHUNK_BYTES  # noqa: E402
from anodet.scoring.core import default_detectors, plan  # noqa: E402
from bench.inputs import write_csv  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "score.md"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.update({"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)})
"""The commands run as a user's do: Python caches their bytecode (the first, warm-up run writes it)."""


CPU: list[float] = []
"""CPU seconds (user + system) of each command run, in order (the machine is shared: wall time moves more)."""


def run(args: list[str], poll: float = 0.05) -> tuple[float, float, str]:
    """Run a command; (wall seconds, peak RSS in MB of it and its children, stderr). Its CPU time goes to CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    ps = psutil.Process(proc.pid)
    peak, err = 0, []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True)))
        except psutil.Error:
            pass
        time.sleep(poll)
    reader.join()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    text = err[0].decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {text[-2000:]}")
    return wall, peak / 2**20, text


def score_cmd(src: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "anodet", "score", str(src), "-o", str(out), *extra]


def pyarrow_parse(path: Path) -> float:
    """Seconds pyarrow's CSV reader takes to parse the file (multithreaded, in this process)."""
    t0 = time.perf_counter()
    pacsv.read_csv(path)
    return time.perf_counter() - t0


def in_command(stderr: str) -> float:
    """The pipeline's own seconds, from the command's last line ("Done in 1.2 s ...")."""
    found = re.search(r"Done in ([0-9.]+) s", stderr)
    return float(found.group(1)) if found else float("nan")


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}"


def startup(tmp: Path, runs: int) -> list[str]:
    src, out = tmp / "three.csv", tmp / "three.scored.csv"
    write_csv(src, 3, seed=1)
    run(score_cmd(src, out))  # warm the file cache and bytecode
    floors, commands, floor_cpu, command_cpu = [], [], [], []
    for _ in range(runs):
        floors.append(run([sys.executable, "-c", "import numpy, pyarrow.csv"])[0])
        floor_cpu.append(CPU[-1])
        commands.append(run(score_cmd(src, out))[0])
        command_cpu.append(CPU[-1])
    floor, command = statistics.median(floors), statistics.median(commands)
    verdict = "met" if command <= 3 * floor else "missed"
    print(f"start-up: command {command:.2f} s, floor {floor:.2f} s ({command / floor:.1f}x)", flush=True)
    return [
        "| what | wall, median (s) | runs (s) | CPU, median (s) | floor: `python -c \"import numpy, pyarrow.csv\"`, "
        "wall (CPU) | × floor (wall) | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| `score` of a 3-row file, every default detector | **{command:.2f}** | {spread(commands)} | "
        f"{statistics.median(command_cpu):.2f} | {floor:.2f} ({statistics.median(floor_cpu):.2f}) | "
        f"**{command / floor:.1f}×** | ≤ 3× ({verdict}) |",
    ]


def one_detector(tmp: Path, rows: int, runs: int) -> list[str]:
    src, out = tmp / "distinct18.csv", tmp / "distinct18.scored.csv"
    fraction = write_csv(src, rows, seed=0, columns=FEATURES)
    pyarrow_parse(src)
    parses: list[float] = []
    measured: dict[str, list[tuple[float, float, float]]] = {"iforest": [], "pca": []}
    for _ in range(runs):
        parses.append(pyarrow_parse(src))
        for name in measured:
            wall, _, err = run(score_cmd(src, out, "--detectors", name))
            measured[name].append((wall, in_command(err), CPU[-1]))
    floor = statistics.median(parses)
    lines = [
        f"{rows:,} all-distinct rows ({fraction:.2%} distinct), the 18 kdd18 columns, "
        f"{src.stat().st_size / 1e6:.0f} MB; pyarrow parses it in **{floor:.2f} s** (median; {spread(parses)}).",
        "",
        "| command | wall, median (s) | runs (s) | pipeline inside (s) | CPU (s) | × pyarrow's parse | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, got in measured.items():
        walls = [w for w, _, _ in got]
        wall = statistics.median(walls)
        verdict = "met" if wall <= 3 * floor else "missed"
        lines.append(f"| `score --detectors {name}` | **{wall:.2f}** | {spread(walls)} | "
                     f"{statistics.median([p for _, p, _ in got]):.2f} | "
                     f"{statistics.median([c for _, _, c in got]):.2f} | **{wall / floor:.1f}×** | ≤ 3× ({verdict}) |")
        print(f"{name}: {wall:.2f} s = {wall / floor:.1f}x pyarrow's {floor:.2f} s", flush=True)
    return lines


def default_set(tmp: Path, rows: int, runs: int) -> list[str]:
    from threadpoolctl import threadpool_limits

    from anodet.evaluation.thresholds import resolve_thresholds
    from anodet.reader import read_chunks
    from anodet.scoring.core import encode_chunk
    from anodet.scoring.files import score_source
    from anodet.scoring.output import CsvSink
    from anodet.store.core import Store

    src, out = tmp / "distinct41.csv", tmp / "distinct41.scored.csv"
    fraction = write_csv(src, rows, seed=0)
    store = Store.open()
    names = default_detectors(store.names)
    base, combined = plan(store, names)
    thresholds = resolve_thresholds(store, names, None, "reference")
    encoder = store.encoder(names)
    M = np.concatenate([encode_chunk(encoder, c, np.arange(len(c))) for c in read_chunks(src)])
    inputs = {fs: encoder.transform(M, fs).X for fs in encoder.sets}
    del M
    solo: dict[str, list[float]] = {n: [] for n in base}
    solo_cpu: dict[str, list[float]] = {n: [] for n in base}
    ends: list[float] = []
    ends_cpu: list[float] = []
    parses: list[float] = []
    detector_seconds = {}
    with threadpool_limits(limits=1, user_api="blas"):  # as the command runs
        for _ in range(runs):
            parses.append(pyarrow_parse(src))
            for name in base:
                X = inputs[store.feature_set_of(name)]
                t0, c0 = time.perf_counter(), time.process_time()
                store.detector(name).decision_function(X)
                solo[name].append(time.perf_counter() - t0)
                solo_cpu[name].append(time.process_time() - c0)
            sink = CsvSink(out)
            c0 = time.process_time()
            summary = score_source(src, store, names, thresholds, sink=sink)
            sink.close()
            ends_cpu.append(time.process_time() - c0)
            ends.append(summary.seconds)
            detector_seconds = summary.detector_seconds
    command = [run(score_cmd(src, out))[0] for _ in range(max(1, runs // 2))]
    command_cpu = CPU[-len(command):]
    solo_total = sum(statistics.median(v) for v in solo.values())
    solo_cpu_total = sum(statistics.median(v) for v in solo_cpu.values())
    end = statistics.median(ends)
    end_cpu = statistics.median(ends_cpu)
    verdict = "met" if end <= 1.2 * solo_total else "missed"
    print(f"default set: {end:.2f} s end to end, detectors alone {solo_total:.2f} s ({end / solo_total:.2f}x)",
          flush=True)
    lines = [
        f"{rows:,} all-distinct rows ({fraction:.2%} distinct), all 41 columns, {src.stat().st_size / 1e6:.0f} MB "
        f"(pyarrow parses it in {statistics.median(parses):.2f} s); {len(names)} default detectors ({len(base)} "
        f"scored, {len(combined)} ensembles computed from their members' scores).",
        "",
        "| what | wall, median (s) | runs (s) | CPU, median (s) | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| the detectors' own scoring, each alone on the encoded rows, summed | {solo_total:.2f} | – | "
        f"{solo_cpu_total:.2f} | the floor |",
        f"| the default set end to end in process (parse, validate, score, write the results CSV) | **{end:.2f}** "
        f"(**{end / solo_total:.2f}×** the sum) | {spread(ends)} | {end_cpu:.2f} ({end_cpu / solo_cpu_total:.2f}×) | "
        f"≤ 1.2× ({verdict}) |",
        f"| the command (adds start-up and loading the models) | {statistics.median(command):.2f} | "
        f"{spread(command)} | {statistics.median(command_cpu):.2f} | – |",
        "",
        "| detector | alone (s, median) | inside the last end-to-end run (s) |",
        "| --- | ---: | ---: |",
    ]
    for name in sorted(base, key=lambda n: -statistics.median(solo[n])):
        lines.append(f"| {name} | {statistics.median(solo[name]):.2f} | {detector_seconds.get(name, 0.0):.2f} |")
    return lines


def grow_to(path: Path, big: Path, target_bytes: int, note_bytes: int) -> None:
    """A big input: ``path``'s rows, each with a ``note`` text column of ``note_bytes`` (like a
    user-agent or URL field of a log), repeated until ``target_bytes``."""
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    note = b',"' + (b"GET /index.html?q=" + b"x" * note_bytes)[:note_bytes] + b'"\n'
    body = data[header_end:].replace(b"\n", note)
    data = data[:header_end].replace(b"\n", b",note\n") + body
    header_end = data.index(b"\n") + 1
    with open(big, "wb") as out:
        out.write(data[:header_end])
        written = header_end
        while written < target_bytes:
            out.write(body)
            written += len(body)


def memory(tmp: Path, rows: int, big_gb: float, note_bytes: int) -> list[str]:
    src = tmp / "distinct41.csv"
    if not src.exists():
        write_csv(src, rows, seed=0)
    wall_1m, peak_1m, _ = run(score_cmd(src, tmp / "out.csv"))
    big = tmp / "big.csv"
    grow_to(src, big, int(big_gb * 1e9), note_bytes)
    src.unlink()
    size = big.stat().st_size
    wall, peak, _ = run(score_cmd(big, Path("-")), poll=0.2)  # results to a pipe (not kept)
    print(f"big: {size / 1e9:.2f} GB, wall {wall:.0f} s, peak RSS {peak:.0f} MB", flush=True)
    return [
        "| memory | input | wall (s) | peak RSS of the command |",
        "| --- | ---: | ---: | ---: |",
        f"| {rows:,} distinct rows, default detectors | {rows:,} rows | {wall_1m:.1f} | {peak_1m:.0f} MB |",
        f"| big input: the distinct rows with a {note_bytes}-byte text column, repeated (results to a pipe) | "
        f"{size / 1e9:.2f} GB | {wall:.0f} | {peak:.0f} MB |",
        "",
        "Peak RSS is polled with psutil (process and children). The input is read in "
        f"{CHUNK_BYTES >> 20} MB blocks, so memory does not grow with the input.",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="runs of each measure; medians are reported")
    parser.add_argument("--part", default="startup,one,default,memory")
    parser.add_argument("--skip-big", action="store_true", help="leave out the ~5 GB memory run")
    parser.add_argument("--big-gb", type=float, default=5.0)
    parser.add_argument("--note-bytes", type=int, default=150)
    args = parser.parse_args()
    parts = [p for p in args.part.split(",") if p and not (p == "memory" and args.skip_big)]
    tmp = Path(tempfile.mkdtemp(prefix="anodet-bench-"))
    cpu = f"{psutil.cpu_count(logical=True)} CPUs, {platform.processor() or platform.machine()}"
    lines = [f"`python bench/bench_score.py` — {cpu}, Python {platform.python_version()}, load average "
             f"{os.getloadavg()[0]:.1f} at the start; medians of {args.runs} alternating runs.", ""]
    titles = {"startup": "Start-up", "one": "One detector", "default": "The default set", "memory": "Memory"}
    try:
        for part in parts:
            body = {"startup": lambda: startup(tmp, args.runs), "one": lambda: one_detector(tmp, args.rows, args.runs),
                    "default": lambda: default_set(tmp, args.rows, args.runs),
                    "memory": lambda: memory(tmp, args.rows, args.big_gb, args.note_bytes)}[part]()
            lines += [f"#### {titles[part]}", "", *body, ""]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines.append(f"Load average at the end: {os.getloadavg()[0]:.1f}.")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
