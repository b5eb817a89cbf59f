"""One forecast run in plain Python: request -> prepared run -> block groups -> merged results
-> tables.

The Prefect flows (flows/) call exactly these functions on the same block groups, so a flow
run and the plain path (:func:`run_scenario`, used by tests and notebooks) give the same
numbers for the same request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from pipeline.analysis.accumulators import BlockSummary, merge, summarize_block
from pipeline.analysis.convergence import DEFAULT_MAX_TRIALS, first_round
from pipeline.analysis.rank_sensitivity import (
    DEFAULT_CAPACITY,
    TrialSample,
    merge_samples,
    sample_trials,
    sensitivity_from_sample,
)
from pipeline.analysis.sobol import sobol_indices_for
from pipeline.model.conditioning import condition_mask
from pipeline.model.outcomes import Outcomes
from pipeline.model.plan import Plan, plan_run, run_block
from pipeline.model.seeding import root_entropy
from pipeline.outputs.tables.histograms import to_histogram_frame
from pipeline.outputs.tables.sensitivity import to_sensitivity_frame
from pipeline.outputs.tables.summary import to_summary_frame
from pipeline.outputs.tables.trials import to_trials_frame
from pipeline.spec.evidence import EvidenceState, evidence_as_of, load_evidence
from pipeline.spec.request import RunRequest, resolve_scenarios
from pipeline.spec.scenario import Scenario, ScenarioError


@dataclass(frozen=True)
class RunSettings:
    """Settings shared by every scenario of one run (small and picklable)."""

    as_of: date
    entropy: int
    n_trials: int
    chunk_size: int
    trials_sample: int = 0
    """Trials written to the optional ``trials`` dataset (0: none)."""
    sensitivity_capacity: int = DEFAULT_CAPACITY
    """Trials kept for rank sensitivity (the first ones by global trial index)."""


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


# --------------------------------------------------------------------------- prepared runs


@dataclass(frozen=True, eq=False)
class PreparedRun:
    """A request with its files loaded and every default resolved (small and picklable)."""

    request: RunRequest
    scenarios: tuple[Scenario, ...]
    evidence: EvidenceState
    settings: RunSettings
    """Settings of the first round (a gated run raises ``n_trials`` round by round)."""
    target_se: float | None
    """Convergence gate target [percentage points] (None: a single round)."""
    max_trials: int | None
    """Cap on trials per scenario of a gated run (None without a gate)."""

    @property
    def sampler(self) -> str:
        return self.scenarios[0].simulation.sampler

    @property
    def scenario_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scenarios)


def prepare_run(request: RunRequest) -> PreparedRun:
    """Load the scenarios and evidence a request names and resolve every default.

    Run-wide settings (seed, trials, chunk size, gate) come from the request, else from the
    first scenario's ``simulation`` section. Raises ScenarioError naming the file or option.
    """
    chosen = resolve_scenarios(request.config_dir, request.scenarios, request.overrides)
    as_of = request.resolved_as_of()
    evidence = evidence_as_of(load_evidence(request.evidence_path), as_of)
    first = chosen[0].simulation
    seed = request.seed if request.seed is not None else first.seed
    settings = RunSettings(
        as_of=as_of,
        entropy=root_entropy(seed),
        n_trials=request.n_trials if request.n_trials is not None else first.n_trials,
        chunk_size=request.chunk_size if request.chunk_size is not None else first.chunk_size,
        trials_sample=request.trials_sample,
    )
    target = request.target_se if request.target_se is not None else first.target_se
    cap: int | None = None
    if target is None:
        if request.max_trials is not None:
            raise ScenarioError("--max-trials", "", "needs --target-se (or simulation.target_se)")
    else:
        cap = request.max_trials if request.max_trials is not None else first.max_trials
        cap = cap if cap is not None else max(DEFAULT_MAX_TRIALS, settings.n_trials)
        if cap < settings.n_trials:
            raise ScenarioError(
                "--max-trials", "", f"({cap}) must be at least the trials ({settings.n_trials})"
            )
        settings = dataclasses.replace(
            settings, n_trials=first_round(settings.n_trials, settings.chunk_size, cap)
        )
    return PreparedRun(request, tuple(chosen), evidence, settings, target, cap)


#: Sobol' design of the nightly run, per scenario: base sample (the model runs
#: ``SOBOL_BASE * (factors + 2)`` times, ~14,000 for the baseline's 26 factors) and bootstrap
#: resamples of the 95% intervals; about 0.5 s per scenario, computed next to the tables.
SOBOL_BASE: int = 2**9
SOBOL_RESAMPLES: int = 199


def sobol_table(
    scenario: Scenario,
    run: RunSettings,
    evidence: EvidenceState,
    *,
    run_id: str,
    created_at: dt.datetime,
    n_base: int = SOBOL_BASE,
) -> pa.Table:
    """The ``sensitivity`` rows of method ``sobol`` of one scenario: first- and total-order
    indices with bootstrap intervals, from their own design (pipeline/analysis/sobol.py; the
    seed depends only on the run's entropy, so a re-run gives the same rows)."""
    rows = sobol_indices_for(
        plan_for(scenario, run, evidence), n_base=n_base, n_resamples=SOBOL_RESAMPLES
    )
    return to_sensitivity_frame(rows, run_id=run_id, created_at=created_at)
