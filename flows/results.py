"""Typed results of the flows (what the CLI prints and a deployment run returns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class ForecastRunResult:
    """What one forecast run published."""

    run_id: str
    output_dir: str
    """Absolute path of the output folder."""
    as_of: date
    n_trials: int
    """Trials per scenario (after the convergence gate, if any)."""
    seed_entropy: str
    """The run's root entropy (a string: it may exceed 64 bits)."""
    target_se: float | None
    achieved_se: float | None
    seconds: float
    """Wall time of the flow body [s]."""
    phase_seconds: dict[str, float]
    """Wall time of each named step of the flow [s]."""
    headline: dict[str, dict[str, float]]
    """Scenario -> headline numbers (pipeline.outputs.headline)."""
    report: str | None
    """Path of the HTML report (None if it failed; the Parquet files stand)."""
    drift_flags: int
    """Values that moved beyond Monte Carlo noise since the previous run."""
    warnings: list[str] = field(default_factory=list)
    """Published, but worth a look (e.g. evidence kept few trials)."""
    report_error: str | None = None
    """Why the HTML report failed (its stale page of the date was removed), if it did."""


@dataclass(frozen=True)
class BacktestRunResult:
    """What one backtest run published."""

    run_id: str
    files: list[str]
    table: str
    """The scores as a printable table."""
    ratios: dict[str, dict[str, object]]
    """CRPS ratio of the model to the best naive baseline, per target."""
