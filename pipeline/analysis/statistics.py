"""Statistics of a merged :class:`~pipeline.analysis.accumulators.BlockSummary`: quantiles with
error bounds and Monte Carlo standard errors, the summary rows, and the BI histograms.

Everything is derived from the merged summary (fine histograms, moments, counts), never from a
second pass over trials; results are plain arrays and :class:`SummaryRow` tuples (the Arrow
tables are built in :mod:`pipeline.outputs.tables`).

Quantile error bound
--------------------
A quantile is interpolated between the two order statistics ``np.quantile`` (method
``"linear"``) would use; each is located exactly in its fine bin by the cumulative counts and
estimated inside that bin, so ``|estimate - np.quantile(x, p)| <= bin width`` (plus float
rounding). Order statistics outside the fine range are clamped to the range edge and the
stated bound widens to the known distance to the exact min or max.

Point masses
------------
The accumulator counts the values exactly equal to the min and to the max, so an order
statistic of rank below that count (from either end) is known exactly. Between them, it lists
the fine bins known to hold a single value (every block with values in the bin had at least
two there, all equal: :meth:`MetricAccumulator._atoms_merged`); an order statistic in such a
bin is that value. A quantile inside a point mass (0 months of lapse; a level fixed by the
agreement in force, such as 2027's) is therefore that value with error bound 0, and its Monte
Carlo standard error is 0 when the Hall-Sheather window lies inside the mass too.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from pipeline.analysis.accumulators import (
    BinSpec,
    BlockSummary,
    MetricAccumulator,
    metric_spec,
    metric_unit,
)
from pipeline.common import QUANTILE_LEVELS, FloatArray, IntArray

PROBABILITY_UNIT: Final[str] = "probability"


# --------------------------------------------------------------------------- statistics

_NORMAL = NormalDist()
# Hall & Sheather (1988) bandwidth constant at the 95% level, as statsmodels' QuantReg uses.
_HS_Z = _NORMAL.inv_cdf(0.975)


def _order_statistics(
    acc: MetricAccumulator, spec: BinSpec, ranks: IntArray
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Estimate the order statistics at 0-based ``ranks`` from the fine histogram.

    Returns (estimate, error bound, extended bin index: 0 underflow .. n_bins+1 overflow).
    The k-th value of a bin holding ``c`` values is put at the centre of the k-th of ``c``
    equal sub-intervals; any point of the bin is within one bin width of the true value.
    """
    counts = acc.counts
    cum = np.cumsum(counts)
    k = np.searchsorted(cum, ranks, side="right")
    before = cum[k] - counts[k]
    lower = spec.lo + (k - 1) / spec.per_unit
    est = lower + (ranks - before + 0.5) / counts[k] / spec.per_unit
    bound = np.full(ranks.shape, spec.width)
    under, over = k == 0, k == spec.n_bins + 1
    est[under], est[over] = spec.lo, spec.hi
    bound[under] = max(spec.width, spec.lo - acc.min)
    bound[over] = max(spec.width, acc.max - spec.hi)
    # Every order statistic lies in [min, max]; clipping can only reduce the error.
    est = np.clip(est, acc.min, acc.max)
    at_min, at_max = ranks < acc.n_at_min, ranks >= acc.n - acc.n_at_max
    est[at_min], est[at_max] = acc.min, acc.max
    bound[at_min | at_max] = 0.0
    # A bin known to hold one value (a point mass between min and max): exact there too.
    if acc.atom_bins.size:
        pos = np.minimum(np.searchsorted(acc.atom_bins, k), acc.atom_bins.size - 1)
        atom = acc.atom_bins[pos] == k
        est[atom], bound[atom] = acc.atom_values[pos[atom]], 0.0
    return est, bound, k


def _linear_quantiles(
    acc: MetricAccumulator, spec: BinSpec, p: FloatArray
) -> tuple[FloatArray, FloatArray, IntArray, IntArray]:
    """Quantiles as np.quantile's "linear" method: interpolate order stats floor(h), ceil(h).

    Returns (value, error bound, bin of the lower order statistic, bin of the upper one).
    """
    h = (acc.n - 1) * p
    j = np.floor(h).astype(np.int64)
    g = h - j
    lo_est, lo_bound, lo_bin = _order_statistics(acc, spec, j)
    hi_est, hi_bound, hi_bin = _order_statistics(acc, spec, np.minimum(j + 1, acc.n - 1))
    # numpy's own lerp (np.quantile's _lerp), so exactly known order statistics give numpy's
    # bits, and two equal ones give that value, not a rounding of it.
    diff = hi_est - lo_est
    value = np.where(g >= 0.5, hi_est - diff * (1.0 - g), lo_est + diff * g)
    value = np.where(diff == 0.0, lo_est, value)
    # |(1-g)(e_j - x_j) + g(e_j+1 - x_j+1)| <= (1-g) b_j + g b_j+1.
    bound = np.where(lo_bound == hi_bound, lo_bound, (1.0 - g) * lo_bound + g * hi_bound)
    return value, bound, lo_bin, hi_bin


def hall_sheather_bandwidth(p: FloatArray, n: int) -> FloatArray:
    """Hall-Sheather bandwidth in probability units for the sparsity 1/f(Q(p)) [1]."""
    x = np.array([_NORMAL.inv_cdf(float(q)) for q in p])
    phi = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    h: FloatArray = (
        n ** (-1.0 / 3.0)
        * _HS_Z ** (2.0 / 3.0)
        * (1.5 * phi**2 / (2.0 * x**2 + 1.0)) ** (1.0 / 3.0)
    )
    return h


def quantiles(
    acc: MetricAccumulator, spec: BinSpec, p: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Quantiles, their error bounds and Monte Carlo standard errors from an accumulator.

    Parameters
    ----------
    acc, spec
        The metric's accumulator and bins.
    p
        Increasing probabilities in (0, 1).

    Returns
    -------
    value, error_bound, standard_error
        ``value`` is within ``error_bound`` [unit] of ``np.quantile(x, p)``.
        ``standard_error`` is the asymptotic ``sqrt(p (1 - p) / n) / f(Q(p))`` where
        ``1 / f`` is the difference quotient ``(Q(p + h) - Q(p - h)) / 2h`` with the
        Hall-Sheather bandwidth ``h``; NaN when n < 2, when the window reaches an
        under/overflow bin, or when it lies inside one fine bin (a point mass: the density
        is not resolvable at the histogram's resolution).
    """
    probs = np.asarray(p, dtype=np.float64)
    nan = np.full(probs.shape, np.nan)
    if acc.n == 0:
        return nan, nan, nan.copy()
    value, bound, _, _ = _linear_quantiles(acc, spec, probs)
    if np.all(np.diff(probs) >= 0):
        # Interpolation rounding must not put a p-quantile above a higher one.
        value = np.maximum.accumulate(value)
    if acc.n < 2:
        return value, bound, nan
    h = hall_sheather_bandwidth(probs, acc.n)
    p_lo, p_hi = np.maximum(probs - h, 0.0), np.minimum(probs + h, 1.0)
    q_lo, bound_lo, bin_lo, _ = _linear_quantiles(acc, spec, p_lo)
    q_hi, bound_hi, _, bin_hi = _linear_quantiles(acc, spec, p_hi)
    se = np.sqrt(probs * (1.0 - probs) / acc.n) * (q_hi - q_lo) / (p_hi - p_lo)
    outside = (bin_lo == 0) | (bin_hi == spec.n_bins + 1)
    se[outside | (bin_lo == bin_hi)] = np.nan
    # The whole window inside one point mass at min or max: the quantile does not move.
    exact = (bound_lo == 0.0) & (bound_hi == 0.0) & (q_lo == q_hi)
    se[exact] = 0.0
    return value, bound, se


class SummaryRow(NamedTuple):
    """One statistic of one metric; NaN marks an undefined value (null in Parquet)."""

    metric: str
    statistic: str
    value: float
    mc_standard_error: float
    n_trials: int
    unit: str
    quantile_error_bound: float


def _metric_rows(metric: str, acc: MetricAccumulator, unit: str) -> list[SummaryRow]:
    """mean, sd, min, max and the quantiles of one numeric metric."""
    n, sd, nan = acc.n, acc.sd, math.nan
    q, bound, se = quantiles(acc, metric_spec(metric), list(QUANTILE_LEVELS.values()))
    rows = [
        SummaryRow(metric, "mean", acc.mean if n else nan, sd / math.sqrt(max(n, 1)), n, unit, nan),
        SummaryRow(metric, "sd", sd, nan, n, unit, nan),
        SummaryRow(metric, "min", acc.min if n else nan, nan, n, unit, nan),
        SummaryRow(metric, "max", acc.max if n else nan, nan, n, unit, nan),
    ]
    rows += [
        SummaryRow(metric, stat, float(q[i]), float(se[i]), n, unit, float(bound[i]))
        for i, stat in enumerate(QUANTILE_LEVELS)
    ]
    return rows


def summary_rows(summary: BlockSummary) -> list[SummaryRow]:
    """Every statistic of every metric and event, in a stable order.

    Numeric metrics get mean, sd, min, max and p01..p99 over their finite trials (SE of the
    mean ``sd / sqrt(n)``); events get ``prob`` over the trials where they are defined (SE
    ``sqrt(p (1 - p) / n)``).
    """
    rows: list[SummaryRow] = []
    for metric, acc in summary.metrics.items():
        rows += _metric_rows(
            metric,
            acc,
            metric_unit(metric, summary.calendar_base_year, summary.fiscal_year_start_month),
        )
    for event, cnt in summary.events.items():
        n = cnt.n_defined
        prob = cnt.n_true / n if n else math.nan
        se = math.sqrt(prob * (1.0 - prob) / n) if n else math.nan
        rows.append(SummaryRow(event, "prob", prob, se, n, PROBABILITY_UNIT, math.nan))
    return rows


# --------------------------------------------------------------------------- BI histograms


def bi_histogram(acc: MetricAccumulator, spec: BinSpec) -> tuple[FloatArray, IntArray]:
    """Re-bin the fine histogram onto the fixed BI edges.

    Returns the ``n_bi_bins + 1`` edges and ``n_bi_bins + 2`` counts
    ``[below bi_lo, bins..., at or above bi_hi]``.
    """
    start = round((spec.bi_lo - spec.lo) * spec.per_unit)
    factor = round(spec.bi_width * spec.per_unit)
    stop = start + spec.n_bi_bins * factor
    fine = acc.counts[1:-1]
    inner = fine[start:stop].reshape(spec.n_bi_bins, factor).sum(axis=1)
    below = acc.counts[0] + fine[:start].sum()
    above = acc.counts[-1] + fine[stop:].sum()
    edges = spec.bi_lo + spec.bi_width * np.arange(spec.n_bi_bins + 1, dtype=np.float64)
    return edges, np.concatenate([[below], inner, [above]]).astype(np.int64)
