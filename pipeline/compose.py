"""A whole forecast run in plain Python: plans, block groups, merged summaries, Parquet tables.

The Prefect flows (flows/) call exactly these functions on the same block groups; the plain
path :func:`run_forecast_tables` exists for tests, notebooks and the flow-equals-plain check.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa

from pipeline.analysis.accumulators import BlockSummary, merge, summarize_block
from pipeline.analysis.rank_sensitivity import (
    TrialSample,
    merge_samples,
    sample_trials,
    sensitivity_from_sample,
)
from pipeline.model.conditioning import condition_mask
from pipeline.model.outcomes import Outcomes
from pipeline.model.plan import Plan, plan_run, run_block
from pipeline.outputs.tables.histograms import to_histogram_frame
from pipeline.outputs.tables.sensitivity import to_sensitivity_frame
from pipeline.outputs.tables.summary import to_summary_frame
from pipeline.outputs.tables.trials import to_trials_frame
from pipeline.spec.evidence import EvidenceState
from pipeline.spec.scenario import (
    SCENARIO_NAME_PATTERN,
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_paths,
)

#: Trials kept for rank sensitivity (the first ones by global trial index).
SENSITIVITY_CAPACITY = 100_000


@dataclass(frozen=True)
class RunSettings:
    """Settings shared by every scenario of one run (small and picklable)."""

    as_of: date
    entropy: int
    n_trials: int
    chunk_size: int
    trials_sample: int = 0
    """Trials written to the optional ``trials`` dataset (0: none)."""
    sensitivity_capacity: int = SENSITIVITY_CAPACITY


def plan_for(scenario: Scenario, run: RunSettings, evidence: EvidenceState) -> Plan:
    """The run plan of one scenario (cheap: a few ms; workers rebuild it from small inputs)."""
    return plan_run(
        scenario,
        as_of=run.as_of,
        entropy=run.entropy,
        n_trials=run.n_trials,
        chunk_size=run.chunk_size,
        talks_open_on=evidence.talks_open_on,
    )


def block_groups(n_blocks: int, n_groups: int) -> list[range]:
    """Split blocks 0..n_blocks-1 into at most ``n_groups`` contiguous ranges (task fan-out)."""
    n_groups = max(1, min(n_groups, n_blocks))
    size = math.ceil(n_blocks / n_groups)
    return [range(s, min(s + size, n_blocks)) for s in range(0, n_blocks, size)]


@dataclass(frozen=True, eq=False)
class GroupResult:
    """Mergeable result of a group of blocks of one scenario (no per-trial arrays beyond the
    bounded sensitivity sample and the optional trial sample)."""

    summary: BlockSummary
    sample: TrialSample | None
    trials: Mapping[int, Outcomes]
    """First trial index -> kept trials of a block, for the ``trials`` dataset."""


def run_group(
    scenario: Scenario, run: RunSettings, evidence: EvidenceState, blocks: Sequence[int]
) -> GroupResult:
    """Simulate a group of blocks and reduce them to a :class:`GroupResult`."""
    plan = plan_for(scenario, run, evidence)
    result: GroupResult | None = None
    for block in blocks:
        outcomes, draws = run_block(plan, block)
        mask = condition_mask(outcomes, evidence)
        first = block * plan.chunk_size
        sample = (
            sample_trials(draws, outcomes, first_trial_index=first,
                          capacity=run.sensitivity_capacity, mask=mask)
            if run.sensitivity_capacity > 0 and first < run.sensitivity_capacity else None
        )  # fmt: skip
        trials: dict[int, Outcomes] = {}
        if first < run.trials_sample:
            kept = outcomes.take(mask) if mask is not None else outcomes
            trials[first] = kept.take(slice(0, run.trials_sample - first))  # type: ignore[arg-type]
        part = GroupResult(summarize_block(outcomes, weights_mask=mask), sample, trials)
        result = part if result is None else merge_groups(result, part)
    if result is None:
        raise ValueError("a block group needs at least one block")
    return result


def merge_groups(a: GroupResult, b: GroupResult) -> GroupResult:
    """Combine two group results (associative; order-free up to float rounding of moments)."""
    if a.sample is None or b.sample is None:
        sample = a.sample or b.sample
    else:
        sample = merge_samples(a.sample, b.sample)
    return GroupResult(merge(a.summary, b.summary), sample, {**a.trials, **b.trials})


def scenario_tables(
    result: GroupResult, *, run_id: str, created_at: dt.datetime
) -> dict[str, pa.Table]:
    """The Parquet tables of one scenario of a run."""
    tables = {
        "summary": to_summary_frame(result.summary, run_id=run_id, created_at=created_at),
        "histograms": to_histogram_frame(result.summary, run_id=run_id, created_at=created_at),
    }
    if result.sample is not None:
        rows = sensitivity_from_sample(result.sample)
        tables["sensitivity"] = to_sensitivity_frame(rows, run_id=run_id, created_at=created_at)
    if result.trials:
        parts = [
            to_trials_frame(o, run_id=run_id, first_trial_index=first, created_at=created_at)
            for first, o in sorted(result.trials.items())
        ]
        tables["trials"] = pa.concat_tables(parts)
    return tables


def config_hash(scenarios: Sequence[Scenario]) -> str:
    """sha256 over the scenarios' own hashes, in run order."""
    digest = hashlib.sha256()
    for scenario in scenarios:
        digest.update(scenario.config_hash().encode())
    return digest.hexdigest()


def run_scenario(
    scenario: Scenario, run: RunSettings, evidence: EvidenceState, *, n_groups: int = 1
) -> GroupResult:
    """Plain-Python path for one scenario: every block group in order, then merged."""
    plan = plan_for(scenario, run, evidence)
    groups = block_groups(plan.n_blocks, n_groups)
    return functools.reduce(merge_groups, (run_group(scenario, run, evidence, g) for g in groups))


# --------------------------------------------------------------------------- run requests

SEOUL = "Asia/Seoul"


def today_in_seoul(now: dt.datetime | None = None) -> date:
    """Today's date in Asia/Seoul (the negotiation's calendar)."""
    from zoneinfo import ZoneInfo

    return (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(SEOUL)).date()


def resolve_scenarios(
    config_dir: str | Path,
    names: Sequence[str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> list[Scenario]:
    """Load scenarios by name (configs/scenarios/<name>.yaml) or path; all of them if none.

    Raises ScenarioError for an unknown name, a bad file or a bad override.
    """
    scenario_dir = Path(config_dir) / "scenarios"
    if not names:
        paths = scenario_paths(config_dir)
        if not paths:
            raise ScenarioError(str(scenario_dir), "", "no scenario files (*.yaml) found")
    else:
        paths = []
        for name in names:
            looks_like_path = name.endswith((".yaml", ".yml")) or "/" in name
            if looks_like_path:
                paths.append(Path(name))
                continue
            if not re.fullmatch(SCENARIO_NAME_PATTERN, name):
                raise ScenarioError(
                    "--scenario", name,
                    "a scenario name must match [a-z0-9_-]{1,64} (it becomes a folder name)",
                )  # fmt: skip
            path = scenario_dir / f"{name}.yaml"
            if not path.exists():
                known = ", ".join(p.stem for p in scenario_paths(config_dir)) or "none"
                raise ScenarioError("--scenario", name, f"unknown scenario; known: {known}")
            paths.append(path)
    scenarios = [load_scenario(p, dict(overrides or {})) for p in paths]
    seen: set[str] = set()
    for scenario in scenarios:
        if scenario.name in seen:
            raise ScenarioError("--scenario", scenario.name, "scenario given twice")
        seen.add(scenario.name)
    return scenarios


#: Metrics and statistics shown in the one-screen summary of a run.
HEADLINE_QUANTILES: tuple[tuple[str, str], ...] = (
    ("increase_pct", "p10"),
    ("increase_pct", "p50"),
    ("increase_pct", "p90"),
    ("first_year_krw_bn", "p50"),
    ("first_year_usd_m", "p50"),
    ("months_to_settlement", "p50"),
)
HEADLINE_PROBABILITIES: tuple[str, ...] = (
    "reopened_before_2029",
    "settled_by_horizon",
    "lapse",
    "furlough",
    "troop_threat",
    "package_deal",
)


def headline(summary: pa.Table) -> dict[str, float]:
    """The headline numbers of one scenario's summary table (for logs, artifacts, the CLI)."""
    rows = {
        (m, s): v
        for m, s, v in zip(
            summary.column("metric").to_pylist(),
            summary.column("statistic").to_pylist(),
            summary.column("value").to_pylist(),
            strict=True,
        )
    }
    out = {f"{m}_{s}": rows.get((m, s)) for m, s in HEADLINE_QUANTILES}
    out.update({f"p_{e}": rows.get((e, "prob")) for e in HEADLINE_PROBABILITIES})
    n_rows = {
        m: n
        for m, st, n in zip(
            summary.column("metric").to_pylist(),
            summary.column("statistic").to_pylist(),
            summary.column("n_trials").to_pylist(),
            strict=True,
        )
        if st == "prob"
    }
    # Every yes/no outcome over all trials is defined on every kept trial.
    out["n_trials_effective"] = n_rows.get("settled_by_horizon")
    return {k: (float("nan") if v is None else float(v)) for k, v in out.items()}
