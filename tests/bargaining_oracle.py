"""The month-by-month bargaining of docs/model.md section 5, stepped month by month: the test
oracle of the phase-by-phase core (pipeline.model.bargaining).

Deliberately plain: every trial in talks runs every month, each equation is written as in the
docs, on whole arrays; no phases, no closed forms, no bookkeeping. Slow, and easy to check
against the docs line by line.
"""

from __future__ import annotations

import numpy as np

from pipeline.common import BoolArray, FloatArray
from pipeline.model.bargaining import CROSSING_TOLERANCE_PP, BargainingInputs
from pipeline.model.settings import ModelSettings

TOL = CROSSING_TOLERANCE_PP
"""Apart: the ask exceeds the offer by more than this; else the paths have met."""


def bargain_monthly(
    settings: ModelSettings, trials: BargainingInputs
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Settlement time, first-year increase and troop threat per trial (NaN: not settled)."""
    s, x = settings, trials
    n = x.start.shape[0]
    horizon = s.horizon_month
    change = s.administration_change_month if s.administration_change else None
    change_at = float(change) if change is not None else np.inf
    settle = np.full(n, np.nan)
    increase = np.full(n, np.nan)
    threat = np.zeros(n, dtype=bool)
    tried = np.zeros(n, dtype=bool)
    ask, offer = x.us_ask.copy(), x.korea_offer.copy()
    floor, ceiling = x.us_floor.copy(), x.korea_ceiling.copy()
    opens = (x.start < horizon) & (x.start == np.floor(x.start))
    if not opens.any():
        return settle, increase, threat
    for t in range(int(x.start[opens].min()) + 1, horizon + 1):
        live = opens & (x.start < t) & np.isnan(settle)
        elapsed = t - x.start
        # 1. Concessions.
        ask_now = floor + (ask - floor) * (1.0 - x.us_concession_rate)
        offer_now = offer + (ceiling - offer) * x.korea_concession_rate
        # 2. Deadline: final offers.
        at_deadline = elapsed >= x.negotiation_length_months
        if s.deadline:
            ask_now = np.where(at_deadline, floor, ask_now)
            offer_now = np.where(at_deadline, ceiling, offer_now)
        # 3. Change of administration, for talks opened under Trump.
        if t == change_at and x.post_change_ask is not None:
            assert x.post_change_floor is not None
            under_trump = x.start < change_at
            ratio = x.post_change_ratio if x.post_change_ratio is not None else np.ones(n)
            harder = ratio > 1.0
            new_floor = np.where(
                harder, (floor + x.shift) * ratio - x.shift, np.minimum(floor, x.post_change_floor)
            )
            new_ask = np.where(
                harder,
                (ask_now + x.shift) * ratio - x.shift,
                np.minimum(ask_now, x.post_change_ask),
            )
            floor = np.where(under_trump, new_floor, floor)
            ask_now = np.where(under_trump, new_ask, ask_now)
        # 4. Stalemate: from the month after the deadline, still apart.
        stuck = (elapsed - 1.0 >= x.negotiation_length_months) & (ask_now - offer_now > TOL)
        step = x.stalemate_step * np.where(t > x.expiry, 2.0, 1.0)
        floor = np.where(stuck, floor - step, floor)
        ceiling = np.where(stuck, ceiling + step, ceiling)
        if s.deadline:
            ask_now = np.where(stuck & at_deadline, floor, ask_now)
            offer_now = np.where(stuck & at_deadline, ceiling, offer_now)
        # 5. Troop lever: the first month at the deadline with the sides apart.
        if s.troop_lever:
            trying = live & at_deadline & ~tried & (ask_now - offer_now > TOL)
            tried |= trying
            now = x.intensity if t <= change_at else x.post_intensity
            made = trying & (x.u_troop < x.troop_threat_prob * now)
            threat |= made
            ceiling = np.where(made, ceiling + x.troop_threat_uplift, ceiling)
            offer_now = np.where(made, ceiling, offer_now)
        # 6. Settlement where the paths cross, interpolated within the month.
        crossed = live & (ask_now - offer_now <= TOL)
        gap_before = ask - offer
        closing = gap_before - (ask_now - offer_now)
        frac = np.clip(gap_before / np.where(closing > 0, closing, 1.0), 0.0, 1.0)
        frac = np.where(gap_before <= TOL, 0.0, frac)  # met at the month's start
        increase = np.where(crossed, ask + frac * (ask_now - ask), increase)
        when = t - 1.0 + frac
        if t == change_at:
            when = np.maximum(when, change_at)
        settle = np.where(crossed, when, settle)
        # Trials not yet open keep their opening positions; settled ones are never read again.
        ask = np.where(live, ask_now, ask)
        offer = np.where(live, offer_now, offer)
        floor = np.where(live, floor, x.us_floor)
        ceiling = np.where(live, ceiling, x.korea_ceiling)
    return settle, increase, threat
