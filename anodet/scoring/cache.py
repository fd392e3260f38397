"""Every detector's scores on a split, and the comparison tables computed from them, kept on disk between
dashboard runs (git-ignored, under data/cache).

The dashboard needs every stored detector's scores on the test (and validation) split before it
can draw; computing them costs seconds on a fresh server. They are kept keyed by the store's
manifest hash, the splits' checksums and the scoring code (the bytes of the modules that compute
scores), so a retrained store, rebuilt splits or a change to how records are scored never reuse old
scores.
``python -m anodet data`` (part of ``run.sh``'s set-up) and ``python -m anodet train`` fill the
cache for the KDD store, so the first server after either does not score at all; the dashboard
fills it otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import anodet.detectors as detectors_package
from anodet.datasets.kdd import cache_root

SPLITS = ("test", "validation")


@functools.cache
def scoring_code_stamp() -> str:
    """A digest of the modules that compute scores (the detectors, the encoding of raw records and the
    scoring routine): scores cached by other code are not reused."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    modules = [*sorted(Path(detectors_package.__file__).parent.glob("*.py")), package / "features" / "encoding.py",
               package / "scoring" / "core.py"]
    for module in modules:
        digest.update(module.name.encode() + module.read_bytes())
    return digest.hexdigest()


def path_for(manifest_hash: str, checksums: dict[str, str], split: str = "test") -> Path:
    """Where one store's scores on one split are kept."""
    stamp = manifest_hash + json.dumps(checksums, sort_keys=True) + scoring_code_stamp()
    key = hashlib.sha256(stamp.encode()).hexdigest()[:20]
    return cache_root() / "cache" / f"{split}-scores-{key}.npz"


def read(path: Path, index: np.ndarray, names: list[str]) -> dict[str, np.ndarray] | None:
    """Scores saved earlier for exactly these records and detectors, else None."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            if not np.array_equal(saved["__index__"], index) or set(saved.files) != {"__index__", *names}:
                return None
            return {n: saved[n].astype(np.float64) for n in names}
    except (OSError, ValueError, KeyError):
        return None


def write(path: Path, scores: dict[str, np.ndarray], index: np.ndarray) -> None:
    """Keep scores for the next run (best effort: a read-only disk only costs time)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, __index__=index, **scores)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
        tmp.replace(path)
    except OSError:
        pass


def split_scores(store: Any, splits: Any, split: str,
                 score: Callable[[Any], dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], bool]:
    """(every detector's scores on ``split``, whether they were computed now): from the cache, or
    ``score(frame)`` (which loads what it needs) and then kept."""
    frame = splits.part(split).rows
    index = frame.index.to_numpy()
    path = path_for(store.hash, splits.checksums, split)
    scores = read(path, index, store.names)
    if scores is not None:
        return scores, False
    scores = score(frame)
    write(path, scores, index)
    return scores, True


def fill(store: Any, splits: Any) -> dict[str, float]:
    """Score and keep every split the dashboard reads that is not cached yet; seconds spent per split."""
    import time

    from anodet.scoring.core import score_frame

    spent = {}
    for split in SPLITS:
        start = time.perf_counter()
        _, computed = split_scores(store, splits, split,
                                   lambda frame: score_frame(store, frame))
        if computed:
            spent[split] = time.perf_counter() - start
    return spent


def kept_table(store: Any, splits: Any, name: str, params: dict[str, Any], code: list[Path],
               compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """A table computed from the store's scores on the splits (one numeric or boolean column per statistic, one row
    per detector), read back when the same store, splits, ``params`` and ``code`` (the modules that compute it)
    made it before, else ``compute()`` and kept: the Overview's intervals come back with the scores."""
    stamp = json.dumps([store.hash, splits.checksums, scoring_code_stamp(), name, params], sort_keys=True)
    digest = hashlib.sha256(stamp.encode())
    for module in code:
        digest.update(module.read_bytes())
    path = cache_root() / "cache" / f"{name}-{digest.hexdigest()[:20]}.npz"
    try:
        with np.load(path, allow_pickle=False) as saved:
            index = saved["__index__"].astype(str)
            return pd.DataFrame({c: saved[c] for c in saved.files if c != "__index__"},
                                index=pd.Index(index, name="name"))
    except (OSError, ValueError, KeyError):
        pass
    table = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # two servers never write one file
        columns = {str(c): table[c].to_numpy() for c in table.columns}
        np.savez(tmp, __index__=table.index.to_numpy(dtype=str), **columns)
        tmp.replace(path)
    except OSError:
        pass
    return table
