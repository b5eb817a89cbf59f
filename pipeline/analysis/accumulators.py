"""Mergeable, bounded-memory summaries of Monte Carlo outcomes: bins, accumulators, merging.

Each block of trials is reduced to a :class:`BlockSummary` whose size does not depend on the
number of trials: exact counts, Chan-merged moments, exact min/max and a fixed-edge fine
histogram per metric, and exact yes/no counts per event. :func:`merge` is associative, so
blocks can be reduced in any grouping or order (counts and histograms exactly, moments up to
float rounding). Quantiles, Monte Carlo standard errors and the coarser BI histograms are
all derived from the merged summary, never from a second pass over trials
(:mod:`pipeline.analysis.statistics`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from pipeline.common import MONTH_ABBREVIATIONS, BoolArray, FloatArray, IntArray
from pipeline.model.outcomes import BOOLEAN_OUTCOMES, ESCALATION_RULES, NUMERIC_OUTCOMES, Outcomes


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

    def bin_index(self, x: FloatArray) -> npt.NDArray[np.intp]:
        """Extended bin of each finite ``x``: 0 underflow, 1..n_bins, n_bins + 1 overflow."""
        pos = np.floor((x - self.lo) * self.per_unit)
        # Clip before the integer cast so huge values and inf cannot overflow the cast.
        np.clip(pos, -1, self.n_bins, out=pos)
        pos += 1.0
        return pos.astype(np.intp)

    def bin_counts(self, x: FloatArray) -> IntArray:
        """Counts of finite ``x`` as ``[underflow, bin 1..n_bins, overflow]``."""
        return np.bincount(self.bin_index(x), minlength=self.n_bins + 2).astype(np.int64)


# Per-metric edges. Fixed forever (per schema_version) so days and runs stay comparable.
# Memory per metric = 8 bytes x fine bins: 0.2 MB for months, 1.6 MB for money metrics.
_MONTHS = BinSpec("months", 0.0, 240.0, 100, 0.0, 120.0, 2.0)
_KRW = BinSpec("KRW bn", 0.0, 20_000.0, 10, 0.0, 8_000.0, 100.0)
_USD = BinSpec("USD m", 0.0, 20_000.0, 10, 0.0, 6_000.0, 100.0)

#: Fine and BI bins of every scalar numeric metric (results.NUMERIC_OUTCOMES and
#: :data:`DERIVED_NUMERIC`).
BIN_SPECS: Final[dict[str, BinSpec]] = {
    "talks_start_month": BinSpec("month index", 0.0, 240.0, 100, 0.0, 120.0, 2.0),
    "months_to_settlement": _MONTHS,
    "lapse_months": _MONTHS,
    "first_year": BinSpec("year", 2000.0, 2100.0, 100, 2020.5, 2040.5, 1.0),
    "first_year_krw_bn": _KRW,
    "first_year_usd_m": _USD,
    "increase_pct": BinSpec("%", -100.0, 1000.0, 100, -20.0, 180.0, 2.5),
    "term_years": BinSpec("years", 0.0, 50.0, 100, 0.5, 10.5, 1.0),
    "months_to_settlement_if_settled": _MONTHS,
    "stopgap_months": _MONTHS,
    "stopgap_first_year": BinSpec("year", 2000.0, 2100.0, 100, 2020.5, 2040.5, 1.0),
    "stopgap_level_krw_bn": _KRW,
    "renewal_first_year": BinSpec("year", 2000.0, 2100.0, 100, 2020.5, 2040.5, 1.0),
    "renewal_increase_pct": BinSpec("%", -100.0, 1000.0, 100, -20.0, 180.0, 2.5),
}
#: Numeric metrics derived from the outcome fields in :func:`numeric_metrics`, in row order.
DERIVED_NUMERIC: Final[tuple[str, ...]] = ("months_to_settlement_if_settled",)
#: Bins of the per-year contribution paths ``contribution_krw_bn_<year>`` / ``_usd_m_<year>``.
PATH_BIN_SPECS: Final[dict[str, BinSpec]] = {
    "contribution_krw_bn": _KRW,
    "contribution_usd_m": _USD,
}
#: Money metrics in the host currency, by any ISO 4217 code (``first_year_jpy_bn``,
#: ``contribution_jpy_bn_2028``): the KRW bins, in that currency's unit.
_HOST_MONEY = re.compile(r"^(first_year|contribution)_([a-z]{3})_bn(_\d{4})?$")


def host_metric(name: str, currency: str) -> str:
    """The published name of a host-currency metric: ``first_year_krw_bn`` becomes
    ``first_year_jpy_bn`` for a JPY host (Korea's names are unchanged)."""
    return name.replace("_krw_bn", f"_{currency.lower()}_bn", 1)


def metric_spec(metric: str) -> BinSpec:
    """The :class:`BinSpec` of a numeric metric name (including per-year path metrics)."""
    if metric in BIN_SPECS:
        return BIN_SPECS[metric]
    prefix, _, year = metric.rpartition("_")
    if prefix in PATH_BIN_SPECS and year.isdigit():
        return PATH_BIN_SPECS[prefix]
    if (money := _HOST_MONEY.match(metric)) and (money.group(1) == "first_year") != bool(
        money.group(3)
    ):
        return dataclasses.replace(_KRW, unit=f"{money.group(2).upper()} bn")
    # Any other money metric in a host currency (``stopgap_level_jpy_bn``): Korea's bins.
    korean = re.sub(r"_([a-z]{3})_bn$", "_krw_bn", metric)
    if korean != metric and korean in BIN_SPECS:
        currency = metric.rsplit("_", 2)[-2].upper()
        return dataclasses.replace(BIN_SPECS[korean], unit=f"{currency} bn")
    raise KeyError(f"no bin spec for metric {metric!r}")


def metric_unit(metric: str, calendar_base_year: int, fiscal_year_start_month: int = 1) -> str:
    """Unit string of a numeric metric as written to the outputs; month indexes name the
    calendar month of model month 0 (``month index (0 = Apr 2026)``: the first month of fiscal
    year ``calendar_base_year``)."""
    if metric == "talks_start_month":
        month = MONTH_ABBREVIATIONS[fiscal_year_start_month - 1]
        return f"month index (0 = {month} {calendar_base_year})"
    return metric_spec(metric).unit


# --------------------------------------------------------------------------- per-trial views


def numeric_metrics(outcomes: Outcomes) -> dict[str, FloatArray]:
    """Per-trial values of every numeric metric, NaN where undefined.

    The scalar fields of ``results.NUMERIC_OUTCOMES``; then ``months_to_settlement_if_settled``,
    the months from opening to agreement in settled trials only (NaN where no agreement is
    reached by the horizon, so its statistics are timings, never the censoring value that
    ``months_to_settlement`` carries there); then one column per path year of
    ``contribution_krw_bn_<year>`` and ``contribution_usd_m_<year>`` (the fan chart); money in
    the host currency is named by its code (:func:`host_metric`).
    """
    currency = outcomes.currency
    out: dict[str, FloatArray] = {
        host_metric(name, currency): getattr(outcomes, name) for name in NUMERIC_OUTCOMES
    }
    out["months_to_settlement_if_settled"] = np.where(
        outcomes.settled_by_horizon, outcomes.months_to_settlement, np.nan
    )
    for prefix in PATH_BIN_SPECS:
        path: FloatArray = getattr(outcomes, prefix)
        for j, year in enumerate(outcomes.path_years):
            out[f"{host_metric(prefix, currency)}_{year}"] = path[:, j]
    return out


def derived_events(outcomes: Outcomes) -> dict[str, BoolArray]:
    """Yes/no outcomes derived from the scalar outcomes, per trial.

    With ``b = calendar_base_year`` and months on the model calendar (month 0 = the first
    month of fiscal year b, ``fiscal_year_start_month`` of calendar year b; January for Korea),
    years ``y`` are the host's fiscal years (calendar years for Korea):

    - ``settled_by_<y>``: ``settlement_month < (y + 1 - b) * 12``, agreement by the end of y;
    - ``reopened_before_<y>``: ``reopened`` and ``talks_start_month < (y - b) * 12``, early
      talks opened before fiscal year y starts (Jan 1 of y for Korea);
    - ``no_deal_by_horizon``: ``not settled_by_horizon``;
    - ``settled_in_<y>``: ``settled_by_horizon`` and ``(y - b) * 12 <= settlement_month <
      (y + 1 - b) * 12``, agreement during fiscal year y. A run's path years run from b to the horizon year, so these
      shares and ``no_deal_by_horizon`` partition the trials (they sum to 1).

    NaN months (no agreement) compare False, so unsettled trials are never "settled by" or
    "settled in".
    """
    base = outcomes.calendar_base_year
    events: dict[str, BoolArray] = {}
    for year in outcomes.path_years:
        events[f"settled_by_{year}"] = outcomes.settlement_month < (year + 1 - base) * 12
    for year in outcomes.path_years:
        early = outcomes.talks_start_month < (year - base) * 12
        events[f"reopened_before_{year}"] = outcomes.reopened & early
    events["no_deal_by_horizon"] = ~outcomes.settled_by_horizon
    # The settlement-time distribution; appended last so earlier rows keep their order.
    for year in outcomes.path_years:
        since = outcomes.settlement_month >= (year - base) * 12
        in_year = events[f"settled_by_{year}"] & since
        events[f"settled_in_{year}"] = in_year & outcomes.settled_by_horizon
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
    n_at_min: int = 0
    """Values exactly equal to :attr:`min` (a point mass there: quantiles inside it are exact)."""
    n_at_max: int = 0
    """Values exactly equal to :attr:`max`."""
    atom_bins: IntArray = dataclasses.field(default_factory=lambda: _NO_BINS)
    """Extended bins (increasing) known to hold one single value: a point mass, exact inside."""
    atom_values: FloatArray = dataclasses.field(default_factory=lambda: _NO_VALUES)
    """That value, per entry of :attr:`atom_bins`."""
    span: tuple[int, int] | None = None
    """Extended bins ``span[0]:span[1]`` hold every non-zero count (None: not known). Merges
    and pickles touch only those: a block's values span a small part of up to 200,000 bins."""

    @property
    def _span(self) -> tuple[int, int]:
        return self.span if self.span is not None else (0, self.counts.size)

    @staticmethod
    def from_values(values: npt.ArrayLike, spec: BinSpec) -> MetricAccumulator:
        """Accumulate the finite entries of ``values`` (NaN and +-inf are skipped)."""
        x = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(x)
        if not finite.all():
            x = x[finite]
        # Zeroed lazily by the allocator: only the bins the values span are written, which
        # saves most of the cost of a block's histograms (up to 200,000 bins per metric).
        counts = np.zeros(spec.n_bins + 2, dtype=np.int64)
        if x.size == 0:
            counts.flags.writeable = False
            return MetricAccumulator((), math.inf, -math.inf, counts, span=(0, 0))
        idx = spec.bin_index(x)
        first = int(idx.min())
        local = idx - first
        span = np.bincount(local)
        counts[first : first + span.size] = span
        counts.flags.writeable = False
        # Point masses anywhere (a level fixed by the agreement in force, 0 months): bins whose
        # values are all equal. Only bins with at least two values of the block are listed, so
        # the list stays short for continuous metrics; an unlisted non-empty bin is "not known
        # to be one value", which merging keeps (see merge).
        lo_in_bin = np.full(span.size, math.inf)
        hi_in_bin = np.full(span.size, -math.inf)
        np.minimum.at(lo_in_bin, local, x)
        np.maximum.at(hi_in_bin, local, x)
        in_span = np.flatnonzero((span >= 2) & (lo_in_bin == hi_in_bin))
        bins = (in_span + first).astype(np.int64)
        atoms = lo_in_bin[in_span]
        # Corrected two-pass algorithm (Chan, Golub & LeVeque 1983): accurate m2 in a block.
        mean = float(x.mean())
        d = x - mean
        dsum = float(d.sum())
        # np.sum (pairwise, no BLAS): the same bits whatever the BLAS thread count.
        m2 = max(float(np.sum(d * d)) - dsum * dsum / x.size, 0.0)
        part = (int(x.size), mean + dsum / x.size, m2)
        lo, hi = float(x.min()), float(x.max())
        n_lo, n_hi = int(np.count_nonzero(x == lo)), int(np.count_nonzero(x == hi))
        return MetricAccumulator(
            (part,), lo, hi, counts, n_lo, n_hi, bins, atoms, (first, first + span.size)
        )

    def _atoms_merged(self, other: MetricAccumulator) -> tuple[IntArray, FloatArray]:
        """Bins known to hold one value after a merge: a bin stays listed when every side that
        has values in it lists it with the same value. Per bin this is the commutative and
        associative operation empty . s = s, one(v) . one(v) = one(v), anything else = not
        known, so the result does not depend on how blocks were grouped or ordered."""
        pos = np.searchsorted(other.atom_bins, self.atom_bins)
        pos = np.minimum(pos, max(other.atom_bins.size - 1, 0))
        same = (
            (other.atom_bins[pos] == self.atom_bins) & (other.atom_values[pos] == self.atom_values)
            if other.atom_bins.size
            else np.zeros(self.atom_bins.size, dtype=bool)
        )
        mine = same | (other.counts[self.atom_bins] == 0)
        theirs = self.counts[other.atom_bins] == 0  # bins in both lists were decided by ``same``
        bins = np.concatenate([self.atom_bins[mine], other.atom_bins[theirs]])
        values = np.concatenate([self.atom_values[mine], other.atom_values[theirs]])
        order = np.argsort(bins, kind="stable")
        return bins[order], values[order]

    def merge(self, other: MetricAccumulator) -> MetricAccumulator:
        """Combine two accumulators (order and grouping do not change any result)."""
        if self.counts.shape != other.counts.shape:
            raise ValueError("cannot merge accumulators with different bins")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        # Lazily zeroed pages; only the two spans are written.
        counts = np.zeros(self.counts.size, dtype=np.int64)
        (a0, a1), (b0, b1) = self._span, other._span
        counts[a0:a1] = self.counts[a0:a1]
        counts[b0:b1] += other.counts[b0:b1]
        counts.flags.writeable = False
        span = (min(a0, b0), max(a1, b1))
        lo, hi = min(self.min, other.min), max(self.max, other.max)
        n_lo = (self.n_at_min if self.min == lo else 0) + (other.n_at_min if other.min == lo else 0)
        n_hi = (self.n_at_max if self.max == hi else 0) + (other.n_at_max if other.max == hi else 0)
        bins, atoms = self._atoms_merged(other)
        return MetricAccumulator(
            self.parts + other.parts, lo, hi, counts, n_lo, n_hi, bins, atoms, span
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
        start, stop = self._span
        blob = zlib.compress(self.counts[start:stop].astype("<i8").tobytes(), 1)
        state = (self.parts, self.min, self.max, blob, self.n_at_min, self.n_at_max,
                 self.atom_bins, self.atom_values, self.counts.size, start)  # fmt: skip
        return (_unpickle_accumulator, state)


_NO_BINS: Final[IntArray] = np.empty(0, dtype=np.int64)
_NO_VALUES: Final[FloatArray] = np.empty(0, dtype=np.float64)


def _unpickle_accumulator(
    parts: tuple[tuple[int, float, float], ...], lo: float, hi: float, blob: bytes,
    n_lo: int = 0, n_hi: int = 0, bins: IntArray = _NO_BINS, atoms: FloatArray = _NO_VALUES,
    size: int | None = None, start: int = 0,
) -> MetricAccumulator:  # fmt: skip
    stored = np.frombuffer(zlib.decompress(blob), dtype="<i8")
    counts = np.zeros(stored.size if size is None else size, dtype=np.int64)
    counts[start : start + stored.size] = stored
    counts.flags.writeable = False
    span = (start, start + stored.size)
    return MetricAccumulator(parts, lo, hi, counts, n_lo, n_hi, bins, atoms, span)


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
    fiscal_year_start_month: int = 1
    """Calendar month of model month 0 (names it in month-index units) [month 1-12]."""

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
        metrics, events, outcomes.fiscal_year_start_month,
    )  # fmt: skip


def merge(a: BlockSummary, b: BlockSummary) -> BlockSummary:
    """Combine two summaries; associative and commutative (up to float rounding of moments)."""
    calendar = ("calendar_base_year", "path_years", "fiscal_year_start_month")
    if any(getattr(a, name) != getattr(b, name) for name in calendar):
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
        a.fiscal_year_start_month,
    )


def merge_all(summaries: Iterable[BlockSummary]) -> BlockSummary:
    """Fold summaries left to right; memory stays O(one summary) for a lazy iterable."""
    try:
        return functools.reduce(merge, summaries)
    except TypeError as exc:  # reduce() of an empty iterable
        raise ValueError("no summaries to merge") from exc
