"""Save and load the pretrained detectors with ``manifest.json``; hash checks; safe formats only."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from anodet.detectors import REGISTRY, Detector, detector_class
from anodet.scaler import MinMaxScaler

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STORE_ENV = "ANODET_STORE"
MANIFEST = "manifest.json"
SCALER_FILE = "scaler.npz"
FORMAT_VERSION = 1
TRAIN_HINT = "Run `python -m anodet train` to rebuild the store, or `git checkout models_store` to restore the committed one."


class StoreError(RuntimeError):
    """The model store is missing, incomplete, tampered with or unreadable."""


def default_root() -> Path:
    """``$ANODET_STORE`` or the committed ``models_store/``."""
    return Path(os.environ.get(STORE_ENV) or PROJECT_ROOT / "models_store")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Store:
    """A read-only view of a model store; detectors load lazily, each file hash-checked first."""

    def __init__(self, root: Path, manifest: dict[str, Any], manifest_hash: str) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.hash = manifest_hash
        self._detectors: dict[str, Detector] = {}
        self._scaler: MinMaxScaler | None = None

    @classmethod
    def open(cls, root: Path | None = None) -> Store:
        """Read the manifest of the store at ``root`` (default: :func:`default_root`)."""
        root = Path(root) if root else default_root()
        path = root / MANIFEST
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"No model store at {root} ({MANIFEST} is missing). {TRAIN_HINT}") from None
        try:
            manifest = json.loads(raw)
            manifest["detectors"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{path} is not a valid anodet manifest ({exc}). {TRAIN_HINT}") from None
        if manifest.get("format") != FORMAT_VERSION:
            raise StoreError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT_VERSION}. {TRAIN_HINT}")
        return cls(root, manifest, hashlib.sha256(raw).hexdigest())

    @property
    def names(self) -> list[str]:
        """Detector names in the store, in registry order."""
        return [n for n in REGISTRY if n in self.manifest["detectors"]]

    def entry(self, name: str) -> dict[str, Any]:
        try:
            return self.manifest["detectors"][name]
        except KeyError:
            raise StoreError(
                f"Detector {name!r} is not in the store at {self.root}; it holds {', '.join(self.names)}. "
                f"Run `python -m anodet train --detectors {name}` to add it."
            ) from None

    def _verified(self, relpath: str, expected: str) -> Path:
        path = self.root / relpath
        if not path.is_file():
            raise StoreError(f"Model file {path} is missing. {TRAIN_HINT}")
        actual = sha256_file(path)
        if actual != expected:
            raise StoreError(
                f"Model file {path} does not match its sha256 in {MANIFEST} (it was modified or is "
                f"corrupt); refusing to load it. {TRAIN_HINT}"
            )
        return path

    @property
    def scaler(self) -> MinMaxScaler:
        if self._scaler is None:
            info = self.manifest["scaler"]
            path = self._verified(info["file"], info["sha256"])
            try:
                self._scaler = MinMaxScaler.load(path)
            except (OSError, ValueError, KeyError) as exc:
                raise StoreError(f"Cannot read the scaler {path}: {exc}. {TRAIN_HINT}") from None
        return self._scaler

    def detector(self, name: str) -> Detector:
        """The fitted detector ``name``, loaded on first use."""
        if name not in self._detectors:
            entry = self.entry(name)
            for relpath, digest in entry["files"].items():
                self._verified(relpath, digest)
            try:
                detector = detector_class(name).load(self.root / name)
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(f"Cannot load detector {name!r} from {self.root / name}: {exc}. {TRAIN_HINT}") from None
            if detector.members:
                detector.attach({m: self.detector(m) for m in detector.members})
            self._detectors[name] = detector
        return self._detectors[name]

    def score_raw(self, name: str, X_raw: np.ndarray) -> np.ndarray:
        """Scores of raw (unscaled) feature rows."""
        return self.detector(name).score(self.scaler.transform(X_raw))

    def thresholds(self, name: str, view: str) -> dict[str, float]:
        """Threshold presets chosen on the validation split for a label view."""
        return dict(self.entry(name)["thresholds"][view])

    def default_threshold(self, name: str, view: str) -> float:
        return float(self.entry(name)["thresholds"][view]["best_f1"])

    def quantiles(self, name: str, view: str, kind: str = "normal") -> np.ndarray:
        """Validation score quantiles (``kind`` "normal" or "all") at ``evaluate.QUANTILE_PROBS``."""
        return np.asarray(self.entry(name)["validation_quantiles"][view][kind])


def write_store(root: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (files must already be in place and listed with their hashes)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def file_hashes(root: Path, files: list[Path]) -> dict[str, str]:
    """``{path relative to root: sha256}`` for files written into the store."""
    return {Path(f).relative_to(root).as_posix(): sha256_file(Path(f)) for f in files}
