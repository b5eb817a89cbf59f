"""Month-by-month bargaining (docs/model.md section 5), vectorized over the trials in talks.

:func:`bargain` returns the settlement time, first-year increase and troop threat per trial.

The loop is bookkeeping only; every trial goes through exactly the operations, in the same
order, of the month-by-month equations, so the numbers do not depend on it:

- Every trial that will open is put once, in order of its start month, into the arrays of a
  :class:`Window`. The trials in talks in month ``t`` are the slice ``[lo, hi)`` of those arrays;
  ``hi`` grows as talks open (:func:`_admit_opened`). A settled trial becomes a dead slot (NaN
  positions, no deadline) that no test selects; the window is compacted when dead slots
  outnumber live ones (:func:`_compact_window`). Work per month is proportional to the trials in
  talks, on contiguous slices.
- With the deadline mechanism on, a trial past its deadline month holds ask = floor and
  offer = ceiling, is stalled (else it would have settled) and its troop lever is spent, so a
  month is only the stalemate step and the crossing test. Such trials move to a
  :class:`PastDeadlineGroup`, where that month is plain arithmetic
  (:func:`_step_past_deadline_group`). The months of the change of administration and the one
  after (where positions and floors are reset) run the general month on all trials, with that
  group merged back in front of the window (:func:`_merge_group_into_window`).
- Settlements are recorded (:class:`Settlements`) and priced in one pass at the end
  (:func:`_price_settlements`): the same elementwise operations as month by month.
"""

from __future__ import annotations

import numpy as np

from pipeline.common import BoolArray, FloatArray
from pipeline.model.bargaining_state import (
    Bargaining,
    BargainingInputs,
    MonthRules,
    PastDeadlineGroup,
    Settlements,
    TrialIds,
    Window,
    start_bargaining,
)
from pipeline.model.settings import ModelSettings

#: Dead slots are compacted away once they outnumber the live ones and this many: below it,
#: moving arrays costs more than skipping dead slots.
_MIN_DEAD_TO_COMPACT = 1024


def bargain(
    settings: ModelSettings, trials: BargainingInputs
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Settlement time, first-year increase and troop threat per trial (NaN: not settled)."""
    n = trials.start.shape[0]
    horizon = settings.horizon_month
    settle_time = np.full(n, np.nan)
    increase = np.full(n, np.nan)
    threat = np.zeros(n, dtype=bool)
    lowest = np.min(trials.start)
    if not np.isfinite(lowest) or int(lowest) >= horizon:
        return settle_time, increase, threat
    state = start_bargaining(settings, trials, threat)
    window, group = state.window, state.group
    for t in range(window.first + 1, horizon + 1):
        _admit_opened(window, t)
        general = not state.rules.fast or t in state.rules.general_months
        if general and group.n_alive:
            _merge_group_into_window(window, group)
        if not general and group.n_alive:
            _step_past_deadline_group(state, t)
        if window.n_alive == 0:
            window.lo = window.hi
            continue
        _step_window(state, t, general)
        if general and state.rules.fast and t + 1 not in state.rules.general_months:
            _move_past_deadline_to_group(window, group, t)
        _compact_window(window)
    _price_settlements(state.settlements, state.rules, settle_time, increase)
    return settle_time, increase, threat


def _admit_opened(window: Window, t: int) -> None:
    """Extend the window over the trials whose talks opened in month ``t - 1``."""
    new_hi = window.size + int(window.opened_by[t - 1 - window.first])
    window.n_alive += new_hi - window.hi
    window.hi = new_hi


def _merge_group_into_window(window: Window, group: PastDeadlineGroup) -> None:
    """Put the live past-deadline trials back in front of the window for a general month."""
    keep = np.flatnonzero(group.floor[: group.n] != np.inf)
    new_lo = window.lo - keep.size
    put = slice(new_lo, window.lo)
    window.ids[put] = group.ids[keep]
    window.ask[put] = window.floor[put] = group.floor[keep]
    window.offer[put] = window.ceiling[put] = group.ceiling[keep]
    # Positions sit at the reservation points: concessions of 0 keep them there.
    window.us_keep_share[put] = 0.0
    window.korea_rate[put] = 0.0
    window.due[put] = -np.inf  # past the deadline
    window.stall_step[put] = group.step[keep]
    window.tried[put] = True
    window.alive[put] = True
    window.n_alive += keep.size
    window.lo = new_lo
    group.n = group.n_alive = 0


def _step_past_deadline_group(state: Bargaining, t: int) -> None:
    """One fast month of the past-deadline group: ask = floor and offer = ceiling are apart,
    so stuck; both reservation points (and positions) move by the step; settled where they
    cross."""
    group = state.group
    span = slice(0, group.n)
    floor, ceiling = group.floor[span], group.ceiling[span]
    floor_next, ceiling_next = group.floor_next[span], group.ceiling_next[span]
    if t > state.rules.expiry:
        step = np.multiply(
            group.step[span], state.rules.stalemate_factor(t), out=group.scratch[span]
        )
    else:
        step = group.step[span]  # drift * 1.0 is drift
    np.subtract(floor, step, out=floor_next)
    np.add(ceiling, step, out=ceiling_next)
    crossed = np.greater_equal(ceiling_next, floor_next, out=group.crossed[span])
    if crossed.any():
        idx = np.flatnonzero(crossed)
        state.settlements.record(t, idx, group.ids, floor, ceiling, floor_next, ceiling_next)
        # Dead slots: never cross again.
        floor_next[idx] = np.inf
        ceiling_next[idx] = -np.inf
        group.n_alive -= idx.size
    group.floor, group.floor_next = group.floor_next, group.floor
    group.ceiling, group.ceiling_next = group.ceiling_next, group.ceiling
    if group.n - group.n_alive > max(group.n_alive, _MIN_DEAD_TO_COMPACT):
        keep = np.flatnonzero(group.floor[: group.n] != np.inf)
        for arr in (group.ids, group.floor, group.ceiling, group.step):
            arr[: keep.size] = arr[keep]
        group.n = keep.size


def _step_window(state: Bargaining, t: int, general: bool) -> None:
    """One month of the trials in the window, then settlement where the paths cross."""
    if general:
        _general_month(state, t)
    else:
        _deadline_arrivals(state, t)
        _concede(state.window)
    _settle_crossed(state, t)
    window = state.window
    window.ask, window.ask_next = window.ask_next, window.ask
    window.offer, window.offer_next = window.offer_next, window.offer


def _concede(window: Window) -> None:
    """Concessions (section 5, step 1): ask toward the floor, offer toward the ceiling."""
    w = window.span
    scratch = window.scratch[: window.hi - window.lo]
    floor, ceiling = window.floor[w], window.ceiling[w]
    np.subtract(window.ask[w], floor, out=scratch)
    np.multiply(scratch, window.us_keep_share[w], out=scratch)
    np.add(floor, scratch, out=window.ask_next[w])
    offer = window.offer[w]
    np.subtract(ceiling, offer, out=scratch)
    np.multiply(scratch, window.korea_rate[w], out=scratch)
    np.add(offer, scratch, out=window.offer_next[w])


def _deadline_arrivals(state: Bargaining, t: int) -> None:
    """In a fast month, trials reaching their deadline leave the window: their month is the
    general one on the subset (final offers, troop lever, crossing); the unsettled join the
    past-deadline group."""
    window, lo = state.window, state.window.lo
    w = window.span
    at_deadline = np.less_equal(window.due[w], t, out=window.at_deadline[: window.hi - lo])
    if not at_deadline.any():
        return
    arriving = np.flatnonzero(at_deadline)
    ids = window.ids[w].take(arriving)
    ask_before, offer_before = window.ask[w].take(arriving), window.offer[w].take(arriving)
    # Final offers: ask = floor, offer = ceiling (not yet past the deadline, so no stalemate
    # step this month).
    floor, ceiling = window.floor[w].take(arriving), window.ceiling[w].take(arriving)
    if state.rules.troop_lever:
        stalled = np.flatnonzero(ceiling < floor)
        if stalled.size:
            made, made_ids = _troop_threats(state, t, stalled, ids.take(stalled))
            ceiling[made] = ceiling[made] + state.trials.troop_threat_uplift[made_ids]
    crossed = ceiling >= floor
    if crossed.any():
        idx = np.flatnonzero(crossed)
        state.settlements.record(t, idx, ids, ask_before, offer_before, floor, ceiling)
        stay = np.flatnonzero(~crossed)
    else:
        stay = np.arange(arriving.size)
    if stay.size:
        steps = window.stall_step[w].take(arriving.take(stay))
        state.group.append(ids.take(stay), floor.take(stay), ceiling.take(stay), steps)
    window.ask[w][arriving] = np.nan
    window.due[w][arriving] = np.inf
    window.alive[lo + arriving] = False
    window.n_alive -= arriving.size


def _general_month(state: Bargaining, t: int) -> None:
    """The general month (docs/model.md section 5, steps 1-5) on the whole window."""
    window, rules = state.window, state.rules
    w, m = window.span, window.hi - window.lo
    _concede(window)
    at_deadline = np.less_equal(window.due[w], t, out=window.at_deadline[:m])
    on_deadline = np.flatnonzero(at_deadline)
    if rules.deadline:
        window.ask_next[w][on_deadline] = window.floor[w][on_deadline]
        window.offer_next[w][on_deadline] = window.ceiling[w][on_deadline]
    post_ask_all = state.trials.post_change_ask
    if post_ask_all is not None and t == rules.change:
        _administration_change(state, post_ask_all)
    _stalemate_step(state, t)
    if rules.troop_lever and on_deadline.size:
        _troop_lever_at_deadline(state, t, on_deadline)


def _administration_change(state: Bargaining, post_ask_all: FloatArray) -> None:
    """Step 3: for talks opened under Trump, the floor and ask drop to the next
    administration's (never rise); a harder successor (mechanism successor_either_way) scales
    them up by the ratio of the opening asks instead, around the situation shift."""
    window, trials = state.window, state.trials
    w = window.span
    ids = window.ids[w]
    floor, ask_next = window.floor[w], window.ask_next[w]
    under_trump = trials.start[ids] < state.rules.change_at
    post_ask = post_ask_all[ids]
    post_floor = trials.post_change_floor
    assert post_floor is not None
    new_floor = np.minimum(floor, post_floor[ids])
    new_ask = np.minimum(ask_next, post_ask)
    if trials.post_change_ratio is not None:
        ratio = trials.post_change_ratio[ids]
        harder = ratio > 1.0
        if harder.any():
            shift = trials.shift[ids]
            new_floor = np.where(harder, (floor + shift) * ratio - shift, new_floor)
            new_ask = np.where(harder, (ask_next + shift) * ratio - shift, new_ask)
    floor[:] = np.where(under_trump, new_floor, floor)
    ask_next[:] = np.where(under_trump, new_ask, ask_next)


def _stalemate_step(state: Bargaining, t: int) -> None:
    """Step 4: past the deadline and still apart, both reservation points move toward each
    other; with the deadline on, positions follow them."""
    window = state.window
    w, m = window.span, window.hi - window.lo
    floor, ceiling = window.floor[w], window.ceiling[w]
    ask_next, offer_next = window.ask_next[w], window.offer_next[w]
    np.less_equal(window.due[w], t - 1, out=window.past_deadline[:m])
    np.less(offer_next, ask_next, out=window.apart[:m])
    stuck = np.logical_and(window.past_deadline[:m], window.apart[:m], out=window.past_deadline[:m])
    if not stuck.any():
        return
    idx = np.flatnonzero(stuck)
    step = window.stall_step[w][idx] * state.rules.stalemate_factor(t)
    floor[idx] -= step
    if state.rules.signed_zero:
        np.add(ceiling, 0.0, out=ceiling)
    ceiling[idx] += step
    if state.rules.deadline:
        # Positions follow the moved reservation points of the stuck trials only
        # (docs/model.md section 5, step 4): no trial depends on others in its block.
        ask_next[idx] = floor[idx]
        offer_next[idx] = ceiling[idx]


def _troop_lever_at_deadline(state: Bargaining, t: int, on_deadline: TrialIds) -> None:
    """Step 5: the first month at the deadline with the sides apart, the US may threaten; a
    threat raises Korea's ceiling, which Korea tables at once."""
    window, lo = state.window, state.window.lo
    w = window.span
    ceiling, ask_next, offer_next = window.ceiling[w], window.ask_next[w], window.offer_next[w]
    untried = on_deadline[~window.tried[w][on_deadline]]
    stalled = untried[offer_next[untried] < ask_next[untried]]
    if stalled.size:
        window.tried[lo + stalled] = True
        made, made_ids = _troop_threats(state, t, stalled, window.ids[lo + stalled])
        ceiling[made] = ceiling[made] + state.trials.troop_threat_uplift[made_ids]
        offer_next[made] = ceiling[made]


def _troop_threats(
    state: Bargaining, t: int, stalled: TrialIds, stalled_ids: TrialIds
) -> tuple[TrialIds, TrialIds]:
    """Of stalled trials (index, trial id), those the US threatens in month ``t`` (probability
    troop_threat_prob x current intensity); marks their threat."""
    trials = state.trials
    if t <= state.rules.change_at:
        now = trials.intensity[stalled_ids]
    else:
        now = trials.post_intensity[stalled_ids]
    made = trials.u_troop[stalled_ids] < trials.troop_threat_prob[stalled_ids] * now
    state.threat[stalled_ids[made]] = True
    return stalled[made], stalled_ids[made]


def _settle_crossed(state: Bargaining, t: int) -> None:
    """Step 6: record the trials whose paths crossed this month and make them dead slots."""
    window, lo = state.window, state.window.lo
    w, m = window.span, window.hi - window.lo
    ask_next, offer_next = window.ask_next[w], window.offer_next[w]
    crossed = np.greater_equal(offer_next, ask_next, out=window.apart[:m])
    if not crossed.any():
        return
    idx = np.flatnonzero(crossed)
    state.settlements.record(
        t, idx, window.ids[w], window.ask[w], window.offer[w], ask_next, offer_next
    )
    ask_next[idx] = np.nan
    offer_next[idx] = np.nan
    window.due[w][idx] = np.inf
    window.alive[lo + idx] = False
    window.n_alive -= idx.size


def _move_past_deadline_to_group(window: Window, group: PastDeadlineGroup, t: int) -> None:
    """Back to the fast months: trials at or past their deadline join the group (their ask is
    the floor and their offer the ceiling again after this month)."""
    w = window.span
    past = np.flatnonzero(window.alive[w] & (window.due[w] <= t))
    if not past.size:
        return
    at = window.lo + past
    group.append(window.ids[at], window.floor[at], window.ceiling[at], window.stall_step[at])
    window.ask[at] = np.nan
    window.offer[at] = np.nan
    window.due[at] = np.inf
    window.alive[at] = False
    window.n_alive -= past.size


def _compact_window(window: Window) -> None:
    """Once dead slots outnumber live ones, move the live trials to the end, in order."""
    w = window.span
    if window.hi - window.lo - window.n_alive <= max(window.n_alive, _MIN_DEAD_TO_COMPACT):
        return
    keep = np.flatnonzero(window.alive[w])
    new_lo = window.hi - window.n_alive
    # The next-month positions are not kept: every month writes them over the whole window.
    for arr in (
        window.ids, window.ask, window.offer, window.floor, window.ceiling,
        window.us_keep_share, window.korea_rate, window.due, window.stall_step, window.tried,
        window.alive,
    ):  # fmt: skip
        arr[new_lo : window.hi] = arr[w].take(keep)
    window.lo = new_lo


def _price_settlements(
    settlements: Settlements, rules: MonthRules, settle_time: FloatArray, increase: FloatArray
) -> None:
    """Write the settlement time and increase of every recorded trial (step 6)."""
    n = settlements.n
    ask_before, offer_before, ask_now, offer_now = settlements.positions[:, :n]
    gap_before = ask_before - offer_before
    gap_now = ask_now - offer_now
    # Linear interpolation of both paths within the month: where they meet.
    closing = gap_before - gap_now
    frac = np.clip(gap_before / np.where(closing > 0, closing, 1.0), 0.0, 1.0)
    ids = settlements.ids[:n]
    increase[ids] = ask_before + frac * (ask_now - ask_before)
    when = settlements.month[:n] + frac
    if rules.change is not None:
        # A deal the new administration makes possible is dated at its arrival.
        at_change = settlements.month[:n] == rules.change - 1
        when[at_change] = np.maximum(when[at_change], rules.change_at)
    settle_time[ids] = when
