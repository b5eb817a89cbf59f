"""`compare`: a what-if run next to the official run of the same date and scenario."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
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
    with pytest.raises(CompareError, match="run the official forecast for that date"):
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


def test_whatif_in_the_official_folder_is_kept_apart(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    official, _ = publish_forecast(out, ["hardline", "baseline"], as_of=DAY, n_trials=1500)
    before = io.latest_summary(out)
    run, _ = publish_forecast(out, ["hardline"], as_of=DAY, n_trials=1500, overrides=OVERRIDE,
                              what_if=True)  # fmt: skip
    # The official partition and latest/ are untouched; the what-if has a folder of its own.
    assert (out / "whatif" / run / "summary" / f"as_of_date={DAY}" / "scenario=hardline").is_dir()
    assert set(io.read_dataset(out, "summary").to_pandas().run_id) == {official}
    pd.testing.assert_frame_equal(io.latest_summary(out), before)
    latest = pq.read_table(out / "latest" / "summary.parquet").to_pandas()
    assert set(latest.run_id) == {official} and set(latest.scenario) == {"hardline", "baseline"}
    runs = io.read_dataset(out, "runs").to_pandas().set_index("run_id")
    assert runs.loc[official, "run_kind"] == "official" and pd.isna(runs.loc[official, "overrides"])
    assert runs.loc[run, "run_kind"] == "what-if"
    assert json.loads(runs.loc[run, "overrides"]) == {"set": OVERRIDE}
    # compare finds both in the one folder, by default the latest what-if.
    [c] = compare_runs(out)
    assert (c.whatif_run_id, c.official_run_id) == (run, official)
    assert c.overrides == [("us_headline_ask_usd_bn", "fixed 10", "fixed 12")]


def test_run_kind_is_decided_by_the_request(tmp_path: Path) -> None:
    from pipeline.spec.request import DEFAULT_CONFIG_DIR, RunRequest

    assert RunRequest().run_kind == "official" and RunRequest().overrides_json() is None
    assert RunRequest(scenarios=("baseline", "hardline")).run_kind == "official"
    inside = f"{DEFAULT_CONFIG_DIR}/scenarios/hardline.yaml"
    assert RunRequest(scenarios=(inside,), evidence_file=f"{DEFAULT_CONFIG_DIR}/evidence.yaml"
                      ).run_kind == "official"  # fmt: skip
    mine = tmp_path / "mine.yaml"
    request = RunRequest(
        scenarios=("baseline", str(mine)), overrides={"trump_demand_intensity.mode": 0.8},
        config_dir=str(tmp_path), evidence_file=str(tmp_path / "ev.yaml"),
    )  # fmt: skip
    assert request.run_kind == "what-if"
    assert json.loads(request.overrides_json() or "") == {
        "set": {"trump_demand_intensity.mode": 0.8},
        "config_dir": str(tmp_path.resolve()),
        "evidence_file": str((tmp_path / "ev.yaml").resolve()),
        "scenario_files": [str(mine.resolve())],
    }
