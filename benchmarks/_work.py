"""Work for benchmark worker processes (importable, so spawned processes can run it)."""

from __future__ import annotations

import functools
import time

from pipeline.model.plan import Plan


@functools.cache
def _plan() -> Plan:
    from benchmarks.__main__ import baseline_plan

    return baseline_plan()


def monte_carlo_blocks(blocks: list[int]) -> float:
    """Sample and simulate baseline blocks in this process; returns the seconds it took."""
    from benchmarks.__main__ import events_for
    from pipeline.model.plan import sample_block
    from pipeline.model.simulate import simulate

    plan = _plan()
    start = time.perf_counter()
    for b in blocks:
        simulate(sample_block(plan, b), plan.settings, event_uniforms=events_for(plan, b))
    return time.perf_counter() - start


@functools.cache
def _plans(trials: int) -> list[Plan]:
    from benchmarks.__main__ import AS_OF, CHUNK, REPO, SEED
    from pipeline.compose import resolve_scenarios
    from pipeline.model.plan import plan_run

    return [plan_run(s, as_of=AS_OF, entropy=SEED, n_trials=trials, chunk_size=CHUNK)
            for s in resolve_scenarios(REPO / "configs")]  # fmt: skip


def monte_carlo_jobs(jobs: list[tuple[int, int]], trials: int) -> float:
    """Sample and simulate (scenario index, block) jobs of every default scenario at ``trials``
    each; returns the seconds it took. An empty list warms the process up."""
    from benchmarks.__main__ import events_for
    from pipeline.model.plan import sample_block
    from pipeline.model.simulate import simulate

    plans = _plans(trials)
    start = time.perf_counter()
    for i, b in jobs:
        plan = plans[i]
        simulate(sample_block(plan, b), plan.settings, event_uniforms=events_for(plan, b))
    return time.perf_counter() - start
