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
