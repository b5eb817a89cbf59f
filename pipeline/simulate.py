"""The negotiation model: a month-by-month bargaining simulation, vectorized over trials.

Pure numpy: arrays in, :class:`~pipeline.results.Outcomes` out; loops only over months and
calendar years. docs/model.md states every equation implemented here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.results import Outcomes

FloatArray = npt.NDArray[np.float64]

#: Columns of the event-uniform matrix the core consumes (see seeding.EVENT_STREAM).
EVENT_COLUMNS: tuple[str, ...] = ("reopen", "troop_threat", "furlough")

_RULE_CPI, _RULE_DEFENSE, _RULE_FIXED = 0, 1, 2


@dataclass(frozen=True)
class ModelSettings:
    """The non-random settings of one simulation, on the model calendar (months from January of
    ``calendar_base_year``; month m lies in year ``calendar_base_year + m // 12``)."""

    calendar_base_year: int
    horizon_year: int
    start_month: int
    """First month simulated (the as-of date); talks cannot (re)open before it unless evidence
    says they already have [month index]."""
    expiry_month: int
    """First month not covered by the agreement in force [month index]."""
    administration_change_month: int | None
    """Month the next US administration takes office, if within the horizon [month index]."""
    talks_open_month: int | None
    """Evidence: talks opened in this month (forces the start of talks) [month index]."""
    in_force_levels_krw_bn: tuple[tuple[int, float], ...]
    """Known contributions of the agreement in force by year, incl. the year before the path."""
    known_cpi_pct: tuple[tuple[int, float], ...]
    """Published Korean CPI by year [%]."""
    known_defense_budget_growth_pct: tuple[tuple[int, float], ...]
    """Published Korean defense budget growth by year [%]."""
    escalation_cap_pct: float = 5.0
    cpi_lag_years: int = 2
    furlough_after_lapse_months: float = 3.0
    reopening: bool = True
    package_deal: bool = True
    troop_lever: bool = True
    administration_change: bool = True
    deadline: bool = True
    lapse_furlough: bool = True

    @property
    def horizon_month(self) -> int:
        """End of the horizon (exclusive month index)."""
        return (self.horizon_year - self.calendar_base_year + 1) * 12

    @property
    def path_years(self) -> tuple[int, ...]:
        return tuple(range(self.calendar_base_year, self.horizon_year + 1))


def _by_year(
    known: tuple[tuple[int, float], ...], sampled: FloatArray, years: npt.NDArray[np.int64]
) -> FloatArray:
    """(n, len(years)) annual values: published where known, else the trial's sampled rate."""
    table = dict(known)
    out = np.empty((sampled.shape[0], years.size))
    for j, year in enumerate(years):
        out[:, j] = table.get(int(year), np.nan)
        if np.isnan(out[0, j]):
            out[:, j] = sampled
    return out


def in_force_path(settings: ModelSettings, cpi_lagged_pct: FloatArray) -> FloatArray:
    """Contribution of the agreement in force for years ``base-1 .. horizon+1`` (n, Y) [KRW bn].

    Known levels are used as published; later years within the agreement escalate by CPI of
    ``cpi_lag_years`` before (``cpi_lagged_pct``, aligned with the years), capped (the 12th SMA rule); after expiry the level is frozen, as the
    2020 level was during the 11th SMA lapse.
    """
    base = settings.calendar_base_year
    years = np.arange(base - 1, settings.horizon_year + 2)
    expiry_year = base + settings.expiry_month // 12 - 1
    known = dict(settings.in_force_levels_krw_bn)
    if base - 1 not in known:
        raise ValueError(f"need the contribution of {base - 1} (the year before the path)")
    n = cpi_lagged_pct.shape[0]
    levels = np.empty((n, years.size))
    for j, year in enumerate(years):
        if int(year) in known and year <= expiry_year:
            levels[:, j] = known[int(year)]
        elif year <= expiry_year:
            rate = np.clip(cpi_lagged_pct[:, j], 0.0, settings.escalation_cap_pct)
            levels[:, j] = levels[:, j - 1] * (1.0 + rate / 100.0)
        else:
            levels[:, j] = levels[:, j - 1]
    return levels


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
    inputs : sampled inputs by name (see pipeline.catalog), each of shape (n,).
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
    u_reopen, u_troop, u_furlough = (event_uniforms[:, j] for j in range(len(EVENT_COLUMNS)))

    base = s.calendar_base_year
    years = np.arange(base - 1, s.horizon_year + 2)
    # CPI of year y - lag, aligned with ``years``: what CPI-linked escalation in year y uses.
    cpi_lagged = _by_year(s.known_cpi_pct, inputs["korea_cpi_pct"], years - s.cpi_lag_years)
    levels = in_force_path(s, cpi_lagged)

    start, successor = talks_start_month(
        s,
        intensity,
        post_intensity,
        inputs["reopen_hazard_per_month"],
        1.0 - offset,
        inputs["successor_talks_lead_months"],
        u_reopen,
    )
    reopened = start < successor
    horizon = s.horizon_month
    change = s.administration_change_month if s.administration_change else None
    change_at = float(change) if change is not None else np.inf

    # Opening positions, priced against the level in force in the year talks open.
    start_col = np.clip(
        (np.minimum(start, horizon - 1) // 12).astype(np.int64) + 1, 0, years.size - 1
    )
    prior_level = levels[np.arange(n), start_col]
    intensity_at_start = np.where(start < change_at, intensity, post_intensity)

    def ask(level_intensity: FloatArray) -> FloatArray:
        return opening_ask_pct(
            level_intensity,
            inputs["us_working_ask_increase_pct"],
            inputs["us_headline_ask_usd_bn"],
            inputs["headline_anchor_pull"],
            prior_level,
            fx,
            offset,
        )

    share = inputs["us_reservation_share_of_ask"]
    us_ask = ask(intensity_at_start)
    us_floor = share * us_ask
    korea_offer = inputs["korea_opening_offer_increase_pct"].copy()
    korea_ceiling = np.maximum(inputs["korea_reservation_increase_pct"], korea_offer)
    cu = inputs["us_concession_rate_per_month"]
    ck = inputs["korea_concession_rate_per_month"]
    deadline_months = inputs["negotiation_length_months"]
    troop_p = inputs["troop_threat_prob"]
    troop_uplift = inputs["troop_threat_korea_uplift_pct"]
    drift = inputs["stalemate_concession_pp_per_month"]
    post_ask_all = ask(post_intensity) if change is not None else None

    settle_time = np.full(n, np.nan)
    increase = np.full(n, np.nan)
    threat = np.zeros(n, dtype=bool)
    threat_tried = np.zeros(n, dtype=bool)
    open_ = np.zeros(n, dtype=bool)

    first = int(np.min(start)) if np.isfinite(np.min(start)) else horizon
    for t in range(first + 1, horizon + 1):
        open_ |= start == t - 1
        idx = np.flatnonzero(open_)
        if idx.size == 0:
            continue
        elapsed = t - start[idx]
        a_prev, k_prev = us_ask[idx], korea_offer[idx]
        floor_i, ceil_i = us_floor[idx], korea_ceiling[idx]
        a_new = floor_i + (a_prev - floor_i) * (1.0 - cu[idx])
        k_new = k_prev + (ceil_i - k_prev) * ck[idx]
        at_deadline = elapsed >= deadline_months[idx]
        if s.deadline:
            a_new = np.where(at_deadline, floor_i, a_new)
            k_new = np.where(at_deadline, ceil_i, k_new)
        if post_ask_all is not None and t == change:
            # New administration: asks and floors fall to what its intensity implies.
            started_under_trump = start[idx] < change_at
            post_ask = post_ask_all[idx]
            floor_i = np.where(
                started_under_trump, np.minimum(floor_i, share[idx] * post_ask), floor_i
            )
            a_new = np.where(started_under_trump, np.minimum(a_new, post_ask), a_new)
            us_floor[idx] = floor_i
        # Stalemate past the deadline costs both sides (alliance politics, furlough risk): from
        # the month after the deadline each reservation point drifts toward the other, twice as
        # fast once no agreement is in force. Equal steps keep the meeting point at the middle
        # of the two reservation points, whenever they meet.
        stuck = (elapsed - 1 >= deadline_months[idx]) & (k_new < a_new)
        if stuck.any():
            step = np.where(stuck, drift[idx] * np.where(t > s.expiry_month, 2.0, 1.0), 0.0)
            floor_i = floor_i - step
            ceil_i = ceil_i + step
            us_floor[idx] = floor_i
            korea_ceiling[idx] = ceil_i
            if s.deadline:
                a_new = np.where(at_deadline, floor_i, a_new)
                k_new = np.where(at_deadline, ceil_i, k_new)
        if s.troop_lever:
            stalled = at_deadline & ~threat_tried[idx] & (k_new < a_new)
            threat_tried[idx] |= stalled
            now_intensity = intensity[idx] if t <= change_at else post_intensity[idx]
            made = stalled & (u_troop[idx] < troop_p[idx] * now_intensity)
            if made.any():
                threat[idx] |= made
                ceil_i = np.where(made, ceil_i + troop_uplift[idx], ceil_i)
                korea_ceiling[idx] = ceil_i
                k_new = np.where(made, ceil_i, k_new)
        crossed = k_new >= a_new
        if crossed.any():
            c = idx[crossed]
            gap_prev = a_prev[crossed] - k_prev[crossed]
            gap_new = a_new[crossed] - k_new[crossed]
            # Linear interpolation of both paths within the month: where they meet.
            frac = np.clip(
                gap_prev / np.where(gap_prev - gap_new > 0, gap_prev - gap_new, 1.0), 0.0, 1.0
            )
            increase[c] = a_prev[crossed] + frac * (a_new[crossed] - a_prev[crossed])
            settle_time[c] = t - 1 + frac
            if t == change:
                # A deal the new administration makes possible is dated at its arrival.
                settle_time[c] = np.maximum(settle_time[c], change_at)
            open_[c] = False
        keep = ~crossed
        us_ask[idx[keep]] = a_new[keep]
        korea_offer[idx[keep]] = k_new[keep]

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


def _outcomes(
    s: ModelSettings,
    inputs: Mapping[str, FloatArray],
    levels: FloatArray,
    cpi_lagged: FloatArray,
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
    """Turn settlement times and amounts into lapses, first years and contribution paths."""
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

    rule = inputs["escalation_rule"].astype(np.int64)
    defense = _by_year(
        s.known_defense_budget_growth_pct, inputs["korea_defense_budget_growth_pct"], years - 1
    )
    escalation = np.select(
        [(rule == _RULE_CPI)[:, None], (rule == _RULE_DEFENSE)[:, None]],
        [np.clip(cpi_lagged, 0.0, s.escalation_cap_pct), defense],
        default=inputs["fixed_escalation_pct"][:, None],
    )
    first_filled = np.where(settled, first_year, np.inf)
    path = levels.copy()
    for j in range(1, years.size):
        year = years[j]
        is_first = first_filled == year
        after = first_filled < year
        path[:, j] = np.where(
            is_first,
            path[:, j - 1] * (1.0 + increase / 100.0),
            np.where(after, path[:, j - 1] * (1.0 + escalation[:, j] / 100.0), levels[:, j]),
        )
    col = np.clip(
        np.where(settled, first_year, base).astype(np.int64) - (base - 1), 0, years.size - 1
    )
    first_krw = np.where(settled, path[np.arange(n), col], np.nan)
    term = np.where(
        settle_time < change_at, inputs["term_years_under_pressure"], inputs["term_years_normal"]
    )
    keep = slice(1, years.size - 1)  # drop base-1 and horizon+1
    contribution = path[:, keep]
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
        contribution_krw_bn=contribution,
        contribution_usd_m=contribution * 1000.0 / fx[:, None],
    )
