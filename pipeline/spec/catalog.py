"""The model's uncertain inputs: names, units, allowed ranges (a leaf module).

Every scenario states a distribution for each of these inputs (the base file supplies them all).
The order below is the column order of the unit hypercube, so the same seed gives every scenario
the same underlying uniforms for the same input (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["continuous", "binary", "integer", "category"]


@dataclass(frozen=True)
class InputInfo:
    """What one input means and which values it may take."""

    name: str
    unit: str
    low: float
    high: float
    description: str
    kind: Kind = "continuous"
    categories: tuple[str, ...] = ()


ESCALATION_RULE_CATEGORIES: Final = ("cpi_capped", "defense_budget_growth", "fixed")

INPUTS: Final[tuple[InputInfo, ...]] = (
    InputInfo(
        "trump_demand_intensity",
        "index 0-1",
        0.0,
        1.0,
        "How hard and how publicly the Trump administration presses on cost-sharing.",
    ),
    InputInfo(
        "post_2029_demand_intensity",
        "index 0-1",
        0.0,
        1.0,
        "Demand intensity of the administration taking office in January 2029 "
        "(capped at the trial's Trump intensity unless mechanism successor_either_way is on).",
    ),
    InputInfo(
        "us_headline_ask_usd_bn",
        "USD bn per year",
        0.0,
        100.0,
        "The public headline figure (USD 5bn in 2019, USD 10bn in 2024-25).",
    ),
    InputInfo(
        "headline_anchor_pull",
        "share 0-1",
        0.0,
        1.0,
        "Share of the gap between headline and working-level ask that enters the opening "
        "ask at full intensity.",
    ),
    InputInfo(
        "us_working_ask_increase_pct",
        "% over prior level",
        0.0,
        1000.0,
        "Working-level US ask at zero intensity (history: +15%, +41%, +50%).",
    ),
    InputInfo(
        "us_reservation_share_of_ask",
        "share 0-1",
        0.0,
        1.0,
        "US reservation point as a share of its opening asked increase.",
    ),
    InputInfo(
        "korea_opening_offer_increase_pct",
        "% over prior level",
        -50.0,
        100.0,
        "Korea's opening offer (history: +3.5%, +4.1%, ~+10%).",
    ),
    InputInfo(
        "korea_reservation_increase_pct",
        "% over prior level",
        -50.0,
        200.0,
        "The most Korea will accept without a forcing event.",
    ),
    InputInfo(
        "us_concession_rate_per_month",
        "share of gap per month",
        0.0,
        1.0,
        "Share of the gap to its reservation point the US concedes each month.",
    ),
    InputInfo(
        "korea_concession_rate_per_month",
        "share of gap per month",
        0.0,
        1.0,
        "Share of the gap to its reservation point Korea concedes each month.",
    ),
    InputInfo(
        "negotiation_length_months",
        "months",
        1.0,
        60.0,
        "Months of talks before the deadline at which both sides table final offers.",
    ),
    InputInfo(
        "stalemate_concession_pp_per_month",
        "percentage points per month",
        0.0,
        10.0,
        "After the deadline, how far each side's reservation point moves toward the other "
        "per month of stalemate (doubled during a lapse).",
    ),
    InputInfo(
        "reopen_hazard_per_month",
        "probability per month",
        0.0,
        1.0,
        "Monthly probability that the US forces early talks, at full demand intensity.",
    ),
    InputInfo(
        "successor_talks_lead_months",
        "months",
        0.0,
        36.0,
        "Months before the agreement in force expires that regular successor talks open.",
    ),
    InputInfo(
        "package_deal",
        "yes/no",
        0.0,
        1.0,
        "A package (trade, weapons purchases, investment) meets part of the demand.",
        kind="binary",
    ),
    InputInfo(
        "package_offset_share",
        "share 0-1",
        0.0,
        1.0,
        "Share of the US demand a package deal meets outside the SMA.",
    ),
    InputInfo(
        "troop_threat_prob",
        "probability",
        0.0,
        1.0,
        "Probability of a troop-posture threat when talks stall at the deadline, "
        "at full intensity.",
    ),
    InputInfo(
        "troop_threat_korea_uplift_pct",
        "percentage points",
        0.0,
        100.0,
        "How far a troop threat raises Korea's reservation point.",
    ),
    InputInfo(
        "furlough_prob_given_lapse",
        "probability",
        0.0,
        1.0,
        "Probability of a furlough of Korean USFK workers once a lapse passes the "
        "furlough notice period.",
    ),
    # The host currency per USD (named for the default host, Korea): the range admits any
    # currency's rate (JPY ~150, KWD ~0.3); the unit is published in the host's currency.
    InputInfo("krw_per_usd", "KRW per USD", 0.01, 100_000.0, "Exchange rate for USD figures."),
    InputInfo(
        "korea_cpi_pct",
        "% per year",
        -5.0,
        20.0,
        "Korean CPI inflation in each year not yet published.",
    ),
    InputInfo(
        "korea_defense_budget_growth_pct",
        "% per year",
        -20.0,
        40.0,
        "Growth of Korea's defense budget in each year not yet published.",
    ),
    InputInfo(
        "term_years_under_pressure",
        "years",
        1.0,
        10.0,
        "Term of an agreement settled while the Trump administration is in office.",
        kind="integer",
    ),
    InputInfo(
        "term_years_normal",
        "years",
        1.0,
        10.0,
        "Term of an agreement settled otherwise.",
        kind="integer",
    ),
    InputInfo(
        "escalation_rule",
        "category",
        0.0,
        2.0,
        "Escalation rule after the first year of a new agreement.",
        kind="category",
        categories=ESCALATION_RULE_CATEGORIES,
    ),
    InputInfo(
        "fixed_escalation_pct",
        "% per year",
        0.0,
        20.0,
        "Annual escalation under a fixed-percent rule.",
    ),
    # --- cuts, stop-gaps and expiry (mechanisms cuts, stopgap, expiry_pressure; docs/model.md)
    InputInfo(
        "troop_reduction",
        "yes/no",
        0.0,
        1.0,
        "A reduction of US forces in Korea is announced before the new agreement is settled "
        "(the 6th SMA's cut coincided with the withdrawal of about 12,500 troops).",
        kind="binary",
    ),
    InputInfo(
        "troop_reduction_cost_cut_pct",
        "percentage points",
        0.0,
        100.0,
        "How far a troop reduction lowers every position of both sides (the cost base shrinks).",
    ),
    InputInfo(
        "korea_fiscal_stress",
        "yes/no",
        0.0,
        1.0,
        "Korea is under fiscal stress when talks open (a financial crisis or recession, as in "
        "1998-99).",
        kind="binary",
    ),
    InputInfo(
        "fiscal_stress_cut_pct",
        "percentage points",
        0.0,
        100.0,
        "How far fiscal stress lowers every position of both sides (the US accepts Korea's "
        "reduced capacity, as in the 4th SMA's GDP-linked formula).",
    ),
    InputInfo(
        "expiry_deadline_offset_months",
        "months",
        -12.0,
        24.0,
        "Months after the expiry of the agreement in force at which both sides table final "
        "offers at the latest (expiry pressure).",
    ),
    InputInfo(
        "stopgap_prob_past_expiry",
        "probability",
        0.0,
        1.0,
        "Probability that talks still open at expiry agree a stop-gap extension.",
    ),
    InputInfo(
        "stopgap_increase_pct",
        "% over prior level",
        -50.0,
        50.0,
        "Level of a stop-gap extension over the expiring agreement's last year (0: a freeze).",
    ),
    InputInfo(
        "stopgap_years",
        "years",
        1.0,
        5.0,
        "Length of a stop-gap extension.",
        kind="integer",
    ),
)

INPUT_NAMES: Final[tuple[str, ...]] = tuple(i.name for i in INPUTS)
INPUT_BY_NAME: Final = {i.name: i for i in INPUTS}
