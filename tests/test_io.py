"""Tests of pipeline.outputs.io: the Parquet contract on disk, readers, atomic and exclusive publication."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipeline.analysis import accumulators as accum
from pipeline.analysis.statistics import summary_rows
from pipeline.model.outcomes import Outcomes
from pipeline.outputs import io, layout, records, schema
from pipeline.outputs.tables.histograms import to_histogram_frame
from pipeline.outputs.tables.summary import to_summary_frame
from pipeline.outputs.tables.trials import to_trials_frame

DAY = dt.date(2026, 3, 1)
T0 = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[1]


def make_outcomes(n: int, seed: int) -> Outcomes:
    """Small synthetic outcomes (tests/test_aggregate.py has the fuller generator)."""
    rng = np.random.default_rng(seed)
    settled = rng.random(n) < 0.8
    nan = np.full(n, np.nan)
    start = rng.uniform(0, 60, n)
    months = rng.lognormal(2.0, 0.5, n)
    increase = rng.normal(10, 8, n)
    path = 1519.2 * (1 + rng.normal(0.04, 0.02, (n, 1))) ** np.arange(2)
    return Outcomes(
        calendar_base_year=2025,
        path_years=(2026, 2027),
        reopened=rng.random(n) < 0.3,
        talks_start_month=start,
        months_to_settlement=months,
        settled_by_horizon=settled,
        settlement_month=np.where(settled, start + months, nan),
        lapse=~settled,
        lapse_months=np.where(settled, 0.0, 12.0),
        furlough=rng.random(n) < 0.1,
        troop_threat=rng.random(n) < 0.1,
        package_deal=rng.random(n) < 0.4,
        first_year=np.where(settled, 2027.0, nan),
        first_year_krw_bn=np.where(settled, 1519.2 * (1 + increase / 100), nan),
        first_year_usd_m=np.where(settled, 1085.0 * (1 + increase / 100), nan),
        increase_pct=np.where(settled, increase, nan),
        term_years=np.where(settled, 5.0, nan),
        escalation_rule=np.where(settled, 0, -1).astype(np.int64),
        stopgap=np.zeros(n, dtype=bool),
        stopgap_months=np.zeros(n),
        stopgap_first_year=nan,
        stopgap_level_krw_bn=nan,
        renegotiated=np.zeros(n, dtype=bool),
        renewal_first_year=nan,
        renewal_increase_pct=nan,
        contribution_krw_bn=path,
        contribution_usd_m=path / 1.4,
    )


def make_run(
    run_id: str, scenarios: tuple[str, ...], *, status: records.RunStatus = "completed"
) -> records.RunRecord:
    return records.RunRecord(
        run_id=run_id,
        as_of_date=DAY,
        flow_name="forecast",
        started_at=T0,
        finished_at=T0 + dt.timedelta(minutes=3),
        status=status,
        n_trials=2000,
        n_trials_effective=1500 * len(scenarios) if status == "completed" else None,
        seed_entropy=2**127 + 12345,
        chunk_size=1000,
        sampler="mc",
        scenarios=scenarios,
        config_hash="ab" * 32,
        package_version="0.1.0",
        git_commit=None,
        prefect_flow_run_id=None,
        target_se=0.5,
        achieved_se=0.4,
    )


def make_tables(
    run_id: str, scenarios: tuple[str, ...], *, seed: int = 0, trials: bool = False
) -> dict[str, dict[str, pa.Table]]:
    tables: dict[str, dict[str, pa.Table]] = {}
    for i, scenario in enumerate(scenarios):
        out = make_outcomes(2000, seed + i)
        summary = accum.summarize_block(out)
        tables[scenario] = {
            "summary": to_summary_frame(summary, run_id=run_id, created_at=T0),
            "histograms": to_histogram_frame(summary, run_id=run_id, created_at=T0),
        }
        if trials:
            sample = out.take(np.arange(50))
            tables[scenario]["trials"] = to_trials_frame(
                sample, run_id=run_id, first_trial_index=0, created_at=T0
            )
    return tables


def publish(out: Path, run_id: str, scenarios: tuple[str, ...], **kw: object) -> list[Path]:
    return io.publish_run(out, make_run(run_id, scenarios), make_tables(run_id, scenarios, **kw))  # type: ignore[arg-type]


def visible_files(out: Path) -> dict[str, bytes]:
    """What readers can see: every file not under a dot-folder, with its bytes."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts)
    }


def assert_one_complete_file_per_partition(out: Path) -> None:
    for dataset in layout.SCENARIO_DATASETS:
        for part in (out / dataset).glob("as_of_date=*/scenario=*"):
            files = list(part.iterdir())
            assert len(files) == 1, files
            pq.read_table(files[0])  # complete and readable


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


# --------------------------------------------------------------------------- contract on disk


def test_written_files_follow_the_contract(out: Path) -> None:
    files = publish(out, "run-a", ("base", "no-troops"), trials=True)
    assert {f.relative_to(out).parts[0] for f in files} == {
        "summary",
        "histograms",
        "trials",
        "runs",
        "latest",
    }
    assert (out / "summary/as_of_date=2026-03-01/scenario=base/part-run-a.parquet") in files
    assert files[-1] == out / "runs/as_of_date=2026-03-01/part-run-a.parquet"
    for path in files:
        dataset = path.relative_to(out).parts[0]
        if dataset == "latest":
            continue  # flat files of their own (test_latest.py)
        pf = pq.ParquetFile(path)
        file_schema = pf.schema_arrow
        expected = layout.expected_schema(dataset, file_schema)
        assert file_schema.remove_metadata().equals(expected, check_metadata=True), dataset
        meta = file_schema.metadata
        assert meta[records.META_RUN_ID] == b"run-a"
        assert meta[records.META_SCHEMA_VERSION] == str(schema.SCHEMA_VERSION).encode()
        assert meta[records.META_SEED_ENTROPY] == str(2**127 + 12345).encode()
        assert pf.metadata.num_row_groups == 1
        rg = pf.metadata.row_group(0)
        for i in range(rg.num_columns):
            col = rg.column(i)
            assert col.compression == "ZSTD"
            if pa.types.is_floating(file_schema.field(col.path_in_schema).type):
                assert not any("DICTIONARY" in e for e in col.encodings), col.path_in_schema
        assert file_schema.field("created_at").type == pa.timestamp("us", tz="UTC")
        assert not any(pa.types.is_dictionary(f.type) for f in file_schema)
        assert "as_of_date" not in file_schema.names and "scenario" not in file_schema.names


def test_runs_row_round_trips(out: Path) -> None:
    publish(out, "run-a", ("base", "no-troops"))
    runs = io.read_dataset(out, "runs").to_pylist()
    assert len(runs) == 1
    row = runs[0]
    assert row["scenarios"] == "base,no-troops" and row["status"] == "completed"
    assert int(row["seed_entropy"]) == 2**127 + 12345
    assert row["as_of_date"] == DAY and row["schema_version"] == schema.SCHEMA_VERSION
    assert row["git_commit"] is None and row["started_at"] == T0


def test_every_reader_sees_the_hive_datasets(out: Path) -> None:
    publish(out, "run-a", ("base", "2024"))  # an all-digit scenario name, the awkward case
    # Leftovers of crashed runs must stay invisible to the documented globs.
    for junk in (
        ".staging/run-x/summary/as_of_date=2026-03-01/scenario=base",
        ".trash/run-y/summary",
    ):
        (out / junk).mkdir(parents=True)
        pq.write_table(pa.table({"junk": [1]}), out / junk / "part-x.parquet")
    n = io.read_dataset(out, "summary").num_rows
    assert n == 2 * len(summary_rows(accum.summarize_block(make_outcomes(10, 0))))

    t = ds.dataset(out / "summary", format="parquet", partitioning="hive").to_table()
    assert t.num_rows == n
    glob = str(out / "summary/**/*.parquet")
    con = duckdb.connect()
    rel = con.sql(
        f"select scenario, as_of_date, count(*) as n from read_parquet('{glob}', "
        "hive_partitioning=true, hive_types={'as_of_date': DATE, 'scenario': VARCHAR}) "
        "group by all order by scenario"
    )
    assert rel.fetchall() == [("2024", DAY, n // 2), ("base", DAY, n // 2)]
    p50 = con.sql(
        f"select value from read_parquet('{glob}', hive_partitioning=true) "
        "where metric = 'increase_pct' and statistic = 'p50'"
    ).fetchall()
    assert len(p50) == 2
    runs = con.sql(
        f"select status from read_parquet('{out}/runs/**/*.parquet', hive_partitioning=true)"
    )
    assert runs.fetchall() == [("completed",)]

    lf = pl.scan_parquet(glob, hive_partitioning=True)
    df_pl = lf.filter(pl.col("statistic") == "prob").collect()
    assert df_pl.schema["as_of_date"] == pl.Date and df_pl.height > 0

    df_pd = pd.read_parquet(out / "histograms")
    assert len(df_pd) == io.read_dataset(out, "histograms").num_rows
    assert set(df_pd["scenario"].astype(str)) == {"base", "2024"}

    typed = io.read_dataset(out, "summary", columns=["as_of_date", "scenario"])
    assert typed.schema.field("as_of_date").type == pa.date32()
    assert typed.schema.field("scenario").type == pa.string()


def test_sensitivity_rows_publish_with_the_run(out: Path) -> None:
    # pipeline/outputs/tables/sensitivity.py builds the table; schema.py holds the contract io
    # checks against.
    sensitivity = pytest.importorskip("pipeline.outputs.tables.sensitivity")
    assert sensitivity.SENSITIVITY_SCHEMA.equals(schema.SENSITIVITY_SCHEMA, check_metadata=False)
    row = dict.fromkeys(schema.SENSITIVITY_SCHEMA.names)
    row.update(run_id="run-a", metric="increase_pct", input="trump_demand_intensity")
    row.update(method="spearman", statistic="rank_correlation", value=0.4, n_trials=2000)
    row.update(unit="rank correlation (-1 to 1)", input_unit="index 0-1", schema_version=1)
    row.update(created_at=T0)
    tables = make_tables("run-a", ("base",))
    tables["base"]["sensitivity"] = pa.Table.from_pylist([row], schema=schema.SENSITIVITY_SCHEMA)
    io.publish_run(out, make_run("run-a", ("base",)), tables)
    assert io.read_dataset(out, "sensitivity").column("value").to_pylist() == [0.4]


def test_read_before_anything_was_published(out: Path) -> None:
    empty = io.read_dataset(out, "summary")
    assert empty.num_rows == 0 and "scenario" in empty.schema.names
    assert io.latest_summary(out).empty
    with pytest.raises(FileNotFoundError):
        io.read_dataset(out, "trials")


# --------------------------------------------------------------------------- replace / latest


def test_rerun_replaces_partition_and_appends_runs(out: Path) -> None:
    publish(out, "run-a", ("base", "no-troops"), seed=0)
    publish(out, "run-b", ("base",), seed=100)
    for dataset in ("summary", "histograms"):
        files = sorted(p.name for p in (out / dataset).rglob("*.parquet"))
        assert files == ["part-run-a.parquet", "part-run-b.parquet"]
        base = list((out / dataset / "as_of_date=2026-03-01/scenario=base").iterdir())
        assert [p.name for p in base] == ["part-run-b.parquet"]
    assert sorted(io.read_dataset(out, "runs").column("run_id").to_pylist()) == ["run-a", "run-b"]
    latest = io.latest_summary(out)
    assert latest.groupby("scenario")["run_id"].unique().map(list).to_dict() == {
        "base": ["run-b"],
        "no-troops": ["run-a"],
    }
    only = io.latest_summary(out, scenario="no-troops")
    assert set(only.scenario) == {"no-troops"} and set(only.run_id) == {"run-a"}
    assert not (out / ".staging" / "run-b").exists() and not (out / ".trash" / "run-b").exists()


def test_latest_summary_prefers_newest_date_and_completed_runs(out: Path) -> None:
    publish(out, "run-a", ("base",))
    later = dataclasses.replace(make_run("run-c", ("base",)), as_of_date=DAY + dt.timedelta(days=1))
    io.publish_run(out, later, make_tables("run-c", ("base",)))
    assert set(io.latest_summary(out).run_id) == {"run-c"}
    # A partition whose run has no completed runs row (e.g. mid-crash) is not "latest".
    (out / "runs/as_of_date=2026-03-02/part-run-c.parquet").unlink()
    assert set(io.latest_summary(out).run_id) == {"run-a"}


def test_publish_validates_its_inputs(out: Path) -> None:
    tables = make_tables("run-a", ("base",))
    with pytest.raises(ValueError, match="scenarios"):
        io.publish_run(out, make_run("run-a", ("base", "other")), tables)
    with pytest.raises(ValueError, match="run_id"):
        io.publish_run(out, make_run("run-z", ("base",)), tables)
    bad = {"base": {"summary": tables["base"]["summary"].drop_columns(["unit"])}}
    with pytest.raises(ValueError, match="schema"):
        io.publish_run(out, make_run("run-a", ("base",)), bad)
    with pytest.raises(ValueError, match="dataset"):
        io.publish_run(
            out, make_run("run-a", ("base",)), {"base": {"nope": tables["base"]["summary"]}}
        )
    with pytest.raises(ValueError, match="completed"):
        io.publish_run(out, make_run("run-a", ("base",), status="failed"), tables)
    with pytest.raises(ValueError, match="scenario name"):
        make_run("run-a", ("Base",))
    io.publish_run(out, make_run("run-a", ("base",)), tables)
    with pytest.raises(FileExistsError):
        io.publish_run(out, make_run("run-a", ("base",)), tables)
    assert not any((out / ".staging").iterdir())


# --------------------------------------------------------------------------- failures


def _count_renames(tmp: Path) -> int:
    calls = 0
    original = io._rename

    def counting(src: Path, dst: Path) -> None:
        nonlocal calls
        calls += 1
        original(src, dst)

    io._rename = counting  # restored below; monkeypatch is function-scoped
    try:
        publish(tmp / "a", "run-a", ("base", "no-troops"))
        publish(tmp / "a", "run-b", ("base", "no-troops"), seed=9)
    finally:
        io._rename = original
    return calls


def test_failure_at_any_rename_leaves_previous_outputs_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_run_renames = 1 + 4 + 1  # journal, 4 new partitions, runs file
    n_steps = _count_renames(tmp_path) - first_run_renames
    assert n_steps == 1 + 4 * 2 + 1  # journal, 4 x (aside, in), runs file
    scenarios = ("base", "no-troops")
    tables = make_tables("run-b", scenarios, seed=9)
    for fail_at in range(1, n_steps + 1):
        out = tmp_path / f"out{fail_at}"
        publish(out, "run-a", scenarios)
        before = visible_files(out)
        calls = 0
        original = io._rename

        def failing(
            src: Path, dst: Path, fail_at: int = fail_at, original: Callable[..., None] = original
        ) -> None:
            nonlocal calls
            calls += 1
            if calls == fail_at:
                raise OSError(f"injected failure at rename {fail_at}: {src} -> {dst}")
            original(src, dst)

        monkeypatch.setattr(io, "_rename", failing)
        with pytest.raises(OSError, match="injected"):
            io.publish_run(out, make_run("run-b", scenarios), tables)
        monkeypatch.setattr(io, "_rename", original)
        assert visible_files(out) == before, f"failure at rename {fail_at}"
        assert not (out / ".staging" / "run-b").exists()
        assert not (out / ".trash" / "run-b").exists()
        io.record_failed_run(out, make_run("run-b", scenarios, status="failed"))
        runs = io.read_dataset(out, "runs", columns=["run_id", "status"]).to_pylist()
        statuses = {r["run_id"]: r["status"] for r in runs}
        assert statuses == {"run-a": "completed", "run-b": "failed"}
        assert set(io.latest_summary(out).run_id) == {"run-a"}


def test_failure_after_commit_point_keeps_the_run(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(out, "run-a", ("base",))
    original = io._fsync_path

    def fail_on_runs_dir(path: Path) -> None:
        if path.name == "as_of_date=2026-03-01" and path.parent.name == "runs":
            raise OSError("fsync failed")
        original(path)

    monkeypatch.setattr(io, "_fsync_path", fail_on_runs_dir)
    with pytest.raises(OSError, match="fsync"):
        publish(out, "run-b", ("base",))
    monkeypatch.setattr(io, "_fsync_path", original)
    # The runs row says completed, so the partitions must be run-b's, not rolled back.
    assert set(io.latest_summary(out).run_id) == {"run-b"}
    assert_one_complete_file_per_partition(out)
    assert not (out / ".staging/run-b").exists()


def test_failure_while_writing_leaves_nothing(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(out, "run-a", ("base",))
    before = visible_files(out)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(io, "_fsync_tree", broken)
    with pytest.raises(OSError, match="disk full"):
        publish(out, "run-b", ("base",))
    assert visible_files(out) == before
    assert not (out / ".staging" / "run-b").exists()


def test_publish_report_swaps_the_whole_folder(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    day = dt.date(2026, 3, 1)

    def write(files: dict[str, str]) -> Callable[[Path], None]:
        def render(stage: Path) -> None:
            for name, text in files.items():
                (stage / name).write_text(text)

        return render

    final = io.publish_report(out, day, write({"index.html": "one", "a.png": "a"}))
    assert final == io.report_dir(out, day) == out / "reports" / "as_of_date=2026-03-01"
    final = io.publish_report(out, day, write({"index.html": "two"}))
    assert {p.name: p.read_text() for p in final.iterdir()} == {"index.html": "two"}

    def broken(stage: Path) -> None:
        (stage / "index.html").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io.publish_report(out, day, broken)
    original = io._rename
    for fail_at in (1, 2):  # moving the old folder aside, renaming the new one in
        calls = 0

        def failing(src: Path, dst: Path, fail_at: int = fail_at) -> None:
            nonlocal calls
            calls += 1
            if calls == fail_at:
                raise OSError("injected")
            original(src, dst)

        monkeypatch.setattr(io, "_rename", failing)
        with pytest.raises(OSError, match="injected"):
            io.publish_report(out, day, write({"index.html": "three"}))
        monkeypatch.setattr(io, "_rename", original)
    assert {p.name: p.read_text() for p in final.iterdir()} == {"index.html": "two"}
    reports = out / "reports"
    assert not any((reports / ".staging").iterdir())
    assert not (reports / ".trash").exists() or not any((reports / ".trash").iterdir())


CHILD = """
import sys, os
sys.path[:0] = [{root!r}, {tests!r}]
from pathlib import Path
import test_io
from pipeline.outputs import io
kill_at, calls, original = {kill_at}, 0, io._rename
def dying(src, dst):
    global calls
    calls += 1
    if calls == kill_at:
        os._exit(9)  # SIGKILL-like: no except/finally blocks run
    original(src, dst)
io._rename = dying
test_io.publish(Path({out!r}), "run-b", ("base", "no-troops"), seed=9)
"""


@pytest.mark.parametrize("kill_at", [4, 10])  # between two partitions; at the commit point
def test_process_killed_mid_swap_is_rolled_back(out: Path, kill_at: int) -> None:
    publish(out, "run-a", ("base", "no-troops"))
    before = visible_files(out)
    code = CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), kill_at=kill_at, out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    # Mid-swap: partitions may be old or new but are never partial, and no staging is visible.
    assert_one_complete_file_per_partition(out)
    assert (out / ".staging/run-b/COMMITTING").exists()
    assert "run-b" not in set(io.latest_summary(out).run_id)  # not committed: no runs row
    io.recover(out)
    assert visible_files(out) == before
    assert not (out / ".staging/run-b").exists() and not (out / ".trash/run-b").exists()


def test_stale_staging_is_removed_and_young_staging_kept(out: Path) -> None:
    old, young = out / ".staging/crashed", out / ".staging/running"
    for stage in (old, young):
        (stage / "summary").mkdir(parents=True)
        (stage / "summary/part.parquet").write_bytes(b"partial")
    two_days_ago = time.time() - 2 * 86400
    for p in (old, old / "summary", old / "summary/part.parquet"):
        os.utime(p, (two_days_ago, two_days_ago))
    publish(out, "run-a", ("base",))
    assert not old.exists() and young.exists()


# --------------------------------------------------------------------------- concurrency


def _partition_watcher(out: Path, stop: threading.Event, errors: list[str]) -> Callable[[], None]:
    def watch() -> None:
        while not stop.is_set():
            for part in (out / "summary").glob("as_of_date=*/scenario=*"):
                try:
                    names = os.listdir(part)
                except FileNotFoundError:
                    continue  # swapped out between glob and listdir: absent, never partial
                if len(names) > 1:
                    errors.append(f"{part}: {names}")

    return watch


def test_concurrent_publishes_never_interleave(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenarios = ("s1", "s2", "s3")
    original = io._rename

    def slow(src: Path, dst: Path) -> None:
        time.sleep(0.002)  # widen the windows a missing lock would expose
        original(src, dst)

    monkeypatch.setattr(io, "_rename", slow)
    jobs = [
        (make_run(f"run-{w}{i}", scenarios), make_tables(f"run-{w}{i}", scenarios, seed=i))
        for w in "ab"
        for i in range(4)
    ]
    publish(out, "run-0", scenarios)
    stop, errors = threading.Event(), []
    watcher = threading.Thread(target=_partition_watcher(out, stop, errors))
    watcher.start()
    barrier = threading.Barrier(2)

    def worker(batch: list[tuple[records.RunRecord, dict[str, dict[str, pa.Table]]]]) -> None:
        barrier.wait()
        for run, tables in batch:
            io.publish_run(out, run, tables)

    threads = [threading.Thread(target=worker, args=(jobs[k::2],)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert not errors
    assert_one_complete_file_per_partition(out)
    runs = io.read_dataset(out, "runs")
    assert runs.num_rows == 9 and set(runs.column("status").to_pylist()) == {"completed"}
    # All partitions of the run date come from one run: the last to commit.
    owners = {p.name for p in (out / "summary").rglob("*.parquet")}
    assert len(owners) == 1
    assert not list((out / ".staging").iterdir()) and not list((out / ".trash").iterdir())


PUBLISHER = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from pathlib import Path
import test_io
for i in range(2):
    test_io.publish(Path({out!r}), f"run-{name}{{i}}", ("s1", "s2"), seed=i)
"""


def test_concurrent_processes_never_interleave(out: Path) -> None:
    out.mkdir(parents=True)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PUBLISHER.format(
                    root=str(ROOT), tests=str(ROOT / "tests"), out=str(out), name=name
                ),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in "pq"
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert_one_complete_file_per_partition(out)
    assert io.read_dataset(out, "runs").num_rows == 4
    assert len({p.name for p in (out / "summary").rglob("*.parquet")}) == 1


# --------------------------------------------------------------------------- older versions


def _as_version_2(path: Path, dropped: tuple[str, ...], **replace: object) -> None:
    """Rewrite a published file as schema version 2 wrote it: without the version-3 columns."""
    table = pq.read_table(path).drop_columns(list(dropped))
    at = table.schema.get_field_index("schema_version")
    table = table.set_column(at, "schema_version", pa.array([2] * table.num_rows, pa.int32()))
    for name, value in replace.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(
            i, name, pa.array([value] * table.num_rows, table.schema.field(name).type)
        )
    pq.write_table(table, path)


def test_readers_show_version_2_files_as_version_3(out: Path) -> None:
    publish(out, "run-a", ("base", "no-troops"))
    expected_summary = io.read_dataset(out, "summary").sort_by([("scenario", "ascending")])
    runs_file = next((out / "runs").rglob("*.parquet"))
    _as_version_2(runs_file, ("n_trials_total", "config_hashes", "evidence_hash"), n_trials=4000)
    for path in (out / "summary").rglob("*.parquet"):
        _as_version_2(path, ("base_metric", "year", "value_date"))
    for path in (out / "histograms").rglob("*.parquet"):
        _as_version_2(path, ("base_metric", "year"))
    assert io.damaged_files(out) == []  # older files are valid, not foreign
    runs = io.read_dataset(out, "runs").to_pylist()
    assert [(r["n_trials"], r["n_trials_total"]) for r in runs] == [(2000, 4000)]
    summary = io.read_dataset(out, "summary").sort_by([("scenario", "ascending")])
    for column in ("base_metric", "year", "value_date"):
        assert summary.column(column).equals(expected_summary.column(column)), column
    rows = {(r["metric"], r["statistic"]): r for r in summary.to_pylist()
            if r["scenario"] == "base"}  # fmt: skip
    assert rows[("contribution_krw_bn_2027", "p50")]["year"] == 2027
    assert rows[("contribution_krw_bn_2027", "p50")]["base_metric"] == "contribution_krw_bn"
    assert rows[("increase_pct", "p50")]["year"] is None
    hist = io.read_dataset(out, "histograms", columns=["metric", "base_metric", "year"])
    assert hist.column("base_metric").null_count == 0
    latest = io.latest_summary(out, "base")
    assert set(latest.schema_version) == {2} and latest.year.notna().any()


def test_trials_of_two_versions_read_with_the_current_types(out: Path) -> None:
    publish(out, "run-a", ("base", "no-troops"), trials=True)
    old = next((out / "trials").rglob("scenario=base/*.parquet"))
    table = pq.read_table(old).drop_columns(["talks_start_date", "settlement_date"])
    at = table.schema.get_field_index("first_year")
    pq.write_table(table.set_column(at, "first_year", table["first_year"].cast(pa.float64())), old)
    trials = io.read_dataset(out, "trials")
    assert trials.schema.field("first_year").type == pa.int32()
    assert trials.schema.field("settlement_date").type == pa.date32()
    base = trials.filter(pa.compute.equal(trials["scenario"], "base"))
    assert base.num_rows == 50 and base["settlement_date"].null_count == 50
    assert base["first_year"].null_count < 50  # the float years read as integers
