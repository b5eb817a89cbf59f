"""sma-forecast: Monte Carlo forecasts of the US-South Korea SMA negotiations (the library).

The layers follow the data flow, each a package that imports only the ones before it:

- ``pipeline.common``: shared type aliases and constants (the base);
- ``pipeline.spec``: what a run is asked to do - input catalog, distribution specs, scenarios
  and overrides, evidence, history, the run request;
- ``pipeline.model``: seeding, sampling, the simulation core, outcomes (numpy/scipy only);
- ``pipeline.analysis``: summaries, quantiles, MC error, convergence, scoring, sensitivity;
- ``pipeline.compose``: one forecast run in plain Python (what the Prefect flows call);
- ``pipeline.outputs``: the Parquet contract - schemas, table builders, publication, readers;
- ``pipeline.backtest``: forecasts of past negotiations, scored out of sample;
- ``pipeline.report``: the HTML report from the published Parquet files.

The Prefect layer (flows/) orchestrates these and holds no model logic.
"""

from pipeline.model.outcomes import Outcomes
from pipeline.model.plan import ForecastResult, Plan, plan_run, run_block, run_forecast
from pipeline.spec.scenario import Scenario, ScenarioError, load_scenario

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
