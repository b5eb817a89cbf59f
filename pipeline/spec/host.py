"""The host nation's agreement in force and the US administration calendar, from configuration.

A scenario's ``host`` section names the host nation, its currency, the fiscal-year start month,
the expiry date of the agreement in force and a CSV of its levels by (fiscal) year; the
``us_administrations`` list gives the administrations by the date each took office. The loader
(:func:`pipeline.spec.scenario.load_scenario`) reads the CSV files with :func:`read_levels` and
:func:`read_macro` and puts their numbers into the section, so a validated scenario carries every
number the model uses (and its config hash changes when the data do).
"""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: ISO 4217 codes a host currency may have: the currencies of states that host US forces under
#: a cost-sharing arrangement, or might, plus the majors. A code outside this list is almost
#: always a typo (``KWR``, ``YEN``); add a line here for a real currency not yet listed.
CURRENCIES: Final[frozenset[str]] = frozenset(
    "AUD BHD BRL CAD CHF CNY CZK DKK EUR GBP HUF IDR ILS INR ISK JOD JPY KRW KWD MXN "
    "MYR NOK NZD OMR PHP PLN QAR RON SAR SEK SGD THB TRY TWD UAH USD ZAR".split()
)
_CODE = re.compile(r"^[A-Z]{3}$")
#: Rows of a levels file with this ``value_status`` (when the column exists) are not levels of
#: the agreement: Korea's MOFA projections and rule-only years, which the model derives.
NOT_LEVELS: Final[frozenset[str]] = frozenset({"projection", "rule_only", "approximate"})


class HostFileError(ValueError):
    """A host data file is invalid (the loader turns it into a ScenarioError)."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source, self.field, self.problem = source, field, problem
        super().__init__(f"{source}: {field}: {problem}")


def check_currency(code: str) -> str:
    """``code`` if it is a known ISO 4217 code, else ValueError saying what is allowed."""
    if not _CODE.match(code):
        raise ValueError(f"'{code}' is not an ISO 4217 code (three capital letters, e.g. JPY)")
    if code not in CURRENCIES:
        raise ValueError(
            f"unknown currency '{code}'; allowed (ISO 4217): {', '.join(sorted(CURRENCIES))}"
        )
    return code


def levels_column(currency: str) -> str:
    """Column of a levels file, and stem of the published money metrics: ``contribution_krw_bn``."""
    return f"contribution_{currency.lower()}_bn"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class HostConfig(_Frozen):
    """The host nation and the agreement in force (defaults: Korea and the 12th SMA)."""

    name: str = Field(default="South Korea", min_length=1)
    currency: str = "KRW"
    """ISO 4217 code of the currency the agreement is denominated in (see :data:`CURRENCIES`)."""
    agreement_name: str = "12th SMA"
    """How the agreement in force is called (labels only)."""
    levels_file: str = "../data/sma_contributions.csv"
    """CSV of levels by fiscal year (``year``, ``contribution_<currency>_bn``), relative to the
    YAML file that names it."""
    macro_file: str | None = "../data/korea_macro.csv"
    """CSV of published CPI and defense-budget growth by year (``year``, ``cpi_pct``,
    ``defense_budget_growth_pct``); none: every year is sampled."""
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    """First month of the host's fiscal year; model years are fiscal years (FY y starts in
    this month of calendar year y)."""
    agreement_expiry_date: date = date(2030, 12, 31)
    """Last day covered by the agreement in force (the last day of a fiscal year)."""
    levels: dict[int, float] = {}
    """Levels by fiscal year, read from ``levels_file`` by the loader [currency bn]."""
    cpi_pct: dict[int, float] = {}
    """Published CPI by year, read from ``macro_file`` [%]."""
    defense_budget_growth_pct: dict[int, float] = {}
    """Published defense-budget growth by year, read from ``macro_file`` [%]."""

    @field_validator("currency")
    @classmethod
    def _currency(cls, code: str) -> str:
        return check_currency(code)

    def fiscal_year_start(self, year: int) -> date:
        """First day of fiscal year ``year``."""
        return date(year, self.fiscal_year_start_month, 1)

    def fiscal_year_of(self, day: date) -> int:
        """The fiscal year a date falls in."""
        return day.year if day.month >= self.fiscal_year_start_month else day.year - 1

    @property
    def expiry_fiscal_year(self) -> int:
        """Last fiscal year covered by the agreement in force."""
        return self.fiscal_year_of(self.agreement_expiry_date)

    def check_expiry(self, calendar_base_year: int) -> None:
        """ValueError unless the expiry ends a fiscal year not before ``calendar_base_year``."""
        end = self.agreement_expiry_date
        if (end + timedelta(days=1)).day != 1 or (
            end + timedelta(days=1)
        ).month != self.fiscal_year_start_month:
            last = self.fiscal_year_start(2001) - timedelta(days=1)
            raise ValueError(
                f"{end.isoformat()} is not the last day of a fiscal year (fiscal years start in "
                f"month {self.fiscal_year_start_month}: use a {last.strftime('%m-%d')} date)"
            )
        if self.expiry_fiscal_year < calendar_base_year:
            raise ValueError(
                f"{end.isoformat()} is before the base year (fiscal year {calendar_base_year} "
                f"starts {self.fiscal_year_start(calendar_base_year).isoformat()}): the agreement "
                "in force must cover at least the first year of the path"
            )

    def check_levels(self, calendar_base_year: int) -> None:
        """ValueError unless the levels run without a gap from the year before the base year to
        the last year given (up to the expiry)."""
        if not self.levels:
            return  # a scenario built in code without the loader: the model reads data/
        last = max((y for y in self.levels if y <= self.expiry_fiscal_year), default=0)
        last = max(last, calendar_base_year - 1)
        missing = [y for y in range(calendar_base_year - 1, last + 1) if y not in self.levels]
        if missing:
            raise ValueError(
                f"no level for {', '.join(map(str, missing))}: the levels must give every year "
                f"from {calendar_base_year - 1} (the year before calendar_base_year) to the last "
                "year given; later years of the agreement escalate by its rule"
            )


class Administration(_Frozen):
    """One US administration: who, and from when."""

    name: str = Field(min_length=1)
    took_office: date


#: The US administrations since the first SMA backtest case (base.yaml states the same list).
DEFAULT_ADMINISTRATIONS: Final[tuple[Administration, ...]] = (
    Administration(name="Bush", took_office=date(2001, 1, 20)),
    Administration(name="Obama", took_office=date(2009, 1, 20)),
    Administration(name="Trump", took_office=date(2017, 1, 20)),
    Administration(name="Biden", took_office=date(2021, 1, 20)),
    Administration(name="Trump", took_office=date(2025, 1, 20)),
    Administration(name="next", took_office=date(2029, 1, 20)),
)


def check_calendar(administrations: tuple[Administration, ...]) -> None:
    """ValueError unless each administration takes office after the one before."""
    for i in range(1, len(administrations)):
        before, this = administrations[i - 1], administrations[i]
        if this.took_office <= before.took_office:
            raise ValueError(
                f"entry {i} ({this.name}, {this.took_office.isoformat()}) is not after entry "
                f"{i - 1} ({before.name}, {before.took_office.isoformat()}): list the "
                "administrations in the order they took office"
            )


def next_administration(
    administrations: tuple[Administration, ...], period_start: date, period_end: date
) -> Administration | None:
    """The first administration taking office in ``[period_start, period_end)``: the change of
    administration the model simulates (at most one per run; later ones are not modelled)."""
    for admin in administrations:
        if period_start <= admin.took_office < period_end:
            return admin
    return None


# --------------------------------------------------------------------------- data files


def _rows(path: Path, shown: str) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except FileNotFoundError:
        raise HostFileError(shown, "", "file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HostFileError(shown, "", f"cannot be read ({exc})") from None


def _number(text: str | None) -> float | None:
    text = (text or "").strip().lstrip("~").replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def _year(row: dict[str, str], shown: str, line: int) -> int:
    text = (row.get("year") or "").strip()
    if not text.isdigit():
        raise HostFileError(shown, "year", f"line {line}: '{text}' is not a year")
    return int(text)


def read_levels(path: Path, currency: str, shown: str) -> dict[int, float]:
    """Levels by year from a levels CSV: column ``year`` and ``contribution_<ccy>_bn``; empty
    cells and rows whose ``value_status`` is in :data:`NOT_LEVELS` are not levels."""
    column = levels_column(currency)
    header, rows = _rows(path, shown)
    for needed in ("year", column):
        if needed not in header:
            raise HostFileError(
                shown, needed, f"missing column (has: {', '.join(header) or 'none'})"
            )
    levels: dict[int, float] = {}
    for line, row in enumerate(rows, start=2):
        year = _year(row, shown, line)
        value = _number(row[column])
        if value is None or (row.get("value_status") or "").strip() in NOT_LEVELS:
            continue
        if value <= 0:
            raise HostFileError(shown, column, f"line {line}: level {value} must be positive")
        if year in levels:
            raise HostFileError(shown, "year", f"line {line}: {year} is given twice")
        levels[year] = value
    if not levels:
        raise HostFileError(shown, column, "no levels in the file")
    return levels


def read_macro(path: Path, shown: str) -> tuple[dict[int, float], dict[int, float]]:
    """(CPI %, defense-budget growth %) by year from a macro CSV (empty cells: not published)."""
    header, rows = _rows(path, shown)
    for needed in ("year", "cpi_pct", "defense_budget_growth_pct"):
        if needed not in header:
            raise HostFileError(
                shown, needed, f"missing column (has: {', '.join(header) or 'none'})"
            )
    cpi: dict[int, float] = {}
    defense: dict[int, float] = {}
    for line, row in enumerate(rows, start=2):
        year = _year(row, shown, line)
        if (c := _number(row["cpi_pct"])) is not None:
            cpi[year] = c
        if (g := _number(row["defense_budget_growth_pct"])) is not None:
            defense[year] = g
    return cpi, defense
