"""The negotiation model: a month-by-month bargaining simulation, vectorized over trials.

Pure numpy: arrays in, :class:`~pipeline.model.outcomes.Outcomes` out; loops only over months and
calendar years. docs/model.md states every equation implemented here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.common import FloatArray
from pipeline.model.outcomes import Outcomes

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
    horizon = s.horizon_month
    change = s.administration_change_month if s.administration_change else None
    change_at = float(change) if change is not None else np.inf

    # Opening positions, priced against the level in force in the year talks open.
    start_col = np.clip(
        (np.minimum(start, horizon - 1) // 12).astype(np.int64) + 1, 0, years.size - 1
    )
    prior_level = levels.ravel()[start_col * n + np.arange(n)]
    intensity_at_start = np.where(start < change_at, intensity, post_intensity)

    # opening_ask_pct for the intensity at the start and the next administration's, sharing
    # the headline gap (the same operations, computed once).
    working = inputs["us_working_ask_increase_pct"]
    pull = inputs["headline_anchor_pull"]
    headline_pct = (inputs["us_headline_ask_usd_bn"] * fx / prior_level - 1.0) * 100.0
    gap = np.maximum(headline_pct - working, 0.0)

    def ask(level_intensity: FloatArray) -> FloatArray:
        out: FloatArray = (working + level_intensity * pull * gap) * not_offset
        return out

    share = inputs["us_reservation_share_of_ask"]
    us_ask = ask(intensity_at_start)
    us_floor = share * us_ask
    korea_offer = inputs["korea_opening_offer_increase_pct"]
    korea_ceiling = np.maximum(inputs["korea_reservation_increase_pct"], korea_offer)
    post_ask_all = ask(post_intensity) if change is not None else None

    settle_time, increase, threat = _bargain(
        s, start, us_ask, us_floor, korea_offer, korea_ceiling,
        inputs["us_concession_rate_per_month"], inputs["korea_concession_rate_per_month"],
        inputs["negotiation_length_months"], inputs["stalemate_concession_pp_per_month"],
        share, post_ask_all, intensity, post_intensity, inputs["troop_threat_prob"],
        inputs["troop_threat_korea_uplift_pct"], u_troop,
    )  # fmt: skip

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


def _bargain(
    s: ModelSettings,
    start: FloatArray,
    us_ask: FloatArray,
    us_floor: FloatArray,
    korea_offer: FloatArray,
    korea_ceiling: FloatArray,
    cu: FloatArray,
    ck: FloatArray,
    deadline_months: FloatArray,
    drift: FloatArray,
    share: FloatArray,
    post_ask_all: FloatArray | None,
    intensity: FloatArray,
    post_intensity: FloatArray,
    troop_p: FloatArray,
    troop_uplift: FloatArray,
    u_troop: FloatArray,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Month-by-month bargaining (docs/model.md section 5): settlement time, first-year increase
    and troop threat per trial.

    Bookkeeping only; every trial goes through exactly the operations, in the same order, of
    the month-by-month equations, so the numbers do not depend on it:

    - Every trial that will open is put once, in order of its start month, into arrays of its
      bargaining state. The trials in talks in month ``t`` are the *window* ``[lo, hi)`` of
      those arrays; ``hi`` grows as talks open. A settled trial becomes a dead slot (NaN
      positions, no deadline) that no test selects; the window is compacted when dead slots
      outnumber live ones. Work per month is proportional to the trials in talks, on
      contiguous slices.
    - With the deadline mechanism on, a trial past its deadline month holds ask = floor and
      offer = ceiling, is stalled (else it would have settled) and its troop lever is spent,
      so a month is only the stalemate step and the crossing test. Such trials move to their
      own group (``q_*``), where that month is plain arithmetic. The months of the change of
      administration and the one after (where positions and floors are reset) run the general
      month on all trials, with that group merged back in front of the window.
    """
    n = start.shape[0]
    horizon = s.horizon_month
    expiry = s.expiry_month
    change = s.administration_change_month if s.administration_change else None
    change_at = float(change) if change is not None else np.inf
    settle_time = np.full(n, np.nan)
    increase = np.full(n, np.nan)
    threat = np.zeros(n, dtype=bool)
    lowest = np.min(start)
    if not np.isfinite(lowest):
        return settle_time, increase, threat
    first = int(lowest)
    if first >= horizon:
        return settle_time, increase, threat

    # Trials that open in a simulated month (start == t - 1 for some t = first+1 .. horizon),
    # in order of their start month.
    opening = np.flatnonzero((start < horizon) & (start == np.floor(start)))
    span = horizon - first
    key = (start[opening] - first).astype(np.int16 if span < 2**15 else np.int64)
    order = opening[np.argsort(key, kind="stable")]
    # ends[j]: number of trials opened by month first + j (start <= first + j).
    ends = np.cumsum(np.bincount(key, minlength=span))
    size = order.size

    # Window arrays: the sorted trials sit at [size, 2 size); the free space in front takes the
    # past-deadline group back for the general months.
    def window(values: npt.NDArray[Any], dtype: Any = np.float64) -> npt.NDArray[Any]:
        out = np.empty(2 * size, dtype=dtype)
        np.take(values, order, out=out[size:])
        return out

    ids = np.empty(2 * size, dtype=np.intp)
    ids[size:] = order
    a_cur = window(us_ask)
    a_nxt = np.empty_like(a_cur)
    a_nxt[size:] = a_cur[size:]
    k_cur = window(korea_offer)
    k_nxt = np.empty_like(k_cur)
    k_nxt[size:] = k_cur[size:]
    floor = window(us_floor)
    ceil = window(korea_ceiling)
    keep_share = window(cu)
    np.subtract(1.0, keep_share[size:], out=keep_share[size:])
    k_rate = window(ck)
    # "At the deadline" (t - start >= D) is exactly t >= start + ceil(D): t - start is a whole
    # number of months.
    due = window(deadline_months)
    np.ceil(due[size:], out=due[size:])
    due[size:] += start[order]
    stall_step = window(drift)
    tried = np.zeros(2 * size, dtype=bool)
    alive = np.zeros(2 * size, dtype=bool)
    alive[size:] = True
    tmp = np.empty(2 * size)
    b_due = np.empty(2 * size, dtype=bool)
    b_past = np.empty(2 * size, dtype=bool)
    b_apart = np.empty(2 * size, dtype=bool)
    # Past-deadline group: trial id, floor (= ask), ceiling (= offer), step, deadline month.
    q_ids = np.empty(size, dtype=np.intp)
    q_f, q_f_nxt = np.empty(size), np.empty(size)
    q_c, q_c_nxt = np.empty(size), np.empty(size)
    q_step = np.empty(size)
    q_tmp = np.empty(size)
    q_cross = np.empty(size, dtype=bool)

    # Adding a zero step turns a ceiling of -0.0 into +0.0; where that can happen, do it on
    # every open trial, as the equations do (never with real inputs: only a -0.0 ceiling).
    signed_zero = bool(np.any(np.signbit(ceil) & (ceil == 0.0)))
    check = a_cur[size:] + k_cur[size:]
    check += floor[size:]
    check += ceil[size:]
    check += stall_step[size:]
    # Every deadline at least a month after the start: a trial reaching its deadline is not
    # yet past it (due - start = ceil(D) >= 1).
    check += np.where(due[size:] - start[order] >= 1.0, 0.0, np.nan)
    fast = s.deadline and not signed_zero and bool(np.isfinite(check).all())
    general_months = {change, change + 1} if change is not None else set()

    # Settlements are recorded (trial, month, positions before and after) and priced in one
    # pass at the end: the same elementwise operations as month by month.
    rec_ids = np.empty(size, dtype=np.intp)
    rec_t = np.empty(size)
    rec = np.empty((4, size))  # ask and offer before, ask and offer in the month
    n_rec = 0

    def settle(
        t: int, ci: npt.NDArray[np.intp], ids_: npt.NDArray[np.intp], a_prev: FloatArray,
        k_prev: FloatArray, a_x: FloatArray, k_x: FloatArray,
    ) -> None:  # fmt: skip
        nonlocal n_rec
        end = n_rec + ci.size
        np.take(ids_, ci, out=rec_ids[n_rec:end])
        rec_t[n_rec:end] = t - 1
        for row, arr in zip(rec, (a_prev, k_prev, a_x, k_x), strict=True):
            np.take(arr, ci, out=row[n_rec:end])
        n_rec = end

    def threats_made(
        t: int, stalled: npt.NDArray[np.intp], gids: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Of stalled trials (window index, trial id), those the US threatens in month t
        (probability troop_threat_prob x current intensity); marks their threat."""
        now = intensity[gids] if t <= change_at else post_intensity[gids]
        made = u_troop[gids] < troop_p[gids] * now
        threat[gids[made]] = True
        return stalled[made], gids[made]

    def stalemate_factor(t: int) -> npt.NDArray[np.float64]:
        return np.where(t > expiry, 2.0, 1.0)

    lo = hi = size
    n_alive = q_n = q_alive_n = 0
    for t in range(first + 1, horizon + 1):
        new_hi = size + int(ends[t - 1 - first])
        n_alive += new_hi - hi
        hi = new_hi
        general = not fast or t in general_months
        if general and q_alive_n:
            # Merge the past-deadline group back in front of the window.
            keep_q = np.flatnonzero(q_f[:q_n] != np.inf)
            new_lo = lo - keep_q.size
            put = slice(new_lo, lo)
            ids[put] = q_ids[keep_q]
            a_cur[put] = floor[put] = q_f[keep_q]
            k_cur[put] = ceil[put] = q_c[keep_q]
            keep_share[put] = 0.0
            k_rate[put] = 0.0
            due[put] = -np.inf  # past the deadline
            stall_step[put] = q_step[keep_q]
            tried[put] = True
            alive[put] = True
            n_alive += keep_q.size
            lo = new_lo
            q_n = q_alive_n = 0
        if not general and q_alive_n:
            # Past-deadline group: ask = floor, offer = ceiling, apart, so stuck: both
            # reservation points (and positions) move by the step; settled where they cross.
            qw = slice(0, q_n)
            f_old, c_old, f_new, c_new = q_f[qw], q_c[qw], q_f_nxt[qw], q_c_nxt[qw]
            if t > expiry:
                step = np.multiply(q_step[qw], stalemate_factor(t), out=q_tmp[qw])
            else:
                step = q_step[qw]  # drift * 1.0 is drift
            np.subtract(f_old, step, out=f_new)
            np.add(c_old, step, out=c_new)
            crossed = np.greater_equal(c_new, f_new, out=q_cross[qw])
            if crossed.any():
                ci = np.flatnonzero(crossed)
                settle(t, ci, q_ids, f_old, c_old, f_new, c_new)
                # Dead slots: never cross again.
                f_new[ci] = np.inf
                c_new[ci] = -np.inf
                q_alive_n -= ci.size
            q_f, q_f_nxt = q_f_nxt, q_f
            q_c, q_c_nxt = q_c_nxt, q_c
            if q_n - q_alive_n > max(q_alive_n, 1024):
                keep_q = np.flatnonzero(q_f[:q_n] != np.inf)
                for arr in (q_ids, q_f, q_c, q_step):
                    arr[: keep_q.size] = arr[keep_q]
                q_n = keep_q.size
        if n_alive == 0:
            lo = hi
            continue
        m = hi - lo
        w = slice(lo, hi)
        a, k, a_new, k_new = a_cur[w], k_cur[w], a_nxt[w], k_nxt[w]
        f, c, due_w = floor[w], ceil[w], due[w]
        t_ = tmp[:m]
        if not general:
            at_deadline = np.less_equal(due_w, t, out=b_due[:m])
            if at_deadline.any():
                # Trials reaching their deadline leave the window: their month is the general
                # one on the subset (final offers, troop lever, crossing).
                mv = np.flatnonzero(at_deadline)
                g = ids[w].take(mv)
                a_prev, k_prev = a.take(mv), k.take(mv)
                # Final offers: ask = floor, offer = ceiling (not yet past the deadline, so
                # no stalemate step this month).
                f_m, c_m = f.take(mv), c.take(mv)
                if s.troop_lever:
                    stalled = np.flatnonzero(c_m < f_m)
                    if stalled.size:
                        mi, gm = threats_made(t, stalled, g.take(stalled))
                        c_m[mi] = c_m[mi] + troop_uplift[gm]
                crossed_m = c_m >= f_m
                if crossed_m.any():
                    ci = np.flatnonzero(crossed_m)
                    settle(t, ci, g, a_prev, k_prev, f_m, c_m)
                    stay = np.flatnonzero(~crossed_m)
                else:
                    stay = np.arange(mv.size)
                if stay.size:
                    end = q_n + stay.size
                    np.take(g, stay, out=q_ids[q_n:end])
                    np.take(f_m, stay, out=q_f[q_n:end])
                    np.take(c_m, stay, out=q_c[q_n:end])
                    np.take(stall_step[w], mv.take(stay), out=q_step[q_n:end])
                    q_n = end
                    q_alive_n += stay.size
                a[mv] = np.nan
                due_w[mv] = np.inf
                alive[lo + mv] = False
                n_alive -= mv.size
            # Before the deadline: concessions, then the crossing test.
            np.subtract(a, f, out=t_)
            np.multiply(t_, keep_share[w], out=t_)
            np.add(f, t_, out=a_new)
            np.subtract(c, k, out=t_)
            np.multiply(t_, k_rate[w], out=t_)
            np.add(k, t_, out=k_new)
        else:
            # The general month (docs/model.md section 5, steps 1-5).
            np.subtract(a, f, out=t_)
            np.multiply(t_, keep_share[w], out=t_)
            np.add(f, t_, out=a_new)
            np.subtract(c, k, out=t_)
            np.multiply(t_, k_rate[w], out=t_)
            np.add(k, t_, out=k_new)
            at_deadline = np.less_equal(due_w, t, out=b_due[:m])
            on_deadline = np.flatnonzero(at_deadline)
            if s.deadline:
                a_new[on_deadline] = f[on_deadline]
                k_new[on_deadline] = c[on_deadline]
            if post_ask_all is not None and t == change:
                g = ids[w]
                under_trump = start[g] < change_at
                post_ask = post_ask_all[g]
                f[:] = np.where(under_trump, np.minimum(f, share[g] * post_ask), f)
                a_new[:] = np.where(under_trump, np.minimum(a_new, post_ask), a_new)
            np.less_equal(due_w, t - 1, out=b_past[:m])
            np.less(k_new, a_new, out=b_apart[:m])
            stuck = np.logical_and(b_past[:m], b_apart[:m], out=b_past[:m])
            if stuck.any():
                si = np.flatnonzero(stuck)
                step = stall_step[w][si] * stalemate_factor(t)
                f[si] -= step
                if signed_zero:
                    np.add(c, 0.0, out=c)
                c[si] += step
                if s.deadline:
                    # Positions follow the moved reservation points of the stuck trials only
                    # (docs/model.md section 5, step 4): no trial depends on others in its block.
                    a_new[si] = f[si]
                    k_new[si] = c[si]
            if s.troop_lever and on_deadline.size:
                cand = on_deadline[~tried[w][on_deadline]]
                stalled = cand[k_new[cand] < a_new[cand]]
                if stalled.size:
                    tried[lo + stalled] = True
                    mi, gm = threats_made(t, stalled, ids[lo + stalled])
                    c[mi] = c[mi] + troop_uplift[gm]
                    k_new[mi] = c[mi]
        # Settlement where the paths cross.
        crossed = np.greater_equal(k_new, a_new, out=b_apart[:m])
        if crossed.any():
            ci = np.flatnonzero(crossed)
            settle(t, ci, ids[w], a, k, a_new, k_new)
            a_new[ci] = np.nan
            k_new[ci] = np.nan
            due_w[ci] = np.inf
            alive[lo + ci] = False
            n_alive -= ci.size
        a_cur, a_nxt = a_nxt, a_cur
        k_cur, k_nxt = k_nxt, k_cur
        if general and fast and t + 1 not in general_months:
            # Back to the fast months: trials at or past their deadline join their group
            # (their ask is the floor and their offer the ceiling again after this month).
            past = np.flatnonzero(alive[w] & (due[w] <= t))
            if past.size:
                end = q_n + past.size
                at = lo + past
                q_ids[q_n:end] = ids[at]
                q_f[q_n:end] = floor[at]
                q_c[q_n:end] = ceil[at]
                q_step[q_n:end] = stall_step[at]
                q_n = end
                q_alive_n += past.size
                a_cur[at] = np.nan
                k_cur[at] = np.nan
                due[at] = np.inf
                alive[at] = False
                n_alive -= past.size
        if m - n_alive > max(n_alive, 1024):
            # Compact: move the live trials to the end of the window, in order.
            keep = np.flatnonzero(alive[w])
            new_lo = hi - n_alive
            for arr in (ids, a_cur, k_cur, floor, ceil, keep_share, k_rate, due, stall_step,
                        tried, alive):  # fmt: skip
                arr[new_lo:hi] = arr[w].take(keep)
            lo = new_lo

    a_prev, k_prev, a_x, k_x = rec[:, :n_rec]
    gap_prev = a_prev - k_prev
    gap_new = a_x - k_x
    # Linear interpolation of both paths within the month: where they meet.
    frac = np.clip(gap_prev / np.where(gap_prev - gap_new > 0, gap_prev - gap_new, 1.0), 0.0, 1.0)
    g = rec_ids[:n_rec]
    increase[g] = a_prev + frac * (a_x - a_prev)
    when = rec_t[:n_rec] + frac
    if change is not None:
        # A deal the new administration makes possible is dated at its arrival.
        at_change = rec_t[:n_rec] == change - 1
        when[at_change] = np.maximum(when[at_change], change_at)
    settle_time[g] = when
    return settle_time, increase, threat


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
    )
