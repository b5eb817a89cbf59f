"""The negotiation model: a month-by-month bargaining simulation, vectorized over trials.

Pure numpy: arrays in, :class:`~pipeline.model.outcomes.Outcomes` out; loops only over months and
calendar years. docs/model.md states every equation implemented here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from pipeline.common import FloatArray
from pipeline.model.bargaining import bargain
from pipeline.model.bargaining_state import BargainingInputs
from pipeline.model.outcomes import Outcomes
from pipeline.model.settings import ModelSettings

#: Columns of the event-uniform matrix the core consumes (see seeding.EVENT_STREAM).
EVENT_COLUMNS: tuple[str, ...] = ("reopen", "troop_threat", "furlough")

_RULE_CPI, _RULE_DEFENSE, _RULE_FIXED = 0, 1, 2


Row = float | FloatArray
"""One calendar year's value for every trial: a published number, or a per-trial array."""


def _year_rows(
    known: tuple[tuple[int, float], ...], sampled: FloatArray, years: npt.NDArray[np.int64]
) -> list[Row]:
    """Annual values by year: published where known, else the trial's sampled rate."""
    table = dict(known)
    rows: list[Row] = []
    for year in years:
        value = table.get(int(year))
        if value is None or np.isnan(value):
            rows.append(sampled)
        else:
            rows.append(float(value))
    return rows


def _by_year(
    known: tuple[tuple[int, float], ...], sampled: FloatArray, years: npt.NDArray[np.int64]
) -> FloatArray:
    """(n, len(years)) annual values: published where known, else the trial's sampled rate."""
    out = np.empty((sampled.shape[0], years.size))
    for j, row in enumerate(_year_rows(known, sampled, years)):
        out[:, j] = row
    return out


def _in_force_rows(settings: ModelSettings, cpi_lagged: list[Row]) -> list[Row]:
    """:func:`in_force_path` by year (a number while the level is the same for every trial)."""
    base = settings.calendar_base_year
    years = np.arange(base - 1, settings.horizon_year + 2)
    expiry_year = base + settings.expiry_month // 12 - 1
    known = dict(settings.in_force_levels_krw_bn)
    if base - 1 not in known:
        raise ValueError(f"need the contribution of {base - 1} (the year before the path)")
    rows: list[Row] = []
    for j, year in enumerate(years):
        if int(year) in known and year <= expiry_year:
            rows.append(float(known[int(year)]))
        elif year <= expiry_year:
            rate = np.clip(cpi_lagged[j], 0.0, settings.escalation_cap_pct)
            level = rows[j - 1] * (1.0 + rate / 100.0)
            rows.append(float(level) if np.ndim(level) == 0 else level)
        else:
            rows.append(rows[j - 1])
    return rows


def in_force_path(settings: ModelSettings, cpi_lagged_pct: FloatArray) -> FloatArray:
    """Contribution of the agreement in force for years ``base-1 .. horizon+1`` (n, Y) [KRW bn].

    Known levels are used as published; later years within the agreement escalate by CPI of
    ``cpi_lag_years`` before (``cpi_lagged_pct``, aligned with the years), capped (the 12th SMA
    rule); after expiry the level is frozen, as the 2020 level was during the 11th SMA lapse.
    """
    rows = _in_force_rows(settings, list(cpi_lagged_pct.T))
    out = np.empty((cpi_lagged_pct.shape[0], len(rows)))
    for j, row in enumerate(rows):
        out[:, j] = row
    return out


def opening_ask_pct(
    intensity: FloatArray,
    working_ask_pct: FloatArray,
    headline_ask_usd_bn: FloatArray,
    anchor_pull: FloatArray,
    prior_level_krw_bn: FloatArray,
    krw_per_usd: FloatArray,
    package_offset: FloatArray,
) -> FloatArray:
    """US opening ask as a % increase: the working-level ask pulled toward the headline figure
    in proportion to intensity, less the share a package deal meets outside the SMA."""
    headline_pct = (headline_ask_usd_bn * krw_per_usd / prior_level_krw_bn - 1.0) * 100.0
    gap = np.maximum(headline_pct - working_ask_pct, 0.0)
    return (working_ask_pct + intensity * anchor_pull * gap) * (1.0 - package_offset)


def talks_start_month(
    settings: ModelSettings,
    intensity: FloatArray,
    post_intensity: FloatArray,
    hazard_at_full_intensity: FloatArray,
    hazard_multiplier: FloatArray,
    successor_lead_months: FloatArray,
    u_reopen: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """(start month of talks, start month of regular successor talks) per trial.

    Early reopening is a monthly hazard ``h * intensity * (1 - package offset)`` from the start
    month; its first occurrence is found in closed form from the exponential ``-log(u)`` against
    the piecewise-constant cumulative hazard (Trump's intensity, then the next administration's).
    """
    s0 = settings.start_month
    successor = np.maximum(settings.expiry_month - np.round(successor_lead_months), s0)
    if settings.talks_open_month is not None:
        return np.full(intensity.shape, float(settings.talks_open_month)), successor
    if not settings.reopening:
        return successor.astype(np.float64), successor
    change = settings.administration_change_month
    if change is None or not settings.administration_change:
        change_at = np.inf
    else:
        change_at = float(change)
    with np.errstate(divide="ignore"):
        lam1 = -np.log1p(
            -np.clip(hazard_at_full_intensity * intensity * hazard_multiplier, 0, 1 - 1e-12)
        )
        lam2 = -np.log1p(
            -np.clip(hazard_at_full_intensity * post_intensity * hazard_multiplier, 0, 1 - 1e-12)
        )
        need = -np.log(u_reopen)
        months1 = max(change_at - s0, 0.0)
        k1 = np.ceil(need / lam1)
        in_first = k1 <= months1
        rest = need - months1 * lam1 if np.isfinite(months1) else np.full_like(need, np.inf)
        k2 = np.ceil(rest / lam2)
    reopen = np.where(in_first, s0 + k1 - 1.0, max(float(s0), change_at) + k2 - 1.0)
    reopen = np.where(np.isnan(reopen), np.inf, reopen)
    return np.minimum(reopen, successor), successor


def simulate(
    inputs: Mapping[str, FloatArray], settings: ModelSettings, *, event_uniforms: FloatArray
) -> Outcomes:
    """Simulate one block of trials.

    Parameters
    ----------
    inputs : sampled inputs by name (see pipeline.spec.catalog), each of shape (n,).
    settings : the non-random settings.
    event_uniforms : (n, len(EVENT_COLUMNS)) uniforms for the model's own chance events.
    """
    s = settings
    intensity = inputs["trump_demand_intensity"]
    n = intensity.shape[0]
    # The next administration is taken to be at most as demanding as Trump in the same trial.
    post_intensity = np.minimum(inputs["post_2029_demand_intensity"], intensity)
    fx = inputs["krw_per_usd"]
    package = (inputs["package_deal"] >= 0.5) & s.package_deal
    offset = np.where(package, inputs["package_offset_share"], 0.0)
    not_offset = 1.0 - offset
    u_reopen, u_troop, u_furlough = (
        np.ascontiguousarray(event_uniforms[:, j]) for j in range(len(EVENT_COLUMNS))
    )

    base = s.calendar_base_year
    years = np.arange(base - 1, s.horizon_year + 2)
    # CPI of year y - lag, by year: what CPI-linked escalation in year y uses.
    cpi_lagged = _year_rows(s.known_cpi_pct, inputs["korea_cpi_pct"], years - s.cpi_lag_years)
    # The level in force by year, one row per year (years x trials: contiguous per year).
    levels = np.empty((years.size, n))
    for j, row in enumerate(_in_force_rows(s, cpi_lagged)):
        levels[j] = row

    start, successor = talks_start_month(
        s,
        intensity,
        post_intensity,
        inputs["reopen_hazard_per_month"],
        not_offset,
        inputs["successor_talks_lead_months"],
        u_reopen,
    )
    reopened = start < successor
    change = s.administration_change_month if s.administration_change else None
    change_at = float(change) if change is not None else np.inf
    trials = _bargaining_inputs(
        s, inputs, start, levels, intensity, post_intensity, not_offset, u_troop
    )
    settle_time, increase, threat = bargain(s, trials)

    return _outcomes(
        s,
        inputs,
        levels,
        cpi_lagged,
        years,
        start,
        reopened,
        settle_time,
        increase,
        threat,
        package,
        fx,
        u_furlough,
        change_at,
    )


def _bargaining_inputs(
    s: ModelSettings,
    inputs: Mapping[str, FloatArray],
    start: FloatArray,
    levels: FloatArray,
    intensity: FloatArray,
    post_intensity: FloatArray,
    not_offset: FloatArray,
    u_troop: FloatArray,
) -> BargainingInputs:
    """What the bargaining of each trial starts from: opening positions, priced against the
    level in force (``levels``, years x trials) in the year talks open, and the trial's rates."""
    n = start.shape[0]
    horizon = s.horizon_month
    change = s.administration_change_month if s.administration_change else None
    change_at = float(change) if change is not None else np.inf
    start_col = np.clip(
        (np.minimum(start, horizon - 1) // 12).astype(np.int64) + 1, 0, levels.shape[0] - 1
    )
    prior_level = levels.ravel()[start_col * n + np.arange(n)]
    intensity_at_start = np.where(start < change_at, intensity, post_intensity)

    # opening_ask_pct for the intensity at the start and the next administration's, sharing
    # the headline gap (the same operations, computed once).
    working = inputs["us_working_ask_increase_pct"]
    pull = inputs["headline_anchor_pull"]
    headline_pct = (
        inputs["us_headline_ask_usd_bn"] * inputs["krw_per_usd"] / prior_level - 1.0
    ) * 100.0
    gap = np.maximum(headline_pct - working, 0.0)

    def ask(level_intensity: FloatArray) -> FloatArray:
        out: FloatArray = (working + level_intensity * pull * gap) * not_offset
        return out

    share = inputs["us_reservation_share_of_ask"]
    us_ask = ask(intensity_at_start)
    korea_offer = inputs["korea_opening_offer_increase_pct"]
    return BargainingInputs(
        start=start,
        us_ask=us_ask,
        us_floor=share * us_ask,
        korea_offer=korea_offer,
        korea_ceiling=np.maximum(inputs["korea_reservation_increase_pct"], korea_offer),
        us_concession_rate=inputs["us_concession_rate_per_month"],
        korea_concession_rate=inputs["korea_concession_rate_per_month"],
        negotiation_length_months=inputs["negotiation_length_months"],
        stalemate_step=inputs["stalemate_concession_pp_per_month"],
        us_reservation_share=share,
        post_change_ask=ask(post_intensity) if change is not None else None,
        intensity=intensity,
        post_intensity=post_intensity,
        troop_threat_prob=inputs["troop_threat_prob"],
        troop_threat_uplift=inputs["troop_threat_korea_uplift_pct"],
        u_troop=u_troop,
    )


def _outcomes(
    s: ModelSettings,
    inputs: Mapping[str, FloatArray],
    levels: FloatArray,
    cpi_lagged: list[Row],
    years: npt.NDArray[np.int64],
    start: FloatArray,
    reopened: npt.NDArray[np.bool_],
    settle_time: FloatArray,
    increase: FloatArray,
    threat: npt.NDArray[np.bool_],
    package: npt.NDArray[np.bool_],
    fx: FloatArray,
    u_furlough: FloatArray,
    change_at: float,
) -> Outcomes:
    """Turn settlement times and amounts into lapses, first years and contribution paths.

    ``levels`` is the level in force by year (years x trials), ``cpi_lagged`` the lagged CPI
    by year.
    """
    n = start.shape[0]
    base, horizon = s.calendar_base_year, s.horizon_month
    settled = ~np.isnan(settle_time)
    opened = start < horizon
    end_of_gap = np.where(settled, settle_time, float(horizon))
    lapse_months = np.clip(np.minimum(end_of_gap, horizon) - s.expiry_month, 0.0, None)
    lapse_months = np.where(opened | settled, lapse_months, max(horizon - s.expiry_month, 0.0))
    furlough = (
        s.lapse_furlough
        & (lapse_months > s.furlough_after_lapse_months)
        & (u_furlough < inputs["furlough_prob_given_lapse"])
    )
    settle_year = base + np.floor(np.where(settled, settle_time, 0.0) / 12.0)
    expiry_year = base + s.expiry_month // 12 - 1
    before_expiry = settle_time < s.expiry_month
    first_year = np.where(
        before_expiry, np.where(reopened, settle_year + 1, expiry_year + 1), settle_year
    )
    first_year = np.where(settled, first_year, np.nan)

    # Escalation after the first year, by year: the rule's rate as a growth factor
    # 1 + rate / 100 (selecting the factor of the trial's rule is selecting its rate first).
    rule = inputs["escalation_rule"].astype(np.int64)
    is_cpi, is_defense = rule == _RULE_CPI, rule == _RULE_DEFENSE
    defense = _year_rows(
        s.known_defense_budget_growth_pct, inputs["korea_defense_budget_growth_pct"], years - 1
    )
    fixed_factor = 1.0 + inputs["fixed_escalation_pct"] / 100.0
    factors: dict[tuple[int, int], FloatArray] = {}
    first_filled = np.where(settled, first_year, np.inf)
    increase_factor = 1.0 + increase / 100.0
    path = np.empty_like(levels)
    path[0] = levels[0]
    for j in range(1, years.size):
        year = years[j]
        key = (id(cpi_lagged[j]), id(defense[j]))
        if key not in factors:
            cpi_factor = 1.0 + np.clip(cpi_lagged[j], 0.0, s.escalation_cap_pct) / 100.0
            defense_factor = 1.0 + defense[j] / 100.0
            factors[key] = np.where(
                is_cpi, cpi_factor, np.where(is_defense, defense_factor, fixed_factor)
            )
        # Year one of the new agreement grows by the settled increase, later years by the
        # rule; before it, the level in force.
        factor = np.where(first_filled == year, increase_factor, factors[key])
        grown = np.multiply(path[j - 1], factor, out=factor)
        path[j] = np.where(first_filled <= year, grown, levels[j])
    col = np.clip(
        np.where(settled, first_year, base).astype(np.int64) - (base - 1), 0, years.size - 1
    )
    first_krw = np.where(settled, path.ravel()[col * n + np.arange(n)], np.nan)
    term = np.where(
        settle_time < change_at, inputs["term_years_under_pressure"], inputs["term_years_normal"]
    )
    # drop base-1 and horizon+1; trials x years (a transposed view: contiguous per year)
    contribution = path[1 : years.size - 1]
    contribution_usd = contribution * 1000.0 / fx
    return Outcomes(
        calendar_base_year=base,
        path_years=s.path_years,
        reopened=reopened,
        talks_start_month=np.where(opened, start, np.nan),
        months_to_settlement=np.where(
            settled, settle_time - start, np.where(opened, horizon - start, np.nan)
        ),
        settled_by_horizon=settled,
        settlement_month=settle_time,
        lapse=lapse_months > 0,
        lapse_months=lapse_months,
        furlough=furlough,
        troop_threat=threat,
        package_deal=package,
        first_year=first_year,
        first_year_krw_bn=first_krw,
        first_year_usd_m=first_krw * 1000.0 / fx,
        increase_pct=increase,
        term_years=np.where(settled, term, np.nan),
        escalation_rule=np.where(settled, rule, -1),
        contribution_krw_bn=contribution.T,
        contribution_usd_m=contribution_usd.T,
        currency=s.currency,
    )
