"""Forecasts of every backtest case: the model with forward-chained priors, and the baselines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.backtest.baselines import baseline_samples
from pipeline.backtest.cases import Case, load_cases_and_priors
from pipeline.backtest.priors import CasePriors, case_priors, negotiation_records
from pipeline.backtest.realized import Realized, known_by, realized_outcomes
from pipeline.backtest.tuning import (
    DEFAULT_TUNE_TRIALS,
    TuningTable,
    _model_samples,
    _Runner,
    _tuning_set,
    _tuning_table,
)
from pipeline.common import FloatArray
from pipeline.model.seeding import root_entropy
from pipeline.spec.distributions import InputSpec
from pipeline.spec.history import DATA_DIR, load_history

# Default trials of each case (one definition, with the other run defaults).
from pipeline.spec.request import DEFAULT_BACKTEST_TRIALS as DEFAULT_BACKTEST_TRIALS


@dataclass(frozen=True, eq=False)
class CaseForecast:
    """All forecasts for one case (what the scores are computed from)."""

    case: Case
    realized: Realized
    model_priors: dict[str, InputSpec]
    """The tuned inputs' specs the model used for this case."""
    case_priors: CasePriors
    """Every other input's out-of-sample prior and where it came from."""
    tuned_on: tuple[int, ...]
    """SMA numbers whose outcomes chose ``model_priors`` (empty: untuned)."""
    history_used: tuple[int, ...]
    """SMA numbers known at the as-of date (what the baselines use)."""
    samples: dict[str, dict[str, FloatArray]]
    """forecaster -> target -> samples (NaN: no agreement within the model horizon)."""


@dataclass(frozen=True, eq=False)
class BacktestForecasts:
    """Forecasts of every case plus the tuning table behind the model's priors."""

    forecasts: list[CaseForecast]
    tuning: TuningTable
    entropy: int
    n_trials: int


def backtest_forecasts(
    config_dir: str | Path,
    *,
    n_trials: int = DEFAULT_BACKTEST_TRIALS,
    seed: int | None = None,
    data_dir: str | Path | None = None,
    n_tune_trials: int = DEFAULT_TUNE_TRIALS,
) -> BacktestForecasts:
    """Forecast every backtest case (model with forward-chained priors, and the baselines).

    Parameters
    ----------
    config_dir : folder holding ``base.yaml`` and ``backtest/``.
    n_trials : trials of each case's reported model forecast.
    seed : root seed (default: base.yaml's ``simulation.seed``); every case and candidate uses
        the same uniforms (common random numbers).
    data_dir : folder of the SMA history CSV files (default: the repository's ``data/``).
    n_tune_trials : trials per candidate and case while tuning.
    """
    if n_trials < 1 or n_tune_trials < 1:
        raise ValueError("n_trials and n_tune_trials must be positive")
    cases, grid, sources = load_cases_and_priors(config_dir)
    history = load_history(Path(data_dir) if data_dir is not None else DATA_DIR)
    realized = realized_outcomes(history)
    missing = [c.name for c in cases if c.sma_number not in realized]
    if missing:
        raise ValueError(f"no row in sma_negotiations.csv for case(s) {missing}")
    entropy = root_entropy(seed if seed is not None else cases[0].scenario.simulation.seed)
    records = negotiation_records(history)
    priors_of = {c.name: case_priors(c, sources, records, grid.inputs) for c in cases}
    runners = {c.name: _Runner.for_case(c, history, priors_of[c.name].specs) for c in cases}
    # Only cases that some later case may learn from need the whole grid.
    learners = {o.name for c in cases for o in _tuning_set(c, cases, realized)}
    table = _tuning_table(
        [c for c in cases if c.name in learners],
        runners,
        realized,
        grid,
        entropy=entropy,
        n_trials=n_tune_trials,
    )
    forecasts = []
    for case in cases:
        tuning_cases = _tuning_set(case, cases, realized)
        best = table.best([c.name for c in tuning_cases])
        priors = grid.untuned if best is None else table.candidates[best]
        outcomes = runners[case.name].run(priors, entropy=entropy, n_trials=n_trials)
        known = known_by(realized, case.as_of, case.sma_number)
        samples = {
            "model": _model_samples(outcomes, case.talks_start),
            **baseline_samples(known),
        }
        forecasts.append(
            CaseForecast(
                case=case,
                realized=realized[case.sma_number],
                model_priors=dict(priors),
                case_priors=priors_of[case.name],
                tuned_on=tuple(c.sma_number for c in tuning_cases),
                history_used=tuple(r.sma_number for r in known),
                samples=samples,
            )
        )
    return BacktestForecasts(forecasts, table, entropy, n_trials)
