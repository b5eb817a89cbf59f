"""Input importance from the forecast's own trials: Spearman rank correlations and tornado
swings, on a bounded, mergeable sample of the run's trials.

This module also holds the row contract shared with the variance-based indices of
:mod:`pipeline.analysis.sobol`: :class:`SensitivityRow`, :data:`KEY_OUTPUTS` and the unit and
rank helpers. The rows become the ``sensitivity`` dataset in
:mod:`pipeline.outputs.tables.sensitivity`.

Three layers, as elsewhere in the pipeline:

1. a plain function of arrays: :func:`rank_sensitivity` (Spearman + tornado of any inputs
   against any outputs);
2. the model: :func:`sensitivity_from_trials` (forecast trials -> rows);
3. a mergeable, bounded accumulator for the block-parallel flow: :class:`TrialSample`
   (:func:`sample_trials`, :func:`merge_samples`, :func:`sample_run`).

Bounded sample
--------------
Rank statistics need the trials themselves, not moments, so a run of 10^8 trials is analysed on
a fixed-size sample: **the first** ``capacity`` **trials of the run by global trial index**.
A forecast run keeps K = :data:`DEFAULT_CAPACITY` = 100,000 trials (the one definition; a run
may pass another ``capacity``). Blocks contribute the part of themselves below that
index and parts are keyed by their first trial index, so merging in any order or grouping gives
the same arrays, and the sample depends only on (scenario, seed, chunk_size, capacity), never on
workers. Trials are independent draws, so the first K trials are a simple random sample of the
run; the only error against the full run is sampling error of order 1/sqrt(K): at K = 100,000
the standard error of a Spearman rho is at most 0.0032 (``(1 - rho^2) / sqrt(K)`` roughly) and a
decile-group median (10,000 trials) has a standard error of about 1.3% of that group's standard
deviation. Runs of at most ``capacity`` trials are analysed exactly. Because the sample is the
first blocks, a flow may instead re-run blocks ``0 .. ceil(K / chunk_size) - 1``
(:func:`sample_run`).

Missing values
--------------
Spearman and tornado rows use the trials where the output is finite (``increase_pct`` is
undefined where no agreement is reached by the horizon, 1.9% of the baseline) and say how many
in ``n_trials``. ``months_to_settlement`` is censored at the horizon and
``contribution_krw_bn_<year>`` is always defined.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from pipeline.analysis.accumulators import host_metric, metric_unit, numeric_metrics
from pipeline.common import BoolArray, FloatArray
from pipeline.model.outcomes import Outcomes
from pipeline.model.plan import Plan, run_block
from pipeline.spec.catalog import INPUT_BY_NAME

__all__ = [
    "DEFAULT_CAPACITY",
    "EVENT_PREFIX",
    "GROUP_PREFIX",
    "KEY_OUTPUTS",
    "key_outputs",
    "RANK_CORRELATION_UNIT",
    "SensitivityRow",
    "TrialSample",
    "average_ranks",
    "importance_ranks",
    "input_unit",
    "merge_samples",
    "output_values",
    "rank_sensitivity",
    "rows_by",
    "sample_run",
    "sample_trials",
    "sensitivity_from_sample",
    "sensitivity_from_trials",
]


def key_outputs(path_years: Sequence[int], currency: str = "KRW") -> tuple[str, ...]:
    """The outputs analysed by default: first-year increase, length of talks, and the
    contribution in the third year of the path (the last, for a shorter path), named in the
    host currency."""
    year = path_years[min(2, len(path_years) - 1)]
    return (
        "increase_pct",
        "months_to_settlement",
        f"{host_metric('contribution_krw_bn', currency)}_{year}",
    )


#: The default scenarios' key outputs (path 2026-2031, KRW): ``contribution_krw_bn_2028``.
KEY_OUTPUTS: Final[tuple[str, ...]] = key_outputs((2026, 2027, 2028))
#: Trials kept for rank sensitivity: the first this many of a run, by global trial index (the one
#: definition; ``pipeline.compose.RunSettings.sensitivity_capacity`` defaults to it).
DEFAULT_CAPACITY: Final[int] = 100_000
#: Decile bounds of the tornado groups.
TORNADO_LEVELS: Final[tuple[float, float]] = (0.1, 0.9)

Method = Literal["spearman", "tornado", "sobol"]
RANK_CORRELATION_UNIT: Final[str] = "rank correlation (-1 to 1)"
#: Name prefixes of the Sobol' factors that are chance draws or groups of correlated inputs.
EVENT_PREFIX: Final[str] = "event:"
GROUP_PREFIX: Final[str] = "group:"


# --------------------------------------------------------------------------- the contract


class SensitivityRow(NamedTuple):
    """One statistic of one input for one output; NaN marks an undefined value."""

    metric: str
    input: str
    method: Method
    statistic: str
    value: float
    ci_low: float
    ci_high: float
    input_value: float
    n_trials: int
    rank: int | None
    unit: str
    input_unit: str


# --------------------------------------------------------------------------- helpers


def _normal_critical_value(confidence_level: float) -> float:
    """The two-sided standard normal critical value of ``confidence_level`` (1.96 at 95%)."""
    if not 0.0 < confidence_level < 1.0:
        raise ValueError("confidence_level must lie in (0, 1)")
    return NormalDist().inv_cdf(0.5 + confidence_level / 2.0)


def input_unit(name: str) -> str:
    """Unit of an input or Sobol' factor name (catalog unit; '' for an unknown name)."""
    if name.startswith(EVENT_PREFIX):
        return "uniform draw"
    if name.startswith(GROUP_PREFIX):
        return "group of inputs"
    info = INPUT_BY_NAME.get(name)
    return info.unit if info is not None else ""


def _is_categorical(name: str) -> bool:
    info = INPUT_BY_NAME.get(name)
    return info is not None and info.kind == "category"


def importance_ranks(score: FloatArray) -> list[int | None]:
    """1 = largest score; NaN scores get no rank; ties keep input order."""
    order = [i for i in np.argsort(-score, kind="stable") if np.isfinite(score[i])]
    ranks: list[int | None] = [None] * score.size
    for r, i in enumerate(order, start=1):
        ranks[int(i)] = r
    return ranks


def output_values(outcomes: Outcomes, outputs: Sequence[str]) -> dict[str, FloatArray]:
    """Per-trial values of named numeric metrics (``accumulators.numeric_metrics`` names)."""
    available = numeric_metrics(outcomes)
    missing = [m for m in outputs if m not in available]
    if missing:
        raise KeyError(f"unknown output(s) {missing}; known: {sorted(available)}")
    return {m: np.asarray(available[m], dtype=np.float64) for m in outputs}


# --------------------------------------------------------------------------- rank statistics


def average_ranks(values: FloatArray, order: npt.NDArray[np.intp] | None = None) -> FloatArray:
    """1-based mid-ranks of ``values`` (ties get the mean of their ranks), equal to
    ``scipy.stats.rankdata(values, method="average")`` for values without NaN.

    ``order`` is an argsort of ``values`` (any sort kind: tied values get one mean rank whatever
    their order), so a caller that already has one pays a gather and a scatter, not a sort.
    """
    n = values.size
    if order is None:
        # Quicksort: about twice as fast as the stable sort rankdata uses, and stability is moot.
        order = np.argsort(values)
    ranks = np.empty(n, dtype=np.float64)
    if n == 0:
        return ranks
    ordered = values[order]
    starts_run = np.empty(n, dtype=np.bool_)
    starts_run[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_run[1:])
    starts = np.flatnonzero(starts_run)
    ends = np.append(starts[1:], n)
    # A run of ties at sorted positions start..end-1 holds ranks start+1..end: mean (start+end+1)/2
    # (exact in float64, as rankdata's 0.5 * (count[i] + count[i - 1] + 1)).
    ranks[order] = np.repeat(0.5 * (starts + ends + 1), ends - starts)
    return ranks


def _subset_order(order: npt.NDArray[np.intp], keep: BoolArray) -> npt.NDArray[np.intp]:
    """An argsort of ``values[keep]`` from an argsort ``order`` of ``values`` (no new sort)."""
    position = np.cumsum(keep) - 1  # index of each kept trial in values[keep]
    return position[order[keep[order]]]


def _spearman(rx: FloatArray, ry: FloatArray, z: float) -> tuple[float, float, float]:
    """Spearman rho from mid-ranks, with a Fisher-z interval (Bonett-Wright variance)."""
    n = rx.size
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy)))
    if denom == 0.0 or n < 4:
        return math.nan, math.nan, math.nan
    rho = min(max(float(np.dot(dx, dy)) / denom, -1.0), 1.0)
    se = math.sqrt((1.0 + rho * rho / 2.0) / (n - 3))
    zr = math.atanh(min(max(rho, -1.0 + 1e-15), 1.0 - 1e-15))
    return rho, math.tanh(zr - z * se), math.tanh(zr + z * se)


def _median_ci(y: FloatArray, z: float) -> tuple[float, float, float]:
    """Median and the distribution-free interval between order statistics
    ``floor((m - z sqrt m) / 2)`` and ``ceil(1 + (m + z sqrt m) / 2)`` (1-based)."""
    m = y.size
    if m == 0:
        return math.nan, math.nan, math.nan
    half = z * math.sqrt(m) / 2.0
    lo = min(max(math.floor(m / 2.0 - half), 1), m) - 1
    hi = min(max(math.ceil(1.0 + m / 2.0 + half), 1), m) - 1
    part = np.partition(y, sorted({lo, hi, (m - 1) // 2, m // 2}))
    median = 0.5 * (float(part[(m - 1) // 2]) + float(part[m // 2]))
    return median, float(part[lo]), float(part[hi])


def _tornado_groups(
    name: str, x: FloatArray, y: FloatArray, x_sorted: FloatArray
) -> tuple[BoolArray, BoolArray, float, float]:
    """Masks of the low and high groups of ``x`` and the input values bounding them.

    Deciles (:func:`_decile_groups`), except for a categorical input, which compares the
    categories with the lowest and highest median output (its codes have no order).
    """
    if _is_categorical(name):
        codes = np.unique(x)
        medians = np.array([np.median(y[x == c]) for c in codes])
        lo_c, hi_c = float(codes[np.argmin(medians)]), float(codes[np.argmax(medians)])
        return x == lo_c, x == hi_c, lo_c, hi_c
    return _decile_groups(x, x_sorted)


def _decile_groups(
    x: FloatArray, x_sorted: FloatArray
) -> tuple[BoolArray, BoolArray, float, float]:
    """``x <= q10`` against ``x >= q90`` (``x_sorted``: ``x`` sorted). If one value holds the
    whole 10-90% range (a point mass, e.g. a likely yes/no), the values below it are compared
    with the values above it, the point mass standing in for an empty side."""
    # The deciles of x: the same order statistics, and partitioning sorted data is ~4x faster.
    q_lo, q_hi = (float(q) for q in np.quantile(x_sorted, TORNADO_LEVELS))
    if q_lo < q_hi:
        return x <= q_lo, x >= q_hi, q_lo, q_hi
    below, above, atom = x < q_lo, x > q_hi, x == q_lo
    if below.any():
        return below, (above if above.any() else atom), float(x[below].max()), q_hi
    return atom, above, q_lo, float(x[above].min())


def _tornado_rows(
    metric: str,
    name: str,
    groups: tuple[BoolArray, BoolArray, float, float],
    y: FloatArray,
    unit: str,
    z: float,
) -> list[SensitivityRow]:
    low, high, x_lo, x_hi = groups
    med_lo, lo_a, lo_b = _median_ci(y[low], z)
    med_hi, hi_a, hi_b = _median_ci(y[high], z)
    swing = med_hi - med_lo
    # Each median's interval half-width over z is its standard error; the groups are disjoint.
    se = math.hypot((lo_b - lo_a) / (2.0 * z), (hi_b - hi_a) / (2.0 * z))
    iu, nan = input_unit(name), math.nan
    return [
        SensitivityRow(metric, name, "tornado", "median_at_low_decile", med_lo, lo_a, lo_b,
                       x_lo, int(low.sum()), None, unit, iu),
        SensitivityRow(metric, name, "tornado", "median_at_high_decile", med_hi, hi_a, hi_b,
                       x_hi, int(high.sum()), None, unit, iu),
        SensitivityRow(metric, name, "tornado", "swing", swing, swing - z * se, swing + z * se,
                       nan, int(y.size), None, unit, iu),
    ]  # fmt: skip


@dataclass(frozen=True, eq=False)
class _InputOnTrials:
    """One input on the trials where an output is finite: its values, sorted values, mid-ranks
    (None for a categorical input) and tornado groups (None where they depend on the output)."""

    x: FloatArray
    x_sorted: FloatArray
    ranks: FloatArray | None
    groups: tuple[BoolArray, BoolArray, float, float] | None


def _on_trials(
    name: str, x_full: FloatArray, order: npt.NDArray[np.intp], keep: BoolArray | None
) -> _InputOnTrials:
    """:class:`_InputOnTrials` of ``x_full[keep]`` from an argsort ``order`` of ``x_full``."""
    x = x_full if keep is None else x_full[keep]
    sub = order if keep is None else _subset_order(order, keep)
    x_sorted = x[sub]
    if x_sorted[-1] == x_sorted[0] or _is_categorical(name):
        return _InputOnTrials(x, x_sorted, None, None)
    return _InputOnTrials(x, x_sorted, average_ranks(x, sub), _decile_groups(x, x_sorted))


def rank_sensitivity(
    inputs: Mapping[str, npt.ArrayLike],
    outputs: Mapping[str, npt.ArrayLike],
    *,
    output_units: Mapping[str, str] | None = None,
    confidence_level: float = 0.95,
) -> list[SensitivityRow]:
    """Spearman rank correlation and tornado swing of every input against every output.

    Parameters
    ----------
    inputs, outputs
        Per-trial values by name, all of one length (trials in any fixed order).
    output_units
        Unit of each output (for the tornado rows); empty if not given.
    confidence_level
        Level of the intervals (default 95%).

    Returns
    -------
    list of SensitivityRow
        Per output (in the given order): one ``spearman``/``rank_correlation`` row per input,
        ranked by ``|rho|``, then three ``tornado`` rows per input (``median_at_low_decile``,
        ``median_at_high_decile``, ``swing``) ranked by ``|swing|``. Only trials where the
        output is finite count. Inputs constant over those trials, and outputs constant over
        them, give no rows. A categorical input (catalog kind ``category``) has a null rank
        correlation and its tornado compares its lowest- and highest-median categories.
    """
    z = _normal_critical_value(confidence_level)
    units = dict(output_units or {})
    x_all = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    # Sorting is most of this function's time: each input is argsorted once; the trials where
    # an output is finite (e.g. every "if settled" metric) take their order from it without a
    # new sort, and outputs defined on the same trials share the ranks and tornado groups.
    full_order: dict[str, npt.NDArray[np.intp]] = {}
    per_mask: dict[tuple[bytes, str], _InputOnTrials] = {}
    rows: list[SensitivityRow] = []
    for metric, values in outputs.items():
        y_all = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(y_all)
        all_finite = bool(finite.all())
        y = y_all if all_finite else y_all[finite]
        if y.size < 4 or np.ptp(y) == 0.0:
            continue
        ry = average_ranks(y)
        mask_key = b"" if all_finite else np.packbits(finite).tobytes()
        unit = units.get(metric, "")
        spear: list[SensitivityRow] = []
        torn: list[list[SensitivityRow]] = []
        for name, x_full in x_all.items():
            if x_full.shape != y_all.shape:
                raise ValueError(f"input {name!r} has {x_full.shape}, output {y_all.shape}")
            on = per_mask.get((mask_key, name))
            if on is None:
                order = full_order.get(name)
                if order is None:
                    order = full_order[name] = np.argsort(x_full)
                on = per_mask[(mask_key, name)] = _on_trials(
                    name, x_full, order, None if all_finite else finite
                )
            if on.x_sorted[-1] == on.x_sorted[0]:  # constant on these trials
                continue
            if on.ranks is None:
                rho = lo = hi = math.nan
            else:
                rho, lo, hi = _spearman(on.ranks, ry, z)
            spear.append(SensitivityRow(
                metric, name, "spearman", "rank_correlation", rho, lo, hi, math.nan,
                int(y.size), None, RANK_CORRELATION_UNIT, input_unit(name),
            ))  # fmt: skip
            groups = on.groups
            if groups is None:
                groups = _tornado_groups(name, on.x, y, on.x_sorted)
            torn.append(_tornado_rows(metric, name, groups, y, unit, z))
        s_rank = importance_ranks(np.abs([r.value for r in spear]))
        t_rank = importance_ranks(np.abs([t[2].value for t in torn]))
        s_order = sorted(range(len(spear)), key=lambda i: (s_rank[i] is None, s_rank[i] or 0))
        t_order = sorted(range(len(torn)), key=lambda i: (t_rank[i] is None, t_rank[i] or 0))
        rows += [spear[i]._replace(rank=s_rank[i]) for i in s_order]
        rows += [r._replace(rank=t_rank[i]) for i in t_order for r in torn[i]]
    return rows


def sensitivity_from_trials(
    inputs: Mapping[str, npt.ArrayLike],
    outcomes: Outcomes,
    *,
    outputs: Sequence[str] | None = None,
    confidence_level: float = 0.95,
) -> list[SensitivityRow]:
    """Spearman and tornado rows of the model's inputs against its key outputs.

    Parameters
    ----------
    inputs
        Sampled inputs by name, as ``run_block`` / ``run_forecast`` return them.
    outcomes
        The same trials' outcomes.
    outputs
        Metric names (``accumulators.numeric_metrics``); default :func:`key_outputs`.

    Examples
    --------
    >>> result = run_forecast(scenario, as_of=date(2026, 11, 29), n_trials=10_000)
    >>> rows = sensitivity_from_trials(result.inputs, result.outcomes)
    """
    if outputs is None:
        outputs = key_outputs(outcomes.path_years, outcomes.currency)
    values = output_values(outcomes, outputs)
    units = {
        m: metric_unit(m, outcomes.calendar_base_year, outcomes.fiscal_year_start_month)
        for m in outputs
    }
    return rank_sensitivity(inputs, values, output_units=units, confidence_level=confidence_level)


# --------------------------------------------------------------------------- bounded sample


@dataclass(frozen=True, eq=False)
class TrialSample:
    """The first ``capacity`` trials of a run, as parts keyed by their first trial index.

    Build one per block with :func:`sample_trials`, combine with :func:`merge_samples` (in any
    order or grouping), read with :meth:`arrays`. Holds at most ``capacity`` trials of the
    inputs and the chosen outputs (about 23 MB at 100,000 trials, 26 inputs, 3 outputs).
    """

    capacity: int
    outputs: tuple[str, ...]
    output_units: Mapping[str, str]
    parts: Mapping[int, tuple[Mapping[str, FloatArray], Mapping[str, FloatArray]]]
    """first global trial index -> (inputs, outputs) of the kept trials of one block."""

    @property
    def n_trials(self) -> int:
        return sum(len(next(iter({**i, **o}.values()))) for i, o in self.parts.values())

    def arrays(self) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
        """(inputs, outputs) of all kept trials in global trial order."""
        keys = sorted(self.parts)
        if not keys:
            return {}, {m: np.empty(0) for m in self.outputs}
        names = list(self.parts[keys[0]][0])
        inputs = {n: np.concatenate([self.parts[k][0][n] for k in keys]) for n in names}
        outs = {m: np.concatenate([self.parts[k][1][m] for k in keys]) for m in self.outputs}
        return inputs, outs


def sample_trials(
    inputs: Mapping[str, FloatArray],
    outcomes: Outcomes,
    *,
    first_trial_index: int,
    capacity: int = DEFAULT_CAPACITY,
    outputs: Sequence[str] | None = None,
    mask: BoolArray | None = None,
) -> TrialSample:
    """The part of one block that belongs to the run's first ``capacity`` trials.

    Parameters
    ----------
    inputs, outcomes
        One block of trials, as ``run_block(plan, b)`` returns them.
    first_trial_index
        Global index of the block's first trial: ``b * plan.chunk_size``.
    capacity
        Size of the run's sample [trials].
    outputs
        Metrics to keep (default :func:`key_outputs`).
    mask
        Optional evidence mask of the block's trials; only kept trials enter the sample (so
        the sample is the kept trials among the first ``capacity`` simulated).
    """
    if capacity < 0 or first_trial_index < 0:
        raise ValueError("capacity and first_trial_index must be non-negative")
    if outputs is None:
        outputs = key_outputs(outcomes.path_years, outcomes.currency)
    n = outcomes.n_trials
    take = max(0, min(n, capacity - first_trial_index))
    units = {
        m: metric_unit(m, outcomes.calendar_base_year, outcomes.fiscal_year_start_month)
        for m in outputs
    }
    if take == 0:
        return TrialSample(capacity, tuple(outputs), units, {})
    keep: npt.NDArray[np.intp] | slice = slice(0, take)
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != np.bool_ or m.shape != (n,):
            raise ValueError(f"mask must be a boolean array of shape ({n},)")
        keep = np.flatnonzero(m[:take])
    values = output_values(outcomes, outputs)
    part_in = {k: np.array(v[keep], dtype=np.float64) for k, v in inputs.items()}
    part_out = {k: np.array(v[keep], dtype=np.float64) for k, v in values.items()}
    return TrialSample(capacity, tuple(outputs), units, {first_trial_index: (part_in, part_out)})


def merge_samples(a: TrialSample, b: TrialSample) -> TrialSample:
    """Union of two samples; associative and commutative (parts are keyed, not appended)."""
    if (a.capacity, a.outputs) != (b.capacity, b.outputs):
        raise ValueError("cannot merge samples with different capacity or outputs")
    twice = set(a.parts) & set(b.parts)
    if twice:
        raise ValueError(f"blocks starting at trial(s) {sorted(twice)} were merged twice")
    return TrialSample(a.capacity, a.outputs, a.output_units, {**a.parts, **b.parts})


def sample_run(
    plan: Plan,
    *,
    capacity: int = DEFAULT_CAPACITY,
    outputs: Sequence[str] | None = None,
) -> TrialSample:
    """Re-run the first blocks of a plan to get its sample (costs ``capacity`` trials)."""
    n_blocks = min(plan.n_blocks, math.ceil(capacity / plan.chunk_size))
    sample: TrialSample | None = None
    for block in range(n_blocks):
        outcomes, draws = run_block(plan, block)
        part = sample_trials(
            draws, outcomes, first_trial_index=block * plan.chunk_size,
            capacity=capacity, outputs=outputs,
        )  # fmt: skip
        sample = part if sample is None else merge_samples(sample, part)
    if sample is None:
        raise ValueError("the plan has no trials")
    return sample


def sensitivity_from_sample(
    sample: TrialSample, *, confidence_level: float = 0.95
) -> list[SensitivityRow]:
    """Spearman and tornado rows of a merged :class:`TrialSample`."""
    inputs, outs = sample.arrays()
    return rank_sensitivity(
        inputs, outs, output_units=sample.output_units, confidence_level=confidence_level
    )


def rows_by(
    rows: Iterable[SensitivityRow], *, metric: str, method: Method, statistic: str
) -> dict[str, SensitivityRow]:
    """Rows of one metric, method and statistic keyed by input (a convenience for reports)."""
    return {
        r.input: r
        for r in rows
        if r.metric == metric and r.method == method and r.statistic == statistic
    }
