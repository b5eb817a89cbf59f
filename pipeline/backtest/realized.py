"""Realized outcomes of every SMA negotiation, parsed from ``data/sma_negotiations.csv``.

The only source of what happened: the case files never carry outcomes.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from pipeline.spec.history import History, load_history

_DATE_RE = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
_NUMBER_RE = re.compile(r"^\s*~?\s*(-?\d+(?:\.\d+)?)")


def parse_date(text: str, *, latest: bool) -> date | None:
    """First ``YYYY[-MM[-DD]]`` in ``text``; a missing month or day is filled with the latest
    (or earliest) day it could be, so "2008-12 (day not found)" is 31 Dec 2008 when latest."""
    m = _DATE_RE.search(text or "")
    if m is None:
        return None
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else (12 if latest else 1)
    if m.group(3):
        day = int(m.group(3))
    else:
        day = calendar.monthrange(year, month)[1] if latest else 1
    return date(year, month, day)


def parse_number(text: str) -> float | None:
    """Leading number of a cell ("~7" -> 7.0, "6.8 (USD basis)" -> 6.8); None if none."""
    m = _NUMBER_RE.match(text or "")
    return float(m.group(1)) if m else None


def parse_first_year_pct(text: str) -> float | None:
    """First-year increase [%] from ``outcome_first_year_pct``.

    Where the cell lists several years ("0 (2020) / 13.9 (2021)": a lapse year frozen at the old
    level, then the negotiated year) the *last* one counts: it is the increase the new agreement
    set, which is what the model's ``increase_pct`` measures for a deal settled during a lapse.
    """
    if not text:
        return None
    return parse_number(text.split("/")[-1])


@dataclass(frozen=True)
class Realized:
    """What happened in one SMA negotiation, parsed from data/sma_negotiations.csv."""

    sma_number: int
    talks_start: date | None
    """First formal round (earliest day consistent with the cell)."""
    known_from: date | None
    """When the outcome was public: the agreement date, else the signing date, else entry into
    force (latest day consistent with the cell)."""
    increase_pct: float | None
    """First-year increase over the level replaced [%] (see :func:`parse_first_year_pct`)."""
    months_to_settlement: float | None
    """Months from the first formal round to the (tentative) agreement [months]."""
    term_years: float | None
    """Duration of the agreement [years]."""
    lapse: bool | None
    """The agreement was reached after the previous one expired (None: unknown)."""


def realized_outcomes(history: History | None = None) -> dict[int, Realized]:
    """Every SMA's outcome by number, from ``history.negotiations`` (data/sma_negotiations.csv).

    Lapse: for SMAs with a known agreement date, whether it falls after the 1 January following
    the previous SMA's last covered year (the model's definition: no agreement in force); for
    older ones, from the ``lapse_or_gap`` text ("none..." no, "not found" unknown, else yes).
    """
    history = history or load_history()
    rows = sorted(history.negotiations, key=lambda r: int(r["sma_number"]))
    out: dict[int, Realized] = {}
    previous_end: int | None = None
    for row in rows:
        number = int(row["sma_number"])
        agreed = parse_date(row["agreement_date"], latest=True)
        known_from = (
            agreed
            or parse_date(row["signing_date"], latest=True)
            or parse_date(row["entry_into_force"], latest=True)
        )
        lapse: bool | None
        gap_text = row["lapse_or_gap"].strip().lower()
        if agreed is not None and previous_end is not None:
            lapse = agreed >= date(previous_end + 1, 1, 1)
        elif gap_text.startswith("none"):
            lapse = False
        elif gap_text.startswith("not found") or not gap_text:
            lapse = None
        else:
            lapse = True
        out[number] = Realized(
            sma_number=number,
            talks_start=parse_date(row["negotiation_start"], latest=False),
            known_from=known_from,
            increase_pct=parse_first_year_pct(row["outcome_first_year_pct"]),
            months_to_settlement=parse_number(row["months_start_to_agreement"]),
            term_years=parse_number(row["duration_years"]),
            lapse=lapse,
        )
        years = re.findall(r"\d{4}", row["years_covered"])
        previous_end = int(years[-1]) if years else None
    return out


def known_by(realized: Mapping[int, Realized], day: date, before_sma: int) -> list[Realized]:
    """SMAs numbered below ``before_sma`` whose outcome was public by ``day``, in order."""
    return [
        r
        for n, r in sorted(realized.items())
        if n < before_sma and r.known_from is not None and r.known_from <= day
    ]
