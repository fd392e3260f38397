"""Training the detector family on a user's dataset: what fits its size, and the corpus the trainer reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anodet.access import audit
from anodet.access.identity import Principal
from anodet.access.permissions import require
from anodet.datasets.errors import DatasetError
from anodet.datasets.model import Splits
from anodet.datasets.userdata import LABEL_VIEW, UserDataset, load
from anodet.features.sets import qualified
from anodet.store.core import Store, StoreError
from anodet.training.train import Corpus, Progress, labelled_pair

ROW_CAPS: dict[str, int] = {"autoencoder": 100_000, "vae": 100_000, "bigan": 100_000, "seq2seq": 5_000,
                            "kmeans": 100_000}
"""Training rows per detector kind on large data (a random subset); OCSVM and LOF take their own
``max_rows`` distinct rows and the Isolation Forest its ``max_samples`` per tree."""
LARGE_PARAMS: dict[str, dict[str, Any]] = {"seq2seq": {"epochs": 4}}
"""Parameters changed on large data (more than a row cap of training rows), as for KDD's 41 features."""


class Cancelled(Exception):
    """Raised inside a training (by its log or progress callback) to stop it; the store stays as it was."""


def _keras_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("keras") is not None


def plan(dataset: UserDataset, splits: Splits) -> tuple[dict[str, str], dict[str, int], dict[str, dict[str, Any]]]:
    """(detector kinds skipped → why, training-row caps per kind, parameter changes) for this dataset's size."""
    from anodet.detectors import NEURAL, REGISTRY, detector_class

    rows, width = len(splits.train), dataset.width
    skip: dict[str, str] = {}
    if labelled_pair(splits, LABEL_VIEW) is None:
        skip["supervised"] = "needs labels (anomalous and normal rows in the validation split)"
    if not _keras_available():
        for kind in NEURAL:
            skip[kind] = "needs TensorFlow/Keras (pip install -r requirements-train.txt)"
    for kind in REGISTRY:
        params = detector_class(kind).default_params
        if kind == "lof" and rows <= params["n_neighbors"]:
            skip[kind] = f"needs more than {params['n_neighbors']} training rows"
        if kind == "kmeans" and rows < params["n_clusters"]:
            skip[kind] = f"needs at least {params['n_clusters']} training rows"
        if kind == "pca" and min(rows, width) <= params["n_components"]:
            skip[kind] = f"needs more than {params['n_components']} columns and training rows"
        if kind == "mahalanobis" and rows < 2:
            skip[kind] = "needs at least 2 training rows"
    caps = {k: v for k, v in ROW_CAPS.items() if rows > v and k not in skip}
    params = {k: dict(v) for k, v in LARGE_PARAMS.items() if k in caps}
    return skip, caps, params


def corpus(dataset: UserDataset, splits: Splits | None = None) -> Corpus:
    """The :class:`anodet.training.train.Corpus` of a dataset: its splits, its one feature set, its one label view."""
    splits = splits or dataset.splits()
    skip, caps, params = plan(dataset, splits)
    labelled = splits.labels("validation", LABEL_VIEW) is not None
    data = {"split": f"dataset:{dataset.name}", "dataset": dataset.name, "labelled": labelled,
            "protocol": dataset.protocol, "row_caps": caps, "skipped": skip}
    extra = {"label_views": [LABEL_VIEW], "default_preset": "best_f1" if labelled else "mean_3sigma"}
    return Corpus(splits, {dataset.feature_set_name: dataset.feature_set_spec()}, (LABEL_VIEW,), data,
                  lambda: labelled_pair(splits, LABEL_VIEW), caps, skip, extra, params, dataset.protocol)


def train(name: str, detectors: list[str] | None = None, seed: int = 0, log: Callable[[str], None] = print,
          progress: Progress | None = None, epochs: int | None = None,
          lock_timeout: float | None = None, principal: Principal | None = None,
          preset: str | None = None, fit: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train the detector family on dataset ``name`` into its store; return the manifest.

    ``detectors``: kinds (``pca``) or stored names (``pca@NAME``); default every one that fits
    the data, or ``preset``'s (:data:`anodet.training.estimates.PRESETS`). ``progress(done, total,
    detector)`` is called before each detector and at the end. ``principal`` (default: the command line's
    operator) must own the dataset or be an admin; the outcome goes to the audit log. ``fit`` runs the training
    itself (default :func:`run_training`, here; the page's jobs use :func:`anodet.training.child.train_in_child`).
    """
    from anodet.access import quotas
    from anodet.datasets import ownership

    doc = ownership.read_doc(name)
    if doc is None:
        load(name)  # the DatasetError naming the declared ones
    ownership.hidden_from(principal, name, doc or {}, "train")
    resource = f"dataset:{name}"
    actor = require(principal, "train", ownership.owner_of(doc), resource=resource)
    owner = ownership.owner_of(doc) or actor.id
    quotas.check_disk(actor, owner, ownership.disk_usage(owner), 0, "train", resource)  # a store adds to the disk
    try:
        manifest = (fit or run_training)(name, detectors, seed, log, progress, epochs, lock_timeout, preset)
    except Cancelled:
        audit.record(actor, "train", audit.CANCELLED, resource)
        raise
    except Exception as exc:
        audit.record(actor, "train", audit.FAILED, resource, str(exc) or type(exc).__name__)
        raise
    audit.record(actor, "train", audit.OK, resource, f"{len(manifest.get('detectors', {}))} detectors")
    return manifest


def run_training(name: str, detectors: list[str] | None, seed: int, log: Callable[[str], None],
                 progress: Progress | None, epochs: int | None, lock_timeout: float | None,
                 preset: str | None = None) -> dict[str, Any]:
    """The training itself, without the access checks and the audit (:func:`train` does them)."""
    from anodet.detectors import REGISTRY, known_kinds
    from anodet.training.estimates import preset_kinds
    from anodet.training.train import train as train_store

    dataset = load(name)
    splits = dataset.splits()
    got = corpus(dataset, splits)
    fs = dataset.feature_set_name
    from_preset = bool(preset and not detectors)
    if from_preset:
        detectors = preset_kinds(str(preset), [k for k in REGISTRY if k not in got.skip])
    wanted = [qualified(d, fs) if "@" not in d else d for d in (detectors or [])]
    asked_skipped = [d for d in wanted if d.split("@", 1)[0] in got.skip]
    if asked_skipped:
        kind = asked_skipped[0].split("@", 1)[0]
        raise DatasetError(f"{kind} cannot be trained on dataset {name!r}: it {got.skip[kind]}.")
    wrong = [d for d in wanted if d.split("@", 1)[1] != fs or d.split("@", 1)[0] not in known_kinds()]
    if wrong:
        raise DatasetError(f"{wrong[0]} is not a detector of dataset {name!r}; give kinds such as pca or "
                           f"{qualified('pca', fs)}.")
    log(f"dataset {name}: {len(splits.train):,} training rows, {len(splits.validation):,} validation, "
        f"{len(splits.test):,} test; {len(dataset.feature_columns)} columns")
    if got.skip:
        log("skipped: " + "; ".join(f"{k} ({why})" for k, why in got.skip.items()))
    if got.row_caps:
        log("subsampled for the slow detectors: " + ", ".join(f"{k} on {v:,} rows" for k, v in got.row_caps.items())
            + f" of {len(splits.train):,}; ocsvm and lof fit on at most their own max_rows distinct rows")
    if not dataset.labelled:
        log("no labels: thresholds are mean_3sigma (default), target_fpr and contamination, chosen on held-out rows; "
            "ROC and PR curves need labels")
    return train_store(wanted or None, seed=seed, store_root=dataset.store_root, epochs=epochs, log=log,
                       lock_timeout=lock_timeout, corpus=got, progress=progress,
                       named=f"in the {preset} preset" if from_preset else "named")


def open_store(name: str) -> Store:
    """The model store trained on dataset ``name`` (a StoreError saying how to train it when missing)."""
    root = load(name).store_root
    if not (root / "manifest.json").exists():
        raise StoreError(f"Dataset {name!r} has no model store yet; train it with "
                         f"`python -m anodet train --dataset {name}`.")
    return Store.open(root)
