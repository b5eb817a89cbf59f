"""Recalibration of the model's ranges, fitted forward-chained (measured, off by default).

Two candidate steps, each fitted for a case on the earlier cases whose agreement was public by
its as-of date (as the tuned priors are), never on its own or a later outcome:

* **spread inflation**: x -> m + k (x - m) around the forecast's median m, k from
  :data:`SPREAD_FACTORS` (months floored at 0);
* **mixture** with the historical-distribution baseline: weight w from :data:`MIXTURE_WEIGHTS`.

:func:`recalibrate` measures both on a backtest. Neither improves the out-of-sample CRPS of the
current model (docs/calibration.md), so the nightly run does not recalibrate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from pipeline.analysis import scoring
from pipeline.backtest.forecasts import BacktestForecasts, CaseForecast
from pipeline.common import FloatArray

SPREAD_FACTORS: Final[tuple[float, ...]] = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
MIXTURE_WEIGHTS: Final[tuple[float, ...]] = (0.0, 0.1, 0.2, 0.3, 0.5)
RECALIBRATED_TARGETS: Final[tuple[str, ...]] = ("increase_pct", "months_to_settlement")
Method = Literal["spread", "mixture"]


def inflate(samples: FloatArray, factor: float, *, floor: float | None = None) -> FloatArray:
    """Spread the finite samples by ``factor`` around their median (optionally floored)."""
    x = samples[np.isfinite(samples)]
    m = float(np.median(x))
    y = m + factor * (x - m)
    return np.maximum(y, floor) if floor is not None else y


def mix(
    model: FloatArray, history: FloatArray | None, weight: float, *, n: int = 20_000
) -> FloatArray:
    """Deterministic mixture: (1 - w) n quantiles of the model and w n of the history."""
    x = model[np.isfinite(model)]
    h = None if history is None else history[np.isfinite(history)]
    if weight == 0.0 or h is None or h.size == 0:
        return x
    n_hist = round(weight * n)
    u = (np.arange(n - n_hist) + 0.5) / (n - n_hist)
    v = (np.arange(n_hist) + 0.5) / n_hist
    return np.concatenate([np.quantile(x, u), np.quantile(h, v, method="inverted_cdf")])


@dataclass(frozen=True)
class RecalibratedCase:
    """One case and target: the parameter chosen on earlier cases and the scores."""

    case: str
    target: str
    parameter: float
    """Spread factor or mixture weight (1.0 / 0.0: unchanged)."""
    fitted_on: tuple[str, ...]
    crps_raw: float
    crps_recalibrated: float
    pit_recalibrated: float
    covers_80_recalibrated: bool


def _transform(method: Method, target: str) -> Callable[[CaseForecast, float], FloatArray]:
    floor = 0.0 if target == "months_to_settlement" else None

    def apply(fc: CaseForecast, p: float) -> FloatArray:
        model = fc.samples["model"][target]
        if method == "spread":
            return inflate(model, p, floor=floor)
        return mix(model, fc.samples.get("historical", {}).get(target), p)

    return apply


def recalibrate(result: BacktestForecasts, method: Method = "spread") -> list[RecalibratedCase]:
    """Fit the recalibration forward-chained and score it on every case and target."""
    grid: Sequence[float] = SPREAD_FACTORS if method == "spread" else MIXTURE_WEIGHTS
    neutral = grid[0]
    fcs = result.forecasts
    out: list[RecalibratedCase] = []
    for target in RECALIBRATED_TARGETS:
        apply = _transform(method, target)
        truth = {fc.case.name: getattr(fc.realized, target) for fc in fcs}
        crps = {
            (fc.case.name, p): scoring.crps_from_samples(apply(fc, p), truth[fc.case.name])
            for fc in fcs
            if truth[fc.case.name] is not None
            for p in grid
        }
        for fc in fcs:
            y = truth[fc.case.name]
            if y is None:
                continue
            earlier = tuple(
                o.case.name
                for o in fcs
                if o.case.sma_number < fc.case.sma_number
                and o.realized.known_from is not None
                and o.realized.known_from <= fc.case.as_of
                and truth[o.case.name] is not None
            )
            p = neutral
            if earlier:  # ties go to the earlier grid value (the neutral one first)
                p = min(grid, key=lambda q: float(np.mean([crps[(e, q)] for e in earlier])))
            x = apply(fc, p)
            out.append(
                RecalibratedCase(
                    case=fc.case.name,
                    target=target,
                    parameter=p,
                    fitted_on=earlier,
                    crps_raw=crps[(fc.case.name, neutral)],
                    crps_recalibrated=crps[(fc.case.name, p)],
                    pit_recalibrated=scoring.pit(x, y),
                    covers_80_recalibrated=scoring.covers(x, y, 0.8),
                )
            )
    return out
