"""Sampled blocks of the model cases that tests compare implementations on (the per-trial
reference, the month-by-month oracle): every scenario with all mechanisms on, the baseline
with each one off, and the baseline at a later as-of date."""

from __future__ import annotations

import dataclasses
import functools
from datetime import date

from strategies import MECHANISMS, SCENARIO_PATHS

from pipeline import load_scenario, plan_run
from pipeline.common import FloatArray
from pipeline.model.plan import sample_block
from pipeline.model.seeding import EVENT_STREAM, block_rng
from pipeline.model.settings import ModelSettings
from pipeline.model.simulate import EVENT_COLUMNS

AS_OF = date(2026, 11, 29)
LATER_AS_OF = date(2029, 3, 1)  # after the change of administration: talks open under the next
SCENARIOS = {path.stem: path for path in SCENARIO_PATHS}

Case = tuple[str, date, str | None]
"""(scenario, as-of date, mechanism switched off or None)."""

CASES: list[Case] = (
    [(name, AS_OF, None) for name in SCENARIOS]
    + [("baseline", AS_OF, mechanism) for mechanism in MECHANISMS]
    + [("baseline", LATER_AS_OF, None)]
)
CASE_IDS = [f"{s}-{a}-{m or 'all_on'}" for s, a, m in CASES]


@functools.cache
def sampled_block(
    scenario: str, as_of: date, n_trials: int
) -> tuple[ModelSettings, dict[str, FloatArray], FloatArray]:
    """Settings, sampled inputs and event uniforms of one block of ``n_trials`` trials."""
    plan = plan_run(
        load_scenario(SCENARIOS[scenario]),
        as_of=as_of,
        entropy=20261207,
        n_trials=n_trials,
        chunk_size=n_trials,
    )
    events = block_rng(plan.entropy, 0, EVENT_STREAM).random((n_trials, len(EVENT_COLUMNS)))
    return plan.settings, sample_block(plan, 0), events


def case_settings(settings: ModelSettings, mechanism_off: str | None) -> ModelSettings:
    """``settings`` with ``mechanism_off`` switched off (unchanged for None)."""
    if mechanism_off is None:
        return settings
    return dataclasses.replace(settings, **{mechanism_off: False})
