"""The phase-by-phase bargaining core against the month-by-month oracle (tests/bargaining_oracle.py).

Tolerance: closed forms (``(1 - rate)^m`` as ``exp(m log(1 - rate))``, ``m`` stalemate steps as
one product) round differently from repeated monthly updates. Per trial, settlement times and
increases agree within ``RTOL = 1e-9`` relative and ``ATOL = 1e-9`` absolute (months,
percentage points; measured: below 1e-12), settled or not and troop threats exactly. Where
paths cross exactly at a month's end, rounding may put the crossing at the end of one month or
the start of the next: the same time and increase either way, which is why the outcomes
(not the month index) are compared. Published tables agree within the same tolerance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any

import golden
import numpy as np
import pyarrow as pa
import pytest
from bargaining_oracle import bargain_monthly
from hypothesis import given, settings
from hypothesis import strategies as st
from model_cases import AS_OF, CASE_IDS, CASES, SCENARIOS, case_settings, sampled_block

import pipeline.model.simulate as simulate_module
from pipeline import load_scenario, plan_run
from pipeline.common import BoolArray, FloatArray
from pipeline.model.bargaining import BargainingInputs, bargain
from pipeline.model.settings import ModelSettings

RTOL = 1e-9
ATOL = 1e-9
N_TRIALS = 20_000
Result = tuple[FloatArray, FloatArray, BoolArray]


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ModelSettings, BargainingInputs]]:
    """Every bargaining the simulation runs (first deals and renewals), with its inputs."""
    calls: list[tuple[ModelSettings, BargainingInputs]] = []

    def spy(s: ModelSettings, trials: BargainingInputs) -> Result:
        calls.append((s, trials))
        return bargain(s, trials)

    monkeypatch.setattr(simulate_module, "bargain", spy)
    return calls


def _assert_same(core: Result, oracle: Result, what: str) -> None:
    (time_c, inc_c, threat_c), (time_o, inc_o, threat_o) = core, oracle
    np.testing.assert_array_equal(np.isnan(time_c), np.isnan(time_o), err_msg=f"{what}: settled")
    np.testing.assert_allclose(time_c, time_o, rtol=RTOL, atol=ATOL, err_msg=f"{what}: time")
    np.testing.assert_allclose(inc_c, inc_o, rtol=RTOL, atol=ATOL, err_msg=f"{what}: increase")
    np.testing.assert_array_equal(threat_c, threat_o, err_msg=f"{what}: troop threat")


@pytest.mark.parametrize(
    ("scenario", "as_of", "mechanism_off"),
    CASES,
    ids=CASE_IDS,
)
def test_core_matches_month_by_month_oracle(
    scenario: str, as_of: date, mechanism_off: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every bargaining of a 20,000-trial block (first deals and renewals), per trial."""
    s, draws, events = sampled_block(scenario, as_of, N_TRIALS)
    s = case_settings(s, mechanism_off)
    calls = _capture(monkeypatch)
    simulate_module.simulate(draws, s, event_uniforms=events)
    assert calls
    settled = 0
    for k, (call_settings, trials) in enumerate(calls):
        core = bargain(call_settings, trials)
        _assert_same(core, bargain_monthly(call_settings, trials), f"bargaining {k}")
        settled += int(np.isfinite(core[0]).sum())
    assert settled > 0


_BASE = SCENARIOS["baseline"]


@pytest.fixture(scope="module")
def baseline_settings() -> ModelSettings:
    return plan_run(
        load_scenario(_BASE), as_of=AS_OF, entropy=1, n_trials=1000, chunk_size=1000
    ).settings


def _rates(n: int) -> st.SearchStrategy[list[float]]:
    # Concession rates including both ends (0: no concession, 1: the whole gap at once).
    return st.lists(
        st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)), min_size=n, max_size=n
    )


@st.composite
def bargaining_inputs(draw: Callable[..., Any]) -> tuple[BargainingInputs, dict[str, bool]]:
    """Small blocks of trials anywhere in the model's input ranges, some on the edges."""
    n = draw(st.integers(1, 12))

    def floats(lo: float, hi: float) -> FloatArray:
        return np.array(draw(st.lists(st.floats(lo, hi), min_size=n, max_size=n)))

    start = np.array(draw(st.lists(st.integers(-3, 75), min_size=n, max_size=n)), dtype=float)
    raw_ask = floats(0.0, 80.0)
    share = floats(0.0, 1.0)
    shift = np.where(floats(0.0, 1.0) < 0.3, floats(0.0, 10.0), 0.0)
    offer = floats(-10.0, 30.0)
    ceiling = np.maximum(floats(-10.0, 60.0), offer)
    post_raw = raw_ask * floats(0.2, 1.8)
    either_way = draw(st.booleans())
    ratio = np.where(raw_ask > 0, post_raw / np.where(raw_ask > 0, raw_ask, 1.0), 1.0)
    trials = BargainingInputs(
        start=start,
        expiry=np.array(
            draw(st.lists(st.sampled_from([12.0, 36.0, 60.0, 200.0]), min_size=n, max_size=n))
        ),
        us_ask=raw_ask - shift,
        us_floor=share * raw_ask - shift,
        korea_offer=offer - shift,
        korea_ceiling=ceiling - shift,
        us_concession_rate=np.array(draw(_rates(n))),
        korea_concession_rate=np.array(draw(_rates(n))),
        negotiation_length_months=floats(1.0, 60.0),
        stalemate_step=np.where(floats(0.0, 1.0) < 0.2, 0.0, floats(0.0, 3.0)),
        post_change_ask=post_raw - shift,
        post_change_floor=share * post_raw - shift,
        post_change_ratio=ratio if either_way else None,
        shift=shift,
        intensity=floats(0.0, 1.0),
        post_intensity=floats(0.0, 1.0),
        troop_threat_prob=floats(0.0, 1.0),
        troop_threat_uplift=floats(0.0, 10.0),
        u_troop=floats(0.0, 1.0),
    )
    flags = {
        name: draw(st.booleans()) for name in ("deadline", "troop_lever", "administration_change")
    }
    return trials, flags


@settings(max_examples=300, deadline=None, derandomize=True)
@given(case=bargaining_inputs())
def test_core_matches_oracle_on_any_inputs(
    case: tuple[BargainingInputs, dict[str, bool]], baseline_settings: ModelSettings
) -> None:
    """Any positions, rates (0 and 1 included), steps (0 included), deadlines and start months
    in the model's ranges, with the deadline, troop lever and change of administration on or
    off: the same outcomes per trial."""
    trials, flags = case
    s = dataclasses.replace(baseline_settings, **flags)
    _assert_same(bargain(s, trials), bargain_monthly(s, trials), "hypothesis block")


def _tables_close(core: dict[str, pa.Table], oracle: dict[str, pa.Table], key: str) -> None:
    assert sorted(core) == sorted(oracle)
    for name, table in core.items():
        other = oracle[name]
        assert table.schema == other.schema, f"{key}/{name}: schema"
        for field, a, b in zip(table.schema, table.columns, other.columns, strict=True):
            where = f"{key}/{name}.{field.name}"
            if pa.types.is_floating(field.type):
                np.testing.assert_allclose(
                    a.to_numpy(zero_copy_only=False),
                    b.to_numpy(zero_copy_only=False),
                    rtol=RTOL,
                    atol=ATOL,
                    err_msg=where,
                )
            else:
                assert a.equals(b), where


#: Every scenario with all mechanisms on, the baseline with each one off, its samplers and a
#: later as-of date (the golden cases of the other scenarios with one mechanism off add little).
ORACLE_CASES = [
    case for case in golden.cases() if case.key.startswith("baseline/") or "all_on" in case.key
]


@pytest.mark.slow
@pytest.mark.parametrize("case", ORACLE_CASES, ids=lambda c: c.key)
def test_published_tables_match_month_by_month_oracle(
    case: golden.Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Golden cases' published tables, computed with the core and with the oracle in its place,
    agree within the tolerance."""
    core = golden.case_tables(case)
    monkeypatch.setattr(simulate_module, "bargain", bargain_monthly)
    _tables_close(core, golden.case_tables(case), case.key)
