"""Model runs of the backtest cases and forward-chained tuning of the priors.

Priors tuned from history use *forward chaining*: the forecast for a case uses the candidate
priors that scored best on the earlier cases whose agreement was public by the case's as-of
date (:func:`_tuning_set`), so neither its own outcome nor any later one can reach it (a test
changes one case's outcome and checks its forecast stays identical).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import numpy as np

from pipeline.analysis import scoring
from pipeline.backtest.cases import Case, TuningGrid, _marginal
from pipeline.backtest.realized import Realized
from pipeline.common import FloatArray
from pipeline.model.outcomes import Outcomes
from pipeline.model.plan import Plan, run_block
from pipeline.model.sampling import CopulaPlan, copula_plan
from pipeline.model.settings import model_settings
from pipeline.spec.catalog import INPUT_NAMES
from pipeline.spec.distributions import InputSpec
from pipeline.spec.history import History

#: Default trials per run of a candidate while tuning (cheap; common random numbers).
DEFAULT_TUNE_TRIALS: Final[int] = 4000


@dataclass(frozen=True, eq=False)
class _Runner:
    """Runs one case's scenario with some inputs replaced (cheap to call many times)."""

    case: Case
    history: History
    copula: CopulaPlan | None
    fixed: Mapping[str, InputSpec]
    """The case's out-of-sample priors (pipeline.backtest.priors) replacing the scenario's."""

    @classmethod
    def for_case(
        cls, case: Case, history: History, fixed: Mapping[str, InputSpec] | None = None
    ) -> _Runner:
        rc = case.scenario.rank_correlation
        plan = copula_plan(INPUT_NAMES, rc.inputs, np.asarray(rc.matrix)) if rc else None
        return cls(case, history, plan, dict(fixed or {}))

    def run(self, priors: Mapping[str, Any], *, entropy: int, n_trials: int) -> Outcomes:
        """Run with ``priors`` (the tuned inputs) over the fixed priors over the scenario's."""
        inputs = {
            n: priors.get(n, self.fixed.get(n, self.case.scenario.inputs[n])) for n in INPUT_NAMES
        }
        # The priors were validated on loading; model_copy keeps the scenario's other fields.
        scenario = self.case.scenario.model_copy(update={"inputs": inputs})
        chunk = min(n_trials, scenario.simulation.chunk_size)
        plan = Plan(
            scenario=scenario,
            settings=model_settings(
                scenario,
                self.case.as_of,
                talks_open_on=self.case.talks_start,
                history=self.history,
            ),
            marginals={n: _marginal(n, s) for n, s in inputs.items()},
            copula=self.copula,
            entropy=entropy,
            n_trials=n_trials,
            chunk_size=chunk,
        )
        return Outcomes.concatenate([run_block(plan, b)[0] for b in range(plan.n_blocks)])


def start_offset_months(talks_start: date) -> float:
    """Months from the start of the model month talks open in to the first round [months].

    The model counts ``months_to_settlement`` from the start of the month talks open; the data
    count from the first round (23 April 2024 is 0.73 months into month April)."""
    days = calendar.monthrange(talks_start.year, talks_start.month)[1]
    return (talks_start.day - 1) / days


def _model_samples(outcomes: Outcomes, talks_start: date) -> dict[str, FloatArray]:
    """The model's forecast of each target, on the data's definitions (months from the first
    round; NaN increase where no agreement is reached within the horizon)."""
    months = outcomes.months_to_settlement - start_offset_months(talks_start)
    return {
        "increase_pct": outcomes.increase_pct,
        "months_to_settlement": np.maximum(months, 0.0),
        "lapse": outcomes.lapse.astype(np.float64),
    }


def _tuning_loss(samples: Mapping[str, FloatArray], truth: Realized) -> float:
    """CRPS of the increase [pp] plus CRPS of the months [months]: the tuning objective."""
    if truth.increase_pct is None or truth.months_to_settlement is None:
        raise ValueError(f"SMA {truth.sma_number}: no realized increase or months to tune on")
    return scoring.crps_from_samples(
        samples["increase_pct"], truth.increase_pct
    ) + scoring.crps_from_samples(samples["months_to_settlement"], truth.months_to_settlement)


@dataclass(frozen=True, eq=False)
class TuningTable:
    """Tuning loss of every candidate on every case usable for tuning."""

    candidates: list[dict[str, InputSpec]]
    cases: tuple[str, ...]
    loss: FloatArray
    """(n_candidates, n_cases) CRPS(increase) + CRPS(months) [pp + months]."""

    def best(self, on: Sequence[str]) -> int | None:
        """Index of the candidate with the lowest mean loss over cases ``on`` (None if empty);
        ties go to the earlier candidate."""
        if not on:
            return None
        cols = [self.cases.index(c) for c in on]
        return int(np.argmin(self.loss[:, cols].mean(axis=1)))


def _tuning_table(
    cases: Sequence[Case],
    runners: Mapping[str, _Runner],
    realized: Mapping[int, Realized],
    grid: TuningGrid,
    *,
    entropy: int,
    n_trials: int,
) -> TuningTable:
    usable = [
        c
        for c in cases
        if (r := realized.get(c.sma_number)) is not None
        and r.increase_pct is not None
        and r.months_to_settlement is not None
    ]
    candidates = grid.candidates()
    loss = np.empty((len(candidates), len(usable)))
    for j, case in enumerate(usable):
        truth = realized[case.sma_number]
        for i, priors in enumerate(candidates):
            out = runners[case.name].run(priors, entropy=entropy, n_trials=n_trials)
            loss[i, j] = _tuning_loss(_model_samples(out, case.talks_start), truth)
    return TuningTable(candidates, tuple(c.name for c in usable), loss)


def _tuning_set(case: Case, cases: Sequence[Case], realized: Mapping[int, Realized]) -> list[Case]:
    """Earlier cases whose agreement was public by this case's as-of date."""
    out = []
    for other in cases:
        r = realized.get(other.sma_number)
        if (
            other.sma_number < case.sma_number
            and r is not None
            and r.known_from is not None
            and r.known_from <= case.as_of
            and r.increase_pct is not None
            and r.months_to_settlement is not None
        ):
            out.append(other)
    return out
