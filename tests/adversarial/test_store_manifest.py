"""A manifest that is wrong in shape or content, or points outside the store, is one clear refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from anodet.store import core as store_core
from anodet.store.core import MANIFEST, Store, StoreError, write_store
from anodet.store.manifest import KEY_ENV, SIGNATURE
from tests.conftest import ROOT


@pytest.fixture
def copy(tmp_path) -> Path:
    """A private copy of the committed store (the detectors are not loaded, so this is cheap)."""
    root = tmp_path / "store"
    shutil.copytree(ROOT / "models_store", root)
    return root


def edit(root: Path, change) -> None:
    manifest = json.loads((root / MANIFEST).read_text())
    change(manifest)
    (root / MANIFEST).write_text(json.dumps(manifest))


def refusal(root: Path) -> str:
    with pytest.raises(StoreError) as caught:
        Store.open(root)
    message = str(caught.value)
    assert "\n" not in message and "python -m anodet train" in message
    return message


def _set(path: list[str], value):
    def change(manifest):
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _rename_file(detector: str, new: str):
    def change(manifest):
        files = manifest["detectors"][detector]["files"]
        files[new] = files.pop(f"{detector}/state.npz")
    return change


BAD = {
    "nan_threshold": (_set(["detectors", "pca", "thresholds", "true", "best_f1"], float("nan")), "NaN"),
    "infinite_threshold": (_set(["detectors", "pca", "thresholds", "true", "best_f1"], float("inf")), "Infinity"),
    "text_threshold": (_set(["detectors", "pca", "thresholds", "true", "best_f1"], "abc"),
                       "at detectors.pca.thresholds.true.best_f1"),
    "bool_threshold": (_set(["detectors", "pca", "thresholds", "reference", "best_f1"], True), "best_f1"),
    "text_quantile": (lambda m: m["detectors"]["lof"]["validation_quantiles"]["true"]["all"].__setitem__(3, "x"),
                      "at detectors.lof.validation_quantiles.true.all: item 3, 'x', is not a number"),
    "detectors_null": (_set(["detectors"], None), "at detectors: null is not of type 'object'"),
    "entry_is_text": (_set(["detectors", "pca"], "pca"), "at detectors.pca"),
    "no_feature_sets": (lambda m: m.pop("feature_sets"), "'feature_sets' is a required property"),
    "unknown_feature_set": (_set(["detectors", "pca", "feature_set"], "nope"), "uses feature set 'nope'"),
    "other_sets_folder": (_rename_file("pca", "pca@kdd41/state.npz"), "detector pca lists pca@kdd41/state.npz"),
    "unknown_detector": (_set(["detectors", "bogus"], {}), "bogus"),
    "hash_not_hex": (_set(["detectors", "zscore", "files", "zscore/state.npz"], "abc"), "zscore"),
    "no_files": (_set(["detectors", "zscore", "files"], {}), "at detectors.zscore.files"),
    "params_not_listed": (lambda m: m["detectors"]["zscore"]["files"].pop("zscore/params.json"), "params.json"),
    "path_climbs_out": (_rename_file("pca", "pca/../../../etc/passwd"), "at detectors.pca.files"),
    "absolute_path": (_rename_file("pca", "/etc/passwd"), "at detectors.pca.files"),
    "other_detectors_folder": (_rename_file("pca", "zscore/state.npz"), "at detectors.pca.files"),
    "feature_set_outside": (_set(["feature_sets", "kdd18", "file"], "../kdd18.json"), "at feature_sets.kdd18.file"),
    "ensemble_contains_itself": (lambda m: (m["detectors"]["ensemble"]["params"]["members"].append("ensemble"),
                                            m["detectors"]["ensemble"]["members"].update(
                                                {"ensemble": m["detectors"]["ensemble"]["files"]})),
                                 "an ensemble cannot contain itself (ensemble → ensemble)"),
    "member_hashes_missing": (lambda m: m["detectors"]["ensemble"].pop("members"), "'members' is a required"),
    "old_format": (_set(["format"], 1), "has format 1, expected 3"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_manifest_is_one_sentence_with_the_rebuild_hint(copy, case):
    change, expected = BAD[case]
    edit(copy, change)
    assert expected in refusal(copy)


def test_a_huge_number_is_not_read_as_infinity(copy):
    raw = (copy / MANIFEST).read_text()
    entry = json.loads(raw)["detectors"]["pca"]["thresholds"]["true"]["best_f1"]
    (copy / MANIFEST).write_text(raw.replace(repr(entry), "1e999", 1))
    assert "1e999 is out of range" in refusal(copy)


def test_the_committed_store_passes_its_own_schema_and_hashes():
    Store.open(ROOT / "models_store").verify()


def test_a_file_the_manifest_does_not_list_is_never_loaded(copy):
    """The loader reads fixed names; a model file dropped from the list (then replaced) must not load unchecked."""
    edit(copy, lambda m: m["detectors"]["pca"]["files"].pop("pca/state.npz"))
    (copy / "pca" / "state.npz").write_bytes((copy / "zscore" / "state.npz").read_bytes())
    store = Store.open(copy)
    with pytest.raises(StoreError, match=r"pca/state.npz is in the store but not listed in manifest.json"):
        store.detector("pca")
    with pytest.raises(StoreError, match="not listed"):
        store.verify()


def test_an_extra_file_in_a_detector_folder_is_refused(copy):
    (copy / "kmeans" / "extra.npz").write_bytes(b"x")
    with pytest.raises(StoreError, match=r"kmeans/extra\.npz is in the store but not listed"):
        Store.open(copy).detector("kmeans")


def test_a_symlink_out_of_the_store_is_refused_before_it_is_opened(copy, tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere.npz"
    shutil.move(copy / "pca" / "state.npz", outside)  # same bytes, so only the location is wrong
    (copy / "pca" / "state.npz").symlink_to(outside)
    opened = []
    real = store_core.sha256_file
    monkeypatch.setattr(store_core, "sha256_file", lambda p: opened.append(Path(p)) or real(p))
    with pytest.raises(StoreError, match="resolves outside the store"):
        Store.open(copy).detector("pca")
    assert all(p.resolve() != outside.resolve() for p in opened)


def test_a_symlinked_detector_folder_out_of_the_store_is_refused(copy, tmp_path):
    shutil.move(copy / "zscore", tmp_path / "zscore")
    (copy / "zscore").symlink_to(tmp_path / "zscore")
    with pytest.raises(StoreError, match="resolves outside the store"):
        Store.open(copy).detector("zscore")


def _swap_weights(root: Path) -> None:
    """What someone who can write the folder can do: swap two weight files and update the hashes."""
    a, b = root / "pca" / "state.npz", root / "mahalanobis" / "state.npz"
    raw_a, raw_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(raw_b)
    b.write_bytes(raw_a)

    def change(manifest):
        pca, maha = manifest["detectors"]["pca"]["files"], manifest["detectors"]["mahalanobis"]["files"]
        pca["pca/state.npz"], maha["mahalanobis/state.npz"] = maha["mahalanobis/state.npz"], pca["pca/state.npz"]
    edit(root, change)


def test_sha256_alone_does_not_stop_someone_who_can_write_the_folder(copy):
    """Documented limit: the hashes catch corruption, not a consistent edit of files and manifest."""
    _swap_weights(copy)
    Store.open(copy).verify()  # every hash matches: accepted


def test_a_signed_manifest_catches_the_same_edit(copy, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "a secret only the trainer has")
    write_store(copy, json.loads((copy / MANIFEST).read_text()))  # sign the committed manifest
    Store.open(copy).verify()
    _swap_weights(copy)
    with pytest.raises(StoreError, match=f"does not match its signature under {KEY_ENV}"):
        Store.open(copy)
    monkeypatch.setenv(KEY_ENV, "another key")
    with pytest.raises(StoreError, match="signature"):
        Store.open(copy)


def test_an_unsigned_store_is_refused_when_a_key_is_set(copy, monkeypatch):
    assert not (copy / SIGNATURE).exists()
    monkeypatch.setenv(KEY_ENV, "k")
    with pytest.raises(StoreError, match=f"has no {SIGNATURE}"):
        Store.open(copy)
