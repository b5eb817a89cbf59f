"""Tidy, typed columns (schema version 3): years as a column, dates beside month indexes,
integer years, and the trials dataset with each trial's sampled inputs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.analysis.accumulators import metric_unit
from pipeline.common import month_index_dates
from pipeline.compose import RunSettings, plan_for, run_scenario, scenario_tables
from pipeline.model.conditioning import condition_mask
from pipeline.model.plan import run_block
from pipeline.model.seeding import root_entropy
from pipeline.outputs.tables._columns import value_dates
from pipeline.spec.catalog import INPUTS
from pipeline.spec.evidence import EvidenceState
from pipeline.spec.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
CREATED = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
AS_OF = dt.date(2026, 9, 15)


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        (0.0, dt.date(2025, 1, 1)),
        (18.5, dt.date(2026, 7, 16)),  # July 2026 has 31 days: floor(0.5 * 31) = 15 days in
        (11.999, dt.date(2025, 12, 31)),
        (13.0, dt.date(2026, 2, 1)),
        (13.99, dt.date(2026, 2, 28)),  # February 2026: 28 days
        (-1.0, dt.date(2024, 12, 1)),
    ],
)
def test_month_index_dates_by_hand(month: float, expected: dt.date) -> None:
    (day,) = month_index_dates([month], 2025)
    assert day == np.datetime64(expected)
    assert np.isnat(month_index_dates([np.nan], 2025)[0])


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        (0.0, dt.date(2025, 4, 1)),  # month 0 = 1 April of the base year
        (18.5, dt.date(2026, 10, 16)),  # Apr 2025 + 18 = Oct 2026 (31 days): 15 days in
        (8.999, dt.date(2025, 12, 31)),
        (9.0, dt.date(2026, 1, 1)),  # the fiscal year 2025 goes on into January 2026
        (10.99, dt.date(2026, 2, 28)),  # February 2026: 28 days
        (11.999, dt.date(2026, 3, 31)),  # last day of fiscal year 2025
        (12.0, dt.date(2026, 4, 1)),
        (-1.0, dt.date(2025, 3, 1)),
    ],
)
def test_month_index_dates_by_hand_for_a_fiscal_year_from_april(
    month: float, expected: dt.date
) -> None:
    (day,) = month_index_dates([month], 2025, 4)
    assert day == np.datetime64(expected)


def test_month_index_units_name_the_first_month_and_old_units_still_date() -> None:
    assert metric_unit("talks_start_month", 2026) == "month index (0 = Jan 2026)"
    assert metric_unit("talks_start_month", 2026, 4) == "month index (0 = Apr 2026)"
    assert metric_unit("talks_start_month", 2026, 12) == "month index (0 = Dec 2026)"
    dates = value_dates(
        [18.5, 18.5, 18.5, 18.5, 3.0],
        ["month index (0 = Jan 2025)", "month index (0 = Apr 2025)",
         "month index (0 = Oct 2025)", "month index (0 = Apr 2025)", "months"],
        ["p50", "p50", "mean", "sd", "p50"],
    )  # fmt: skip
    assert dates.to_pylist() == [
        dt.date(2026, 7, 16), dt.date(2026, 10, 16), dt.date(2027, 4, 16), None, None,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    """Baseline with talks known open since June 2025: conditioning drops trials that settled
    before the as-of date, so the trial sample has gaps in its global indexes."""
    scenario = load_scenario(ROOT / "configs" / "scenarios" / "baseline.yaml")
    run = RunSettings(as_of=AS_OF, entropy=root_entropy(11), n_trials=1200, chunk_size=400,
                      trials_sample=700)  # fmt: skip
    evidence = EvidenceState(AS_OF, (), dt.date(2025, 6, 1), None)
    result = run_scenario(scenario, run, evidence, n_groups=2)
    out = scenario_tables(result, run_id="t", created_at=CREATED)
    out["_plan"] = (scenario, run, evidence)  # type: ignore[assignment]
    return out


def test_summary_has_year_base_metric_and_value_date(tables: dict[str, pa.Table]) -> None:
    rows = tables["summary"].to_pylist()
    assert {r["base_metric"] for r in rows if r["year"] is not None} >= {
        "contribution_krw_bn", "contribution_usd_m", "settled_by", "settled_in",
        "reopened_before",
    }  # fmt: skip
    for r in rows:
        if r["metric"][-4:].isdigit():
            assert r["year"] == int(r["metric"][-4:])
            assert r["base_metric"] == r["metric"][:-5]
        elif r["metric"] in ("increase_pct", "settled_by_horizon", "no_deal_by_horizon"):
            assert r["year"] is None and r["base_metric"] == r["metric"]
    assert tables["summary"].schema.field("year").type == pa.int32()
    talks = {r["statistic"]: r for r in rows if r["metric"] == "talks_start_month"}
    base = int(talks["p50"]["unit"].rstrip(")")[-4:])  # "month index (0 = Jan 2026)"
    assert talks["p50"]["value_date"] == month_index_dates([talks["p50"]["value"]], base)[0]
    assert talks["sd"]["value_date"] is None
    assert all(r["value_date"] is None for r in rows if r["metric"] == "increase_pct")
    hist = tables["histograms"]
    assert set(hist.filter(pa.compute.equal(hist["metric"], "contribution_krw_bn_2028"))
               .column("year").to_pylist()) == {2028}  # fmt: skip


def test_trials_hold_typed_years_dates_and_the_sampled_inputs(
    tables: dict[str, pa.Table],
) -> None:
    trials = tables["trials"]
    schema = trials.schema
    for name in ("first_year", "stopgap_first_year", "renewal_first_year"):
        assert schema.field(name).type == pa.int32(), name
    assert schema.field("settlement_date").type == pa.date32()
    assert schema.names.index("settlement_date") == schema.names.index("settlement_month") + 1
    assert [f"input_{i.name}" for i in INPUTS] == [
        n for n in schema.names if n.startswith("input_")
    ]
    assert schema.field("input_escalation_rule").type == pa.string()
    assert schema.field("input_package_deal").type == pa.bool_()
    assert schema.field("input_krw_per_usd").metadata[b"unit"] == b"KRW per USD"

    scenario, run, evidence = tables["_plan"]  # type: ignore[misc]
    plan = plan_for(scenario, run, evidence)
    index = np.array(trials.column("trial_index").to_pylist())
    assert np.all(np.diff(index) > 0) and index.max() < run.trials_sample
    kept = []
    draws_all = []
    for block in range(plan.n_blocks):
        outcomes, draws = run_block(plan, block)
        mask = condition_mask(outcomes, evidence)
        kept.append(np.ones(outcomes.n_trials, bool) if mask is None else mask)
        draws_all.append(draws)
    kept_index = np.flatnonzero(np.concatenate(kept))
    expected = kept_index[kept_index < run.trials_sample]
    assert len(expected) < run.trials_sample  # conditioning did drop trials: gaps
    assert index.tolist() == expected.tolist()
    intensity = np.concatenate([d["trump_demand_intensity"] for d in draws_all])[index]
    assert trials.column("input_trump_demand_intensity").to_pylist() == intensity.tolist()
    first = trials.column("first_year").to_pylist()
    settled = trials.column("settled_by_horizon").to_pylist()
    assert all((y is not None) == s for y, s in zip(first, settled, strict=True))
    months = np.array(trials.column("settlement_month").to_pylist(), dtype=float)
    dates = trials.column("settlement_date").to_pylist()
    base = plan.settings.calendar_base_year
    assert dates == [None if np.isnan(m) else d.astype(dt.date)
                     for m, d in zip(months, month_index_dates(months, base), strict=True)]  # fmt: skip
