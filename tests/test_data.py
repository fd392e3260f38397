"""The KDD splits: counts, label views, and clear failures on missing or corrupt raw files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from anodet.datasets import kdd
from anodet.datasets.kdd import DataError, fetch_raw, load_splits
from anodet.datasets.kdd_schema import RAW_COLUMNS
from tests.conftest import kdd_frame

SHARED = Path(kdd.default_source())


def test_training_set_is_every_normal_record_of_the_10_percent_file(splits):
    assert len(kdd_frame(splits.train)) == 97_278
    assert list(splits.train.rows.columns) == list(RAW_COLUMNS)
    assert not splits.train.label("true").any()  # normal records, label 0 in both views


def test_kdd_8020_has_the_reference_counts(splits):
    test = kdd_frame(splits.test)
    assert len(test) == 10_000
    assert (test["label_reference"] == 0).sum() == 8_000
    assert (test["label_reference"] == 1).sum() == 2_000


def test_reference_inliers_hide_1896_novel_attacks(splits):
    inliers = kdd_frame(splits.test)[kdd_frame(splits.test)["label_reference"] == 0]
    assert (inliers["category"] == "novel").sum() == 1_896
    assert (inliers["label_true"] == 1).sum() == 1_896
    # Under the true view every non-normal record is an attack.
    assert ((kdd_frame(splits.test)["attack"] != "normal") == (kdd_frame(splits.test)["label_true"] == 1)).all()


def test_validation_is_a_fifth_of_each_reference_class_and_disjoint_from_test(splits):
    val = kdd_frame(splits.validation)
    assert (val["label_reference"] == 0).sum() == 15_864
    assert (val["label_reference"] == 1).sum() == 46_341
    assert not set(val.index) & set(kdd_frame(splits.test).index)


def test_categories_are_the_known_ones(splits):
    assert set(kdd_frame(splits.test)["category"]) <= {"normal", "dos", "probe", "r2l", "u2r", "novel"}
    novel = kdd_frame(splits.test).loc[kdd_frame(splits.test)["category"] == "novel", "attack"]
    assert {"snmpgetattack", "mailbomb"} <= set(novel)


def _copy_raw(tmp_path: Path) -> Path:
    folder = tmp_path / "kdd"
    folder.mkdir()
    for path in fetch_raw(str(SHARED)).values():
        shutil.copy(path, folder / path.name)
    return folder


def test_missing_file_names_what_is_missing_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv(kdd.CACHE_ENV, str(tmp_path / "cache"))
    folder = _copy_raw(tmp_path)
    (folder / "corrected.gz").unlink()
    with pytest.raises(DataError) as err:
        load_splits(str(folder))
    message = str(err.value)
    assert "corrected.gz" in message and str(folder) in message and kdd.SOURCE_ENV in message


def test_partial_file_is_refused_with_a_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(kdd.CACHE_ENV, str(tmp_path / "cache"))
    folder = _copy_raw(tmp_path)
    target = folder / "kddcup.data_10_percent.gz"
    target.write_bytes(target.read_bytes()[:100_000])
    with pytest.raises(DataError, match="partial or corrupt"):
        load_splits(str(folder))


def test_altered_content_fails_the_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv(kdd.CACHE_ENV, str(tmp_path / "cache"))
    folder = _copy_raw(tmp_path)
    (folder / "training_attack_types.txt").write_text("smurf dos\n")
    with pytest.raises(DataError, match="sha256"):
        load_splits(str(folder))


@pytest.mark.slow
def test_cache_is_rebuilt_when_the_raw_files_change(tmp_path, monkeypatch):
    monkeypatch.setenv(kdd.CACHE_ENV, str(tmp_path / "cache"))
    folder = _copy_raw(tmp_path)
    first = load_splits(str(folder))
    assert kdd._read_cache() is not None
    attack_types = folder / "training_attack_types.txt"
    attack_types.write_bytes(attack_types.read_bytes())  # same content, new mtime
    assert kdd._read_cache() is None  # stale: will be rebuilt (and verified) on next load
    again = load_splits(str(folder))
    assert np.array_equal(first.test.record_id, again.test.record_id)


def test_raw_lines_parse_labels_without_the_trailing_dot():
    line = ("0,tcp,http,SF,181,5450," + ",".join(["0"] * 16) + ",8,8" + ",0.00" * 7 + ",9,9"
            + ",1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00" + ",smurf.\n")
    frame = kdd.parse_raw_lines(line.encode())
    assert frame.loc[0, "label"] == "smurf"
    assert frame.shape == (1, 42)


def test_gzip_helper_round_trip(tmp_path):
    # The raw reader accepts any valid gzip stream, whatever the header timestamp.
    raw = next(r for r in kdd.RAW_FILES if r.key == "attack_types")
    content = fetch_raw(str(SHARED))["attack_types"].read_bytes()
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(content, mtime=123))
    assert gzip.decompress(gz.read_bytes()) == content
    assert kdd._verify(fetch_raw(str(SHARED))["attack_types"], raw) == content
