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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
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
from pipeline.common import FloatArray, IntArray
from pipeline.model.conditioning import condition_mask
from pipeline.model.outcomes import Outcomes
from pipeline.model.plan import Plan, plan_run, run_block
from pipeline.model.seeding import root_entropy
from pipeline.outputs.tables.histograms import to_histogram_frame
from pipeline.outputs.tables.sensitivity import to_sensitivity_frame
from pipeline.outputs.tables.summary import to_summary_frame
from pipeline.outputs.tables.trials import to_trials_frame
from pipeline.spec.evidence import EvidenceState, evidence_as_of, load_evidence
from pipeline.spec.request import RunRequest, confined, resolve_scenarios
from pipeline.spec.scenario import Scenario, ScenarioError

#: Fewest trials a scenario may keep after evidence conditioning (``--min-effective-trials``).
DEFAULT_MIN_EFFECTIVE_TRIALS = 1_000
#: A kept count below this many times the minimum is published with a warning.
LOW_EFFECTIVE_FACTOR = 10
#: Most blocks per scenario: a tiny chunk size makes a run of many tiny blocks (at chunk size
#: 1 a run was 40x slower) and a long list of block numbers.
MAX_BLOCKS_PER_SCENARIO = 100_000
#: Memory a run of the threads runner may take [bytes]. Its peak grows with the block groups
#: running at once (workers), not with the trial count: about RUN_BASE_BYTES plus, per worker,
#: GROUP_BYTES and BLOCK_BYTES_PER_TRIAL x chunk size (measured peak RSS: 2 workers x 65,536
#: trials 0.72 GB, 32 workers 3.5 GB; 64 workers x 100 trials 4.7 GB, 256 workers 11.6 GB).
MAX_RUN_BYTES = 4_000_000_000
RUN_BASE_BYTES = 550_000_000
GROUP_BYTES = 65_000_000
BLOCK_BYTES_PER_TRIAL = 750


#: A worker process's own interpreter, numpy, scipy, matplotlib and pipeline [bytes]
#: (measured: 0.21 GB after its imports), for runners with one process per worker.
WORKER_PROCESS_BYTES = 250_000_000
#: Runners whose workers are processes on this machine (Dask without an address starts a
#: local cluster). ``auto`` picks processes only up to one per core (flows/runners.py).
PROCESS_RUNNERS = frozenset({"processes", "dask"})


def run_memory_bytes(workers: int, chunk_size: int, *, worker_processes: bool = False) -> int:
    """Estimated peak memory of a run with ``workers`` block groups at once [bytes], plus each
    worker process's own libraries where workers are processes."""
    per_worker = GROUP_BYTES + BLOCK_BYTES_PER_TRIAL * chunk_size
    if worker_processes:
        per_worker += WORKER_PROCESS_BYTES
    return RUN_BASE_BYTES + workers * per_worker


class GateError(ValueError):
    """A run whose results must not be published (too few kept trials, no finite headline)."""


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


def warm_up(scenarios: Sequence[Scenario], run: RunSettings, evidence: EvidenceState) -> None:
    """Plan every scenario once in this process, so that its caches (the beta inverse-CDF tables
    of pipeline/spec/marginals.py: ~0.1 s of CPU a scenario when cold) are filled before the
    first task needs them. Changes no number; a run calls it while Prefect starts."""
    for scenario in scenarios:
        plan_for(scenario, run, evidence)


def block_groups(n_blocks: int, n_groups: int) -> list[range]:
    """Split blocks 0..n_blocks-1 into at most ``n_groups`` contiguous ranges (task fan-out)."""
    n_groups = max(1, min(n_groups, n_blocks))
    size = math.ceil(n_blocks / n_groups)
    return [range(s, min(s + size, n_blocks)) for s in range(0, n_blocks, size)]


@dataclass(frozen=True, eq=False)
class TrialRows:
    """Kept trials of one block for the ``trials`` dataset: outcomes, sampled inputs and their
    global trial indexes."""

    outcomes: Outcomes
    inputs: Mapping[str, FloatArray]
    index: IntArray


@dataclass(frozen=True, eq=False)
class GroupResult:
    """Mergeable result of a group of blocks of one scenario (no per-trial arrays beyond the
    bounded sensitivity sample and the optional trial sample)."""

    summary: BlockSummary
    sample: TrialSample | None
    trials: Mapping[int, TrialRows]
    """First trial index of a block -> its kept trials, for the ``trials`` dataset."""


class Cancelled(Exception):
    """A block group stopped because the run was asked to stop (SIGTERM/SIGINT)."""


def run_group(
    scenario: Scenario,
    run: RunSettings,
    evidence: EvidenceState,
    blocks: Sequence[int],
    *,
    stop: Callable[[], bool] | None = None,
) -> GroupResult:
    """Simulate a group of blocks and reduce them to a :class:`GroupResult`.

    ``stop`` is asked before each block; if it returns True the group raises Cancelled.
    """
    plan = plan_for(scenario, run, evidence)
    result: GroupResult | None = None
    for block in blocks:
        if stop is not None and stop():
            raise Cancelled(f"{scenario.name}: stopped before block {block}")
        outcomes, draws = run_block(plan, block)
        mask = condition_mask(outcomes, evidence)
        first = block * plan.chunk_size
        sample = (
            sample_trials(draws, outcomes, first_trial_index=first,
                          capacity=run.sensitivity_capacity, mask=mask)
            if run.sensitivity_capacity > 0 and first < run.sensitivity_capacity else None
        )  # fmt: skip
        trials: dict[int, TrialRows] = {}
        if first < run.trials_sample:
            # The kept trials among the run's first ``trials_sample`` simulated ones.
            index = np.arange(first, min(first + outcomes.n_trials, run.trials_sample))
            if mask is not None:
                index = index[mask[: index.size]]
            local = index - first
            trials[first] = TrialRows(
                outcomes.take(local), {k: v[local] for k, v in draws.items()}, index
            )
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
            to_trials_frame(
                rows.outcomes,
                run_id=run_id,
                first_trial_index=rows.index,
                created_at=created_at,
                inputs=rows.inputs,
            )
            for _, rows in sorted(result.trials.items())
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
    min_effective_trials: int = DEFAULT_MIN_EFFECTIVE_TRIALS
    """Fewest trials a scenario must keep after evidence conditioning to be published."""

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
    for scenario in chosen:
        check_as_of(scenario, as_of)
    evidence_path = confined(request.evidence_path, request.config_dir, "evidence_file")
    evidence = evidence_as_of(load_evidence(evidence_path), as_of)
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
    largest = cap if cap is not None else settings.n_trials
    if math.ceil(largest / settings.chunk_size) > MAX_BLOCKS_PER_SCENARIO:
        raise ScenarioError(
            "--chunk-size", "",
            f"{settings.chunk_size:,} trials per block make more than {MAX_BLOCKS_PER_SCENARIO:,} "
            f"blocks for {largest:,} trials; use at least "
            f"{math.ceil(largest / MAX_BLOCKS_PER_SCENARIO):,}",
        )  # fmt: skip
    in_flight = min(request.workers, math.ceil(largest / settings.chunk_size))
    processes = request.runner in PROCESS_RUNNERS
    need = run_memory_bytes(in_flight, settings.chunk_size, worker_processes=processes)
    # On a remote Dask cluster the blocks live in the cluster's memory, not here.
    if request.dask_address is None and need > MAX_RUN_BYTES:
        raise ScenarioError(
            "--workers", str(request.workers),
            f"{in_flight} workers x {settings.chunk_size:,} trials per block would need about "
            f"{need / 1e9:.1f} GB (the bound is {MAX_RUN_BYTES / 1e9:.0f} GB: "
            f"{RUN_BASE_BYTES / 1e9:.2f} GB + {GROUP_BYTES / 1e6:.0f} MB + "
            f"{BLOCK_BYTES_PER_TRIAL / 1e3:.2f} kB per trial of a block"
            + (f" + {WORKER_PROCESS_BYTES / 1e9:.2f} GB for its process" if processes else "")
            + ", per worker); use fewer workers or smaller blocks",
        )  # fmt: skip
    minimum = (
        request.min_effective_trials
        if request.min_effective_trials is not None
        else DEFAULT_MIN_EFFECTIVE_TRIALS
    )
    return PreparedRun(request, tuple(chosen), evidence, settings, target, cap, minimum)


def check_as_of(scenario: Scenario, as_of: date) -> None:
    """The as-of date must lie in the scenario's model calendar (else ScenarioError naming it).

    Before the calendar the model would start in its first month anyway (a run as of 1900 was
    a run as of January 2026 published under 1900); after it nothing is left to simulate. The
    calendar runs over whole fiscal years of the host (April 2026 to March 2031 for a fiscal
    year starting in April).
    """
    host, model = scenario.host, scenario.model
    first = host.fiscal_year_start(model.calendar_base_year)
    last = host.fiscal_year_start(model.horizon_year + 1) - timedelta(days=1)
    if not first <= as_of <= last:
        raise ScenarioError(
            "--as-of", as_of.isoformat(),
            f"outside the model calendar of scenario {scenario.name} ({first} to {last}; "
            "model.calendar_base_year and model.horizon_year)",
        )  # fmt: skip


def check_publishable(merged: Mapping[str, GroupResult], n_trials: int, minimum: int) -> list[str]:
    """Gate a run's merged results before anything is published; returns warnings.

    Raises GateError if a scenario kept fewer than ``min(minimum, n_trials)`` trials after
    evidence conditioning (a run that asked for fewer trials than the minimum is held to
    all of them), or has no finite increase quantile (no trial settled, or none kept).
    """
    warnings: list[str] = []
    required = min(minimum, n_trials)
    for name, result in merged.items():
        kept = result.summary.n_effective
        if kept < required:
            raise GateError(
                f"scenario {name}: evidence conditioning kept {kept:,} of {n_trials:,} trials, "
                f"fewer than the minimum {required:,} (--min-effective-trials); nothing "
                "published: check the as-of date against evidence.yaml, or add trials"
            )
        if kept < n_trials and kept < LOW_EFFECTIVE_FACTOR * minimum:
            warnings.append(
                f"scenario {name}: evidence conditioning kept only {kept:,} of {n_trials:,} "
                f"trials ({100 * kept / n_trials:.2g}%); Monte Carlo errors are larger"
            )
    return warnings


def check_headline(name: str, headline: Mapping[str, float]) -> None:
    """A scenario whose headline increase quantiles are not all finite is never published."""
    keys = ("increase_pct_p10", "increase_pct_p50", "increase_pct_p90")
    bad = [k for k in keys if not math.isfinite(headline.get(k, math.nan))]
    if bad:
        raise GateError(
            f"scenario {name}: no finite {', '.join(bad)} (no kept trial reached an "
            "agreement within the horizon); nothing published: check --as-of and the evidence"
        )


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
