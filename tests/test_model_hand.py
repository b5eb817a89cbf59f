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
    base, horizon, expiry, change = 2026, 72, 60, 36
    s0 = (AS_OF.year - base) * 12 + AS_OF.month - 1

    def cpi(year: int) -> float:
        return history.cpi_pct[year] if year < AS_OF.year else v["korea_cpi_pct"]

    # Section 2: the agreement in force, 2025 .. 2032.
    level = {2025: history.contribution_krw_bn[2025]}
    for y in range(2026, 2033):
        if y <= 2030 and y in history.contribution_krw_bn:
            level[y] = history.contribution_krw_bn[y]
        elif y <= 2030:
            level[y] = level[y - 1] * (1 + min(max(cpi(y - 2), 0.0), 5.0) / 100)
        else:
            level[y] = level[y - 1]

    # Section 3: when talks open.
    intensity = v["trump_demand_intensity"]
    post = min(v["post_2029_demand_intensity"], intensity)
    offset = v["package_offset_share"] if v["package_deal"] >= 0.5 else 0.0
    successor = max(expiry - round(v["successor_talks_lead_months"]), s0)
    hazard = v["reopen_hazard_per_month"] * intensity * (1 - offset)
    # With a hazard of 0 talks never reopen; with 1 they reopen in the first month.
    reopen = s0 if hazard >= 1 else math.inf
    start = min(reopen, successor)
    reopened = reopen < successor

    # Section 4: opening positions against the level in force when talks open.
    prior = level[base + start // 12]

    def opening_ask(i: float) -> float:
        gap = v["us_headline_ask_usd_bn"] * v["krw_per_usd"] / prior * 100 - 100
        w = v["us_working_ask_increase_pct"]
        return (w + i * v["headline_anchor_pull"] * max(gap - w, 0.0)) * (1 - offset)

    a = opening_ask(intensity if start < change else post)
    floor = v["us_reservation_share_of_ask"] * a
    k = v["korea_opening_offer_increase_pct"]
    ceiling = max(v["korea_reservation_increase_pct"], k)

    # Section 5: month by month.
    settle_time = increase = math.nan
    for t in range(start + 1, horizon + 1):
        a_prev, k_prev = a, k
        a = floor + (a_prev - floor) * (1 - v["us_concession_rate_per_month"])
        k = k_prev + (ceiling - k_prev) * v["korea_concession_rate_per_month"]
        past_deadline = t - start >= v["negotiation_length_months"]
        if past_deadline:
            a, k = floor, ceiling
        if t == change and start < change:
            new_ask = opening_ask(post)
            floor = min(floor, v["us_reservation_share_of_ask"] * new_ask)
            a = min(a, new_ask)
        if t - 1 - start >= v["negotiation_length_months"] and k < a:
            step = v["stalemate_concession_pp_per_month"] * (2 if t > expiry else 1)
            floor, ceiling = floor - step, ceiling + step
            a, k = floor, ceiling
        if k >= a:
            phi = (a_prev - k_prev) / ((a_prev - k_prev) - (a - k))
            increase = a_prev + phi * (a - a_prev)
            settle_time = t - 1 + phi
            if t == change:
                settle_time = max(settle_time, change)
            break

    # Sections 6-7: first year, path, lapse.
    settled = not math.isnan(settle_time)
    out = {"settled": float(settled), "reopened": float(reopened), "start": float(start)}
    end = settle_time if settled else horizon
    out["lapse_months"] = max(0.0, min(end, horizon) - expiry)
    out["furlough"] = float(out["lapse_months"] > 3 and v["furlough_prob_given_lapse"] >= 1)
    path = {y: level[y] for y in range(2025, 2033)}
    if settled:
        settle_year = base + math.floor(settle_time / 12)
        if settle_time < expiry:
            first = settle_year + 1 if reopened else 2031
        else:
            first = settle_year
        defense = history.defense_budget_growth_pct
        for y in range(first, 2033):
            if y == first:
                path[y] = path[y - 1] * (1 + increase / 100)
            elif rule == "cpi_capped":
                path[y] = path[y - 1] * (1 + min(max(cpi(y - 2), 0.0), 5.0) / 100)
            elif rule == "defense_budget_growth":
                growth = (
                    defense[y - 1] if y - 1 <= AS_OF.year else v["korea_defense_budget_growth_pct"]
                )
                path[y] = path[y - 1] * (1 + growth / 100)
            else:
                path[y] = path[y - 1] * (1 + v["fixed_escalation_pct"] / 100)
        out.update(
            increase_pct=increase,
            months_to_settlement=settle_time - start,
            first_year=float(first),
            first_year_krw_bn=path[first],
            term_years=v["term_years_under_pressure"]
            if settle_time < change
            else v["term_years_normal"],
        )
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
