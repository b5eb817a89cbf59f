"""The ``backtest`` flow: forecast every past SMA negotiation as of its start and score it."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.provenance import git_commit, package_version
from flows.results import BacktestRunResult
from pipeline.backtest import (
    DEFAULT_BACKTEST_TRIALS,
    BacktestForecasts,
    backtest_forecasts,
    backtest_table,
    crps_ratios,
    score_forecasts,
)
from pipeline.outputs import io
from pipeline.outputs.records import RunRecord
from pipeline.spec.request import DEFAULT_CONFIG_DIR, DEFAULT_OUTPUT_DIR, today_in_seoul


@task(name="forecast-cases", cache_policy=NO_CACHE)
def forecast_cases(config_dir: str, n_trials: int, seed: int | None) -> BacktestForecasts:
    """Forecast every case with priors tuned on earlier cases only."""
    return backtest_forecasts(config_dir, n_trials=n_trials, seed=seed)


@task(name="publish-backtest", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def publish(output_dir: str, record: RunRecord, table: Any) -> list[str]:
    """Write the scores and the runs row atomically (retried: IO can fail transiently)."""
    return [str(p) for p in io.publish_backtest(output_dir, record, table)]


@flow(name="backtest", description="Score sma-forecast against past SMA negotiations.")
def backtest(
    output_dir: str = DEFAULT_OUTPUT_DIR,
    n_trials: int = DEFAULT_BACKTEST_TRIALS,
    seed: int | None = None,
    config_dir: str = DEFAULT_CONFIG_DIR,
) -> BacktestRunResult:
    """Forecast and score every case in configs/backtest; publish the ``backtest`` dataset."""
    logger = get_run_logger()
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    run_id = io.new_run_id()
    result = forecast_cases(config_dir, n_trials, seed)
    created = dt.datetime.now(dt.UTC)
    scores = score_forecasts(result, run_id=run_id, created_at=created)
    cases = sorted({c for c in scores.column("case").to_pylist()})
    record = RunRecord(
        run_id=run_id, as_of_date=today_in_seoul(), flow_name="backtest", started_at=started,
        finished_at=dt.datetime.now(dt.UTC), status="completed",
        n_trials=n_trials, n_trials_effective=None, seed_entropy=result.entropy,
        chunk_size=n_trials, sampler="mc", scenarios=tuple(cases),
        config_hash=_config_hash(config_dir),
        package_version=package_version(), git_commit=git_commit(),
        prefect_flow_run_id=flow_run.id,
    )  # fmt: skip
    files = publish(output_dir, record, scores)
    text = backtest_table(scores)
    ratios = crps_ratios(scores)
    logger.info("backtest %s: %d cases, %d trials each, %.1f s; CRPS ratios %s",
                run_id, len(cases), n_trials, time.perf_counter() - clock, ratios)  # fmt: skip
    create_markdown_artifact(
        key="sma-backtest", markdown=f"```\n{text}\n```", description="Backtest scores"
    )
    return BacktestRunResult(run_id=run_id, files=files, table=text, ratios=ratios)


def _config_hash(config_dir: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    root = Path(config_dir)
    for path in sorted([root / "base.yaml", *(root / "backtest").glob("*.yaml")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
