"""The state of the bargaining loop of :mod:`pipeline.model.bargaining`, and how it starts.

The loop's inputs per trial (:class:`BargainingInputs`), its calendar (:class:`MonthRules`),
the start-ordered :class:`Window` of the trials in talks, the :class:`PastDeadlineGroup` and the
recorded :class:`Settlements`, bundled in :class:`Bargaining`; :func:`start_bargaining` builds
them for one block. See :mod:`pipeline.model.bargaining` for how the loop uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.common import BoolArray, FloatArray
from pipeline.model.settings import ModelSettings

TrialIds = npt.NDArray[np.intp]
"""Trial ids (indices into the block), or indices into the window or group arrays."""


@dataclass(frozen=True)
class BargainingInputs:
    """What the bargaining of each trial starts from; every array has shape (n,), by trial."""

    start: FloatArray
    """Month talks open (the first month bargained is ``start + 1``)."""
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
class MonthRules:
    """The non-random calendar and switches of the loop."""

    expiry: int
    change: int | None
    """Month of the change of administration, if the mechanism is on and it is in the horizon."""
    change_at: float
    deadline: bool
    troop_lever: bool
    fast: bool
    """Past-deadline trials may leave the window for their group (see
    :mod:`pipeline.model.bargaining`): the deadline is on and every position, reservation point
    and step is finite, no ceiling is -0.0 and every deadline is at least a month away."""
    signed_zero: bool
    """A ceiling of -0.0 occurs: stalemate months add 0.0 to every ceiling, as the equations do."""
    general_months: frozenset[int]
    """Months every trial runs the general month (the change of administration and the next)."""

    def stalemate_factor(self, t: int) -> npt.NDArray[np.float64]:
        """The stalemate step doubles once no agreement is in force (a 0-d array)."""
        return np.where(t > self.expiry, 2.0, 1.0)


@dataclass
class Window:
    """The bargaining state of every trial that opens, in start order; ``[lo, hi)`` is in talks.

    Arrays have room for ``2 * size`` slots: the sorted trials sit at ``[size, 2 size)``, the
    free space in front takes the past-deadline group back for the general months. Positions
    have a next-month twin that the month writes into, then swaps with.
    """

    ids: TrialIds
    ask: FloatArray
    ask_next: FloatArray
    offer: FloatArray
    offer_next: FloatArray
    floor: FloatArray
    ceiling: FloatArray
    us_keep_share: FloatArray
    """1 - US concession rate: the share of the gap above the floor the US keeps."""
    korea_rate: FloatArray
    due: FloatArray
    """First month at the deadline (``start + ceil(D)``; -inf in the group, inf when dead)."""
    stall_step: FloatArray
    tried: BoolArray
    """The troop lever has been tried (it is tried once, in the first month at the deadline)."""
    alive: BoolArray
    scratch: FloatArray
    """Work space of the month's arithmetic (as are the three masks below)."""
    at_deadline: BoolArray
    past_deadline: BoolArray
    apart: BoolArray
    opened_by: npt.NDArray[np.int64]
    """``opened_by[j]``: number of trials opened by month ``first + j``."""
    first: int
    """The earliest start month (the loop begins with month ``first + 1``)."""
    lo: int
    hi: int
    n_alive: int = 0
    """Live (unsettled, not in the group) trials in ``[lo, hi)``."""

    @property
    def size(self) -> int:
        """Number of trials that open (the window arrays have twice as many slots)."""
        return self.ids.size // 2

    @property
    def span(self) -> slice:
        """The slots of the trials in talks."""
        return slice(self.lo, self.hi)


@dataclass
class PastDeadlineGroup:
    """Trials past their deadline in the fast months: ask = floor, offer = ceiling."""

    ids: TrialIds
    floor: FloatArray
    floor_next: FloatArray
    ceiling: FloatArray
    ceiling_next: FloatArray
    step: FloatArray
    scratch: FloatArray
    crossed: BoolArray
    n: int = 0
    n_alive: int = 0

    def append(
        self, ids: TrialIds, floor: FloatArray, ceiling: FloatArray, step: FloatArray
    ) -> None:
        """Add trials at the end of the group."""
        end = self.n + ids.size
        self.ids[self.n : end] = ids
        self.floor[self.n : end] = floor
        self.ceiling[self.n : end] = ceiling
        self.step[self.n : end] = step
        self.n = end
        self.n_alive += ids.size


@dataclass
class Settlements:
    """Settled trials: id, month index ``t - 1`` and the positions before and in the month."""

    ids: TrialIds
    month: FloatArray
    positions: FloatArray
    """(4, size): ask and offer before, ask and offer in the month."""
    n: int = 0

    def record(
        self, t: int, idx: TrialIds, ids: TrialIds, ask_before: FloatArray,
        offer_before: FloatArray, ask_now: FloatArray, offer_now: FloatArray,
    ) -> None:  # fmt: skip
        """Record the trials at ``idx`` of the given arrays as settled in month ``t``."""
        end = self.n + idx.size
        np.take(ids, idx, out=self.ids[self.n : end])
        self.month[self.n : end] = t - 1
        arrays = (ask_before, offer_before, ask_now, offer_now)
        for row, arr in zip(self.positions, arrays, strict=True):
            np.take(arr, idx, out=row[self.n : end])
        self.n = end


@dataclass
class Bargaining:
    """Everything the loop reads and mutates for one block."""

    rules: MonthRules
    trials: BargainingInputs
    window: Window
    group: PastDeadlineGroup
    settlements: Settlements
    threat: BoolArray
    """Out: the US made a troop threat, by trial."""


def start_bargaining(
    settings: ModelSettings, trials: BargainingInputs, threat: BoolArray
) -> Bargaining:
    """The window of the trials opening in a simulated month, and the loop's rules."""
    start = trials.start
    horizon = settings.horizon_month
    first = int(np.min(start))
    # Trials that open in a simulated month (start == t - 1 for some t = first+1 .. horizon),
    # in order of their start month.
    opening = np.flatnonzero((start < horizon) & (start == np.floor(start)))
    span = horizon - first
    key = (start[opening] - first).astype(np.int16 if span < 2**15 else np.int64)
    order = opening[np.argsort(key, kind="stable")]
    window = _fill_window(trials, order, np.cumsum(np.bincount(key, minlength=span)), first)
    size = order.size
    group = PastDeadlineGroup(
        ids=np.empty(size, dtype=np.intp),
        floor=np.empty(size),
        floor_next=np.empty(size),
        ceiling=np.empty(size),
        ceiling_next=np.empty(size),
        step=np.empty(size),
        scratch=np.empty(size),
        crossed=np.empty(size, dtype=bool),
    )
    settlements = Settlements(np.empty(size, dtype=np.intp), np.empty(size), np.empty((4, size)))
    return Bargaining(
        _month_rules(settings, window, start[order]), trials, window, group, settlements, threat
    )


def _fill_window(
    trials: BargainingInputs, order: TrialIds, opened_by: npt.NDArray[np.int64], first: int
) -> Window:
    """The window arrays of the trials in ``order``, sitting at ``[size, 2 size)``."""
    size = order.size

    def sorted_copy(values: npt.NDArray[Any], dtype: Any = np.float64) -> npt.NDArray[Any]:
        out = np.empty(2 * size, dtype=dtype)
        np.take(values, order, out=out[size:])
        return out

    ids = np.empty(2 * size, dtype=np.intp)
    ids[size:] = order
    ask = sorted_copy(trials.us_ask)
    ask_next = np.empty_like(ask)
    ask_next[size:] = ask[size:]
    offer = sorted_copy(trials.korea_offer)
    offer_next = np.empty_like(offer)
    offer_next[size:] = offer[size:]
    keep_share = sorted_copy(trials.us_concession_rate)
    np.subtract(1.0, keep_share[size:], out=keep_share[size:])
    # "At the deadline" (t - start >= D) is exactly t >= start + ceil(D): t - start is a whole
    # number of months.
    due = sorted_copy(trials.negotiation_length_months)
    np.ceil(due[size:], out=due[size:])
    due[size:] += trials.start[order]
    alive = np.zeros(2 * size, dtype=bool)
    alive[size:] = True
    return Window(
        ids=ids,
        ask=ask,
        ask_next=ask_next,
        offer=offer,
        offer_next=offer_next,
        floor=sorted_copy(trials.us_floor),
        ceiling=sorted_copy(trials.korea_ceiling),
        us_keep_share=keep_share,
        korea_rate=sorted_copy(trials.korea_concession_rate),
        due=due,
        stall_step=sorted_copy(trials.stalemate_step),
        tried=np.zeros(2 * size, dtype=bool),
        alive=alive,
        scratch=np.empty(2 * size),
        at_deadline=np.empty(2 * size, dtype=bool),
        past_deadline=np.empty(2 * size, dtype=bool),
        apart=np.empty(2 * size, dtype=bool),
        opened_by=opened_by,
        first=first,
        lo=size,
        hi=size,
    )


def _month_rules(settings: ModelSettings, window: Window, start_sorted: FloatArray) -> MonthRules:
    """The loop's calendar, and whether the fast past-deadline months apply to this block."""
    size = window.size
    change = settings.administration_change_month if settings.administration_change else None
    ceil = window.ceiling
    # Adding a zero step turns a ceiling of -0.0 into +0.0; where that can happen, do it on
    # every open trial, as the equations do (never with real inputs: only a -0.0 ceiling).
    signed_zero = bool(np.any(np.signbit(ceil) & (ceil == 0.0)))
    check = window.ask[size:] + window.offer[size:]
    check += window.floor[size:]
    check += ceil[size:]
    check += window.stall_step[size:]
    # Every deadline at least a month after the start: a trial reaching its deadline is not
    # yet past it (due - start = ceil(D) >= 1).
    check += np.where(window.due[size:] - start_sorted >= 1.0, 0.0, np.nan)
    return MonthRules(
        expiry=settings.expiry_month,
        change=change,
        change_at=float(change) if change is not None else np.inf,
        deadline=settings.deadline,
        troop_lever=settings.troop_lever,
        fast=settings.deadline and not signed_zero and bool(np.isfinite(check).all()),
        signed_zero=signed_zero,
        general_months=frozenset({change, change + 1} if change is not None else ()),
    )
