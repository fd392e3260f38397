"""Build the data, train detectors, choose thresholds on validation, and write the store.

Only one training writes a store at a time (a lock beside it); each builds a complete new store
in its own staging folder and swaps it in with a journalled pair of renames (:mod:`anodet.store.swap`).
"""

from __future__ import annotations

import logging
import math
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from anodet.datasets.kdd import SPLIT_NAME, load_splits
from anodet.datasets.kdd_schema import LABEL_VIEWS
from anodet.datasets.model import Part, Splits
from anodet.detectors import NEURAL, REGISTRY, Detector, create, detector_class
from anodet.detectors.plugins import PluginError, is_plugin, plugin_info
from anodet.evaluation import metrics
from anodet.features.sets import (
    BUILTIN,
    FeatureSet,
    FeatureSetSpec,
    kind_of,
    qualified,
    set_of_name,
    spec,
)
from anodet.store import reproducibility
from anodet.store.core import (
    FEATURE_SET_DIR,
    FORMAT_VERSION,
    MANIFEST,
    Store,
    StoreError,
    default_root,
    file_hashes,
    write_store,
)
from anodet.store.swap import StoreLock, checkpoint, commit, new_staging, recover
from anodet.training import estimates
from anodet.training.hyperparams import chosen_params
from anodet.training.names import (
    all_names,
    expand_names,
    plugin_kinds,
    retrain_reasons,
    say_what_is_trained,
    with_dependents,
)

logger = logging.getLogger(__name__)

LIBRARIES = ("numpy", "pandas", "scikit-learn", "keras", "tensorflow-cpu", "tensorflow")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return versions


Progress = Callable[[int, int, str], None]
"""``progress(done, total, detector)``: called before each detector is fitted and once at the end (done == total)."""


@dataclass
class Corpus:
    """What a training learns from: splits, the feature sets over them, and the label views they are judged under.

    ``splits`` are the dataset's parts (:class:`anodet.datasets.model.Splits`; a view whose validation
    part has no labels gets only the unlabelled threshold presets). ``labelled()`` gives (rows,
    1 = attack) for the supervised ceiling, or None when there are no labels.
    ``row_caps`` bounds the training rows per detector kind (large user datasets);
    ``skip`` names detector kinds left out, each with the reason.
    """

    splits: Splits
    specs: dict[str, FeatureSetSpec]
    views: tuple[str, ...] = LABEL_VIEWS
    data: dict[str, Any] = field(default_factory=lambda: {"split": SPLIT_NAME})
    labelled: Callable[[], tuple[pd.DataFrame, np.ndarray] | None] | None = None
    row_caps: dict[str, int] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # top-level manifest keys (label_views, default_preset)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # parameter changes per kind (large data)
    protocol: str = "normal-only"  # or "unsupervised": fit on every training row, anomalies included

    def names(self) -> list[str]:
        """Every detector a full training on this corpus writes, in the order shown."""
        return [qualified(kind, fs) for fs in self.specs for kind in REGISTRY if kind not in self.skip]


def kdd_corpus(source: str | None = None) -> Corpus:
    """The KDD Cup 99 splits with the built-in feature sets and both label views."""
    splits = load_splits(source)
    return Corpus(splits, dict(BUILTIN), LABEL_VIEWS, {"split": SPLIT_NAME}, lambda: labelled_pair(splits, "true"))


def labelled_pair(splits: Splits, view: str) -> tuple[pd.DataFrame, np.ndarray] | None:
    """(rows, 1 = anomaly) the supervised ceiling learns from, or None without labels of both classes."""
    part = splits.labelled_train()
    y = part.label(view) if part is not None else None
    if part is None or y is None or len(np.unique(y)) < 2:
        return None
    return part.rows, y


@dataclass
class SetData:
    """One feature set, fitted, and the splits transformed by it."""

    feature_set: FeatureSet
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    labelled: tuple[np.ndarray, np.ndarray] | None = None  # (rows, 1 = attack) for supervised kinds


def prepare(splits: Splits, sets: list[str], train_rows: int | None, seed: int, labelled: bool,
            corpus: Corpus | None = None) -> dict[str, SetData]:
    """Fit each feature set on the training normals and transform every split with it.

    ``corpus`` (default: KDD's) gives the feature sets' declarations and the labelled rows.
    """
    out = {}
    pairs = None
    train = splits.train.rows if corpus is None or corpus.protocol == "unsupervised" else _normal_rows(splits.train)
    for name in sets:
        fs = FeatureSet.fit(corpus.specs[name] if corpus else spec(name), train)
        X_train = fs.transform_frame(train)
        if train_rows and train_rows < len(X_train):
            X_train = X_train[np.random.default_rng(seed).choice(len(X_train), train_rows, replace=False)]
        pair = None
        if labelled:
            if corpus is None:
                got = labelled_pair(splits, "true")
            else:
                got = pairs = pairs or (corpus.labelled() if corpus.labelled else None)
            if got is not None:
                pair = (fs.transform_frame(got[0]), got[1])
        out[name] = SetData(fs, X_train, fs.transform_frame(splits.validation.rows),
                            fs.transform_frame(splits.test.rows), pair)
    return out


def _normal_rows(part: Part) -> pd.DataFrame:
    """The rows a normal-only protocol fits on: the part's label-0 rows (every row when it has no labels)."""
    if not part.labels:
        return part.rows
    y = next(iter(part.labels.values()))
    return part.rows if not y.any() else part.rows[y == 0].reset_index(drop=True)


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{v:.7g}") for v in values]


UNLABELLED_PRESETS = ("mean_3sigma", "target_fpr", "contamination")
"""The threshold presets that need no labels: chosen on validation rows all taken as normal."""


def unlabelled_presets(val_scores: np.ndarray) -> dict[str, float]:
    """The presets of :data:`UNLABELLED_PRESETS` from validation scores with no labels (all taken as normal)."""
    presets = metrics.threshold_presets(val_scores, np.zeros(len(val_scores), dtype=np.int8))
    return {k: presets[k] for k in UNLABELLED_PRESETS}


def evaluate_scores(val_scores: np.ndarray, test_scores: np.ndarray, splits: Splits,
                    views: tuple[str, ...] = LABEL_VIEWS) -> dict[str, Any]:
    """Thresholds, validation quantiles and metrics for one detector, for each label view.

    A view whose validation split has no labels (``splits.labels`` gives None) gets only the
    unlabelled presets, and metrics only where the test split has labels.
    """
    thresholds: dict[str, Any] = {}
    quantiles: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {"validation": {}, "test": {}}
    for view in views:
        y_val, y_test = splits.labels("validation", view), splits.labels("test", view)
        if y_val is None:
            thresholds[view] = unlabelled_presets(val_scores)
            all_q = _rounded(np.quantile(val_scores, metrics.QUANTILE_PROBS))
            quantiles[view] = {"normal": all_q, "all": all_q}
            if y_test is not None:
                results["test"][view] = metrics.summary(y_test, test_scores, thresholds[view]["mean_3sigma"])
            continue
        presets = metrics.threshold_presets(val_scores, y_val)
        thresholds[view] = presets
        quantiles[view] = {
            "normal": _rounded(np.quantile(val_scores[y_val == 0], metrics.QUANTILE_PROBS)),
            "all": _rounded(np.quantile(val_scores, metrics.QUANTILE_PROBS)),
        }
        chosen = presets["best_f1"]
        results["validation"][view] = metrics.summary(y_val, val_scores, chosen)
        if y_test is not None:
            results["test"][view] = metrics.summary(y_test, test_scores, chosen)
    return {"thresholds": thresholds, "validation_quantiles": quantiles, "metrics": results}


def train(
    names: list[str] | None = None,
    seed: int = 0,
    source: str | None = None,
    store_root: Path | None = None,
    train_rows: int | None = None,
    epochs: int | None = None,
    log=print,
    lock_timeout: float | None = None,
    feature_sets: list[str] | None = None,
    corpus: Corpus | None = None,
    progress: Progress | None = None,
    named: str = "named",
) -> dict[str, Any]:
    """Train ``names`` (default: all, on every feature set) and write them into the store; return the manifest.

    A name is a kind (``pca``: on each of ``feature_sets``) or a stored name (``pca@kdd41``).
    Detectors not named keep their existing entries, so one can be retrained alone; a detector
    built on a retrained one (the ensemble) is refitted in the same run. ``lock_timeout``: how
    long to wait for another training writing the same store (None: until it ends; 0: refuse).
    ``corpus``: what to train on (default: the KDD splits from ``source`` and the built-in feature
    sets). ``progress``: see :data:`Progress`. ``named``: how ``names`` were asked for, in the reasons printed
    for each detector trained ("in the quick preset").
    """
    root = Path(store_root) if store_root else default_root()
    asked = list(names or [])
    if corpus is None:
        names = expand_names(names, feature_sets)
        corpus = kdd_corpus(source)
        builtin = True
    else:
        extra = plugin_kinds(names)
        names = expand_names(names, None, [*corpus.names(), *(qualified(k, fs) for fs in corpus.specs for k in extra)])
        builtin = False
    splits = corpus.splits
    everything = corpus.names()

    with StoreLock(root).held(lock_timeout):
        checkpoint("locked")
        recover(root)
        previous = _previous_store(root, names, splits, log, everything)
        reasons = retrain_reasons(asked, names, named)
        names, dependents = with_dependents(names, previous, [*everything, *(n for n in names if n not in everything)])
        reasons.update(dependents)
        kept = [n for n in (previous.names if previous else []) if n not in names]
        say_what_is_trained(names, reasons, kept, seed, bool(asked), log)
        sets_used = [fs for fs in corpus.specs if any(set_of_name(n) == fs for n in [*names, *kept])]
        supervised = any(detector_class(kind_of(n)).uses_labels for n in names)
        data = prepare(splits, sets_used, train_rows, seed, supervised, None if builtin else corpus)
        rows = len(next(iter(data.values())).train)
        _say_estimate(names, data, corpus, epochs, log)
        logger.info("store %s: training %s (seed %d), keeping %s", root, ", ".join(names), seed,
                    ", ".join(n for n in (previous.names if previous else []) if n not in names) or "nothing")
        staging = new_staging(root)
        try:
            manifest = _kept_part(staging, previous, names)
            sets_json = {}
            for fs_name, got in data.items():
                path = got.feature_set.save(staging / FEATURE_SET_DIR / f"{fs_name}.json")
                relpath = path.relative_to(staging).as_posix()
                sets_json[fs_name] = {"file": relpath, "sha256": file_hashes(staging, [path])[relpath]}
            manifest.update({
                "format": FORMAT_VERSION,
                "data": {**corpus.data, "checksums": splits.checksums, "train_rows": rows,
                         "validation_rows": len(splits.validation), "test_rows": len(splits.test)},
                "versions": {**library_versions(), "blas": reproducibility.blas()},
                "reproducibility": reproducibility.section(),
                "feature_sets": sets_json,
                **corpus.extra,
            })
            seconds = _train_into(staging, manifest, names, previous, seed, epochs, data, splits, log, corpus,
                                  progress)
            order = everything
            manifest["detectors"] = dict(sorted(manifest["detectors"].items(),
                                                key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
            kept_seconds = reproducibility.fit_seconds(previous.root, previous.manifest) if previous else {}
            reproducibility.write_run(staging, {n: seconds[n] if n in seconds else kept_seconds[n]
                                                for n in manifest["detectors"] if n in seconds or n in kept_seconds})
            new_hash = write_store(staging, manifest)
            checkpoint("staged")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        commit(staging, root, new_hash, previous.hash if previous else None)
        logger.info("store %s: swapped in the new store (manifest sha256 %s)", root, new_hash[:12])
        log(f"wrote {root / MANIFEST} ({len(manifest['detectors'])} detectors)")
    return manifest


def _say_estimate(names: list[str], data: dict[str, SetData], corpus: Corpus, epochs: int | None, log) -> None:
    """Each detector's expected fit time, before the first fit; and the quick preset's when this run is slower."""
    shapes = {fs: (got.train.shape[0], got.train.shape[1]) for fs, got in data.items()}
    labelled = next((len(got.labelled[0]) for got in data.values() if got.labelled is not None), None)

    def guess(which: list[str]) -> estimates.Estimate:
        return estimates.estimate(which, shapes, lambda n: params_for(n, corpus, epochs), corpus.row_caps, labelled)

    try:
        for line in guess(names).lines():
            log(line)
        quick = [n for n in names if kind_of(n) in estimates.preset_kinds("quick")]
        if quick and any(kind_of(n) in NEURAL for n in names):
            log(f"  (--preset quick trains the {len(quick)} classical detectors only: about "
                f"{estimates.fmt_seconds(guess(quick).total)})")
    except (OSError, ValueError, KeyError) as exc:  # an estimate is a guide: never a reason not to train
        log(f"no fit-time estimate ({exc})")


def _previous_store(root: Path, names: list[str], splits: Splits, log, known: list[str] | None = None) -> Store | None:
    """The store being updated, or None to start afresh; refuses when a partial retrain would drop detectors."""
    if not (root / MANIFEST).exists():
        return None
    everything = set(names) >= set(known if known is not None else all_names())
    try:
        previous = Store.open(root)
    except StoreError as exc:
        if everything:
            log(f"  the store at {root} cannot be read, so it is rebuilt from scratch ({exc})")
            return None
        raise StoreError(f"Retraining only {', '.join(names)} would drop the other detectors of a store that cannot "
                         f"be read: {exc}") from None
    if previous.manifest["data"]["checksums"] != splits.checksums:
        if everything:
            log(f"  the store at {root} was built from other data; every detector is retrained")
            return None
        raise StoreError(f"The store at {root} was built from other data (its checksums differ from the data loaded "
                         f"now), so retraining only {', '.join(names)} would mix the two; run `python -m anodet train` "
                         f"to retrain every detector on this data.")
    for name in previous.names:
        if name not in names:
            try:
                previous._checked_folder(name, previous.entry(name)["files"])
            except StoreError as exc:
                raise StoreError(f"Cannot keep {name!r} from the store at {root}; retrain it too "
                                 f"(`--detectors {','.join([*names, name])}`). {exc}") from None
    return previous


def _kept_part(staging: Path, previous: Store | None, names: list[str]) -> dict[str, Any]:
    """A manifest holding the stored detectors not retrained now, their (verified) files copied into ``staging``."""
    manifest: dict[str, Any] = {"detectors": {}}
    if previous is None:
        return manifest
    for name in previous.names:
        if name in names:
            continue
        entry = previous.entry(name)
        for relpath in entry["files"]:
            target = staging / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(previous.root / relpath, target)
        manifest["detectors"][name] = entry
    return manifest


def _reloaded(name: str, detector: Detector, folder: Path, log) -> Detector:
    """A plug-in as a store will load it (refitted, or rebuilt from its state), so a plug-in that cannot be
    stored faithfully is refused now rather than when it is first used."""
    start = time.perf_counter()
    try:
        reloaded = type(detector).load(folder)
    except Exception as exc:  # the plug-in's own code: any failure is one sentence naming it
        raise StoreError(f"{name} cannot be stored faithfully, so no store was written: "
                         f"{exc if isinstance(exc, PluginError) else f'{type(exc).__name__}: {exc}'}.") from None
    info = plugin_info(reloaded)
    how = "refitted from its stored rows" if info["mode"] == "refit" else "rebuilt from its stored state"
    log(f"  {name}: a plug-in, {how} in {time.perf_counter() - start:.1f}s with the same scores")
    return reloaded


def _finite_or_none(value: Any) -> Any:
    """Metrics as JSON allows them: an undefined metric (NaN) becomes null."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def params_for(name: str, corpus: Corpus | None = None, epochs: int | None = None) -> dict[str, Any]:
    """The parameters detector ``name`` is trained with: the chosen ones for its feature set, the corpus's changes
    for large data, and ``epochs`` (exactly that many, no early stopping) when given."""
    kind, fs_name = kind_of(name), set_of_name(name)
    params = chosen_params(kind, fs_name)
    if corpus and kind in corpus.params:
        params.update(corpus.params[kind])
    if epochs and "epochs" in detector_class(kind).default_params:
        params["epochs"] = epochs  # exactly these epochs: a quick run, so no early stopping on small data
        params["early_stopping"] = False
    return params


def _train_into(staging: Path, manifest: dict[str, Any], names: list[str], previous: Store | None, seed: int,
                epochs: int | None, data: dict[str, SetData], splits: Splits, log, corpus: Corpus | None = None,
                progress: Progress | None = None) -> dict[str, float]:
    """Fit each of ``names`` (members before the detectors built on them), add its entry to ``manifest``;
    return each one's fit seconds (kept out of the manifest: see :mod:`anodet.store.reproducibility`)."""
    fitted: dict[str, Detector] = {}
    seconds_of: dict[str, float] = {}
    views = corpus.views if corpus else LABEL_VIEWS
    caps = corpus.row_caps if corpus else {}
    bar = tqdm(names, desc="training", unit="detector", disable=not sys.stderr.isatty())
    for done, name in enumerate(bar):
        bar.set_postfix_str(name)
        if progress:
            progress(done, len(names), name)
        kind, fs_name = kind_of(name), set_of_name(name)
        got = data[fs_name]
        X_train, X_val, X_test = got.train, got.validation, got.test
        subsampled = None
        cap = caps.get(kind)
        if cap and len(X_train) > cap:
            subsampled = len(X_train)
            X_train = X_train[np.sort(np.random.default_rng(seed).choice(len(X_train), cap, replace=False))]
        params = params_for(name, corpus, epochs)
        detector = create(kind, seed=seed, **params)
        if detector.members:
            qualified_members = [qualified(m, fs_name) for m in detector.members]
            members = {m: fitted[m] if m in fitted or previous is None else previous.detector(m)
                       for m in qualified_members if m in fitted or m in manifest["detectors"]}
            if not members:
                log(f"  {name}: skipped (none of its members is trained)")
                continue
            params["members"] = [m for m in qualified_members if m in members]
            detector = create(kind, seed=seed, **params)
            detector.attach(members)
        log(f"training {name} ...")
        start = time.perf_counter()
        if detector.uses_labels:
            assert got.labelled is not None
            detector.fit(*got.labelled)
        elif is_plugin(detector):
            try:
                detector.fit(X_train)
            except Exception as exc:  # the plug-in's own code: one sentence naming it
                raise StoreError(f"The plug-in {name} failed to fit ({type(exc).__name__}: {exc}), so no store was "
                                 "written; check its parameters.") from None
        else:
            detector.fit(X_train)
        seconds = time.perf_counter() - start
        folder = staging / name
        shutil.rmtree(folder, ignore_errors=True)
        files = detector.save(folder)
        plugin = plugin_info(detector) if is_plugin(detector) else None
        if plugin is not None:
            detector = _reloaded(name, detector, folder, log)
        val_scores, test_scores = detector.decision_function(X_val), detector.decision_function(X_test)
        if not (np.isfinite(val_scores).all() and np.isfinite(test_scores).all()):
            raise StoreError(f"{name} gave NaN or infinite scores after training, so no store was written; "
                             f"check its parameters or the training data.")
        entry = {
            "class": REGISTRY.get(kind) or getattr(type(detector), "plugin_target", ""),
            "display_name": f"{detector.display_name} · {fs_name}",
            "family": detector.family,
            "feature_set": fs_name,
            "files": file_hashes(staging, files),
            "params": detector.params,
            "seed": seed,
            "train_rows": len(got.labelled[0]) if detector.uses_labels and got.labelled else len(X_train),
            **_finite_or_none(evaluate_scores(val_scores, test_scores, splits, views)),
        }
        if subsampled and not detector.uses_labels:
            entry["subsampled_from"] = subsampled
        if plugin is not None:
            entry["plugin"] = plugin
        if detector.training_:  # neural: which epochs ran and why (anodet.detectors.epochs)
            entry["training"] = detector.training_
        if detector.members:  # what it was fitted on: loading refuses it once a member changes
            entry["members"] = {m: dict(manifest["detectors"][m]["files"]) for m in detector.members}
        manifest["detectors"][name] = entry
        fitted[name] = detector
        seconds_of[name] = seconds
        aucs = [f"{view} {entry['metrics']['test'][view]['roc_auc']:.4f}" for view in views
                if entry["metrics"]["test"].get(view, {}).get("roc_auc") is not None]
        note = f" (on {len(X_train):,} of {subsampled:,} rows)" if subsampled and not detector.uses_labels else ""
        log(f"  {name}: trained in {seconds:.1f}s{note}; "
            + (f"test ROC AUC {', '.join(aucs)}" if aucs else "no test labels, so no ROC AUC"))
    if progress:
        progress(len(names), len(names), "")
    return seconds_of
