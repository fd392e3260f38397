"""The dashboard's score cache: reused only for the same records, detectors and store; filled by `anodet data`."""

from __future__ import annotations

import numpy as np

from anodet.datasets.model import Splits
from anodet.scoring import cache
from anodet.scoring.core import score_frame

RNG = np.random.default_rng(0)


def test_saved_scores_are_reused_only_for_the_same_records_and_detectors(tmp_path):
    path = tmp_path / "scores.npz"
    scores = {"a": RNG.normal(size=5), "b": RNG.normal(size=5)}
    index = np.arange(10, 15)
    cache.write(path, scores, index)
    back = cache.read(path, index, ["a", "b"])
    assert back is not None and all(np.array_equal(back[n], scores[n]) for n in scores)
    assert cache.read(path, index[::-1], ["a", "b"]) is None  # other records
    assert cache.read(path, index, ["a", "b", "c"]) is None  # another detector set
    assert cache.read(tmp_path / "missing.npz", index, ["a"]) is None


def test_fill_scores_each_split_once_and_the_dashboard_reads_the_same_scores(store, splits, tmp_path, monkeypatch):
    monkeypatch.setenv("ANODET_DATA_DIR", str(tmp_path))
    small = Splits(splits.train, splits.validation.take(np.arange(150)), splits.test.take(np.arange(200)),
                   dict(splits.checksums))
    assert set(cache.fill(store, small)) == {"test", "validation"}  # scored now
    assert cache.fill(store, small) == {}  # kept: nothing to score the second time
    assert {p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.npz")} == {"test", "validation"}

    def must_not_score(frame):
        raise AssertionError("the cache should have been read")

    cached, computed = cache.split_scores(store, small, "test", must_not_score)
    expected = score_frame(store, small.test.rows)  # as the dashboard scores
    assert not computed and set(cached) == set(store.names)
    for name in store.names:
        np.testing.assert_array_equal(cached[name], expected[name])
    other = Splits(small.train, small.validation, small.test, {**small.checksums, "test": "rebuilt"})
    assert set(cache.fill(store, other)) == {"test", "validation"}  # other splits: scored again
    monkeypatch.setattr(cache, "scoring_code_stamp", lambda: "scored by other code")
    assert set(cache.fill(store, other)) == {"test", "validation"}  # changed scoring code: scored again
