"""Tree ensembles scored in numpy from flat node arrays: which leaf each row reaches, in every tree.

Two exact ways, both giving the leaf scikit-learn's ``Tree.apply`` gives (so the summed leaf values
are bit for bit those of ``score_samples`` / ``predict_proba``), neither importing scikit-learn:

* :meth:`Forest.walk`: every tree at once, one level at a time (gather each row's node, its
  feature, its threshold; step left or right). Cheap to start, so it scores small batches.
* :meth:`Forest.bitsliced`: every split compared with every row, 64 rows to a machine word. At
  each depth, each feature's splits there are compared with the feature's column in one broadcast
  and packed into bits; the rows that reach a node (a bit mask) are split into those that go right
  (mask AND comparison) and left (the rest), and the rights of each depth make one bit of the row's
  path. The path (left/right at each depth, zeros after the leaf) indexes a table of leaf values,
  summed tree after tree in the stored order. No step depends on a row's earlier step, so it runs
  as long vector operations: it makes ten times the comparisons a walk makes, each far cheaper
  (figures: ``bench/results/detectors.md``).

Thresholds are compared in float32: scikit-learn sends a float32 value ``x`` left when
``x <= t`` (``t`` a float64); with ``t32`` the largest float32 not above ``t``, ``x <= t`` exactly
when ``x <= t32``. A NaN goes where the node's ``missing_go_to_left`` says (the walk only: a block
holding NaN is walked).
"""

from __future__ import annotations

import threading

import numpy as np

BITSLICE_ROWS = 4_096
"""Rows compared at a time by :meth:`Forest.bitsliced` (a multiple of 64)."""
COMPARE_CHUNK = 128
"""Thresholds compared with a feature's column in one broadcast (the boolean block stays in cache)."""
VALUE_ROWS = 1_024
"""Rows whose leaf values are looked up at a time (the per-tree indexes stay in cache)."""
WALK_STEPS_PER_CALL = 1_000
"""The walk is used while it takes fewer (row, tree, depth) steps than this many per comparison call the
bit-sliced scorer makes (one per depth and feature): where the two cost the same on the KDD forests."""
MAX_PATH_TABLE = 1 << 22
"""Largest leaf-value table (trees × 2**depth entries) the bit-sliced scorer builds; deeper forests are walked."""


def float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """Per threshold the largest float32 not above it: ``x <= t`` exactly when ``x <= t32`` for float32 ``x``."""
    t32 = np.asarray(threshold, dtype=np.float64).astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


class Forest:
    """Leaf values summed over trees, from flat arrays (global node ids; children -1 at leaves).

    ``left``/``right``: tree-local child indexes; ``offsets``: each tree's first node (and the end);
    ``feature``, ``threshold``, ``missing_left`` per node; ``leaf_value`` per node (used at leaves).
    """

    def __init__(self, offsets: np.ndarray, left: np.ndarray, right: np.ndarray, feature: np.ndarray,
                 threshold: np.ndarray, missing_left: np.ndarray, leaf_value: np.ndarray) -> None:
        n = len(left)
        tree = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        self.n_trees = len(offsets) - 1
        self.leaf = left == -1
        self.roots = np.asarray(offsets[:-1], dtype=np.int64)
        # global child ids; a leaf points at itself, so walking past it stays there
        self.left = np.where(self.leaf, np.arange(n), left + offsets[tree]).astype(np.int32)
        self.right = np.where(self.leaf, np.arange(n), right + offsets[tree]).astype(np.int32)
        self.feature = np.where(self.leaf, 0, feature).astype(np.int32)
        self.threshold32 = np.where(self.leaf, np.float32(np.inf), float32_at_most(threshold)).astype(np.float32)
        self.nan_right = ~self.leaf & (np.asarray(missing_left) == 0)
        self.leaf_value = np.asarray(leaf_value, dtype=np.float64)
        self.tree = tree
        self.depth = self._depths()
        self.max_depth = int(self.depth.max()) if n else 0
        self._compare_calls = 0
        self._plan: _Plan | None = None
        self._lock = threading.Lock()

    def _depths(self) -> np.ndarray:
        """Each node's depth (roots 0), one level at a time."""
        depth = np.zeros(len(self.left), dtype=np.int64)
        level, d = self.roots, 0
        while len(level):
            level = level[~self.leaf[level]]
            level = np.concatenate([self.left[level], self.right[level]]).astype(np.int64)
            d += 1
            depth[level] = d
        return depth

    @property
    def compare_calls(self) -> int:
        """Comparison calls :meth:`bitsliced` makes per block: one per (depth, feature) with splits there."""
        if not self._compare_calls:
            inner = ~self.leaf
            self._compare_calls = len(np.unique(self.depth[inner] * (int(self.feature.max(initial=0)) + 1)
                                                + self.feature[inner]))
        return self._compare_calls

    @property
    def bitsliceable(self) -> bool:
        """Whether :meth:`bitsliced` applies: the path table stays small."""
        return self.n_trees << self.max_depth <= MAX_PATH_TABLE

    def total(self, X: np.ndarray) -> np.ndarray:
        """Per row (float32 matrix): the sum over trees, in their order, of the value at the leaf it reaches."""
        walk_steps = len(X) * self.n_trees * self.max_depth
        if (walk_steps > WALK_STEPS_PER_CALL * self.max_depth and walk_steps > WALK_STEPS_PER_CALL * self.compare_calls
                and self.bitsliceable and not np.isnan(X).any()):
            return np.concatenate([self.bitsliced(X[i:i + BITSLICE_ROWS]) for i in range(0, len(X), BITSLICE_ROWS)])
        return self.walk(X)

    def walk(self, X: np.ndarray) -> np.ndarray:
        """:meth:`total` one level at a time over every tree and row at once."""
        n, width = X.shape
        flat = X.ravel()
        row_start = (np.arange(n, dtype=np.int64) * width)[None, :]
        node = np.repeat(self.roots[:, None], n, axis=1)
        missing = bool(np.isnan(X).any())
        for _ in range(self.max_depth):
            value = flat[row_start + self.feature[node]]
            right = value > self.threshold32[node]
            if missing:
                right |= np.isnan(value) & self.nan_right[node]
            node = np.where(right, self.right[node], self.left[node])
        return _sum_over_trees(self.leaf_value[node])

    def bitsliced(self, X: np.ndarray) -> np.ndarray:
        """:meth:`total` of at most :data:`BITSLICE_ROWS` rows with every split compared at once (see the module)."""
        plan = self._plan or self._build_plan()
        n = len(X)
        words, packed_bytes = (n + 63) // 64, (n + 7) // 8
        columns = np.ascontiguousarray(X.T)
        compared = np.empty((COMPARE_CHUNK, n), dtype=bool)
        paths = np.zeros((self.n_trees * plan.depth, words), dtype=np.uint64)
        reach = np.full((len(plan.levels[0].order), words), np.uint64(0xFFFFFFFFFFFFFFFF))
        for level in plan.levels:
            # this depth's comparisons, feature by feature, as bits (64 rows a word), then in tree order
            packed = (np.empty if n % 64 == 0 else np.zeros)((len(level.order), words * 8), dtype=np.uint8)
            for feature, thresholds, start in level.compares:
                out = compared[: len(thresholds)]
                np.less(thresholds, columns[feature], out=out)
                packed[start:start + len(thresholds), :packed_bytes] = np.packbits(out, axis=1, bitorder="little")
            went = np.empty((2 * len(reach), words), dtype=np.uint64)  # rows going left, then right, per node
            right = went[len(reach):]
            np.bitwise_and(packed.view(np.uint64).take(level.order, axis=0), reach, out=right)
            np.bitwise_xor(reach, right, out=went[: len(reach)])
            paths[level.path_rows] = np.bitwise_or.reduceat(right, level.tree_starts, axis=0)
            if level.next is not None:
                reach = went.take(level.next, axis=0)
        # each row's path (a bit per depth, tree after tree) indexes the leaf values, a slice of rows at a time
        path_bytes = paths.view(np.uint8)
        totals = []
        for start in range(0, n, VALUE_ROWS):
            rows = min(VALUE_ROWS, n - start)
            steps = np.unpackbits(path_bytes[:, start // 8:(start + rows + 7) // 8], axis=1, count=rows,
                                  bitorder="little").reshape(self.n_trees, plan.depth, rows)
            index = np.repeat(np.arange(self.n_trees, dtype=np.uint32)[:, None], rows, axis=1)
            for depth in range(plan.depth):
                index <<= 1
                index |= steps[:, depth]
            totals.append(_sum_over_trees(plan.values.take(index)))
        return np.concatenate(totals)

    def _build_plan(self) -> _Plan:
        with self._lock:
            if self._plan is None:
                self._plan = _Plan(self)
            return self._plan


def _sum_over_trees(values: np.ndarray) -> np.ndarray:
    """Rows of per-tree values (trees × rows) added tree after tree, as scikit-learn adds them."""
    total = np.zeros(values.shape[1])
    for row in values:
        total += row
    return total


class _Level:
    """One depth of the bit-sliced scorer: its comparisons (feature, thresholds, first row), the order that puts
    their rows by tree, which path bit each tree's rights set, and where the next depth's splits come from
    among this one's children (left children, then right)."""

    def __init__(self, compares: list[tuple[int, np.ndarray, int]], order: np.ndarray, path_rows: np.ndarray,
                 tree_starts: np.ndarray, next_: np.ndarray | None) -> None:
        self.compares, self.order, self.path_rows, self.tree_starts, self.next = (compares, order, path_rows,
                                                                                  tree_starts, next_)


class _Plan:
    """What :meth:`Forest.bitsliced` needs, built once per forest: per depth its splits and comparisons, and the
    leaf values by (tree, path)."""

    def __init__(self, forest: Forest) -> None:
        f = forest
        inner = np.flatnonzero(~f.leaf)
        self.depth = max(f.max_depth, 1)
        by_depth = [inner[f.depth[inner] == d] for d in range(self.depth)]  # ascending ids: grouped by tree
        self.levels = []
        for d, nodes in enumerate(by_depth):
            by_feature = np.lexsort((f.threshold32[nodes], f.feature[nodes]))
            features = f.feature[nodes][by_feature]
            compares = []
            for feature in np.unique(features):
                rows = np.flatnonzero(features == feature)
                for start in range(0, len(rows), COMPARE_CHUNK):
                    chunk = rows[start:start + COMPARE_CHUNK]
                    compares.append((int(feature), f.threshold32[nodes[by_feature[chunk]]][:, None].copy(),
                                     int(chunk[0])))
            trees, starts = np.unique(f.tree[nodes], return_index=True)
            following = None
            if d + 1 < self.depth:
                children = np.concatenate([f.left[nodes], f.right[nodes]])
                position = np.full(len(f.leaf), -1, dtype=np.int64)
                position[children] = np.arange(len(children))
                following = position[by_depth[d + 1]]
            self.levels.append(_Level(compares, np.argsort(by_feature), trees * self.depth + d, starts, following))
        # each leaf's path: its left/right steps, then zeros to the full depth
        path = np.zeros(len(f.leaf), dtype=np.int64)
        for nodes in by_depth:
            path[f.left[nodes]] = path[nodes] * 2
            path[f.right[nodes]] = path[nodes] * 2 + 1
        leaves = np.flatnonzero(f.leaf)
        self.values = np.zeros(f.n_trees << self.depth)
        self.values[(f.tree[leaves] << self.depth) | (path[leaves] << (self.depth - f.depth[leaves]))] = \
            f.leaf_value[leaves]
