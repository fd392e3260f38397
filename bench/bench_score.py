"""Benchmark `python -m anodet score`: speed on 1,000,000 rows and peak memory on a 5 GB input.

Inputs are generated in a temporary folder from KDD's full test file (records drawn at random,
with an id column and the attack label, header CSV) and deleted afterwards; nothing derived from
KDD is kept. Prints the figures and writes ``bench/results/score.md`` (a markdown table).

    python bench/bench_score.py [--rows 1000000] [--big-gb 5] [--skip-big]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anodet import scoring  # noqa: E402
from anodet.data import fetch_raw, parse_raw_lines  # noqa: E402
from anodet.schema import FEATURES  # noqa: E402
from anodet.store import Store  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "score.md"


def kdd_records() -> pd.DataFrame:
    """The full KDD test file (311,029 records): id-less features and label."""
    import gzip

    raw = parse_raw_lines(gzip.decompress(fetch_raw()["test"].read_bytes()))
    return raw[[*FEATURES, "label"]]


def write_input(records: pd.DataFrame, rows: int, path: Path, seed: int = 0) -> None:
    """``rows`` records drawn with replacement, as a header CSV with an id column."""
    rng = np.random.default_rng(seed)
    sample = records.iloc[rng.integers(0, len(records), rows)]
    table = pa.table({"id": pa.array(np.arange(rows)), **{f: sample[f].to_numpy() for f in FEATURES},
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
    rows = sum(len(c.valid) for c in scoring.read_chunks(path))
    assert rows > 0
    return time.perf_counter() - t0


def distinct_throughput(store: Store, names: list[str], records: pd.DataFrame, n: int = 100_000) -> dict[str, float]:
    """Worst case, rows/s per detector on ``n`` rows that are all distinct (no de-duplication gain)."""
    X = records[list(FEATURES)].drop_duplicates().to_numpy(dtype=np.float64)
    rng = np.random.default_rng(1)
    X = X[rng.integers(0, len(X), n)] * rng.uniform(0.97, 1.03, (n, len(FEATURES)))
    Xs = store.scaler.transform(X)
    out = {}
    for name in names:
        det = store.detector(name)
        det.score(Xs[:1000])  # warm-up (graph tracing)
        t0 = time.perf_counter()
        det.score(Xs)
        out[name] = n / (time.perf_counter() - t0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-gb", type=float, default=5.0)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--note-bytes", type=int, default=150,
                        help="width of the extra text column of the big input (fewer, wider rows)")
    args = parser.parse_args()

    store = Store.open()
    names = scoring.default_detectors(store.names)
    records = kdd_records()
    tmp = Path(tempfile.mkdtemp(prefix="anodet-bench-"))
    lines: list[str] = []
    try:
        src = tmp / "input.csv"
        write_input(records, args.rows, src)
        size_mb = src.stat().st_size / 1e6
        distinct = pd.read_csv(src, engine="pyarrow")[list(FEATURES)].drop_duplicates().shape[0]
        print(f"input: {args.rows:,} rows, {size_mb:.0f} MB, {distinct:,} distinct feature vectors", flush=True)

        t_parse = parse_only(src)
        t0 = time.perf_counter()
        pd.read_csv(src, engine="pyarrow")
        t_pandas = time.perf_counter() - t0

        t0 = time.perf_counter()
        for n in names:
            store.detector(n)
        t_load = time.perf_counter() - t0
        thresholds = scoring.resolve_thresholds(store, names, None, "reference")
        out = tmp / "out.csv"
        sink = scoring.CsvSink(out)
        summary = scoring.score_source(src, store, names, thresholds, sink=sink)
        sink.close()
        t_inproc = summary.seconds
        out_rows = sum(1 for _ in open(out, "rb")) - 1
        assert out_rows == args.rows, (out_rows, args.rows)

        wall, peak_1m, _ = run_cli([str(src), "-o", str(out)])
        worst = distinct_throughput(store, names, records)
        print(f"parse only {t_parse:.2f} s; pandas read_csv(engine=pyarrow) {t_pandas:.2f} s; "
              f"score end to end (models loaded) {t_inproc:.2f} s; CLI wall {wall:.2f} s "
              f"(incl. start-up and model loading); peak RSS {peak_1m:.0f} MB", flush=True)

        cpu = f"{psutil.cpu_count(logical=True)} CPUs, {platform.processor() or platform.machine()}"
        lines += [
            f"### `python -m anodet score`: {args.rows:,} rows, default detectors ({cpu})",
            "",
            f"Input: header CSV, {size_mb:.0f} MB, records drawn at random from KDD's full test file "
            f"({distinct:,} distinct feature vectors, so each is scored once and reused).",
            "",
            "| stage | seconds | rows/s | × parse time |",
            "| --- | ---: | ---: | ---: |",
            f"| parse and validate only (same chunked reader) | {t_parse:.2f} | {args.rows / t_parse:,.0f} | 1.0 |",
            f"| pandas `read_csv(engine='pyarrow')`, for reference | {t_pandas:.2f} | {args.rows / t_pandas:,.0f} | "
            f"{t_pandas / t_parse:.1f} |",
            f"| **score end to end** (parse, validate, score, write CSV; models loaded) | **{t_inproc:.2f}** | "
            f"{args.rows / t_inproc:,.0f} | {t_inproc / t_parse:.1f} |",
            f"| the command, wall clock (adds interpreter start-up and model loading) | {wall:.2f} | "
            f"{args.rows / wall:,.0f} | {wall / t_parse:.1f} |",
            f"| loading the {len(names)} detectors alone (in process) | {t_load:.2f} | | |",
            "",
            "| detector | time in this run (s) | distinct rows scored | rows/s, this run (per input row) | "
            "rows/s, all-distinct input (worst case) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for n in names:
            sec = summary.detector_seconds[n]
            eff = args.rows / sec if sec else float("inf")
            lines.append(f"| {n} | {sec:.2f} | {scoring_rows(summary, n):,} | {eff:,.0f} | {worst[n]:,.0f} |")
        lines.append("")
        lines.append("The ensemble reuses its members' scores, so its own cost in the run is the normalisation only; "
                     "its worst-case figure is the ensemble scored alone (all its members included).")
        lines.append(f"Load average when the run began: {os.getloadavg()[0]:.1f} on {psutil.cpu_count()} CPUs "
                     "(other jobs on the machine slow every figure).")
        lines.append("")

        if not args.skip_big:
            big = tmp / "big.csv"
            grow_to(src, big, int(args.big_gb * 1e9), args.note_bytes)
            big_rows = big.stat().st_size / ((src.stat().st_size + args.rows * (args.note_bytes + 3)) / args.rows)
            print(f"big input: {big.stat().st_size / 1e9:.2f} GB (~{big_rows:,.0f} rows)", flush=True)
            wall_big, peak_big, _ = run_cli([str(big), "-o", "-"], poll=0.2)  # results to a pipe: the disk holds no 15 GB output
            print(f"5 GB: wall {wall_big:.0f} s, peak RSS {peak_big:.0f} MB", flush=True)
            lines += [
                "| memory | input | wall (s) | peak RSS of the command |",
                "| --- | ---: | ---: | ---: |",
                f"| 1M rows | {size_mb:.0f} MB | {wall:.1f} | {peak_1m:.0f} MB |",
                f"| big input, rows with a {args.note_bytes}-byte text column | {big.stat().st_size / 1e9:.2f} GB "
                f"(~{big_rows / 1e6:.0f}M rows) | {wall_big:.0f} | "
                f"{peak_big:.0f} MB |",
                "",
                "Peak RSS is polled with psutil (process and children). The input is read in "
                f"{scoring.CHUNK_BYTES >> 20} MB blocks, so memory does not grow with the input.",
            ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


def scoring_rows(summary: scoring.Summary, name: str) -> int:
    return int(summary.distinct_rows.get(name, 0))


if __name__ == "__main__":
    raise SystemExit(main())
