"""Bargaining (docs/model.md section 5), solved phase by phase, vectorized over trials.

:func:`bargain` returns the settlement time, first-year increase and troop threat per trial,
the outcome of the month-by-month equations of section 5, without stepping months.

Each trial's months fall into **segments** where the month's rule does not change, separated by
**boundary months** where it does:

- boundary months: the first month at the deadline (final offers, the troop lever), the change
  of administration (for talks opened before it) and the first month after expiry (the
  stalemate step doubles). They are run as one general month (:func:`_general_month`, the
  equations as written) on every trial at its own boundary month, all at once;
- segments: before the deadline both sides concede geometrically toward fixed reservation
  points; after it, the reservation points move by a fixed step per month (with the deadline
  mechanism, positions sit on them). Positions after *m* months of a segment are closed-form
  (:func:`_positions`), and the gap between them never grows, so the month where the paths
  cross is found for all trials at once by bisection over *m* (:func:`_first_crossing`).

A trial goes through at most four segments and three boundary months, so a block is a handful
of large array operations, whatever the number of months. Closed forms and repeated monthly
updates round differently: outcomes equal the month-by-month ones up to floating-point
rounding (tests/test_bargaining_oracle.py states the tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import numpy.typing as npt

from pipeline.common import BoolArray, FloatArray
from pipeline.model.settings import ModelSettings

TrialIds = npt.NDArray[np.intp]
"""Trial ids (indices into the block), or indices into the arrays of the trials in talks."""

#: The sides are apart while the ask exceeds the offer by more than this [pp], and settle once
#: it does not: positions that meet exactly (a concession rate of 1 reaching a reservation
#: point equal to the other side's) are then not split by rounding into "apart" and "crossed".
#: Far below any precision the outputs report.
CROSSING_TOLERANCE_PP = 1e-9

#: ``log(1 - rate)`` is clipped here: a rate of 1 concedes the whole gap in one month
#: (``exp(m * -1000) == 0`` for m >= 1, ``== 1`` for m == 0).
_LOG_ZERO = -1000.0


@dataclass(frozen=True)
class BargainingInputs:
    """What the bargaining of each trial starts from; every array has shape (n,), by trial."""

    start: FloatArray
    """Month talks open (the first month bargained is ``start + 1``)."""
    expiry: FloatArray
    """Month the agreement the talks replace expires (the stalemate step doubles after it)."""
    us_ask: FloatArray
    us_floor: FloatArray
    korea_offer: FloatArray
    korea_ceiling: FloatArray
    us_concession_rate: FloatArray
    korea_concession_rate: FloatArray
    negotiation_length_months: FloatArray
    stalemate_step: FloatArray
    """Stalemate concession [pp per month]."""
    post_change_ask: FloatArray | None
    """The opening ask at the next administration's intensity (None without a change)."""
    post_change_floor: FloatArray | None
    """The US reservation point at the next administration's intensity (None without one)."""
    post_change_ratio: FloatArray | None
    """Next administration's opening ask over the opening ask (before the situation shift):
    above 1, a harder successor scales the US positions by it (None: it can only soften)."""
    shift: FloatArray
    """How far the situation (troop reduction, fiscal stress) lowered every position [pp]."""
    intensity: FloatArray
    post_intensity: FloatArray
    troop_threat_prob: FloatArray
    troop_threat_uplift: FloatArray
    u_troop: FloatArray


@dataclass(frozen=True)
class Calendar:
    """The non-random months and switches of the bargaining."""

    horizon: int
    change_at: float
    """Month the next administration takes office (inf: no change in the horizon or the
    mechanism is off)."""
    deadline: bool
    troop_lever: bool

    @classmethod
    def of(cls, settings: ModelSettings) -> Calendar:
        """The calendar of ``settings``."""
        change = settings.administration_change_month if settings.administration_change else None
        return cls(
            horizon=settings.horizon_month,
            change_at=float(change) if change is not None else np.inf,
            deadline=settings.deadline,
            troop_lever=settings.troop_lever,
        )


@dataclass
class Talks:
    """The trials still in talks (arrays by trial in talks) after month ``month``."""

    ids: TrialIds
    start: FloatArray
    expiry: FloatArray
    due: FloatArray
    """First month at the deadline: ``start + ceil(N)`` (``t - start >= N`` for whole t)."""
    month: FloatArray
    """Last month bargained."""
    ask: FloatArray
    offer: FloatArray
    floor: FloatArray
    ceiling: FloatArray
    tried: BoolArray
    """The troop lever has been tried (once, in the first month at the deadline)."""

    def concat(self, other: Talks) -> Talks:
        """These trials and ``other``'s (the order of trials in talks does not matter)."""
        return Talks(
            *(np.concatenate((getattr(self, name), getattr(other, name))) for name in _TALKS_FIELDS)
        )

    def keep(self, mask: BoolArray) -> Talks:
        """The trials where ``mask`` holds."""
        if mask.all():
            return self
        # Indices then take: several times faster than boolean indexing of each array.
        return self.take(np.flatnonzero(mask))

    def take(self, at: TrialIds) -> Talks:
        """The trials at positions ``at``."""
        return Talks(*(getattr(self, name).take(at) for name in _TALKS_FIELDS))


_TALKS_FIELDS = (
    "ids",
    "start",
    "expiry",
    "due",
    "month",
    "ask",
    "offer",
    "floor",
    "ceiling",
    "tried",
)


@dataclass(frozen=True)
class _Segment:
    """Months ``month + 1 .. month + length`` of the trials in talks, under one rule."""

    floor: FloatArray
    ceiling: FloatArray
    us_excess: FloatArray
    """Ask above the floor at the segment's start (>= 0)."""
    korea_shortfall: FloatArray
    """Offer below the ceiling at the segment's start (>= 0)."""
    step: FloatArray
    """How far each reservation point moves per month (0 before the deadline) [pp]."""
    chase_step: FloatArray
    """The step positions fall behind by per month, conceding toward moving reservation points
    (without the deadline mechanism; 0 where positions sit on them)."""
    log_us_keep: FloatArray
    log_korea_keep: FloatArray
    us_rate: FloatArray
    korea_rate: FloatArray

    def take(self, at: TrialIds) -> _Segment:
        """The segment of the trials at ``at``."""
        return _Segment(*(getattr(self, f.name)[at] for f in fields(self)))


def bargain(
    settings: ModelSettings, trials: BargainingInputs
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Settlement time, first-year increase and troop threat per trial (NaN: not settled)."""
    n = trials.start.shape[0]
    settled = Settled(np.full(n, np.nan), np.full(n, np.nan))
    threat = np.zeros(n, dtype=bool)
    cal = Calendar.of(settings)
    talks = open_talks(trials, cal.horizon)
    while talks.ids.size:
        boundary = next_boundary(talks, cal)
        talks = run_segment(talks, trials, cal, boundary, settled)
        if talks.ids.size:
            talks = general_month(talks, trials, cal, settled, threat)
    return settled.time, settled.increase, threat


@dataclass(frozen=True)
class Settled:
    """Out: settlement time and first-year increase by trial (NaN until settled)."""

    time: FloatArray
    increase: FloatArray

    def record(
        self,
        ids: TrialIds,
        month: FloatArray,
        before: tuple[FloatArray, FloatArray],
        now: tuple[FloatArray, FloatArray],
        change_at: float,
    ) -> None:
        """Trials ``ids`` crossed in ``month``, from positions (ask, offer) ``before`` to
        ``now``: both paths are linear within the month and meet where the gap closes."""
        ask_before, offer_before = before
        ask_now, offer_now = now
        gap_before = ask_before - offer_before
        closing = gap_before - (ask_now - offer_now)
        frac = np.clip(gap_before / np.where(closing > 0, closing, 1.0), 0.0, 1.0)
        # Already met at the month's start (within the tolerance): settled at its start.
        frac[gap_before <= CROSSING_TOLERANCE_PP] = 0.0
        self.increase[ids] = ask_before + frac * (ask_now - ask_before)
        when = month - 1.0 + frac
        # A deal the new administration makes possible is dated at its arrival.
        self.time[ids] = np.where(month == change_at, np.maximum(when, change_at), when)


def _apart(ask: FloatArray, offer: FloatArray) -> BoolArray:
    """The ask exceeds the offer by more than the crossing tolerance."""
    out: BoolArray = ask - offer > CROSSING_TOLERANCE_PP
    return out


def open_talks(trials: BargainingInputs, horizon: int) -> Talks:
    """The trials whose talks open in a simulated month, before their first month."""
    start = trials.start
    ids = np.flatnonzero((start < horizon) & (start == np.floor(start)))
    opened = start[ids]
    return Talks(
        ids=ids,
        start=opened,
        expiry=trials.expiry[ids],
        due=opened + np.ceil(trials.negotiation_length_months[ids]),
        month=opened.copy(),
        ask=trials.us_ask[ids],
        offer=trials.korea_offer[ids],
        floor=trials.us_floor[ids],
        ceiling=trials.korea_ceiling[ids],
        tried=np.zeros(ids.size, dtype=bool),
    )


def next_boundary(talks: Talks, cal: Calendar) -> FloatArray:
    """Each trial's next month whose rule differs from the months before it (``horizon + 1``
    if none is left): the first month at the deadline, the change of administration for talks
    opened before it, the first month after expiry."""
    after = talks.month
    deadline = np.maximum(talks.due, talks.start + 1.0)
    boundary = np.where(deadline > after, np.minimum(deadline, cal.horizon + 1.0), np.inf)
    lapse = talks.expiry + 1.0
    boundary = np.where(lapse > after, np.minimum(boundary, lapse), boundary)
    change = cal.change_at
    if np.isfinite(change) and change <= cal.horizon:
        upcoming = (change > after) & (talks.start < change)
        boundary = np.where(upcoming, np.minimum(boundary, change), boundary)
    out: FloatArray = np.minimum(boundary, cal.horizon + 1.0)
    return out


def _segment(talks: Talks, trials: BargainingInputs, cal: Calendar) -> _Segment:
    """The rule of the months after ``talks.month`` up to each trial's next boundary."""
    ids = talks.ids
    us_rate = trials.us_concession_rate.take(ids)
    korea_rate = trials.korea_concession_rate.take(ids)
    # Past the deadline (a boundary month was the first at it), still apart: stalemate.
    stalled = talks.month >= np.maximum(talks.due, talks.start + 1.0)
    any_stalled = bool(stalled.any())
    if any_stalled:
        lapsed = talks.month + 1.0 > talks.expiry
        step = np.where(stalled, trials.stalemate_step.take(ids) * np.where(lapsed, 2.0, 1.0), 0.0)
    else:
        step = np.zeros(ids.size)
    with np.errstate(divide="ignore"):
        log_us_keep = np.maximum(np.log1p(-us_rate), _LOG_ZERO)
        log_korea_keep = np.maximum(np.log1p(-korea_rate), _LOG_ZERO)
    if cal.deadline and any_stalled:
        # Past the deadline, positions are the reservation points from the first month on
        # (a change of administration at the deadline can leave the ask above the floor).
        log_us_keep[stalled] = _LOG_ZERO
        log_korea_keep[stalled] = _LOG_ZERO
        # Reservation points that already meet (the floor dropped at the change) settle in
        # the next month without a stalemate step.
        step[stalled & (talks.floor - talks.ceiling <= CROSSING_TOLERANCE_PP)] = 0.0
    return _Segment(
        floor=talks.floor,
        ceiling=talks.ceiling,
        us_excess=talks.ask - talks.floor,
        korea_shortfall=talks.ceiling - talks.offer,
        step=step,
        chase_step=step if not cal.deadline else np.zeros_like(step),
        log_us_keep=log_us_keep,
        log_korea_keep=log_korea_keep,
        us_rate=us_rate,
        korea_rate=korea_rate,
    )


def _geometric_sum(log_keep: FloatArray, rate: FloatArray, months: FloatArray) -> FloatArray:
    """``1 + r + ... + r^(m-1)`` for ``r = 1 - rate`` (``m`` when nothing is conceded)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(
            rate > 0.0, -np.expm1(months * log_keep) / np.where(rate > 0, rate, 1.0), months
        )
    return out


def _positions(
    seg: _Segment, months: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(ask, offer, floor, ceiling) after ``months`` months of the segment.

    Month by month: the floor falls and the ceiling rises by the step; each side concedes a
    share of its gap to its reservation point, ``e' = (1 - rate) e + chase_step``, hence
    ``e_m = (1 - rate)^m e_0 + chase_step (1 + ... + (1 - rate)^(m-1))``.
    """
    step = seg.step
    floor = seg.floor - step * months
    ceiling = seg.ceiling + step * months
    us_excess = np.exp(months * seg.log_us_keep) * seg.us_excess
    korea_shortfall = np.exp(months * seg.log_korea_keep) * seg.korea_shortfall
    chase = seg.chase_step
    if chase.any():
        us_excess += chase * _geometric_sum(seg.log_us_keep, seg.us_rate, months)
        korea_shortfall += chase * _geometric_sum(seg.log_korea_keep, seg.korea_rate, months)
    return floor + us_excess, ceiling - korea_shortfall, floor, ceiling


Positions = tuple[FloatArray, FloatArray]
"""(ask, offer) by trial."""


def _first_crossing(
    seg: _Segment, length: FloatArray, at_start: Positions, at_end: Positions
) -> tuple[FloatArray, Positions, Positions]:
    """The first month (1..length) of the segment where the paths meet, and the positions
    before and in it, for trials whose paths have met by ``length`` months (positions
    ``at_start`` and ``at_end``). The gap never grows within a segment (positions approach
    reservation points that approach each other), so bisection finds it."""
    lo = np.zeros(length.size)
    hi = length.copy()
    lo_ask, lo_offer = at_start[0].copy(), at_start[1].copy()
    hi_ask, hi_offer = at_end[0].copy(), at_end[1].copy()
    todo = np.flatnonzero(hi - lo > 1.0)
    while todo.size:
        mid = np.floor((lo[todo] + hi[todo]) / 2.0)
        ask, offer, _, _ = _positions(seg.take(todo), mid)
        met = ~_apart(ask, offer)
        up, down = todo[met], todo[~met]
        hi[up], hi_ask[up], hi_offer[up] = mid[met], ask[met], offer[met]
        lo[down], lo_ask[down], lo_offer[down] = mid[~met], ask[~met], offer[~met]
        todo = todo[hi[todo] - lo[todo] > 1.0]
    return hi, (lo_ask, lo_offer), (hi_ask, hi_offer)


def run_segment(
    talks: Talks,
    trials: BargainingInputs,
    cal: Calendar,
    boundary: FloatArray,
    settled: Settled,
) -> Talks:
    """Months ``month + 1 .. boundary - 1`` of every trial (none at all where that is empty):
    settles the trials whose paths cross, returns the others after month ``boundary - 1``
    whose boundary month is in the horizon."""
    length = boundary - 1.0 - talks.month
    busy = length > 0
    if not busy.any():
        return talks.keep(talks.month < cal.horizon)
    # Past the deadline with the deadline mechanism, positions sit on the reservation points:
    # those segments have a cheaper closed form (no exponentials, no bisection). Trials with no
    # month to run go with the others (zero months), which saves gathering the rest apart.
    on_points = np.zeros_like(busy)
    if cal.deadline:
        on_points = busy & (talks.month >= np.maximum(talks.due, talks.start + 1.0))
    moved: list[Talks] = []
    for group, solve in ((on_points, _stalemate_on_points), (~on_points, _general_segment)):
        if group.all():
            moved.append(solve(talks, length, trials, cal, settled))
        elif group.any():
            at = np.flatnonzero(group)
            moved.append(solve(talks.take(at), length.take(at), trials, cal, settled))
    out = moved[0]
    for more in moved[1:]:
        out = out.concat(more)
    return out


def _general_segment(
    part: Talks, months: FloatArray, trials: BargainingInputs, cal: Calendar, settled: Settled
) -> Talks:
    """:func:`run_segment` for any trials (``months`` may be 0: positions are kept)."""
    length = np.maximum(months, 0.0)
    seg = _segment(part, trials, cal)
    ask, offer, floor, ceiling = _positions(seg, length)
    idle = length == 0.0
    met = ~_apart(ask, offer)
    if idle.any():
        # Untouched, and left to the boundary month even where they already meet.
        ask, offer = np.where(idle, part.ask, ask), np.where(idle, part.offer, offer)
        floor, ceiling = np.where(idle, part.floor, floor), np.where(idle, part.ceiling, ceiling)
        met &= ~idle
    crossed = np.flatnonzero(met)
    if crossed.size:
        _settle_by_bisection(part, seg.take(crossed), crossed, length, (ask, offer), cal, settled)
    return _after(part, length, crossed, cal, ask, offer, floor, ceiling)


def _settle_by_bisection(
    part: Talks,
    seg: _Segment,
    at: TrialIds,
    months: FloatArray,
    end: Positions,
    cal: Calendar,
    settled: Settled,
) -> None:
    """Settle the trials ``at`` of ``part`` (their segment ``seg``), whose paths have met by
    ``months`` months (positions ``end``), in the month bisection finds."""
    month, before, now = _first_crossing(
        seg, months[at], (part.ask[at], part.offer[at]), (end[0][at], end[1][at])
    )
    settled.record(part.ids[at], part.month[at] + month, before, now, cal.change_at)


def _stalemate_on_points(
    part: Talks, months: FloatArray, trials: BargainingInputs, cal: Calendar, settled: Settled
) -> Talks:
    """:func:`run_segment` for stalemate months with the deadline mechanism: from the
    segment's first month on, positions are the reservation points, which close the gap by
    twice the step per month, so the crossing month is ``ceil(gap / 2 step)``. The same
    positions as :func:`_positions` gives, without its exponentials (``exp(m * _LOG_ZERO)`` is
    exactly 0 for m >= 1 and 1 for m = 0); a guess that rounding proves wrong is bisected."""
    lapsed = part.month + 1.0 > part.expiry
    step = trials.stalemate_step.take(part.ids) * np.where(lapsed, 2.0, 1.0)
    gap = part.floor - part.ceiling
    # Reservation points that already meet (the floor dropped at the change) settle in the
    # next month without a stalemate step.
    step[gap <= CROSSING_TOLERANCE_PP] = 0.0
    floor = part.floor - step * months
    ceiling = part.ceiling + step * months
    crossed = np.flatnonzero(~_apart(floor, ceiling))
    if crossed.size:
        step_x, length_x = step[crossed], months[crossed]
        with np.errstate(divide="ignore", invalid="ignore"):
            guess = np.ceil(gap[crossed] / (2.0 * step_x))
        # No step: positions stay where the first month puts them.
        guess = np.clip(np.where(step_x > 0.0, guess, 1.0), 1.0, length_x)
        floor_x, ceiling_x = part.floor[crossed], part.ceiling[crossed]
        before_ask = floor_x - step_x * (guess - 1.0)
        before_offer = ceiling_x + step_x * (guess - 1.0)
        first = guess == 1.0
        # Before the first month: the positions the segment started from.
        before_ask[first] = part.ask[crossed][first]
        before_offer[first] = part.offer[crossed][first]
        now_ask, now_offer = floor_x - step_x * guess, ceiling_x + step_x * guess
        good = (first | _apart(before_ask, before_offer)) & ~_apart(now_ask, now_offer)
        ok = np.flatnonzero(good)
        settled.record(
            part.ids[crossed[ok]],
            part.month[crossed[ok]] + guess[ok],
            (before_ask[ok], before_offer[ok]),
            (now_ask[ok], now_offer[ok]),
            cal.change_at,
        )
        if ok.size < crossed.size:
            wrong = crossed[~good]
            seg = _segment(part.take(wrong), trials, cal)
            _settle_by_bisection(part, seg, wrong, months, (floor, ceiling), cal, settled)
    return _after(part, months, crossed, cal, floor, ceiling, floor, ceiling)


def _after(
    part: Talks,
    months: FloatArray,
    crossed: TrialIds,
    cal: Calendar,
    ask: FloatArray,
    offer: FloatArray,
    floor: FloatArray,
    ceiling: FloatArray,
) -> Talks:
    """The trials of ``part`` still apart after ``months`` more months (positions given) with
    a boundary month inside the horizon to run."""
    month = part.month + months
    going = month < cal.horizon
    going[crossed] = False
    moved = replace(part, month=month, ask=ask, offer=offer, floor=floor, ceiling=ceiling)
    return moved.take(np.flatnonzero(going))


def general_month(
    talks: Talks,
    trials: BargainingInputs,
    cal: Calendar,
    settled: Settled,
    threat: BoolArray,
) -> Talks:
    """Month ``t = month + 1`` of every trial, by the equations of section 5 as written
    (concessions, deadline, change of administration, stalemate step, troop lever, crossing);
    returns the trials still apart after it. Steps that concern few trials (the change, the
    lever) are computed on those trials only."""
    ids = talks.ids
    t = talks.month + 1.0
    floor, ceiling = talks.floor, talks.ceiling  # replaced, never written in place
    ask, offer = talks.ask, talks.offer
    # 1. Concessions.
    ask_now = floor + (ask - floor) * (1.0 - trials.us_concession_rate.take(ids))
    offer_now = offer + (ceiling - offer) * trials.korea_concession_rate.take(ids)
    # 2. Final offers at the deadline.
    at_deadline = t >= talks.due
    if cal.deadline:
        ask_now = np.where(at_deadline, floor, ask_now)
        offer_now = np.where(at_deadline, ceiling, offer_now)
    # 3. Change of administration, for talks opened before it.
    if np.isfinite(cal.change_at) and trials.post_change_ask is not None:
        at = np.flatnonzero((t == cal.change_at) & (talks.start < cal.change_at))
        if at.size:
            assert trials.post_change_floor is not None
            who = ids.take(at)
            old_floor, old_ask = floor.take(at), ask_now.take(at)
            new_floor = np.minimum(old_floor, trials.post_change_floor.take(who))
            new_ask = np.minimum(old_ask, trials.post_change_ask.take(who))
            if trials.post_change_ratio is not None:
                ratio = trials.post_change_ratio.take(who)
                harder = ratio > 1.0
                shift = trials.shift.take(who)
                new_floor = np.where(harder, (old_floor + shift) * ratio - shift, new_floor)
                new_ask = np.where(harder, (old_ask + shift) * ratio - shift, new_ask)
            floor, ask_now = floor.copy(), ask_now.copy()
            floor[at], ask_now[at] = new_floor, new_ask
    # 4. Stalemate: past the deadline and still apart, the reservation points move.
    stuck = (t >= talks.due + 1.0) & _apart(ask_now, offer_now)
    if stuck.any():
        step = trials.stalemate_step.take(ids) * np.where(t > talks.expiry, 2.0, 1.0)
        floor = np.where(stuck, floor - step, floor)
        ceiling = np.where(stuck, ceiling + step, ceiling)
        if cal.deadline:
            follow = stuck & at_deadline
            ask_now = np.where(follow, floor, ask_now)
            offer_now = np.where(follow, ceiling, offer_now)
    # 5. Troop lever: the first month at the deadline with the sides apart.
    tried = talks.tried
    if cal.troop_lever:
        trying = at_deadline & ~tried & _apart(ask_now, offer_now)
        at = np.flatnonzero(trying)
        if at.size:
            tried = tried | trying
            who = ids.take(at)
            intensity = (
                trials.intensity.take(who)
                if t.take(at).max() <= cal.change_at
                else np.where(
                    t.take(at) <= cal.change_at,
                    trials.intensity.take(who),
                    trials.post_intensity.take(who),
                )
            )
            made = trials.u_troop.take(who) < trials.troop_threat_prob.take(who) * intensity
            made_at = at[made]
            threat[ids.take(made_at)] = True
            ceiling = ceiling.copy() if ceiling is talks.ceiling else ceiling
            lifted = ceiling.take(made_at) + trials.troop_threat_uplift.take(ids.take(made_at))
            ceiling[made_at] = lifted
            offer_now[made_at] = lifted
    # 6. Settlement where the paths cross.
    crossed = ~_apart(ask_now, offer_now)
    at = np.flatnonzero(crossed)
    if at.size:
        settled.record(
            ids.take(at),
            t.take(at),
            (ask.take(at), offer.take(at)),
            (ask_now.take(at), offer_now.take(at)),
            cal.change_at,
        )
    after = replace(
        talks, month=t, ask=ask_now, offer=offer_now, floor=floor, ceiling=ceiling, tried=tried
    )
    return after.keep(~crossed)
