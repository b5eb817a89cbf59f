"""End-to-end tests of the Prefect flows under one session-scoped test harness."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.dataset as ds
import pytest

from pipeline.compose import RunSettings, resolve_scenarios, run_scenario, scenario_tables
from pipeline.outputs import io
from pipeline.outputs.schema import HISTOGRAMS_SCHEMA, RUNS_SCHEMA, SUMMARY_SCHEMA
from pipeline.spec.evidence import evidence_as_of, load_evidence

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

AS_OF = dt.date(2026, 11, 29)
N_TRIALS = 3000
CHUNK = 1024
SEED = 7


@pytest.fixture(scope="module")
def flow_run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    from flows.forecast import forecast

    out = tmp_path_factory.mktemp("outputs")
    result = forecast(
        scenarios=["baseline", "hardline"], n_trials=N_TRIALS, seed=SEED, as_of=AS_OF,
        chunk_size=CHUNK, output_dir=str(out), trials_sample=100,
    )  # fmt: skip
    return out, result


def test_every_dataset_is_readable_by_pyarrow_and_duckdb(flow_run_dir) -> None:  # type: ignore[no-untyped-def]
    out, result = flow_run_dir
    for name in ("runs", "summary", "histograms", "sensitivity", "trials"):
        table = ds.dataset(out / name, format="parquet", partitioning="hive").to_table()
        assert table.num_rows > 0, name
        glob = str(out / name / "**" / "*.parquet")
        n = duckdb.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning=true)")
        assert n.fetchall()[0][0] == table.num_rows, name
    scen = duckdb.sql(
        f"select distinct scenario from read_parquet('{out}/summary/**/*.parquet', "
        "hive_partitioning=true) order by 1"
    ).fetchall()
    assert [s for (s,) in scen] == ["baseline", "hardline"]
    assert result.as_of == AS_OF


def test_schema_is_as_documented(flow_run_dir) -> None:  # type: ignore[no-untyped-def]
    out, _ = flow_run_dir
    for name, schema in (
        ("summary", SUMMARY_SCHEMA),
        ("histograms", HISTOGRAMS_SCHEMA),
        ("runs", RUNS_SCHEMA),
    ):
        for path in (out / name).rglob("*.parquet"):
            import pyarrow.parquet as pq

            assert pq.read_schema(path).remove_metadata().equals(schema.remove_metadata()), path
    docs = (Path(__file__).resolve().parent.parent / "docs" / "outputs.md").read_text()
    for field in (*SUMMARY_SCHEMA.names, *RUNS_SCHEMA.names, *HISTOGRAMS_SCHEMA.names):
        assert f"`{field}`" in docs, f"{field} is not documented in docs/outputs.md"


def test_quantiles_monotone_and_probabilities_in_range(flow_run_dir) -> None:  # type: ignore[no-untyped-def]
    out, _ = flow_run_dir
    frame = io.read_dataset(out, "summary").to_pandas()
    probs = frame[frame.statistic == "prob"].value
    assert probs.between(0, 1).all() and len(probs) > 10
    order = ["p01", "p05", "p10", "p25", "p50", "p75", "p90", "p95", "p99"]
    q = frame[frame.statistic.isin(order)].pivot_table(
        index=["scenario", "metric"], columns="statistic", values="value"
    )[order]
    assert (np.diff(q.to_numpy(), axis=1)[~np.isnan(np.diff(q.to_numpy(), axis=1))] >= 0).all()
    runs = io.read_dataset(out, "runs").to_pandas()
    assert list(runs.status) == ["completed"] and runs.n_trials.iloc[0] == N_TRIALS
    assert runs.n_trials_total.iloc[0] == 2 * N_TRIALS


def test_flow_equals_plain_python(flow_run_dir, repo_root: Path) -> None:  # type: ignore[no-untyped-def]
    """The flow holds no model logic: the plain path gives the very same summary numbers."""
    out, result = flow_run_dir
    published = io.read_dataset(out, "summary").to_pandas()
    evidence = evidence_as_of(load_evidence(repo_root / "configs" / "evidence.yaml"), AS_OF)
    run = RunSettings(as_of=AS_OF, entropy=SEED, n_trials=N_TRIALS, chunk_size=CHUNK,
                      trials_sample=100)  # fmt: skip
    for scenario in resolve_scenarios(repo_root / "configs", ["baseline", "hardline"]):
        plain = run_scenario(scenario, run, evidence, n_groups=1)
        table = scenario_tables(
            plain, run_id=str(result.run_id), created_at=dt.datetime.now(dt.UTC)
        )["summary"].to_pandas()
        flow = published[published.scenario == scenario.name]
        left = table.set_index(["metric", "statistic"]).value.sort_index()
        right = flow.set_index(["metric", "statistic"]).value.sort_index()
        assert left.index.equals(right.index)
        # Bit-identical: merges do not depend on grouping or on the order tasks finish in.
        np.testing.assert_array_equal(left.to_numpy(), right.to_numpy())


def test_failure_mid_publication_leaves_earlier_outputs(  # type: ignore[no-untyped-def]
    flow_run_dir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publication that keeps failing (after its retries) leaves the earlier run's files
    byte-identical, nothing partial where readers look, and a 'failed' row in runs."""
    from flows.forecast import forecast

    out = tmp_path / "out"
    forecast(scenarios=["baseline"], n_trials=500, seed=1, as_of=AS_OF, chunk_size=256,
             output_dir=str(out))  # fmt: skip
    before = {p: p.read_bytes() for p in out.rglob("*.parquet")}
    calls = {"n": 0}
    real = io._rename

    def broken_after_first(src: Path, dst: Path) -> None:
        calls["n"] += 1
        if calls["n"] % 4 == 2:  # the second rename of every attempt (retries included)
            raise OSError("disk vanished")
        real(src, dst)

    monkeypatch.setattr(io, "_rename", broken_after_first)
    with pytest.raises(OSError):
        forecast(scenarios=["baseline"], n_trials=500, seed=2, as_of=AS_OF, chunk_size=256,
                 output_dir=str(out))  # fmt: skip
    monkeypatch.undo()
    assert calls["n"] >= 3 * 2  # publish was retried
    after = {p: p.read_bytes() for p in out.rglob("*.parquet") if "runs" not in p.parts}
    assert after == {p: b for p, b in before.items() if "runs" not in p.parts}
    runs = io.read_dataset(out, "runs").to_pandas().sort_values("started_at")
    assert list(runs.status) == ["completed", "failed"]
    datasets = [d for d in out.iterdir() if not d.name.startswith(".") and d.name != "reports"]
    visible = [p for d in datasets for p in d.rglob("*")]
    assert all(p.is_dir() or p.suffix == ".parquet" for p in visible)
    # The earlier run's report is still there, whole.
    assert (out / "reports" / f"as_of_date={AS_OF}" / "index.html").exists()


def test_transient_publication_error_is_retried(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.forecast import forecast

    calls = {"n": 0}
    real = io._rename

    def once(src: Path, dst: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("transient")
        real(src, dst)

    monkeypatch.setattr(io, "_rename", once)
    result = forecast(scenarios=["baseline"], n_trials=300, seed=1, as_of=AS_OF,
                      chunk_size=300, output_dir=str(tmp_path))  # fmt: skip
    runs = io.read_dataset(tmp_path, "runs").to_pandas()
    assert list(runs.status) == ["completed"] and runs.run_id.iloc[0] == result.run_id


def test_rerun_replaces_partition(tmp_path: Path) -> None:
    from flows.forecast import forecast

    for seed in (1, 2):
        forecast(scenarios=["baseline"], n_trials=300, seed=seed, as_of=AS_OF, chunk_size=300,
                 output_dir=str(tmp_path))  # fmt: skip
    files = list((tmp_path / "summary").rglob("*.parquet"))
    assert len(files) == 1
    assert len(io.read_dataset(tmp_path, "runs")) == 2


def test_backtest_flow_publishes_scores(tmp_path: Path) -> None:
    from flows.backtest import backtest

    result = backtest(output_dir=str(tmp_path), n_trials=500, seed=3)
    table = io.read_dataset(tmp_path, "backtest").to_pandas()
    assert set(table.run_id) == {result.run_id}
    assert {"model", "historical"} <= set(table.forecaster)
    assert {"crps", "pit", "covers_90"} <= set(table.score)
    glob = f"{tmp_path}/backtest/**/*.parquet"
    rows = duckdb.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning=true)")
    assert rows.fetchall()[0][0] == len(table)
    runs = io.read_dataset(tmp_path, "runs").to_pandas()
    assert list(runs.flow_name) == ["backtest"] and list(runs.status) == ["completed"]
    assert "CRPS ratio model / best baseline" in result.table


def test_run_writes_drift_inputs_and_report(flow_run_dir) -> None:  # type: ignore[no-untyped-def]
    out, result = flow_run_dir
    drift = io.read_dataset(out, "drift").to_pandas()
    assert set(drift.scenario) == {"baseline", "hardline"}
    assert drift.previous_run_id.isna().all()  # the first run has nothing to compare with
    inputs = io.read_dataset(out, "inputs").to_pandas()
    assert "trump_demand_intensity" in set(inputs.input)
    report = Path(str(result.report))
    assert report.name == "index.html" and report.exists()
    assert report.parent == out / "reports" / f"as_of_date={AS_OF}"


def test_same_seed_rerun_has_zero_unflagged_drift(tmp_path: Path) -> None:
    from flows.forecast import forecast

    kwargs = dict(scenarios=["baseline"], n_trials=600, seed=4, as_of=AS_OF, chunk_size=300,
                  output_dir=str(tmp_path))  # fmt: skip
    first = forecast(**kwargs)
    second = forecast(**kwargs)
    drift = io.read_dataset(tmp_path, "drift").to_pandas()
    assert set(drift.run_id) == {second.run_id}
    assert set(drift.previous_run_id) == {first.run_id}
    assert (drift.change.fillna(0) == 0).all() and not drift.flagged.any()
    assert second.drift_flags == 0


def test_flow_publishes_the_sobol_indices_of_the_plain_path(flow_run_dir, repo_root: Path) -> None:  # type: ignore[no-untyped-def]
    """Sobol' rows (first and total order of every factor and key output) come with the run,
    the same as the plain path's for the same seed."""
    from pipeline.compose import sobol_table

    out, result = flow_run_dir
    published = io.read_dataset(out, "sensitivity").to_pandas()
    evidence = evidence_as_of(load_evidence(repo_root / "configs" / "evidence.yaml"), AS_OF)
    run = RunSettings(as_of=AS_OF, entropy=SEED, n_trials=N_TRIALS, chunk_size=CHUNK)
    for scenario in resolve_scenarios(repo_root / "configs", ["baseline", "hardline"]):
        plain = sobol_table(
            scenario, run, evidence, run_id=str(result.run_id), created_at=dt.datetime.now(dt.UTC)
        ).to_pandas()
        flow = published[(published.scenario == scenario.name) & (published.method == "sobol")]
        assert set(flow.statistic) == {"first_order", "total_order"}
        key = ["metric", "input", "statistic"]
        left = plain.set_index(key).sort_index()
        right = flow.set_index(key).sort_index()
        assert left.index.equals(right.index)
        for col in ("value", "ci_low", "ci_high"):
            np.testing.assert_array_equal(left[col].to_numpy(), right[col].to_numpy())


def test_simulating_phase_ends_with_the_sobol_designs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an ungated run the "simulating" phase holds the blocks and the Sobol' designs on
    every runner, so its seconds mean the same work for 1 worker as for several: a slow
    Sobol' design finishes before "building tables" starts."""
    import time

    import flows.tasks
    from flows.forecast import forecast_flow
    from flows.progress import progress_reporting

    events: list[str] = []
    real = flows.tasks.sobol_table

    def slow_sobol(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.0)  # longer than the blocks left after it starts
        table = real(*args, **kwargs)
        events.append("sobol done")
        return table

    monkeypatch.setattr(flows.tasks, "sobol_table", slow_sobol)
    with progress_reporting(lambda done, total: None, events.append):
        forecast_flow("threads", workers=2)(
            scenarios=["baseline"], n_trials=2000, seed=SEED, as_of=AS_OF, chunk_size=500,
            output_dir=str(tmp_path),
        )  # fmt: skip
    assert events.index("simulating") < events.index("sobol done")
    assert events.index("sobol done") < events.index("building tables")
