"""The negotiation model: a month-by-month bargaining simulation, vectorized over trials.

Pure numpy: arrays in, :class:`~pipeline.model.outcomes.Outcomes` out; loops only over months and
calendar years. docs/model.md states every equation implemented here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

import numpy as np
import numpy.typing as npt

from pipeline.common import FloatArray
from pipeline.model.bargaining import BargainingInputs, bargain
from pipeline.model.outcomes import Outcomes
from pipeline.model.settings import ModelSettings

#: Columns of the event-uniform matrix the core consumes (see seeding.EVENT_STREAM).
EVENT_COLUMNS: tuple[str, ...] = ("reopen", "troop_threat", "furlough", "stopgap")

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


def situation_shift_pct(settings: ModelSettings, inputs: Mapping[str, FloatArray]) -> FloatArray:
    """How far a troop reduction and fiscal stress lower every position of both sides [pp]
    (mechanism ``cuts``; 0 without either event)."""
    n = inputs["trump_demand_intensity"].shape[0]
    if not settings.cuts:
        return np.zeros(n)
    troop = np.where(inputs["troop_reduction"] >= 0.5, inputs["troop_reduction_cost_cut_pct"], 0.0)
    stress = np.where(inputs["korea_fiscal_stress"] >= 0.5, inputs["fiscal_stress_cut_pct"], 0.0)
    out: FloatArray = troop + stress
    return out


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
    if s.successor_either_way:
        post_intensity = inputs["post_2029_demand_intensity"]
    else:
        # The next administration taken to be at most as demanding as Trump in the same trial.
        post_intensity = np.minimum(inputs["post_2029_demand_intensity"], intensity)
    fx = inputs["krw_per_usd"]
    package = (inputs["package_deal"] >= 0.5) & s.package_deal
    offset = np.where(package, inputs["package_offset_share"], 0.0)
    not_offset = 1.0 - offset
    u_reopen, u_troop, u_furlough, u_stopgap = (
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
    horizon = s.horizon_month
    start_col = np.clip(_year_index(np.minimum(start, horizon - 1)) + 1, 0, levels.shape[0] - 1)
    prior_level = levels.ravel()[start_col * n + np.arange(n)]
    trials = _bargaining_inputs(
        s,
        inputs,
        start,
        prior_level,
        intensity,
        post_intensity,
        not_offset,
        u_troop,
        situation_shift_pct(s, inputs),
        s.expiry_month,
    )
    settle_time, increase, threat = bargain(s, trials)
    first = _FirstDeal(start, reopened, settle_time, increase, threat)
    return _outcomes(
        s,
        inputs,
        levels,
        cpi_lagged,
        years,
        first,
        package,
        fx,
        (u_troop, u_furlough, u_stopgap),
        (intensity, post_intensity, not_offset),
    )


def _bargaining_inputs(
    s: ModelSettings,
    inputs: Mapping[str, FloatArray],
    start: FloatArray,
    prior_level: FloatArray,
    intensity: FloatArray,
    post_intensity: FloatArray,
    not_offset: FloatArray,
    u_troop: FloatArray,
    shift: FloatArray,
    expiry_month: float | FloatArray,
) -> BargainingInputs:
    """What the bargaining of each trial starts from: opening positions, priced against the
    level in force when talks open (``prior_level``), less the situation ``shift``, and the
    trial's rates; final offers come at the latest ``expiry_deadline_offset_months`` after
    ``expiry_month`` (mechanism ``expiry_pressure``)."""
    change = s.administration_change_month if s.administration_change else None
    change_at = float(change) if change is not None else np.inf
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
    post_ask = ask(post_intensity) if change is not None else None
    ratio = None
    if post_ask is not None and s.successor_either_way:
        # A harder successor scales the US positions by the ratio of the opening asks.
        ratio = np.where(us_ask > 0.0, post_ask / np.where(us_ask > 0.0, us_ask, 1.0), 1.0)
    length = inputs["negotiation_length_months"]
    if s.expiry_pressure:
        latest = expiry_month + inputs["expiry_deadline_offset_months"] - start
        length = np.maximum(np.minimum(length, latest), 1.0)
    return BargainingInputs(
        start=start,
        expiry=np.broadcast_to(np.asarray(expiry_month, dtype=np.float64), start.shape),
        us_ask=us_ask - shift,
        us_floor=share * us_ask - shift,
        korea_offer=korea_offer - shift,
        korea_ceiling=np.maximum(inputs["korea_reservation_increase_pct"], korea_offer) - shift,
        us_concession_rate=inputs["us_concession_rate_per_month"],
        korea_concession_rate=inputs["korea_concession_rate_per_month"],
        negotiation_length_months=length,
        stalemate_step=inputs["stalemate_concession_pp_per_month"],
        post_change_ask=post_ask - shift if post_ask is not None else None,
        post_change_floor=share * post_ask - shift if post_ask is not None else None,
        post_change_ratio=ratio,
        shift=shift,
        intensity=intensity,
        post_intensity=post_intensity,
        troop_threat_prob=inputs["troop_threat_prob"],
        troop_threat_uplift=inputs["troop_threat_korea_uplift_pct"],
        u_troop=u_troop,
    )


@dataclasses.dataclass(frozen=True)
class _FirstDeal:
    """The bargaining over the agreement replacing the one in force, per trial."""

    start: FloatArray
    reopened: npt.NDArray[np.bool_]
    settle_time: FloatArray
    increase: FloatArray
    threat: npt.NDArray[np.bool_]


def _escalation_factors(
    s: ModelSettings,
    inputs: Mapping[str, FloatArray],
    cpi_lagged: list[Row],
    years: npt.NDArray[np.int64],
    from_year: float,
) -> list[FloatArray]:
    """Growth factor 1 + rate / 100 of each trial's escalation rule, by year (selecting the
    factor of the trial's rule is selecting its rate first). Years before ``from_year`` (the
    earliest first year of a deal) are never read: they hold the fixed rule's factor."""
    rule = inputs["escalation_rule"].astype(np.int64)
    is_cpi, is_defense = rule == _RULE_CPI, rule == _RULE_DEFENSE
    defense = _year_rows(
        s.known_defense_budget_growth_pct, inputs["korea_defense_budget_growth_pct"], years - 1
    )
    fixed_factor = 1.0 + inputs["fixed_escalation_pct"] / 100.0
    cache: dict[tuple[int, int], FloatArray] = {}
    out: list[FloatArray] = []
    for j in range(years.size):
        if j == 0 or years[j] < from_year:
            out.append(fixed_factor)
            continue
        key = (id(cpi_lagged[j]), id(defense[j]))
        if key not in cache:
            cpi_factor = 1.0 + np.clip(cpi_lagged[j], 0.0, s.escalation_cap_pct) / 100.0
            defense_factor = 1.0 + defense[j] / 100.0
            cache[key] = np.where(
                is_cpi, cpi_factor, np.where(is_defense, defense_factor, fixed_factor)
            )
        out.append(cache[key])
    return out


def _start_deal(
    path: FloatArray,
    years: npt.NDArray[np.int64],
    first: FloatArray,
    increase_factor: FloatArray,
    factors: list[FloatArray],
    ids: npt.NDArray[np.intp] | None = None,
) -> None:
    """A deal starts in year ``first`` (by trial; inf: none): its first year grows the year
    before's contribution by its increase, its later years by the escalation rule
    (``factors``, by year and trial; with ``ids``, ``path`` holds those trials' columns).
    Updates the contribution path (years x trials) in place, from the deal's first year: a
    later deal replaces an earlier one."""
    since = first.min(initial=np.inf)
    for j in range(1, years.size):
        year = years[j]
        if year < since:
            continue
        factor = factors[j] if ids is None else factors[j][ids]
        grown = np.multiply(path[j - 1], np.where(first == year, increase_factor, factor))
        path[j] = np.where(first <= year, grown, path[j])


def _end_deal(path: FloatArray, years: npt.NDArray[np.int64], end_year: FloatArray) -> None:
    """From year ``end_year`` on (by trial) the deal in force has ended with no successor
    yet: the contribution stays where it was (in place)."""
    since = end_year.min(initial=np.inf)
    for j in range(1, years.size):
        if years[j] >= since:
            path[j] = np.where(years[j] >= end_year, path[j - 1], path[j])


def _year_index(month: FloatArray) -> npt.NDArray[np.int64]:
    """``month // 12`` for whole months, as integers: float floor division is about 20 times
    slower than a division and a floor, which are exact for whole months."""
    out: npt.NDArray[np.int64] = np.floor(month / 12.0).astype(np.int64)
    return out


def _year_of(month: FloatArray, base: int) -> FloatArray:
    out: FloatArray = base + np.floor(month / 12.0)
    return out


def _outcomes(
    s: ModelSettings,
    inputs: Mapping[str, FloatArray],
    levels: FloatArray,
    cpi_lagged: list[Row],
    years: npt.NDArray[np.int64],
    deal: _FirstDeal,
    package: npt.NDArray[np.bool_],
    fx: FloatArray,
    uniforms: tuple[FloatArray, FloatArray, FloatArray],
    pressure: tuple[FloatArray, FloatArray, FloatArray],
) -> Outcomes:
    """Turn settlement times and amounts into stop-gaps, renewals, lapses, first years and
    contribution paths (docs/model.md sections 6-7).

    ``levels`` is the level in force by year (years x trials; consumed: it becomes the
    contribution path), ``cpi_lagged`` the lagged CPI by year.
    """
    u_troop, u_furlough, u_stopgap = uniforms
    start, reopened, settle_time = deal.start, deal.reopened, deal.settle_time
    n = start.shape[0]
    base, horizon, expiry = s.calendar_base_year, s.horizon_month, s.expiry_month
    change = s.administration_change_month if s.administration_change else None
    change_at = float(change) if change is not None else np.inf
    settled = ~np.isnan(settle_time)
    opened = start < horizon
    expiry_year = base + expiry // 12 - 1
    before_expiry = settle_time < expiry

    # Stop-gap at expiry (mechanism stopgap): the expiring level (or near it) for whole years.
    stopgap = (
        s.stopgap
        & (expiry < horizon)
        & (start <= expiry)
        & ~before_expiry
        & (u_stopgap < inputs["stopgap_prob_past_expiry"])
    )
    stopgap_years = np.where(stopgap, inputs["stopgap_years"], 0.0)
    gap_from = expiry + 12.0 * stopgap_years
    # Clamped: an agreement expiring after the path leaves no stop-gap, but the level is indexed.
    j_expiry = min(expiry_year - (base - 1), levels.shape[0] - 1)
    stopgap_level = levels[j_expiry] * (1.0 + inputs["stopgap_increase_pct"] / 100.0)
    if stopgap.any():
        later = slice(j_expiry + 1, years.size)
        levels[later] = np.where(stopgap, stopgap_level, levels[later])

    end_of_gap = np.where(settled, settle_time, float(horizon))
    lapse_months = np.clip(np.minimum(end_of_gap, horizon) - gap_from, 0.0, None)
    lapse_months = np.where(opened | settled, lapse_months, max(horizon - expiry, 0.0))
    longest_lapse = lapse_months
    settle_year = _year_of(np.where(settled, settle_time, 0.0), base)
    first_year = np.where(
        before_expiry,
        np.where(reopened, settle_year + 1, expiry_year + 1),
        # A deal agreed during a stop-gap replaces it when it ends.
        np.where(stopgap & (settle_time < gap_from), expiry_year + 1 + stopgap_years, settle_year),
    )
    first_year = np.where(settled, first_year, np.nan)
    term = np.where(
        settle_time < change_at, inputs["term_years_under_pressure"], inputs["term_years_normal"]
    )
    term = np.where(settled, term, np.nan)

    first_deal = np.where(settled, first_year, np.inf)
    factors = _escalation_factors(s, inputs, cpi_lagged, years, first_deal.min(initial=np.inf))
    # Contribution by year (years x trials): the level in force until the first deal; each
    # trial's path is updated as its deals end and its renewals start.
    path = levels  # consumed: no copy of years x trials
    _start_deal(path, years, first_deal, 1.0 + deal.increase / 100.0, factors)
    threat = deal.threat.copy()
    renegotiated = np.zeros(n, dtype=bool)
    renewal_first = np.full(n, np.nan)
    renewal_increase = np.full(n, np.nan)
    # The deal in force of the trials ``current`` (settled: first year, term, settlement).
    current = np.arange(n)
    current_first, current_term, current_settle = first_year, term, settle_time
    while s.renegotiation:
        # The current deal ends inside the horizon: its successor is negotiated (mechanism
        # renegotiation), like the first deal, against the level in force when talks open.
        next_year = current_first + current_term
        due = next_year <= s.horizon_year  # False where NaN
        if not due.any():
            break
        ids, next_year = current[due], next_year[due]
        sub = path[:, ids]
        _end_deal(sub, years, next_year)
        settle2, increase2, threat2 = _renewal(
            s, inputs, ids, next_year, current_settle[due], sub, pressure, u_troop
        )
        threat[ids] |= threat2
        expiry2 = (next_year - base) * 12.0
        settled2 = ~np.isnan(settle2)
        first2 = np.where(
            settle2 < expiry2, next_year, _year_of(np.where(settled2, settle2, 0.0), base)
        )
        lapse2 = np.clip(
            np.minimum(np.where(settled2, settle2, horizon), horizon) - expiry2, 0, None
        )
        lapse_months = lapse_months.copy()
        lapse_months[ids] += lapse2
        longest_lapse = longest_lapse.copy()
        longest_lapse[ids] = np.maximum(longest_lapse[ids], lapse2)
        fresh = ~renegotiated[ids]
        renewal_first[ids[fresh]] = np.where(settled2, first2, np.nan)[fresh]
        renewal_increase[ids[fresh]] = increase2[fresh]
        renegotiated[ids] = True
        _start_deal(
            sub, years, np.where(settled2, first2, np.inf), 1.0 + increase2 / 100.0, factors, ids
        )
        path[:, ids] = sub
        current = ids
        current_first = np.where(settled2, first2, np.nan)
        current_term = np.where(
            settle2 < change_at,
            inputs["term_years_under_pressure"][ids],
            inputs["term_years_normal"][ids],
        )
        current_settle = settle2

    furlough = (
        s.lapse_furlough
        & (longest_lapse > s.furlough_after_lapse_months)
        & (u_furlough < inputs["furlough_prob_given_lapse"])
    )
    rule = inputs["escalation_rule"].astype(np.int64)
    col = np.clip(
        np.where(settled, first_year, base).astype(np.int64) - (base - 1), 0, years.size - 1
    )
    first_krw = np.where(settled, path.ravel()[col * n + np.arange(n)], np.nan)
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
        increase_pct=deal.increase,
        term_years=term,
        escalation_rule=np.where(settled, rule, -1),
        stopgap=stopgap,
        stopgap_months=12.0 * stopgap_years,
        stopgap_first_year=np.where(stopgap, expiry_year + 1.0, np.nan),
        stopgap_level_krw_bn=np.where(stopgap, stopgap_level, np.nan),
        renegotiated=renegotiated,
        renewal_first_year=renewal_first,
        renewal_increase_pct=renewal_increase,
        contribution_krw_bn=contribution.T,
        contribution_usd_m=contribution_usd.T,
        currency=s.currency,
        fiscal_year_start_month=s.fiscal_year_start_month,
    )


class _Subset(Mapping[str, FloatArray]):
    """The inputs of some trials, gathered when read (a renewal reads a third of them)."""

    def __init__(self, inputs: Mapping[str, FloatArray], ids: npt.NDArray[np.intp]) -> None:
        self._inputs, self._ids = inputs, ids

    def __getitem__(self, name: str) -> FloatArray:
        out: FloatArray = self._inputs[name][self._ids]
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self._inputs)

    def __len__(self) -> int:
        return len(self._inputs)


def _renewal(
    s: ModelSettings,
    inputs: Mapping[str, FloatArray],
    ids: npt.NDArray[np.intp],
    next_year: FloatArray,
    settle_before: FloatArray,
    path: FloatArray,
    pressure: tuple[FloatArray, FloatArray, FloatArray],
    u_troop: FloatArray,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Settlement time, increase and troop threat of the renewal talks of trials ``ids``,
    whose agreement ends before January of ``next_year``: talks open
    ``successor_talks_lead_months`` before (not before the month after the last settlement),
    priced against the level then; each trial's talks replace its own agreement (expiry)."""
    intensity, post_intensity, not_offset = pressure
    base, n = s.calendar_base_year, path.shape[1]
    expiry2 = (next_year - base) * 12.0
    sub = _Subset(inputs, ids)
    lead = np.round(sub["successor_talks_lead_months"])
    start = np.maximum(expiry2 - lead, np.ceil(settle_before))
    col = np.clip(_year_index(start) + 1, 0, path.shape[0] - 1)
    prior_level = path.ravel()[col * n + np.arange(ids.size)]  # path: the ids' columns
    trials = _bargaining_inputs(
        s,
        sub,
        start,
        prior_level,
        intensity[ids],
        post_intensity[ids],
        not_offset[ids],
        u_troop[ids],
        np.zeros(ids.size),
        expiry2,
    )
    return bargain(s, trials)
