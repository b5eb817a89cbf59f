"""Input importance: rank correlations and tornado swings from the forecast's own trials, and
variance-based Sobol' indices from a separate quasi-random design.

Three layers, as elsewhere in the pipeline:

1. plain functions of arrays: :func:`rank_sensitivity` (Spearman + tornado of any inputs
   against any outputs) and :func:`sobol_from_function` (first/total Sobol' indices of any
   function of unit-hypercube factors, with bootstrap confidence intervals);
2. the model: :func:`sensitivity_from_trials` (forecast trials -> rows),
   :func:`sobol_indices_for` (a run :class:`~pipeline.model.plan.Plan` -> rows);
3. a mergeable, bounded accumulator for the block-parallel flow: :class:`TrialSample`
   (:func:`sample_trials`, :func:`merge_samples`, :func:`sample_run`).

Bounded sample
--------------
Rank statistics need the trials themselves, not moments, so a run of 10^8 trials is analysed on
a fixed-size sample: **the first** ``capacity`` **trials of the run by global trial index**
(default 200,000). Blocks contribute the part of themselves below that index and parts are keyed
by their first trial index, so merging in any order or grouping gives the same arrays, and the
sample depends only on (scenario, seed, chunk_size, capacity), never on workers. Trials are
independent draws, so the first K trials are a simple random sample of the run; the only error
against the full run is sampling error of order 1/sqrt(K): at K = 200,000 the standard error of a
Spearman rho is at most 0.0023 (``(1 - rho^2) / sqrt(K)`` roughly) and a decile-group median
(20,000 trials) has a standard error of about 0.9% of that group's standard deviation. Runs of at
most ``capacity`` trials are analysed exactly. Because the sample is the first blocks, a flow may
instead re-run blocks ``0 .. ceil(K / chunk_size) - 1`` (:func:`sample_run`).

Correlated inputs and chance events (Sobol')
--------------------------------------------
Sobol' indices assume independent factors. Inputs tied by the scenario's ``rank_correlation``
are grouped by connected component of the correlation matrix and each group is **one factor**
(Jansen's group indices): its uniforms are drawn together and passed through the same Gaussian
copula as the forecast, so the group keeps its joint distribution and the groups stay mutually
independent. A group is named ``group:a+b+c`` after its non-constant members. The model's own
chance events (reopening, troop threat, furlough draws) are extra factors ``event:<name>``, so
the model is a deterministic function of the factors. Constant inputs are not factors.

Missing values
--------------
Spearman and tornado rows use the trials where the output is finite (``increase_pct`` is
undefined where no agreement is reached by the horizon, 1.9% of the baseline) and say how many
in ``n_trials``. Variance-based indices need a value in every evaluation: a non-finite output is
replaced by the mean of its finite values over the A and B designs (a constant, so the fill adds
no variance of its own and the indices describe what drives the size of a deal, as the rank rows
do), or by ``nan_fill`` if given (e.g. 0: no deal as a 0% increase). ``months_to_settlement``
is censored at the horizon and ``contribution_krw_bn_<year>`` is always defined.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import stats
from scipy.stats import qmc

from pipeline.analysis.aggregate import metric_unit, numeric_metrics
from pipeline.common import UNIT_EPS, BoolArray, FloatArray
from pipeline.model.outcomes import Outcomes
from pipeline.model.plan import Plan, run_block
from pipeline.model.sampling import correlate, transform
from pipeline.model.simulate import EVENT_COLUMNS, simulate
from pipeline.outputs.schema import SCHEMA_VERSION, SENSITIVITY_SCHEMA, TIMESTAMP, require_utc
from pipeline.spec.catalog import INPUT_BY_NAME, INPUT_NAMES

__all__ = [
    "DEFAULT_CAPACITY",
    "KEY_OUTPUTS",
    "SENSITIVITY_SCHEMA",
    "SOBOL_SPAWN_KEY",
    "SensitivityRow",
    "TrialSample",
    "merge_samples",
    "output_values",
    "rank_sensitivity",
    "rows_by",
    "sample_run",
    "sample_trials",
    "sensitivity_from_sample",
    "sensitivity_from_trials",
    "sobol_factors",
    "sobol_from_function",
    "sobol_indices_for",
    "to_sensitivity_frame",
]

#: The outputs analysed by default: first-year increase, length of talks, 2028 contribution.
KEY_OUTPUTS: Final[tuple[str, ...]] = (
    "increase_pct",
    "months_to_settlement",
    "contribution_krw_bn_2028",
)
#: Trials kept for rank statistics: the first this many of a run (by global trial index).
DEFAULT_CAPACITY: Final[int] = 200_000
#: ``SeedSequence(entropy, spawn_key=(SOBOL_SPAWN_KEY, i))`` seeds the Sobol' design (i = 0)
#: and its bootstrap (i = 1); distinct from block keys and from seeding.sampler_seed (2**32 - 1).
SOBOL_SPAWN_KEY: Final[int] = 2**32 - 2
#: Decile bounds of the tornado groups.
TORNADO_LEVELS: Final[tuple[float, float]] = (0.1, 0.9)

Method = Literal["spearman", "tornado", "sobol"]
RANK_CORRELATION_UNIT: Final[str] = "rank correlation (-1 to 1)"
SOBOL_UNIT: Final[str] = "share of output variance"
EVENT_PREFIX: Final[str] = "event:"
GROUP_PREFIX: Final[str] = "group:"

# Keep uniforms strictly inside (0, 1) so inverse CDFs stay finite (as sampling.unit_hypercube).
# Rows of the Sobol' design evaluated at once (memory only; results do not depend on it).
_EVAL_CHUNK: Final[int] = 65_536


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


def _float(x: npt.ArrayLike) -> pa.Array:
    """float64 array with NaN as null (BI tools handle null, not NaN)."""
    return pa.array(np.asarray(x, dtype=np.float64), type=pa.float64(), from_pandas=True)


def to_sensitivity_frame(
    rows: Sequence[SensitivityRow], *, run_id: str, created_at: dt.datetime
) -> pa.Table:
    """The ``sensitivity`` dataset rows of one scenario (:data:`SENSITIVITY_SCHEMA`).

    Partition values (as_of_date, scenario) are not columns: they go in the folder names.
    """
    require_utc(created_at, "created_at")
    n = len(rows)
    cols: dict[str, pa.Array] = {
        "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
        "metric": pa.array([r.metric for r in rows], pa.string()),
        "input": pa.array([r.input for r in rows], pa.string()),
        "method": pa.array([r.method for r in rows], pa.string()),
        "statistic": pa.array([r.statistic for r in rows], pa.string()),
        "value": _float([r.value for r in rows]),
        "ci_low": _float([r.ci_low for r in rows]),
        "ci_high": _float([r.ci_high for r in rows]),
        "input_value": _float([r.input_value for r in rows]),
        "n_trials": pa.array([r.n_trials for r in rows], pa.int64()),
        "rank": pa.array([r.rank for r in rows], pa.int32()),
        "unit": pa.array([r.unit for r in rows], pa.string()),
        "input_unit": pa.array([r.input_unit for r in rows], pa.string()),
        "schema_version": pa.repeat(pa.scalar(SCHEMA_VERSION, pa.int32()), n),
        "created_at": pa.repeat(pa.scalar(created_at, type=TIMESTAMP), n),
    }
    return pa.table([cols[f.name] for f in SENSITIVITY_SCHEMA], schema=SENSITIVITY_SCHEMA)


# --------------------------------------------------------------------------- helpers


def _z(confidence_level: float) -> float:
    if not 0.0 < confidence_level < 1.0:
        raise ValueError("confidence_level must lie in (0, 1)")
    return NormalDist().inv_cdf(0.5 + confidence_level / 2.0)


def _input_unit(name: str) -> str:
    if name.startswith(EVENT_PREFIX):
        return "uniform draw"
    if name.startswith(GROUP_PREFIX):
        return "group of inputs"
    info = INPUT_BY_NAME.get(name)
    return info.unit if info is not None else ""


def _is_categorical(name: str) -> bool:
    info = INPUT_BY_NAME.get(name)
    return info is not None and info.kind == "category"


def _importance_ranks(score: FloatArray) -> list[int | None]:
    """1 = largest score; NaN scores get no rank; ties keep input order."""
    order = [i for i in np.argsort(-score, kind="stable") if np.isfinite(score[i])]
    ranks: list[int | None] = [None] * score.size
    for r, i in enumerate(order, start=1):
        ranks[int(i)] = r
    return ranks


def output_values(outcomes: Outcomes, outputs: Sequence[str]) -> dict[str, FloatArray]:
    """Per-trial values of named numeric metrics (``aggregate.numeric_metrics`` names)."""
    available = numeric_metrics(outcomes)
    missing = [m for m in outputs if m not in available]
    if missing:
        raise KeyError(f"unknown output(s) {missing}; known: {sorted(available)}")
    return {m: np.asarray(available[m], dtype=np.float64) for m in outputs}


# --------------------------------------------------------------------------- rank statistics


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
    name: str, x: FloatArray, y: FloatArray
) -> tuple[BoolArray, BoolArray, float, float]:
    """Masks of the low and high groups of ``x`` and the input values bounding them.

    Deciles: ``x <= q10`` against ``x >= q90``. If one value holds the whole 10-90% range (a
    point mass, e.g. a likely yes/no), the values below it are compared with the values above
    it, the point mass standing in for an empty side. A categorical input compares the
    categories with the lowest and highest median output (its codes have no order).
    """
    if _is_categorical(name):
        codes = np.unique(x)
        medians = np.array([np.median(y[x == c]) for c in codes])
        lo_c, hi_c = float(codes[np.argmin(medians)]), float(codes[np.argmax(medians)])
        return x == lo_c, x == hi_c, lo_c, hi_c
    q_lo, q_hi = (float(q) for q in np.quantile(x, TORNADO_LEVELS))
    if q_lo < q_hi:
        return x <= q_lo, x >= q_hi, q_lo, q_hi
    below, above, atom = x < q_lo, x > q_hi, x == q_lo
    if below.any():
        return below, (above if above.any() else atom), float(x[below].max()), q_hi
    return atom, above, q_lo, float(x[above].min())


def _tornado_rows(
    metric: str, name: str, x: FloatArray, y: FloatArray, unit: str, z: float
) -> list[SensitivityRow]:
    low, high, x_lo, x_hi = _tornado_groups(name, x, y)
    med_lo, lo_a, lo_b = _median_ci(y[low], z)
    med_hi, hi_a, hi_b = _median_ci(y[high], z)
    swing = med_hi - med_lo
    # Each median's interval half-width over z is its standard error; the groups are disjoint.
    se = math.hypot((lo_b - lo_a) / (2.0 * z), (hi_b - hi_a) / (2.0 * z))
    iu, nan = _input_unit(name), math.nan
    return [
        SensitivityRow(metric, name, "tornado", "median_at_low_decile", med_lo, lo_a, lo_b,
                       x_lo, int(low.sum()), None, unit, iu),
        SensitivityRow(metric, name, "tornado", "median_at_high_decile", med_hi, hi_a, hi_b,
                       x_hi, int(high.sum()), None, unit, iu),
        SensitivityRow(metric, name, "tornado", "swing", swing, swing - z * se, swing + z * se,
                       nan, int(y.size), None, unit, iu),
    ]  # fmt: skip


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
    z = _z(confidence_level)
    units = dict(output_units or {})
    x_all = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    rank_cache: dict[str, FloatArray] = {}
    rows: list[SensitivityRow] = []
    for metric, values in outputs.items():
        y_all = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(y_all)
        all_finite = bool(finite.all())
        y = y_all if all_finite else y_all[finite]
        if y.size < 4 or np.ptp(y) == 0.0:
            continue
        ry = stats.rankdata(y)
        unit = units.get(metric, "")
        spear: list[SensitivityRow] = []
        torn: list[list[SensitivityRow]] = []
        for name, x_full in x_all.items():
            if x_full.shape != y_all.shape:
                raise ValueError(f"input {name!r} has {x_full.shape}, output {y_all.shape}")
            x = x_full if all_finite else x_full[finite]
            if np.ptp(x) == 0.0:
                continue
            if _is_categorical(name):
                rho = lo = hi = math.nan
            else:
                if all_finite:
                    rx = rank_cache.get(name)
                    if rx is None:
                        rx = rank_cache[name] = stats.rankdata(x)
                else:
                    rx = stats.rankdata(x)
                rho, lo, hi = _spearman(rx, ry, z)
            spear.append(SensitivityRow(
                metric, name, "spearman", "rank_correlation", rho, lo, hi, math.nan,
                int(y.size), None, RANK_CORRELATION_UNIT, _input_unit(name),
            ))  # fmt: skip
            torn.append(_tornado_rows(metric, name, x, y, unit, z))
        s_rank = _importance_ranks(np.abs([r.value for r in spear]))
        t_rank = _importance_ranks(np.abs([t[2].value for t in torn]))
        s_order = sorted(range(len(spear)), key=lambda i: (s_rank[i] is None, s_rank[i] or 0))
        t_order = sorted(range(len(torn)), key=lambda i: (t_rank[i] is None, t_rank[i] or 0))
        rows += [spear[i]._replace(rank=s_rank[i]) for i in s_order]
        rows += [r._replace(rank=t_rank[i]) for i in t_order for r in torn[i]]
    return rows


def sensitivity_from_trials(
    inputs: Mapping[str, npt.ArrayLike],
    outcomes: Outcomes,
    *,
    outputs: Sequence[str] = KEY_OUTPUTS,
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
        Metric names (``aggregate.numeric_metrics``); default :data:`KEY_OUTPUTS`.

    Examples
    --------
    >>> result = run_forecast(scenario, as_of=date(2026, 11, 29), n_trials=10_000)
    >>> rows = sensitivity_from_trials(result.inputs, result.outcomes)
    """
    values = output_values(outcomes, outputs)
    units = {m: metric_unit(m, outcomes.calendar_base_year) for m in outputs}
    return rank_sensitivity(inputs, values, output_units=units, confidence_level=confidence_level)


# --------------------------------------------------------------------------- bounded sample


@dataclass(frozen=True, eq=False)
class TrialSample:
    """The first ``capacity`` trials of a run, as parts keyed by their first trial index.

    Build one per block with :func:`sample_trials`, combine with :func:`merge_samples` (in any
    order or grouping), read with :meth:`arrays`. Holds at most ``capacity`` trials of the
    inputs and the chosen outputs (about 46 MB at 200,000 trials, 26 inputs, 3 outputs).
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
    outputs: Sequence[str] = KEY_OUTPUTS,
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
        Metrics to keep (default :data:`KEY_OUTPUTS`).
    mask
        Optional evidence mask of the block's trials; only kept trials enter the sample (so
        the sample is the kept trials among the first ``capacity`` simulated).
    """
    if capacity < 0 or first_trial_index < 0:
        raise ValueError("capacity and first_trial_index must be non-negative")
    n = outcomes.n_trials
    take = max(0, min(n, capacity - first_trial_index))
    units = {m: metric_unit(m, outcomes.calendar_base_year) for m in outputs}
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
    outputs: Sequence[str] = KEY_OUTPUTS,
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


# --------------------------------------------------------------------------- Sobol'


def _terms(f_a: FloatArray, f_b: FloatArray, f_ab: FloatArray) -> FloatArray:
    """Per-sample terms whose means give the Saltelli (2010) / Jansen estimators.

    Rows: f_A, f_B, f_A^2, f_B^2, then f_B (f_AB_i - f_A) for each factor, then
    (f_A - f_AB_i)^2 / 2 for each factor (scipy's ``saltelli_2010``, values centred as scipy
    centres them).
    """
    return np.vstack([f_a, f_b, f_a * f_a, f_b * f_b, f_b * (f_ab - f_a), 0.5 * (f_a - f_ab) ** 2])


def _indices_from_means(means: FloatArray, k: int) -> FloatArray:
    """(2k, ...) first then total indices from the (4 + 2k, ...) means of :func:`_terms`."""
    mean = 0.5 * (means[0] + means[1])
    var = 0.5 * (means[2] + means[3]) - mean * mean  # np.var([f_A, f_B]) of the resample
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = means[4:] / var
    return out


def _bootstrap_ci(
    f_a: FloatArray,
    f_b: FloatArray,
    f_ab: FloatArray,
    *,
    rng: np.random.Generator,
    confidence_level: float,
    n_resamples: int,
) -> tuple[FloatArray, FloatArray]:
    """Percentile-bootstrap intervals of (first, total) indices by resampling design rows.

    The statistic is scipy's ``saltelli_2010`` estimator written as means of per-row terms, so
    a resample is a count-weighted mean (one matrix product per batch of resamples).
    """
    k, n = f_ab.shape
    terms = _terms(f_a, f_b, f_ab)

    def statistic(idx: npt.NDArray[np.intp], axis: int = -1) -> FloatArray:
        idx = np.asarray(idx)
        batch = idx.shape[:-1]
        flat = idx.reshape(-1, n)
        weights = np.stack([np.bincount(row, minlength=n) for row in flat]).astype(np.float64)
        means = terms @ weights.T / n
        return _indices_from_means(means, k).reshape(2 * k, *batch)

    res = stats.bootstrap(
        (np.arange(n),),
        statistic,
        vectorized=True,
        n_resamples=n_resamples,
        batch=64,
        method="percentile",
        confidence_level=confidence_level,
        rng=rng,
    )
    low = np.asarray(res.confidence_interval.low, dtype=np.float64)
    high = np.asarray(res.confidence_interval.high, dtype=np.float64)
    return low, high


def sobol_from_function(
    func: Callable[[FloatArray], Mapping[str, FloatArray]],
    factors: Mapping[str, Sequence[int]],
    n_dims: int,
    *,
    n_base: int,
    rng: np.random.Generator,
    factor_units: Mapping[str, str] | None = None,
    nan_fill: float | None = None,
    confidence_level: float = 0.95,
    n_resamples: int = 999,
) -> list[SensitivityRow]:
    """First- and total-order Sobol' indices of the outputs of ``func``, with bootstrap CIs.

    Parameters
    ----------
    func
        Maps uniforms of shape ``(m, n_dims)`` in (0, 1) to a dict of outputs of shape ``(m,)``;
        must be deterministic and row-wise (row j of the output depends on row j only).
    factors
        Factor name -> the columns of the unit hypercube it owns. A factor with several
        columns is a group (its indices are group indices). Columns owned by no factor are
        held at 0.5.
    n_dims
        Columns of the unit hypercube.
    n_base
        Rows of each of the A and B designs; a power of 2. ``func`` is evaluated on
        ``n_base * (len(factors) + 2)`` rows.
    rng
        Scrambles the Sobol' design; a child spawned from it drives the bootstrap.
    nan_fill
        Value for non-finite outputs; None = the mean of the output's finite values over
        A and B (a constant: adds no variance of its own).

    Returns
    -------
    list of SensitivityRow
        Per output with non-zero variance: ``first_order`` and ``total_order`` rows per
        factor (point estimates from ``scipy.stats.sobol_indices``; percentile-bootstrap
        intervals over the design rows), ranked by total-order index.
    """
    if n_base < 2 or n_base & (n_base - 1):
        raise ValueError(f"n_base must be a power of 2 (got {n_base})")
    names = list(factors)
    k = len(names)
    if k == 0:
        return []
    owned = [c for name in names for c in factors[name]]
    if len(set(owned)) != len(owned) or not all(0 <= c < n_dims for c in owned):
        raise ValueError("factor columns must be distinct and within n_dims")
    boot_rng = rng.spawn(1)[0]
    design = qmc.Sobol(2 * len(owned), scramble=True, rng=rng).random(n_base)
    design = np.clip(design, UNIT_EPS, 1.0 - UNIT_EPS)
    a = np.full((n_base, n_dims), 0.5)
    b = np.full((n_base, n_dims), 0.5)
    a[:, owned], b[:, owned] = design[:, : len(owned)], design[:, len(owned) :]

    def evaluate(page: int) -> dict[str, FloatArray]:
        """Outputs on design page 0 = A, 1 = B, 2 + i = A with factor i's columns from B."""
        if page < 2:
            u = a if page == 0 else b
        else:
            cols = list(factors[names[page - 2]])
            u = a.copy()
            u[:, cols] = b[:, cols]
        parts = [func(u[s : s + _EVAL_CHUNK]) for s in range(0, n_base, _EVAL_CHUNK)]
        return {m: np.concatenate([p[m] for p in parts]) for m in parts[0]}

    pages = [evaluate(p) for p in range(k + 2)]
    f_units = dict(factor_units or {})
    n_evals = n_base * (k + 2)
    rows: list[SensitivityRow] = []
    for metric in pages[0]:
        f = np.stack([np.asarray(p[metric], dtype=np.float64) for p in pages])  # (k+2, n)
        bad = ~np.isfinite(f)
        if bad.any():
            good = np.isfinite(f[:2])
            fill = nan_fill if nan_fill is not None else float(f[:2][good].mean())
            f[bad] = fill
        f_a, f_b, f_ab = f[0], f[1], f[2:]
        if np.var(np.concatenate([f_a, f_b])) == 0.0:
            continue
        res = stats.sobol_indices(
            func={"f_A": f_a[None, :], "f_B": f_b[None, :], "f_AB": f_ab[:, None, :]},
            n=n_base,
        )
        # One output: scipy returns shape (k,) here, (1, k) in other versions.
        first = np.asarray(res.first_order, dtype=np.float64).reshape(-1)
        total = np.asarray(res.total_order, dtype=np.float64).reshape(-1)
        mean = 0.5 * (f_a.mean() + f_b.mean())  # centre as scipy does before its estimator
        low, high = _bootstrap_ci(
            f_a - mean, f_b - mean, f_ab - mean,
            rng=boot_rng, confidence_level=confidence_level, n_resamples=n_resamples,
        )  # fmt: skip
        ranks = _importance_ranks(total)
        for i in sorted(range(k), key=lambda j: (ranks[j] is None, ranks[j] or 0)):
            name = names[i]
            iu = f_units.get(name, _input_unit(name))
            for stat, value, lo, hi in (
                ("first_order", first[i], low[i], high[i]),
                ("total_order", total[i], low[k + i], high[k + i]),
            ):
                rows.append(SensitivityRow(
                    metric, name, "sobol", stat, float(value), float(lo), float(hi),
                    math.nan, n_evals, ranks[i], SOBOL_UNIT, iu,
                ))  # fmt: skip
    return rows


def _constant(plan: Plan, name: str) -> bool:
    """The input takes one value whatever its uniform (fixed, or a degenerate distribution)."""
    probe = np.array([UNIT_EPS, 0.25, 0.5, 0.75, 1.0 - UNIT_EPS])
    values = plan.marginals[name].ppf(probe)
    return bool(plan.marginals[name].is_constant or np.ptp(values) == 0.0)


def sobol_factors(plan: Plan) -> dict[str, tuple[str, ...]]:
    """The independent factors of a plan's Sobol' analysis and the columns each owns.

    Columns are input names (in catalog order) and ``event:<name>`` for the model's chance
    draws. Inputs tied by the scenario's rank correlation form one factor per connected
    component of the correlation matrix (``group:a+b`` after its non-constant members; it
    also owns its constant members' columns, which still feed the copula). Constant inputs
    outside groups are not factors.
    """
    rc = plan.scenario.rank_correlation
    groups: list[list[str]] = []
    if rc is not None:
        members = list(rc.inputs)
        linked = np.abs(np.asarray(rc.matrix, dtype=np.float64)) > 0.0
        seen: set[int] = set()
        for start in range(len(members)):
            if start in seen:
                continue
            stack, comp = [start], []
            seen.add(start)
            while stack:
                i = stack.pop()
                comp.append(i)
                for j in np.flatnonzero(linked[i]):
                    if int(j) not in seen:
                        seen.add(int(j))
                        stack.append(int(j))
            groups.append(sorted((members[i] for i in comp), key=INPUT_NAMES.index))
    grouped = {n for g in groups for n in g}
    factors: dict[str, tuple[str, ...]] = {}
    group_of: dict[str, tuple[str, tuple[str, ...]]] = {}
    for g in groups:
        varying = [n for n in g if not _constant(plan, n)]
        if not varying:
            continue
        label = varying[0] if len(varying) == 1 else GROUP_PREFIX + "+".join(varying)
        group_of[g[0]] = (label, tuple(g))
    for name in INPUT_NAMES:
        if name in group_of:
            label, cols = group_of[name]
            factors[label] = cols
        elif name not in grouped and not _constant(plan, name):
            factors[name] = (name,)
    for event in EVENT_COLUMNS:
        factors[EVENT_PREFIX + event] = (EVENT_PREFIX + event,)
    return factors


def _plan_model(
    plan: Plan, outputs: Sequence[str]
) -> Callable[[FloatArray], dict[str, FloatArray]]:
    """The model as a function of unit-hypercube rows: inputs in catalog order, then events."""
    n_inputs = len(INPUT_NAMES)

    def model(u: FloatArray) -> dict[str, FloatArray]:
        draws = transform(correlate(u[:, :n_inputs], plan.copula), INPUT_NAMES, plan.marginals)
        for name, values in draws.items():
            info = INPUT_BY_NAME[name]
            np.clip(values, info.low, info.high, out=values)
        outcomes = simulate(draws, plan.settings, event_uniforms=u[:, n_inputs:])
        return output_values(outcomes, outputs)

    return model


def sobol_indices_for(
    plan: Plan,
    *,
    n_base: int = 2**12,
    outputs: Sequence[str] = KEY_OUTPUTS,
    rng: np.random.Generator | None = None,
    nan_fill: float | None = None,
    confidence_level: float = 0.95,
    n_resamples: int = 999,
) -> list[SensitivityRow]:
    """Sobol' first- and total-order indices of a scenario's outputs (its own trial budget).

    Parameters
    ----------
    plan
        The run plan (marginals, copula, settings) as for the forecast.
    n_base
        Base sample size, a power of 2; the model runs ``n_base * (d + 2)`` times for ``d``
        factors (:func:`sobol_factors`; 26 for the baseline, so 2**12 costs 114,688 trials).
    outputs
        Metric names; default :data:`KEY_OUTPUTS`.
    rng
        Generator for the design and bootstrap (a child is spawned); default
        ``SeedSequence(plan.entropy, spawn_key=(SOBOL_SPAWN_KEY,))``, so the indices depend
        only on (scenario, seed, n_base).
    nan_fill
        See :func:`sobol_from_function` (default: mean of the finite values).
    """
    if rng is None:
        rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(plan.entropy, spawn_key=(SOBOL_SPAWN_KEY,)))
        )
    else:
        rng = rng.spawn(1)[0]
    columns = [*INPUT_NAMES, *(EVENT_PREFIX + e for e in EVENT_COLUMNS)]
    factors = {name: [columns.index(c) for c in cols] for name, cols in sobol_factors(plan).items()}
    return sobol_from_function(
        _plan_model(plan, outputs),
        factors,
        len(columns),
        n_base=n_base,
        rng=rng,
        nan_fill=nan_fill,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
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
