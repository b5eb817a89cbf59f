"""Properties of the negotiation model that must hold for every trial of every run (hypothesis).

Runs are small (N_TRIALS trials in blocks of CHUNK) and seeded by hypothesis; ``derandomize=True``
makes the examples the same on every machine, so CI is deterministic. A Plan (marginals, copula,
settings) is built once per scenario variant and re-seeded with ``dataclasses.replace`` -- exactly
what ``run_forecast`` does with a seed, minus rebuilding the marginals for every example.

Monotonicity is checked with common random numbers: both runs use the same seed, so trial i of one
run and trial i of the other share every uniform. Medians are compared over the trials settled
within the horizon in BOTH runs: the median over each run's own settled trials can fall through
selection (raising the demand makes the highest asks stop settling within the horizon, and those
trials drop out of the high-demand run only).
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import example, given, settings
from strategies import (
    BASELINE,
    CONFIG_DIR,
    intensity_pairs,
    mechanism_flags,
    samplers,
    scenario_paths,
    seeds,
)

from pipeline import Outcomes, Plan, load_scenario, plan_run, run_block

AS_OF = date(2026, 11, 29)
N_TRIALS = 2048  # two full blocks (a power of two, as Sobol prefers)
CHUNK = 1024
TOL = 1e-9  # [percentage points] rounding of the interpolated settlement

PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


def _plan(path: Path, overrides: dict[str, Any] | None = None, sampler: str = "mc") -> Plan:
    scenario = load_scenario(path, overrides, simulation={"sampler": sampler})
    return plan_run(scenario, as_of=AS_OF, entropy=0, n_trials=N_TRIALS, chunk_size=CHUNK)


@functools.cache
def plan_for(path: Path, sampler: str = "mc") -> Plan:
    return _plan(path, sampler=sampler)


@functools.cache
def intensity_plan(value: float) -> Plan:
    """Baseline with Trump's demand intensity fixed (the whole spec replaced by the override)."""
    return _plan(BASELINE, {"trump_demand_intensity": {"dist": "fixed", "value": value}})


@functools.cache
def package_off_plan() -> Plan:
    return _plan(BASELINE, {"model.mechanisms.package_deal": False})


def run(plan: Plan, seed: int, **mechanisms: bool) -> tuple[Outcomes, dict[str, np.ndarray]]:
    """All blocks of ``plan`` at root entropy ``seed`` (mechanism switches optionally replaced)."""
    if mechanisms:
        plan = dataclasses.replace(plan, settings=dataclasses.replace(plan.settings, **mechanisms))
    plan = dataclasses.replace(plan, entropy=seed)
    parts = [run_block(plan, b) for b in range(plan.n_blocks)]
    inputs = {k: np.concatenate([d[k] for _, d in parts]) for k in parts[0][1]}
    return Outcomes.concatenate([o for o, _ in parts]), inputs


# --------------------------------------------------------------------------- invariants


@PROPERTY_SETTINGS
@given(path=scenario_paths, seed=seeds, sampler=samplers, flags=mechanism_flags)
def test_outcome_invariants(path: Path, seed: int, sampler: str, flags: dict[str, bool]) -> None:
    plan = plan_for(path, sampler)
    o, inputs = run(plan, seed, **flags)
    s = plan.settings
    n, horizon = N_TRIALS, s.horizon_month
    settled = o.settled_by_horizon

    # Shapes.
    assert o.n_trials == n
    assert o.contribution_krw_bn.shape == o.contribution_usd_m.shape == (n, len(o.path_years))
    assert o.path_years == tuple(range(s.calendar_base_year, s.horizon_year + 1))

    # Defined exactly where an agreement was reached: finite there, NaN (or -1) elsewhere.
    for name in (
        "increase_pct",
        "first_year",
        "first_year_krw_bn",
        "first_year_usd_m",
        "term_years",
        "settlement_month",
    ):
        values = getattr(o, name)
        np.testing.assert_array_equal(np.isfinite(values), settled, err_msg=name)
        assert np.all(np.isnan(values[~settled])), name
    np.testing.assert_array_equal(o.escalation_rule == -1, ~settled)
    assert set(np.unique(o.escalation_rule[settled])) <= {0, 1, 2}

    # No negative amounts.
    assert np.all(np.isfinite(o.contribution_krw_bn)) and np.all(o.contribution_krw_bn > 0)
    assert np.all(np.isfinite(o.contribution_usd_m)) and np.all(o.contribution_usd_m > 0)
    assert np.all(o.first_year_krw_bn[settled] > 0) and np.all(o.first_year_usd_m[settled] > 0)

    # Months within the horizon.
    opened = np.isfinite(o.talks_start_month)
    np.testing.assert_array_equal(np.isfinite(o.months_to_settlement), opened)
    assert np.all(settled <= opened)
    assert np.all(
        (o.months_to_settlement[opened] >= 0) & (o.months_to_settlement[opened] <= horizon)
    )
    assert np.all(o.talks_start_month[opened] >= s.start_month)
    assert np.all(o.settlement_month[settled] >= o.talks_start_month[settled])
    assert np.all(o.settlement_month[settled] <= horizon)
    assert np.all((o.lapse_months >= 0) & (o.lapse_months <= horizon))
    # Lapses of the replaced agreement come after its expiry; a renewal's may come earlier.
    assert np.all(o.lapse_months <= horizon - s.start_month)
    assert np.all(o.lapse_months[~o.renegotiated] <= max(horizon - s.expiry_month, 0))

    # Booleans consistent with each other and with the switches.
    np.testing.assert_array_equal(o.lapse, o.lapse_months > 0)
    assert np.all(o.furlough <= o.lapse)
    assert np.all(o.lapse_months[o.furlough] > s.furlough_after_lapse_months)
    if not flags["lapse_furlough"]:
        assert not o.furlough.any()
    if not flags["troop_lever"]:
        assert not o.troop_threat.any()
    if not flags["package_deal"]:
        assert not o.package_deal.any()
    if not flags["reopening"]:
        assert not o.reopened.any()
    np.testing.assert_array_equal(
        o.package_deal, (inputs["package_deal"] >= 0.5) & flags["package_deal"]
    )

    # Stop-gaps: only past expiry, for whole years, at the stated level, defined where agreed.
    stop = o.stopgap
    if not flags["stopgap"]:
        assert not stop.any()
    assert not np.any(stop & (o.settlement_month < s.expiry_month))
    np.testing.assert_array_equal(o.stopgap_months > 0, stop)
    assert np.all(o.stopgap_months % 12 == 0)
    for name in ("stopgap_first_year", "stopgap_level_krw_bn"):
        np.testing.assert_array_equal(np.isfinite(getattr(o, name)), stop, err_msg=name)
    expiry_year = s.calendar_base_year + s.expiry_month // 12 - 1
    assert np.all(o.stopgap_first_year[stop] == expiry_year + 1)
    # A deal agreed during a stop-gap replaces it when it ends: after the stop-gap's years.
    during = stop & settled
    assert np.all(o.first_year[during] >= expiry_year + 1 + o.stopgap_months[during] / 12)
    if expiry_year + 1 in o.path_years:
        col = o.path_years.index(expiry_year + 1)
        np.testing.assert_array_equal(
            o.contribution_krw_bn[stop, col], o.stopgap_level_krw_bn[stop]
        )

    # Renewals: only of a settled deal ending inside the horizon, after its first year.
    renewed = o.renegotiated
    if not flags["renegotiation"]:
        assert not renewed.any()
    assert np.all(renewed <= settled)
    assert np.all(o.first_year[renewed] + o.term_years[renewed] <= s.horizon_year)
    assert np.all(np.isnan(o.renewal_first_year[~renewed]))
    assert np.all(np.isnan(o.renewal_increase_pct[~renewed]))
    np.testing.assert_array_equal(
        np.isfinite(o.renewal_first_year), np.isfinite(o.renewal_increase_pct)
    )
    has_renewal = np.isfinite(o.renewal_first_year)
    assert np.all(
        o.renewal_first_year[has_renewal] >= o.first_year[has_renewal] + o.term_years[has_renewal]
    )

    # The first year is a path year (or the year after the horizon, for a deal agreed during a
    # stop-gap), its value is on the path, and the path steps up by the agreed increase into it.
    first = o.first_year[settled].astype(np.int64)
    assert np.all(np.isin(first, (*o.path_years, s.horizon_year + 1)))
    assert np.all(np.isin(o.first_year[settled & ~stop], o.path_years))
    on_path = np.isin(first, o.path_years)
    first = first[on_path]
    rows = np.flatnonzero(settled)[on_path]
    cols = first - s.calendar_base_year
    np.testing.assert_array_equal(o.contribution_krw_bn[rows, cols], o.first_year_krw_bn[rows])
    inner = cols > 0
    np.testing.assert_allclose(
        o.contribution_krw_bn[rows[inner], cols[inner]],
        o.contribution_krw_bn[rows[inner], cols[inner] - 1]
        * (1 + o.increase_pct[rows[inner]] / 100),
        rtol=1e-12,
    )
    # USD at the trial's own exchange rate.
    np.testing.assert_allclose(
        o.contribution_usd_m,
        o.contribution_krw_bn * 1000 / inputs["krw_per_usd"][:, None],
        rtol=1e-12,
    )


# --------------------------------------------------------------------------- monotonicity


def _settled_in_both(lo: Outcomes, hi: Outcomes) -> np.ndarray:
    return lo.settled_by_horizon & hi.settled_by_horizon


@PROPERTY_SETTINGS
@given(pair=intensity_pairs(), seed=seeds)
def test_demand_intensity_never_lowers_median_increase(
    pair: tuple[float, float], seed: int
) -> None:
    """Median first-year increase over trials settled in both runs: hi >= lo, while the next
    administration is at most as demanding as Trump (successor_either_way off).

    With an independent successor this fails, and rightly (hypothesis: pair (0.0, 0.1), seed
    0): a Trump at 0.1 instead of 0 reopens talks in his own term, where they settle at his
    low demand, rather than under a successor who may demand more. The bargaining channel
    alone (same talks timing) stays monotone: see the next test."""
    lo_v, hi_v = pair
    lo, _ = run(intensity_plan(lo_v), seed, successor_either_way=False)
    hi, _ = run(intensity_plan(hi_v), seed, successor_either_way=False)
    both = _settled_in_both(lo, hi)
    assert both.sum() > N_TRIALS // 2
    assert np.median(hi.increase_pct[both]) >= np.median(lo.increase_pct[both]) - TOL


# Found by hypothesis with the priors of configs/base.yaml at commit 7acb752: a higher demand
# moves talks earlier, they settle before the agreement expires, and the later, lower-demand
# talks -- which reach their deadline during a lapse, where the stalemate step is doubled --
# settle higher. Trial 297 of this example: 10.40% at intensity 0.7 against 10.12% at 1.0 (talks
# opening in months 54 and 35). Other priors may need other examples; the xfail below searches.
INTENSITY_REVERSAL = {"pair": (0.7, 1.0), "seed": 4720721261117928063}


@PROPERTY_SETTINGS
@given(pair=intensity_pairs(), seed=seeds)
@example(**INTENSITY_REVERSAL)
def test_demand_intensity_never_lowers_increase_at_same_talks_timing(
    pair: tuple[float, float], seed: int
) -> None:
    """Per trial, among trials settled in both runs whose talks opened in the same month:
    increase_hi >= increase_lo - 1e-9. (Holding the timing fixed isolates the bargaining
    channel; the timing channel is the subject of the xfail below.)"""
    lo, _ = run(intensity_plan(pair[0]), seed)
    hi, _ = run(intensity_plan(pair[1]), seed)
    same = _settled_in_both(lo, hi) & (lo.talks_start_month == hi.talks_start_month)
    assert same.sum() > N_TRIALS // 4
    drop = lo.increase_pct[same] - hi.increase_pct[same]
    assert drop.max() <= TOL, f"increase fell by {drop.max():.3g} pp"


@PROPERTY_SETTINGS
@given(pair=intensity_pairs(), seed=seeds)
@example(**INTENSITY_REVERSAL)
def test_demand_intensity_never_lowers_increase_per_trial(
    pair: tuple[float, float], seed: int
) -> None:
    """Per trial, whatever the talks timing. Hypothesis found this failing (example pinned) while
    the stalemate step started in the deadline month itself, doubled in a lapse, which skewed
    the within-month interpolation; since the step starts the month after, equal steps close a
    gap at the middle of the reservation points and the reversal is gone. With the successor
    at most as demanding as Trump (successor_either_way off; see the median test above for why
    an independent successor breaks the timing channel)."""
    lo, _ = run(intensity_plan(pair[0]), seed, successor_either_way=False)
    hi, _ = run(intensity_plan(pair[1]), seed, successor_either_way=False)
    both = _settled_in_both(lo, hi)
    assert np.all(hi.increase_pct[both] >= lo.increase_pct[both] - TOL)


@PROPERTY_SETTINGS
@given(seed=seeds)
def test_switching_off_package_channel_never_lowers_increase(seed: int) -> None:
    """Without the package channel no part of the demand is met outside the SMA: the median
    increase over trials settled in both runs does not fall, nor does any trial's increase at the
    same talks timing.

    Also per trial whatever the timing (a package damps the reopening hazard too, so switching
    it off can move talks earlier); that failed in ~1 trial in 10**5 while the stalemate step
    started in the deadline month, for the reason given in the per-trial intensity test.
    """
    on, _ = run(plan_for(BASELINE), seed)
    off, _ = run(package_off_plan(), seed)
    both = _settled_in_both(on, off)
    assert both.sum() > N_TRIALS // 2
    assert np.median(off.increase_pct[both]) >= np.median(on.increase_pct[both]) - TOL
    same = both & (on.talks_start_month == off.talks_start_month)
    assert np.all(off.increase_pct[same] >= on.increase_pct[same] - TOL)
    # Whatever the timing only while the successor is at most as demanding as Trump: with an
    # independent successor, talks moved into Trump's term can settle below what a harder
    # successor would have asked (hypothesis: seed 1).
    on, _ = run(plan_for(BASELINE), seed, successor_either_way=False)
    off, _ = run(package_off_plan(), seed, successor_either_way=False)
    both = _settled_in_both(on, off)
    assert np.all(off.increase_pct[both] >= on.increase_pct[both] - TOL)
    assert not off.package_deal.any()


@PROPERTY_SETTINGS
@given(pair=intensity_pairs(), seed=seeds)
def test_demand_intensity_raises_pressure_events(pair: tuple[float, float], seed: int) -> None:
    """More demand never makes talks open later or a troop threat less likely, trial by trial
    (the reopening hazard and the threat probability both scale with intensity)."""
    lo, _ = run(intensity_plan(pair[0]), seed)
    hi, _ = run(intensity_plan(pair[1]), seed)
    assert np.all(hi.talks_start_month <= lo.talks_start_month)
    assert np.all(hi.reopened >= lo.reopened)


@functools.cache
def fiscal_stress_plan() -> Plan:
    return plan_for(CONFIG_DIR / "scenarios" / "fiscal_stress.yaml")


@PROPERTY_SETTINGS
@given(seed=seeds)
def test_cuts_lower_the_settlement_by_the_situation_shift(seed: int) -> None:
    """A troop reduction and fiscal stress move every position of both sides down by the same
    points: per trial, the first deal settles at the same time, lower by exactly the shift
    (the bargaining is equivariant under a common shift); the scenario has cuts."""
    plan = fiscal_stress_plan()
    on, inputs = run(plan, seed)
    off, _ = run(plan, seed, cuts=False)
    np.testing.assert_array_equal(on.settled_by_horizon, off.settled_by_horizon)
    both = on.settled_by_horizon
    np.testing.assert_allclose(
        on.settlement_month[both], off.settlement_month[both], rtol=0, atol=1e-9
    )
    shift = np.where(inputs["troop_reduction"] >= 0.5, inputs["troop_reduction_cost_cut_pct"], 0)
    shift = shift + np.where(
        inputs["korea_fiscal_stress"] >= 0.5, inputs["fiscal_stress_cut_pct"], 0
    )
    np.testing.assert_allclose(
        on.increase_pct[both], off.increase_pct[both] - shift[both], rtol=0, atol=1e-9
    )
    assert (on.increase_pct[both] < 0).mean() > 0.2
    assert not (off.increase_pct[both] < 0).any()


@PROPERTY_SETTINGS
@given(seed=seeds)
def test_harder_successor_never_lowers_increase(seed: int) -> None:
    """Letting the next administration be harder than Trump (mechanism successor_either_way)
    only raises its intensity (the cap is removed): per trial, among trials settled in both
    runs whose talks opened in the same month, the increase does not fall."""
    on, _ = run(plan_for(BASELINE), seed)
    off, _ = run(plan_for(BASELINE), seed, successor_either_way=False)
    same = _settled_in_both(on, off) & (on.talks_start_month == off.talks_start_month)
    assert same.sum() > N_TRIALS // 2
    drop = off.increase_pct[same] - on.increase_pct[same]
    assert drop.max() <= TOL, f"increase fell by {drop.max():.3g} pp"


@PROPERTY_SETTINGS
@given(seed=seeds)
def test_stopgap_replaces_lapse_months(seed: int) -> None:
    """A stop-gap only changes trials that reach expiry without a deal: the settlement of the
    talks is the same with it on or off, and its months are not lapse months."""
    on, _ = run(plan_for(BASELINE), seed, renegotiation=False)
    off, _ = run(plan_for(BASELINE), seed, renegotiation=False, stopgap=False)
    np.testing.assert_array_equal(on.settlement_month, off.settlement_month)
    np.testing.assert_array_equal(on.increase_pct, off.increase_pct)
    # The stop-gap's months are taken off the lapse after expiry.
    np.testing.assert_allclose(
        on.lapse_months, np.maximum(off.lapse_months - on.stopgap_months, 0.0), rtol=0, atol=1e-9
    )
    assert (on.stopgap & off.lapse).any()
