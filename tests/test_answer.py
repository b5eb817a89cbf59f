"""The report's answer-first sentences: hand-computed from a small statistic table."""

from __future__ import annotations

import pytest

from pipeline.report.answer import answer, answer_text

STATS = {
    ("settled_in_2026", "prob"): 0.05,
    ("settled_in_2027", "prob"): 0.40,
    ("settled_in_2028", "prob"): 0.25,
    ("no_deal_by_horizon", "prob"): 0.30,
    ("first_year", "p50"): 2027.6,
    ("increase_pct", "p10"): 2.0,
    ("increase_pct", "p50"): 8.25,
    ("increase_pct", "p90"): 15.0,
    ("first_year_krw_bn", "p10"): 1500.0,
    ("first_year_krw_bn", "p50"): 1650.4,
    ("first_year_krw_bn", "p90"): 1800.0,
    ("first_year_usd_m", "p10"): 1100.0,
    ("first_year_usd_m", "p50"): 1234.0,
    ("first_year_usd_m", "p90"): 1400.0,
    ("lapse", "prob"): 0.12,
    ("furlough", "prob"): 0.04,
}


def lookup(metric: str, statistic: str) -> float | None:
    return STATS.get((metric, statistic))


def test_sentence_states_year_first_year_amounts_and_risks() -> None:
    a = answer("baseline", lookup, [2026, 2027, 2028], "first_year_krw_bn", "KRW")
    assert (a.likeliest_year, a.likeliest_share, a.first_year, a.horizon) == (
        2027,
        0.40,
        2028,
        2028,
    )
    assert a.usd_bn == pytest.approx((1.1, 1.234, 1.4))
    text = answer_text(a)
    assert text.startswith("Agreement most likely in 2027 (40%; 2026 5%, 2027 40%, 2028 25%)")
    assert "first year: 2028 (median)" in text
    assert "+8.2% (p10 to p90: +2.0% to +15.0%)" in text  # 8.25 rounds half to even
    assert "KRW 1,650 bn (1,500 to 1,800), about USD 1.23 bn (1.10 to 1.40)" in text
    assert text.endswith("Risks: lapse 12%, furlough 4%, no agreement by 2028 30%.")


def test_no_deal_more_likely_than_any_year_is_said_first() -> None:
    stats = {**STATS, ("no_deal_by_horizon", "prob"): 0.45, ("settled_in_2027", "prob"): 0.20}
    a = answer(
        "drawn_out", lambda m, s: stats.get((m, s)), [2026, 2027, 2028], "first_year_krw_bn", "KRW"
    )
    text = answer_text(a)
    assert text.startswith(
        "Most likely no agreement by 2028 (45%); if one comes, most likely in 2028"
    )


def test_no_agreement_at_all() -> None:
    stats = {("settled_in_2026", "prob"): 0.0, ("no_deal_by_horizon", "prob"): 1.0}
    a = answer("never", lambda m, s: stats.get((m, s)), [2026], "first_year_krw_bn", "KRW")
    assert "No simulated negotiation reaches an agreement." in answer_text(a)


def test_usd_host_shows_no_second_currency() -> None:
    a = answer("x", lookup, [2026, 2027, 2028], "first_year_krw_bn", "USD")
    assert "about USD" not in answer_text(a)
