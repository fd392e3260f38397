"""The Benchmark page through Streamlit's AppTest: a finished run's tables and charts, the link to a declared
dataset's Overview, and a run started from the page in the background (progress, Cancel, one at a time)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from anodet.app.state import DATASET_KEY
from anodet.benchmark import jobs, run_benchmark

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "app_pages/benchmark.py"
ADBENCH = Path(os.environ.get("ANODET_ADBENCH", Path(__file__).resolve().parents[1] / ".." / "shared" / "adbench"))
SMALL = ["14_glass", "42_WBC"]
QUICK = ["zscore", "ecod", "knn"]
FAST = ["pca", "zscore"]
pytestmark = pytest.mark.skipif(not (ADBENCH / "14_glass.npz").exists(), reason="ADBench datasets not found")


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Runs and datasets go to a temporary data folder; the page offers the shared ADBench folder."""
    folder = tmp_path / "data"
    monkeypatch.setenv("ANODET_DATA_DIR", str(folder))
    monkeypatch.setenv("ANODET_ADBENCH", str(ADBENCH))
    yield folder
    job = jobs.current()
    if job is not None:
        job.cancel()
        job.wait(600)
    jobs.forget()


def declare_wdbc(tmp_path: Path) -> None:
    """A declared, trained anodet dataset (so its Overview can show it)."""
    from anodet.datasets import userdata
    from anodet.training.datasets import train
    from tests.conftest import wdbc_frame

    wdbc_frame().to_csv(tmp_path / "wdbc.csv", index=False)
    userdata.add("wdbc", tmp_path / "wdbc.csv", label="diagnosis", normal="B")
    train("wdbc", FAST, log=lambda _: None)


def finished_run(data_dir: Path, name: str = "small", items: list[str] | None = None, peers: list[str] | None = None):
    """A run folder as a page run or the command line leaves it: 2 small ADBench datasets, 1 seed, quick detectors."""
    items = items if items is not None else [str(ADBENCH / f"{n}.npz") for n in SMALL]
    return run_benchmark(items, data_dir / "benchmarks" / name, ["unsupervised"], 1, QUICK, peers or [])


def problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def table(at: AppTest, column: str) -> pd.DataFrame:
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column")


def charts(at: AppTest) -> dict[str, str]:
    return {c.key.split("@")[0]: c.proto.spec for c in at.get("plotly_chart")}


def plain(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown.replace("**", ""))


def page_text(at: AppTest) -> str:
    parts = [*(m.value for m in at.markdown), *(c.value for c in at.caption), *(e.value for e in at.info),
             *(e.value for e in at.success), *(e.value for e in at.warning), *(e.value for e in at.error)]
    return plain(" ".join(parts))


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(PAGE).run()
    assert not problems(at), problems(at)
    return at


def test_a_finished_run_shows_ranks_cd_diagram_heat_map_times_and_links_to_the_overview(tmp_path, data_dir):
    declare_wdbc(tmp_path)
    peers = ["pyod:IForest"] if jobs.peer_choices() else []
    outcome = finished_run(data_dir, items=[*(str(ADBENCH / f"{n}.npz") for n in SMALL), "wdbc"], peers=peers)
    at = open_page()
    assert at.title[0].value == "Benchmark"
    assert at.selectbox(key="bm_run").value == "small"
    ranks = table(at, "mean_rank")
    expected = outcome.summaries[0].table
    assert list(ranks["detector"]) == list(expected["detector"])  # the library's mean-rank order
    assert ranks["mean_roc_auc"].tolist() == pytest.approx(expected["mean_roc_auc"].tolist())
    assert set(ranks["runs"]) == {"3 × 1"}  # every mean over 3 datasets × 1 seed
    kinds = dict(zip(ranks["detector"], ranks["kind"], strict=True))
    assert kinds["knn"] == "anodet" and kinds["choice:family"] == "per-dataset choice"
    if peers:
        assert kinds["pyod:IForest"] == "PyOD peer"
        assert "IForest (PyOD)" in set(ranks["display"])
    shown = charts(at)
    assert set(shown) == {"bm_cd", "bm_heat", "bm_times"}
    assert "CD =" in shown["bm_cd"] and "Per-dataset choice (family)" in shown["bm_cd"]
    assert '"type":"heatmap"' in shown["bm_heat"].replace(" ", "") and "42_WBC" in shown["bm_heat"]
    assert "k-nearest neighbours" in shown["bm_times"]
    words = page_text(at)
    assert "Oracle" in words and "model centrality" in words  # the oracle and the choice explained
    assert any(m.label == "Oracle (not ranked)" for m in at.metric)
    per_dataset = table(at, "best ROC AUC")
    assert list(per_dataset["dataset"]) == [*SMALL, "wdbc"]
    assert str(tmp_path) not in words and str(ADBENCH) not in words  # names only, never server paths
    # the Wilcoxon–Holm diagram draws without the critical-difference bar
    at.radio(key="bm_cd_test").set_value("wilcoxon-holm").run()
    assert "CD =" not in charts(at)["bm_cd"]
    # a declared dataset opens its Overview, chosen in the sidebar
    at.button(key="bm_open_wdbc").click().run()
    assert not problems(at), problems(at)
    assert at.session_state[DATASET_KEY] == "wdbc"
    assert at.title[0].value == "Overview"
    assert at.sidebar.selectbox(key=DATASET_KEY).value == "wdbc"


def test_command_line_runs_anywhere_under_the_data_folder_are_listed_by_name(data_dir):
    finished_run(data_dir, "page-run")
    run_benchmark([str(ADBENCH / "14_glass.npz"), str(ADBENCH / "39_vertebral.npz")], data_dir / "cli" / "out",
                  ["normal-only"], 1, ["zscore", "ecod"], [])
    at = open_page()
    names = at.selectbox(key="bm_run").options
    assert sorted(names) == ["cli/out", "page-run"]
    at.selectbox(key="bm_run").set_value("cli/out").run()
    assert not problems(at), problems(at)
    assert set(table(at, "mean_rank")["detector"]) == {"zscore", "ecod", "choice:family"}
    assert "best validation ROC AUC" in page_text(at)


def test_no_run_yet_says_how_to_make_one(data_dir):
    at = open_page()
    assert "No finished benchmark yet" in page_text(at)
    assert at.button(key="bm_go") is not None


def wait_until_ended(timeout: float = 300.0) -> jobs.Job:
    deadline = time.monotonic() + timeout
    job = jobs.current()
    while job is not None and job.active and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job is not None and not job.active, "the benchmark did not end in time"
    return job


def choose_small_suite(at: AppTest, name: str, detectors: list[str]) -> AppTest:
    at.text_input(key="bm_name").set_value(name)
    at.checkbox(key="bm_all_adbench").uncheck().run()
    at.multiselect(key="bm_adbench").set_value(SMALL)
    at.number_input(key="bm_seeds").set_value(1)
    at.multiselect(key="bm_detectors").set_value(detectors)
    if jobs.peer_choices():
        at.multiselect(key="bm_peers").set_value(["ECOD"])
    return at.run()


def test_a_run_started_from_the_page_runs_in_the_background_and_shows_its_results(data_dir):
    at = open_page()
    choose_small_suite(at, "from-page", QUICK)
    assert "2 task(s)" in page_text(at)
    at.button(key="bm_go").click().run()
    assert not problems(at), problems(at)
    job = jobs.current()
    assert job is not None and job.run == "from-page"
    job = wait_until_ended()
    assert job.status == jobs.DONE, job.error
    at.run()
    assert not problems(at), problems(at)
    assert "Run from-page finished" in page_text(at)
    assert at.selectbox(key="bm_run").value == "from-page"
    ranks = table(at, "mean_rank")
    assert {"zscore", "ecod", "knn", "choice:family"} <= set(ranks["detector"])
    assert ("pyod:ECOD" in set(ranks["detector"])) == bool(jobs.peer_choices())
    assert set(charts(at)) == {"bm_cd", "bm_heat", "bm_times"}
    assert (data_dir / "benchmarks" / "from-page" / "results.parquet").is_file()
    # the same name again is refused with a sentence, on the page
    at.text_input(key="bm_name").set_value("from-page").run()
    at.button(key="bm_go").click().run()
    assert any("exists already" in e.value for e in at.error)


def test_cancel_keeps_finished_tasks_and_resume_does_not_redo_them(data_dir):
    started = []

    def slow(items, folder, protocols, seeds, detectors, peers, progress):
        """run_benchmark, with a pause after each task so that Cancel lands mid-run."""
        def paced(done: int, total: int, what: str) -> None:
            started.append(what)
            progress(done, total, what)
            time.sleep(0.5)
        return run_benchmark(items, folder, protocols, seeds, detectors, peers, progress=paced)

    request = jobs.Request("paced", tuple(SMALL), protocols=("unsupervised",), seeds=2, detectors=("zscore",))
    job = jobs.start(request, runner=slow)
    at = open_page()
    deadline = time.monotonic() + 120
    while job.snapshot()["done"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    assert at.get("progress"), "no progress bar while the run is going"
    # one run at a time per server: the page's button is disabled, and a second request is refused with a sentence
    assert at.button(key="bm_go").disabled
    with pytest.raises(jobs.JobError, match="one runs at a time"):
        jobs.start(jobs.Request("another", (SMALL[0],), detectors=("zscore",), seeds=1))
    assert not (data_dir / "benchmarks" / "another").exists()
    at.button(key="bm_cancel").click().run()
    job = wait_until_ended()
    assert job.status == jobs.CANCELLED
    done = job.snapshot()["done"]
    assert 1 <= done < 4
    at.run()
    assert "was cancelled after" in page_text(at)
    assert at.selectbox(key="bm_resume").value == "paced"
    at.button(key="bm_resume_go").click().run()
    assert not problems(at), problems(at)
    job = wait_until_ended()
    assert job.status == jobs.DONE, job.error
    assert job.snapshot()["ran"] == 4 - done  # the finished tasks were not redone
    at.run()
    assert at.selectbox(key="bm_run").value == "paced"


@pytest.mark.parametrize(("change", "message"), [
    ({"run": "../escape"}, "cannot name a run"),
    ({"adbench": (), "declared": ()}, "at least one dataset"),
    ({"adbench": ("no_such",)}, "has no dataset 'no_such'"),
    ({"declared": ("nobody",)}, "is not a declared dataset"),
    ({"detectors": ()}, "at least one detector"),
    ({"detectors": ("supervised",)}, "trains on labels"),
    ({"seeds": 0}, "Seeds must be 1 to"),
])
def test_bad_requests_are_one_sentence_and_start_nothing(data_dir, change, message):
    base = {"run": "bad", "adbench": (SMALL[0],), "detectors": ("zscore",), "seeds": 1}
    with pytest.raises(jobs.JobError, match=re.escape(message)):
        jobs.start(jobs.Request(**{**base, **change}))
    assert jobs.current() is None
    assert not (data_dir / "benchmarks" / "bad").exists()


def test_failures_name_no_server_path(data_dir):
    sentence = jobs.public(f"{ADBENCH}/14_glass.npz is not a dataset file; the folder {ADBENCH} and "
                           f"{data_dir}/benchmarks/x and /srv/secret/place/file.csv")
    assert str(ADBENCH) not in sentence and "/srv" not in sentence and str(data_dir) not in sentence
    assert "14_glass.npz is not a dataset file" in sentence and "the ADBench folder" in sentence
    assert "file.csv" in sentence
