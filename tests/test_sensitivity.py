"""Tests of pipeline.analysis.rank_sensitivity and pipeline.analysis.sobol: known answers (additive
and one-input toys, also through the whole pipeline), well-formed rows on the real scenarios,
determinism, and the bounded sample's independence of block order.

Tolerances are stated next to each check with the standard error they are set against.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from test_model_hand import fixed_inputs

from pipeline.analysis import rank_sensitivity as rank
from pipeline.analysis import sobol
from pipeline.common import FloatArray
from pipeline.model.plan import Plan, plan_run, run_block, run_forecast
from pipeline.model.seeding import root_entropy
from pipeline.outputs.schema import SENSITIVITY_SCHEMA
from pipeline.outputs.tables.sensitivity import to_sensitivity_frame
from pipeline.spec.catalog import INPUT_NAMES
from pipeline.spec.scenario import load_scenario

AS_OF = date(2026, 11, 29)
REPO = Path(__file__).resolve().parent.parent
CREATED = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
A = (3.0, 2.0, 1.0)  # additive toy coefficients: Y = 3 X1 + 2 X2 + X3
# Spearman rho of X_i with Y for independent U(0, 1) inputs (2e6 draws; Pearson a_i/|a| is
# 0.802, 0.535, 0.267).
SPEARMAN_ADDITIVE = (0.8074, 0.5157, 0.2524)


def additive(u: FloatArray) -> dict[str, FloatArray]:
    return {"y": A[0] * u[:, 0] + A[1] * u[:, 1] + A[2] * u[:, 2]}


def by(rows: list[rank.SensitivityRow], metric: str, method: str, statistic: str) -> dict:
    return rank.rows_by(rows, metric=metric, method=method, statistic=statistic)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- (a) additive toy


def test_additive_rank_statistics_known_answer() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((100_000, 3))
    rows = rank.rank_sensitivity({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2]}, additive(x))
    rho = by(rows, "y", "spearman", "rank_correlation")
    swing = by(rows, "y", "tornado", "swing")
    assert [rho[k].rank for k in ("x1", "x2", "x3")] == [1, 2, 3]
    assert [swing[k].rank for k in ("x1", "x2", "x3")] == [1, 2, 3]
    # Population Spearman rho of each input with the sum, from 2e6 draws (se 0.0005); the
    # estimate's se at 1e5 trials is ~0.002, tolerance 5 se.
    for k, ref in zip(("x1", "x2", "x3"), SPEARMAN_ADDITIVE, strict=True):
        assert rho[k].value == pytest.approx(ref, abs=0.01)
        assert rho[k].ci_low < ref < rho[k].ci_high or abs(rho[k].value - ref) < 0.005
    # Y given X_i in its top decile is Y given its bottom decile shifted by 0.9 a_i, so the
    # swing is 0.9 a_i in expectation; its sd over seeds is 0.015-0.024, tolerance 0.1 (4 sd).
    for k, a in zip(("x1", "x2", "x3"), A, strict=True):
        assert swing[k].value == pytest.approx(0.9 * a, abs=0.1)
        se = (swing[k].ci_high - swing[k].ci_low) / (2 * 1.96)  # the stated interval's se
        assert abs(swing[k].value - 0.9 * a) < 4 * se


def test_additive_sobol_known_answer() -> None:
    rows = sobol.sobol_from_function(
        additive, {"x1": [0], "x2": [1], "x3": [2]}, 3, n_base=2**12,
        rng=np.random.default_rng(2),
    )  # fmt: skip
    first = by(rows, "y", "sobol", "first_order")
    total = by(rows, "y", "sobol", "total_order")
    shares = np.square(A) / np.square(A).sum()  # S_i = a_i^2 / sum a_j^2; no interactions
    for k, s in zip(("x1", "x2", "x3"), shares, strict=True):
        assert first[k].value == pytest.approx(s, abs=0.03)
        assert total[k].value == pytest.approx(s, abs=0.03)
        assert total[k].value == pytest.approx(first[k].value, abs=0.03)
        for r in (first[k], total[k]):
            assert r.ci_low <= r.value <= r.ci_high and r.ci_high - r.ci_low < 0.15
            assert r.n_trials == 2**12 * 5
    assert [total[k].rank for k in ("x1", "x2", "x3")] == [1, 2, 3]


def test_bootstrap_statistic_reproduces_scipy_estimator() -> None:
    """The resampling statistic is scipy's saltelli_2010 estimator at unit weights."""
    rng = np.random.default_rng(3)
    f_a, f_b, f_ab = rng.normal(size=64), rng.normal(size=64), rng.normal(size=(4, 64))
    res = stats.sobol_indices(func={"f_A": f_a, "f_B": f_b, "f_AB": f_ab[:, None, :]}, n=64)
    mean = 0.5 * (f_a.mean() + f_b.mean())
    terms = sobol._terms(f_a - mean, f_b - mean, f_ab - mean)
    ours = sobol._indices_from_means(terms.mean(axis=1), 4)
    np.testing.assert_allclose(ours[:4], np.ravel(res.first_order), rtol=1e-12)
    np.testing.assert_allclose(ours[4:], np.ravel(res.total_order), rtol=1e-12)


# --------------------------------------------------------------------------- (b) one input


def test_output_of_one_input_only() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((100_000, 3))
    y = np.exp(2.0 * x[:, 0])
    rows = rank.rank_sensitivity({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2]}, {"y": y})
    rho = by(rows, "y", "spearman", "rank_correlation")
    swing = by(rows, "y", "tornado", "swing")
    assert rho["x1"].rank == 1 and rho["x1"].value == pytest.approx(1.0)
    assert swing["x1"].rank == 1
    # E[median | top] - E[median | bottom] = e^1.9 - e^0.1 up to the groups' sampling error.
    assert swing["x1"].value == pytest.approx(math.exp(1.9) - math.exp(0.1), abs=0.1)
    for k in ("x2", "x3"):
        assert abs(rho[k].value) < 0.02  # se 1/sqrt(1e5) = 0.003: over 6 se
        assert abs(swing[k].value) < 0.25  # se of the swing ~0.04: 6 se; x1's is 5.6
        assert swing[k].ci_low < 0.0 < swing[k].ci_high or abs(swing[k].value) < 0.15
    s_rows = sobol.sobol_from_function(
        lambda u: {"y": np.exp(2.0 * u[:, 0])}, {"x1": [0], "x2": [1], "x3": [2]}, 3,
        n_base=2**10, rng=np.random.default_rng(5),
    )  # fmt: skip
    first = by(s_rows, "y", "sobol", "first_order")
    total = by(s_rows, "y", "sobol", "total_order")
    assert first["x1"].value == pytest.approx(1.0, abs=0.02)
    assert total["x1"].value == pytest.approx(1.0, abs=0.02)
    for k in ("x2", "x3"):
        assert abs(first[k].value) < 0.02 and total[k].value == pytest.approx(0.0, abs=1e-12)


# Every input fixed at the values of the hand-computed cases (tests/test_model_hand.py).
FIXED = fixed_inputs()


def write_toy_scenario(tmp_path: Path, varying: dict[str, str]) -> Path:
    """All inputs fixed (the values of test_model_hand) except ``varying`` (name -> spec)."""
    lines = [
        "name: toy-sensitivity",
        f"base: {REPO / 'configs' / 'base.yaml'}",
        "rank_correlation: null",
        "inputs:",
    ]
    for name, value in FIXED.items():
        lines.append(f"  {name}: {varying.get(name, f'{{dist: fixed, value: {value}}}')}")
    lines.append("  escalation_rule: {dist: categorical, categories: [cpi_capped], probs: [1.0]}")
    path = tmp_path / "toy.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


TOY_VARYING = {
    # With no reopening (hazard 0), talks open in 2030 and the 2028 contribution is the
    # agreement in force: 1,551.1 x (1 + CPI(2026)/100), a function of korea_cpi_pct alone.
    "korea_cpi_pct": "{dist: normal, p05: 1.2, p95: 3.2}",
    "krw_per_usd": "{dist: normal, p05: 1330.0, p95: 1560.0}",
    # No package deal in the toy, so its offset share changes nothing at all.
    "package_offset_share": "{dist: pert, min: 0.1, mode: 0.3, max: 0.6}",
}


def test_toy_scenario_through_the_pipeline(tmp_path: Path) -> None:
    scenario = load_scenario(write_toy_scenario(tmp_path, TOY_VARYING))
    result = run_forecast(scenario, as_of=AS_OF, seed=7, n_trials=100_000, chunk_size=32_768)
    rows = rank.sensitivity_from_trials(result.inputs, result.outcomes)
    metric = "contribution_krw_bn_2028"
    rho = by(rows, metric, "spearman", "rank_correlation")
    swing = by(rows, metric, "tornado", "swing")
    assert set(rho) == set(TOY_VARYING)  # fixed inputs give no rows
    assert rho["korea_cpi_pct"].rank == 1 and rho["korea_cpi_pct"].value > 0.999
    assert swing["korea_cpi_pct"].rank == 1 and swing["korea_cpi_pct"].unit == "KRW bn"
    main = swing["korea_cpi_pct"].value
    # The group medians sit at CPI's 5th and 95th percentiles (2.2 -+ 1.0): 1551.1 x 2.0 / 100.
    assert main == pytest.approx(1551.1 * 2.0 / 100, rel=0.03)
    for k in ("krw_per_usd", "package_offset_share"):
        assert abs(rho[k].value) < 0.02  # se 0.003
        assert abs(swing[k].value) < 0.05 * main  # se of these swings ~0.2 KRW bn, main ~30

    plan = plan_run(scenario, as_of=AS_OF, entropy=7, n_trials=1)
    assert list(sobol.sobol_factors(plan)) == [
        "package_offset_share", "krw_per_usd", "korea_cpi_pct",
        "event:reopen", "event:troop_threat", "event:furlough", "event:stopgap",
    ]  # fmt: skip
    s_rows = sobol.sobol_indices_for(plan, n_base=2**10, outputs=(metric,))
    first = by(s_rows, metric, "sobol", "first_order")
    total = by(s_rows, metric, "sobol", "total_order")
    assert first["korea_cpi_pct"].value == pytest.approx(1.0, abs=0.02)
    assert total["korea_cpi_pct"].value == pytest.approx(1.0, abs=0.02)
    assert total["korea_cpi_pct"].rank == 1
    for k in set(first) - {"korea_cpi_pct"}:
        assert abs(first[k].value) < 0.02 and abs(total[k].value) < 1e-9


# --------------------------------------------------------------------------- (c) real scenarios


@functools.cache
def baseline_plan(n_trials: int = 24_000, chunk_size: int = 8_192) -> Plan:
    scenario = load_scenario(REPO / "configs" / "scenarios" / "baseline.yaml")
    return plan_run(
        scenario, as_of=AS_OF, entropy=root_entropy(20261129), n_trials=n_trials,
        chunk_size=chunk_size,
    )  # fmt: skip


@functools.cache
def baseline_blocks() -> tuple[tuple[object, dict[str, FloatArray]], ...]:
    plan = baseline_plan()
    return tuple(run_block(plan, b) for b in range(plan.n_blocks))


def check_rows(rows: list[rank.SensitivityRow]) -> None:
    """Well-formed: ranks a permutation per (metric, method), values in range, CIs around."""
    table = to_sensitivity_frame(rows, run_id="test-run", created_at=CREATED)
    assert table.schema.equals(SENSITIVITY_SCHEMA, check_metadata=True)
    assert table.num_rows == len(rows)
    for field in SENSITIVITY_SCHEMA:
        if not field.nullable:
            assert table.column(field.name).null_count == 0, field.name
    ranks: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for r in rows:
        if r.rank is not None:
            previous = ranks[r.metric, r.method].setdefault(r.input, r.rank)
            assert previous == r.rank  # one rank per input, on all its rows
        if r.method == "spearman" and not math.isnan(r.value):
            assert -1.0 <= r.ci_low <= r.value <= r.ci_high <= 1.0
        if not math.isnan(r.value) and r.statistic != "swing":
            assert r.ci_low <= r.value <= r.ci_high
        assert r.n_trials > 0
    for by_input in ranks.values():
        assert sorted(by_input.values()) == list(range(1, len(by_input) + 1))


def test_baseline_rows_well_formed() -> None:
    result = run_forecast(
        baseline_plan().scenario, as_of=AS_OF, seed=20261129, n_trials=24_000, chunk_size=8_192
    )
    rows = rank.sensitivity_from_trials(result.inputs, result.outcomes)
    check_rows(rows)
    assert {r.metric for r in rows} == set(rank.KEY_OUTPUTS)
    # Every input but those the baseline fixes (no troop reduction or fiscal stress in sight;
    # a stop-gap holds the old level for one year).
    constant = {"troop_reduction", "korea_fiscal_stress", "stopgap_increase_pct", "stopgap_years"}
    assert {r.input for r in rows} == set(INPUT_NAMES) - constant
    rule = by(rows, "increase_pct", "spearman", "rank_correlation")["escalation_rule"]
    assert math.isnan(rule.value) and rule.rank is None  # nominal: no rank correlation
    n_settled = int(np.isfinite(result.outcomes.increase_pct).sum())
    assert n_settled < 24_000
    assert all(r.n_trials == n_settled for r in rows if r.metric == "increase_pct"
               and r.method == "spearman")  # fmt: skip


def test_fixed_inputs_are_absent(tmp_path: Path) -> None:
    hardline = load_scenario(REPO / "configs" / "scenarios" / "hardline.yaml")
    assert hardline.inputs["us_headline_ask_usd_bn"].dist == "fixed"
    result = run_forecast(hardline, as_of=AS_OF, seed=1, n_trials=8_000, chunk_size=4_096)
    rows = rank.sensitivity_from_trials(result.inputs, result.outcomes)
    check_rows(rows)
    assert "us_headline_ask_usd_bn" not in {r.input for r in rows}
    plan = plan_run(hardline, as_of=AS_OF, entropy=1, n_trials=1)
    factors = sobol.sobol_factors(plan)
    # The fixed headline stays a column of its correlation group (it feeds the copula) but
    # not in the group's name.
    group = next(k for k in factors if "trump_demand_intensity" in k)
    assert "us_headline_ask_usd_bn" not in group
    assert "us_headline_ask_usd_bn" in factors[group]


def test_baseline_sobol_rows_well_formed() -> None:
    plan = baseline_plan()
    rows = sobol.sobol_indices_for(plan, n_base=2**7, n_resamples=199)
    check_rows(rows)
    factors = sobol.sobol_factors(plan)
    assert "group:korea_opening_offer_increase_pct+korea_reservation_increase_pct" in factors
    assert not any(n in factors for n in ("trump_demand_intensity", "us_headline_ask_usd_bn"))
    assert len(rows) == 2 * len(factors) * len(rank.KEY_OUTPUTS)
    assert all(r.n_trials == 2**7 * (len(factors) + 2) for r in rows)
    assert all(np.isfinite(r.value) and r.unit == sobol.SOBOL_UNIT for r in rows)


def test_frame_nulls_and_utc() -> None:
    row = rank.SensitivityRow(
        "y", "x", "spearman", "rank_correlation", math.nan, math.nan, math.nan, math.nan, 10,
        None, rank.RANK_CORRELATION_UNIT, "",
    )  # fmt: skip
    table = to_sensitivity_frame([row], run_id="r1", created_at=CREATED)
    assert table.column("value").null_count == 1 and table.column("rank").null_count == 1
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert "as_of_date" not in table.schema.names and "scenario" not in table.schema.names
    with pytest.raises(ValueError, match="UTC"):
        to_sensitivity_frame([row], run_id="r1", created_at=dt.datetime(2026, 1, 1))


def test_tornado_point_mass_and_categories() -> None:
    rng = np.random.default_rng(8)
    n = 20_000
    likely_yes = (rng.random(n) < 0.95).astype(float)  # q10 = q90 = 1
    rule = rng.integers(0, 3, n).astype(float)  # catalog kind 'category'
    y = 5.0 * likely_yes + np.array([0.0, 2.0, -1.0])[rule.astype(int)] + rng.normal(size=n)
    rows = rank.rank_sensitivity({"package_deal": likely_yes, "escalation_rule": rule}, {"y": y})
    low = by(rows, "y", "tornado", "median_at_low_decile")
    high = by(rows, "y", "tornado", "median_at_high_decile")
    swing = by(rows, "y", "tornado", "swing")
    assert (low["package_deal"].input_value, high["package_deal"].input_value) == (0.0, 1.0)
    assert swing["package_deal"].value == pytest.approx(5.0, abs=0.3)
    # Categories: lowest-median code (2: -1) against highest (1: +2).
    assert (low["escalation_rule"].input_value, high["escalation_rule"].input_value) == (2.0, 1.0)
    assert swing["escalation_rule"].value == pytest.approx(3.0, abs=0.3)


def test_constant_output_gives_no_rows() -> None:
    x = np.linspace(0, 1, 100)
    assert rank.rank_sensitivity({"x": x}, {"y": np.ones(100)}) == []
    assert sobol.sobol_from_function(
        lambda u: {"y": np.ones(u.shape[0])}, {"x": [0]}, 1, n_base=64,
        rng=np.random.default_rng(0),
    ) == []  # fmt: skip
    with pytest.raises(ValueError, match="power of 2"):
        sobol.sobol_from_function(additive, {"x": [0]}, 3, n_base=100, rng=np.random.default_rng())


# --------------------------------------------------------------------------- (d) determinism


def test_same_inputs_same_rows() -> None:
    plan = baseline_plan()
    a = rank.sensitivity_from_sample(rank.sample_run(plan, capacity=10_000))
    b = rank.sensitivity_from_sample(rank.sample_run(plan, capacity=10_000))
    frame = functools.partial(to_sensitivity_frame, run_id="r", created_at=CREATED)
    assert len(a) > 0 and frame(a).equals(frame(b))  # NaN-aware, bit-for-bit
    s1 = sobol.sobol_indices_for(plan, n_base=2**6, n_resamples=99)
    s2 = sobol.sobol_indices_for(plan, n_base=2**6, n_resamples=99)
    assert s1 == s2
    s3 = sobol.sobol_indices_for(plan, n_base=2**6, n_resamples=99, rng=np.random.default_rng(9))
    assert s3 != s1


def _sample_of(blocks: list[int], capacity: int) -> rank.TrialSample:
    plan = baseline_plan()
    parts = [
        rank.sample_trials(
            baseline_blocks()[b][1], baseline_blocks()[b][0],  # type: ignore[arg-type]
            first_trial_index=b * plan.chunk_size, capacity=capacity,
        )
        for b in blocks
    ]  # fmt: skip
    sample = parts[0]
    for part in parts[1:]:
        sample = rank.merge_samples(sample, part)
    return sample


@settings(max_examples=15, deadline=None)
@given(order=st.permutations([0, 1, 2]), capacity=st.integers(1, 24_000), tree=st.booleans())
def test_sample_independent_of_block_order(order: list[int], capacity: int, tree: bool) -> None:
    reference = _sample_of([0, 1, 2], capacity)
    if tree:  # merge (a, (b, c)) instead of ((a, b), c)
        plan = baseline_plan()
        parts = [
            rank.sample_trials(
                baseline_blocks()[b][1], baseline_blocks()[b][0],  # type: ignore[arg-type]
                first_trial_index=b * plan.chunk_size, capacity=capacity,
            )
            for b in order
        ]  # fmt: skip
        sample = rank.merge_samples(parts[0], rank.merge_samples(parts[1], parts[2]))
    else:
        sample = _sample_of(order, capacity)
    assert sample.n_trials == min(capacity, 24_000)
    for got, want in zip(sample.arrays(), reference.arrays(), strict=True):
        assert got.keys() == want.keys()
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])


def test_sample_is_first_trials_of_the_run() -> None:
    plan = baseline_plan()
    result = run_forecast(
        plan.scenario, as_of=AS_OF, seed=20261129, n_trials=24_000, chunk_size=8_192
    )
    sample = rank.sample_run(plan, capacity=10_000)
    inputs, outputs = sample.arrays()
    np.testing.assert_array_equal(inputs["korea_cpi_pct"], result.inputs["korea_cpi_pct"][:10_000])
    np.testing.assert_array_equal(
        outputs["contribution_krw_bn_2028"], result.outcomes.contribution_krw_bn[:10_000, 2]
    )
    with pytest.raises(ValueError, match="merged twice"):
        rank.merge_samples(sample, sample)
    # The evidence mask keeps only kept trials of the block's share of the sample.
    outcomes, draws = baseline_blocks()[0]
    mask = np.arange(8_192) % 2 == 0
    part = rank.sample_trials(
        draws,
        outcomes,
        first_trial_index=0,
        capacity=1_000,
        mask=mask,  # type: ignore[arg-type]
    )
    assert part.n_trials == 500


# --------------------------------------------------------------------------- (e) fast ranks

# Values with many ties (a few distinct levels) or none (continuous), and a mask of trials.
tied_or_not = st.one_of(
    st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=300),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
)


@settings(max_examples=200, deadline=None)
@given(values=tied_or_not, reverse=st.booleans())
def test_average_ranks_equal_scipy_rankdata(values: list[float], reverse: bool) -> None:
    x = np.asarray(values)
    # Any argsort will do, e.g. one listing tied values in reverse order.
    order = np.argsort(-x, kind="stable")[::-1] if reverse else None
    np.testing.assert_array_equal(rank.average_ranks(x, order), stats.rankdata(x))


@settings(max_examples=200, deadline=None)
@given(values=tied_or_not, data=st.data())
def test_subset_ranks_from_the_full_order(values: list[float], data: st.DataObject) -> None:
    x = np.asarray(values)
    keep = np.asarray(data.draw(st.lists(st.booleans(), min_size=x.size, max_size=x.size)))
    sub = rank._subset_order(np.argsort(x), keep)
    np.testing.assert_array_equal(rank.average_ranks(x[keep], sub), stats.rankdata(x[keep]))


def test_rank_rows_with_ties_and_missing_outputs() -> None:
    rng = np.random.default_rng(12)
    n = 5_000
    inputs = {
        "a": rng.normal(size=n),
        "b": np.round(rng.normal(size=n), 1),  # about 60 distinct values: heavy ties
        "c": (rng.random(n) < 0.3).astype(float),  # a yes/no
    }
    y_all = inputs["a"] + inputs["b"] + rng.normal(size=n)
    y_nan = np.where(rng.random(n) < 0.2, np.nan, np.round(y_all, 0))  # ties and missing
    outputs = {"y_all": y_all, "y_nan": y_nan, "y_nan2": 2.0 * y_nan}
    rows = rank.rank_sensitivity(inputs, outputs)
    finite = np.isfinite(y_nan)
    for metric, keep in (("y_all", np.ones(n, bool)), ("y_nan", finite), ("y_nan2", finite)):
        rho = by(rows, metric, "spearman", "rank_correlation")
        for name, x in inputs.items():
            want = stats.spearmanr(x[keep], outputs[metric][keep]).statistic
            assert rho[name].value == pytest.approx(want, abs=1e-12)
            assert rho[name].n_trials == int(keep.sum())
    # Ranks and groups shared between outputs on the same trials change no row: each output
    # analysed alone gives the same rows.
    alone = [r for m in outputs for r in rank.rank_sensitivity(inputs, {m: outputs[m]})]
    frame = functools.partial(to_sensitivity_frame, run_id="r", created_at=CREATED)
    assert frame(rows).equals(frame(alone))


# --------------------------------------------------------------------------- (f) Sobol' design


def test_sobol_design_pages() -> None:
    """The function sees A, B and each A_B^i exactly as designed, even if it writes into its
    argument (as the copula does): A_B^i is A with factor i's columns, and only those, from B."""
    seen: list[FloatArray] = []

    def spoiling(u: FloatArray) -> dict[str, FloatArray]:
        seen.append(u.copy())
        out = {"y": additive(u)["y"]}
        u[:] = 0.5  # a careless model: must not change the pages it is given later
        return out

    n, factors = 2**5, {"x1": [0], "x23": [1, 2]}
    sobol.sobol_from_function(spoiling, factors, 4, n_base=n, rng=np.random.default_rng(5))
    rows = np.concatenate(seen)
    assert rows.shape == (n * (len(factors) + 2), 4)
    a, b = rows[:n], rows[n : 2 * n]
    np.testing.assert_array_equal(a[:, 3], 0.5)  # owned by no factor: held at 0.5
    assert np.all(a[:, :3] != b[:, :3])
    for i, cols in enumerate(factors.values()):
        expected = a.copy()
        expected[:, cols] = b[:, cols]
        np.testing.assert_array_equal(rows[(2 + i) * n : (3 + i) * n], expected)


def test_sobol_model_is_row_wise_and_leaves_its_design() -> None:
    plan = baseline_plan()
    assert plan.copula is not None and plan.copula.columns  # the copula is exercised
    columns = len(INPUT_NAMES) + len(sobol.EVENT_COLUMNS)
    u = np.random.default_rng(6).random((600, columns))
    before = u.copy()
    model = sobol._plan_model(plan, rank.KEY_OUTPUTS)
    whole = model(u)
    np.testing.assert_array_equal(u, before)
    part = model(u[:200])
    for metric, values in part.items():
        np.testing.assert_array_equal(values, whole[metric][:200])
