"""The CLI: user errors exit 2 with one clear line and write nothing; a real run and `show`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def output(tmp_path: Path) -> Path:
    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "keep.txt").write_text("earlier outputs")
    return folder


def _bad_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ninputs:\n  trump_demand_intensity: {dist: pert, min: 0.2, "
                    "mode: 0.5, max: 1.0, foo: 1}\n")  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--trials", "0"], "--trials: must be at least 1 (got 0)"),
        (["--set", "not_an_input.p95=3"], "unknown input or setting 'not_an_input'"),
        (["--set", "krw_per_usd"], "expected INPUT.FIELD=VALUE"),
        (
            ["--set", "trump_demand_intensity=0.5"],
            "name a field of the input: INPUT.FIELD=VALUE, e.g. trump_demand_intensity.min=...; "
            "fields of 'trump_demand_intensity' (dist pert): min, mode, max, shape",
        ),
        (["--set", "trump_demand_intensity.max=1.5"], "outside the allowed range [0, 1]"),
        (["--set", "krw_per_usd.p95=abc"], "--set: inputs.krw_per_usd.p95"),
        (["--scenario", "nope"], "unknown scenario; known: baseline"),
        (["--scenario", "Bad Name"], "[a-z0-9_-]{1,64}"),
        (["--as-of", "2026-13-01"], "--as-of: '2026-13-01' is not a date"),
        (["--chunk-size", "0"], "--chunk-size: must be at least 1"),
        (["--workers", "0"], "--workers: must be at least 1"),
        (["--seed", "-1"], "--seed: must be at least 0"),
        (["--target-se", "0"], "--target-se: must be greater than 0"),
        (["--max-trials", "5000"], "--max-trials: needs --target-se"),
        (["--trials", "9000", "--target-se", "1", "--max-trials", "5000"], "must be at least"),
        (["--runner", "mpi"], "--runner: 'mpi' is not one of auto, threads, processes, dask"),
        (["--dask-address", "tcp://127.0.0.1:8786"], "--dask-address needs --runner dask"),
        (["--runner", "dask", "--dask-address", "nowhere"], "is not an address like"),
    ],
)
def test_user_errors_exit_2_and_write_nothing(output: Path, args: list[str], needle: str) -> None:
    before = _snapshot(output)
    result = runner.invoke(app, ["run", "--output", str(output), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().startswith("error:")
    assert len(result.output.strip().splitlines()) == 1
    assert _snapshot(output) == before


def test_bad_scenario_file_names_file_and_field(output: Path, tmp_path: Path) -> None:
    bad = _bad_scenario(tmp_path)
    result = runner.invoke(app, ["run", "--output", str(output), "--scenario", str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.output and "inputs.trump_demand_intensity.foo" in result.output
    assert "allowed: min, mode, max, shape" in result.output
    assert _snapshot(output) == {str(output / "keep.txt"): b"earlier outputs"}


def test_validate(tmp_path: Path, repo_root: Path) -> None:
    good = runner.invoke(app, ["validate", str(repo_root / "configs/scenarios/hardline.yaml")])
    assert good.exit_code == 0 and "ok" in good.output
    bad = runner.invoke(app, ["validate", str(_bad_scenario(tmp_path))])
    assert bad.exit_code == 2 and "unknown key 'foo'" in bad.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ninputs: [\n")
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 2 and "invalid YAML at line" in result.output


def test_bad_option_type_exits_2() -> None:
    result = runner.invoke(app, ["run", "--trials", "many"])
    assert result.exit_code == 2


def test_show_without_outputs_is_a_user_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["show", "--output", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no outputs yet" in result.output


@pytest.mark.slow
def test_run_then_show_end_to_end(prefect_harness: str, tmp_path: Path, repo_root: Path) -> None:
    """The console script in a subprocess, against the session's Prefect API."""
    out = tmp_path / "outputs"
    env = {**os.environ, "PREFECT_API_URL": prefect_harness, "COLUMNS": "200"}
    cli = [sys.executable, "-m", "flows.cli"]
    run = subprocess.run(
        [*cli, "run", "-s", "baseline", "-s", "status_quo_holds", "--trials", "4000",
         "--chunk-size", "2000", "--seed", "3", "--as-of", "2026-11-29", "--output", str(out)],
        env=env, capture_output=True, text=True, timeout=300, cwd=repo_root,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "baseline" in run.stdout and "status_quo_holds" in run.stdout
    assert f"outputs in {out}" in run.stdout.replace("\n", "")
    assert "Traceback" not in run.stderr and "telemetry" not in run.stderr.lower()
    show = subprocess.run([*cli, "show", "--output", str(out), "-s", "baseline", "--all"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=repo_root)  # fmt: skip
    assert show.returncode == 0, show.stderr
    assert "increase_pct" in show.stdout and "2026-11-29" in show.stdout
    # Phases on stderr, each with its seconds, and the total wall time at the end.
    for phase in (
        "checking",
        "starting Prefect",
        "simulating",
        "building tables",
        "publishing",
        "report",
    ):
        assert re.search(rf"^  {phase} +\d+\.\d s", run.stderr, re.MULTILINE), run.stderr
    assert re.search(
        r"in \d+\.\d s wall time \(checking \d+\.\d s, starting Prefect",
        run.stdout.replace("\n", " "),
    )


def test_version_and_help_defaults() -> None:
    from flows.provenance import package_version

    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.strip() == f"sma-forecast {package_version()}"
    text = " ".join(runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "Trials per scenario. [default: (200,000 from base.yaml)]" in text
    assert "[default: (today in Asia/Seoul)]" in text and "[default: 2]" in text


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import datetime as dt

    from tests.report_fixtures import publish_forecast

    out = tmp_path_factory.mktemp("show") / "outputs"
    publish_forecast(out, ["baseline", "hardline"], as_of=dt.date(2026, 3, 5), n_trials=1500)
    return out


def test_show_is_concise_and_all_prints_every_metric(published: Path) -> None:
    short = runner.invoke(app, ["show", "--output", str(published)])
    assert short.exit_code == 0, short.output
    assert "baseline" in short.output and "hardline" in short.output
    assert "When agreement comes" in short.output and "show --all" in short.output
    assert "increase_pct" not in short.output  # metric ids only with --all
    full = runner.invoke(app, ["show", "--output", str(published), "--all", "-s", "baseline"])
    assert full.exit_code == 0, full.output
    rows = [line for line in full.output.splitlines() if "first_year " in line]
    assert rows and all("2,0" not in line for line in rows)  # years are not 2,031
    assert any(re.search(r"p50\s*│\s+20\d\d\s", line) for line in rows)
    assert len(full.output.splitlines()) > 2 * len(short.output.splitlines())


def test_show_unknown_scenario_lists_the_published_ones(published: Path) -> None:
    result = runner.invoke(app, ["show", "--output", str(published), "-s", "base"])
    assert result.exit_code == 2
    assert "no published summary for 'base'" in result.output
    assert "published: baseline, hardline" in result.output


def test_headline_fits_80_columns_and_is_one_table_when_wide(published: Path) -> None:
    import pyarrow as pa
    from rich.console import Console

    from flows.console import headline_tables
    from pipeline.outputs import io
    from pipeline.outputs.headline import headline

    frame = io.latest_summary(published)
    cols = ["metric", "statistic", "value", "n_trials"]
    heads = {
        str(n): headline(pa.Table.from_pandas(g[cols], preserve_index=False))
        for n, g in frame.groupby("scenario")
    }
    narrow = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    for table in headline_tables(heads, "title", 80):
        narrow.print(table)
    text = narrow.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    h = heads["hardline"]
    row = next(line for line in text.splitlines() if line.strip().startswith("hardline"))
    assert f"{h['increase_pct_p50']:.1f} ({h['increase_pct_p10']:.1f}-" in row
    assert len(headline_tables(heads, "title", 80)) == 3
    assert len(headline_tables(heads, "title", 160)) == 2


def test_phase_display_times_each_phase_in_order() -> None:
    from rich.console import Console

    from flows.console import PhaseDisplay
    from flows.progress import PHASES, progress_reporting, report_phase, report_progress

    console = Console(width=100, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    display = PhaseDisplay(console)
    with display, progress_reporting(display.progress, display.phase):
        for name in PHASES:
            report_phase(name)
            report_progress(3, 4)
    assert list(display.seconds) == ["starting Prefect", *PHASES]
    assert all(v >= 0 for v in display.seconds.values())
    text = console.export_text()
    assert [line.split()[0] for line in text.splitlines()[:2]] == ["starting", "preparing"]
    report_phase("after")  # no callback outside the context: nothing happens
