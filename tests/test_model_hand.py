"""Scenarios with every input fixed, checked against a scalar re-implementation of docs/model.md.

The reference below is written from the equations in docs/model.md with plain Python floats (no
numpy, no code shared with pipeline/model/simulate.py), one trial at a time, so a disagreement means the
core and its documentation differ.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from pipeline.model.plan import run_forecast
from pipeline.spec.history import load_history
from pipeline.spec.scenario import load_scenario

AS_OF = date(2026, 11, 29)
REPO = Path(__file__).resolve().parent.parent


def fixed_inputs(**changes: float) -> dict[str, float]:
    values = {
        "trump_demand_intensity": 0.6,
        "post_2029_demand_intensity": 0.2,
        "us_headline_ask_usd_bn": 10.0,
        "headline_anchor_pull": 0.05,
        "us_working_ask_increase_pct": 30.0,
        "us_reservation_share_of_ask": 0.5,
        "korea_opening_offer_increase_pct": 4.0,
        "korea_reservation_increase_pct": 25.0,
        "us_concession_rate_per_month": 0.1,
        "korea_concession_rate_per_month": 0.2,
        "negotiation_length_months": 6.0,
        "stalemate_concession_pp_per_month": 0.0,
        "reopen_hazard_per_month": 0.0,
        "successor_talks_lead_months": 10.0,
        "package_deal": 0.0,
        "package_offset_share": 0.3,
        "troop_threat_prob": 0.0,
        "troop_threat_korea_uplift_pct": 0.0,
        "furlough_prob_given_lapse": 1.0,
        "krw_per_usd": 1400.0,
        "korea_cpi_pct": 2.0,
        "korea_defense_budget_growth_pct": 6.0,
        "term_years_under_pressure": 1.0,
        "term_years_normal": 5.0,
        "fixed_escalation_pct": 3.0,
        "troop_reduction": 0.0,
        "troop_reduction_cost_cut_pct": 9.0,
        "korea_fiscal_stress": 0.0,
        "fiscal_stress_cut_pct": 6.0,
        "expiry_deadline_offset_months": 24.0,
        "stopgap_prob_past_expiry": 0.0,
        "stopgap_increase_pct": 0.0,
        "stopgap_years": 1.0,
    }
    values.update(changes)
    return values


def write_fixed_scenario(tmp_path: Path, values: dict[str, float], rule: str) -> Path:
    lines = [
        f"name: fixed-{rule.replace('_', '-')}",
        f"base: {REPO / 'configs' / 'base.yaml'}",
        "simulation: {n_trials: 64, chunk_size: 32, seed: 1}",
        "rank_correlation: null",
        "inputs:",
    ]
    for name, value in values.items():
        lines.append(f"  {name}: {{dist: fixed, value: {value}}}")
    lines.append(f"  escalation_rule: {{dist: categorical, categories: [{rule}], probs: [1.0]}}")
    path = tmp_path / "fixed.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def reference_trial(v: dict[str, float], rule: str) -> dict[str, float]:
    """One trial by the equations of docs/model.md (sections 1-7), in scalar Python."""
    history = load_history()
    base, horizon, expiry, change, horizon_year = 2026, 72, 60, 36, 2031
    s0 = (AS_OF.year - base) * 12 + AS_OF.month - 1

    def cpi(year: int) -> float:
        return history.cpi_pct[year] if year < AS_OF.year else v["korea_cpi_pct"]

    def escalation(year: int) -> float:
        if rule == "cpi_capped":
            return min(max(cpi(year - 2), 0.0), 5.0)
        if rule == "defense_budget_growth":
            defense = history.defense_budget_growth_pct
            return (
                defense[year - 1]
                if year - 1 <= AS_OF.year
                else v["korea_defense_budget_growth_pct"]
            )
        return v["fixed_escalation_pct"]

    # Section 2: the agreement in force, 2025 .. 2032.
    level = {2025: history.contribution_krw_bn[2025]}
    for y in range(2026, 2033):
        if y <= 2030 and y in history.contribution_krw_bn:
            level[y] = history.contribution_krw_bn[y]
        elif y <= 2030:
            level[y] = level[y - 1] * (1 + min(max(cpi(y - 2), 0.0), 5.0) / 100)
        else:
            level[y] = level[y - 1]

    # Section 3: when talks open. The next administration may be harder than Trump.
    intensity = v["trump_demand_intensity"]
    post = v["post_2029_demand_intensity"]
    offset = v["package_offset_share"] if v["package_deal"] >= 0.5 else 0.0
    successor = max(expiry - round(v["successor_talks_lead_months"]), s0)
    hazard = v["reopen_hazard_per_month"] * intensity * (1 - offset)
    # With a hazard of 0 talks never reopen; with 1 they reopen in the first month.
    reopen = s0 if hazard >= 1 else math.inf
    start = min(reopen, successor)
    reopened = reopen < successor
    # Section 4: the situation (troop reduction, fiscal stress) lowers every position.
    shift = v["troop_reduction_cost_cut_pct"] * (v["troop_reduction"] >= 0.5) + v[
        "fiscal_stress_cut_pct"
    ] * (v["korea_fiscal_stress"] >= 0.5)

    def bargain(start: int, prior: float, expiry: int, shift: float) -> tuple[float, float]:
        """Sections 4-5: (settlement time, increase), NaN if unsettled by the horizon."""

        def opening_ask(i: float) -> float:
            gap = v["us_headline_ask_usd_bn"] * v["krw_per_usd"] / prior * 100 - 100
            w = v["us_working_ask_increase_pct"]
            return (w + i * v["headline_anchor_pull"] * max(gap - w, 0.0)) * (1 - offset)

        rho = v["us_reservation_share_of_ask"]
        a0 = opening_ask(intensity if start < change else post)
        a = a0 - shift
        floor = rho * a0 - shift
        k = v["korea_opening_offer_increase_pct"] - shift
        ceiling = max(v["korea_reservation_increase_pct"], v["korea_opening_offer_increase_pct"])
        ceiling -= shift
        # Final offers at the latest a few months after expiry (expiry pressure).
        deadline = max(
            min(
                v["negotiation_length_months"], expiry + v["expiry_deadline_offset_months"] - start
            ),
            1.0,
        )
        for t in range(start + 1, horizon + 1):
            a_prev, k_prev = a, k
            a = floor + (a_prev - floor) * (1 - v["us_concession_rate_per_month"])
            k = k_prev + (ceiling - k_prev) * v["korea_concession_rate_per_month"]
            if t - start >= deadline:
                a, k = floor, ceiling
            if t == change and start < change:
                new_ask = opening_ask(post)
                if new_ask > a0:  # harder: positions scale by the ratio of opening asks
                    floor = (floor + shift) * new_ask / a0 - shift
                    a = (a + shift) * new_ask / a0 - shift
                else:
                    floor = min(floor, rho * new_ask - shift)
                    a = min(a, new_ask - shift)
            if t - 1 - start >= deadline and k < a:
                step = v["stalemate_concession_pp_per_month"] * (2 if t > expiry else 1)
                floor, ceiling = floor - step, ceiling + step
                a, k = floor, ceiling
            if k >= a:
                phi = (a_prev - k_prev) / ((a_prev - k_prev) - (a - k))
                settle_time = t - 1 + phi
                if t == change:
                    settle_time = max(settle_time, change)
                return settle_time, a_prev + phi * (a - a_prev)
        return math.nan, math.nan

    settle_time, increase = bargain(start, level[base + start // 12], expiry, shift)

    # Section 6: a stop-gap at expiry for talks still open then (the draw is 0 or 1 here).
    settled = not math.isnan(settle_time)
    stopgap = not settle_time < expiry and v["stopgap_prob_past_expiry"] >= 1
    gap_from = expiry + 12 * v["stopgap_years"] * stopgap
    if stopgap:
        for y in range(2031, 2033):
            level[y] = level[2030] * (1 + v["stopgap_increase_pct"] / 100)
    out = {"settled": float(settled), "reopened": float(reopened), "start": float(start)}
    end = settle_time if settled else horizon
    lapse = [max(0.0, min(end, horizon) - gap_from)]
    out["stopgap"] = float(stopgap)
    path = {y: level[y] for y in range(2025, 2033)}

    def apply_deal(first: int, increase: float, last: float) -> None:
        for y in range(first, 2033):
            if y == first:
                path[y] = path[y - 1] * (1 + increase / 100)
            elif y <= last:
                path[y] = path[y - 1] * (1 + escalation(y) / 100)
            else:
                path[y] = path[y - 1]

    if settled:
        settle_year = base + math.floor(settle_time / 12)
        if settle_time < expiry:
            first = settle_year + 1 if reopened else 2031
        elif stopgap and settle_time < gap_from:
            first = 2031 + int(v["stopgap_years"])
        else:
            first = settle_year
        term = v["term_years_under_pressure"] if settle_time < change else v["term_years_normal"]
        out.update(
            increase_pct=increase,
            months_to_settlement=settle_time - start,
            first_year=float(first),
            term_years=term,
        )
        apply_deal(first, increase, math.inf)
        out["first_year_krw_bn"] = path[first]
        # Renegotiation: a deal ending inside the horizon is followed by new talks.
        while first + term <= horizon_year:
            next_year = int(first + term)
            apply_deal(first, increase, next_year - 1)
            expiry2 = (next_year - base) * 12
            start2 = max(expiry2 - round(v["successor_talks_lead_months"]), math.ceil(settle_time))
            settle_time, increase = bargain(start2, path[base + start2 // 12], expiry2, 0.0)
            lapse.append(
                max(
                    0.0, min(horizon if math.isnan(settle_time) else settle_time, horizon) - expiry2
                )
            )
            if "renewal_first_year" not in out:
                out["renewal_increase_pct"] = increase
            if math.isnan(settle_time):
                out.setdefault("renewal_first_year", math.nan)
                break
            first = next_year if settle_time < expiry2 else base + math.floor(settle_time / 12)
            out.setdefault("renewal_first_year", float(first))
            term = (
                v["term_years_under_pressure"] if settle_time < change else v["term_years_normal"]
            )
            apply_deal(first, increase, math.inf)
    out["lapse_months"] = sum(lapse)
    out["furlough"] = float(max(lapse) > 3 and v["furlough_prob_given_lapse"] >= 1)
    for y in range(2026, 2032):
        out[f"krw_{y}"] = path[y]
    return out


CASES = {
    # Successor talks in March 2030 under the next administration, with a package offsetting
    # 30% of the ask; settle at the deadline.
    "successor-deadline": (fixed_inputs(package_deal=1.0), "cpi_capped"),
    # Reopened at once under Trump (hazard 1 at full intensity); stuck until the change of
    # administration lowers the US floor; defense-growth escalation from 2030.
    "reopen-early": (
        fixed_inputs(
            trump_demand_intensity=1.0,
            reopen_hazard_per_month=1.0,
            korea_reservation_increase_pct=20.0,
        ),
        "defense_budget_growth",
    ),
    # A gap at the deadline closed only by stalemate drift, into a lapse (doubled drift).
    "stalemate-lapse": (
        fixed_inputs(korea_reservation_increase_pct=15.0, stalemate_concession_pp_per_month=0.2),
        "fixed",
    ),
    # A gap that never closes: unsettled, lapse through 2031, furlough.
    "no-deal": (fixed_inputs(korea_reservation_increase_pct=10.0), "cpi_capped"),
    # The successor-deadline case under a troop reduction: every position 9 points lower.
    "cut": (fixed_inputs(package_deal=1.0, troop_reduction=1.0), "cpi_capped"),
    # ... and with fiscal stress too: 9 + 15 = 24 points lower, a cut.
    "deeper-cut": (
        fixed_inputs(
            package_deal=1.0,
            troop_reduction=1.0,
            korea_fiscal_stress=1.0,
            fiscal_stress_cut_pct=15.0,
        ),
        "cpi_capped",
    ),
    # The no-deal stalemate with a stop-gap at expiry: 2031 frozen at the 2030 level, no lapse.
    "stopgap-freeze": (
        fixed_inputs(korea_reservation_increase_pct=10.0, stopgap_prob_past_expiry=1.0),
        "cpi_capped",
    ),
    # The stalemate-lapse case with a stop-gap: the deal agreed during it starts in 2032.
    "stopgap-then-deal": (
        fixed_inputs(
            korea_reservation_increase_pct=15.0,
            stalemate_concession_pp_per_month=0.2,
            stopgap_prob_past_expiry=1.0,
            stopgap_increase_pct=1.5,
        ),
        "fixed",
    ),
    # Late successor talks (3 months before expiry) with a 9-month deadline: final offers one
    # month after expiry instead (expiry pressure), so a one-month lapse.
    "expiry-pressure": (
        fixed_inputs(
            successor_talks_lead_months=3.0,
            negotiation_length_months=9.0,
            expiry_deadline_offset_months=1.0,
            us_concession_rate_per_month=0.02,
            korea_concession_rate_per_month=0.02,
        ),
        "cpi_capped",
    ),
    # The reopen-early case with a one-year deal in 2030: renegotiated for 2031.
    "renewal": (
        fixed_inputs(
            trump_demand_intensity=1.0,
            reopen_hazard_per_month=1.0,
            korea_reservation_increase_pct=20.0,
            term_years_normal=1.0,
        ),
        "defense_budget_growth",
    ),
    # Successor talks opened under Trump (July 2028) with a successor harder than him: the US
    # positions scale up at the change of administration, so no deal then.
    "harder-successor": (
        fixed_inputs(
            trump_demand_intensity=0.5,
            post_2029_demand_intensity=0.9,
            successor_talks_lead_months=30.0,
            negotiation_length_months=3.0,
            package_deal=0.0,
            korea_reservation_increase_pct=20.0,
            stalemate_concession_pp_per_month=0.5,
        ),
        "fixed",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_scenario_matches_hand_computation(tmp_path: Path, case: str) -> None:
    values, rule = CASES[case]
    scenario = load_scenario(write_fixed_scenario(tmp_path, values, rule))
    result = run_forecast(scenario, as_of=AS_OF)
    o = result.outcomes
    expected = reference_trial(values, rule)
    # Every trial is the same when every input is fixed.
    for name, arr in o.arrays().items():
        assert np.all((arr == arr[0]) | (np.isnan(arr) & np.isnan(arr[0]))), name
    assert bool(o.settled_by_horizon[0]) == bool(expected["settled"])
    assert bool(o.reopened[0]) == bool(expected["reopened"])
    assert o.talks_start_month[0] == expected["start"]
    assert o.lapse_months[0] == pytest.approx(expected["lapse_months"], abs=1e-9)
    assert bool(o.furlough[0]) == bool(expected["furlough"])
    assert bool(o.stopgap[0]) == bool(expected["stopgap"])
    if "renewal_increase_pct" in expected:
        assert o.renegotiated[0]
        assert o.renewal_increase_pct[0] == pytest.approx(
            expected["renewal_increase_pct"], rel=1e-9
        )
        np.testing.assert_allclose(o.renewal_first_year[0], expected["renewal_first_year"])
    else:
        assert not o.renegotiated[0]
    if expected["settled"]:
        for field in (
            "increase_pct",
            "months_to_settlement",
            "first_year",
            "first_year_krw_bn",
            "term_years",
        ):
            assert getattr(o, field)[0] == pytest.approx(expected[field], rel=1e-9), field
        assert o.first_year_usd_m[0] == pytest.approx(expected["first_year_krw_bn"] * 1000 / 1400)
    else:
        assert np.isnan(o.increase_pct[0]) and np.isnan(o.first_year_krw_bn[0])
    for j, year in enumerate(o.path_years):
        assert o.contribution_krw_bn[0, j] == pytest.approx(expected[f"krw_{year}"], rel=1e-9), year


def test_hand_cases_cover_distinct_paths() -> None:
    """Guard against the cases collapsing into one path after a change of defaults."""
    results = {c: reference_trial(*CASES[c]) for c in CASES}
    assert (
        results["successor-deadline"]["settled"] and not results["successor-deadline"]["reopened"]
    )
    assert results["reopen-early"]["reopened"] and results["reopen-early"]["settled"]
    assert results["stalemate-lapse"]["lapse_months"] > 0 and results["stalemate-lapse"]["settled"]
    assert not results["no-deal"]["settled"] and results["no-deal"]["furlough"]
    assert results["renewal"]["renewal_first_year"] == 2031
    assert "renewal_first_year" not in results["reopen-early"]
    assert results["stopgap-freeze"]["stopgap"] and not results["no-deal"]["stopgap"]
    assert results["expiry-pressure"]["lapse_months"] > 0


def test_cuts_shift_the_settlement_by_the_cut() -> None:
    """Hand computation: every position moves down by the same points, so the settlement does:
    the concession steps are differences of positions, and the crossing fraction a ratio of
    them. 9 points for the troop reduction, 9 + 15 with fiscal stress too."""
    base = reference_trial(*CASES["successor-deadline"])
    cut = reference_trial(*CASES["cut"])
    deeper = reference_trial(*CASES["deeper-cut"])
    assert cut["increase_pct"] == pytest.approx(base["increase_pct"] - 9.0, abs=1e-9)
    assert deeper["increase_pct"] == pytest.approx(base["increase_pct"] - 24.0, abs=1e-9)
    assert deeper["increase_pct"] < 0  # a cut
    assert cut["settled"] and cut["first_year"] == base["first_year"] == 2031


def test_stopgap_freezes_the_old_level() -> None:
    """Hand computation: a stalemate past expiry ending in a stop-gap at 0% holds 2031 at the
    2030 level with no lapse (the stop-gap runs to the horizon) and no furlough."""
    out = reference_trial(*CASES["stopgap-freeze"])
    assert not out["settled"] and out["stopgap"]
    assert out["krw_2031"] == out["krw_2030"]
    assert out["lapse_months"] == 0.0 and not out["furlough"]
    deal = reference_trial(*CASES["stopgap-then-deal"])
    assert deal["settled"] and deal["first_year"] == 2032
    assert deal["krw_2031"] == pytest.approx(deal["krw_2030"] * 1.015, rel=1e-12)


def test_expiry_pressure_brings_final_offers_to_expiry() -> None:
    """Talks open in October 2030 (month 57); the deadline would be month 66, expiry pressure
    brings it to month 61 (expiry 60 + 1): settled in month 61's interval, a lapse under a
    month."""
    out = reference_trial(*CASES["expiry-pressure"])
    assert out["start"] == 57 and out["settled"]
    assert 60.0 <= 57 + out["months_to_settlement"] <= 61.0
    assert 0.0 <= out["lapse_months"] <= 1.0


def test_harder_successor_raises_the_us_positions() -> None:
    """The same talks with a successor softer than Trump settle at the change; harder, they
    do not settle then and end higher."""
    harder_values, rule = CASES["harder-successor"]
    harder = reference_trial(harder_values, rule)
    softer = reference_trial({**harder_values, "post_2029_demand_intensity": 0.1}, rule)
    assert softer["settled"] and harder["settled"]
    assert harder["increase_pct"] > softer["increase_pct"]
    assert harder["months_to_settlement"] > softer["months_to_settlement"]
