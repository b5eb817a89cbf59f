"""The answer first: one sentence per scenario, from the published summary alone.

When an agreement most likely comes (with the share of trials agreeing in each year and of
those agreeing in none), its first year, the first-year increase and amount in the host
currency and in USD (median, p10 to p90), and the main risks (lapse, furlough, no deal by the
horizon). Pure functions of a statistic lookup, so the report and tests use the same words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Answer", "Lookup", "answer", "answer_text"]

#: ``lookup(metric, statistic)`` -> the summary value, or None when not published.
Lookup = Callable[[str, str], float | None]

#: Year shares below this are left out of the sentence (they are in the timing table).
_SHOWN_SHARE = 0.01


@dataclass(frozen=True)
class Answer:
    """The numbers of one scenario's sentence (None where the summary has no value)."""

    scenario: str
    likeliest_year: int | None
    likeliest_share: float | None
    year_shares: list[tuple[int, float]]
    no_deal: float | None
    horizon: int | None
    first_year: int | None
    increase: tuple[float | None, float | None, float | None]
    money: tuple[float | None, float | None, float | None]
    currency: str
    usd_bn: tuple[float | None, float | None, float | None]
    lapse: float | None
    furlough: float | None


def _range(lookup: Lookup, metric: str, scale: float = 1.0) -> tuple[float | None, ...]:
    values = (lookup(metric, k) for k in ("p10", "p50", "p90"))
    return tuple(None if v is None or math.isnan(v) else v * scale for v in values)


def answer(
    scenario: str, lookup: Lookup, years: Sequence[int], money_metric: str, currency: str
) -> Answer:
    """The numbers of ``scenario``'s sentence; ``years`` are its ``settled_in_<year>`` years."""
    shares = [(y, p) for y in years if (p := lookup(f"settled_in_{y}", "prob")) is not None]
    best = max(shares, key=lambda pair: pair[1], default=None)
    first = lookup("first_year", "p50")
    p10, p50, p90 = _range(lookup, "increase_pct")
    m10, m50, m90 = _range(lookup, money_metric)
    u10, u50, u90 = _range(lookup, "first_year_usd_m", 1e-3)
    return Answer(
        scenario=scenario,
        likeliest_year=None if best is None else best[0],
        likeliest_share=None if best is None else best[1],
        year_shares=shares,
        no_deal=lookup("no_deal_by_horizon", "prob"),
        horizon=max(years) if years else None,
        first_year=None if first is None or math.isnan(first) else round(first),
        increase=(p10, p50, p90),
        money=(m10, m50, m90),
        currency=currency,
        usd_bn=(u10, u50, u90),
        lapse=lookup("lapse", "prob"),
        furlough=lookup("furlough", "prob"),
    )


def _pct(p: float | None) -> str:
    return "–" if p is None else f"{p * 100:.0f}%"


def _num(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def answer_text(a: Answer) -> str:
    """The sentence after the scenario's name, plain text."""
    by = f"by {a.horizon}" if a.horizon else "within the horizon"
    if a.likeliest_year is None:
        when = "No settlement-year distribution was published"
    else:
        spread = ", ".join(f"{y} {_pct(p)}" for y, p in a.year_shares if p >= _SHOWN_SHARE)
        when = f"Agreement most likely in {a.likeliest_year} ({_pct(a.likeliest_share)}; {spread})"
        if a.no_deal is not None and a.likeliest_share is not None:
            if a.no_deal > a.likeliest_share:
                when = (
                    f"Most likely no agreement {by} ({_pct(a.no_deal)}); if one comes, most "
                    f"likely in {a.likeliest_year} ({_pct(a.likeliest_share)}; {spread})"
                )
    if a.increase[1] is None:
        return f"{when}. No simulated negotiation reaches an agreement."
    first = (
        f"The new agreement's first year: {a.first_year} (median)"
        if a.first_year is not None
        else "The new agreement's first year"
    )
    inc = a.increase
    money = a.money
    usd = a.usd_bn
    amount = (
        f"{a.currency} {_num(money[1], ',.0f')} bn ({_num(money[0], ',.0f')} to "
        f"{_num(money[2], ',.0f')})"
    )
    if usd[1] is not None and a.currency != "USD":
        amount += (
            f", about USD {_num(usd[1], '.2f')} bn ({_num(usd[0], '.2f')} to {_num(usd[2], '.2f')})"
        )
    risks = [
        f"{name} {_pct(p)}"
        for name, p in (
            ("lapse", a.lapse),
            ("furlough", a.furlough),
            (f"no agreement {by}", a.no_deal),
        )
        if p is not None
    ]
    return (
        f"{when}. {first}, with an increase of {_num(inc[1], '+.1f')}% "
        f"(p10 to p90: {_num(inc[0], '+.1f')}% to {_num(inc[2], '+.1f')}%), {amount}. "
        f"Risks: {', '.join(risks)}."
    )
