"""`compare`: a what-if run next to the official run of the same date and scenario."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from report_fixtures import publish_forecast
from typer.testing import CliRunner

from flows.cli import app
from pipeline.outputs import io
from pipeline.outputs.compare import CompareError, compare_runs

DAY = dt.date(2026, 3, 5)
OVERRIDE = {"us_headline_ask_usd_bn.value": 12}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("compare")
    official, whatif = root / "official", root / "whatif"
    # An earlier date's run (a same-date one would be replaced by the next), then the official.
    first, _ = publish_forecast(
        official, ["hardline"], as_of=DAY - dt.timedelta(days=1), n_trials=1500
    )
    second, _ = publish_forecast(official, ["hardline"], as_of=DAY, n_trials=1500)
    run, _ = publish_forecast(whatif, ["hardline"], as_of=DAY, n_trials=1500, overrides=OVERRIDE)
    return {"official": official, "whatif": whatif, "first": first, "second": second, "run": run}


def test_compare_finds_the_official_run_and_the_override(folders: dict[str, object]) -> None:
    [c] = compare_runs(folders["whatif"], official_dir=folders["official"])  # type: ignore[arg-type]
    assert (c.scenario, c.as_of_date) == ("hardline", DAY)
    assert c.whatif_run_id == folders["run"]
    assert c.official_run_id == folders["second"]  # the latest of that date and scenario
    assert c.overrides == [("us_headline_ask_usd_bn", "fixed 10", "fixed 12")]
    assert c.same_seed


def test_difference_and_noise_are_hand_computed_from_both_summaries(
    folders: dict[str, object],
) -> None:
    [c] = compare_runs(folders["whatif"], official_dir=folders["official"])  # type: ignore[arg-type]
    mine = io.latest_summary(folders["whatif"], "hardline")  # type: ignore[arg-type]
    theirs = io.latest_summary(folders["official"], "hardline")  # type: ignore[arg-type]
    key = ("increase_pct", "p50")
    a = mine.set_index(["metric", "statistic"]).loc[key]
    b = theirs.set_index(["metric", "statistic"]).loc[key]
    row = c.rows.set_index(["metric", "statistic"]).loc[key]
    assert row.value == a.value and row.previous_value == b.value
    assert row.change == pytest.approx(a.value - b.value)
    assert row.noise_se == pytest.approx(math.hypot(a.mc_standard_error, b.mc_standard_error))
    p = c.rows.set_index(["metric", "statistic"]).loc[("lapse", "prob")]
    pa_, pb = p.value, p.previous_value
    binomial = math.hypot(math.sqrt(pa_ * (1 - pa_) / 1500), math.sqrt(pb * (1 - pb) / 1500))
    assert p.noise_se == pytest.approx(binomial)


def test_against_names_the_official_run(folders: dict[str, object]) -> None:
    """Any published run can be named, e.g. the previous date's."""
    [c] = compare_runs(
        folders["whatif"], official_dir=folders["official"], against=str(folders["first"])
    )  # type: ignore[arg-type]
    assert c.official_run_id == folders["first"] and c.overrides


def test_errors_say_what_exists(folders: dict[str, object]) -> None:
    with pytest.raises(CompareError, match="replaces the official partition"):
        compare_runs(folders["whatif"])  # type: ignore[arg-type]
    with pytest.raises(CompareError, match="it has: hardline"):
        compare_runs(folders["whatif"], official_dir=folders["official"], scenarios=["base"])  # type: ignore[arg-type]
    with pytest.raises(CompareError, match="no completed run 'nope'"):
        compare_runs(folders["whatif"], run_id="nope")  # type: ignore[arg-type]


def test_cli_compare_prints_both_ranges_the_difference_and_the_override(
    folders: dict[str, object],
) -> None:
    args = ["compare", "--output", str(folders["whatif"]), "--official-output",
            str(folders["official"])]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert f"vs official run {folders['second']}" in text
    assert "overridden: us_headline_ask_usd_bn: fixed 10 -> fixed 12" in text
    assert "first-year increase [%] p50" in text and "P(no agreement within the horizon)" in text
    assert "noise (1 s.e.)" in text and " pp " in text
    bad = CliRunner().invoke(app, ["compare", "--output", str(folders["whatif"])])
    assert bad.exit_code == 2 and bad.output.startswith("error:")
