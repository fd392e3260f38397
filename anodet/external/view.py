"""The one place external detectors join a store: what pages and ``evaluate`` compare.

:func:`with_externals` wraps a store in a :class:`WithExternals` view whose detector names, manifest
entries, thresholds, quantiles and metrics include the dataset's external detectors (kind "external"),
and whose :meth:`~WithExternals.external_scores` give their kept scores on the test and validation
splits. Everything that compares detectors reads the store's ordinary interface, so an external one
is shown like a built-in one; everything that scores new records asks for ``store.scorable`` (or
loads a detector, which an external one does not have) and leaves it out with one sentence.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from anodet.datasets.catalog import KDD
from anodet.datasets.errors import DatasetError
from anodet.external.kept import KIND, External, list_externals
from anodet.features.encoding import InputEncoder
from anodet.features.sets import FeatureSet
from anodet.store.core import Store, StoreError


def dataset_of(store: Store) -> str:
    """The dataset a store was trained on: a user dataset's name, or KDD's key."""
    return str((store.manifest.get("data") or {}).get("dataset") or KDD)


def not_scorable(name: str) -> str:
    """The sentence for an external detector asked to score records."""
    return (f"{name} is an external detector (scores made elsewhere for the dataset's test split), so it cannot score "
            "new records; it is compared on every page and in evaluate.")


class WithExternals(Store):
    """A store seen with its dataset's external detectors beside the stored ones (read-only, like the store)."""

    def __init__(self, base: Store, externals: list[External], left_out: dict[str, str]) -> None:
        detectors = {**base.manifest["detectors"], **{e.name: e.entry for e in externals}}
        digest = hashlib.sha256((base.hash + "".join(f"|{e.name}:{e.digest}" for e in externals)).encode())
        super().__init__(base.root, {**base.manifest, "detectors": detectors},
                         digest.hexdigest() if externals else base.hash)
        self.base = base
        self._detectors, self._feature_sets, self._encoders = base._detectors, base._feature_sets, base._encoders
        self.externals = {e.name: e for e in externals}
        self.left_out = left_out
        """External detectors that cannot be shown, each with the reason."""

    @property
    def names(self) -> list[str]:
        return [*self.base.names, *self.externals]

    @property
    def scorable(self) -> list[str]:
        return self.base.names

    def is_external(self, name: str) -> bool:
        return name in self.externals

    def feature_set_of(self, name: str) -> str:
        return KIND if name in self.externals else self.base.feature_set_of(name)

    def feature_set_for(self, detector: str) -> FeatureSet:
        """A stored detector's feature set; for an external one (which reads no features) the store's widest, so a
        page can still show a record's columns and where they sit among normal training records."""
        if detector not in self.externals:
            return self.base.feature_set_for(detector)
        return max((self.base.feature_set(fs) for fs in self.base.feature_sets), key=lambda fs: len(fs.raw_columns))

    def feature_set(self, name: str) -> FeatureSet:
        return self.base.feature_set(name)

    def encoder(self, names: list[str] | None = None) -> InputEncoder:
        return self.base.encoder([n for n in (names or self.base.names) if n not in self.externals])

    def detector(self, name: str) -> Any:
        if name in self.externals:
            raise StoreError(not_scorable(name))
        return self.base.detector(name)

    def default_threshold(self, name: str, view: str) -> float:
        entry = self.entry(name)
        return float(entry["thresholds"][view][entry.get("default_preset") or self.default_preset])

    def verify(self) -> None:
        self.base.verify()
        for external in self.externals.values():
            external.arrays  # noqa: B018  # reading checks the sha256

    def external_scores(self, split: str, record_ids: Any = None) -> dict[str, np.ndarray]:
        """Each external detector's kept scores on ``split`` (those without validation scores are absent there).

        ``record_ids`` (the split's :attr:`~anodet.datasets.model.Part.record_id`): checked against the ids the
        scores were kept for, so a score never lands on another record.
        """
        out = {}
        for name, external in self.externals.items():
            try:
                got = external.scores(split)
            except (DatasetError, OSError, ValueError) as exc:
                raise StoreError(f"The external detector {name} cannot be read: {exc}") from None
            if got is None:
                continue
            ids, scores = got
            if record_ids is not None and not np.array_equal(ids, np.asarray(record_ids).astype(str)):
                raise StoreError(f"The {split} records of dataset {external.dataset} are not those {name}'s scores "
                                 f"were matched to; add them again with `python -m anodet external add {name} "
                                 f"--dataset {external.dataset} --scores FILE --replace`.")
            scores.flags.writeable = False
            out[name] = scores
        return out


def with_externals(store: Store) -> Store:
    """``store`` with its dataset's external detectors (the store itself when there are none).

    An external detector is left out (``left_out`` says why) when it was matched to other splits than the ones
    the store was trained on (the dataset changed since), or a stored detector has its name.
    """
    if isinstance(store, WithExternals):
        return store
    dataset = dataset_of(store)
    kept, left_out = [], {}
    checksums = (store.manifest.get("data") or {}).get("checksums")
    for external in list_externals(dataset):
        if external.name in store.manifest["detectors"]:
            left_out[external.name] = "a stored detector has the same name"
        elif external.doc.get("checksums") != checksums:
            left_out[external.name] = (f"dataset {dataset} changed since its scores were added (or the store was "
                                       "trained on other data); add them again with --replace")
        else:
            kept.append(external)
    if not kept and not left_out:
        return store
    return WithExternals(store, kept, left_out)
