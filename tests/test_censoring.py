"""Censoring said plainly: timing among settled trials, P(no deal by the horizon) and the
settlement-time distribution (``settled_in_<year>``) in the summary, the headline, the CLI and
the Prefect artifact; never a censored ``months_to_settlement`` quantile shown as a timing."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from report_fixtures import publish_forecast
from typer.testing import CliRunner

from flows import artifacts, cli
from flows.results import ForecastRunResult
from pipeline.analysis import accumulators as accum
from pipeline.analysis import statistics as stat
from pipeline.model.outcomes import Outcomes
from pipeline.outputs.headline import headline, horizon_label, settlement_timing
from pipeline.outputs.tables.summary import to_summary_frame

CREATED = dt.datetime(2026, 3, 1, 2, 30, tzinfo=dt.UTC)
TIMING_METRIC = "months_to_settlement_if_settled"


def outcomes_from(
    start: np.ndarray, duration: np.ndarray, *, base: int, path_years: tuple[int, ...]
) -> Outcomes:
    """Outcomes whose timing fields follow the model's conventions: a trial settles when
    ``start + duration`` falls before the horizon; unsettled trials carry the censored months
    ``horizon - start`` and a NaN settlement month. Other fields are filler."""
    n = start.size
    horizon = (path_years[-1] + 1 - base) * 12
    settlement = start + duration
    settled = settlement < horizon
    nan = np.full(n, np.nan)
    no = np.zeros(n, dtype=bool)
    path = np.full((n, len(path_years)), 1500.0)
    return Outcomes(
        calendar_base_year=base,
        path_years=path_years,
        reopened=no,
        talks_start_month=start.astype(np.float64),
        months_to_settlement=np.where(settled, duration, horizon - start).astype(np.float64),
        settled_by_horizon=settled,
        settlement_month=np.where(settled, settlement, nan),
        lapse=no,
        lapse_months=np.zeros(n),
        furlough=no,
        troop_threat=no,
        package_deal=no,
        first_year=np.where(settled, base + np.floor(settlement / 12) + 1, nan),
        first_year_krw_bn=np.where(settled, 1600.0, nan),
        first_year_usd_m=np.where(settled, 1150.0, nan),
        increase_pct=np.where(settled, 5.0, nan),
        term_years=np.where(settled, 3.0, nan),
        escalation_rule=np.where(settled, 0, -1).astype(np.int64),
        stopgap=no,
        stopgap_months=np.zeros(n),
        stopgap_first_year=nan,
        stopgap_level_krw_bn=nan,
        renegotiated=no,
        renewal_first_year=nan,
        renewal_increase_pct=nan,
        contribution_krw_bn=path,
        contribution_usd_m=path / 1.4,
    )


def rows_of(summary: accum.BlockSummary) -> dict[tuple[str, str], stat.SummaryRow]:
    return {(r.metric, r.statistic): r for r in stat.summary_rows(summary)}


# --------------------------------------------------------------------------- hand-computed

# Base 2026, horizon end of 2028 (month 36). Six trials: four settle, two never do.
#   start + months = settlement month -> calendar year
#   2 + 4 = 6 -> 2026;  10 + 8 = 18 -> 2027;  12 + 12 = 24 -> 2028 (Jan 1 belongs to 2028);
#   0 + 23.5 = 23.5 -> 2027;  5 + 40 = 45 and 30 + 9 = 39: past month 36, no deal (censored
#   months 31 and 6).
START = np.array([2.0, 10.0, 12.0, 0.0, 5.0, 30.0])
DURATION = np.array([4.0, 8.0, 12.0, 23.5, 40.0, 9.0])
SETTLED_MONTHS = np.array([4.0, 8.0, 12.0, 23.5])


@pytest.fixture(scope="module")
def hand() -> accum.BlockSummary:
    out = outcomes_from(START, DURATION, base=2026, path_years=(2026, 2027, 2028))
    np.testing.assert_array_equal(out.months_to_settlement, [4, 8, 12, 23.5, 31, 6])
    return accum.summarize_block(out)


def test_settled_only_timing_is_hand_computed(hand: accum.BlockSummary) -> None:
    rows = rows_of(hand)
    mean = SETTLED_MONTHS.mean()  # 11.875
    sd = math.sqrt(((SETTLED_MONTHS - mean) ** 2).sum() / 3)
    assert rows[(TIMING_METRIC, "mean")].value == pytest.approx(11.875, abs=1e-12)
    assert rows[(TIMING_METRIC, "sd")].value == pytest.approx(sd, abs=1e-12)
    assert rows[(TIMING_METRIC, "min")].value == 4.0
    assert rows[(TIMING_METRIC, "max")].value == 23.5
    # The standard error of the mean is over the 4 settled trials, not the 6 trials.
    assert rows[(TIMING_METRIC, "mean")].mc_standard_error == pytest.approx(sd / 2.0)
    # np.quantile (linear) of 4, 8, 12, 23.5: p50 = 10, p25 = 7, p75 = 14.875; within a bin.
    for statistic, p in (("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p90", 0.9)):
        row = rows[(TIMING_METRIC, statistic)]
        exact = float(np.quantile(SETTLED_MONTHS, p))
        assert abs(row.value - exact) <= row.quantile_error_bound + 1e-12, statistic
        assert 0 <= row.quantile_error_bound <= 0.01  # a bin width, less next to exact masses
    assert rows[(TIMING_METRIC, "p50")].value == pytest.approx(10.0, abs=0.01)
    assert all(r.n_trials == 4 for (m, _), r in rows.items() if m == TIMING_METRIC)
    assert all(r.unit == "months" for (m, _), r in rows.items() if m == TIMING_METRIC)
    # The censored metric keeps its meaning (all six trials, the censoring values included).
    assert rows[("months_to_settlement", "max")].value == 31.0
    assert rows[("months_to_settlement", "p50")].n_trials == 6


def test_settlement_year_distribution_is_hand_computed(hand: accum.BlockSummary) -> None:
    rows = rows_of(hand)
    expected = {
        "settled_in_2026": 1 / 6,
        "settled_in_2027": 2 / 6,
        "settled_in_2028": 1 / 6,
        "no_deal_by_horizon": 2 / 6,
        "settled_by_2027": 3 / 6,  # the running total of the shares
    }
    for metric, p in expected.items():
        row = rows[(metric, "prob")]
        assert row.value == pytest.approx(p, abs=1e-15), metric
        assert row.n_trials == 6 and row.unit == "probability"
        assert row.mc_standard_error == pytest.approx(math.sqrt(p * (1 - p) / 6))
    assert hand.events["settled_in_2027"] == accum.EventCount(2, 6)


def test_headline_states_timing_plainly(hand: accum.BlockSummary) -> None:
    head = headline(to_summary_frame(hand, run_id="r1", created_at=CREATED))
    assert head["n_trials_settled"] == 4 and head["n_trials_effective"] == 6
    assert head["months_to_settlement_if_settled_p50"] == pytest.approx(10.0, abs=0.01)
    assert head["p_no_deal_by_horizon"] == pytest.approx(2 / 6)
    # No censored value is a headline number.
    assert not any(k.startswith("months_to_settlement_p") for k in head)
    timing = settlement_timing(head)
    assert [label for label, _ in timing] == ["2026", "2027", "2028", "none by 2028"]
    np.testing.assert_allclose([p for _, p in timing], [1 / 6, 2 / 6, 1 / 6, 2 / 6])
    assert horizon_label(head) == "by 2028"


def test_no_settled_trial_gives_undefined_timing() -> None:
    out = outcomes_from(
        np.array([20.0, 30.0]), np.array([50.0, 60.0]), base=2026, path_years=(2026, 2027)
    )
    rows = rows_of(accum.summarize_block(out))
    assert rows[(TIMING_METRIC, "p50")].n_trials == 0
    assert math.isnan(rows[(TIMING_METRIC, "p50")].value)
    assert math.isnan(rows[(TIMING_METRIC, "mean")].value)
    assert rows[("no_deal_by_horizon", "prob")].value == 1.0
    assert rows[("settled_in_2027", "prob")].value == 0.0


# --------------------------------------------------------------------------- properties


@st.composite
def timing_outcomes(draw: st.DrawFn) -> Outcomes:
    n = draw(st.integers(1, 40))
    base = draw(st.integers(2000, 2090))
    n_years = draw(st.integers(1, 6))
    horizon = 12 * n_years
    start = draw(st.lists(st.floats(0, horizon - 0.01, allow_nan=False), min_size=n, max_size=n))
    # Durations up to twice the horizon: some trials never settle; 0 and exact year ends too.
    duration = draw(
        st.lists(
            st.one_of(st.floats(0, 2.0 * horizon, allow_nan=False), st.sampled_from([0.0, 12.0])),
            min_size=n,
            max_size=n,
        )
    )
    return outcomes_from(
        np.array(start), np.array(duration), base=base,
        path_years=tuple(range(base, base + n_years)),
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(out=timing_outcomes())
def test_year_shares_and_no_deal_sum_to_one(out: Outcomes) -> None:
    summary = accum.summarize_block(out)
    counts = [summary.events[f"settled_in_{y}"] for y in out.path_years]
    no_deal = summary.events["no_deal_by_horizon"]
    # Exact in counts: every trial is in exactly one year bucket or in "no deal".
    assert sum(c.n_true for c in counts) + no_deal.n_true == out.n_trials
    rows = rows_of(summary)
    shares = [rows[(f"settled_in_{y}", "prob")].value for y in out.path_years]
    assert sum(shares) + rows[("no_deal_by_horizon", "prob")].value == pytest.approx(1.0)
    # The running total of the shares is settled_by_<year>.
    np.testing.assert_allclose(
        np.cumsum(shares),
        [rows[(f"settled_by_{y}", "prob")].value for y in out.path_years],
        atol=1e-12,
    )


@settings(max_examples=60, deadline=None)
@given(out=timing_outcomes())
# Interpolating between two equal order statistics can round one ulp past them.
@example(
    out=outcomes_from(np.zeros(3), np.array([0.0, 0.0, 1.7636268790577864e-286]), base=2000,
                      path_years=(2000,))
)  # fmt: skip
def test_settled_only_quantiles_lie_within_the_settled_values(out: Outcomes) -> None:
    rows = rows_of(accum.summarize_block(out))
    settled = out.months_to_settlement[out.settled_by_horizon]
    quantile_rows = [r for (m, s), r in rows.items() if m == TIMING_METRIC and s.startswith("p")]
    assert all(r.n_trials == settled.size for r in quantile_rows)
    if settled.size == 0:
        assert all(math.isnan(r.value) for r in quantile_rows)
        return
    rounding = 4 * np.spacing(np.abs(settled).max())  # a few ulps of interpolation rounding
    for r in quantile_rows:
        assert settled.min() - rounding <= r.value <= settled.max() + rounding, r
    assert rows[(TIMING_METRIC, "min")].value == settled.min()
    assert rows[(TIMING_METRIC, "max")].value == settled.max()


# --------------------------------------------------------------------------- mergeability


def _synthetic(n: int, seed: int) -> Outcomes:
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, 60.0, n)
    duration = rng.lognormal(2.5, 0.8, n)  # a third or so run past the horizon
    return outcomes_from(start, duration, base=2026, path_years=tuple(range(2026, 2032)))


def _new_rows(summary: accum.BlockSummary) -> list[tuple[str, str, str, str, int]]:
    return [
        (r.metric, r.statistic, repr(r.value), repr(r.mc_standard_error), r.n_trials)
        for r in stat.summary_rows(summary)
        if r.metric in (TIMING_METRIC, "no_deal_by_horizon") or r.metric.startswith("settled_in_")
    ]


@settings(max_examples=20, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 2000), min_size=1, max_size=6),
    order=st.randoms(use_true_random=False),
)
def test_new_statistics_do_not_depend_on_block_grouping(cuts: list[int], order: object) -> None:
    out = _synthetic(2000, seed=4)
    edges = sorted({0, 2000, *cuts})
    blocks = [
        accum.summarize_block(out.take(np.arange(a, b)))
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    in_order = accum.merge_all(blocks)
    order.shuffle(blocks)  # type: ignore[attr-defined]
    shuffled = accum.merge_all(blocks)
    paired = blocks[0]
    if len(blocks) > 1:
        half = len(blocks) // 2
        paired = accum.merge(accum.merge_all(blocks[half:]), accum.merge_all(blocks[:half]))
    # The same blocks in any order or grouping: bit-identical rows.
    assert _new_rows(in_order) == _new_rows(shuffled) == _new_rows(paired)
    # Against one block of all trials: counts and histograms exact, moments up to rounding.
    whole = accum.summarize_block(out)
    assert dict(shuffled.events) == dict(whole.events)
    a, b = shuffled.metrics[TIMING_METRIC], whole.metrics[TIMING_METRIC]
    np.testing.assert_array_equal(a.counts, b.counts)
    assert (a.n, a.min, a.max) == (b.n, b.min, b.max)
    assert a.mean == pytest.approx(b.mean, rel=1e-12)


# --------------------------------------------------------------------------- CLI, artifact


@pytest.fixture(scope="module")
def heads() -> dict[str, dict[str, float]]:
    drawn = _synthetic(3000, seed=8)
    return {
        "drawn": headline(
            to_summary_frame(accum.summarize_block(drawn), run_id="r1", created_at=CREATED)
        )
    }


def test_cli_headline_shows_no_deal_timing_if_settled_and_years(
    heads: dict[str, dict[str, float]],
) -> None:
    h = heads["drawn"]
    result = ForecastRunResult(
        run_id="r1", output_dir="/tmp/out", as_of=dt.date(2026, 3, 1), n_trials=3000,
        seed_entropy="1", target_se=None, achieved_se=None, seconds=1.0, phase_seconds={},
        headline=heads, report=None, drift_flags=0,
    )  # fmt: skip
    with cli.out.capture() as captured:
        cli._print_headline(result)
    text = captured.get()
    assert "P(no deal by 2031)" in text and f"{h['p_no_deal_by_horizon']:.2f}" in text
    assert "if settled" in text and f"{h['months_to_settlement_if_settled_p50']:.1f}" in text
    assert "When agreement comes" in text and "none by 2031" in text
    for label, share in settlement_timing(h):
        assert label in text and f"{share:.2f}" in text
    assert "months p50" not in text


def test_artifact_markdown_shows_the_same(heads: dict[str, dict[str, float]]) -> None:
    h = heads["drawn"]
    md = artifacts.summary_markdown(dt.date(2026, 3, 1), "r1", heads)
    assert "P(no deal by 2031)" in md and "months to deal if settled" in md
    assert f"| {h['p_no_deal_by_horizon']:.2f} |" in md
    header = next(line for line in md.splitlines() if line.startswith("| scenario | 2026"))
    assert header.endswith("| none by 2031 |")
    row = md.splitlines()[-1].split("|")[2:-1]
    assert sum(float(x) for x in row) == pytest.approx(1.0, abs=0.03)  # rounded to 2 digits


def test_show_states_timing_and_hides_the_censored_quantiles(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    _, tables = publish_forecast(out, ["drawn_out"], as_of=dt.date(2026, 3, 1), n_trials=1500)
    h = headline(tables["drawn_out"]["summary"])
    result = CliRunner().invoke(cli.app, ["show", "--output", str(out), "-s", "drawn_out", "--all"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert TIMING_METRIC in text and "no_deal_by_horizon" in text and "settled_in_2031" in text
    # The censored metric's rows are not printed (only the settled-only timing is).
    assert not any(
        line.split()[1:2] == ["months_to_settlement"] for line in result.output.splitlines()
    )
    assert f"P(no deal by 2031) {h['p_no_deal_by_horizon']:.2f}" in text
    assert f"p50 {h['months_to_settlement_if_settled_p50']:.1f}" in text
    assert f"none by 2031 {h['p_no_deal_by_horizon']:.2f}" in text
