"""Per-trial reference implementations of the negotiation model (benchmark-only).

One scalar function, :func:`trial`, states the model of docs/model.md for one trial, following
``pipeline/model/simulate.py`` and ``bargaining.py`` operation by operation. The same source runs

- compiled, through numba (:func:`numba_runner`): the "compiled per-trial reference";
- interpreted, on Python floats and lists (:func:`python_runner`): the "pure-Python loop";
- inside a squigglepy per-sample model function (benchmarks/__main__.py).

:func:`check_against_core` compares its outputs with ``pipeline.model.simulate.simulate`` on the same
inputs, so the benchmark measures the same model, not a simplified one.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.model.bargaining import CROSSING_TOLERANCE_PP
from pipeline.model.outcomes import Outcomes
from pipeline.model.settings import ModelSettings
from pipeline.spec.catalog import INPUT_NAMES

FloatArray = npt.NDArray[np.float64]

#: Scalar outcomes returned by :func:`trial`, in order.
SCALARS: tuple[str, ...] = (
    "reopened",
    "talks_start_month",
    "months_to_settlement",
    "settled_by_horizon",
    "settlement_month",
    "lapse",
    "lapse_months",
    "furlough",
    "troop_threat",
    "package_deal",
    "first_year",
    "first_year_krw_bn",
    "increase_pct",
    "term_years",
    "escalation_rule",
    "stopgap",
    "stopgap_months",
    "stopgap_first_year",
    "stopgap_level_krw_bn",
    "renegotiated",
    "renewal_first_year",
    "renewal_increase_pct",
)
_IDX = {name: i for i, name in enumerate(INPUT_NAMES)}
_NAN = math.nan
_INF = math.inf
_TOL = CROSSING_TOLERANCE_PP  # apart: ask - offer > _TOL (docs/model.md section 5, step 6)


def _ceil(x: float) -> float:
    # math.ceil returns an int (and overflows on inf and on huge values in numba).
    if x < 1e15:
        return float(math.ceil(x))
    return x


def _round_half_even(x: float) -> float:
    r = math.floor(x + 0.5)
    if r - x == 0.5 and r % 2 == 1:
        r -= 1
    return float(r)


def _clip(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def bargain_one(
    start: float, ask: float, floor: float, korea: float, ceiling: float, post_ask: float,
    post_floor: float, ratio: float, shift: float, cu: float, ck: float, deadline: float,
    drift: float, intensity: float, post: float, troop_p: float, uplift: float, u_troop: float,
    expiry: float, change_at: float, horizon: float, deadline_on: bool, troop_on: bool,
    change_on: bool,
) -> tuple[float, float, bool]:  # fmt: skip
    """Month-by-month bargaining (docs/model.md section 5): (settlement time, increase, threat)."""
    settle = _NAN
    increase = _NAN
    threat = False
    tried = False
    if start < horizon:
        for t in range(int(start) + 1, int(horizon) + 1):
            elapsed = t - start
            a_new = floor + (ask - floor) * (1.0 - cu)
            k_new = korea + (ceiling - korea) * ck
            at_deadline = elapsed >= deadline
            if deadline_on and at_deadline:
                a_new = floor
                k_new = ceiling
            if change_on and t == change_at and start < change_at:
                if ratio > 1.0:
                    # A harder successor scales the US positions around the situation shift.
                    floor = (floor + shift) * ratio - shift
                    a_new = (a_new + shift) * ratio - shift
                else:
                    floor = min(floor, post_floor)
                    a_new = min(a_new, post_ask)
            stuck = elapsed - 1.0 >= deadline and a_new - k_new > _TOL
            if stuck:
                step = drift * (2.0 if t > expiry else 1.0)
                floor = floor - step
                ceiling = ceiling + step
            # Positions follow the moved reservation points (docs/model.md section 5, step 4).
            if stuck and deadline_on and at_deadline:
                a_new = floor
                k_new = ceiling
            if troop_on and at_deadline and not tried and a_new - k_new > _TOL:
                tried = True
                now = intensity if t <= change_at else post
                if u_troop < troop_p * now:
                    threat = True
                    ceiling = ceiling + uplift
                    k_new = ceiling
            if a_new - k_new <= _TOL:
                gap_prev = ask - korea
                gap_new = a_new - k_new
                den = gap_prev - gap_new
                frac = _clip(gap_prev / (den if den > 0 else 1.0), 0.0, 1.0)
                if gap_prev <= _TOL:  # met at the month's start
                    frac = 0.0
                increase = ask + frac * (a_new - ask)
                settle = t - 1.0 + frac
                if change_on and t == change_at:
                    settle = max(settle, change_at)
                break
            ask = a_new
            korea = k_new
    return settle, increase, threat


def fill_path(
    path: Any, in_force: Any, years: Any, deal_first: Any, deal_factor: Any, deal_last: Any,
    n_deals: int, esc: Any,
) -> None:  # fmt: skip
    """The contribution path (section 6): the level in force until the first deal; a deal's
    first year grows by its increase, later years by the escalation rate (``esc`` by column),
    frozen after it ends with no successor in force; later deals replace earlier ones."""
    path[0] = in_force[0]
    for j in range(1, len(years)):
        year = years[j]
        prev = path[j - 1]
        value = in_force[j]
        for k in range(n_deals):
            if deal_first[k] <= year:
                if year <= deal_last[k]:
                    factor = deal_factor[k] if deal_first[k] == year else 1.0 + esc[j] / 100.0
                    value = prev * factor
                else:
                    value = prev
        path[j] = value


def positions(
    prior: float, start: float, expiry: float, intensity: float, post: float, shift: float,
    x: Any, offset: float, st: Any,
) -> tuple[float, float, float, float, float, float, float, float]:  # fmt: skip
    """Opening positions (section 4) and the deadline (section 5; expiry pressure):
    (ask, floor, offer, ceiling, post-change ask, post-change floor, ratio, deadline)."""
    change_at, change_on, either_way, pressure_on = st[2], st[11] > 0, st[18] > 0, st[17] > 0
    headline, pull, working, share = x[2], x[3], x[4], x[5]
    fx = x[19]
    gap = max((headline * fx / prior - 1.0) * 100.0 - working, 0.0)
    at_start = intensity if start < change_at else post
    ask0 = (working + at_start * pull * gap) * (1.0 - offset)
    post_ask0 = (working + post * pull * gap) * (1.0 - offset)
    ratio = 1.0
    if change_on and either_way:
        ratio = post_ask0 / ask0 if ask0 > 0.0 else 1.0
    deadline = x[10]
    if pressure_on:
        deadline = max(min(deadline, expiry + x[30] - start), 1.0)
    return (
        ask0 - shift, share * ask0 - shift, x[6] - shift, max(x[7], x[6]) - shift,
        post_ask0 - shift, share * post_ask0 - shift, ratio, deadline,
    )  # fmt: skip


def trial(
    x: Any,  # the trial's inputs in catalog order (sequence of floats)
    u_reopen: float,
    u_troop: float,
    u_furlough: float,
    u_stopgap: float,
    st: Any,  # settings: see settings_vector()
    years: Any,  # calendar years of the path columns base-1 .. horizon+1
    known_cpi: Any,  # published CPI of year - lag per column (NaN: sampled)
    known_def: Any,  # published defense growth of year - 1 per column (NaN: sampled)
    level_kind: Any,  # per column: 0 published level, 1 escalate by CPI, 2 frozen
    level_known: Any,  # published level per column (kind 0)
    levels: Any,  # scratch, len(years)
    path: Any,  # out: contribution path per column, len(years)
    res: Any,  # out: SCALARS
    esc: Any,  # scratch, len(years)
    deals: Any,  # scratch, (3, len(years) + 1): first year, 1 + increase / 100, last year
) -> None:
    """One trial of the model (docs/model.md sections 2-7)."""
    s0, expiry, change_at, horizon = st[0], st[1], st[2], st[3]
    talks_open, cap, furlough_after, base = st[4], st[5], st[6], st[7]
    reopening, package_on, troop_on, change_on = st[8] > 0, st[9] > 0, st[10] > 0, st[11] > 0
    deadline_on, furlough_on = st[12] > 0, st[13] > 0
    cuts_on, stopgap_on, renegotiation_on, either_way = (
        st[14] > 0,
        st[15] > 0,
        st[16] > 0,
        st[18] > 0,
    )
    horizon_year = st[19]
    n_years = len(years)

    intensity = x[0]
    post = x[1] if either_way else min(x[1], intensity)
    cu, ck = x[8], x[9]
    drift, hazard, lead = x[11], x[12], x[13]
    package = x[14] >= 0.5 and package_on
    offset = x[15] if package else 0.0
    troop_p, uplift, furlough_p = x[16], x[17], x[18]
    cpi, defense = x[20], x[21]
    term_pressure, term_normal, rule, fixed_esc = x[22], x[23], int(x[24]), x[25]
    shift = 0.0
    if cuts_on:
        shift = (x[27] if x[26] >= 0.5 else 0.0) + (x[29] if x[28] >= 0.5 else 0.0)

    # Agreement in force (section 2).
    for j in range(n_years):
        if level_kind[j] == 0:
            levels[j] = level_known[j]
        elif level_kind[j] == 1:
            c = known_cpi[j] if known_cpi[j] == known_cpi[j] else cpi
            levels[j] = levels[j - 1] * (1.0 + _clip(c, 0.0, cap) / 100.0)
        else:
            levels[j] = levels[j - 1]
    # Escalation rate of the trial's rule, by column.
    for j in range(n_years):
        if rule == 0:
            c = known_cpi[j] if known_cpi[j] == known_cpi[j] else cpi
            esc[j] = _clip(c, 0.0, cap)
        elif rule == 1:
            esc[j] = known_def[j] if known_def[j] == known_def[j] else defense
        else:
            esc[j] = fixed_esc

    # When talks open (section 3).
    successor = max(expiry - _round_half_even(lead), s0)
    if talks_open >= -1e300:
        start = talks_open
    elif not reopening:
        start = successor
    else:
        mult = 1.0 - offset
        lam1 = -math.log1p(-_clip(hazard * intensity * mult, 0.0, 1.0 - 1e-12))
        lam2 = -math.log1p(-_clip(hazard * post * mult, 0.0, 1.0 - 1e-12))
        need = -math.log(u_reopen) if u_reopen > 0 else _INF
        months1 = max(change_at - s0, 0.0)
        k1 = _ceil(need / lam1) if lam1 > 0 else (_INF if need > 0 else _NAN)
        if k1 <= months1:
            reopen = s0 + k1 - 1.0
        else:
            rest = need - months1 * lam1 if months1 < _INF else _INF
            k2 = _ceil(rest / lam2) if lam2 > 0 else (_INF if rest > 0 else _NAN)
            reopen = max(s0, change_at) + k2 - 1.0
        if reopen != reopen:
            reopen = _INF
        start = min(reopen, successor)
    reopened = start < successor

    # Opening positions (section 4) and bargaining (section 5).
    col = int(min(start, horizon - 1.0) // 12.0) + 1
    col = min(max(col, 0), n_years - 1)
    ask, floor, korea, ceiling, post_ask, post_floor, ratio, deadline = positions(
        levels[col], start, expiry, intensity, post, shift, x, offset, st
    )
    settle, increase, threat = bargain_one(
        start, ask, floor, korea, ceiling, post_ask, post_floor, ratio, shift, cu, ck,
        deadline, drift, intensity, post, troop_p, uplift, u_troop, expiry, change_at, horizon,
        deadline_on, troop_on, change_on,
    )  # fmt: skip

    # Stop-gap, lapse, first year (sections 6-7).
    settled = settle == settle
    opened = start < horizon
    expiry_year = base + expiry // 12.0 - 1.0
    j_expiry = min(int(expiry_year - (base - 1.0)), n_years - 1)
    stopgap = (
        stopgap_on and expiry < horizon and start <= expiry and not (settle < expiry)
        and u_stopgap < x[31]
    )  # fmt: skip
    stopgap_years = x[33] if stopgap else 0.0
    gap_from = expiry + 12.0 * stopgap_years
    stopgap_level = levels[j_expiry] * (1.0 + x[32] / 100.0)
    if stopgap:
        for j in range(j_expiry + 1, n_years):
            levels[j] = stopgap_level
    end_of_gap = settle if settled else horizon
    lapse_months = max(min(end_of_gap, horizon) - gap_from, 0.0)
    if not (opened or settled):
        lapse_months = max(horizon - expiry, 0.0)
    longest = lapse_months
    first_year = _NAN
    if settled:
        settle_year = base + math.floor(settle / 12.0)
        if settle < expiry:
            first_year = settle_year + 1.0 if reopened else expiry_year + 1.0
        elif stopgap and settle < gap_from:
            first_year = expiry_year + 1.0 + stopgap_years
        else:
            first_year = settle_year
    term = _NAN
    if settled:
        term = term_pressure if settle < change_at else term_normal
    deals[0][0] = first_year if settled else _INF
    deals[1][0] = 1.0 + increase / 100.0
    deals[2][0] = _INF
    n_deals = 1

    # Renegotiation of deals ending inside the horizon (section 6).
    renegotiated = False
    renewal_first = _NAN
    renewal_increase = _NAN
    current_first, current_term, current_settle = first_year, term, settle
    while renegotiation_on:
        next_year = current_first + current_term
        if not next_year <= horizon_year:
            break
        deals[2][n_deals - 1] = next_year - 1.0
        fill_path(path, levels, years, deals[0], deals[1], deals[2], n_deals, esc)
        expiry2 = (next_year - base) * 12.0
        start2 = max(expiry2 - _round_half_even(lead), _ceil(current_settle))
        col = min(max(int(start2 // 12.0) + 1, 0), n_years - 1)
        ask, floor, korea, ceiling, post_ask, post_floor, ratio, deadline = positions(
            path[col], start2, expiry2, intensity, post, 0.0, x, offset, st
        )
        settle2, increase2, threat2 = bargain_one(
            start2, ask, floor, korea, ceiling, post_ask, post_floor, ratio, 0.0, cu, ck,
            deadline, drift, intensity, post, troop_p, uplift, u_troop, expiry2, change_at,
            horizon, deadline_on, troop_on, change_on,
        )  # fmt: skip
        threat = threat or threat2
        settled2 = settle2 == settle2
        first2 = _NAN
        if settled2:
            first2 = next_year if settle2 < expiry2 else base + math.floor(settle2 / 12.0)
        lapse2 = max(min(settle2 if settled2 else horizon, horizon) - expiry2, 0.0)
        lapse_months = lapse_months + lapse2
        longest = max(longest, lapse2)
        if not renegotiated:
            renewal_first = first2
            renewal_increase = increase2
        renegotiated = True
        deals[0][n_deals] = first2 if settled2 else _INF
        deals[1][n_deals] = 1.0 + increase2 / 100.0
        deals[2][n_deals] = _INF
        n_deals += 1
        current_first = first2
        current_term = term_pressure if settle2 < change_at else term_normal
        current_settle = settle2
    fill_path(path, levels, years, deals[0], deals[1], deals[2], n_deals, esc)

    furlough = furlough_on and longest > furlough_after and u_furlough < furlough_p
    first_krw = _NAN
    if settled:
        first_krw = path[min(max(int(first_year) - int(base - 1.0), 0), n_years - 1)]
    res[0] = 1.0 if reopened else 0.0
    res[1] = start if opened else _NAN
    res[2] = settle - start if settled else (horizon - start if opened else _NAN)
    res[3] = 1.0 if settled else 0.0
    res[4] = settle
    res[5] = 1.0 if lapse_months > 0 else 0.0
    res[6] = lapse_months
    res[7] = 1.0 if furlough else 0.0
    res[8] = 1.0 if threat else 0.0
    res[9] = 1.0 if package else 0.0
    res[10] = first_year
    res[11] = first_krw
    res[12] = increase
    res[13] = term
    res[14] = float(rule) if settled else -1.0
    res[15] = 1.0 if stopgap else 0.0
    res[16] = 12.0 * stopgap_years
    res[17] = expiry_year + 1.0 if stopgap else _NAN
    res[18] = stopgap_level if stopgap else _NAN
    res[19] = 1.0 if renegotiated else 0.0
    res[20] = renewal_first
    res[21] = renewal_increase


def settings_vector(s: ModelSettings) -> dict[str, FloatArray]:
    """The settings and per-year tables :func:`trial` takes, as float arrays."""
    base = s.calendar_base_year
    years = np.arange(base - 1, s.horizon_year + 2, dtype=np.float64)
    expiry_year = base + s.expiry_month // 12 - 1
    cpi, defense, levels = (
        dict(s.known_cpi_pct),
        dict(s.known_defense_budget_growth_pct),
        dict(s.in_force_levels_krw_bn),
    )
    kind = np.array(
        [0 if (int(y) in levels and y <= expiry_year) else (1 if y <= expiry_year else 2)
         for y in years], dtype=np.float64,
    )  # fmt: skip
    change = s.administration_change_month if s.administration_change else None
    st = np.array(
        [
            s.start_month, s.expiry_month, np.inf if change is None else change, s.horizon_month,
            -np.inf if s.talks_open_month is None else s.talks_open_month,
            s.escalation_cap_pct, s.furlough_after_lapse_months, base,
            s.reopening, s.package_deal, s.troop_lever, change is not None, s.deadline,
            s.lapse_furlough, s.cuts, s.stopgap, s.renegotiation, s.expiry_pressure,
            s.successor_either_way, s.horizon_year,
        ],
        dtype=np.float64,
    )  # fmt: skip
    return {
        "st": st,
        "years": years,
        "known_cpi": np.array([cpi.get(int(y) - s.cpi_lag_years, np.nan) for y in years]),
        "known_def": np.array([defense.get(int(y) - 1, np.nan) for y in years]),
        "level_kind": kind,
        "level_known": np.array([levels.get(int(y), np.nan) for y in years]),
    }


def _make_loop(kernel: Callable[..., None]) -> Callable[..., None]:
    def loop(
        x: Any, ev: Any, st: Any, years: Any, kc: Any, kd: Any, lk: Any, lv: Any,
        levels: Any, path: Any, res: Any, out: Any, paths: Any, esc: Any, deals: Any,
    ) -> None:  # fmt: skip
        for i in range(len(x)):
            e = ev[i]
            kernel(
                x[i], e[0], e[1], e[2], e[3], st, years, kc, kd, lk, lv, levels, path, res, esc,
                deals,
            )  # fmt: skip
            o = out[i]
            for j in range(len(res)):
                o[j] = res[j]
            p = paths[i]
            for j in range(len(path)):
                p[j] = path[j]

    return loop


_numba_loop: Callable[..., None] | None = None


def numba_runner() -> Callable[[FloatArray, FloatArray, ModelSettings], tuple[Any, Any]]:
    """A compiled per-trial runner ``(x (n, d), events (n, 4), settings) -> (scalars, paths)``.

    The first call compiles (a few seconds); callers should warm it up before timing.
    """
    global _numba_loop
    if _numba_loop is None:
        import numba

        jit = numba.njit(cache=False, error_model="numpy", fastmath=False)
        # The same source, with the helpers it calls compiled too.
        scope = dict(trial.__globals__)
        scope.update({f.__name__: jit(f) for f in (_ceil, _round_half_even, _clip)})
        for helper in (bargain_one, fill_path, positions):
            helper_scope = dict(scope)
            scope[helper.__name__] = jit(
                types.FunctionType(helper.__code__, helper_scope, helper.__name__)
            )
        compiled = jit(types.FunctionType(trial.__code__, scope, "trial"))
        _numba_loop = jit(_make_loop(compiled))
    loop = _numba_loop

    def run(x: FloatArray, ev: FloatArray, s: ModelSettings) -> tuple[Any, Any]:
        sv = settings_vector(s)
        y = sv["years"].size
        out = np.empty((x.shape[0], len(SCALARS)))
        paths = np.empty((x.shape[0], y))
        loop(
            x, ev, sv["st"], sv["years"], sv["known_cpi"], sv["known_def"], sv["level_kind"],
            sv["level_known"], np.empty(y), np.empty(y), np.empty(len(SCALARS)), out, paths,
            np.empty(y), np.empty((3, y + 1)),
        )  # fmt: skip
        return out, paths

    return run


def python_runner() -> Callable[[FloatArray, FloatArray, ModelSettings], tuple[Any, Any]]:
    """The same loop interpreted, on Python floats and lists (converted outside the timing)."""
    loop = _make_loop(trial)

    def run(x: Any, ev: Any, s: ModelSettings) -> tuple[Any, Any]:
        sv = {k: v.tolist() for k, v in settings_vector(s).items()}
        y = len(sv["years"])
        n = len(x)
        out = [[0.0] * len(SCALARS) for _ in range(n)]
        paths = [[0.0] * y for _ in range(n)]
        loop(
            x, ev, sv["st"], sv["years"], sv["known_cpi"], sv["known_def"], sv["level_kind"],
            sv["level_known"], [0.0] * y, [0.0] * y, [0.0] * len(SCALARS), out, paths,
            [0.0] * y, [[0.0] * (y + 1) for _ in range(3)],
        )  # fmt: skip
        return out, paths

    return run


def input_matrix(inputs: Mapping[str, FloatArray]) -> FloatArray:
    """(n, d) C-contiguous inputs in catalog order (what the per-trial loops read)."""
    return np.ascontiguousarray(np.stack([inputs[name] for name in INPUT_NAMES], axis=1))


def check_against_core(
    outcomes: Outcomes, scalars: Any, paths: Any, *, rtol: float = 1e-9
) -> list[str]:
    """Fields where the reference disagrees with the core (empty list: the same model)."""
    sc = np.asarray(scalars, dtype=np.float64)
    pa = np.asarray(paths, dtype=np.float64)
    bad = []
    for j, name in enumerate(SCALARS):
        core = np.asarray(getattr(outcomes, name), dtype=np.float64)
        if not np.allclose(core, sc[:, j], rtol=rtol, atol=1e-9, equal_nan=True):
            bad.append(
                f"{name}: {int((~np.isclose(core, sc[:, j], rtol=rtol, equal_nan=True)).sum())} trials"
            )
    core_path = outcomes.contribution_krw_bn
    if not np.allclose(core_path, pa[:, 1:-1], rtol=rtol, equal_nan=True):
        bad.append("contribution_krw_bn")
    return bad
