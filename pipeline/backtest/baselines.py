"""Naive baseline forecasts from the SMAs known at a case's as-of date.

Baselines get the same treatment as the model's tuning: they use only SMAs agreed before the
as-of date (:func:`pipeline.backtest.realized.known_by`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from scipy import special

from pipeline.backtest.realized import Realized
from pipeline.common import FloatArray

#: Samples drawn from a baseline's normal distribution (a deterministic quantile grid).
BASELINE_GRID_SIZE: Final[int] = 2000


def _normal_grid(mean: float, sd: float, size: int = BASELINE_GRID_SIZE) -> FloatArray:
    """Deterministic samples of N(mean, sd^2): its quantiles at (i + 0.5) / size."""
    u = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.asarray(mean + sd * special.ndtri(u), dtype=np.float64)


def baseline_samples(known: Sequence[Realized]) -> dict[str, dict[str, FloatArray]]:
    """Naive forecasts from the SMAs known at the time, as samples, by forecaster and target.

    - ``previous_repeated`` (increase): the previous agreement's first-year increase, with the
      historical spread: N(previous, s^2), s the sd of all known first-year increases.
    - ``historical`` (increase, months, lapse): the empirical distribution of the known values
      (each value one equally weighted sample; lapse as 0/1 values).

    A forecaster or target without enough history (no value, or fewer than two values for a
    spread) is left out.
    """
    increases = [r.increase_pct for r in known if r.increase_pct is not None]
    months = [r.months_to_settlement for r in known if r.months_to_settlement is not None]
    lapses = [float(r.lapse) for r in known if r.lapse is not None]
    out: dict[str, dict[str, FloatArray]] = {"previous_repeated": {}, "historical": {}}
    previous = known[-1].increase_pct if known else None
    if previous is not None and len(increases) >= 2:
        sd = float(np.std(increases, ddof=1))
        out["previous_repeated"]["increase_pct"] = _normal_grid(previous, sd)
    if increases:
        out["historical"]["increase_pct"] = np.asarray(increases, dtype=np.float64)
    if months:
        out["historical"]["months_to_settlement"] = np.asarray(months, dtype=np.float64)
    if lapses:
        out["historical"]["lapse"] = np.asarray(lapses, dtype=np.float64)
    return out
