"""The only module that writes outputs: atomic publication of a run's Parquet files, and readers.

Layout (docs/outputs.md)::

    <output_dir>/runs/as_of_date=D/part-<run_id>.parquet               one file per attempt
    <output_dir>/<dataset>/as_of_date=D/scenario=S/part-<run_id>.parquet  one file per partition
    <output_dir>/.staging/<run_id>/...   files being written (never read)
    <output_dir>/.trash/<run_id>/...     replaced partitions, removed after the swap
    <output_dir>/.lock                   flock held during the swap step only
    <output_dir>/.quarantine/<time>/...  damaged or foreign files moved aside (:func:`doctor`)
    <output_dir>/reports/as_of_date=D/   one HTML report per as-of date (:func:`publish_report`)
    <output_dir>/latest/<dataset>.parquet  flat files of the latest official run per scenario
    <output_dir>/whatif/<run_id>/<dataset>/as_of_date=D/scenario=S/part-<run_id>.parquet
                                         a what-if run's files (never replace official ones)

Official and what-if runs: the ``runs`` row of every run is in ``runs/``; a what-if run
(``runs.run_kind``) publishes its partitions under ``whatif/<run_id>/``, an output folder of
its own with the same layout, so it never replaces or shadows the official forecast, and
``latest/`` is rebuilt only after an official run (:func:`refresh_latest`).

Publication: every file is written and fsynced under ``.staging`` (same filesystem), then,
holding the lock, each partition directory is swapped in by ``rename`` (the old one moved
aside to ``.trash``), and finally the run's ``runs`` file is renamed in: that rename is the
commit point. Any failure before it rolls the swapped partitions back. A process killed
mid-swap leaves a journal (``.staging/<run_id>/COMMITTING``) from which the next publisher,
or :func:`recover`, rolls back under the lock. Staging and trash live outside the dataset
folders because DuckDB's ``**`` glob does descend into dot-directories.

Reports are written by the caller into a staging folder under ``reports/.staging/`` and swapped
in whole under ``flock`` on ``reports/.lock`` (:func:`publish_report`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.common import PathLike
from pipeline.outputs.layout import (
    FIXED_SCHEMAS,
    PARTITIONING,
    SCENARIO_DATASETS,
    expected_schema,
)
from pipeline.outputs.records import (
    META_CONFIG_HASH,
    META_RUN_ID,
    META_SCHEMA_VERSION,
    META_SEED_ENTROPY,
    RUN_ID_RE,
    RunRecord,
    check_scenario_name,
)
from pipeline.outputs.readers import dataset_files, file_problem
from pipeline.outputs.readers import latest_summary as latest_summary
from pipeline.outputs.readers import read_dataset as read_dataset
from pipeline.outputs.schema import SCHEMA_VERSION, WHAT_IF

logger = logging.getLogger("sma_forecast.outputs")

STAGING: Final[str] = ".staging"
TRASH: Final[str] = ".trash"
LOCK: Final[str] = ".lock"
#: Damaged or foreign files moved aside by :func:`doctor` (never read).
QUARANTINE: Final[str] = ".quarantine"
JOURNAL: Final[str] = "COMMITTING"
#: Folder under the outputs that holds the HTML reports.
REPORTS: Final[str] = "reports"
#: Folder of the flat files of the latest official run per scenario (:func:`refresh_latest`).
LATEST: Final[str] = "latest"
#: Folder under which each what-if run has an output folder of its own.
WHATIF: Final[str] = "whatif"
#: Staging folders without a journal older than this are from crashed runs and removed.
STALE_AFTER: Final[dt.timedelta] = dt.timedelta(days=1)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id such as ``20260301T023000Z-1f2e3d4c``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


# --------------------------------------------------------------------------- filesystem steps
# Publication goes through these small functions so tests can inject failures into one step.


def _rename(src: Path, dst: Path) -> None:
    """Atomically move a file or directory (same filesystem); fails if ``dst`` is a non-empty dir."""
    os.replace(src, dst)


def _fsync_path(path: Path) -> None:
    """Flush a file's or directory's data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _remove_empty_dirs(path: Path, stop: Path) -> None:
    """Remove ``path`` and its parents up to (excluding) ``stop`` while they are empty."""
    while path != stop and path.is_relative_to(stop):
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


@contextlib.contextmanager
def exclusive_lock(out: Path) -> Iterator[None]:
    """Hold ``flock(LOCK_EX)`` on ``<out>/.lock`` (released by the OS if the process dies)."""
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --------------------------------------------------------------------------- writing


def _partition(dataset: str, as_of_date: dt.date, scenario: str) -> Path:
    return Path(dataset, f"as_of_date={as_of_date.isoformat()}", f"scenario={scenario}")


def run_root(output_dir: PathLike, run_kind: str | None, run_id: str) -> Path:
    """The folder holding a run's dataset folders: ``output_dir`` for an official run (or a
    ``runs`` row of schema version 1, run_kind null), ``output_dir/whatif/<run_id>`` for a
    what-if run."""
    out = Path(output_dir)
    return out / WHATIF / run_id if run_kind == WHAT_IF else out


def _run_prefix(run: RunRecord) -> Path:
    return Path(WHATIF, run.run_id) if run.run_kind == WHAT_IF else Path()


def _runs_file(out: Path, run: RunRecord) -> Path:
    return out / "runs" / f"as_of_date={run.as_of_date.isoformat()}" / f"part-{run.run_id}.parquet"


def _conform(dataset: str, table: pa.Table, run: RunRecord) -> pa.Table:
    """Check ``table`` against the contract and attach the field metadata and provenance."""
    expected = expected_schema(dataset, table.schema)
    if not table.schema.equals(expected, check_metadata=False):
        raise ValueError(
            f"{dataset} table does not match schema.py:\n{table.schema}\nexpected:\n{expected}"
        )
    for field in expected:
        if not field.nullable and table.column(field.name).null_count:
            raise ValueError(f"{dataset}.{field.name} must not contain nulls")
    if table.num_rows and not pc.all(pc.equal(table.column("run_id"), run.run_id)).as_py():
        raise ValueError(f"{dataset} rows must all carry run_id {run.run_id!r}")
    metadata = {
        META_SCHEMA_VERSION: str(SCHEMA_VERSION).encode(),
        META_RUN_ID: run.run_id.encode(),
        META_SEED_ENTROPY: str(run.seed_entropy).encode(),
        META_CONFIG_HASH: run.config_hash.encode(),
    }
    return table.cast(expected).replace_schema_metadata(metadata)


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write one file as one row group (zstd; no dictionary for floats) and fsync it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Dictionary pages only pay off for repeated values; floats rarely repeat and were
    # measured faster to write and read without them.
    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    pq.write_table(
        table,
        path,
        compression="zstd",
        use_dictionary=dictionary,
        row_group_size=max(table.num_rows, 1),
        coerce_timestamps="us",
        allow_truncated_timestamps=False,
    )
    _fsync_path(path)


def _fsync_tree(root: Path) -> None:
    """fsync every directory under ``root`` so the staged names are durable before the swap."""
    for dirpath, _, _ in os.walk(root):
        _fsync_path(Path(dirpath))


def _validate_tables(
    run: RunRecord, tables: Mapping[str, Mapping[str, pa.Table]]
) -> list[tuple[Path, pa.Table]]:
    if set(tables) != set(run.scenarios):
        raise ValueError(f"tables are for scenarios {sorted(tables)}, run has {run.scenarios}")
    staged: list[tuple[Path, pa.Table]] = []
    for scenario, by_dataset in tables.items():
        check_scenario_name(scenario)
        for dataset, table in by_dataset.items():
            if dataset not in SCENARIO_DATASETS:
                raise ValueError(f"unknown dataset {dataset!r}; known: {SCENARIO_DATASETS}")
            rel = _run_prefix(run) / _partition(dataset, run.as_of_date, scenario)
            staged.append((rel, _conform(dataset, table, run)))
    return sorted(staged, key=lambda item: str(item[0]))


# --------------------------------------------------------------------------- commit / recovery


def _commit(out: Path, stage: Path, run: RunRecord, partitions: Sequence[Path]) -> None:
    """Swap the staged partitions in, then the runs file (the commit point). Holds the lock."""
    journal = {
        "run_id": run.run_id,
        "as_of_date": run.as_of_date.isoformat(),
        "partitions": [str(p) for p in partitions],
    }
    tmp = stage / f"{JOURNAL}.tmp"
    tmp.write_text(json.dumps(journal))
    _fsync_path(tmp)
    _rename(tmp, stage / JOURNAL)
    _fsync_path(stage)
    trash = out / TRASH / run.run_id
    for rel in partitions:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            (trash / rel).parent.mkdir(parents=True, exist_ok=True)
            _rename(target, trash / rel)
        _rename(stage / rel, target)
        _fsync_path(target.parent)
    runs_file = _runs_file(out, run)
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    _rename(stage / "runs" / runs_file.name, runs_file)
    _fsync_path(runs_file.parent)


def _committed(out: Path, run_id: str, as_of_date: str) -> bool:
    path = out / "runs" / f"as_of_date={as_of_date}" / f"part-{run_id}.parquet"
    if not path.exists():
        return False
    try:
        status: list[object] = pq.read_table(path, columns=["status"]).column("status").to_pylist()
    except (pa.ArrowException, OSError):
        return False  # a damaged runs file commits nothing (doctor moves it aside)
    return status == ["completed"]


def _roll_back(out: Path, stage: Path, run_id: str, partitions: Sequence[str]) -> None:
    """Undo the swaps of an uncommitted run, newest first, from what is on disk."""
    trash = out / TRASH / run_id
    for rel in reversed(partitions):
        target, staged, aside = out / rel, stage / rel, trash / rel
        if not staged.exists() and target.exists():
            # The staged copy is gone only if it was renamed in, so target is ours.
            _rename(target, staged)
        if aside.exists():
            _rename(aside, target)
        _remove_empty_dirs(target.parent, out)


def _finish(out: Path, run_id: str) -> None:
    """Delete the trash and staging folders of a run (trash first: see _recover)."""
    _remove_tree(out / TRASH / run_id)
    _remove_tree(out / STAGING / run_id)


def _recover(out: Path) -> None:
    """Complete or roll back commits interrupted by a crash. Caller holds the lock.

    Journals can only be left by dead processes: a live committer holds the lock.
    """
    for journal in sorted((out / STAGING).glob(f"*/{JOURNAL}")):
        stage = journal.parent
        entry = json.loads(journal.read_text())
        run_id, partitions = entry["run_id"], entry["partitions"]
        if not _committed(out, run_id, entry["as_of_date"]):
            _roll_back(out, stage, run_id, partitions)
        _finish(out, run_id)
    for trash in (out / TRASH).glob("*"):
        if not (out / STAGING / trash.name / JOURNAL).exists():
            _remove_tree(trash)


def _remove_stale_staging(out: Path, max_age: dt.timedelta) -> None:
    """Remove staging folders (without a journal) not written to for ``max_age``.

    Younger ones may belong to a run still writing its files, so they are left alone.
    """
    cutoff = time.time() - max_age.total_seconds()
    for stage in (out / STAGING).glob("*"):
        if (stage / JOURNAL).exists():
            continue  # an interrupted commit: only _recover, under the lock, touches it
        if _newest_mtime(stage) < cutoff:
            _remove_tree(stage)


def _newest_mtime(root: Path) -> float:
    """Latest modification time in a tree that other processes may be changing [s]."""
    newest = 0.0
    for dirpath, _, filenames in os.walk(root):
        for path in (dirpath, *(os.path.join(dirpath, f) for f in filenames)):
            with contextlib.suppress(FileNotFoundError):  # renamed away meanwhile
                newest = max(newest, os.stat(path).st_mtime)
    return newest


def recover(output_dir: PathLike, *, stale_after: dt.timedelta = STALE_AFTER) -> None:
    """Roll back interrupted publications and remove stale staging folders.

    Runs automatically at every publication; call it directly after a crash if no new
    run follows soon.
    """
    out = Path(output_dir)
    if not out.exists():
        return
    _remove_stale_staging(out, stale_after)
    with exclusive_lock(out):
        _recover(out)


# --------------------------------------------------------------------------- doctor

#: Datasets whose files :func:`doctor` checks.
DATASET_FOLDERS: Final[tuple[str, ...]] = ("runs", *SCENARIO_DATASETS, "backtest")


def damaged_files(output_dir: PathLike) -> list[tuple[Path, str]]:
    """Files under the dataset folders that readers cannot use, with the reason (readers
    skip them; :func:`doctor` moves them aside). Reads Parquet footers only.

    Covers the official datasets and every what-if run's folder ``whatif/<run_id>/`` (the same
    scenario datasets; a file or folder there that is not one is foreign)."""
    out = Path(output_dir)
    found: list[tuple[Path, str]] = []
    for name in DATASET_FOLDERS:
        for path in dataset_files(out, name):
            why = file_problem(out, name, path)
            if why is not None:
                found.append((path, why))
    whatif = out / WHATIF
    for entry in sorted(whatif.iterdir()) if whatif.is_dir() else ():
        if entry.name.startswith((".", "_")):
            continue
        if not entry.is_dir() or not RUN_ID_RE.fullmatch(entry.name):
            found.extend((p, "not a whatif/<run_id>/ folder") for p in _files_under(entry))
            continue
        for child in sorted(entry.iterdir()):
            if child.name in SCENARIO_DATASETS and child.is_dir():
                for path in dataset_files(entry, child.name):
                    why = file_problem(entry, child.name, path)
                    if why is not None:
                        found.append((path, why))
            elif not child.name.startswith((".", "_")):
                found.extend((p, "not a dataset folder of a what-if run")
                             for p in _files_under(child))  # fmt: skip
    return found


def _files_under(path: Path) -> list[Path]:
    """``path`` if it is a file, else every file below it."""
    return [path] if not path.is_dir() else sorted(p for p in path.rglob("*") if p.is_file())


def _quarantine(out: Path, paths: Sequence[Path]) -> Path:
    """Move files to ``<out>/.quarantine/<UTC time>/<same relative path>`` (kept, not read)."""
    folder = out / QUARANTINE / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
    for path in paths:
        target = folder / path.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # moved by another doctor meanwhile
            _rename(path, target)
            _remove_empty_dirs(path.parent, out)
    return folder


def doctor(output_dir: PathLike, *, repair: bool = False) -> list[str]:
    """Problems of an output folder, one line each; with ``repair`` they are fixed.

    Finds interrupted publications (a journal under ``.staging``: rolled back, or finished
    if the run's ``runs`` file was committed, so partitions left in ``.trash`` come back),
    and damaged or foreign files under the dataset folders (moved to ``.quarantine/``, where
    nothing reads them). Runs at the start of every forecast run with ``repair=True``; it
    takes the publication lock, so it is safe next to a running publication.
    """
    out = Path(output_dir)
    if not out.is_dir():
        return []
    problems = [
        f"interrupted publication of run {journal.parent.name}"
        + (": finished or rolled back" if repair else " (doctor --repair restores it)")
        for journal in sorted((out / STAGING).glob(f"*/{JOURNAL}"))
    ]
    if repair:
        _remove_stale_staging(out, STALE_AFTER)
        with exclusive_lock(out):
            _recover(out)
            damaged = damaged_files(out)
            folder = _quarantine(out, [p for p, _ in damaged]) if damaged else None
            if (out / "runs").is_dir():
                _refresh_latest(out)  # cheap; also after files were moved aside
    else:
        damaged = damaged_files(out)
        folder = None
    for path, why in damaged:
        where = f": moved to {folder / path.relative_to(out)}" if folder else ""
        problems.append(f"damaged {path.relative_to(out)} ({why}){where}")
    return problems


# --------------------------------------------------------------------------- public writers


def publish_run(
    output_dir: PathLike,
    run: RunRecord,
    tables: Mapping[str, Mapping[str, pa.Table]],
    *,
    stale_after: dt.timedelta = STALE_AFTER,
) -> list[Path]:
    """Publish all files of one completed run atomically.

    Parameters
    ----------
    output_dir
        Root of the outputs (``outputs/``).
    run
        The run's ``runs`` row; ``status`` must be ``"completed"``; ``as_of_date`` and
        ``run_id`` name the partitions and files.
    tables
        ``{scenario: {dataset: table}}`` for datasets ``summary``, ``histograms`` and
        optionally ``trials``, each exactly in its schema.py schema (the frames of
        ``pipeline.outputs.tables`` are). Scenarios must equal ``run.scenarios``.
    stale_after
        Age after which abandoned staging folders of crashed runs are removed.

    Returns
    -------
    The published Parquet files, the runs file last.

    Each (dataset, as_of_date, scenario) partition is replaced as a whole, so a re-run of
    the same as_of_date and scenario replaces the earlier one. On any error nothing of the
    run stays visible and the earlier outputs are restored; then call
    :func:`record_failed_run`.
    """
    if run.status != "completed":
        raise ValueError("publish_run publishes completed runs; use record_failed_run")
    out = Path(output_dir)
    staged = _validate_tables(run, tables)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out, stale_after)
    stage = out / STAGING / run.run_id
    if _runs_file(out, run).exists():
        raise FileExistsError(f"run {run.run_id!r} was already recorded; use a new run_id")
    if (stage / JOURNAL).exists():
        recover(out, stale_after=stale_after)  # an earlier attempt died mid-commit
    _remove_tree(stage)  # leftovers of an earlier attempt with this run_id
    partitions = [rel for rel, _ in staged]
    try:
        for rel, table in staged:
            _write_parquet(table, stage / rel / f"part-{run.run_id}.parquet")
        runs_table = _conform("runs", run.to_table(), run)
        _write_parquet(runs_table, stage / "runs" / _runs_file(out, run).name)
        _fsync_tree(stage)
        with exclusive_lock(out):
            _recover(out)
            if _runs_file(out, run).exists():
                raise FileExistsError(f"run {run.run_id!r} was already recorded")
            try:
                _commit(out, stage, run, partitions)
            except BaseException:
                # Past the commit point (runs file in place) the run stands. Otherwise
                # roll back; if that fails too, the journal stays for the next _recover.
                if not _committed(out, run.run_id, run.as_of_date.isoformat()):
                    _roll_back(out, stage, run.run_id, [str(p) for p in partitions])
                _finish(out, run.run_id)
                raise
            _finish(out, run.run_id)
            if run.is_official:
                _refresh_latest_after_commit(out)
    except BaseException:
        if not (stage / JOURNAL).exists():
            _finish(out, run.run_id)
        raise
    files = [out / rel / f"part-{run.run_id}.parquet" for rel, _ in staged]
    latest = sorted((out / LATEST).glob("*.parquet")) if run.is_official else []
    return [*files, *latest, _runs_file(out, run)]


def record_failed_run(output_dir: PathLike, run: RunRecord) -> Path:
    """Append the ``runs`` row of a failed attempt (``run.status == "failed"``).

    Rolls back whatever the attempt may have left half-published first. Raises
    FileExistsError if the run already has a row (e.g. it was published).
    """
    if run.status != "failed":
        raise ValueError("record_failed_run records runs with status 'failed'")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = _runs_file(out, run)
    stage = out / STAGING / f"{run.run_id}.failed"
    with exclusive_lock(out):
        _recover(out)
        if target.exists():
            raise FileExistsError(f"run {run.run_id!r} already has a runs row")
        _finish(out, run.run_id)
        try:
            _write_parquet(_conform("runs", run.to_table(), run), stage / target.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            _rename(stage / target.name, target)
            _fsync_path(target.parent)
        finally:
            _remove_tree(stage)
    return target


def publish_backtest(output_dir: PathLike, run: RunRecord, table: pa.Table) -> list[Path]:
    """Publish a backtest run: ``backtest/run_date=<run.as_of_date>/part-<run_id>.parquet`` and
    its ``runs`` row, each appearing whole (staged, then renamed under the lock).

    Backtest files accumulate (one per run) rather than replace each other: every run is a
    scored experiment worth keeping. The runs row is the commit point.
    """
    if run.status != "completed":
        raise ValueError("publish_backtest publishes completed runs; use record_failed_run")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rel = Path("backtest", f"run_date={run.as_of_date.isoformat()}", f"part-{run.run_id}.parquet")
    stage = out / STAGING / f"{run.run_id}.backtest"
    target_runs = _runs_file(out, run)
    try:
        _write_parquet(_conform("backtest", table, run), stage / rel)
        _write_parquet(_conform("runs", run.to_table(), run), stage / "runs" / target_runs.name)
        with exclusive_lock(out):
            _recover(out)
            if target_runs.exists() or (out / rel).exists():
                raise FileExistsError(f"run {run.run_id!r} was already recorded")
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            _rename(stage / rel, out / rel)
            target_runs.parent.mkdir(parents=True, exist_ok=True)
            try:
                _rename(stage / "runs" / target_runs.name, target_runs)
            except BaseException:
                (out / rel).unlink(missing_ok=True)  # no runs row: the run did not happen
                raise
            _fsync_path((out / rel).parent)
            _fsync_path(target_runs.parent)
    finally:
        _remove_tree(stage)
    return [out / rel, target_runs]


# --------------------------------------------------------------------------- latest/

#: Files of ``latest/``: the dataset each is taken from.
LATEST_FILES: Final[dict[str, str]] = {
    "summary": "summary",
    "histograms": "histograms",
    "path": "summary",
    "sensitivity": "sensitivity",
}


def _latest_tables(out: Path) -> dict[str, pa.Table]:
    """The tables of ``latest/``: rows of the latest official completed run per scenario,
    with ``scenario`` and ``as_of_date`` as columns (first), typed; ``path`` holds the
    per-year summary rows with the year as an int32 column."""
    from pipeline.outputs.readers import latest_runs, path_rows

    chosen = latest_runs(out)
    tables: dict[str, pa.Table] = {}
    for name, dataset in LATEST_FILES.items():
        parts = []
        for scenario, as_of_date, run_id in chosen:
            where = (
                (ds.field("scenario") == scenario)
                & (ds.field("as_of_date") == pa.scalar(as_of_date, pa.date32()))
                & (ds.field("run_id") == run_id)
            )
            parts.append(read_dataset(out, dataset, filter=where))
        schema = read_dataset(out, dataset).schema if not parts else parts[0].schema
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        keys = ["scenario", "as_of_date"]
        table = table.select(keys + [c for c in table.column_names if c not in keys])
        tables[name] = path_rows(table) if name == "path" else table
    return tables


def _refresh_latest(out: Path) -> None:
    """Rewrite ``latest/*.parquet`` from the published datasets. Caller holds the lock.

    Each file is written under ``.staging`` and renamed over the old one, so a reader
    (Power BI's folder connector, DuckDB) always sees a whole file, old or new.
    """
    tables = _latest_tables(out)
    stage = out / STAGING / f"latest-{secrets.token_hex(4)}"
    try:
        for name, table in tables.items():
            _write_parquet(
                table.replace_schema_metadata({META_SCHEMA_VERSION: str(SCHEMA_VERSION).encode()}),
                stage / f"{name}.parquet",
            )
        (out / LATEST).mkdir(exist_ok=True)
        for name in tables:
            _replace_latest(stage / f"{name}.parquet", out / LATEST / f"{name}.parquet")
        _fsync_path(out / LATEST)
    finally:
        _remove_tree(stage)


def _replace_latest(src: Path, dst: Path) -> None:
    """Rename a staged ``latest/`` file over the old one (atomic; a step tests can fail)."""
    os.replace(src, dst)


def _refresh_latest_after_commit(out: Path) -> None:
    """Refresh ``latest/`` after a commit: the run stands whatever happens here, so a failure
    is logged, not raised (``latest/`` keeps the previous files; ``doctor --repair`` or the
    next official run rebuilds it)."""
    try:
        _refresh_latest(out)
    except Exception as exc:  # noqa: BLE001 - past the commit point
        logger.warning("latest/ was not refreshed (%s: %s); `sma-forecast doctor --repair` "
                       "rebuilds it", type(exc).__name__, exc)  # fmt: skip


def refresh_latest(output_dir: PathLike) -> list[Path]:
    """Rebuild ``<output_dir>/latest/`` under the publication lock (done after every official
    run; call it after removing runs by hand). Returns its files."""
    out = Path(output_dir)
    with exclusive_lock(out):
        _refresh_latest(out)
    return sorted((out / LATEST).glob("*.parquet"))


# --------------------------------------------------------------------------- reports


def report_dir(output_dir: PathLike, as_of_date: dt.date) -> Path:
    """``<outputs>/reports/as_of_date=YYYY-MM-DD``."""
    return Path(output_dir) / REPORTS / f"as_of_date={as_of_date.isoformat()}"


def _swap_in(stage: Path, final: Path) -> None:
    """Replace ``final`` by ``stage`` with renames (the old folder is deleted afterwards)."""
    root = final.parent
    trash = root / TRASH / f"{final.name}-{secrets.token_hex(4)}"
    with exclusive_lock(root):  # the lock helper of the Parquet publication, on reports/.lock
        moved = False
        if final.exists():
            trash.parent.mkdir(parents=True, exist_ok=True)
            _rename(final, trash)
            moved = True
        try:
            _rename(stage, final)
        except BaseException:
            if moved:
                _rename(trash, final)
            raise
    _remove_tree(trash)
    _fsync_path(root)


def remove_report(output_dir: PathLike, as_of_date: dt.date) -> bool:
    """Remove the HTML report of one as-of date (a stale page after a failed rebuild)."""
    final = report_dir(output_dir, as_of_date)
    root = final.parent
    if not final.exists():
        return False
    trash = root / TRASH / f"{final.name}-{secrets.token_hex(4)}"
    with exclusive_lock(root):
        if not final.exists():
            return False
        trash.parent.mkdir(parents=True, exist_ok=True)
        _rename(final, trash)
    _remove_tree(trash)
    return True


def publish_report(
    output_dir: PathLike, as_of_date: dt.date, write: Callable[[Path], None]
) -> Path:
    """Publish the HTML report of one as-of date as a whole folder; returns its final folder.

    ``write(stage)`` renders every file of the report into ``stage``, an empty folder under
    ``<outputs>/reports/.staging/``. The staged folder is then renamed to
    :func:`report_dir` holding ``flock`` on ``<outputs>/reports/.lock``; an earlier report of
    the date is moved to ``reports/.trash/`` and deleted. A half-written report is never
    visible: if ``write`` or the swap fails, the staging folder is removed and the earlier
    report stays.
    """
    final = report_dir(output_dir, as_of_date)
    stage = final.parent / STAGING / f"{final.name}-{secrets.token_hex(4)}"
    stage.mkdir(parents=True)
    try:
        write(stage)
        for path in stage.rglob("*"):
            if path.is_file():
                _fsync_path(path)
        _fsync_tree(stage)
        _swap_in(stage, final)
    except BaseException:
        _remove_tree(stage)
        raise
    return final
