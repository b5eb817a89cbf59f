"""The non-random settings of one simulation, and how a scenario and an as-of date give them.

:class:`ModelSettings` is what the core (:mod:`pipeline.model.simulate`) reads besides the sampled
inputs; :func:`model_settings` resolves a scenario, an as-of date and the published history into
it, on the model calendar of :func:`month_index`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pipeline.spec.history import History, load_history
from pipeline.spec.scenario import Scenario


@dataclass(frozen=True)
class ModelSettings:
    """The non-random settings of one simulation, on the model calendar (months from the first
    month of the host's fiscal year ``calendar_base_year``; month m lies in fiscal year
    ``calendar_base_year + m // 12``: for a calendar-year host, month 0 is January)."""

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
    """Known contributions of the agreement in force by year, incl. the year before the path
    [host currency bn: named for the default host, Korea; ``currency`` says which]."""
    known_cpi_pct: tuple[tuple[int, float], ...]
    """Published host CPI by year [%]."""
    known_defense_budget_growth_pct: tuple[tuple[int, float], ...]
    """Published host defense budget growth by year [%]."""
    escalation_cap_pct: float = 5.0
    cpi_lag_years: int = 2
    furlough_after_lapse_months: float = 3.0
    reopening: bool = True
    package_deal: bool = True
    troop_lever: bool = True
    administration_change: bool = True
    deadline: bool = True
    lapse_furlough: bool = True
    currency: str = "KRW"
    """ISO 4217 code of the host currency (names the published money metrics)."""
    fiscal_year_start_month: int = 1
    """Calendar month in which model month 0 (and every model year) starts."""
    cuts: bool = True
    stopgap: bool = True
    renegotiation: bool = True
    expiry_pressure: bool = True
    successor_either_way: bool = True

    @property
    def horizon_month(self) -> int:
        """End of the horizon (exclusive month index)."""
        return (self.horizon_year - self.calendar_base_year + 1) * 12

    @property
    def path_years(self) -> tuple[int, ...]:
        return tuple(range(self.calendar_base_year, self.horizon_year + 1))


def month_index(day: date, base_year: int, fiscal_year_start_month: int = 1) -> int:
    """Model month of a calendar date (month 0 = the first month of fiscal year ``base_year``,
    which starts in ``fiscal_year_start_month`` of calendar year ``base_year``)."""
    return (day.year - base_year) * 12 + day.month - fiscal_year_start_month


def model_settings(
    scenario: Scenario,
    as_of: date,
    *,
    talks_open_on: date | None = None,
    history: History | None = None,
) -> ModelSettings:
    """The core's settings for a scenario as of a date.

    The agreement in force, its calendar and the published macro series come from the
    scenario's ``host`` section (read from its files by the loader); ``history`` (the backtest's
    data folder) replaces the levels and macro series, and a scenario built in code without
    them reads data/ (Korea).
    """
    m, host = scenario.model, scenario.host
    base, fy = m.calendar_base_year, host.fiscal_year_start_month
    levels, cpi, defense = host.levels, host.cpi_pct, host.defense_budget_growth_pct
    if history is not None or not levels:
        history = history or load_history()
        levels = dict(history.contribution_krw_bn)
        cpi, defense = dict(history.cpi_pct), dict(history.defense_budget_growth_pct)
    change = scenario.administration_change()
    expiry_year = host.expiry_fiscal_year
    # Published figures of a year are known once the year is over (CPI), or once budgeted.
    as_of_year = host.fiscal_year_of(as_of)
    mech = m.mechanisms
    return ModelSettings(
        calendar_base_year=base,
        horizon_year=m.horizon_year,
        start_month=max(month_index(as_of, base, fy), 0),
        expiry_month=(expiry_year - base + 1) * 12,
        administration_change_month=(
            month_index(change.took_office, base, fy) if change is not None else None
        ),
        talks_open_month=month_index(talks_open_on, base, fy) if talks_open_on else None,
        in_force_levels_krw_bn=tuple(
            (y, v) for y, v in sorted(levels.items()) if base - 1 <= y <= expiry_year
        ),
        known_cpi_pct=tuple((y, v) for y, v in sorted(cpi.items()) if y < as_of_year),
        known_defense_budget_growth_pct=tuple(
            (y, v) for y, v in sorted(defense.items()) if y <= as_of_year
        ),
        currency=host.currency,
        fiscal_year_start_month=fy,
        escalation_cap_pct=m.escalation_cap_pct,
        cpi_lag_years=m.cpi_lag_years,
        furlough_after_lapse_months=m.furlough_after_lapse_months,
        reopening=mech.reopening,
        package_deal=mech.package_deal,
        troop_lever=mech.troop_lever,
        administration_change=mech.administration_change,
        deadline=mech.deadline,
        lapse_furlough=mech.lapse_furlough,
        cuts=mech.cuts,
        stopgap=mech.stopgap,
        renegotiation=mech.renegotiation,
        expiry_pressure=mech.expiry_pressure,
        successor_either_way=mech.successor_either_way,
    )
