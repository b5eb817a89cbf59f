"""Tests of pipeline.analysis.accumulators and .statistics: mergeability, quantile error bounds,
standard errors, and the summary, histograms and trials frames of pipeline.outputs.tables."""

from __future__ import annotations

import datetime as dt
import math
import pickle

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis import accumulators as accum
from pipeline.analysis import statistics as stat
from pipeline.model.outcomes import BOOLEAN_OUTCOMES, ESCALATION_RULES, NUMERIC_OUTCOMES, Outcomes
from pipeline.outputs import schema
from pipeline.outputs.tables.histograms import to_histogram_frame
from pipeline.outputs.tables.summary import to_summary_frame
from pipeline.outputs.tables.trials import to_trials_frame

BASE_YEAR = 2025
PATH_YEARS = (2026, 2027, 2028, 2029, 2030, 2031)
CREATED = dt.datetime(2026, 3, 1, 2, 30, tzinfo=dt.UTC)
LEVELS = np.array(list(schema.QUANTILE_LEVELS.values()))


def make_outcomes(n: int, seed: int, path_years: tuple[int, ...] = PATH_YEARS) -> Outcomes:
    """Plausible synthetic outcomes (not the model), with NaNs, point masses and outliers."""
    rng = np.random.default_rng(seed)
    horizon = (path_years[-1] + 1 - BASE_YEAR) * 12
    reopened = rng.random(n) < 0.3
    start = np.where(reopened, rng.uniform(12, 60, n), rng.uniform(60, 70, n))
    duration = rng.lognormal(2.0, 0.6, n)
    settlement = start + duration
    settled = settlement < horizon
    months = np.where(settled, duration, horizon - start)
    lapse = rng.random(n) < 0.2
    increase = rng.normal(10.0, 8.0, n)
    increase[rng.random(n) < 0.002] = 1500.0  # beyond the fine range: overflow bin
    krw = 1519.2 * (1 + increase / 100)
    fx = rng.normal(1400.0, 50.0, n)
    growth = 1.0 + rng.normal(0.04, 0.02, (n, 1))
    path = 1519.2 * growth ** np.arange(len(path_years)) * rng.lognormal(0, 0.05, (n, 1))
    nan = np.full(n, np.nan)
    stop = lapse & (rng.random(n) < 0.5)
    renewed = settled & (rng.random(n) < 0.2)
    return Outcomes(
        calendar_base_year=BASE_YEAR,
        path_years=path_years,
        reopened=reopened,
        talks_start_month=start,
        months_to_settlement=months,
        settled_by_horizon=settled,
        settlement_month=np.where(settled, settlement, nan),
        lapse=lapse,
        lapse_months=np.where(lapse, rng.exponential(6.0, n), 0.0),
        furlough=lapse & (rng.random(n) < 0.3),
        troop_threat=rng.random(n) < 0.15,
        package_deal=rng.random(n) < 0.4,
        first_year=np.where(settled, BASE_YEAR + np.floor(settlement / 12) + 1, nan),
        first_year_krw_bn=np.where(settled, krw, nan),
        first_year_usd_m=np.where(settled, krw * 1000 / fx, nan),
        increase_pct=np.where(settled, increase, nan),
        term_years=np.where(settled, rng.integers(1, 7, n).astype(float), nan),
        escalation_rule=np.where(settled, rng.integers(0, 3, n), -1).astype(np.int64),
        stopgap=stop,
        stopgap_months=np.where(stop, 12.0, 0.0),
        stopgap_first_year=np.where(stop, BASE_YEAR + 5.0, nan),
        stopgap_level_krw_bn=np.where(stop, 1650.0, nan),
        renegotiated=renewed,
        renewal_first_year=np.where(renewed, BASE_YEAR + np.floor(settlement / 12) + 2, nan),
        renewal_increase_pct=np.where(renewed, rng.normal(6.0, 4.0, n), nan),
        contribution_krw_bn=path,
        contribution_usd_m=path * 1000 / fx[:, None],
    )


def assert_summaries_equal(
    a: accum.BlockSummary, b: accum.BlockSummary, rtol: float = 1e-9
) -> None:
    assert (a.n_trials, a.n_effective, a.path_years) == (b.n_trials, b.n_effective, b.path_years)
    assert dict(a.events) == dict(b.events)
    assert list(a.metrics) == list(b.metrics)
    for name, x in a.metrics.items():
        y = b.metrics[name]
        assert (x.n, x.min, x.max) == (y.n, y.min, y.max), name
        np.testing.assert_array_equal(x.counts, y.counts, err_msg=name)
        assert x.mean == pytest.approx(y.mean, rel=rtol, abs=1e-12), name
        assert x.m2 == pytest.approx(y.m2, rel=rtol, abs=1e-12), name


@pytest.fixture(scope="module")
def outcomes() -> Outcomes:
    return make_outcomes(60_000, seed=1)


@pytest.fixture(scope="module")
def summary(outcomes: Outcomes) -> accum.BlockSummary:
    return accum.summarize_block(outcomes)


# --------------------------------------------------------------------------- mergeability


def test_one_block_equals_seven_blocks_in_any_grouping(
    outcomes: Outcomes, summary: accum.BlockSummary
) -> None:
    cuts = [0, 1, 1000, 1001, 17_000, 30_000, 44_444, 60_000]  # unequal, includes size 1
    blocks = [
        accum.summarize_block(outcomes.take(np.arange(a, b)))
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    left = accum.merge_all(blocks)
    right = accum.merge_all(reversed(blocks))
    tree = accum.merge(
        accum.merge(accum.merge(blocks[0], blocks[1]), accum.merge(blocks[2], blocks[3])),
        accum.merge(blocks[4], accum.merge(blocks[5], blocks[6])),
    )
    for merged in (left, right, tree):
        assert_summaries_equal(merged, summary)
    # The same blocks merged in any order or grouping give bit-identical statistics, so results
    # cannot depend on worker count or on the order in which tasks finish.
    rows = [stat.summary_rows(m) for m in (left, right, tree)]
    values = [
        [(r.metric, r.statistic, repr(r.value), repr(r.mc_standard_error)) for r in rs]
        for rs in rows
    ]
    assert values[0] == values[1] == values[2]


@settings(max_examples=15, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 3000), min_size=1, max_size=6),
    order=st.randoms(use_true_random=False),
)
def test_merge_is_grouping_invariant(cuts: list[int], order: object) -> None:
    out = make_outcomes(3000, seed=7, path_years=(2026,))
    edges = sorted({0, 3000, *cuts})
    blocks = [
        accum.summarize_block(out.take(np.arange(a, b)))
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    order.shuffle(blocks)  # type: ignore[attr-defined]
    assert_summaries_equal(accum.merge_all(blocks), accum.summarize_block(out))


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(0, 2000), min_size=1, max_size=5))
def test_merges_and_pickles_touching_only_the_spans_keep_every_count(cuts: list[int]) -> None:
    out = make_outcomes(2000, seed=11, path_years=(2026,))
    edges = sorted({0, 2000, *cuts})
    blocks = [
        pickle.loads(pickle.dumps(accum.summarize_block(out.take(np.arange(a, b)))))
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    merged = accum.merge_all(blocks)
    for name, acc in merged.metrics.items():
        expected = np.sum([block.metrics[name].counts for block in blocks], axis=0)
        np.testing.assert_array_equal(acc.counts, expected)
        assert acc.span is not None
        start, stop = acc.span
        # Every non-zero count lies inside the span that merges and pickles rely on.
        assert not acc.counts[:start].any() and not acc.counts[stop:].any()


def test_memory_does_not_grow_with_trials() -> None:
    small = accum.summarize_block(make_outcomes(10, seed=2))
    big = accum.summarize_block(make_outcomes(50_000, seed=2))
    assert small.nbytes == big.nbytes == accum.merge(small, big).nbytes
    assert big.nbytes < 40e6


def test_summaries_pickle_small_and_exact(summary: accum.BlockSummary) -> None:
    blob = pickle.dumps(summary)
    assert len(blob) < summary.nbytes / 20  # histograms are compressed for shipping
    assert_summaries_equal(pickle.loads(blob), summary, rtol=0)


def test_merge_rejects_different_path_years() -> None:
    a = accum.summarize_block(make_outcomes(10, seed=1, path_years=(2026,)))
    b = accum.summarize_block(make_outcomes(10, seed=1, path_years=(2027,)))
    with pytest.raises(ValueError, match="path years"):
        accum.merge(a, b)
    with pytest.raises(ValueError, match="no summaries"):
        accum.merge_all([])


def test_weights_mask_keeps_consistent_trials(outcomes: Outcomes) -> None:
    mask = outcomes.months_to_settlement > 7.0  # e.g. "talks open 7 months without deal"
    conditioned = accum.summarize_block(outcomes, weights_mask=mask)
    assert conditioned.n_trials == outcomes.n_trials
    assert conditioned.n_effective == int(mask.sum())
    expected = accum.summarize_block(outcomes.take(mask))
    assert conditioned.metrics["months_to_settlement"].min > 7.0
    assert dict(conditioned.events) == dict(expected.events)
    with pytest.raises(ValueError, match="boolean"):
        accum.summarize_block(outcomes, weights_mask=np.ones(3, dtype=bool))


# --------------------------------------------------------------------------- quantiles


def _check_quantiles(x: np.ndarray, spec: accum.BinSpec) -> np.ndarray:
    acc = accum.MetricAccumulator.from_values(x, spec)
    value, bound, _ = stat.quantiles(acc, spec, LEVELS)
    exact = np.quantile(x[np.isfinite(x)], LEVELS)
    err = np.abs(value - exact)
    assert np.all(err <= bound * (1 + 1e-9) + 1e-9), (err, bound)
    # A bound of 0 (order statistics inside the exactly counted masses at the smallest and
    # largest value) means the value is exact: the assertion above then demands err == 0.
    return bound


@pytest.mark.parametrize(
    ("metric", "draw"),
    [
        ("increase_pct", lambda r, n: r.normal(10, 8, n)),
        ("first_year_krw_bn", lambda r, n: r.lognormal(7.4, 0.3, n)),
        ("contribution_usd_m_2030", lambda r, n: r.lognormal(7.0, 0.5, n)),
        ("months_to_settlement", lambda r, n: r.lognormal(2.0, 0.6, n)),
        # A point mass at 0 plus a tail, as a lapse length has.
        ("lapse_months", lambda r, n: np.where(r.random(n) < 0.8, 0.0, r.exponential(6, n))),
        ("term_years", lambda r, n: r.integers(1, 7, n).astype(float)),  # discrete
        ("first_year", lambda r, n: r.integers(2026, 2032, n).astype(float)),
        # Few distinct values with gaps: linear interpolation between far order statistics.
        ("increase_pct", lambda r, n: r.choice([0.0, 5.0, 50.0], n)),
    ],
)
def test_quantile_error_within_bin_width(metric: str, draw: object) -> None:
    spec = accum.metric_spec(metric)
    rng = np.random.default_rng(11)
    for n in (1, 2, 7, 1000, 1_000_000):
        x = draw(rng, n)  # type: ignore[operator]
        bound = _check_quantiles(x, spec)
        assert np.all((bound >= 0) & (bound <= spec.width))  # exact at point masses


def test_out_of_range_quantiles_are_clamped_and_flagged() -> None:
    spec = accum.metric_spec("increase_pct")
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(10, 8, 9000), rng.uniform(1200, 3000, 1000), [-150.0]])
    acc = accum.MetricAccumulator.from_values(x, spec)
    value, bound, se = stat.quantiles(acc, spec, LEVELS)
    _check_quantiles(x, spec)
    # 10% of values overflow: p95 and p99 are clamped to the range edge...
    assert np.all(value[-2:] == spec.hi)
    # ...and flagged by a bound wider than a bin: the distance to the exact maximum.
    np.testing.assert_allclose(bound[-2:], x.max() - spec.hi)
    assert np.all(np.isnan(se[-2:]))
    assert np.all(bound[:6] == spec.width) and np.all(np.isfinite(se[:6]))


def test_nan_and_inf_are_not_counted() -> None:
    spec = accum.metric_spec("increase_pct")
    acc = accum.MetricAccumulator.from_values([1.0, np.nan, np.inf, -np.inf, 3.0], spec)
    assert acc.n == 2 and acc.counts.sum() == 2
    assert acc.mean == 2.0 and acc.sd == pytest.approx(math.sqrt(2.0))


def test_statistics_are_sane(summary: accum.BlockSummary) -> None:
    rows = stat.summary_rows(summary)
    probs = [r for r in rows if r.statistic == "prob"]
    assert probs and all(0.0 <= r.value <= 1.0 for r in probs)
    assert all(r.mc_standard_error >= 0 for r in probs)
    by_metric: dict[str, dict[str, stat.SummaryRow]] = {}
    for r in rows:
        by_metric.setdefault(r.metric, {})[r.statistic] = r
    for metric in summary.metrics:
        stats = by_metric[metric]
        q = [stats[s].value for s in schema.QUANTILE_LEVELS]
        assert np.all(np.diff(q) >= 0), metric
        assert stats["min"].value <= q[0] and q[-1] <= stats["max"].value
        # Within a bin width, or exact (0) at a point mass: at the smallest or largest value,
        # or in a fine bin that holds one value (integer years, a fixed level).
        acc = summary.metrics[metric]
        atoms = set(acc.atom_values.tolist())
        for s in schema.QUANTILE_LEVELS:
            bound = stats[s].quantile_error_bound
            exact = stats[s].value in (stats["min"].value, stats["max"].value) or (
                stats[s].value in atoms
            )
            assert bound > 0 or (bound == 0 and exact), (metric, s)
    # increase_pct is only defined in settled trials: its n_trials says so.
    settled = summary.events["settled_by_horizon"].n_true
    assert by_metric["increase_pct"]["p50"].n_trials == settled
    assert by_metric["reopened"]["prob"].n_trials == summary.n_effective
    expected = {*NUMERIC_OUTCOMES, *accum.DERIVED_NUMERIC, *BOOLEAN_OUTCOMES, "no_deal_by_horizon"}
    expected |= {f"contribution_{c}_{y}" for c in ("krw_bn", "usd_m") for y in PATH_YEARS}
    expected |= {
        f"{e}_{y}" for e in ("settled_by", "reopened_before", "settled_in") for y in PATH_YEARS
    }
    expected |= {f"escalation_rule_{r}" for r in ESCALATION_RULES}
    assert set(by_metric) == expected


def test_derived_events_follow_the_calendar() -> None:
    out = make_outcomes(5, seed=0, path_years=(2026, 2027))
    out = Outcomes(
        **{
            **{k: getattr(out, k) for k in ("calendar_base_year", "path_years")},
            **out.arrays(),
            "settlement_month": np.array([11.9, 12.0, 23.99, np.nan, 0.0]),
            "settled_by_horizon": np.array([True, True, True, False, True]),
            "reopened": np.array([True, True, False, True, True]),
            "talks_start_month": np.array([11.9, 12.0, 0.0, 23.0, 30.0]),
        }
    )
    ev = accum.derived_events(out)
    # Base 2025: end of 2026 is month 24, start of 2026 is month 12.
    np.testing.assert_array_equal(ev["settled_by_2026"], [True, True, True, False, True])
    np.testing.assert_array_equal(
        ev["settled_by_2025" if False else "settled_by_2027"], [1, 1, 1, 0, 1]
    )
    np.testing.assert_array_equal(ev["reopened_before_2026"], [True, False, False, False, False])
    np.testing.assert_array_equal(ev["reopened_before_2027"], [True, True, False, True, False])
    np.testing.assert_array_equal(ev["no_deal_by_horizon"], [False, False, False, True, False])


def test_empty_and_tiny_blocks() -> None:
    out = make_outcomes(50, seed=5)
    none_settled = Outcomes(
        **{
            **{k: getattr(out, k) for k in ("calendar_base_year", "path_years")},
            **out.arrays(),
            "increase_pct": np.full(50, np.nan),
        }
    )
    rows = {
        (r.metric, r.statistic): r
        for r in stat.summary_rows(accum.summarize_block(none_settled.take(np.arange(1))))
    }
    assert rows[("increase_pct", "p50")].n_trials == 0
    assert math.isnan(rows[("increase_pct", "p50")].value)
    assert math.isnan(rows[("increase_pct", "mean")].value)
    one = rows[("talks_start_month", "p50")]
    assert one.n_trials == 1 and one.value == out.talks_start_month[0]
    assert math.isnan(one.mc_standard_error)
    empty = accum.summarize_block(out, weights_mask=np.zeros(50, dtype=bool))
    assert empty.n_effective == 0
    assert all(math.isnan(r.value) for r in stat.summary_rows(empty))


# --------------------------------------------------------------------------- standard errors


def test_standard_errors_match_brute_force_replication() -> None:
    """Reported SEs vs the spread of estimates over independent replications (loose, 20%)."""
    rng = np.random.default_rng(2024)
    spec = accum.metric_spec("first_year_krw_bn")
    reps, n = 300, 4000
    p = np.array([0.05, 0.5, 0.95])
    est, ses = np.empty((reps, 5)), np.empty((reps, 5))
    for i in range(reps):
        x = rng.lognormal(7.4, 0.3, n)
        acc = accum.MetricAccumulator.from_values(x, spec)
        q, _, q_se = stat.quantiles(acc, spec, p)
        hit = rng.random(n) < 0.3
        prob = hit.mean()
        est[i] = [acc.mean, *q, prob]
        ses[i] = [acc.sd / math.sqrt(n), *q_se, math.sqrt(prob * (1 - prob) / n)]
    empirical = est.std(axis=0, ddof=1)
    reported = np.sqrt((ses**2).mean(axis=0))
    np.testing.assert_allclose(reported, empirical, rtol=0.2)


def test_quantiles_at_a_point_mass_are_exact_with_zero_error() -> None:
    spec = accum.metric_spec("term_years")
    acc = accum.MetricAccumulator.from_values(np.full(1000, 3.0), spec)
    value, bound, se = stat.quantiles(acc, spec, LEVELS)
    assert np.all(value == 3.0) and np.all(bound == 0) and np.all(se == 0)


# --------------------------------------------------------------------------- frames


def test_bi_histogram_is_rebinned_fine_histogram(outcomes: Outcomes) -> None:
    for metric in (
        "increase_pct",
        "first_year_krw_bn",
        "months_to_settlement",
        "contribution_krw_bn_2028",
    ):
        spec = accum.metric_spec(metric)
        x = accum.numeric_metrics(outcomes)[metric]
        x = x[np.isfinite(x)]
        edges, counts = stat.bi_histogram(accum.MetricAccumulator.from_values(x, spec), spec)
        assert 10 <= edges.size - 1 <= 80
        inner, _ = np.histogram(x, bins=edges)
        np.testing.assert_array_equal(counts[1:-1], inner)
        assert counts[0] == np.sum(x < edges[0]) and counts[-1] == np.sum(x >= edges[-1])


def test_summary_frame_matches_contract(summary: accum.BlockSummary) -> None:
    table = to_summary_frame(summary, run_id="r1", created_at=CREATED)
    assert table.schema.equals(schema.SUMMARY_SCHEMA, check_metadata=True)
    assert table.num_rows == len(stat.summary_rows(summary))
    df = table.to_pandas()
    assert not df.duplicated(["metric", "statistic"]).any()
    q = df[df.statistic.isin(list(schema.QUANTILE_LEVELS))]
    assert q.quantile_error_bound.notna().all()
    assert df[~df.statistic.isin(list(schema.QUANTILE_LEVELS))].quantile_error_bound.isna().all()
    assert df.loc[df.metric == "talks_start_month", "unit"].iloc[0] == "month index (0 = Jan 2025)"
    assert (df.schema_version == schema.SCHEMA_VERSION).all()
    with pytest.raises(ValueError, match="UTC"):
        to_summary_frame(summary, run_id="r1", created_at=dt.datetime(2026, 1, 1))


def test_histogram_frame_matches_contract(summary: accum.BlockSummary) -> None:
    table = to_histogram_frame(summary, run_id="r1", created_at=CREATED)
    assert table.schema.equals(schema.HISTOGRAMS_SCHEMA, check_metadata=True)
    df = table.to_pandas()
    totals = df.groupby("metric")["count"].sum()
    for metric, acc in summary.metrics.items():
        assert totals[metric] == acc.n
    inc = df[df.metric == "increase_pct"]
    assert inc.probability.sum() == pytest.approx(1.0)
    assert inc.bin_lower.isna().sum() == 1 and inc.bin_upper.isna().sum() == 1
    assert (inc.bin_index.to_numpy() == np.arange(len(inc))).all()


def test_trials_frame_matches_contract(outcomes: Outcomes) -> None:
    sample = outcomes.take(np.arange(100))
    table = to_trials_frame(sample, run_id="r1", first_trial_index=0, created_at=CREATED)
    assert table.schema.equals(schema.trials_schema(PATH_YEARS), check_metadata=True)
    scalar = [k for k, v in outcomes.arrays().items() if v.ndim == 1]
    assert list(schema.TRIAL_SCALAR_FIELDS) == scalar
    rules = table.column("escalation_rule").to_pylist()
    settled = sample.settled_by_horizon
    assert all((r in ESCALATION_RULES) == s for r, s in zip(rules, settled, strict=True))
    assert table.column("increase_pct").null_count == int((~settled).sum())
    assert table.column("trial_index").to_pylist() == list(range(100))
    assert isinstance(table.column("created_at").type, pa.TimestampType)
