"""Plain-Python composition: scenario -> settings -> per-block sampling -> simulation.

``run_block`` is what both the plain path (``run_forecast``) and the Prefect flows call on the
same fixed blocks, so the two give identical numbers for the same seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from pipeline.common import FloatArray
from pipeline.model.outcomes import Outcomes
from pipeline.model.sampling import CopulaPlan, copula_plan, sample_inputs
from pipeline.model.seeding import EVENT_STREAM, INPUT_STREAM, block_rng, sampler_seed
from pipeline.model.settings import ModelSettings, model_settings
from pipeline.model.simulate import EVENT_COLUMNS, simulate
from pipeline.spec.catalog import INPUT_BY_NAME, INPUT_NAMES
from pipeline.spec.distributions import Marginal, marginal
from pipeline.spec.scenario import Scenario


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything a worker needs to run any block of one scenario (small; cheap to rebuild)."""

    scenario: Scenario
    settings: ModelSettings
    marginals: dict[str, Marginal]
    copula: CopulaPlan | None
    entropy: int
    n_trials: int
    chunk_size: int

    @property
    def n_blocks(self) -> int:
        return math.ceil(self.n_trials / self.chunk_size)

    def block_size(self, block: int) -> int:
        return min(self.chunk_size, self.n_trials - block * self.chunk_size)


def plan_run(
    scenario: Scenario,
    *,
    as_of: date,
    entropy: int,
    n_trials: int | None = None,
    chunk_size: int | None = None,
    talks_open_on: date | None = None,
) -> Plan:
    """Resolve a scenario into a run plan (marginals, copula, settings)."""
    rc = scenario.rank_correlation
    plan = copula_plan(INPUT_NAMES, rc.inputs, np.asarray(rc.matrix)) if rc else None
    return Plan(
        scenario=scenario,
        settings=model_settings(scenario, as_of, talks_open_on=talks_open_on),
        marginals={
            name: marginal(spec, INPUT_BY_NAME[name].categories)
            for name, spec in scenario.inputs.items()
        },
        copula=plan,
        entropy=entropy,
        n_trials=n_trials if n_trials is not None else scenario.simulation.n_trials,
        chunk_size=chunk_size if chunk_size is not None else scenario.simulation.chunk_size,
    )


def sample_block(plan: Plan, block: int) -> dict[str, FloatArray]:
    """The sampled inputs of one block, clipped to each input's allowed range."""
    size = plan.block_size(block)
    draws = sample_inputs(
        INPUT_NAMES,
        plan.marginals,
        size,
        rng=block_rng(plan.entropy, block, INPUT_STREAM),
        method=plan.scenario.simulation.sampler,
        plan=plan.copula,
        offset=block * plan.chunk_size,
        scramble_seed=sampler_seed(plan.entropy),
    )
    for name, values in draws.items():
        info = INPUT_BY_NAME[name]
        np.clip(values, info.low, info.high, out=values)
    return draws


def run_block(plan: Plan, block: int) -> tuple[Outcomes, dict[str, FloatArray]]:
    """Sample and simulate one block of trials; returns (outcomes, sampled inputs)."""
    if not 0 <= block < plan.n_blocks:
        raise IndexError(f"block {block} out of range 0..{plan.n_blocks - 1}")
    draws = sample_block(plan, block)
    events = block_rng(plan.entropy, block, EVENT_STREAM).random(
        (plan.block_size(block), len(EVENT_COLUMNS))
    )
    return simulate(draws, plan.settings, event_uniforms=events), draws


@dataclass(frozen=True, eq=False)
class ForecastResult:
    """All trials of one scenario, in block order (for analysis at modest trial counts)."""

    scenario: str
    entropy: int
    outcomes: Outcomes
    inputs: dict[str, FloatArray]


def run_forecast(
    scenario: Scenario,
    *,
    as_of: date,
    seed: int | None = None,
    n_trials: int | None = None,
    chunk_size: int | None = None,
    blocks: list[int] | None = None,
) -> ForecastResult:
    """Run every block of a scenario in plain Python and join them (in block order)."""
    from pipeline.model.seeding import root_entropy

    entropy = root_entropy(seed if seed is not None else scenario.simulation.seed)
    plan = plan_run(
        scenario, as_of=as_of, entropy=entropy, n_trials=n_trials, chunk_size=chunk_size
    )
    order = blocks if blocks is not None else list(range(plan.n_blocks))
    results = {b: run_block(plan, b) for b in order}
    ordered = [results[b] for b in sorted(results)]
    outcomes = Outcomes.concatenate([o for o, _ in ordered])
    inputs = {k: np.concatenate([d[k] for _, d in ordered]) for k in INPUT_NAMES}
    return ForecastResult(scenario.name, entropy, outcomes, inputs)
