"""Save and load the pretrained detectors with ``manifest.json``; hash checks; safe formats only.

The manifest is validated against one schema when read (:mod:`anodet.store.manifest`); a store left
half-swapped by an interrupted training is recovered when opened (:mod:`anodet.store.swap`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from anodet import PROJECT_ROOT
from anodet.detectors import REGISTRY, Detector, detector_class, plugins
from anodet.features.encoding import InputEncoder
from anodet.features.sets import FeatureSet, kind_of
from anodet.store.manifest import (
    FORMAT_VERSION,
    KEY_ENV,
    MANIFEST,
    SIGNATURE,
    TRAIN_HINT,
    StoreError,
    check_signature,
    default_preset,
    dump,
    label_views,
    parse,
    signature,
)
from anodet.store.swap import StoreLock, leftovers, recover, sibling, wait_for_swap

__all__ = ["FEATURE_SET_DIR", "FORMAT_VERSION", "MANIFEST", "STORE_ENV", "TRAIN_HINT", "Store", "StoreError",
           "default_root", "file_hashes", "sha256_file", "write_store"]

logger = logging.getLogger(__name__)


STORE_ENV = "ANODET_STORE"
FEATURE_SET_DIR = "featuresets"


def default_root() -> Path:
    """``$ANODET_STORE`` or the committed ``models_store/``."""
    return Path(os.environ.get(STORE_ENV) or PROJECT_ROOT / "models_store")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _recover_if_needed(root: Path) -> None:
    """Finish a swap an interrupted training left, unless a training is running right now."""
    if not sibling(root, "swap.json").exists() and not leftovers(root):
        return
    lock = StoreLock(root)
    try:
        acquired = lock.try_acquire()
    except OSError:  # a read-only location: read what is there, or name what is left
        acquired = False
        if not (root / MANIFEST).exists():
            raise StoreError(f"The store {root} is missing and cannot be recovered here (no write access); an "
                             f"interrupted training left {', '.join(map(str, leftovers(root)))}.") from None
        return
    if not acquired:  # a training is running: read what is there (or wait out its swap, a few ms)
        if wait_for_swap(root):
            return
        raise StoreError(f"The store {root} is being replaced by a training ({lock.holder()}); try again when it "
                         f"has finished.")
    try:
        recover(root)
    finally:
        lock.release()


class Store:
    """A read-only view of a model store; detectors load lazily, each file hash-checked first."""

    def __init__(self, root: Path, manifest: dict[str, Any], manifest_hash: str) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.hash = manifest_hash
        self._detectors: dict[str, Detector] = {}
        self._feature_sets: dict[str, FeatureSet] = {}
        self._encoders: dict[tuple[str, ...], InputEncoder] = {}

    @property
    def train_hint(self) -> str:
        """How to rebuild this store: KDD's (train, or restore the committed one) or a user dataset's."""
        dataset = (self.manifest.get("data") or {}).get("dataset") if isinstance(self.manifest, dict) else None
        if dataset:
            return f"Run `python -m anodet train --dataset {dataset}` to retrain this dataset's store."
        return TRAIN_HINT

    @classmethod
    def open(cls, root: Path | None = None) -> Store:
        """Read and validate the manifest of the store at ``root`` (default: :func:`default_root`)."""
        root = Path(root) if root else default_root()
        _recover_if_needed(root)
        path = root / MANIFEST
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise StoreError(f"No model store at {root} ({MANIFEST} is missing). {TRAIN_HINT}") from None
        check_signature(root, raw)
        return cls(root, parse(raw, path), hashlib.sha256(raw).hexdigest())

    @property
    def names(self) -> list[str]:
        """Detector names in the store: feature set by feature set, each in registry order."""
        order = {kind: i for i, kind in enumerate(REGISTRY)}
        sets = {fs: i for i, fs in enumerate(self.feature_sets)}
        return sorted(self.manifest["detectors"],
                      key=lambda n: (sets.get(self.feature_set_of(n), len(sets)), order.get(kind_of(n), len(order))))

    @property
    def label_views(self) -> list[str]:
        """The label views thresholds and metrics are kept under: KDD's ``reference`` and ``true``, or a user
        dataset's one view, ``label``."""
        return label_views(self.manifest)

    @property
    def default_preset(self) -> str:
        """The threshold preset detectors flag at by default: ``best_f1``, or for a store trained without labels
        an unlabelled one (``mean_3sigma``)."""
        return default_preset(self.manifest)

    @property
    def labelled(self) -> bool:
        """Were thresholds chosen on labelled validation rows (so ROC/PR curves and best-F1 exist)?"""
        return bool(self.manifest["data"].get("labelled", True))

    @property
    def feature_sets(self) -> list[str]:
        """The feature sets of the store, in manifest order."""
        return list(self.manifest["feature_sets"])

    def feature_set_of(self, name: str) -> str:
        """The feature set detector ``name`` was trained on."""
        return str(self.entry(name)["feature_set"])

    def uses_labels(self, name: str) -> bool:
        """Was ``name`` trained on labels (the supervised ceiling: a reference row, never a detector)?"""
        return self.entry(name)["family"] == "supervised"

    def feature_set(self, name: str) -> FeatureSet:
        """The fitted feature set ``name`` (hash-checked when first read)."""
        if name not in self._feature_sets:
            try:
                info = self.manifest["feature_sets"][name]
            except KeyError:
                raise StoreError(f"Feature set {name!r} is not in the store at {self.root}; it holds "
                                 f"{', '.join(self.feature_sets)}.") from None
            path = self._verified(info["file"], info["sha256"])
            try:
                fitted = FeatureSet.load(path)
            except (OSError, ValueError) as exc:
                raise StoreError(f"Cannot read the feature set {path}: {exc}. {self.train_hint}") from None
            if fitted.name != name:
                raise StoreError(f"{path} holds feature set {fitted.name!r}, but {MANIFEST} lists it as {name!r}. "
                                 f"{self.train_hint}")
            self._feature_sets[name] = fitted
        return self._feature_sets[name]

    def feature_set_for(self, detector: str) -> FeatureSet:
        """The fitted feature set detector ``detector`` takes its input from."""
        return self.feature_set(self.feature_set_of(detector))

    def encoder(self, names: list[str] | None = None) -> InputEncoder:
        """The input encoder for the feature sets that ``names`` (default: every detector) use."""
        wanted = {self.feature_set_of(n) for n in (names or self.names)}
        key = tuple(fs for fs in self.feature_sets if fs in wanted)
        if key not in self._encoders:
            self._encoders[key] = InputEncoder([self.feature_set(fs) for fs in key])
        return self._encoders[key]

    def entry(self, name: str) -> dict[str, Any]:
        try:
            return self.manifest["detectors"][name]
        except KeyError:
            raise StoreError(
                f"Detector {name!r} is not in the store at {self.root}; it holds {', '.join(self.names)}. "
                f"Run `python -m anodet train --detectors {name}` to add it."
            ) from None

    def _inside(self, path: Path, listed: str) -> Path:
        """``path``, refused before it is opened if it resolves outside the store (a symlink, say)."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise StoreError(f"{MANIFEST} in {self.root} lists {listed}, which resolves outside the store (to "
                             f"{resolved}); refusing to open it. {self.train_hint}")
        return path

    def _verified(self, relpath: str, expected: str) -> Path:
        path = self._inside(self.root / relpath, relpath)
        if not path.is_file():
            raise StoreError(f"Model file {path} is missing. {self.train_hint}")
        if sha256_file(path) != expected:
            try:
                replaced = hashlib.sha256((self.root / MANIFEST).read_bytes()).hexdigest() != self.hash
            except OSError:
                replaced = True
            if replaced:
                raise StoreError(f"The store at {self.root} was replaced (by a training) after it was opened; "
                                 f"open it again (restart the app or rerun the command).")
            raise StoreError(
                f"Model file {path} does not match its sha256 in {MANIFEST} (it was modified or is "
                f"corrupt); refusing to load it. {self.train_hint}"
            )
        return path

    def _checked_folder(self, name: str, files: dict[str, str]) -> Path:
        """``name``'s folder once every file in it is listed in the manifest and matches its hash.

        Loaders read fixed file names from the folder, so a file they read but the manifest does
        not list would escape the hash check: such a folder is refused.
        """
        folder = self._inside(self.root / name, name)
        for relpath, digest in files.items():
            self._verified(relpath, digest)
        present = {p.relative_to(self.root).as_posix() for p in folder.rglob("*")
                   if p.is_symlink() or not p.is_dir()}
        unlisted = sorted(present - set(files))
        if unlisted:
            raise StoreError(f"{self.root / unlisted[0]} is in the store but not listed in {MANIFEST}, so it cannot "
                             f"be verified; refusing to load {name!r}. Delete the file, or: {self.train_hint}")
        return folder

    def detector(self, name: str) -> Detector:
        """The fitted detector ``name``, loaded on first use with the members it is built on."""
        return self._load(name, ())

    def _load(self, name: str, loading: tuple[str, ...]) -> Detector:
        if name in self._detectors:
            return self._detectors[name]
        if name in loading:
            raise StoreError(f"An ensemble cannot contain itself ({' → '.join([*loading, name])}). {self.train_hint}")
        entry = self.entry(name)
        folder = self._checked_folder(name, entry["files"])
        try:
            cls = detector_class(kind_of(name)) if kind_of(name) in REGISTRY else plugins.bind_entry(kind_of(name),
                                                                                                  entry)
        except plugins.PluginError as exc:
            raise StoreError(f"Detector {name!r} is a plug-in that cannot be used here: {exc}") from None
        try:
            detector = cls.load(folder)
        except Exception as exc:  # any loader failure is a store problem, told as one sentence
            raise StoreError(f"Cannot load detector {name!r} from {folder}: {exc}. {self.train_hint}") from None
        if detector.members != entry["params"].get("members", []):
            raise StoreError(f"{folder} was saved with members {detector.members}, but {MANIFEST} lists "
                             f"{entry['params'].get('members', [])}. {self.train_hint}")
        for member in detector.members:
            if member not in self.manifest["detectors"]:
                raise StoreError(f"Detector {name!r} is built on {member!r}, which is not in the store at {self.root}; "
                                 f"run `python -m anodet train --detectors {member}` (it refits {name} too).")
            if entry["members"][member] != self.entry(member)["files"]:
                raise StoreError(f"Detector {name!r} was fitted on an older {member!r} (the {member} files it recorded "
                                 f"differ from the store's), so its scores would be on the wrong scale; run "
                                 f"`python -m anodet train --detectors {name}` to refit it.")
        detector.attach({m: self._load(m, (*loading, name)) for m in detector.members})
        self._detectors[name] = detector
        return detector

    def is_external(self, name: str) -> bool:
        """Is ``name`` an external detector (scores made elsewhere, :mod:`anodet.external`)? Never in a plain store."""
        return False

    @property
    def scorable(self) -> list[str]:
        """The detectors that can score new records: every stored one (a view with external scores leaves those out)."""
        return self.names

    def external_scores(self, split: str, record_ids: Any = None) -> dict[str, np.ndarray]:
        """External detectors' scores on a split of the dataset (none in a plain store; see :mod:`anodet.external`)."""
        return {}

    def verify(self) -> None:
        """Check every listed file against its hash without loading any model (StoreError if one fails)."""
        for info in self.manifest["feature_sets"].values():
            self._verified(info["file"], info["sha256"])
        for name in self.names:
            self._checked_folder(name, self.entry(name)["files"])

    def score_raw(self, name: str, rows: Any) -> np.ndarray:
        """Scores of raw rows straight from the detector (no saturation box): a DataFrame of raw columns, or
        for a feature set without categorical columns a numeric matrix in its column order."""
        fs = self.feature_set_for(name)
        X = fs.transform(rows) if isinstance(rows, np.ndarray) else fs.transform_frame(rows)
        return self.detector(name).decision_function(X)

    def thresholds(self, name: str, view: str) -> dict[str, float]:
        """Threshold presets chosen on the validation split for a label view."""
        return dict(self.entry(name)["thresholds"][view])

    def default_threshold(self, name: str, view: str) -> float:
        return float(self.entry(name)["thresholds"][view][self.default_preset])

    def quantiles(self, name: str, view: str, kind: str = "normal") -> np.ndarray:
        """Validation score quantiles (``kind`` "normal" or "all") at ``evaluate.QUANTILE_PROBS``."""
        return np.asarray(self.entry(name)["validation_quantiles"][view][kind])


def write_store(root: Path, manifest: dict[str, Any]) -> str:
    """Write ``manifest.json`` (validated; signed if ``$ANODET_STORE_KEY`` is set); return its sha256.

    The files must already be in place and listed with their hashes.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    raw = dump(manifest)
    key = os.environ.get(KEY_ENV)
    if key:
        (root / SIGNATURE).write_text(signature(raw, key) + "\n")
    tmp = root / (MANIFEST + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(root / MANIFEST)
    return hashlib.sha256(raw).hexdigest()


def file_hashes(root: Path, files: list[Path]) -> dict[str, str]:
    """``{path relative to root: sha256}`` for files written into the store."""
    return {Path(f).relative_to(root).as_posix(): sha256_file(Path(f)) for f in files}
