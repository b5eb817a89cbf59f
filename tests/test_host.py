"""Another host nation and calendar from configuration (issue 10, item 2)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from pipeline.common import month_index_dates
from pipeline.compose import RunSettings, check_as_of, run_scenario, scenario_tables
from pipeline.model.seeding import root_entropy
from pipeline.spec.evidence import evidence_as_of, load_evidence
from pipeline.spec.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "configs" / "examples" / "japan_like.yaml"
CREATED = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def _tables(scenario, as_of=dt.date(2026, 6, 1)):  # type: ignore[no-untyped-def]
    run = RunSettings(as_of=as_of, entropy=root_entropy(7), n_trials=2000, chunk_size=1000)
    evidence = evidence_as_of(load_evidence(ROOT / "configs" / "evidence.yaml"), as_of)
    result = run_scenario(scenario, run, evidence, n_groups=1)
    return scenario_tables(result, run_id="t", created_at=CREATED)


def test_example_host_runs_on_the_plain_path_with_its_currency_and_calendar() -> None:
    scenario = load_scenario(EXAMPLE)
    assert scenario.host.currency == "JPY" and scenario.host.expiry_fiscal_year == 2026
    metrics = set(_tables(scenario)["summary"].column("metric").to_pylist())
    assert {"first_year_jpy_bn", "contribution_jpy_bn_2028"} <= metrics
    assert not any("krw" in m for m in metrics)


def test_example_host_dates_month_indexes_from_april() -> None:
    """Model month 0 of the April fiscal year 2026 is 1 April 2026: the published unit says
    so and every date (summary value_date, trials' talks_start_date and settlement_date) is
    counted from it, not from January."""
    scenario = load_scenario(EXAMPLE)
    as_of = dt.date(2026, 6, 1)
    run = RunSettings(as_of=as_of, entropy=root_entropy(7), n_trials=600, chunk_size=300,
                      trials_sample=200)  # fmt: skip
    evidence = evidence_as_of(load_evidence(ROOT / "configs" / "evidence.yaml"), as_of)
    result = run_scenario(scenario, run, evidence, n_groups=1)
    tables = scenario_tables(result, run_id="t", created_at=CREATED)
    rows = tables["summary"].to_pylist()
    talks = {r["statistic"]: r for r in rows if r["metric"] == "talks_start_month"}
    assert talks["p50"]["unit"] == "month index (0 = Apr 2026)"
    (expected,) = month_index_dates([talks["p50"]["value"]], 2026, 4)
    assert talks["p50"]["value_date"] == expected.astype(dt.date)
    # By hand: the as-of date (June 2026) is model month 2, so talks open no earlier.
    assert talks["p50"]["value"] >= 2.0 and talks["p50"]["value_date"] >= dt.date(2026, 6, 1)
    hist = tables["histograms"]
    units = set(hist.filter(pc.equal(hist["metric"], "talks_start_month"))["unit"].to_pylist())
    assert units == {"month index (0 = Apr 2026)"}
    trials = tables["trials"]
    assert trials.num_rows == 200
    for month, day in (("talks_start_month", "talks_start_date"),
                       ("settlement_month", "settlement_date")):  # fmt: skip
        months = np.array(trials[month].to_pylist(), dtype=float)
        want = [None if np.isnan(m) else d.astype(dt.date)
                for m, d in zip(months, month_index_dates(months, 2026, 4), strict=True)]  # fmt: skip
        assert trials[day].to_pylist() == want
        assert any(d is not None for d in want)


def test_example_host_as_of_calendar_is_its_fiscal_years() -> None:
    """The model calendar of the April host runs from 1 April 2026 to 31 March 2031."""
    scenario = load_scenario(EXAMPLE)
    check_as_of(scenario, dt.date(2026, 4, 1))
    check_as_of(scenario, dt.date(2031, 3, 31))
    for outside in (dt.date(2026, 3, 31), dt.date(2031, 4, 1)):
        with pytest.raises(ScenarioError, match="2026-04-01 to 2031-03-31"):
            check_as_of(scenario, outside)


def test_horizon_2027_runs_and_names_its_key_outputs_from_the_path() -> None:
    scenario = load_scenario(ROOT / "configs/scenarios/baseline.yaml", {"model.horizon_year": 2027})
    tables = _tables(scenario)
    assert set(tables["sensitivity"].column("metric").to_pylist()) == {
        "increase_pct",
        "months_to_settlement",
        "contribution_krw_bn_2027",
    }


def test_cli_runs_the_example(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "-s", str(EXAMPLE), "--trials", "2000",
         "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "JPY bn" in done.stdout


def _write(tmp_path: Path, yaml_host: str, levels: str, extra: str = "") -> Path:
    (tmp_path / "levels.csv").write_text(levels)
    path = tmp_path / "host.yaml"
    path.write_text(
        f"name: h\nbase: {ROOT / 'configs/base.yaml'}\n"
        "model: {calendar_base_year: 2026, horizon_year: 2030}\n"
        f"host:\n  name: H\n  levels_file: levels.csv\n  macro_file: null\n{yaml_host}{extra}"
    )
    return path


GOOD = "year,contribution_jpy_bn\n2024,100\n2025,101\n2026,102\n"


@pytest.mark.parametrize(
    ("host", "levels", "extra", "field"),
    [
        (  # a missing year of levels
            "  currency: JPY\n  agreement_expiry_date: 2027-12-31\n",
            "year,contribution_jpy_bn\n2024,100\n2026,102\n",
            "",
            "contribution_jpy_bn",
        ),
        ("  currency: YEN\n  agreement_expiry_date: 2027-12-31\n", GOOD, "", "host.currency"),
        (  # expiry before the base year
            "  currency: JPY\n  agreement_expiry_date: 2025-12-31\n",
            GOOD,
            "",
            "host.agreement_expiry_date",
        ),
        (  # administrations out of order
            "  currency: JPY\n  agreement_expiry_date: 2027-12-31\n",
            GOOD,
            "us_administrations:\n  - {name: A, took_office: 2029-01-20}\n"
            "  - {name: B, took_office: 2025-01-20}\n",
            "us_administrations",
        ),
    ],
)
def test_bad_host_input_names_file_and_field(
    tmp_path: Path, host: str, levels: str, extra: str, field: str
) -> None:
    path = _write(tmp_path, host, levels, extra)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert err.value.field == field
    expected = "levels.csv" if field.startswith("contribution") else "host.yaml"
    assert err.value.source.endswith(expected)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "-s", str(path), "--trials", "100",
         "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2
    assert field in done.stderr + done.stdout
    assert not out.exists()


def test_good_host_file_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, "  currency: JPY\n  agreement_expiry_date: 2027-12-31\n", GOOD)
    assert load_scenario(path).host.levels == {2024: 100.0, 2025: 101.0, 2026: 102.0}
