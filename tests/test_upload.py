"""What the Score a CSV page keeps of an upload: a fair sample, the true top rows, results on disk."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pyarrow as pa

from anodet.datasets.kdd_schema import FEATURES
from anodet.evaluation.thresholds import resolve_thresholds
from anodet.scoring import uploads
from tests.conftest import kdd_frame


def test_sample_is_uniform_and_keeps_scores_aligned_with_labels():
    sample = uploads.Sample(2_000, ["a"], seed=1)
    for start in range(0, 200_000, 7_000):
        values = np.arange(start, min(start + 7_000, 200_000), dtype=float)
        labels = np.where(values % 2 == 0, "normal", "smurf")
        sample.add({"a": values}, labels)
    kept = sample.scores["a"]
    assert len(kept) == 2_000 and sample.seen == 200_000
    assert abs(kept.mean() - 100_000) < 5_000  # uniform over the whole input, not its head
    y = sample.labels_of("reference")
    np.testing.assert_array_equal(y, (kept.astype(np.int64) % 2 == 1).astype(float))


def test_top_rows_are_the_highest_flagged_across_chunks():
    top = uploads.TopRows(["a"], keep=5)
    rng = np.random.default_rng(0)
    everything = []
    for _ in range(4):
        s = rng.random(100)
        everything.append(s)
        top.add(pa.table({"row": np.arange(len(everything) * 100 - 100, len(everything) * 100), "score_a": s,
                          "flag_a": s > 0.5}))
    want = np.sort(np.concatenate(everything))[::-1][:5]
    np.testing.assert_allclose(top.table("a").column("score_a").to_numpy(), want)  # highest first


def test_score_upload_writes_every_row_to_disk_and_keeps_little(store, splits, tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "uploads_dir", lambda: tmp_path)
    frame = kdd_frame(splits.test).iloc[:3000][list(FEATURES)].copy()
    frame["label"] = kdd_frame(splits.test).iloc[:3000]["attack"].to_numpy()
    data = gzip.compress(frame.to_csv(index=False).encode())
    names = ["pca", "zscore"]
    result = uploads.score_upload(io.BytesIO(data), "u.csv.gz", store, names,
                                 resolve_thresholds(store, names, None, "reference"))
    written = pd.read_csv(io.BytesIO(result.results_bytes()), compression="gzip")
    assert written["row"].tolist() == list(range(1, 3001))
    assert len(result.sample.scores["pca"]) == 3000
    assert result.top.table("pca").num_rows == min(uploads.TOP_ROWS, result.summary.flagged["pca"])
    assert result.top.table("pca").column("row").to_pylist() == (
        written[written["flag_pca"] == True].sort_values("score_pca", ascending=False, kind="stable")  # noqa: E712
        ["row"].head(uploads.TOP_ROWS).tolist())
    again = uploads.score_upload(io.BytesIO(data), "u.csv.gz", store, names,
                                resolve_thresholds(store, names, None, "reference"), previous=result)
    assert not result.results_path.exists() and again.results_path.exists()  # one file per session


def test_uploads_wait_for_a_free_scorer(store, splits, tmp_path, monkeypatch):
    """However many sessions upload at once, at most CONCURRENT_SCORINGS score at the same time."""
    import threading

    monkeypatch.setattr(uploads, "uploads_dir", lambda: tmp_path)
    held = [uploads._SLOTS.acquire(timeout=5) for _ in range(uploads.CONCURRENT_SCORINGS)]
    assert all(held)
    waited = threading.Event()
    data = kdd_frame(splits.test).iloc[:50][list(FEATURES)].to_csv(index=False).encode()
    done: list = []
    worker = threading.Thread(target=lambda: done.append(uploads.score_upload(
        io.BytesIO(data), "w.csv", store, ["pca"], {"pca": 0.0}, waiting=waited.set)))
    worker.start()
    assert waited.wait(10) and not done  # it waits while every slot is taken
    uploads._SLOTS.release()
    worker.join(30)
    for _ in range(uploads.CONCURRENT_SCORINGS - 1):
        uploads._SLOTS.release()
    assert done and done[0].summary.rows_scored == 50


def test_old_results_are_cleaned_up_and_nothing_else(store, splits, tmp_path, monkeypatch):
    """A new upload deletes results (and interrupted scorings' temporary files) over a day old, never a file
    anodet did not write that happens to sit in the uploads folder."""
    import os
    import time

    monkeypatch.setattr(uploads, "uploads_dir", lambda: tmp_path)
    day_ago = time.time() - uploads.KEEP_FILES_S - 60
    old = {name: tmp_path / name for name in ("0" * 32 + ".csv.gz", "f" * 32 + ".csv.part.gz", "backup.csv.gz",
                                             "notes.txt")}
    for path in old.values():
        path.write_bytes(b"x")
        os.utime(path, (day_ago, day_ago))
    data = kdd_frame(splits.test).iloc[:10][list(FEATURES)].to_csv(index=False).encode()
    uploads.score_upload(io.BytesIO(data), "u.csv", store, ["zscore"], {"zscore": 1.0})
    assert sorted(p.name for p in old.values() if p.exists()) == ["backup.csv.gz", "notes.txt"]
