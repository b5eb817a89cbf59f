"""sma-forecast: Monte Carlo forecasts of the US-South Korea SMA negotiations (the library)."""

from pipeline.config import Scenario, ScenarioError, load_scenario
from pipeline.results import Outcomes
from pipeline.run import ForecastResult, Plan, plan_run, run_block, run_forecast

__all__ = [
    "ForecastResult",
    "Outcomes",
    "Plan",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "plan_run",
    "run_block",
    "run_forecast",
]
