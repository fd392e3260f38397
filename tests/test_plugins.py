"""Plug-in detectors end to end: PyOD's ECOD through the generic path (refitted from the stored training rows when
first loaded) and a small custom class through the state protocol (examples/median_distance.py), trained by
``train --detector-class``, shown by ``evaluate`` and on the Overview (AppTest), and scoring a file and a stream; an
entry point of the ``anodet.detectors`` group found in a subprocess; what cannot be a plug-in refused in one sentence.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from streamlit.testing.v1 import AppTest

from anodet.cli import main
from anodet.detectors import Detector, create, plugins
from anodet.detectors.base import load_arrays, save_arrays
from anodet.evaluation.metrics import roc_auc
from anodet.store.core import Store
from tests.threshold_control import sent

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
ECOD, MEDIAN = "pyod_ecod", "examples_mediandistance"


@pytest.fixture(scope="module")
def plugin_store(tmp_path_factory, splits) -> Path:
    """Two built-in detectors and the two plug-ins on kdd18, in a store of their own (never the committed one)."""
    root = tmp_path_factory.mktemp("plugins") / "store"
    common = ["train", "--store", str(root), "--feature-sets", "kdd18"]
    assert main([*common, "--detectors", "pca,zscore"]) == 0
    assert main([*common, "--detector-class", "pyod.models.ecod:ECOD"]) == 0
    assert main([*common, "--detector-class", "examples.median_distance:MedianDistance", "--detector-params",
                 '{"floor": 0.01}']) == 0
    return root


@pytest.mark.slow  # trains on the 97,278 KDD training normals
def test_the_manifest_says_how_each_plugin_is_kept_and_what_a_refit_costs(plugin_store):
    manifest = json.loads((plugin_store / "manifest.json").read_text())
    ecod, median = manifest["detectors"][ECOD], manifest["detectors"][MEDIAN]
    assert ecod["class"] == "pyod.models.ecod:ECOD" and ecod["family"] == "plugin"
    assert ecod["plugin"]["mode"] == "refit" and ecod["plugin"]["versions"] == {"pyod": "3.6.7"}
    assert ecod["plugin"]["refit_on_load"]["rows"] == ecod["train_rows"] == 97_278
    assert ecod["plugin"]["refit_on_load"]["seconds"] > 0
    assert median["plugin"]["mode"] == "state" and median["params"] == {"floor": 0.01}
    assert {Path(f).name for f in median["files"]} == {"params.json", "plugin.json", "state.npz", "state.json",
                                                       "check.npz"}
    for relpath in [*ecod["files"], *median["files"]]:  # plain arrays and JSON only: nothing to unpickle
        path = plugin_store / relpath
        assert path.suffix in (".json", ".npz")
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                assert all(data[k].dtype != object for k in data.files)


@pytest.mark.slow  # trains on the 97,278 KDD training normals
def test_evaluate_ranks_the_plugins_with_their_own_scores(plugin_store, splits, capsys):
    from pyod.models.ecod import ECOD as PyodECOD

    assert main(["evaluate", "--store", str(plugin_store), "--format", "json"]) == 0
    rows = {(r["detector"], r["label_view"]): r for r in json.loads(capsys.readouterr().out)}
    assert rows[(ECOD, "reference")]["name"] == "ECOD (pyod) · kdd18"
    assert rows[(MEDIAN, "reference")]["name"] == "MedianDistance (examples) · kdd18"
    # the same numbers as PyOD's ECOD fitted on the same rows by hand
    store = Store.open(plugin_store)
    fs = store.feature_set("kdd18")
    train = fs.transform_frame(splits.train.rows[splits.train.label("true") == 0]).astype(np.float64)
    by_hand = PyodECOD().fit(train).decision_function(fs.transform_frame(splits.test.rows).astype(np.float64))
    assert rows[(ECOD, "reference")]["roc_auc"] == pytest.approx(roc_auc(splits.test.label("reference"), by_hand),
                                                                 abs=1e-12)


@pytest.mark.slow  # trains on the 97,278 KDD training normals
def test_the_overview_and_explorer_show_the_plugins_beside_the_family(plugin_store, monkeypatch, tmp_path):
    from anodet.scoring import cache

    monkeypatch.setenv("ANODET_STORE", str(plugin_store))
    monkeypatch.setattr(cache, "cache_root", lambda: tmp_path)  # this store's split scores: not into data/cache
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    board = next(d.value for d in at.dataframe if "roc_auc" in d.value.columns)
    assert set(board.index) == {"pca", "zscore", ECOD, MEDIAN}
    assert board.loc[ECOD, "detector"] == "ECOD (pyod) · kdd18" and board.loc[ECOD, "roc_auc"] > 0.8
    at.session_state["focus_detector"] = ECOD
    at.switch_page("app_pages/threshold_explorer.py").run()
    assert not at.exception and not at.error
    assert sent(at, ECOD, "reference")["n"] == 10_000


@pytest.mark.slow  # trains on the 97,278 KDD training normals
def test_plugins_score_a_file_and_a_stream(plugin_store, splits, tmp_path, capsys):
    records = tmp_path / "records.csv"
    splits.test.rows.head(300).assign(id=range(300)).to_csv(records, index=False)
    out = tmp_path / "scored.csv"
    assert main(["score", str(records), "-o", str(out), "--store", str(plugin_store), "--detectors",
                 f"{ECOD},{MEDIAN}"]) == 0
    scored = pd.read_csv(out)
    assert np.isfinite(scored[f"score_{ECOD}"]).all() and set(scored[f"flag_{MEDIAN}"].unique()) <= {0, 1}
    from examples.median_distance import MedianDistance

    store = Store.open(plugin_store)
    fs = store.feature_set("kdd18")
    fitted = MedianDistance(floor=0.01).fit(fs.transform_frame(splits.train.rows))
    expected = fitted.decision_function(fs.transform_frame(splits.test.rows.head(300)))
    assert scored[f"score_{MEDIAN}"].to_numpy() == pytest.approx(expected, rel=1e-6)
    alerts = tmp_path / "alerts.jsonl"
    assert main(["stream", "--store", str(plugin_store), "--detector", MEDIAN, "--input", str(records), "--alerts",
                 str(alerts), "--threshold", "0"]) == 0
    assert len(alerts.read_text().splitlines()) == 300


@pytest.mark.slow  # trains on the 97,278 KDD training normals
def test_a_plugin_is_a_scikit_learn_estimator_like_the_built_in_kinds(plugin_store):
    Store.open(plugin_store).detector(ECOD)  # binds the stored kind in this process
    detector = create(ECOD, seed=3, contamination=0.2)
    copy = clone(detector)
    assert copy is not detector and copy.get_params() == {"seed": 3, "contamination": 0.2, "n_jobs": 1}
    with pytest.raises(TypeError, match="takes no parameter n_trees"):
        detector.set_params(n_trees=3)


def test_scikit_learns_outlier_detectors_are_turned_to_higher_is_anomalous():
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    from examples.median_distance import MedianDistance

    assert plugins.orientation(IsolationForest)[1:] == (-1.0, "normal")
    assert plugins.orientation(LocalOutlierFactor)[0] == "decision_function"
    assert plugins.orientation(MedianDistance)[1:] == (1.0, "anomalous")
    assert plugins.orientation(MedianDistance, "normal")[1] == -1.0


class Spread(Detector):
    """A plug-in that already is an anodet detector: it keeps its own state (arrays) and parameters."""

    name, display_name, family = "spread", "Spread", "plugin"
    default_params: ClassVar[dict] = {"power": 2}

    def fit(self, X, y=None):
        self.mean_ = np.asarray(X, dtype=np.float64).mean(axis=0)
        return self

    def decision_function(self, X):
        return (np.abs(np.asarray(X, dtype=np.float64) - self.mean_) ** self.params["power"]).sum(axis=1)

    def _save_state(self, folder):
        return [save_arrays(folder / "state.npz", mean=self.mean_)]

    def _load_state(self, folder):
        self.mean_ = load_arrays(folder / "state.npz")["mean"]


def test_a_plugin_that_is_an_anodet_detector_keeps_its_own_state(tmp_path, splits, capsys):
    root = tmp_path / "store"
    assert main(["train", "--store", str(root), "--feature-sets", "kdd18", "--train-rows", "3000",
                 "--detector-class", "tests.test_plugins:Spread", "--detector-params", '{"power": 1}']) == 0
    entry = json.loads((root / "manifest.json").read_text())["detectors"]["tests_spread"]
    assert entry["plugin"]["mode"] == "detector" and entry["params"] == {"power": 1}
    detector = Store.open(root).detector("tests_spread")
    assert detector.params == {"power": 1} and detector.decision_function(np.zeros((2, 18))).shape == (2,)
    capsys.readouterr()


class Restless:
    """Not deterministic given its parameters: its fit draws from an unseeded generator."""

    def fit(self, X, y=None):
        self.centre_ = np.random.default_rng().normal(size=X.shape[1])
        return self

    def decision_function(self, X):
        return np.linalg.norm(np.asarray(X) - self.centre_, axis=1)


@pytest.mark.parametrize("args, sentence", [
    (["--detector-class", "nope.module:Thing"], "Cannot import nope.module for the plug-in nope.module:Thing"),
    (["--detector-class", "subprocess:Popen"], "subprocess:Popen is not a detector: it needs fit(X, y=None)"),
    (["--detector-class", "os:system"], "os has no class system"),
    (["--detector-class", "pyod.models.ecod:ECOD", "--detector-params", '{"bogus": 1}'], "takes no parameter bogus"),
    (["--detector-class", "pyod.models.ecod:ECOD", "--detector-params", "[1]"], "must be a JSON object"),
    (["--detector-class", "pyod.models.ecod:ECOD", "--detector-name", "pca"], "is a built-in detector's name"),
    (["--detector-params", '{"a": 1}'], "--detector-params describes a plug-in: give --detector-class"),
    (["--detector-class", "tests.test_plugins:Restless"], "or is not deterministic given its parameters and seed"),
])
def test_what_cannot_be_a_plugin_is_one_sentence_and_writes_nothing(tmp_path, capsys, args, sentence):
    root = tmp_path / "store"
    assert main(["train", "--store", str(root), "--feature-sets", "kdd18", "--train-rows", "2000", *args]) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err, err
    assert not (root / "manifest.json").exists()


@pytest.mark.slow  # trains on the 97,278 KDD training normals
def test_an_installed_entry_point_is_a_detector_kind(tmp_path, splits):
    """A package declaring ``[anodet.detectors] toy_median = examples.median_distance:MedianDistance`` (a dist-info on
    the path, as pip would install it): ``train --detectors toy_median`` trains it; scoring needs only the store."""
    site = tmp_path / "site"
    info = site / "toyplug-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[anodet.detectors]\ntoy_median = examples.median_distance:MedianDistance\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    store = tmp_path / "store"

    def run(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "anodet", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=600, **kw)

    done = run("train", "--store", str(store), "--feature-sets", "kdd18", "--train-rows", "5000", "--detectors",
               "toy_median", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads((store / "manifest.json").read_text())["detectors"]["toy_median"]["plugin"]["source"] == \
        "entry point"
    records = tmp_path / "records.csv"
    splits.test.rows.head(50).to_csv(records, index=False)
    scored = run("score", str(records), "-o", str(tmp_path / "out.csv"), "--store", str(store))
    assert scored.returncode == 0, scored.stderr
    assert "score_toy_median" in pd.read_csv(tmp_path / "out.csv").columns
    unknown = run("train", "--store", str(store), "--detectors", "toy_median")  # not installed here
    assert unknown.returncode == 2 and "unknown detector(s) toy_median" in unknown.stderr
