"""The one scoring routine: a store and raw feature rows in, every chosen detector's scores out.

Used by the leaderboard, the dashboard, the file pipeline and the stream alike, so a record gets
the same score whichever way it arrives. Also here: how inputs for a store are read
(:func:`input_schema`), so a stream needs this module only, not the file pipeline.

Rows arrive as one matrix over the raw columns the chosen detectors' feature sets need
(:class:`anodet.features.encoding.InputEncoder`); each feature set turns it into its detectors' input.

*Fail closed.* A record far outside a feature set's training range (any feature more than
:data:`SATURATION_RANGES` training ranges beyond it, or so large it overflows) is scored
``+inf`` by every detector on that set: it is flagged at any finite threshold. Detectors only
ever see rows inside that box, where each one returns finite scores. A row the reader marks as
failing closed (an infinite value, text that is not UTF-8: :mod:`anodet.reader.parse`) is scored
``+inf`` by every detector (:func:`fail_closed`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from anodet.features.encoding import SATURATION_RANGES
from anodet.features.sets import kind_of
from anodet.reader.errors import InputError, listed
from anodet.reader.layout import InputSchema

logger = logging.getLogger(__name__)

__all__ = ["SATURATION_RANGES", "Scorer", "Scores", "default_detectors", "input_schema", "plan", "score_frame",
           "score_rows"]

DEFAULT_EXCLUDED: tuple[str, ...] = ("lof", "seq2seq")
"""Detectors left out by default when scoring files: they score far slower than the rest."""

CACHE_ROWS = 200_000
"""Distinct feature vectors whose scores are remembered across chunks (network records repeat)."""
DISTINCT_RECHECK = 8
"""After a nearly all-distinct batch, one batch in this many is checked for repeated rows."""
RECHECK_MIN_ROWS = 4_096
"""Only a batch at least this big stands for the batches after it."""

_COST_ORDER = ("lof", "seq2seq", "ocsvm", "autoencoder", "vae", "bigan", "iforest")


def default_detectors(available: list[str]) -> list[str]:
    """The default selection for scoring files: every stored detector but the slow ones."""
    return [n for n in available if kind_of(n) not in DEFAULT_EXCLUDED]


@dataclass
class Scores:
    """Scores of a batch of rows: per detector, and per row whether it is outside the training range."""

    by_detector: dict[str, np.ndarray]
    out_of_range: np.ndarray  # any feature outside the training range (still scored)
    saturated: np.ndarray  # far outside: scored +inf by every detector


def fail_closed(scores: Scores, closed: np.ndarray) -> Scores:
    """``scores`` with the ``closed`` rows scored +inf by every detector: a record whose values cannot
    be taken as they are is the most anomalous, never skipped."""
    closed = np.asarray(closed, dtype=bool)
    if not closed.any():
        return scores
    return Scores({n: np.where(closed, np.inf, s) for n, s in scores.by_detector.items()}, scores.out_of_range,
                  scores.saturated)


def input_schema(store: Any) -> InputSchema | None:
    """How inputs for ``store`` are read: None (KDD's columns and label rule) for the KDD store; for a
    user dataset's store its numeric feature columns, and its label column and normal values."""
    from anodet.features.sets import BUILTIN
    from anodet.reader import InputSchema

    if all(name in BUILTIN for name in store.feature_sets):
        return None
    numeric = frozenset(c for name in store.feature_sets for c in store.feature_set(name).numeric_columns)
    dataset = (store.manifest.get("data") or {}).get("dataset")
    label = None
    if dataset:
        from anodet.datasets import userdata

        try:
            label = userdata.load(dataset).label
        except userdata.DatasetError:  # the declaration is gone: score without reading labels
            label = None
    if not label:
        return InputSchema(numeric)
    return InputSchema(numeric, label["column"], frozenset(v.strip() for v in label["normal"]))


def plan(store: Any, names: list[str]) -> tuple[list[str], list[str]]:
    """(base detectors to score, combined detectors computed from their members), in scoring order.

    A detector with declared members (the ensemble) is computed from its members' scores, so a
    member that is also chosen is scored once.
    """
    combined = [n for n in names if store.detector(n).members]
    base = list(dict.fromkeys([*(n for n in names if n not in combined),
                               *(m for n in combined for m in store.detector(n).members)]))
    base.sort(key=lambda n: _COST_ORDER.index(kind_of(n)) if kind_of(n) in _COST_ORDER else len(_COST_ORDER))
    return base, combined


def encode(store: Any, rows: Any, names: list[str]) -> np.ndarray:
    """``rows`` as the encoded matrix of ``names``' feature sets: a DataFrame or mapping of raw
    columns is encoded; an array is taken as already encoded (columns in the encoder's order)."""
    encoder = store.encoder(names)
    if isinstance(rows, np.ndarray):
        if rows.ndim != 2 or rows.shape[1] != encoder.width:
            raise ValueError(f"expected rows of {encoder.width} columns ({', '.join(encoder.columns)}), "
                             f"got shape {rows.shape}")
        return np.asarray(rows, dtype=np.float64)
    return encoder.encode_frame(rows)


def score_rows(store: Any, rows: Any, names: list[str] | None = None,
               seconds: dict[str, float] | None = None) -> Scores:
    """Every named detector's scores (default: all stored) for raw rows.

    ``rows``: a DataFrame (or mapping) of raw columns, or the matrix ``store.encoder(names)``
    encodes them to. Each detector spreads a large batch over the cores itself (row blocks in a
    thread pool, :mod:`anodet.detectors.parallel`), so detectors run one after another: running two
    at once would only make their threads compete for the same cores. ``seconds`` (optional)
    accumulates the time per base detector.
    """
    names = list(names or store.names)
    base, combined = plan(store, names)
    M = encode(store, rows, names)
    encoder = store.encoder(names)
    n = len(M)
    out_of_range = np.zeros(n, dtype=bool)
    any_saturated = np.zeros(n, dtype=bool)
    inputs = {}
    for fs in encoder.sets:
        got = _transform(encoder, M, fs)
        inputs[fs] = got
        out_of_range |= got.out_of_range
        any_saturated |= got.saturated
    raw: dict[str, np.ndarray] = {}

    def score_one(name: str) -> None:
        got = inputs[store.feature_set_of(name)]
        t0 = time.perf_counter()
        raw[name] = np.asarray(store.detector(name).decision_function(got.X), dtype=np.float64)
        if seconds is not None:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0

    for name in base:
        score_one(name)
    for name in combined:
        raw[name] = np.asarray(store.detector(name).score_from_members(raw), dtype=np.float64)
    by_detector = {}
    for name in names:
        saturated = inputs[store.feature_set_of(name)].saturated
        full = np.full(n, np.inf)
        full[~saturated] = raw[name]
        by_detector[name] = full
    if any_saturated.any():
        logger.info("%d row(s) far outside the training range scored +inf", int(any_saturated.sum()))
    return Scores(by_detector, out_of_range, any_saturated)


def _transform(encoder: Any, M: np.ndarray, feature_set: str) -> Any:
    """``encoder.transform(M, feature_set)`` in row blocks on every core (it works row by row: the same result)."""
    from anodet.detectors.parallel import map_blocks
    from anodet.features.encoding import SetInput

    parts = map_blocks(lambda block: encoder.transform(block, feature_set), M)
    if len(parts) == 1:
        return parts[0]
    return SetInput(np.concatenate([p.X for p in parts]), np.concatenate([p.out_of_range for p in parts]),
                    np.concatenate([p.saturated for p in parts]))


def score_frame(store: Any, frame: Any, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every named detector's scores (default: all stored) for the records of ``frame`` (raw columns): what
    the leaderboard and the dashboard tabulate."""
    return score_rows(store, frame, names).by_detector


_MIX = np.uint64(0xBF58476D1CE4E5B9)


def _odd_weights(n: int) -> np.ndarray:
    """``n`` fixed, well-mixed odd 64-bit weights (splitmix64 of 1..n; no numpy.random to import)."""
    with np.errstate(over="ignore"):
        z = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z ^= z >> np.uint64(30)
        z *= _MIX
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z | np.uint64(1)


_ROW_WEIGHTS = _odd_weights(512)


def distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first occurrence of each distinct row, row → distinct index), exactly.

    Every value's bits are mixed (xor-shift-multiply, over the whole matrix at once) and each row
    hashed to 64 bits as a weighted sum of them (one integer matrix-vector product), then grouped.
    Rows the hash put together are checked against each other and, on a collision, the grouping is
    redone exactly on the rows themselves; when every row is distinct nothing was put together.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    h = row_hashes(X)
    if h is None:
        return _distinct_rows_exactly(X)
    first, codes = _in_order(*np.unique(h, return_index=True, return_inverse=True)[1:])
    if len(first) == len(X):
        return first, codes
    shared = np.bincount(codes)[codes] > 1  # rows grouped with another: are they really equal?
    if not (X[first[codes[shared]]] == X[shared]).all():
        return _distinct_rows_exactly(X)
    return first, codes


def row_hashes(X: np.ndarray) -> np.ndarray | None:
    """A 64-bit hash of each row of a float64 matrix (equal rows, equal hashes), or None if it is too wide."""
    if X.shape[1] > len(_ROW_WEIGHTS):
        return None
    bits = (X + 0.0).view(np.uint64)  # + 0.0: -0.0 and 0.0 are the same value; a copy we may scramble
    with np.errstate(over="ignore"):
        bits ^= bits >> np.uint64(31)
        bits *= _MIX
        bits ^= bits >> np.uint64(29)
        return bits @ _ROW_WEIGHTS[: X.shape[1]]


def _distinct_rows_exactly(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`distinct_rows` by comparing whole rows (slower; for hash collisions)."""
    return _in_order(*np.unique(X + 0.0, axis=0, return_index=True, return_inverse=True)[1:])


def _in_order(first: np.ndarray, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique``'s groups (first index of each, row → group) renumbered in order of first occurrence."""
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.reshape(-1)]


def encode_chunk(encoder: Any, chunk: Any, rows: np.ndarray) -> np.ndarray:
    """The encoded matrix of a parsed chunk's ``rows``: numeric columns from its features, text from its table.

    A column the encoder needs but the chunk lacks is an InputError naming it.
    """
    position = {c: j for j, c in enumerate(chunk.numeric_columns)}
    lacking = [c for c in encoder.columns if c not in position and c not in chunk.table.column_names]
    if lacking:
        raise InputError(f"the input lacks the column(s) {listed(lacking)} the detector needs")

    every_row = len(rows) == len(chunk.features)  # the usual chunk: no row to leave out, nothing to gather
    features = chunk.features if every_row else chunk.features[rows]
    if not encoder.categorical and all(c in position for c in encoder.columns):  # numbers only: taken at once
        taken = [position[c] for c in encoder.columns]
        return features if taken == list(range(features.shape[1])) else features[:, taken]
    text_rows = None if every_row else rows

    def column(name: str) -> Any:
        if name in position:
            return features[:, position[name]]
        text = chunk.table.column(name)
        return text if text_rows is None else text.take(text_rows)

    return encoder.encode(column, len(rows))


def applicable(store: Any, names: list[str], columns: Any) -> tuple[list[str], str]:
    """(the detectors of ``names`` an input with ``columns`` can feed, a sentence on those skipped).

    A detector needs every raw column of its feature set. An input that feeds none of them is an
    InputError naming, per feature set, the columns it lacks.
    """
    have = set(columns)
    missing_by_set: dict[str, list[str]] = {}
    for fs in dict.fromkeys(store.feature_set_of(n) for n in names):
        missing_by_set[fs] = [c for c in store.feature_set(fs).raw_columns if c not in have]
    usable = [n for n in names if not missing_by_set[store.feature_set_of(n)]]
    lacking = {fs: m for fs, m in missing_by_set.items() if m}
    if not usable:
        raise InputError("The input lacks columns every chosen detector needs: " + "; ".join(
            f"the {fs} detectors need {listed(m)}" for fs, m in lacking.items())
            + ". Add those columns (any order), or send raw KDD records.")
    if not lacking:
        return usable, ""
    parts = []
    for fs, missing in lacking.items():
        skipped = [n for n in names if store.feature_set_of(n) == fs]
        parts.append(f"{', '.join(skipped)} (feature set {fs}; they need {listed(missing)})")
    return usable, "Skipped " + "; ".join(parts) + " because the input lacks those columns."


class Scorer:
    """:func:`score_rows` for a stream of batches, scoring each distinct row once.

    Network records repeat heavily (KDD's test file: 13% distinct), so rows are de-duplicated
    within a batch and scores of distinct rows are remembered across batches (up to
    :data:`CACHE_ROWS`). When a big batch turns out nearly all distinct with nothing remembered, the next
    :data:`DISTINCT_RECHECK` - 1 batches are scored without looking for repeats (hashing rows costs as
    much as a fast detector scoring them); the batch after those is checked again.
    """

    def __init__(self, store: Any, names: list[str], cache_rows: int = CACHE_ROWS) -> None:
        unknown = [n for n in names if n not in store.names]
        if unknown:
            raise InputError(f"Detector(s) {', '.join(unknown)} are not in the model store; choose from "
                             f"{', '.join(store.names)}.")
        if not names:
            raise InputError("No detector chosen. Choose at least one detector to score with.")
        self.store, self.names = store, list(names)
        plan(store, self.names)  # loads every detector now, so a broken store fails before any input is read
        self.skipped_note = ""
        self.seconds: dict[str, float] = {}
        self.rows_scored = 0  # distinct rows actually scored
        self._cache: dict[bytes, int] = {}
        self._cached = np.empty((0, len(self.names) + 2))
        self._cache_rows = cache_rows
        self._unchecked = 0  # batches still to score without looking for repeats

    @property
    def encoder(self) -> Any:
        return self.store.encoder(self.names)

    def adapt(self, columns: Any) -> str:
        """Keep the chosen detectors an input with ``columns`` can feed; return the sentence saying
        which were skipped ("" when none). Call before the first batch."""
        self.names, self.skipped_note = applicable(self.store, self.names, columns)
        self._cached = np.empty((0, len(self.names) + 2))
        return self.skipped_note

    def encode_chunk(self, chunk: Any, rows: np.ndarray) -> np.ndarray:
        """The encoded matrix of a parsed chunk's ``rows``."""
        return encode_chunk(self.encoder, chunk, rows)

    def _score_distinct(self, X_raw: np.ndarray) -> np.ndarray:
        """(n, detectors + 2): each chosen detector's score, then out-of-range and saturated flags."""
        result = score_rows(self.store, X_raw, self.names, self.seconds)
        self.rows_scored += len(X_raw)
        return np.column_stack([*(result.by_detector[n] for n in self.names), result.out_of_range,
                                result.saturated])

    def score(self, X_raw: np.ndarray) -> Scores:
        """Scores of raw rows, each distinct row scored once."""
        X_raw = np.ascontiguousarray(X_raw, dtype=np.float64)
        if len(X_raw) == 0:
            empty = np.zeros(0, dtype=bool)
            return Scores({n: np.empty(0) for n in self.names}, empty, empty)
        if self._unchecked:  # recent batches were all but distinct: score this one as it is
            self._unchecked -= 1
            return self._scores(self._score_distinct(X_raw))
        if not self._cache:
            hashes = row_hashes(X_raw)  # distinct hashes are distinct rows (a collision only lowers the count)
            if hashes is not None and np.count_nonzero(np.diff(np.sort(hashes))) + 1 > 0.9 * len(X_raw):
                # Nearly all distinct and nothing remembered: the cache would only cost time. A big batch
                # says so for the next few too (a stream's small batches are checked every time).
                self._unchecked = DISTINCT_RECHECK - 1 if len(X_raw) >= RECHECK_MIN_ROWS else 0
                return self._scores(self._score_distinct(X_raw))
        first, inverse = distinct_rows(X_raw)
        distinct = X_raw[first]
        if len(distinct) > 0.9 * len(X_raw) and not self._cache:
            self._unchecked = DISTINCT_RECHECK - 1 if len(X_raw) >= RECHECK_MIN_ROWS else 0
            results = self._score_distinct(distinct)
        else:
            keys = [row.tobytes() for row in distinct]
            where = np.array([self._cache.get(k, -1) for k in keys], dtype=np.int64)
            missing = np.flatnonzero(where < 0)
            results = np.empty((len(distinct), len(self.names) + 2))
            if len(where) - len(missing):
                results[where >= 0] = self._cached[where[where >= 0]]
            if len(missing):
                fresh = self._score_distinct(distinct[missing])
                results[missing] = fresh
                room = max(0, self._cache_rows - len(self._cache))
                if room:
                    keep = missing[:room]
                    base = len(self._cached)
                    self._cached = np.concatenate([self._cached, fresh[:room]])
                    self._cache.update({keys[k]: base + i for i, k in enumerate(keep)})
        return self._scores(results[inverse])

    def _scores(self, full: np.ndarray) -> Scores:
        return Scores({n: full[:, i] for i, n in enumerate(self.names)}, full[:, -2].astype(bool),
                      full[:, -1].astype(bool))
