"""Prefect flows: the ad hoc ``forecast`` flow and the scheduled ``nightly-forecast`` flow.

Orchestration only: which scenarios, how blocks fan out into tasks, retries, artifacts, logs and
where files go. Every number comes from pipeline/ (see pipeline/compose.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import math
import queue
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from pipeline.analysis.convergence import (
    DEFAULT_MAX_TRIALS,
    GATE_METRIC,
    GATE_QUANTILES,
    GATE_UNIT,
    achieved_se,
    first_round,
    next_round,
)
from pipeline.compose import (
    GroupResult,
    RunSettings,
    block_groups,
    config_hash,
    headline,
    merge_groups,
    plan_for,
    resolve_scenarios,
    run_group,
    scenario_tables,
    today_in_seoul,
)
from pipeline.model.seeding import root_entropy
from pipeline.outputs import io
from pipeline.outputs.drift import drift_artifact_rows, drift_for
from pipeline.outputs.schema import RunRecord
from pipeline.outputs.tables.inputs import inputs_table
from pipeline.report import build_report, report_artifact_markdown
from pipeline.spec.evidence import EvidenceState, evidence_as_of, load_evidence
from pipeline.spec.scenario import Scenario

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = str(REPO_ROOT / "configs")
DEFAULT_WORKERS = 2
Runner = Literal["threads", "dask"]
#: Finished group results between two garbage collections (see the flow's merge loop).
_COLLECT_EVERY = 4
RUNNERS: tuple[str, ...] = ("threads", "dask")

ProgressCallback = Callable[[int, int], None]
_progress: ProgressCallback | None = None


@contextmanager
def progress_reporting(callback: ProgressCallback) -> Iterator[None]:
    """Call ``callback(done, total)`` as simulation tasks finish (the CLI's progress bar)."""
    global _progress
    previous, _progress = _progress, callback
    try:
        yield
    finally:
        _progress = previous


def _report(done: int, total: int) -> None:
    if _progress is not None:
        _progress(done, total)


def _package_version() -> str:
    try:
        return version("sma-forecast")
    except PackageNotFoundError:
        return "0+unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
            timeout=5, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def task_runner(
    runner: str = "threads", *, workers: int = DEFAULT_WORKERS, dask_address: str | None = None
) -> TaskRunner[Any]:
    """The task runner for ``runner``: threads in this process, or Dask.

    Dask: ``dask_address`` (``tcp://host:port``) connects to an existing cluster, whose workers
    need sma-forecast installed and ``PREFECT_API_URL`` set (docs/scaling.md); without one, a
    local cluster of ``workers`` single-threaded worker processes is started with the flow and
    this process's Prefect API is exported to them first (else each worker process would start
    its own embedded server). Same seed and chunk size give the same numbers on any runner.
    """
    if runner == "threads":
        if dask_address:
            raise ValueError("--dask-address needs --runner dask")
        return ThreadPoolTaskRunner(max_workers=workers)
    if runner != "dask":
        raise ValueError(f"unknown runner {runner!r}; allowed: {', '.join(RUNNERS)}")
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("--runner dask needs the dask extra: pip install -e '.[dask]'") from exc
    if dask_address:
        return DaskTaskRunner(address=dask_address)
    from flows._env import export_api_url

    export_api_url()
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": workers, "processes": True, "threads_per_worker": 1,
                        "dashboard_address": ":0"},
    )  # fmt: skip


def forecast_flow(
    runner: str = "threads", *, workers: int = DEFAULT_WORKERS, dask_address: str | None = None
) -> Any:
    """The ``forecast`` flow on the chosen task runner (call it with the flow's parameters)."""
    return forecast.with_options(
        task_runner=task_runner(runner, workers=workers, dask_address=dask_address)
    )


def _completed(futures: list[PrefectFuture[Any]]) -> Iterator[PrefectFuture[Any]]:
    """Yield futures as they finish, holding no reference to one once it is yielded.

    ``prefect.futures.as_completed`` keeps every future it was given (and so every task's
    result) until the last one finishes. Here the caller's list is emptied, so a merged
    result can be freed while later groups run.
    """
    done: queue.SimpleQueue[PrefectFuture[Any]] = queue.SimpleQueue()
    count = len(futures)
    for future in futures:
        future.add_done_callback(done.put)
    futures.clear()
    for _ in range(count):
        yield done.get()


# --------------------------------------------------------------------------- tasks


@task(name="simulate-blocks", cache_policy=NO_CACHE)
def simulate_blocks(
    scenario: Scenario, run: RunSettings, evidence: EvidenceState, blocks: list[int]
) -> GroupResult:
    """Simulate one group of blocks of one scenario and reduce it to mergeable summaries."""
    return run_group(scenario, run, evidence, blocks)


@task(name="build-tables", cache_policy=NO_CACHE)
def build_tables(result: GroupResult, run_id: str, created_at: dt.datetime) -> dict[str, Any]:
    """The Parquet tables of one scenario (incl. rank sensitivity from the bounded sample)."""
    return scenario_tables(result, run_id=run_id, created_at=created_at)


@task(name="publish-outputs", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def publish_outputs(output_dir: str, record: RunRecord, tables: dict[str, Any]) -> list[str]:
    """Publish the run's Parquet files atomically (retried: IO can fail transiently)."""
    return [str(p) for p in io.publish_run(output_dir, record, tables)]


@task(name="build-report", retries=1, cache_policy=NO_CACHE)
def write_report(output_dir: str, as_of: date) -> Path:
    """Rebuild the HTML report of the as-of date from the published Parquet files."""
    return build_report(output_dir, as_of_date=as_of)


@task(name="record-failed-run", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def record_failure(output_dir: str, record: RunRecord) -> None:
    """Append the failed attempt's row to ``runs``."""
    try:
        io.record_failed_run(output_dir, record)
    except FileExistsError:
        pass  # the run was published before the failure: its row stands


# --------------------------------------------------------------------------- flows


def _markdown(as_of: date, run_id: str, heads: dict[str, dict[str, float]]) -> str:
    lines = [
        f"### SMA forecast as of {as_of.isoformat()} (run `{run_id}`)",
        "",
        "| scenario | increase p10 | p50 | p90 | first year KRW bn p50 | months p50 "
        "| P(reopen < 2029) | P(lapse) | P(package) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, h in heads.items():
        lines.append(
            f"| {name} | {h['increase_pct_p10']:.1f}% | {h['increase_pct_p50']:.1f}% "
            f"| {h['increase_pct_p90']:.1f}% | {h['first_year_krw_bn_p50']:,.0f} "
            f"| {h['months_to_settlement_p50']:.1f} | {h['p_reopened_before_2029']:.2f} "
            f"| {h['p_lapse']:.2f} | {h['p_package_deal']:.2f} |"
        )
    return "\n".join(lines)


@flow(
    name="forecast",
    description="Ad hoc SMA forecast: chosen scenarios, trials, seed, as-of date and overrides.",
    task_runner=ThreadPoolTaskRunner(max_workers=DEFAULT_WORKERS),
    log_prints=False,
)
def forecast(
    scenarios: list[str] | None = None,
    n_trials: int | None = None,
    seed: int | None = None,
    as_of: date | None = None,
    chunk_size: int | None = None,
    overrides: dict[str, Any] | None = None,
    output_dir: str = "outputs",
    trials_sample: int = 0,
    groups_per_scenario: int = DEFAULT_WORKERS,
    config_dir: str = DEFAULT_CONFIG_DIR,
    evidence_file: str | None = None,
    target_se: float | None = None,
    max_trials: int | None = None,
) -> dict[str, Any]:
    """Run the chosen scenarios (all when none) and publish Parquet outputs.

    With ``target_se`` (or ``simulation.target_se`` in the config) the run starts with
    ``n_trials`` (rounded up to whole blocks) and keeps adding blocks, in block order, until
    the largest Monte Carlo s.e. over scenarios of increase_pct p05/p50/p95 is at most
    ``target_se`` percentage points, or ``max_trials`` per scenario is reached
    (pipeline/analysis/convergence.py). The result equals an ungated run of the final trial count.

    Returns a small dict: run id, output folder, as-of date and headline numbers per scenario.
    """
    logger = get_run_logger()
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    as_of = as_of or today_in_seoul()
    chosen = resolve_scenarios(config_dir, scenarios, overrides)
    first = chosen[0].simulation
    run = RunSettings(
        as_of=as_of,
        entropy=root_entropy(seed if seed is not None else first.seed),
        n_trials=n_trials if n_trials is not None else first.n_trials,
        chunk_size=chunk_size if chunk_size is not None else first.chunk_size,
        trials_sample=trials_sample,
    )
    if run.n_trials < 1 or run.chunk_size < 1:
        raise ValueError("n_trials and chunk_size must be at least 1")
    target = target_se if target_se is not None else first.target_se
    cap: int | None = None
    if target is not None:
        if not target > 0:
            raise ValueError(f"target_se must be positive (got {target})")
        cap = max_trials if max_trials is not None else first.max_trials
        cap = cap if cap is not None else max(DEFAULT_MAX_TRIALS, run.n_trials)
        if cap < run.n_trials:
            raise ValueError(f"max_trials ({cap}) must be at least n_trials ({run.n_trials})")
        run = dataclasses.replace(run, n_trials=first_round(run.n_trials, run.chunk_size, cap))
    evidence = evidence_as_of(
        load_evidence(evidence_file or Path(config_dir) / "evidence.yaml"), as_of
    )
    run_id = io.new_run_id()
    logger.info(
        "run %s: %d scenario(s) %s as of %s, n_trials=%d, chunk_size=%d, seed entropy=%d, "
        "evidence facts=%d", run_id, len(chosen), [s.name for s in chosen], as_of,
        run.n_trials, run.chunk_size, run.entropy, len(evidence.facts),
    )  # fmt: skip
    record = RunRecord(
        run_id=run_id, as_of_date=as_of, flow_name=flow_run.flow_name or "forecast",
        started_at=started, finished_at=started, status="failed", n_trials=0,
        n_trials_effective=None, seed_entropy=run.entropy, chunk_size=run.chunk_size,
        sampler=first.sampler, scenarios=tuple(s.name for s in chosen),
        config_hash=config_hash(chosen), package_version=_package_version(),
        git_commit=_git_commit(), prefect_flow_run_id=flow_run.id, target_se=target,
    )  # fmt: skip
    try:
        merged: dict[str, GroupResult] = {}
        done_blocks = submitted = finished = uncollected = 0
        se: float | None = None
        table_futures: dict[str, PrefectFuture[dict[str, Any]]] = {}
        created: dt.datetime | None = None

        def submit_tables(name: str) -> None:
            # The tables of a scenario whose trials are all merged (while others still run).
            nonlocal created
            created = created or dt.datetime.now(dt.UTC)
            table_futures[name] = build_tables.submit(merged[name], run_id, created)

        while True:
            # One round: the next blocks, in block order, split into groups per scenario.
            n_blocks = math.ceil(run.n_trials / run.chunk_size)
            futures: list[PrefectFuture[GroupResult]] = []
            owner: dict[Any, str] = {}
            for scenario in chosen:
                for group in block_groups(n_blocks - done_blocks, groups_per_scenario):
                    blocks = [done_blocks + b for b in group]
                    fut = simulate_blocks.submit(scenario, run, evidence, blocks)
                    futures.append(fut)
                    owner[fut.task_run_id] = scenario.name
            submitted += len(futures)
            _report(finished, submitted)
            left = {s.name: list(owner.values()).count(s.name) for s in chosen}
            for fut in _completed(futures):
                name = owner[fut.task_run_id]
                part = fut.result()
                merged[name] = part if name not in merged else merge_groups(merged[name], part)
                del fut, part
                # Futures and their results sit in reference cycles inside Prefect, freed only
                # by a full collection (~0.2 s here): every few results, so memory holds the
                # merged summaries, the groups still running and at most a few finished ones,
                # however many groups (and trials) the run has.
                uncollected += 1
                if uncollected >= _COLLECT_EVERY:
                    gc.collect()
                    uncollected = 0
                finished += 1
                _report(finished, submitted)
                left[name] -= 1
                if left[name] == 0 and target is None:  # a single round: this one is final
                    submit_tables(name)
            gc.collect()
            uncollected = 0
            done_blocks = n_blocks
            if target is None or cap is None:
                break
            se = achieved_se({name: result.summary for name, result in merged.items()})
            decision = next_round(
                run.n_trials, se, target, chunk_size=run.chunk_size, max_trials=cap
            )
            logger.info(
                "run %s: %d trials per scenario, max s.e. of %s %s = %.4g %s: %s", run_id,
                run.n_trials, GATE_METRIC, "/".join(GATE_QUANTILES), se, GATE_UNIT,
                "stop" if decision.stop else f"continue to {decision.n_trials}",
            )  # fmt: skip
            if decision.stop:
                break
            run = dataclasses.replace(run, n_trials=decision.n_trials)
        sim_seconds = time.perf_counter() - clock
        for scenario in chosen:
            if scenario.name not in table_futures:
                submit_tables(scenario.name)
        assert created is not None
        tables = {s.name: table_futures[s.name].result() for s in chosen}
        for scenario in chosen:
            # Before publishing: a same-day re-run replaces the partition it compares against.
            t = tables[scenario.name]
            t["drift"] = drift_for(output_dir, scenario.name, t["summary"], run_id=run_id,
                                   as_of=as_of, created_at=created)  # fmt: skip
            t["inputs"] = inputs_table(scenario, plan_for(scenario, run, evidence).marginals,
                                       run_id=run_id, created_at=created)  # fmt: skip
        heads = {name: headline(t["summary"]) for name, t in tables.items()}
        effective = sum(merged[s.name].summary.n_effective for s in chosen)
        record = dataclasses.replace(
            record, status="completed", finished_at=dt.datetime.now(dt.UTC),
            n_trials=run.n_trials * len(chosen), n_trials_effective=effective, achieved_se=se,
        )  # fmt: skip
        files = publish_outputs(output_dir, record, tables)
    except BaseException:
        failed = dataclasses.replace(
            record, status="failed", n_trials_effective=None, finished_at=dt.datetime.now(dt.UTC)
        )
        record_failure(output_dir, failed)
        raise
    total_seconds = time.perf_counter() - clock
    logger.info(
        "run %s: simulated %d trials in %.2f s; published %d files to %s in %.2f s total",
        run_id, run.n_trials * len(chosen), sim_seconds, len(files), output_dir, total_seconds,
    )  # fmt: skip
    if effective < run.n_trials * len(chosen):
        logger.info("evidence kept %d of %d trials", effective, run.n_trials * len(chosen))
    try:
        report: Path | None = write_report(output_dir, as_of)
    except Exception as exc:  # noqa: BLE001 - the run is published; the page can be rebuilt
        report = None
        logger.error("run %s: the HTML report failed (%s); rebuild it with "
                     "`sma-forecast report --as-of %s`", run_id, exc, as_of)  # fmt: skip
    drift = {name: t["drift"] for name, t in tables.items()}
    flags = sum(int(pc.sum(d["flagged"]).as_py() or 0) for d in drift.values())
    if flags:
        logger.warning("run %s: %d value(s) moved beyond Monte Carlo noise since the previous run",
                       run_id, flags)  # fmt: skip
    create_table_artifact(
        key="sma-forecast-drift", table=drift_artifact_rows(drift),
        description="Changes since the previous published run (flagged: beyond MC noise)",
    )  # fmt: skip
    if report is not None:
        create_markdown_artifact(
            key="sma-forecast-report",
            markdown=report_artifact_markdown(report, as_of=as_of, drift_flags=flags),
            description=f"HTML report for {as_of}",
        )
    create_markdown_artifact(
        key="sma-forecast-summary",
        markdown=_markdown(as_of, run_id, heads),
        description=f"SMA forecast as of {as_of}",
    )
    create_table_artifact(
        key="sma-forecast-headline",
        table=[{"scenario": n, **{k: round(v, 4) for k, v in h.items()}} for n, h in heads.items()],
        description="Headline numbers per scenario",
    )
    return {
        "run_id": run_id,
        "output_dir": str(Path(output_dir).resolve()),
        "as_of": as_of.isoformat(),
        "n_trials": run.n_trials,
        "seed_entropy": str(run.entropy),
        "target_se": target,
        "achieved_se": se,
        "seconds": round(total_seconds, 3),
        "headline": heads,
        "report": str(report) if report is not None else None,
        "drift_flags": flags,
    }


@flow(
    name="nightly-forecast",
    description="Nightly SMA forecast: every scenario in configs/scenarios as of today (Seoul).",
    log_prints=False,
)
def nightly_forecast(
    output_dir: str = "outputs",
    n_trials: int | None = None,
    config_dir: str = DEFAULT_CONFIG_DIR,
    groups_per_scenario: int = DEFAULT_WORKERS,
) -> dict[str, Any]:
    """Every scenario as of today in Asia/Seoul, with the configured seed and trial count."""
    return forecast(
        scenarios=None, n_trials=n_trials, as_of=today_in_seoul(), output_dir=output_dir,
        config_dir=config_dir, groups_per_scenario=groups_per_scenario,
    )  # fmt: skip
