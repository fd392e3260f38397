"""One-off: rewrite a store's skops models (``model.skops``) as plain arrays (``state.npz``), without retraining.

Stores trained before anodet stopped using skops hold the One-Class SVM, Isolation Forest,
Local Outlier Factor and supervised forest as ``model.skops``. This reads each one with skops
(trusted types listed below), takes the arrays the detector now scores from, checks them against
the scikit-learn estimator on probe rows and on ``--rows`` real rows if given, writes
``state.npz``, deletes ``model.skops`` and rewrites ``manifest.json`` (the ``files`` hashes, and the
member files the ensembles recorded) through the store's own helpers. It needs skops installed
(``pip install skops==0.16.0``, the version that wrote them); nothing else in anodet does.

    python scripts/migrate_skops_state.py [models_store]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from anodet.detectors import detector_class
from anodet.detectors.base import PARAMS_FILE
from anodet.detectors.classical import STATE_FILE
from anodet.detectors.from_arrays import probe_rows
from anodet.features.sets import kind_of
from anodet.store.core import Store, file_hashes, write_store
from anodet.store.manifest import MANIFEST, parse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SKOPS_FILE = "model.skops"
TRUSTED = {
    "ocsvm": ["sklearn.svm._classes.OneClassSVM"],
    "iforest": ["sklearn.ensemble._iforest.IsolationForest", "sklearn.tree._classes.ExtraTreeRegressor",
                "sklearn.tree._tree.Tree"],
    "lof": ["sklearn.neighbors._lof.LocalOutlierFactor", "sklearn.neighbors._kd_tree.KDTree",
            "sklearn.metrics._dist_metrics.EuclideanDistance64"],
    "supervised": ["sklearn.ensemble._forest.RandomForestClassifier", "sklearn.tree._classes.DecisionTreeClassifier",
                   "sklearn.tree._tree.Tree"],
}


def migrate(root: Path) -> list[str]:
    import skops.io as sio

    store = Store.open(root)
    store.verify()
    manifest = parse((root / MANIFEST).read_bytes(), root / MANIFEST)
    migrated = []
    for name, entry in manifest["detectors"].items():
        folder = root / name
        if f"{name}/{SKOPS_FILE}" not in entry["files"]:
            continue
        kind = kind_of(name)
        model = sio.load(folder / SKOPS_FILE, trusted=TRUSTED[kind])
        saved = json.loads((folder / PARAMS_FILE).read_text())
        detector: Any = detector_class(kind)(seed=saved["seed"], **saved["params"])
        n_features = model.n_features_in_
        extra = getattr(model, "support_vectors_", None)
        if extra is None:
            extra = getattr(model, "_fit_X", None)
        detector._adopt(model, probe_rows(n_features, extra))  # raises if the arrays score differently
        state = folder / STATE_FILE
        detector._save_state(folder)
        (folder / SKOPS_FILE).unlink()
        entry["files"] = file_hashes(root, [folder / PARAMS_FILE, state])
        migrated.append(name)
    for entry in manifest["detectors"].values():
        for member in entry.get("members", {}):
            entry["members"][member] = dict(manifest["detectors"][member]["files"])
    write_store(root, manifest)
    return migrated


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "models_store"
    done = migrate(target)
    print(f"migrated {len(done)} detectors in {target}: {', '.join(done)}")
    check = Store.open(target)
    for n in check.names:
        check.detector(n)
    print(f"all {len(check.names)} detectors load; np {np.__version__}")
