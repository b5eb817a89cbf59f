"""The per-trial reference of benchmarks/reference.py against the vectorized core.

``benchmarks.reference.trial`` states the model one trial at a time, following pipeline/model/
operation by operation, and the benchmarks time the core against it: if the two drift apart, the
benchmark compares different models. These tests run the reference's plain-Python loop (the
same loop the benchmark's "pure-Python" row runs; numba is not needed) on a few thousand trials
of every scenario, and with each mechanism switched off, and require
``check_against_core(...) == []``. The same check through the compiled runner runs where numba
is installed.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pytest
from model_cases import AS_OF, CASE_IDS, CASES, LATER_AS_OF, case_settings, sampled_block

from benchmarks import reference
from pipeline.common import FloatArray
from pipeline.model.outcomes import Outcomes
from pipeline.model.settings import ModelSettings
from pipeline.model.simulate import simulate

N_TRIALS = 3000


def _case(
    scenario: str, as_of: date, mechanism_off: str | None
) -> tuple[ModelSettings, dict[str, FloatArray], FloatArray, Outcomes]:
    """A case's settings, inputs and events, and the core's outcomes for them."""
    settings, draws, events = sampled_block(scenario, as_of, N_TRIALS)
    settings = case_settings(settings, mechanism_off)
    return settings, draws, events, simulate(draws, settings, event_uniforms=events)


def _python_reference(
    settings: ModelSettings, draws: dict[str, FloatArray], events: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The reference's plain-Python per-trial loop (as benchmarks/__main__.py's bench_python
    runs it: Python lists in), as (trials, SCALARS) and (trials, path years) arrays."""
    run = reference.python_runner()
    scalars, paths = run(reference.input_matrix(draws).tolist(), events.tolist(), settings)
    return np.asarray(scalars, dtype=np.float64), np.asarray(paths, dtype=np.float64)


@pytest.mark.parametrize(
    ("scenario", "as_of", "mechanism_off"),
    CASES,
    ids=CASE_IDS,
)
def test_python_reference_matches_core(
    scenario: str, as_of: date, mechanism_off: str | None
) -> None:
    settings, draws, events, outcomes = _case(scenario, as_of, mechanism_off)
    scalars, paths = _python_reference(settings, draws, events)
    assert scalars.shape == (N_TRIALS, len(reference.SCALARS))
    assert reference.check_against_core(outcomes, scalars, paths) == []


def test_reference_cases_exercise_the_mechanisms() -> None:
    """The all-on baseline block has every kind of trial the comparison is meant to cover."""
    *_, outcomes = _case("baseline", AS_OF, None)
    settled = outcomes.settled_by_horizon
    for name in ("reopened", "troop_threat", "lapse", "furlough", "package_deal", "stopgap"):
        assert getattr(outcomes, name).any(), name
    assert settled.any() and not settled.all()
    assert (~outcomes.reopened).any()
    # Renewals, some settled and some not, and deals agreed during a stop-gap.
    assert outcomes.renegotiated.any()
    assert np.isfinite(outcomes.renewal_increase_pct).any()
    assert (outcomes.stopgap & outcomes.settled_by_horizon).any()
    # The harder successor: trials whose next administration outdoes Trump.
    *_, later = _case("baseline", LATER_AS_OF, None)
    assert later.settled_by_horizon.any()


def test_reference_cases_exercise_cuts() -> None:
    """The fiscal-stress block has cuts (negative first-year increases) to compare."""
    *_, outcomes = _case("fiscal_stress", AS_OF, None)
    assert (outcomes.increase_pct < 0).any()


def test_check_against_core_reports_a_perturbed_outcome() -> None:
    """A change to one trial's outcome, in any field, is reported (the comparison can fail)."""
    settings, draws, events, outcomes = _case("baseline", AS_OF, None)
    scalars, paths = _python_reference(settings, draws, events)
    trial = int(np.flatnonzero(outcomes.settled_by_horizon & outcomes.troop_threat)[0])
    for j, name in enumerate(reference.SCALARS):
        changed = scalars.copy()
        # A defined value moves by one; an undefined one (NaN) becomes defined.
        changed[trial, j] = changed[trial, j] + 1.0 if np.isfinite(changed[trial, j]) else 1.0
        assert reference.check_against_core(outcomes, changed, paths) == [f"{name}: 1 trials"]
    changed_paths = paths.copy()
    changed_paths[trial, -2] *= 1.0 + 1e-6
    assert reference.check_against_core(outcomes, scalars, changed_paths) == ["contribution_krw_bn"]
    # And on the core's side: a settled increase off by a millionth of a point.
    increase = outcomes.increase_pct.copy()
    increase[trial] += 1e-6
    core = dataclasses.replace(outcomes, increase_pct=increase)
    assert reference.check_against_core(core, scalars, paths) == ["increase_pct: 1 trials"]


def test_numba_reference_matches_core() -> None:
    """The compiled per-trial reference (the benchmark's "core" row), where numba is installed."""
    pytest.importorskip("numba")
    run = reference.numba_runner()
    for scenario, as_of, mechanism_off in CASES[:: len(CASES) // 3]:
        settings, draws, events, outcomes = _case(scenario, as_of, mechanism_off)
        scalars, paths = run(reference.input_matrix(draws), events, settings)
        assert reference.check_against_core(outcomes, scalars, paths) == [], scenario
