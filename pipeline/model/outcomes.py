"""Typed containers passed between stages (a leaf module: imports nothing from pipeline).

Every array has one entry per simulated trial, in trial order. Units are in the names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

from pipeline.common import BoolArray, FloatArray, IntArray

#: Escalation rules after the first year of a new agreement, by code stored in
#: ``Outcomes.escalation_rule`` (-1 where no agreement was reached in the horizon).
ESCALATION_RULES: Final[tuple[str, ...]] = ("cpi_capped", "defense_budget_growth", "fixed")

#: Per-trial scalar outcome fields that are yes/no events (summarised as probabilities).
BOOLEAN_OUTCOMES: Final[tuple[str, ...]] = (
    "reopened",
    "settled_by_horizon",
    "lapse",
    "furlough",
    "troop_threat",
    "package_deal",
    "stopgap",
    "renegotiated",
)

#: Per-trial scalar outcome fields that are amounts or durations (summarised by quantiles).
NUMERIC_OUTCOMES: Final[tuple[str, ...]] = (
    "talks_start_month",
    "months_to_settlement",
    "lapse_months",
    "first_year",
    "first_year_krw_bn",
    "first_year_usd_m",
    "increase_pct",
    "term_years",
    "stopgap_months",
    "stopgap_first_year",
    "stopgap_level_krw_bn",
    "renewal_first_year",
    "renewal_increase_pct",
)


@dataclass(frozen=True, eq=False)
class Outcomes:
    """Per-trial outcomes of the negotiation model for one block of trials.

    Months are counted on the model calendar: month 0 is the first month of the host's fiscal
    year ``calendar_base_year`` (month ``fiscal_year_start_month`` of that calendar year:
    January for Korea) and month ``m`` is in fiscal year ``calendar_base_year + m // 12``;
    the model's years are fiscal years (calendar years for Korea). Fields that only
    exist once an agreement is reached are NaN (or -1 for codes) in trials where none is
    reached within the horizon; ``settled_by_horizon`` is the mask.
    """

    calendar_base_year: int
    """Fiscal year of model month 0, named by the calendar year it starts in [year]."""
    path_years: tuple[int, ...]
    """(Fiscal) years of the columns of the contribution paths [year]."""
    reopened: BoolArray
    """Talks opened early under US pressure, before the regular successor talks."""
    talks_start_month: FloatArray
    """Model month in which cost-sharing talks open [month index]."""
    months_to_settlement: FloatArray
    """Months from the opening of talks to agreement; censored at the horizon when unsettled [months]."""
    settled_by_horizon: BoolArray
    """An agreement was reached before the end of the horizon."""
    settlement_month: FloatArray
    """Model month (fractional) of agreement; NaN if unsettled [month index]."""
    lapse: BoolArray
    """At some point within the horizon no agreement was in force."""
    lapse_months: FloatArray
    """Months without an agreement in force within the horizon [months]."""
    furlough: BoolArray
    """Korean USFK workers were furloughed during a lapse."""
    troop_threat: BoolArray
    """The US made a troop-posture threat during stalled talks."""
    package_deal: BoolArray
    """Part of the US demand was met outside the SMA (trade, weapons purchases, investment)."""
    first_year: FloatArray
    """First (fiscal) year of the new agreement; NaN if unsettled [year]."""
    first_year_krw_bn: FloatArray
    """Korea's contribution in the new agreement's first year [KRW bn]."""
    first_year_usd_m: FloatArray
    """The same at the trial's sampled exchange rate [USD m]."""
    increase_pct: FloatArray
    """First-year increase over the level the new agreement replaces [%]."""
    term_years: FloatArray
    """Term of the new agreement [years]; NaN if unsettled."""
    escalation_rule: IntArray
    """Code of the escalation rule after year one (index into ESCALATION_RULES; -1 if unsettled)."""
    stopgap: BoolArray
    """Talks still open at expiry agreed a stop-gap extension before the new agreement."""
    stopgap_months: FloatArray
    """Length of the stop-gap extension (0 without one) [months]."""
    stopgap_first_year: FloatArray
    """First (fiscal) year of the stop-gap extension; NaN without one [year]."""
    stopgap_level_krw_bn: FloatArray
    """Korea's contribution under the stop-gap extension; NaN without one [KRW bn]."""
    renegotiated: BoolArray
    """The new agreement ended inside the horizon and its successor was negotiated."""
    renewal_first_year: FloatArray
    """First (fiscal) year of the first renewal agreement; NaN if none settled [year]."""
    renewal_increase_pct: FloatArray
    """First-year increase of the first renewal over the level it replaces; NaN if none [%]."""
    contribution_krw_bn: FloatArray
    """Korea's contribution per (fiscal) year, shape (n_trials, len(path_years)) [KRW bn]."""
    contribution_usd_m: FloatArray
    """The same at the trial's sampled exchange rate [USD m]."""
    currency: str = "KRW"
    """ISO 4217 code of the host currency: the unit of the ``_krw_bn`` fields (named for the
    default host); the published metric names use it (``first_year_jpy_bn``)."""
    fiscal_year_start_month: int = 1
    """Calendar month of model month 0 (and of every model year's start) [month 1-12]."""

    @property
    def n_trials(self) -> int:
        return int(self.reopened.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """All per-trial arrays by field name (contribution paths are 2-D)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }

    def take(self, index: npt.NDArray[np.intp] | BoolArray) -> Outcomes:
        """A subset of trials (by integer index or boolean mask), as a new Outcomes."""
        kwargs: dict[str, object] = {
            "calendar_base_year": self.calendar_base_year,
            "path_years": self.path_years,
            "currency": self.currency,
            "fiscal_year_start_month": self.fiscal_year_start_month,
        }
        kwargs.update({name: arr[index] for name, arr in self.arrays().items()})
        return Outcomes(**kwargs)  # type: ignore[arg-type]

    @staticmethod
    def concatenate(parts: list[Outcomes]) -> Outcomes:
        """Join blocks of trials in the given order."""
        if not parts:
            raise ValueError("no blocks to concatenate")
        first = parts[0]
        kwargs: dict[str, object] = {
            "calendar_base_year": first.calendar_base_year,
            "path_years": first.path_years,
            "currency": first.currency,
            "fiscal_year_start_month": first.fiscal_year_start_month,
        }
        for name in first.arrays():
            kwargs[name] = np.concatenate([getattr(p, name) for p in parts], axis=0)
        return Outcomes(**kwargs)  # type: ignore[arg-type]
