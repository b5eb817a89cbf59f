"""Mergeable, bounded-memory summaries of Monte Carlo outcomes.

Each block of trials is reduced to a :class:`BlockSummary` whose size does not depend on the
number of trials: exact counts, Chan-merged moments, exact min/max and a fixed-edge fine
histogram per metric, and exact yes/no counts per event. :func:`merge` is associative, so
blocks can be reduced in any grouping or order (counts and histograms exactly, moments up to
float rounding). Quantiles, Monte Carlo standard errors and the coarser BI histograms are
all derived from the merged summary, never from a second pass over trials.

Quantile error bound
--------------------
A quantile is interpolated between the two order statistics ``np.quantile`` (method
``"linear"``) would use; each is located exactly in its fine bin by the cumulative counts and
estimated inside that bin, so ``|estimate - np.quantile(x, p)| <= bin width`` (plus float
rounding). Order statistics outside the fine range are clamped to the range edge and the
stated bound widens to the known distance to the exact min or max.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pipeline.common import QUANTILE_LEVELS, BoolArray, FloatArray, IntArray
from pipeline.model.outcomes import BOOLEAN_OUTCOMES, ESCALATION_RULES, NUMERIC_OUTCOMES, Outcomes
from pipeline.outputs.schema import (
    HISTOGRAMS_SCHEMA,
    SCHEMA_VERSION,
    SUMMARY_SCHEMA,
    TIMESTAMP,
    require_utc,
    trials_schema,
)

PROBABILITY_UNIT: Final[str] = "probability"


@dataclass(frozen=True)
class BinSpec:
    """Fixed histogram edges of one metric.

    The fine histogram covers ``[lo, hi)`` in bins of width ``1 / per_unit`` (the quantile
    error bound); the BI histogram covers ``[bi_lo, bi_hi)`` in bins of ``bi_width``, each an
    exact union of fine bins so it is obtained by re-binning. Values outside either range go
    to an underflow or overflow bin. All values are in ``unit``.
    """

    unit: str
    lo: float
    hi: float
    per_unit: int
    bi_lo: float
    bi_hi: float
    bi_width: float

    def __post_init__(self) -> None:
        # Re-binning by reshape needs BI edges that are fine edges; check once, at import.
        for name, x in (
            ("hi - lo", self.hi - self.lo),
            ("bi_lo - lo", self.bi_lo - self.lo),
            ("bi_width", self.bi_width),
        ):
            if not math.isclose(x * self.per_unit, round(x * self.per_unit), abs_tol=1e-9):
                raise ValueError(f"{name}={x} is not a whole number of fine bins")
        if not (self.lo <= self.bi_lo < self.bi_hi <= self.hi):
            raise ValueError("the BI range must lie inside the fine range")
        k = (self.bi_hi - self.bi_lo) / self.bi_width
        if not math.isclose(k, round(k)):
            raise ValueError("the BI range is not a whole number of BI bins")

    @property
    def width(self) -> float:
        """Fine bin width = quantile error bound [unit]."""
        return 1.0 / self.per_unit

    @property
    def n_bins(self) -> int:
        """Number of fine bins inside ``[lo, hi)``."""
        return round((self.hi - self.lo) * self.per_unit)

    @property
    def n_bi_bins(self) -> int:
        """Number of BI bins inside ``[bi_lo, bi_hi)``."""
        return round((self.bi_hi - self.bi_lo) / self.bi_width)

    def edges(self) -> FloatArray:
        """The ``n_bins + 1`` fine edges [unit]."""
        return self.lo + np.arange(self.n_bins + 1, dtype=np.float64) / self.per_unit

    def bin_counts(self, x: FloatArray) -> IntArray:
        """Counts of finite ``x`` as ``[underflow, bin 1..n_bins, overflow]``."""
        pos = np.floor((x - self.lo) * self.per_unit)
        # Clip before the integer cast so huge values and inf cannot overflow the cast.
        idx = np.clip(pos, -1, self.n_bins).astype(np.intp) + 1
        return np.bincount(idx, minlength=self.n_bins + 2).astype(np.int64)


# Per-metric edges. Fixed forever (per schema_version) so days and runs stay comparable.
# Memory per metric = 8 bytes x fine bins: 0.2 MB for months, 1.6 MB for money metrics.
_MONTHS = BinSpec("months", 0.0, 240.0, 100, 0.0, 120.0, 2.0)
_KRW = BinSpec("KRW bn", 0.0, 20_000.0, 10, 0.0, 8_000.0, 100.0)
_USD = BinSpec("USD m", 0.0, 20_000.0, 10, 0.0, 6_000.0, 100.0)

#: Fine and BI bins of every scalar numeric metric (results.NUMERIC_OUTCOMES).
BIN_SPECS: Final[dict[str, BinSpec]] = {
    "talks_start_month": BinSpec("month index", 0.0, 240.0, 100, 0.0, 120.0, 2.0),
    "months_to_settlement": _MONTHS,
    "lapse_months": _MONTHS,
    "first_year": BinSpec("year", 2000.0, 2100.0, 100, 2020.5, 2040.5, 1.0),
    "first_year_krw_bn": _KRW,
    "first_year_usd_m": _USD,
    "increase_pct": BinSpec("%", -100.0, 1000.0, 100, -20.0, 180.0, 2.5),
    "term_years": BinSpec("years", 0.0, 50.0, 100, 0.5, 10.5, 1.0),
}
#: Bins of the per-year contribution paths ``contribution_krw_bn_<year>`` / ``_usd_m_<year>``.
PATH_BIN_SPECS: Final[dict[str, BinSpec]] = {
    "contribution_krw_bn": _KRW,
    "contribution_usd_m": _USD,
}


def metric_spec(metric: str) -> BinSpec:
    """The :class:`BinSpec` of a numeric metric name (including per-year path metrics)."""
    if metric in BIN_SPECS:
        return BIN_SPECS[metric]
    prefix, _, year = metric.rpartition("_")
    if prefix in PATH_BIN_SPECS and year.isdigit():
        return PATH_BIN_SPECS[prefix]
    raise KeyError(f"no bin spec for metric {metric!r}")


def metric_unit(metric: str, calendar_base_year: int) -> str:
    """Unit string of a numeric metric as written to the outputs."""
    if metric == "talks_start_month":
        return f"month index (0 = Jan {calendar_base_year})"
    return metric_spec(metric).unit


# --------------------------------------------------------------------------- per-trial views


def numeric_metrics(outcomes: Outcomes) -> dict[str, FloatArray]:
    """Per-trial values of every numeric metric, NaN where undefined.

    The scalar fields of ``results.NUMERIC_OUTCOMES``, then one column per path year of
    ``contribution_krw_bn_<year>`` and ``contribution_usd_m_<year>`` (the fan chart).
    """
    out: dict[str, FloatArray] = {name: getattr(outcomes, name) for name in NUMERIC_OUTCOMES}
    for prefix in PATH_BIN_SPECS:
        path: FloatArray = getattr(outcomes, prefix)
        for j, year in enumerate(outcomes.path_years):
            out[f"{prefix}_{year}"] = path[:, j]
    return out


def derived_events(outcomes: Outcomes) -> dict[str, BoolArray]:
    """Yes/no outcomes derived from the scalar outcomes, per trial.

    With ``b = calendar_base_year`` and months on the model calendar (month 0 = Jan of b):

    - ``settled_by_<y>``: ``settlement_month < (y + 1 - b) * 12``, agreement by the end of y;
    - ``reopened_before_<y>``: ``reopened`` and ``talks_start_month < (y - b) * 12``, early
      talks opened before Jan 1 of y;
    - ``no_deal_by_horizon``: ``not settled_by_horizon``.

    NaN months (no agreement) compare False, so unsettled trials are never "settled by".
    """
    base = outcomes.calendar_base_year
    events: dict[str, BoolArray] = {}
    for year in outcomes.path_years:
        events[f"settled_by_{year}"] = outcomes.settlement_month < (year + 1 - base) * 12
    for year in outcomes.path_years:
        early = outcomes.talks_start_month < (year - base) * 12
        events[f"reopened_before_{year}"] = outcomes.reopened & early
    events["no_deal_by_horizon"] = ~outcomes.settled_by_horizon
    return events


def _events(outcomes: Outcomes) -> dict[str, tuple[BoolArray, BoolArray | None]]:
    """Every event as (value, mask of trials where it is defined; None = all trials)."""
    out: dict[str, tuple[BoolArray, BoolArray | None]] = {
        name: (getattr(outcomes, name), None) for name in BOOLEAN_OUTCOMES
    }
    out.update({name: (v, None) for name, v in derived_events(outcomes).items()})
    # The rule only exists once there is an agreement: share among settled trials.
    settled = outcomes.escalation_rule >= 0
    for code, rule in enumerate(ESCALATION_RULES):
        out[f"escalation_rule_{rule}"] = (outcomes.escalation_rule == code, settled)
    return out


# --------------------------------------------------------------------------- accumulators


@dataclass(frozen=True, eq=False)
class MetricAccumulator:
    """Sufficient statistics of the finite values of one metric.

    ``parts`` holds ``(n, mean, m2)`` of each block (m2: sum of squared deviations from the
    block mean); ``counts`` is the fine histogram ``[underflow, bins 1..n_bins, overflow]`` of
    :class:`BinSpec`. Merging concatenates parts, and :attr:`mean` / :attr:`m2` combine them
    with exactly rounded sums (``math.fsum``), so the result is bit-identical however blocks
    were grouped or ordered (worker count, completion order). Memory grows by three floats per
    block per metric, not with trials.
    """

    parts: tuple[tuple[int, float, float], ...]
    min: float
    max: float
    counts: IntArray

    @staticmethod
    def from_values(values: npt.ArrayLike, spec: BinSpec) -> MetricAccumulator:
        """Accumulate the finite entries of ``values`` (NaN and +-inf are skipped)."""
        x = np.asarray(values, dtype=np.float64).ravel()
        x = x[np.isfinite(x)]
        counts = spec.bin_counts(x)
        counts.flags.writeable = False
        if x.size == 0:
            return MetricAccumulator((), math.inf, -math.inf, counts)
        # Corrected two-pass algorithm (Chan, Golub & LeVeque 1983): accurate m2 in a block.
        mean = float(x.mean())
        d = x - mean
        dsum = float(d.sum())
        # np.sum (pairwise, no BLAS): the same bits whatever the BLAS thread count.
        m2 = max(float(np.sum(d * d)) - dsum * dsum / x.size, 0.0)
        part = (int(x.size), mean + dsum / x.size, m2)
        return MetricAccumulator((part,), float(x.min()), float(x.max()), counts)

    def merge(self, other: MetricAccumulator) -> MetricAccumulator:
        """Combine two accumulators (order and grouping do not change any result)."""
        if self.counts.shape != other.counts.shape:
            raise ValueError("cannot merge accumulators with different bins")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        counts = self.counts + other.counts
        counts.flags.writeable = False
        return MetricAccumulator(
            self.parts + other.parts, min(self.min, other.min), max(self.max, other.max), counts
        )

    @functools.cached_property
    def n(self) -> int:
        return sum(n for n, _, _ in self.parts)

    @functools.cached_property
    def mean(self) -> float:
        """Mean of all values; 0.0 when there are none."""
        if not self.parts:
            return 0.0
        return math.fsum(n * m for n, m, _ in self.parts) / self.n

    @functools.cached_property
    def m2(self) -> float:
        """Sum of squared deviations from :attr:`mean` (blocks' m2 plus between-block terms)."""
        mean = self.mean
        return math.fsum(
            term for n, m, m2 in self.parts for term in (m2, n * (m - mean) * (m - mean))
        )

    @property
    def sd(self) -> float:
        """Sample standard deviation (n - 1 denominator); NaN if n < 2."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n >= 2 else math.nan

    def __reduce__(self) -> tuple[Callable[..., MetricAccumulator], tuple[object, ...]]:
        # Fine histograms are mostly zeros: compressed, a summary pickles ~100x smaller,
        # which matters when Prefect/Dask ship block summaries between processes.
        blob = zlib.compress(self.counts.astype("<i8").tobytes(), 1)
        return (_unpickle_accumulator, (self.parts, self.min, self.max, blob))


def _unpickle_accumulator(
    parts: tuple[tuple[int, float, float], ...], lo: float, hi: float, blob: bytes
) -> MetricAccumulator:
    counts = np.frombuffer(zlib.decompress(blob), dtype="<i8").astype(np.int64)
    counts.flags.writeable = False
    return MetricAccumulator(parts, lo, hi, counts)


class EventCount(NamedTuple):
    """Exact counts of one yes/no outcome."""

    n_true: int
    n_defined: int

    def merge(self, other: EventCount) -> EventCount:
        return EventCount(self.n_true + other.n_true, self.n_defined + other.n_defined)


@dataclass(frozen=True, eq=False)
class BlockSummary:
    """Mergeable summary of one or more blocks of trials.

    Its size depends on the metrics and bins only (a few MB per path year), never on the
    number of trials, so 10^8 trials reduce in bounded memory with :func:`merge_all`.
    """

    calendar_base_year: int
    path_years: tuple[int, ...]
    n_trials: int
    """Trials simulated, before evidence conditioning."""
    n_effective: int
    """Trials kept by ``weights_mask`` (all trials if there was none)."""
    metrics: Mapping[str, MetricAccumulator]
    events: Mapping[str, EventCount]

    @property
    def nbytes(self) -> int:
        """Approximate memory of the histograms [bytes]."""
        return sum(acc.counts.nbytes for acc in self.metrics.values())


def summarize_block(outcomes: Outcomes, *, weights_mask: BoolArray | None = None) -> BlockSummary:
    """Reduce one block of trials to a :class:`BlockSummary`.

    Parameters
    ----------
    outcomes
        Per-trial outcomes of the block.
    weights_mask
        Optional boolean mask of the trials consistent with the evidence (rejection
        conditioning); only those are summarised. ``n_effective`` records how many.
    """
    n_trials = outcomes.n_trials
    if weights_mask is not None:
        mask = np.asarray(weights_mask)
        if mask.dtype != np.bool_ or mask.shape != (n_trials,):
            raise ValueError(f"weights_mask must be a boolean array of shape ({n_trials},)")
        outcomes = outcomes.take(mask)
    metrics = {
        name: MetricAccumulator.from_values(values, metric_spec(name))
        for name, values in numeric_metrics(outcomes).items()
    }
    events = {
        name: EventCount(
            int(np.count_nonzero(v if d is None else v & d)),
            outcomes.n_trials if d is None else int(np.count_nonzero(d)),
        )
        for name, (v, d) in _events(outcomes).items()
    }
    return BlockSummary(
        outcomes.calendar_base_year, tuple(outcomes.path_years), n_trials, outcomes.n_trials,
        metrics, events,
    )  # fmt: skip


def merge(a: BlockSummary, b: BlockSummary) -> BlockSummary:
    """Combine two summaries; associative and commutative (up to float rounding of moments)."""
    if (a.calendar_base_year, a.path_years) != (b.calendar_base_year, b.path_years):
        raise ValueError("cannot merge summaries with different calendars or path years")
    if a.metrics.keys() != b.metrics.keys() or a.events.keys() != b.events.keys():
        raise ValueError("cannot merge summaries with different metrics")
    return BlockSummary(
        a.calendar_base_year,
        a.path_years,
        a.n_trials + b.n_trials,
        a.n_effective + b.n_effective,
        {name: acc.merge(b.metrics[name]) for name, acc in a.metrics.items()},
        {name: cnt.merge(b.events[name]) for name, cnt in a.events.items()},
    )


def merge_all(summaries: Iterable[BlockSummary]) -> BlockSummary:
    """Fold summaries left to right; memory stays O(one summary) for a lazy iterable."""
    try:
        return functools.reduce(merge, summaries)
    except TypeError as exc:  # reduce() of an empty iterable
        raise ValueError("no summaries to merge") from exc


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
    return np.clip(est, acc.min, acc.max), bound, k


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
    value = (1.0 - g) * lo_est + g * hi_est
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
    q_lo, _, bin_lo, _ = _linear_quantiles(acc, spec, p_lo)
    q_hi, _, _, bin_hi = _linear_quantiles(acc, spec, p_hi)
    se = np.sqrt(probs * (1.0 - probs) / acc.n) * (q_hi - q_lo) / (p_hi - p_lo)
    outside = (bin_lo == 0) | (bin_hi == spec.n_bins + 1)
    se[outside | (bin_lo == bin_hi)] = np.nan
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
        rows += _metric_rows(metric, acc, metric_unit(metric, summary.calendar_base_year))
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


# --------------------------------------------------------------------------- Arrow tables


def _utc_us(created_at: dt.datetime) -> pa.Scalar:
    require_utc(created_at, "created_at")
    return pa.scalar(created_at, type=TIMESTAMP)


def _common(run_id: str, created_at: dt.datetime, n: int) -> dict[str, pa.Array]:
    return {
        "schema_version": pa.repeat(pa.scalar(SCHEMA_VERSION, pa.int32()), n),
        "created_at": pa.repeat(_utc_us(created_at), n),
        "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
    }


def _float(x: npt.ArrayLike) -> pa.Array:
    """float64 array with NaN as null (BI tools handle null, not NaN)."""
    return pa.array(np.asarray(x, dtype=np.float64), type=pa.float64(), from_pandas=True)


def to_summary_frame(summary: BlockSummary, *, run_id: str, created_at: dt.datetime) -> pa.Table:
    """The ``summary`` dataset rows of one scenario (schema.SUMMARY_SCHEMA).

    Partition values (as_of_date, scenario) are not columns: pass them to ``io.publish_run``.
    """
    rows = summary_rows(summary)
    cols = _common(run_id, created_at, len(rows))
    cols.update(
        metric=pa.array([r.metric for r in rows], pa.string()),
        statistic=pa.array([r.statistic for r in rows], pa.string()),
        value=_float([r.value for r in rows]),
        mc_standard_error=_float([r.mc_standard_error for r in rows]),
        n_trials=pa.array([r.n_trials for r in rows], pa.int64()),
        unit=pa.array([r.unit for r in rows], pa.string()),
        quantile_error_bound=_float([r.quantile_error_bound for r in rows]),
    )
    return pa.table([cols[f.name] for f in SUMMARY_SCHEMA], schema=SUMMARY_SCHEMA)


def to_histogram_frame(summary: BlockSummary, *, run_id: str, created_at: dt.datetime) -> pa.Table:
    """The ``histograms`` dataset rows of one scenario (schema.HISTOGRAMS_SCHEMA).

    Every numeric metric on its fixed BI edges, with an open-ended bin at each end so the
    counts of a metric sum to the trials where it is defined.
    """
    parts: dict[str, list[npt.NDArray[np.generic]]] = {
        k: [] for k in ("metric", "bin_index", "lower", "upper", "count", "prob", "dens", "unit")
    }
    for metric, acc in summary.metrics.items():
        spec = metric_spec(metric)
        edges, counts = bi_histogram(acc, spec)
        m = counts.size
        lower = np.concatenate([[np.nan], edges])
        upper = np.concatenate([edges, [np.nan]])
        prob = counts / acc.n if acc.n else np.full(m, np.nan)
        parts["metric"].append(np.full(m, metric, dtype=object))
        parts["bin_index"].append(np.arange(m, dtype=np.int32))
        parts["lower"].append(lower)
        parts["upper"].append(upper)
        parts["count"].append(counts)
        parts["prob"].append(prob)
        parts["dens"].append(prob / (upper - lower))
        parts["unit"].append(
            np.full(m, metric_unit(metric, summary.calendar_base_year), dtype=object)
        )
    cat = {k: np.concatenate(v) if v else np.array([]) for k, v in parts.items()}
    n = cat["count"].size
    cols = _common(run_id, created_at, n)
    cols.update(
        metric=pa.array(cat["metric"], pa.string()),
        bin_index=pa.array(cat["bin_index"], pa.int32()),
        bin_lower=_float(cat["lower"]),
        bin_upper=_float(cat["upper"]),
        count=pa.array(cat["count"], pa.int64()),
        probability=_float(cat["prob"]),
        density=_float(cat["dens"]),
        unit=pa.array(cat["unit"], pa.string()),
    )
    return pa.table([cols[f.name] for f in HISTOGRAMS_SCHEMA], schema=HISTOGRAMS_SCHEMA)


def to_trials_frame(
    outcomes: Outcomes, *, run_id: str, first_trial_index: int, created_at: dt.datetime
) -> pa.Table:
    """Trial-level rows of ``outcomes`` for the optional ``trials`` dataset.

    Take a sample first (``outcomes.take(...)``); ``trial_index`` numbers the rows from
    ``first_trial_index``. NaN becomes null; the escalation rule is written by name.
    """
    n = outcomes.n_trials
    schema = trials_schema(outcomes.path_years)
    cols = _common(run_id, created_at, n)
    cols["trial_index"] = pa.array(np.arange(first_trial_index, first_trial_index + n), pa.int64())
    names = np.array([*ESCALATION_RULES, None], dtype=object)  # code -1 indexes the None
    for name, arr in outcomes.arrays().items():
        if name == "escalation_rule":
            cols[name] = pa.array(names[arr], pa.string())
        elif arr.ndim == 2:
            for j, year in enumerate(outcomes.path_years):
                cols[f"{name}_{year}"] = _float(arr[:, j])
        elif arr.dtype == np.bool_:
            cols[name] = pa.array(arr, pa.bool_())
        else:
            cols[name] = _float(arr)
    return pa.table([cols[f.name] for f in schema], schema=schema)
