"""Benchmark `python -m anodet score`: speed on 1,000,000 rows and peak memory on a 5 GB input.

The headline input is 1,000,000 all-distinct KDD-like rows (``bench/inputs.py``: test rows with
their rate columns jittered), as real traffic repeats far less than KDD's test file; the same
size drawn from KDD's test file with replacement (where scoring each distinct row once helps)
is reported beside it. Each is compared with the time pyarrow's own CSV reader takes to parse
the same file. Inputs are generated in a temporary folder and deleted afterwards; nothing
derived from KDD is kept. Prints the figures and writes ``bench/results/score.md``.

    python bench/bench_score.py [--rows 1000000] [--runs 3] [--big-gb 5] [--skip-big]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.csv as pacsv

from anodet.datasets.kdd import fetch_raw, parse_raw_lines
from anodet.datasets.kdd_schema import RAW_COLUMNS
from anodet.evaluation.thresholds import resolve_thresholds
from anodet.reader import CHUNK_BYTES, read_chunks
from anodet.scoring.core import default_detectors
from anodet.scoring.files import Summary, score_source
from anodet.scoring.output import CsvSink
from anodet.store.core import Store
from bench.inputs import write_csv as write_distinct

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


RESULTS = ROOT / "bench" / "results" / "score.md"


def kdd_records() -> pd.DataFrame:
    """The full KDD test file (311,029 records): its 41 columns and label."""
    import gzip

    raw = parse_raw_lines(gzip.decompress(fetch_raw()["test"].read_bytes()))
    return raw[[*RAW_COLUMNS, "label"]]


def write_input(records: pd.DataFrame, rows: int, path: Path, seed: int = 0) -> None:
    """``rows`` records drawn with replacement, as a header CSV with an id column."""
    rng = np.random.default_rng(seed)
    sample = records.iloc[rng.integers(0, len(records), rows)]
    table = pa.table({"id": pa.array(np.arange(rows)), **{f: sample[f].to_numpy() for f in RAW_COLUMNS},
                      "label": sample["label"].to_numpy().astype(str)})
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="none"))


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


def run_cli(args: list[str], poll: float = 0.05) -> tuple[float, float, str]:
    """Run the score command; return (wall seconds, peak RSS in MB of it and children, stderr)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "anodet", "score", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    ps = psutil.Process(proc.pid)
    peak = 0
    import threading

    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))
    reader.start()
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(poll)
    reader.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"score failed ({proc.returncode}): {err[0].decode(errors='replace')[-2000:]}")
    return wall, peak / 2**20, err[0].decode(errors="replace")


def parse_only(path: Path) -> float:
    """Seconds to only parse and validate the input with the same reader (no scoring)."""
    t0 = time.perf_counter()
    rows = sum(len(c) for c in read_chunks(path))
    assert rows > 0
    return time.perf_counter() - t0


def pyarrow_parse(path: Path) -> float:
    """Seconds pyarrow's own CSV reader takes to parse the file (the floor the target is set against)."""
    t0 = time.perf_counter()
    pacsv.read_csv(path)
    return time.perf_counter() - t0


def score_in_process(store: Store, names: list[str], src: Path, out: Path) -> Summary:
    thresholds = resolve_thresholds(store, names, None, "reference")
    sink = CsvSink(out)
    summary = score_source(src, store, names, thresholds, sink=sink)
    sink.close()
    return summary


def case(store: Store, names: list[str], src: Path, tmp: Path, label: str, runs: int) -> tuple[list[str], dict]:
    """Parse floor, in-process end to end, and the command's wall clock for one input (medians of ``runs``:
    the shared machine's speed varies by ~25% from minute to minute)."""
    rows = sum(1 for _ in open(src, "rb")) - 1
    distinct = pd.read_csv(src, engine="pyarrow")[list(RAW_COLUMNS)].drop_duplicates().shape[0]
    t_arrow = min(pyarrow_parse(src) for _ in range(3))
    t_parse = parse_only(src)
    summaries = sorted((score_in_process(store, names, src, tmp / "out.csv") for _ in range(runs)),
                       key=lambda s: s.seconds)
    summary = summaries[len(summaries) // 2]
    clis = sorted(run_cli([str(src), "-o", str(tmp / "out-cli.csv")]) for _ in range(runs))
    wall, peak = clis[len(clis) // 2][0], max(c[1] for c in clis)
    out_rows = sum(1 for _ in open(tmp / "out-cli.csv", "rb")) - 1
    assert out_rows == rows, (out_rows, rows)
    t = summary.seconds
    spread = (f" (runs {summaries[0].seconds:.1f}–{summaries[-1].seconds:.1f}; command {clis[0][0]:.1f}–"
              f"{clis[-1][0]:.1f})") if runs > 1 else ""
    print(f"{label}: {rows:,} rows ({distinct / rows:.2%} distinct): pyarrow parse {t_arrow:.2f} s, our reader "
          f"{t_parse:.2f} s, score end to end {t:.2f} s ({t / t_arrow:.1f}x pyarrow), command wall {wall:.2f} s"
          f"{spread}, peak RSS {peak:.0f} MB", flush=True)
    lines = [
        f"| {label} | {rows:,} ({distinct / rows:.1%} distinct) | {t_arrow:.2f} | {t_parse:.2f} | **{t:.2f}** "
        f"({t / t_arrow:.1f}×){' ' + spread.strip() if spread else ''} | {rows / t:,.0f} | {wall:.2f} | {peak:.0f} MB |",
    ]
    return lines, {"summary": summary, "rows": rows, "wall": wall, "peak": peak, "size_mb": src.stat().st_size / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-gb", type=float, default=5.0)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="runs of each 1M-row case; the median is reported")
    parser.add_argument("--note-bytes", type=int, default=150,
                        help="width of the extra text column of the big input (fewer, wider rows)")
    args = parser.parse_args()

    store = Store.open()
    names = default_detectors(store.names)
    tmp = Path(tempfile.mkdtemp(prefix="anodet-bench-"))
    load = os.getloadavg()[0]
    try:
        distinct_src = tmp / "distinct.csv"
        write_distinct(distinct_src, args.rows, seed=0)
        repeating_src = tmp / "repeating.csv"
        write_input(kdd_records(), args.rows, repeating_src)
        t0 = time.perf_counter()
        for n in names:
            store.detector(n)
        t_load = time.perf_counter() - t0
        head, distinct = case(store, names, distinct_src, tmp, "**all distinct** (headline)", args.runs)
        tail, _repeating = case(store, names, repeating_src, tmp, "KDD test rows drawn with replacement (the cache helps)",
                                args.runs)
        cpu = f"{psutil.cpu_count(logical=True)} CPUs, {platform.processor() or platform.machine()}"
        lines = [
            f"### `python -m anodet score`: {args.rows:,} rows, default detectors ({cpu}, load average {load:.1f} "
            "when the run began)",
            "",
            "| input | rows | pyarrow parse (s) | our reader: parse + validate (s) | score end to end (s, × pyarrow) | "
            "rows/s | the command, wall (s) | peak RSS |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *head, *tail,
            "",
            f"Medians of {args.runs} runs (range in brackets). "
            "*Score end to end* runs in process with the models loaded: parse, validate, score every default detector "
            "and write the results CSV. *The command* adds interpreter start-up and model loading "
            f"(loading the {len(names)} detectors alone: {t_load:.2f} s). The all-distinct input is KDD test rows with "
            "their 15 rate columns jittered (`bench/inputs.py`); the repeating one draws KDD test rows with "
            "replacement, where the scorer scores each distinct row once.",
            "",
            "| detector | seconds in the median all-distinct run | rows/s |",
            "| --- | ---: | ---: |",
        ]
        summary = distinct["summary"]
        for n, sec in sorted(summary.detector_seconds.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {n} | {sec:.2f} | {distinct['rows'] / sec:,.0f} |" if sec else f"| {n} | 0 | – |")
        lines += ["", "Each detector scores a chunk in row blocks on both cores; the ensemble is computed from its "
                  "members' scores. Reading (a background thread) and writing (another) overlap with scoring.", ""]

        if not args.skip_big:
            big = tmp / "big.csv"
            grow_to(distinct_src, big, int(args.big_gb * 1e9), args.note_bytes)
            big_rows = big.stat().st_size / ((distinct_src.stat().st_size + args.rows * (args.note_bytes + 3)) / args.rows)
            print(f"big input: {big.stat().st_size / 1e9:.2f} GB (~{big_rows:,.0f} rows)", flush=True)
            wall_big, peak_big, _ = run_cli([str(big), "-o", "-"], poll=0.2)  # results to a pipe: no 15 GB output on disk
            print(f"big: wall {wall_big:.0f} s, peak RSS {peak_big:.0f} MB", flush=True)
            lines += [
                "| memory | input | wall (s) | peak RSS of the command |",
                "| --- | ---: | ---: | ---: |",
                f"| {args.rows:,} distinct rows | {distinct['size_mb']:.0f} MB | {distinct['wall']:.1f} | "
                f"{distinct['peak']:.0f} MB |",
                f"| big input: the distinct rows with a {args.note_bytes}-byte text column, repeated | "
                f"{big.stat().st_size / 1e9:.2f} GB (~{big_rows / 1e6:.0f}M rows) | {wall_big:.0f} | {peak_big:.0f} MB |",
                "",
                "Peak RSS is polled with psutil (process and children). The input is read in "
                f"{CHUNK_BYTES >> 20} MB blocks, so memory does not grow with the input.",
            ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
