"""Calibration of the base priors: the tuning grid run on *every* backtest case."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.backtest.cases import load_cases_and_priors
from pipeline.backtest.priors import (
    build_priors,
    case_priors,
    negotiation_records,
    records_known_by,
)
from pipeline.backtest.realized import realized_outcomes
from pipeline.backtest.tuning import (
    DEFAULT_TUNE_TRIALS,
    TuningTable,
    _model_samples,
    _Runner,
    _tuning_loss,
    _tuning_table,
)
from pipeline.model.seeding import root_entropy
from pipeline.spec.distributions import InputSpec
from pipeline.spec.history import DATA_DIR, load_history


@dataclass(frozen=True, eq=False)
class Calibration:
    """The priors tuned on every case (what configs/base.yaml uses) and the table behind them."""

    priors: dict[str, InputSpec]
    mean_loss: float
    """Mean tuning loss of those priors over the cases [pp + months]."""
    untuned_loss: float
    """Mean tuning loss of the untuned priors over the same cases [pp + months]."""
    table: TuningTable


def calibrate_defaults(
    config_dir: str | Path,
    *,
    n_trials: int = DEFAULT_TUNE_TRIALS,
    seed: int | None = None,
    data_dir: str | Path | None = None,
) -> Calibration:
    """Tune the priors on *every* backtest case: the values for configs/base.yaml.

    The same grid and loss as the backtest's forward chaining, with all outcomes known (as they
    are for a forecast made today). docs/calibration.md records the result.
    """
    cases, grid, sources = load_cases_and_priors(config_dir)
    history = load_history(Path(data_dir) if data_dir is not None else DATA_DIR)
    realized = realized_outcomes(history)
    entropy = root_entropy(seed if seed is not None else cases[0].scenario.simulation.seed)
    # Each case runs with the priors known at its start, as in the backtest: only the tuned
    # inputs are chosen on all six outcomes.
    records = negotiation_records(history)
    runners = {
        c.name: _Runner.for_case(c, history, case_priors(c, sources, records, grid.inputs).specs)
        for c in cases
    }
    table = _tuning_table(cases, runners, realized, grid, entropy=entropy, n_trials=n_trials)
    best = table.best(list(table.cases))
    if best is None:
        raise ValueError("no case has a realized increase and months to calibrate on")
    by_name = {c.name: c for c in cases}
    untuned = [
        _tuning_loss(
            _model_samples(
                runners[name].run(grid.untuned, entropy=entropy, n_trials=n_trials),
                by_name[name].talks_start,
            ),
            realized[by_name[name].sma_number],
        )
        for name in table.cases
    ]
    return Calibration(
        priors=table.candidates[best],
        mean_loss=float(table.loss[best].mean()),
        untuned_loss=float(np.mean(untuned)),
        table=table,
    )


def built_defaults(
    config_dir: str | Path, *, data_dir: str | Path | None = None, as_of: date | None = None
) -> dict[str, InputSpec]:
    """The built inputs' priors from every negotiation public by ``as_of`` (default: all of
    data/): what configs/base.yaml holds for them (the same builder the backtest runs per case)."""
    _, _, sources = load_cases_and_priors(config_dir)
    history = load_history(Path(data_dir) if data_dir is not None else DATA_DIR)
    records = negotiation_records(history)
    known = records_known_by(records, as_of or date.max, max(records) + 1)
    return build_priors(known, {n: d.spec for n, d in sources.no_history.items()})


def describe_priors(priors: Mapping[str, Any]) -> str:
    """The priors as YAML-like ``input: {dist: ..., ...}`` lines (for docs and reports)."""
    return "\n".join(
        f"{n}: {json.dumps(s.model_dump(exclude_none=True))}" for n, s in priors.items()
    )
