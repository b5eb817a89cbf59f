"""Convergence gate: add blocks of trials until the key quantiles are precise enough.

Pure functions over merged :class:`~pipeline.analysis.accumulators.BlockSummary` objects; the flow
(flows/forecast.py) runs the rounds.

The monitored statistic
-----------------------
The Monte Carlo standard error of the first-year increase (``increase_pct``) at its 5th, 50th
and 95th percentiles, **in percentage points**, and the gate looks at the largest of them over
all scenarios of the run: the least precise of the headline numbers decides. The standard
error is the one published in ``summary.mc_standard_error`` (asymptotic
``sqrt(p (1 - p) / n) / f(Q(p))``, density from a Hall-Sheather difference quotient of the
merged histogram, see pipeline/analysis/statistics.py), so the recorded ``achieved_se`` can be
checked against the published rows.

Where that standard error is undefined: with fewer than :data:`MIN_DEFINED` trials defining
the metric, or a quantile outside the histogram's range, the statistic is infinite (keep
going); where the neighbourhood of a quantile is a single histogram bin (a point mass, e.g. a
scenario with fixed inputs), that quantile is known to the bin width (0.01 pp) and counts as
converged.

Reproducibility
---------------
Blocks are only ever added in block order (0, 1, 2, ...), and every round but the last holds
whole blocks, so a gated run that stops at N trials has simulated exactly the blocks, with
exactly the sizes, of an ungated run of N trials: results still depend only on (config, seed,
chunk size, final n_trials). Only the last round may end on a partial block, when it stops at
the cap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from pipeline.analysis.accumulators import BlockSummary, metric_spec
from pipeline.analysis.statistics import quantiles
from pipeline.common import QUANTILE_LEVELS

#: Metric and quantiles the gate monitors.
GATE_METRIC: Final[str] = "increase_pct"
GATE_QUANTILES: Final[tuple[str, ...]] = ("p05", "p50", "p95")
#: Unit of target_se / achieved_se (the metric's unit).
GATE_UNIT: Final[str] = "percentage points"
#: Cap on trials per scenario when a target is given without one.
DEFAULT_MAX_TRIALS: Final[int] = 10_000_000
#: Fewer trials defining the metric than this: the standard error is not trusted.
MIN_DEFINED: Final[int] = 100
#: At most this factor more trials per round (early s.e. estimates are noisy).
MAX_GROWTH: Final[float] = 4.0
#: Aim this much beyond the n the 1/sqrt(n) law predicts, to avoid a last tiny round.
MARGIN: Final[float] = 1.1


def quantile_standard_errors(
    summary: BlockSummary, metric: str = GATE_METRIC, levels: tuple[str, ...] = GATE_QUANTILES
) -> dict[str, float]:
    """The gate's view of each monitored quantile's standard error (see module docstring)."""
    acc = summary.metrics[metric]
    spec = metric_spec(metric)
    if acc.n < MIN_DEFINED:
        return dict.fromkeys(levels, math.inf)
    value, _, se = quantiles(acc, spec, [QUANTILE_LEVELS[level] for level in levels])
    out: dict[str, float] = {}
    for level, v, s in zip(levels, value, se, strict=True):
        if np.isfinite(s):
            out[level] = float(s)
        elif v <= spec.lo or v >= spec.hi:
            out[level] = math.inf  # outside the histogram: cannot be measured
        else:
            out[level] = 0.0  # a point mass at the histogram's resolution
    return out


def achieved_se(summaries: Mapping[str, BlockSummary]) -> float:
    """The monitored statistic: the largest standard error over scenarios and quantiles [pp]."""
    if not summaries:
        raise ValueError("no summaries")
    return max(max(quantile_standard_errors(s).values()) for s in summaries.values())


@dataclass(frozen=True)
class GateDecision:
    """What to do after a round."""

    stop: bool
    n_trials: int
    """Trials per scenario after the next round (the current count when stopping)."""
    reason: str


def first_round(n_trials: int, chunk_size: int, max_trials: int) -> int:
    """Trials of the first round of a gated run: whole blocks covering ``n_trials``, capped."""
    if n_trials < 1 or chunk_size < 1 or max_trials < 1:
        raise ValueError("n_trials, chunk_size and max_trials must be at least 1")
    return min(math.ceil(n_trials / chunk_size) * chunk_size, max_trials)


def next_round(
    n_done: int, achieved: float, target: float, *, chunk_size: int, max_trials: int
) -> GateDecision:
    """Whether to stop, and if not, the trial count after the next round.

    The standard error of a quantile falls as 1/sqrt(n), so reaching ``target`` from
    ``achieved`` at ``n_done`` trials takes about ``n_done * (achieved / target)**2``. The next
    count aims a little beyond that (:data:`MARGIN`), grows by at least one block and at most
    :data:`MAX_GROWTH` times, is a whole number of blocks, and never passes ``max_trials``.
    """
    if target <= 0:
        raise ValueError("target must be positive")
    if achieved <= target:
        return GateDecision(True, n_done, f"s.e. {achieved:.4g} <= target {target:.4g}")
    if n_done >= max_trials:
        return GateDecision(True, n_done, f"cap of {max_trials} trials reached")
    if math.isfinite(achieved):
        want = n_done * (achieved / target) ** 2 * MARGIN
    else:
        want = n_done * MAX_GROWTH
    want = min(max(want, n_done + 1), n_done * MAX_GROWTH)
    total = min(math.ceil(want / chunk_size) * chunk_size, max_trials)
    return GateDecision(False, total, f"s.e. {achieved:.4g} > target {target:.4g}")
