"""The forecast flow's Prefect tasks: coarse steps, each one call into pipeline/.

Tasks are coarse on purpose (tens per run, not thousands): each costs a few ms of Prefect
bookkeeping, and a block group already holds many blocks. On the ``processes`` runner each
task's call into pipeline/ runs in a worker process (:func:`flows.runners.offload`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.cancellation import stop_requested
from flows.runners import offload, offload_each
from pipeline.compose import GroupResult, RunSettings, run_group, scenario_tables, sobol_table
from pipeline.outputs import io
from pipeline.outputs.records import RunRecord
from pipeline.report.build import build_report
from pipeline.report.data import ReportData
from pipeline.report.drawing import Chart, draw_section
from pipeline.spec.evidence import EvidenceState
from pipeline.spec.scenario import Scenario


@task(name="simulate-blocks", cache_policy=NO_CACHE)
def simulate_blocks(
    scenario: Scenario, run: RunSettings, evidence: EvidenceState, blocks: list[int]
) -> GroupResult:
    """Simulate one group of blocks of one scenario and reduce it to mergeable summaries."""
    return offload(run_group, scenario, run, evidence, blocks, stop=stop_requested)


@task(name="build-tables", cache_policy=NO_CACHE)
def build_tables(result: GroupResult, run_id: str, created_at: dt.datetime) -> dict[str, pa.Table]:
    """The Parquet tables of one scenario (incl. rank sensitivity from the bounded sample)."""
    return offload(scenario_tables, result, run_id=run_id, created_at=created_at)


@task(name="sobol-indices", cache_policy=NO_CACHE)
def sobol_indices(
    scenario: Scenario, run: RunSettings, evidence: EvidenceState, run_id: str,
    created_at: dt.datetime,
) -> pa.Table:  # fmt: skip
    """Sobol' indices of one scenario (its own small design), as ``sensitivity`` rows."""
    return offload(sobol_table, scenario, run, evidence, run_id=run_id, created_at=created_at)


@task(name="publish-outputs", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def publish_outputs(
    output_dir: str, record: RunRecord, tables: dict[str, dict[str, pa.Table]]
) -> list[str]:
    """Publish the run's Parquet files atomically (retried: IO can fail transiently)."""
    return [str(p) for p in io.publish_run(output_dir, record, tables)]


@task(name="build-report", retries=1, cache_policy=NO_CACHE)
def write_report(output_dir: str, as_of: date, parallel_figures: bool = False) -> Path:
    """Rebuild the HTML report of the as-of date from the published Parquet files.

    With ``parallel_figures`` (worker processes), the sections' figures are drawn in the
    worker processes at once: matplotlib holds the GIL, so threads would take turns.
    """
    if parallel_figures:
        return build_report(output_dir, as_of_date=as_of, drawer=_draw_in_workers)
    return build_report(output_dir, as_of_date=as_of)


def _draw_in_workers(
    sections: Sequence[str], data: ReportData, folder: Path
) -> dict[str, list[Chart]]:
    # Plain pool submissions, not tasks: the sections are small, and tasks submitted from
    # inside this task were measured to gain less than half of what the pool does.
    return dict(zip(sections, offload_each(draw_section, sections, data, folder), strict=True))


@task(name="record-failed-run", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def record_failure(output_dir: str, record: RunRecord) -> None:
    """Append the failed attempt's row to ``runs``."""
    try:
        io.record_failed_run(output_dir, record)
    except FileExistsError:
        pass  # the run was published before the failure: its row stands
