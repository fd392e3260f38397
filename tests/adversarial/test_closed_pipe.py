"""A command whose standard output is a pipe nobody reads any more (``python -m anodet … | head -0``) ends
quietly with exit 0; it used to end with a BrokenPipeError traceback (or an error and exit 1 for
``score -o -``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.adversarial.conftest import ROOT, header_csv

pytestmark = pytest.mark.slow  # subprocesses: CI runs them; the inner loop skips them


def into_closed_pipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m anodet ARGS`` writing into a pipe whose reading end is already closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "anodet", *args], stdout=write_end, stderr=subprocess.PIPE,
                              timeout=300, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                                          "PYTHONPATH": str(ROOT), **(env or {})})
    finally:
        os.close(write_end)


def quiet_success(done: subprocess.CompletedProcess) -> None:
    err = done.stderr.decode()
    assert done.returncode == 0 and "Traceback" not in err and "Broken pipe" not in err and "error" not in err, err


def test_dataset_list_and_show(tmp_path, sample_rows):
    env = {"ANODET_DATA_DIR": str(tmp_path)}
    quiet_success(into_closed_pipe("dataset", "list", env=env))  # "no datasets declared…"
    table = tmp_path / "mine.csv"
    sample_rows.iloc[:400, 4:12].to_csv(table, index=False)
    declared = subprocess.run([sys.executable, "-m", "anodet", "dataset", "add", "mine", "--train", str(table)],
                              capture_output=True, cwd=ROOT, env={**os.environ, **env}, timeout=300)
    assert declared.returncode == 0, declared.stderr.decode()
    quiet_success(into_closed_pipe("dataset", "list", env=env))
    quiet_success(into_closed_pipe("dataset", "show", "mine", env=env))
    quiet_success(into_closed_pipe("dataset", "show", "mine", "--json", env=env))


def test_score_to_standard_output(tmp_path, sample_rows):
    src = tmp_path / "in.csv"
    src.write_bytes(header_csv(sample_rows))
    done = into_closed_pipe("score", str(src), "-o", "-", "--detectors", "pca")
    quiet_success(done)
    assert done.stderr.decode().strip() == ""  # no summary either: the reader went away


def test_evaluate():
    quiet_success(into_closed_pipe("evaluate", "--detectors", "pca"))


def test_a_command_that_fails_still_says_so(tmp_path):
    """A closed pipe is not a licence to hide a real error: that one is still a sentence and a non-zero exit."""
    done = into_closed_pipe("score", str(tmp_path / "missing.csv"), "-o", "-")
    assert done.returncode == 1 and "error:" in done.stderr.decode()
