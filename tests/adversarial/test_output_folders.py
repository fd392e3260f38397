"""``score`` never deletes or overwrites what anodet did not write, and one bad input among many is
recorded, not fatal: each case below was reproduced against an earlier version (a user's file in the
output folder deleted; a truncated .gz stopping the local engine after one file and the Dask engine
after three, with no summary.json and ~40 lines of Dask logs; Dask tracebacks for a wrong scheduler)."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from tests.adversarial.conftest import header_csv, run_cli

pytestmark = pytest.mark.slow  # subprocesses and a Dask cluster: CI runs them; the inner loop skips them


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_rows) -> list[Path]:
    """Four inputs of 300 rows each (column ``src``: the file's letter); the second is a .gz cut in half."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = [folder / "a.csv", folder / "bad.csv.gz", folder / "c.csv", folder / "d.csv"]
    for i, path in enumerate(paths):
        data = header_csv(sample_rows.iloc[i * 300:(i + 1) * 300], {"src": path.name[0]})
        if path.suffix == ".gz":
            packed = gzip.compress(data)
            data = packed[: len(packed) // 2]
        path.write_bytes(data)
    return paths


def score(*args: str | Path, timeout: float = 180) -> tuple[int, str]:
    done = run_cli("score", *map(str, args), "--detectors", "pca", timeout=timeout)
    err = done.stderr.decode()
    assert "Traceback" not in err, err
    return done.returncode, err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_folder_of_someone_elses_files_is_refused_and_left_as_it_was(tmp_path, inputs):
    mine = tmp_path / "mydocs"
    mine.mkdir()
    (mine / "part-of-my-thesis.docx").write_bytes(b"three years of work")
    (mine / "part-00000.csv").write_text("my own table\n")
    before = snapshot(mine)
    code, err = score(inputs[0], inputs[1], inputs[2], "-o", mine)
    assert code == 1 and "anodet did not write" in err and "new or empty folder" in err
    assert snapshot(mine) == before  # nothing deleted, replaced or added


def test_an_empty_folder_or_a_new_one_is_used(tmp_path, inputs):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        code, _ = score(inputs[0], inputs[2], "-o", out)
        assert code == 0 and sorted(p.name for p in out.iterdir()) == ["part-00000.csv", "part-00001.csv",
                                                                        "summary.json"]


def test_a_rerun_replaces_only_the_parts_its_earlier_summary_lists(tmp_path, inputs):
    out = tmp_path / "out"
    assert score(inputs[0], inputs[2], inputs[3], "-o", out)[0] == 0
    (out / "notes.txt").write_text("the user's own notes")
    code, _ = score(inputs[3], inputs[0], "-o", out)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "part-00000.csv", "part-00001.csv", "summary.json"]
    assert (out / "notes.txt").read_text() == "the user's own notes"
    assert (set(pd.read_csv(out / "part-00000.csv")["src"]) == {"d"}
            and set(pd.read_csv(out / "part-00001.csv")["src"]) == {"a"})
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parts"] == ["part-00000.csv", "part-00001.csv"] and summary["rows_read"] == 600


def test_a_file_named_like_a_part_but_not_listed_is_left_alone(tmp_path, inputs):
    out = tmp_path / "out"
    assert score(inputs[0], inputs[2], "-o", out)[0] == 0  # an anodet folder with two parts…
    (out / "part-00002.csv").write_text("not anodet's\n")  # …and a file someone put beside them
    before = snapshot(out)
    code, err = score(inputs[0], inputs[2], inputs[3], "-o", out)
    assert code == 1 and "part-00002.csv" in err and "left as it is" in err
    assert snapshot(out) == before


def test_a_crafted_summary_cannot_make_anodet_delete_outside_its_folder(tmp_path, inputs):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"inputs": [], "parts": ["../victim.txt"], "detectors": [],
                                                  "rows_read": 0}))
    code, err = score(inputs[0], inputs[2], "-o", out)
    assert code == 1 and "anodet did not write" in err
    assert victim.read_text() == "keep me" and sorted(p.name for p in out.iterdir()) == ["summary.json"]


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_bad_input_among_good_ones_is_recorded_and_the_others_are_scored(tmp_path, inputs, engine):
    out = tmp_path / "out"
    code, err = score(*inputs, "-o", out, "--engine", engine)
    assert code == 1
    assert "bad.csv.gz was not scored" in err and "corrupt or truncated" in err and "1 not scored" in err
    assert "INFO" not in err and "distributed" not in err and len(err.splitlines()) < 10, err  # quiet unless -v
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.csv", "part-00002.csv", "part-00003.csv",
                                                      "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parts"] == ["part-00000.csv", "part-00002.csv", "part-00003.csv"]
    assert [f["part"] for f in summary["files"]] == ["part-00000.csv", None, "part-00002.csv", "part-00003.csv"]
    assert summary["failed"] == [{"input": str(inputs[1]), "reason": summary["files"][1]["error"]}]
    assert "corrupt or truncated" in summary["failed"][0]["reason"]
    assert summary["rows_read"] == summary["rows_scored"] == 900
    for name, src in (("part-00000.csv", "a"), ("part-00002.csv", "c"), ("part-00003.csv", "d")):
        part = pd.read_csv(out / name)
        assert len(part) == 300 and set(part["src"]) == {src} and (part["status"] == "scored").all()

    # The same folder again with good inputs only: a quiet success, and the earlier parts replaced.
    code, err = score(inputs[0], inputs[2], "-o", out, "--engine", engine)
    assert code == 0 and "INFO" not in err and "distributed" not in err and len(err.splitlines()) < 8, err
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.csv", "part-00001.csv", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["failed"] == []


def test_an_existing_file_anodet_did_not_write_is_not_overwritten(tmp_path, inputs):
    notes = tmp_path / "notes.csv"
    notes.write_text("name,phone\nalice,123\n")
    code, err = score(inputs[0], "-o", notes)
    assert code == 1 and "does not hold anodet's results" in err and notes.read_text() == "name,phone\nalice,123\n"
    # A file beside the output with the name of anodet's former temporary file is not touched either.
    (tmp_path / "r.csv.part").write_text("someone's")
    for _ in range(2):  # the second run replaces the first run's results: those are anodet's
        assert score(inputs[0], "-o", tmp_path / "r.csv")[0] == 0
    assert (tmp_path / "r.csv.part").read_text() == "someone's" and len(pd.read_csv(tmp_path / "r.csv")) == 300
    for name in ("r.csv.gz", "r.parquet"):
        for _ in range(2):
            assert score(inputs[0], "-o", tmp_path / name)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.csv", "r.csv", "r.csv.gz", "r.csv.part", "r.parquet"]


@contextmanager
def server(greeting: bytes | None) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that sends ``greeting`` to each connection (None: says nothing), then waits."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            if greeting:
                conn.sendall(greeting)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["closed port", "another protocol", "silent", "not an address"])
def test_a_wrong_scheduler_is_one_sentence_quickly(tmp_path, inputs, case):
    greeting = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" if case == "another protocol" else None
    with server(greeting) as port:
        address = {"closed port": f"tcp://127.0.0.1:{closed_port()}", "not an address": "http://127.0.0.1",
                   }.get(case, f"tcp://127.0.0.1:{port}")
        start = time.monotonic()
        code, err = score(inputs[0], inputs[2], "-o", tmp_path / "out", "--engine", "dask", "--scheduler", address,
                          timeout=60)
    assert code == 1 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert "EiB" not in err and "Dask scheduler" in err
    assert time.monotonic() - start < 30  # the connect timeout is 10 s
    assert not (tmp_path / "out").exists()
