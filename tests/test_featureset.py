"""Feature sets: a declaration fitted on training normals, stored, and the only place inputs are built."""

from __future__ import annotations

import io

import numpy as np
import pytest

from anodet.datasets.kdd_schema import FEATURES, RAW_COLUMNS
from anodet.features.sets import OTHER, ColumnSpec, FeatureSet, FeatureSetSpec
from anodet.scoring.files import score_source
from tests.conftest import kdd_frame


def test_a_third_feature_set_is_a_declaration_not_code(splits, tmp_path):
    spec = FeatureSetSpec("tiny", "bytes and protocol", (ColumnSpec("src_bytes", "log"),
                                                         ColumnSpec("protocol_type", "categorical"),
                                                         ColumnSpec("serror_rate", "numeric")))
    fitted = FeatureSet.fit(spec, kdd_frame(splits.train))
    assert fitted.raw_columns == ["src_bytes", "protocol_type", "serror_rate"]
    assert fitted.encoded_names[-1] == f"protocol_type={OTHER}" and fitted.width == 2 + len(
        fitted.categories["protocol_type"]) + 1
    X = fitted.transform_frame(kdd_frame(splits.test))
    assert X.shape == (len(kdd_frame(splits.test)), fitted.width) and X.dtype == np.float32
    # Training normals land in [0, 1]; the one-hot block has exactly one 1 per row.
    train = fitted.transform_frame(kdd_frame(splits.train))
    assert train[:, :2].min() >= 0 and train[:, :2].max() <= 1
    np.testing.assert_array_equal(X[:, 2:].sum(axis=1), 1.0)
    loaded = FeatureSet.load(fitted.save(tmp_path / "tiny.json"))
    np.testing.assert_array_equal(loaded.transform_frame(kdd_frame(splits.test)), X)
    assert loaded.digest() == fitted.digest()


def test_a_malformed_feature_set_file_is_one_sentence(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "anodet-featureset/1", "name": "x"}')
    with pytest.raises(ValueError, match="lacks or garbles"):
        FeatureSet.load(path)


def test_kdd18_is_the_reference_scaling(store, splits):
    fs = store.feature_set("kdd18")
    assert fs.raw_columns == list(FEATURES) and fs.width == 18 and not fs.categorical_columns
    raw = kdd_frame(splits.train)[list(FEATURES)].to_numpy(np.float64)
    span = raw.max(axis=0) - raw.min(axis=0)
    expected = (kdd_frame(splits.test)[list(FEATURES)].to_numpy() - raw.min(axis=0)) / np.where(span > 0, span, 1.0)
    np.testing.assert_allclose(fs.transform_frame(kdd_frame(splits.test)), expected.astype(np.float32), rtol=1e-6)


def test_unseen_categories_go_to_other_and_are_counted(store, splits):
    rows = kdd_frame(splits.test).iloc[:200][list(RAW_COLUMNS)].copy()
    rows.loc[rows.index[:7], "service"] = "never_seen_service"
    data = rows.to_csv(index=False).encode()
    summary = score_source(io.BytesIO(data), store, ["pca@kdd41", "pca"],
                           {"pca@kdd41": 1e9, "pca": 1e9}, name="t.csv")
    fs = store.feature_set("kdd41")
    already = int((~rows["service"].iloc[7:].isin(fs.categories["service"])).sum())  # services no normal used
    assert summary.unseen_categories["service"] == 7 + already and summary.rows_scored == 200
    assert "Categories never seen in training" in " ".join(summary.lines())
    # The unseen value scores exactly as the 'other' bucket would.
    other = fs.transform_frame(rows.iloc[:1])
    assert other[0, fs.encoded_names.index(f"service={OTHER}")] == 1.0


def test_an_18_column_header_scores_the_kdd18_detectors_and_says_which_it_skipped(store, splits):
    data = kdd_frame(splits.test).iloc[:100][list(FEATURES)].to_csv(index=False).encode()
    names = ["pca", "pca@kdd41", "ocsvm@kdd41"]
    tables = []
    summary = score_source(io.BytesIO(data), store, names, dict.fromkeys(names, 1.0), name="t.csv",
                           sink=tables.append)
    assert summary.names == ["pca"] and summary.rows_scored == 100
    assert summary.skipped_detectors.startswith("Skipped pca@kdd41, ocsvm@kdd41 (feature set kdd41; they need duration")
    assert [c for c in tables[0].column_names if c.startswith("score_")] == ["score_pca"]


def test_raw_kdd_lines_score_every_feature_set_and_the_supervised_ceiling(store):
    import gzip

    from anodet.datasets.kdd import fetch_raw

    with gzip.open(fetch_raw()["test"], "rb") as fh:
        raw_test_lines = [fh.readline().rstrip(b"\n") for _ in range(300)]
    names = store.names
    tables = []
    summary = score_source(io.BytesIO(b"\n".join(raw_test_lines[:300])), store, names, dict.fromkeys(names, 0.5),
                           name="raw", sink=tables.append)
    assert summary.names == names and not summary.skipped_detectors
    columns = [c for c in tables[0].column_names if c.startswith("score_")]
    assert {"score_autoencoder", "score_autoencoder@kdd41", "score_supervised",
            "score_supervised@kdd41"} <= set(columns)
    assert all(np.isfinite(tables[0].column(c).to_numpy()).all() for c in columns)
