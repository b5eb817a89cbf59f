"""Prefect flows: the ad hoc ``forecast`` flow and the scheduled ``nightly-forecast`` flow.

Orchestration only: which scenarios, how blocks fan out into tasks, retries, artifacts, logs
and where files go. Every number comes from pipeline/ (pipeline/compose.py). A run is a short
list of named steps::

    request -> prepare_run -> start_record -> simulate_until_converged -> complete_tables
            -> publish_outputs -> announce
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
from prefect import Flow, flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows import cancellation
from flows.artifacts import publish_artifacts
from flows.merge import Future, frozen_heap, merge_as_completed
from flows.progress import report_phase, report_progress
from flows.provenance import git_commit, package_version
from flows.results import ForecastRunResult
from flows.runners import on_worker_processes, task_runner
from flows.tasks import (
    build_tables,
    publish_outputs,
    record_failure,
    simulate_blocks,
    sobol_indices,
    write_report,
)
from pipeline.analysis.convergence import (
    GATE_METRIC,
    GATE_QUANTILES,
    GATE_UNIT,
    achieved_se,
    next_round,
)
from pipeline.compose import (
    GroupResult,
    PreparedRun,
    RunSettings,
    block_groups,
    check_headline,
    check_publishable,
    config_hash,
    merge_groups,
    plan_for,
    prepare_run,
)
from pipeline.outputs import io
from pipeline.outputs.drift import Provenance, drift_for
from pipeline.outputs.headline import headline
from pipeline.outputs.records import RunRecord, scenario_hashes_json
from pipeline.outputs.tables.inputs import inputs_table
from pipeline.spec.request import (
    DEFAULT_CONFIG_DIR,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_WORKERS,
    RunRequest,
    today_in_seoul,
)

Tables = dict[str, pa.Table]


def forecast_flow(
    runner: str = "threads", *, workers: int = DEFAULT_WORKERS, dask_address: str | None = None
) -> Flow[..., ForecastRunResult]:
    """The ``forecast`` flow on the chosen task runner (call it with the flow's parameters)."""
    return forecast.with_options(
        task_runner=task_runner(runner, workers=workers, dask_address=dask_address)
    )


# --------------------------------------------------------------------------- steps


def start_record(prepared: PreparedRun, started: dt.datetime) -> RunRecord:
    """The run's ``runs`` row, as written if the run fails (completed on success)."""
    settings = prepared.settings
    return RunRecord(
        run_id=io.new_run_id(), as_of_date=settings.as_of,
        flow_name=flow_run.flow_name or "forecast", started_at=started, finished_at=started,
        status="failed", n_trials=0, n_trials_effective=None, seed_entropy=settings.entropy,
        chunk_size=settings.chunk_size, sampler=prepared.sampler,
        scenarios=prepared.scenario_names, config_hash=config_hash(prepared.scenarios),
        config_hashes=scenario_hashes_json({s.name: s.config_hash() for s in prepared.scenarios}),
        evidence_hash=prepared.evidence.facts_hash(),
        package_version=package_version(), git_commit=git_commit(),
        prefect_flow_run_id=flow_run.id, target_se=prepared.target_se,
        run_kind=prepared.request.run_kind, overrides=prepared.request.overrides_json(),
    )  # fmt: skip


@dataclass
class Simulation:
    """Merged results of every scenario, and the tables already being built."""

    settings: RunSettings
    """Final settings (a gated run ends with more trials than it started with)."""
    merged: dict[str, GroupResult] = field(default_factory=dict)
    achieved_se: float | None = None
    table_futures: dict[str, PrefectFuture[Tables]] = field(default_factory=dict)
    sobol_futures: dict[str, PrefectFuture[pa.Table]] = field(default_factory=dict)
    """Sobol' indices being computed (an ungated run submits them with its simulation)."""
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def simulate_until_converged(prepared: PreparedRun, run_id: str) -> Simulation:
    """Simulate every scenario in rounds of block groups until the convergence gate is met.

    Without a gate there is one round, and a scenario's tables are submitted as soon as its
    last group is merged (while other scenarios still run). With ``target_se`` each round adds
    blocks in block order until the largest Monte Carlo s.e. of increase_pct p05/p50/p95 over
    scenarios is at most the target, or ``max_trials`` is reached (pipeline/analysis/
    convergence.py); the result equals an ungated run of the final trial count.
    """
    logger = get_run_logger()
    sim = Simulation(prepared.settings)
    gated = prepared.target_se is not None and prepared.max_trials is not None
    done_blocks = submitted = finished = 0

    def on_merged(name: str, last: bool) -> None:
        nonlocal finished
        finished += 1
        report_progress(finished, submitted)
        if not gated and finished == 1:
            # Independent of the simulation. Submitted once a worker is free, behind every
            # block group: submitted with the groups, a design could reach a worker before
            # the last group does and leave that group to finish alone (~0.3 s measured).
            submit_sobol(prepared, sim, run_id)
        if last and not gated:  # a single round: this scenario's result is final
            sim.table_futures[name] = build_tables.submit(sim.merged[name], run_id, sim.created_at)

    while True:
        n_blocks = math.ceil(sim.settings.n_trials / sim.settings.chunk_size)
        futures: list[Future[GroupResult]] = []
        owner: dict[Any, str] = {}
        for scenario in prepared.scenarios:
            for group in block_groups(n_blocks - done_blocks, prepared.request.workers):
                blocks = [done_blocks + b for b in group]
                future = simulate_blocks.submit(scenario, sim.settings, prepared.evidence, blocks)
                futures.append(future)
                owner[future.task_run_id] = scenario.name
        submitted += len(futures)
        report_progress(finished, submitted)
        merge_as_completed(futures, owner, sim.merged, merge_groups, on_merged)
        done_blocks = n_blocks
        if not gated:
            # The phase ends with the Sobol' designs too, on every runner: with one worker they
            # run after the last block, with more they take a worker that is done early.
            for sobol in sim.sobol_futures.values():
                sobol.wait()
            return sim
        assert prepared.target_se is not None and prepared.max_trials is not None
        sim.achieved_se = achieved_se({n: r.summary for n, r in sim.merged.items()})
        decision = next_round(
            sim.settings.n_trials, sim.achieved_se, prepared.target_se,
            chunk_size=sim.settings.chunk_size, max_trials=prepared.max_trials,
        )  # fmt: skip
        logger.info(
            "run %s: %d trials per scenario, max s.e. of %s %s = %.4g %s: %s", run_id,
            sim.settings.n_trials, GATE_METRIC, "/".join(GATE_QUANTILES), sim.achieved_se,
            GATE_UNIT, "stop" if decision.stop else f"continue to {decision.n_trials}",
        )  # fmt: skip
        if decision.stop:
            return sim
        sim.settings = dataclasses.replace(sim.settings, n_trials=decision.n_trials)


def submit_sobol(prepared: PreparedRun, sim: Simulation, run_id: str) -> None:
    """Submit the Sobol' indices of every scenario not submitted yet (final settings)."""
    for s in prepared.scenarios:
        if s.name not in sim.sobol_futures:
            sim.sobol_futures[s.name] = sobol_indices.submit(
                s, sim.settings, prepared.evidence, run_id, sim.created_at
            )


def complete_tables(prepared: PreparedRun, sim: Simulation, run_id: str) -> dict[str, Tables]:
    """Every scenario's tables, with drift against the previous run, Sobol' indices and the
    inputs dataset."""
    submit_sobol(prepared, sim, run_id)
    sobol = sim.sobol_futures
    for scenario in prepared.scenarios:
        if scenario.name not in sim.table_futures:
            sim.table_futures[scenario.name] = build_tables.submit(
                sim.merged[scenario.name], run_id, sim.created_at
            )
    tables = {s.name: sim.table_futures[s.name].result() for s in prepared.scenarios}
    output_dir = prepared.request.output_dir
    evidence_hash, version, commit = prepared.evidence.facts_hash(), package_version(), git_commit()
    for scenario in prepared.scenarios:
        # Before publishing: a same-day re-run replaces the partition it compares against.
        t = tables[scenario.name]
        made_of = Provenance(sim.settings.as_of, scenario.config_hash(), evidence_hash, version,
                             commit)  # fmt: skip
        t["drift"] = drift_for(output_dir, scenario.name, t["summary"], run_id=run_id,
                               as_of=sim.settings.as_of, created_at=sim.created_at,
                               provenance=made_of)  # fmt: skip
        marginals = plan_for(scenario, sim.settings, prepared.evidence).marginals
        t["inputs"] = inputs_table(scenario, marginals, run_id=run_id, created_at=sim.created_at)
        rows = sobol[scenario.name].result()
        t["sensitivity"] = (
            pa.concat_tables([t["sensitivity"], rows]) if "sensitivity" in t else rows
        )
    return tables


def completed_record(record: RunRecord, prepared: PreparedRun, sim: Simulation) -> RunRecord:
    """The ``runs`` row of a run whose tables are ready to publish."""
    return dataclasses.replace(
        record, status="completed", finished_at=dt.datetime.now(dt.UTC),
        n_trials=sim.settings.n_trials,
        n_trials_effective=sum(r.summary.n_effective for r in sim.merged.values()),
        achieved_se=sim.achieved_se,
    )  # fmt: skip


def announce(
    prepared: PreparedRun,
    record: RunRecord,
    sim: Simulation,
    tables: dict[str, Tables],
    phase_seconds: dict[str, float],
    warnings: Sequence[str] = (),
) -> ForecastRunResult:
    """Build the report (official runs), log and publish artifacts; the run's typed result."""
    logger = get_run_logger()
    output_dir, as_of = prepared.request.output_dir, sim.settings.as_of
    clock = time.perf_counter()
    report_error: str | None = None
    report_phase("report")
    report: Path | None = None
    try:
        # The date's page shows official runs only; a what-if is read with `compare`.
        if record.is_official:
            report = write_report(output_dir, as_of, parallel_figures=on_worker_processes())
        else:
            logger.info("run %s is a what-if (%s), published under %s; compare it with "
                        "`sma-forecast compare %s`", record.run_id, record.overrides,
                        io.run_root(output_dir, record.run_kind, record.run_id),
                        record.run_id)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the run is published; the page can be rebuilt
        report = None
        report_error = f"{type(exc).__name__}: {str(exc)[:300]}"
        # The date's page shows an earlier run now: remove it rather than mislead.
        removed = io.remove_report(output_dir, as_of)
        logger.error("run %s: the HTML report failed (%s)%s; the Parquet files are published; "
                     "rebuild it with `sma-forecast report --as-of %s`", record.run_id,
                     report_error, "; the earlier page of the date was removed" if removed else "",
                     as_of)  # fmt: skip
    phase_seconds["report"] = time.perf_counter() - clock
    drift = {name: t["drift"] for name, t in tables.items()}
    flags = sum(int(pc.sum(d["flagged"]).as_py() or 0) for d in drift.values())
    if flags:
        logger.warning("run %s: %d value(s) moved beyond Monte Carlo noise since the previous "
                       "run with the same as-of date, evidence, configuration and code",
                       record.run_id, flags)  # fmt: skip
    years = {s.name: s.early_talks_year() for s in prepared.scenarios}
    heads = {
        name: headline(t["summary"], early_talks_year=years.get(name)) for name, t in tables.items()
    }
    publish_artifacts(
        as_of=as_of, run_id=record.run_id, heads=heads, drift=drift, drift_flags=flags,
        report=report,
    )  # fmt: skip
    return ForecastRunResult(
        run_id=record.run_id,
        output_dir=str(Path(output_dir).resolve()),
        as_of=as_of,
        n_trials=sim.settings.n_trials,
        seed_entropy=str(sim.settings.entropy),
        target_se=prepared.target_se,
        achieved_se=sim.achieved_se,
        seconds=round(sum(phase_seconds.values()), 3),
        phase_seconds={k: round(v, 3) for k, v in phase_seconds.items()},
        headline=heads,
        report=str(report) if report is not None else None,
        drift_flags=flags,
        warnings=list(warnings),
        report_error=report_error,
    )


def _runner_name() -> str:
    """The current flow run's task runner, for the log (e.g. ``WorkerProcessRunner``)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return type(context.task_runner).__name__ if context is not None else "none"


def run_request(request: RunRequest) -> ForecastRunResult:
    """Run a validated request inside a flow: the named steps, timed, with failure recorded."""
    logger = get_run_logger()
    started = dt.datetime.now(dt.UTC)
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = now - clock
        clock = now

    report_phase("preparing")
    prepared = prepare_run(request)
    # Finish interrupted publications and move damaged files aside before anything reads them.
    for problem in io.doctor(request.output_dir, repair=True):
        logger.warning("outputs: %s", problem)
    record = start_record(prepared, started)
    s = prepared.settings
    logger.info(
        "run %s: %d scenario(s) %s as of %s, n_trials=%d, chunk_size=%d, seed entropy=%d, "
        "evidence facts=%d, task runner %s x %d", record.run_id, len(prepared.scenarios),
        list(prepared.scenario_names), s.as_of, s.n_trials, s.chunk_size, s.entropy,
        len(prepared.evidence.facts), _runner_name(), request.workers,
    )  # fmt: skip
    lap("prepare")
    cancellation.reset()
    try:
        with cancellation.stop_on_signals(), frozen_heap():
            report_phase("simulating")
            sim = simulate_until_converged(prepared, record.run_id)
            lap("simulate")
            # Gates: nothing is published from too few kept trials or without a headline.
            warnings = check_publishable(
                sim.merged, sim.settings.n_trials, prepared.min_effective_trials
            )
            for warning in warnings:
                logger.warning("run %s: %s", record.run_id, warning)
            report_phase("building tables")
            tables = complete_tables(prepared, sim, record.run_id)
            for name, t in tables.items():
                check_headline(name, headline(t["summary"]))
            lap("tables")
            record = completed_record(record, prepared, sim)
            report_phase("publishing")
            files = publish_outputs(request.output_dir, record, tables)
            lap("publish")
    except BaseException:
        failed = dataclasses.replace(
            record, status="failed", n_trials_effective=None, finished_at=dt.datetime.now(dt.UTC)
        )
        record_failure(request.output_dir, failed)
        raise
    total = sim.settings.n_trials * len(prepared.scenarios)
    logger.info("run %s: simulated %d trials; published %d files to %s",
                record.run_id, total, len(files), request.output_dir)  # fmt: skip
    effective = record.n_trials_effective or 0
    if effective < total:
        logger.info("evidence kept %d of %d trials", effective, total)
    result = announce(prepared, record, sim, tables, phases, warnings)
    logger.info(
        "run %s: %.2f s in all (%s)", record.run_id, result.seconds,
        ", ".join(f"{k} {v:.2f} s" for k, v in result.phase_seconds.items()),
    )  # fmt: skip
    return result


# --------------------------------------------------------------------------- flows


@flow(
    name="forecast",
    description="Ad hoc SMA forecast: chosen scenarios, trials, seed, as-of date and overrides.",
    task_runner=cast(
        "TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=DEFAULT_WORKERS)
    ),
    log_prints=False,
)
def forecast(
    scenarios: list[str] | None = None,
    n_trials: int | None = None,
    seed: int | None = None,
    as_of: date | None = None,
    chunk_size: int | None = None,
    overrides: dict[str, Any] | None = None,
    output_dir: str = DEFAULT_OUTPUT_DIR,
    trials_sample: int = 0,
    workers: int = DEFAULT_WORKERS,
    config_dir: str = DEFAULT_CONFIG_DIR,
    evidence_file: str | None = None,
    target_se: float | None = None,
    max_trials: int | None = None,
    min_effective_trials: int | None = None,
) -> ForecastRunResult:
    """Run the chosen scenarios (all when none) and publish Parquet outputs.

    Parameters are the fields of :class:`pipeline.spec.request.RunRequest` (its docstrings give
    each default); the task runner is chosen with :func:`forecast_flow`.
    """
    request = RunRequest.checked(
        scenarios=tuple(scenarios) if scenarios else None, n_trials=n_trials, seed=seed,
        as_of=as_of, chunk_size=chunk_size, overrides=overrides or {}, output_dir=output_dir,
        trials_sample=trials_sample, workers=workers, config_dir=config_dir,
        evidence_file=evidence_file, target_se=target_se, max_trials=max_trials,
        min_effective_trials=min_effective_trials,
    )  # fmt: skip
    return run_request(request)


@flow(
    name="nightly-forecast",
    description="Nightly SMA forecast: every scenario in configs/scenarios as of today (Seoul).",
    log_prints=False,
)
def nightly_forecast(
    output_dir: str = DEFAULT_OUTPUT_DIR,
    n_trials: int | None = None,
    config_dir: str = DEFAULT_CONFIG_DIR,
    workers: int = DEFAULT_WORKERS,
) -> ForecastRunResult:
    """Every scenario as of today in Asia/Seoul, with the configured seed and trial count."""
    return forecast(
        scenarios=None, n_trials=n_trials, as_of=today_in_seoul(), output_dir=output_dir,
        config_dir=config_dir, workers=workers,
    )  # fmt: skip
