"""Intervals and tests that say which differences between detectors are more than noise.

Every function takes the labels ``y`` (1 = attack, anything else normal, as :mod:`anodet.evaluation.metrics`)
and the scores of k detectors on the *same* records, a ``(k, n)`` array or a mapping name → scores.
A record is flagged when ``score >= threshold``, so equal scores (``+inf`` included) are one threshold.

Intended use:

- :func:`delong` — every detector's ROC AUC, DeLong's k×k covariance and 95 % intervals (the
  leaderboard's and ``evaluate --format json``'s ``roc_auc_ci_low/high``); :func:`paired_test` — do two
  detectors' AUCs differ on these records; :func:`ties_with_best` — the detectors the top one does not
  beat significantly after Holm's correction (:func:`holm`), which the leaderboard marks as tied.
- :func:`bootstrap` — stratified bootstrap intervals, and paired differences, of :data:`AVERAGE_PRECISION`
  (PR AUC), :func:`partial_auc_statistic` or any :class:`CountStatistic` of the weighted counts along
  the curve; :func:`partial_roc_auc` is the partial AUC's point estimate.
- :func:`wilson`, :func:`clopper_pearson` — intervals of proportions k/n (recall, precision, FPR,
  per-category detection rate), vectorised; :func:`rule_of_three` and :func:`fpr_resolution` say
  what "no false positive among n normals" supports. :func:`format_interval`, :func:`format_pm` — text.

Choices. DeLong's AUC interval is normal on the logit scale, transformed back: it stays inside (0, 1)
and, near 1, reaches further down than up; in simulations with AUCs of 0.99+ it covered the true AUC
more often than the plain interval or the bootstrap percentile (``bench/results/intervals.md``).
``transform="normal"`` gives the plain interval clipped to [0, 1]. An AUC of exactly 1 has variance 0
and interval [1, 1]: resampling those records cannot say more. Differences use the plain normal
interval. The bootstrap resamples attacks and normals separately (each resample keeps the class
counts), with one draw shared by all detectors: replicates are paired, and a detector's interval
does not depend on which others it is compared with. scipy is imported only where it is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

Scores = np.ndarray | Mapping[str, np.ndarray]


def _alpha(level: float) -> float:  # 1 - level, once the level is checked
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    return 1.0 - level


def z_value(level: float) -> float:  # the two-sided normal quantile of a ``level`` interval
    return NormalDist().inv_cdf(1 - _alpha(level) / 2)


def _inputs(y: np.ndarray, scores: Scores) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(names, attacks as bool (n,), scores (k, n) float), or one ValueError saying what is wrong."""
    if isinstance(scores, Mapping):
        names = tuple(str(name) for name in scores)
        arrays = [np.asarray(s, dtype=np.float64).ravel() for s in scores.values()]
        if len(sizes := sorted({len(a) for a in arrays})) > 1:
            raise ValueError(f"the detectors' scores hold {sizes[0]} to {sizes[-1]} records; pass scores of the "
                             "same records")
        matrix = np.array(arrays)
    else:
        matrix = np.asarray(scores, dtype=np.float64)
        matrix = matrix[None] if matrix.ndim == 1 else matrix
        names = tuple(str(i) for i in range(len(matrix)))
    pos = np.asarray(y).ravel() == 1
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError("scores must hold at least one detector: a (k, n) array or a mapping name -> scores")
    if matrix.shape[1] != len(pos):
        raise ValueError(f"the scores hold {matrix.shape[1]} records but the labels {len(pos)}; pass both alike")
    if np.isnan(matrix).any():
        bad = names[int(np.flatnonzero(np.isnan(matrix).any(axis=1))[0])]
        raise ValueError(f"the scores of {bad} contain NaN; score every record, or drop the unscored ones from "
                         "scores and labels alike")
    if pos.sum() < 2 or (~pos).sum() < 2:
        raise ValueError(f"intervals need at least 2 attacks (1) and 2 normal records; the labels have "
                         f"{int(pos.sum())} and {int((~pos).sum())}")
    return names, pos, matrix


def _row(names: tuple[str, ...], detector: str | int) -> int:
    if isinstance(detector, str) and detector in names:
        return names.index(detector)
    if not isinstance(detector, str) and 0 <= int(detector) < len(names):
        return int(detector)
    raise ValueError(f"unknown detector {detector!r}; these were compared: {', '.join(names)}")


# ---------------------------------------------------------------- ROC AUC with DeLong's covariance

@dataclass(frozen=True)
class AucIntervals:
    """ROC AUC of k detectors on the same records, DeLong's covariance and an interval for each."""

    names: tuple[str, ...]
    auc: np.ndarray  # (k,)
    cov: np.ndarray  # (k, k)
    low: np.ndarray
    high: np.ndarray
    level: float
    n_attacks: int
    n_normals: int

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def index(self, detector: str | int) -> int:
        """The row of a detector given by name or position."""
        return _row(self.names, detector)


def delong(y: np.ndarray, scores: Scores, level: float = 0.95,
           transform: Literal["logit", "normal"] = "logit") -> AucIntervals:
    """ROC AUC, DeLong's covariance (Sun & Xu's fast algorithm, 2014) and intervals, k detectors at once.

    Sun & Xu's midrank differences ``T_Z - T_X`` are the placement values: for an attack, the share of
    normals scoring below it plus half the share tied with it (for a normal, of attacks above it), read
    for every record off one sort per detector. The AUC is the attacks' mean; the covariance is
    ``S10/m + S01/n`` over the m attacks and n normals: O(k·n log n + k²·n).
    """
    z = z_value(level)
    names, pos, matrix = _inputs(y, scores)
    m, n = int(pos.sum()), int((~pos).sum())
    k, total = matrix.shape
    order = np.argsort(matrix, axis=1, kind="stable")
    s = np.take_along_axis(matrix, order, axis=1)
    starts = np.ones((k, total), dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    ends = np.concatenate([starts[:, 1:], np.ones((k, 1), dtype=bool)], axis=1)
    idx = np.arange(total)
    first = np.maximum.accumulate(np.where(starts, idx, 0), axis=1)  # of each sorted position's tie group
    after = np.minimum.accumulate(np.where(ends, idx, total)[:, ::-1], axis=1)[:, ::-1] + 1
    attacks = pos[order]
    rows = np.arange(k)[:, None]
    below = np.zeros((k, total + 1, 2))  # attacks, normals at sorted positions before each
    np.cumsum(np.stack([attacks, ~attacks], axis=-1), axis=1, out=below[:, 1:])
    neg_below, neg_upto = below[rows, first, 1], below[rows, after, 1]
    pos_below, pos_upto = below[rows, first, 0], below[rows, after, 0]
    v = np.empty((k, total))  # back in record order below: detectors pair by record
    np.put_along_axis(v, order, np.where(attacks, (neg_below + neg_upto) / (2 * n),
                                         (2 * m - pos_below - pos_upto) / (2 * m)), axis=1)
    auc = v[:, pos].mean(axis=1)
    cov = np.atleast_2d(np.cov(v[:, pos])) / m + np.atleast_2d(np.cov(v[:, ~pos])) / n
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    if transform == "logit":
        inside = (auc > 0) & (auc < 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            half, centre = z * se / (auc * (1 - auc)), np.log(auc / (1 - auc))
            low = np.where(inside, 1 / (1 + np.exp(half - centre)), auc)
            high = np.where(inside, 1 / (1 + np.exp(-centre - half)), auc)
    elif transform == "normal":
        low, high = np.clip(auc - z * se, 0.0, 1.0), np.clip(auc + z * se, 0.0, 1.0)
    else:
        raise ValueError(f"transform must be 'logit' or 'normal', got {transform!r}")
    return AucIntervals(names, auc, cov, low, high, level, m, n)


@dataclass(frozen=True)
class PairedTest:
    """DeLong's test of AUC(a) = AUC(b) on the same records."""

    difference: float  # AUC(a) - AUC(b)
    se: float
    z: float
    p_value: float  # two-sided

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Normal interval of the difference."""
        return self.difference - z_value(level) * self.se, self.difference + z_value(level) * self.se


def _paired(aucs: AucIntervals, a: int, others: np.ndarray) -> tuple[np.ndarray, ...]:
    diff = aucs.auc[a] - aucs.auc[others]
    se = np.sqrt(np.clip(aucs.cov[a, a] + aucs.cov[others, others] - 2 * aucs.cov[a, others], 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / se, np.where(diff == 0, 0.0, np.sign(diff) * np.inf))
    return diff, se, z, np.array([math.erfc(abs(v) / math.sqrt(2)) for v in z])  # two-sided normal p


def paired_test(aucs: AucIntervals, a: str | int, b: str | int) -> PairedTest:
    """DeLong's paired test of two detectors' AUCs, from :func:`delong`'s covariance (identical scores:
    difference 0, z 0, p 1)."""
    diff, se, z, p = _paired(aucs, aucs.index(a), np.array([aucs.index(b)]))
    return PairedTest(float(diff[0]), float(se[0]), float(z[0]), float(p[0]))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order: reject where adjusted ≤ alpha."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must be numbers between 0 and 1")
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    return adjusted


@dataclass(frozen=True)
class TiesWithBest:
    """The top detector and the others it does not beat significantly (after Holm)."""

    best: str
    tied: tuple[str, ...]  # not including ``best``
    p_value: dict[str, float]  # paired DeLong p-value, best vs each other detector
    adjusted: dict[str, float]  # Holm-adjusted across those k-1 pairs


def ties_with_best(aucs: AucIntervals, best: str | int | None = None, alpha: float = 0.05) -> TiesWithBest:
    """The detectors whose paired AUC difference from ``best`` (default: the highest AUC) is not
    significant at ``alpha`` after Holm's correction across the k-1 pairs compared."""
    top = int(np.argmax(aucs.auc)) if best is None else aucs.index(best)
    others = np.array([i for i in range(len(aucs.names)) if i != top], dtype=np.int64)
    p = _paired(aucs, top, others)[3]
    adjusted = holm(p)
    names = [aucs.names[i] for i in others]
    return TiesWithBest(aucs.names[top], tuple(nm for nm, q in zip(names, adjusted, strict=True) if q > alpha),
                        dict(zip(names, map(float, p), strict=True)),
                        dict(zip(names, map(float, adjusted), strict=True)))


# ---------------------------------------------------------------- statistics of weighted counts

CountFunction = Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]


@dataclass(frozen=True)
class CountStatistic:
    """A statistic of the curve of weighted counts, for :func:`bootstrap`.

    ``fn(tps, fps, n_attacks, n_normals)`` gets the weighted attacks and normals scoring ``>=`` each point
    of the curve, highest score first along axis 0, one column per resample, and returns one value per
    column. ``at`` picks the points: ``"scores"`` every distinct score; ``"attack_scores"`` the attacks'
    (enough for average precision); ``"roc"`` where the ROC curve can turn (a run of scores of one class
    is a straight line in any resample). ``max_fpr < 1``: ``fn`` reads the curve up to that FPR only.
    """

    fn: CountFunction
    at: Literal["scores", "attack_scores", "roc"] = "scores"
    max_fpr: float = 1.0


def _with_origin(counts: np.ndarray) -> np.ndarray:  # the curve's first point: nothing flagged
    return np.concatenate([np.zeros((1, *counts.shape[1:]), dtype=counts.dtype), counts])


def _average_precision(tps: np.ndarray, fps: np.ndarray, n_attacks: float, n_normals: float) -> np.ndarray:
    """Σ recall step × precision, as :func:`anodet.evaluation.metrics.pr_auc` and scikit-learn's average precision."""
    flagged = tps + fps
    precision = np.divide(tps, flagged, out=np.zeros_like(tps), where=flagged > 0)
    return (np.diff(_with_origin(tps), axis=0) * precision).sum(axis=0, dtype=np.float64) / n_attacks


def _partial_area(tps: np.ndarray, fps: np.ndarray, n_attacks: float, n_normals: float,
                  max_fpr: float) -> np.ndarray:
    """McClish-standardised area under the ROC curve up to ``max_fpr``, the segment crossing ``max_fpr``
    interpolated linearly (scikit-learn's ``roc_auc_score(max_fpr=...)``); the plain AUC at 1."""
    f0, t0 = _with_origin(fps)[:-1], _with_origin(tps)[:-1]
    if max_fpr >= 1.0:
        return np.einsum("ij,ij->j", fps - f0, t0 + tps, dtype=np.float64) / (2 * n_attacks * n_normals)
    cut = max_fpr * n_normals  # in normals
    whole = fps <= cut  # segments wholly left of the cut: a prefix of each column
    area = np.where(whole, (fps - f0) * (t0 + tps), 0.0).sum(axis=0, dtype=np.float64) / 2
    cross = whole.sum(axis=0)
    cols = np.flatnonzero(cross < len(fps))
    j = cross[cols]
    a0, a1, b0, b1 = f0[j, cols], fps[j, cols], t0[j, cols], tps[j, cols]
    area[cols] += (cut - a0) * (2 * b0 + (cut - a0) / (a1 - a0) * (b1 - b0)) / 2
    least = max_fpr**2 / 2
    return 0.5 * (1 + (area / (n_attacks * n_normals) - least) / (max_fpr - least))


AVERAGE_PRECISION = CountStatistic(_average_precision, at="attack_scores")
ROC_AUC = CountStatistic(lambda t, f, p, n: _partial_area(t, f, p, n, 1.0), at="roc")


def partial_auc_statistic(max_fpr: float) -> CountStatistic:
    """The standardised partial ROC AUC up to ``max_fpr`` (0.5 = chance, 1 = perfect) as a statistic."""
    if not 0.0 < max_fpr <= 1.0:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr}")
    return CountStatistic(lambda t, f, p, n: _partial_area(t, f, p, n, max_fpr), at="roc", max_fpr=max_fpr)


def partial_roc_auc(y: np.ndarray, scores: Scores, max_fpr: float) -> np.ndarray:
    """Each detector's standardised partial ROC AUC up to ``max_fpr`` (McClish, as scikit-learn's
    ``roc_auc_score(y, s, max_fpr=...)``)."""
    return bootstrap(y, scores, {"p": partial_auc_statistic(max_fpr)}, n_resamples=0)["p"].estimate


# ---------------------------------------------------------------- stratified bootstrap

@dataclass(frozen=True)
class BootstrapResult:
    """A statistic of k detectors: point estimates, replicates and percentile intervals."""

    names: tuple[str, ...]
    estimate: np.ndarray  # (k,)
    replicates: np.ndarray  # (n_resamples, k): the same resamples for every detector
    low: np.ndarray
    high: np.ndarray
    level: float

    def difference(self, a: str | int, b: str | int) -> tuple[float, float, float]:
        """(estimate, low, high) of statistic(a) − statistic(b), a percentile interval over paired resamples."""
        i, j = _row(self.names, a), _row(self.names, b)
        lo, hi = np.quantile(self.replicates[:, i] - self.replicates[:, j], [(1 - self.level) / 2,
                                                                            (1 + self.level) / 2])
        return float(self.estimate[i] - self.estimate[j]), float(lo), float(hi)


_BLOCK = 500  # resamples drawn and counted together: memory ~ curve points × _BLOCK floats per detector


@dataclass(frozen=True)
class _Layout:
    """One detector's records assigned to the points of its curve (highest score first)."""

    pos: sparse.csr_matrix  # (points, attacks): 1 where an attack is counted at a point
    neg: sparse.csr_matrix  # (points, normals)
    complete: bool  # no record left out below a cut


def _points(s: np.ndarray, pos: np.ndarray, at: str) -> np.ndarray:
    """The scores (ascending) at which ``at`` reads the curve."""
    if at == "attack_scores":
        return np.unique(s[pos])
    distinct, inverse = np.unique(s, return_inverse=True)
    if at == "scores":
        return distinct
    kind = ((np.bincount(inverse[pos], minlength=len(distinct)) > 0)  # 1: attacks only, 2: normals only, 3: both
            + 2 * (np.bincount(inverse[~pos], minlength=len(distinct)) > 0))
    turn = np.ones(len(distinct), dtype=bool)
    turn[1:] = (kind[1:] == 3) | (kind[1:] != kind[:-1])  # the lowest score of each single-class run
    return distinct[turn]


def _spare_normals(expected: float) -> int:  # top normals among which a resample holds ``expected`` (8 SD)
    return math.ceil(expected + 8 * math.sqrt(expected) + 20)


def _layout(s: np.ndarray, pos: np.ndarray, at: str, top_normals: int | None) -> _Layout:
    """Each record counted at the highest point its score reaches; records below the last point (below
    the lowest attack score, or below the ``top_normals``-th highest normal) are left out."""
    points = _points(s, pos, at)
    cut = -np.inf
    if top_normals is not None and top_normals < int((~pos).sum()):
        cut = np.sort(s[~pos])[::-1][top_normals - 1]
        points = np.union1d(points[points >= cut], [cut])
    bins = len(points) - np.searchsorted(points, s, side="right")  # points scoring higher than s

    from scipy import sparse

    def part(mask: np.ndarray) -> sparse.csr_matrix:
        b = bins[mask]
        cols = np.flatnonzero(b < len(points))
        return sparse.csr_matrix((np.ones(len(cols), dtype=np.float32), (b[cols], cols)),
                                 shape=(len(points), int(mask.sum())))

    return _Layout(part(pos), part(~pos), cut == -np.inf)


def _draw(rng: np.random.Generator, size: int, block: int) -> np.ndarray:
    """(size, block) counts: each column ``size`` draws with replacement from ``size`` records (float32
    holds counts exactly and halves the memory traffic of the sums)."""
    idx = rng.integers(0, size, (block, size), dtype=np.int64)
    idx += (np.arange(block) * size)[:, None]  # each resample counts into a row of its own: cache-local
    counts = np.bincount(idx.ravel(), minlength=size * block).reshape(block, size)
    return np.ascontiguousarray(counts.T, dtype=np.float32)


def _evaluate(layout: _Layout, stat: CountStatistic, wp: np.ndarray, wn: np.ndarray) -> tuple[np.ndarray, bool]:
    """(values, exact): the statistic per column; not exact where a cut curve ends before ``max_fpr``."""
    m, n = float(wp[:, 0].sum()), float(wn[:, 0].sum())
    tps, fps = np.asarray(layout.pos @ wp), np.asarray(layout.neg @ wn)
    np.cumsum(tps, axis=0, out=tps)
    np.cumsum(fps, axis=0, out=fps)
    exact = layout.complete or bool((fps[-1] >= stat.max_fpr * n).all())
    return stat.fn(tps, fps, m, n), exact


def bootstrap(y: np.ndarray, scores: Scores, statistics: Mapping[str, CountStatistic], n_resamples: int = 1000,
              seed: int = 0, level: float = 0.95) -> dict[str, BootstrapResult]:
    """Stratified bootstrap percentile intervals of each statistic, all detectors on the same resamples.

    A resample draws attacks from the attacks and normals from the normals, with replacement (``seed``
    fixes the draws; the scores do not), as a count per record, summed at each detector's curve points
    sorted once: a record drawn twice is two records with one score, ties one threshold as in
    :mod:`anodet.evaluation.metrics`. ``n_resamples=0``: estimates only. With tens of attacks intervals run narrow.
    """
    alpha = _alpha(level)
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be 0 or more, got {n_resamples}")
    names, pos, matrix = _inputs(y, scores)
    m, n, k = int(pos.sum()), int((~pos).sum()), len(names)
    layouts: dict[tuple[int, str, int | None], _Layout] = {}

    def layout(d: int, stat: CountStatistic, cut: bool) -> _Layout:
        top = _spare_normals(stat.max_fpr * n) if cut and stat.max_fpr < 1 else None
        if (d, stat.at, top) not in layouts:
            layouts[d, stat.at, top] = _layout(matrix[d], pos, stat.at, top)
        return layouts[d, stat.at, top]

    def run(wp: np.ndarray, wn: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for label, stat in statistics.items():
            values = np.empty((wp.shape[1], k))
            for d in range(k):
                values[:, d], exact = _evaluate(layout(d, stat, True), stat, wp, wn)
                if not exact:  # some resample did not reach max_fpr above the cut: count every record
                    values[:, d] = _evaluate(layout(d, stat, False), stat, wp, wn)[0]
            out[label] = values
        return out

    estimates = run(np.ones((m, 1)), np.ones((n, 1)))
    rng = np.random.default_rng(seed)
    sizes = [min(_BLOCK, n_resamples - start) for start in range(0, n_resamples, _BLOCK)]
    blocks = [run(_draw(rng, m, size), _draw(rng, n, size)) for size in sizes]
    results = {}
    for label in statistics:
        reps = np.concatenate([np.empty((0, k)), *(block[label] for block in blocks)])
        low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2], axis=0) if len(reps) else np.full((2, k), np.nan)
        results[label] = BootstrapResult(names, estimates[label][0], reps, low, high, level)
    return results


# ---------------------------------------------------------------- proportions

def _counts(k: np.ndarray | float, n: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    k_, n_ = np.broadcast_arrays(np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64))
    if np.isnan(k_).any() or np.isnan(n_).any() or (k_ < 0).any() or (k_ > n_).any():
        raise ValueError("a proportion k/n needs counts with 0 <= k <= n")
    return k_, n_


def wilson(k: np.ndarray | float, n: np.ndarray | float, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of k/n, elementwise (NaN where n = 0); sound at k = 0 and k = n too."""
    z = z_value(level)
    k_, n_ = _counts(k, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        p, shrink = k_ / n_, 1 / (1 + z * z / n_)
        centre = shrink * (p + z * z / (2 * n_))
        half = shrink * z * np.sqrt(p * (1 - p) / n_ + z * z / (4 * n_ * n_))
    low, high = np.where(k_ == 0, 0.0, centre - half), np.where(k_ == n_, 1.0, centre + half)  # exact ends
    return np.where(n_ == 0, np.nan, low), np.where(n_ == 0, np.nan, high)


def clopper_pearson(k: np.ndarray | float, n: np.ndarray | float,
                    level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) interval of k/n from beta quantiles, elementwise (NaN where n = 0).

    At k = 0 its upper end is ``1 - ((1 - level)/2)**(1/n)``; the one-sided 95 % bound
    ``1 - 0.05**(1/n)`` (``level=0.90`` here) is what the rule of three, 3/n, approximates.
    """
    from scipy.special import betaincinv

    alpha = _alpha(level)
    k_, n_ = _counts(k, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(k_ > 0, betaincinv(k_, n_ - k_ + 1, alpha / 2), 0.0)
        high = np.where(k_ < n_, betaincinv(k_ + 1, n_ - k_, 1 - alpha / 2), 1.0)
    return np.where(n_ == 0, np.nan, low), np.where(n_ == 0, np.nan, high)


def rule_of_three(n: np.ndarray | float) -> np.ndarray:
    """3/n: an approximate 95 % upper bound on a rate never seen in n trials (the exact one-sided
    Clopper–Pearson bound, ``1 - 0.05**(1/n)``, is a little lower: -ln 0.05 ≈ 2.996)."""
    return 3.0 / np.asarray(n, dtype=np.float64)


def fpr_resolution(n_normals: int, level: float = 0.95) -> tuple[float, float]:
    """(1/n, upper bound): the smallest non-zero FPR n normals can show, and the exact one-sided upper
    ``level`` bound on the FPR when none of them is flagged (≈ 3/n at 95 %)."""
    if n_normals <= 0:
        raise ValueError(f"an FPR needs at least one normal record, got {n_normals}")
    return 1.0 / n_normals, float(1 - _alpha(level) ** (1 / n_normals))


# ---------------------------------------------------------------- text

def _decimals(half_width: float, digits: int | None) -> int:
    if digits is not None or not (np.isfinite(half_width) and half_width > 0):
        return 3 if digits is None else digits
    return int(min(6, max(2, -math.floor(math.log10(half_width)))))


def format_interval(estimate: float, low: float, high: float, digits: int | None = 3) -> str:
    """``0.968 [0.961, 0.974]``; ``digits=None`` shows as many decimals as the half-width's first digit needs."""
    d = _decimals((high - low) / 2, digits)
    bounds = f" [{low:.{d}f}, {high:.{d}f}]" if np.isfinite(low) and np.isfinite(high) else ""
    return f"{estimate:.{d}f}{bounds}" if np.isfinite(estimate) else "n/a"


def format_pm(estimate: float, half_width: float, digits: int | None = 3) -> str:
    """``0.968 ± 0.004`` (a symmetric interval's half-width)."""
    d = _decimals(half_width, digits)
    text = f"{estimate:.{d}f} ± {half_width:.{d}f}" if np.isfinite(half_width) else f"{estimate:.{d}f}"
    return text if np.isfinite(estimate) else "n/a"
