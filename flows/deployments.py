"""Deployments: the nightly schedule and the ad hoc trigger, served by one process."""

from __future__ import annotations

from typing import cast

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.forecast import forecast, nightly_forecast

NIGHTLY = "nightly"
ADHOC = "adhoc"


def serve_deployments(*, cron: str, timezone: str, output_dir: str, config_dir: str) -> None:
    """Register ``nightly-forecast/nightly`` (on ``cron`` in ``timezone``) and
    ``forecast/adhoc`` (no schedule) with the Prefect server, then run their flow runs.

    Overlapping runs are safe: publication is atomic and exclusive per output folder.
    """
    nightly = cast(
        RunnerDeployment,
        nightly_forecast.to_deployment(
            name=NIGHTLY,
            schedules=[Cron(cron, timezone=timezone)],
            parameters={"output_dir": output_dir, "config_dir": config_dir},
            description="Every scenario as of today (Asia/Seoul).",
            tags=["sma-forecast", "nightly"],
        ),
    )
    adhoc = cast(
        RunnerDeployment,
        forecast.to_deployment(
            name=ADHOC,
            parameters={"output_dir": output_dir, "config_dir": config_dir},
            description="Ad hoc forecast: pass scenarios, n_trials, seed, as_of, overrides.",
            tags=["sma-forecast", "adhoc"],
        ),
    )
    serve(nightly, adhoc)
