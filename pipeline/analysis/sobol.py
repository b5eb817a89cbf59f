"""Variance-based input importance: first- and total-order Sobol' indices of a scenario's
outputs, from a separate quasi-random design (its own trial budget, not the forecast's trials).

Two layers, as elsewhere in the pipeline:

1. a plain function of arrays: :func:`sobol_from_function` (first/total Sobol' indices of any
   function of unit-hypercube factors, with bootstrap confidence intervals);
2. the model: :func:`sobol_indices_for` (a run :class:`~pipeline.model.plan.Plan` -> rows).

Rows are :class:`~pipeline.analysis.rank_sensitivity.SensitivityRow` of method ``sobol``, the
same contract as the rank statistics of :mod:`pipeline.analysis.rank_sensitivity`.

Correlated inputs and chance events
-----------------------------------
Sobol' indices assume independent factors. Inputs tied by the scenario's ``rank_correlation``
are grouped by connected component of the correlation matrix and each group is **one factor**
(Jansen's group indices): its uniforms are drawn together and passed through the same Gaussian
copula as the forecast, so the group keeps its joint distribution and the groups stay mutually
independent. A group is named ``group:a+b+c`` after its non-constant members. The model's own
chance events (reopening, troop threat, furlough draws) are extra factors ``event:<name>``, so
the model is a deterministic function of the factors. Constant inputs are not factors.

Missing values
--------------
Variance-based indices need a value in every evaluation: a non-finite output (``increase_pct``
is undefined where no agreement is reached by the horizon) is replaced by the mean of its finite
values over the A and B designs (a constant, so the fill adds no variance of its own and the
indices describe what drives the size of a deal, as the rank rows do), or by ``nan_fill`` if
given (e.g. 0: no deal as a 0% increase). ``months_to_settlement`` is censored at the horizon
and ``contribution_krw_bn_<year>`` is always defined.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.stats import qmc

from pipeline.analysis.rank_sensitivity import (
    EVENT_PREFIX,
    GROUP_PREFIX,
    SensitivityRow,
    importance_ranks,
    input_unit,
    key_outputs,
    output_values,
)
from pipeline.common import UNIT_EPS, FloatArray
from pipeline.model.plan import Plan
from pipeline.model.sampling import correlate, transform
from pipeline.model.simulate import EVENT_COLUMNS, simulate
from pipeline.spec.catalog import INPUT_BY_NAME, INPUT_NAMES

__all__ = [
    "SOBOL_SPAWN_KEY",
    "SOBOL_UNIT",
    "sobol_factors",
    "sobol_from_function",
    "sobol_indices_for",
]

#: ``SeedSequence(entropy, spawn_key=(SOBOL_SPAWN_KEY, i))`` seeds the Sobol' design (i = 0)
#: and its bootstrap (i = 1); distinct from block keys and from seeding.sampler_seed (2**32 - 1).
SOBOL_SPAWN_KEY: Final[int] = 2**32 - 2
#: Unit of the first- and total-order index rows.
SOBOL_UNIT: Final[str] = "share of output variance"

# Rows of the Sobol' design evaluated at once (memory only; results do not depend on it).
_EVAL_CHUNK: Final[int] = 65_536


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
    # Keep uniforms strictly inside (0, 1) so inverse CDFs stay finite (as sampling.unit_hypercube).
    design = np.clip(design, UNIT_EPS, 1.0 - UNIT_EPS)
    a = np.full((n_base, n_dims), 0.5)
    b = np.full((n_base, n_dims), 0.5)
    a[:, owned], b[:, owned] = design[:, : len(owned)], design[:, len(owned) :]

    # Every page at once: 0 = A, 1 = B, 2 + i = A with factor i's columns from B. The model
    # is row-wise, so one call over all pages gives each page's values; at the nightly run's
    # 512 rows a page, 28 separate calls cost about 5 times as much (numpy call overhead).
    design_rows = np.tile(a, (k + 2, 1))
    design_rows[n_base : 2 * n_base] = b
    for i, name in enumerate(names):
        cols = list(factors[name])
        design_rows[(2 + i) * n_base : (3 + i) * n_base, cols] = b[:, cols]
    parts = [
        func(design_rows[s : s + _EVAL_CHUNK]) for s in range(0, design_rows.shape[0], _EVAL_CHUNK)
    ]
    values = {m: np.concatenate([p[m] for p in parts]) for m in parts[0]}
    f_units = dict(factor_units or {})
    n_evals = n_base * (k + 2)
    rows: list[SensitivityRow] = []
    for metric, per_row in values.items():
        f = np.asarray(per_row, dtype=np.float64).reshape(k + 2, n_base)  # (pages, rows)
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
        ranks = importance_ranks(total)
        for i in sorted(range(k), key=lambda j: (ranks[j] is None, ranks[j] or 0)):
            name = names[i]
            iu = f_units.get(name, input_unit(name))
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
        # correlate works in place: on a copy, so the design rows stay the design.
        draws = transform(
            correlate(u[:, :n_inputs].copy(), plan.copula), INPUT_NAMES, plan.marginals
        )
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
    outputs: Sequence[str] | None = None,
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
        Metric names; default :func:`~pipeline.analysis.rank_sensitivity.key_outputs` of the
        plan's path and currency.
    rng
        Generator for the design and bootstrap (a child is spawned); default
        ``SeedSequence(plan.entropy, spawn_key=(SOBOL_SPAWN_KEY,))``, so the indices depend
        only on (scenario, seed, n_base).
    nan_fill
        See :func:`sobol_from_function` (default: mean of the finite values).
    """
    if outputs is None:
        outputs = key_outputs(plan.settings.path_years, plan.settings.currency)
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
