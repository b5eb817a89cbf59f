"""Readers of published outputs: one dataset as a pyarrow table, the latest summary.

Read-only; publication lives in pipeline.outputs.io (which re-exports these for callers).
A damaged or foreign file (truncated Parquet, junk, a stray notes.txt, a file of another
schema) never stops a reader: it is skipped with a one-line warning naming it, and
``sma-forecast doctor --repair`` (run at the start of every run) moves it aside.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.common import PathLike
from pipeline.outputs.layout import FIXED_SCHEMAS, PARTITIONING
from pipeline.outputs.records import SCENARIO_NAME_RE, check_scenario_name
from pipeline.outputs.tables._columns import YEAR_METRIC_RE, metric_year_columns, value_dates

logger = logging.getLogger("sma_forecast.outputs")

_PART_FILE_RE: Final[re.Pattern[str]] = re.compile(r"part-[A-Za-z0-9T_-]+\.parquet")
_YEAR_METRIC_RE: Final[re.Pattern[str]] = YEAR_METRIC_RE
#: Columns added after schema version 1: files without them are still valid; readers fill
#: them (:func:`_upgrade`) or leave them null.
_ADDED_COLUMNS: Final[dict[str, frozenset[str]]] = {
    "runs": frozenset(
        {"run_kind", "overrides", "n_trials_total", "config_hashes", "evidence_hash"}
    ),
    "summary": frozenset({"base_metric", "year", "value_date"}),
    "histograms": frozenset({"base_metric", "year"}),
    "drift": frozenset({"beyond_noise", "cause", "cause_detail"}),
}


def dataset_files(output_dir: PathLike, name: str) -> Iterator[Path]:
    """Every file a reader of ``name`` would see (folders and files starting with ``.`` or
    ``_`` are skipped, as pyarrow does)."""
    root = Path(output_dir) / name
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for filename in sorted(filenames):
            if not filename.startswith((".", "_")):
                yield Path(dirpath, filename)


def file_problem(output_dir: PathLike, name: str, path: Path) -> str | None:
    """Why a reader cannot use ``path`` of dataset ``name`` (None: it looks fine).

    Checks the partition folders, the file name, the Parquet footer and, for datasets with a
    fixed schema, that the file has the contract's columns. Reads the footer only.
    """
    rel = path.relative_to(Path(output_dir) / name)
    keys = PARTITIONING[name].names
    folders = rel.parts[:-1]
    if len(folders) != len(keys):
        return f"not in a {'/'.join(k + '=...' for k in keys)} folder"
    for key, folder in zip(keys, folders, strict=True):
        field, sep, value = folder.partition("=")
        if field != key or not sep:
            return f"folder {folder!r} is not {key}=..."
        if key in ("as_of_date", "run_date"):
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                return f"folder {folder!r} does not hold a date"
        elif key == "scenario" and not SCENARIO_NAME_RE.fullmatch(value):
            return f"folder {folder!r} does not hold a scenario name"
    if not _PART_FILE_RE.fullmatch(path.name):
        return "not a part-<run_id>.parquet file"
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read the footer means damaged
        return f"unreadable Parquet ({type(exc).__name__})"
    expected = FIXED_SCHEMAS.get(name)
    if expected is not None:
        added = _ADDED_COLUMNS.get(name, frozenset())
        missing = [f.name for f in expected if f.name not in schema.names and f.name not in added]
        if missing:
            return f"not a {name} file (no column {missing[0]!r})"
    return None


def _warn_skipped(path: Path, why: str) -> None:
    logger.warning(
        "skipping damaged output %s: %s (sma-forecast doctor --repair moves it aside)", path, why
    )


def read_dataset(
    output_dir: PathLike,
    name: str,
    *,
    columns: Sequence[str] | None = None,
    filter: ds.Expression | None = None,
) -> pa.Table:
    """Read a hive-partitioned dataset with its partition columns typed.

    ``as_of_date`` is date32 and ``scenario`` string. Files under folders starting with
    ``.`` or ``_`` are ignored (pyarrow's default). Returns an empty table with the
    contract's schema when nothing was published yet (except ``trials``, whose columns
    depend on the path years).
    """
    partitioning = PARTITIONING.get(name)
    if partitioning is None:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(PARTITIONING)}")
    path = Path(output_dir) / name
    schema = _dataset_schema(name)
    if not path.exists():
        if schema is None:
            raise FileNotFoundError(path)
        empty = schema.empty_table()
        return empty.select(list(columns)) if columns is not None else empty
    hive = ds.partitioning(partitioning, flavor="hive")
    cols = list(columns) if columns is not None else None
    try:
        if schema is None:  # trials: columns depend on path years, inputs and the version
            schema = _newest_schema(ds.dataset(path, format="parquet", partitioning=hive))
        dataset = ds.dataset(path, format="parquet", schema=schema, partitioning=hive)
        return _upgrade(name, dataset.to_table(columns=cols, filter=filter))
    except (pa.ArrowException, OSError):
        if schema is None:
            raise
    # Slow path, only when a file is damaged: read file by file, skipping the bad ones.
    parts: list[pa.Table] = []
    for file in dataset_files(output_dir, name):
        why = file_problem(output_dir, name, file)
        if why is None:
            try:
                one = ds.dataset(
                    [str(file)], format="parquet", schema=schema, partitioning=hive,
                    partition_base_dir=str(path),
                )  # fmt: skip
                parts.append(one.to_table(columns=cols, filter=filter))
                continue
            except (pa.ArrowException, OSError) as exc:
                why = f"unreadable ({type(exc).__name__})"
        _warn_skipped(file, why)
    if not parts:
        empty = schema.empty_table()
        return empty.select(cols) if cols is not None else empty
    return _upgrade(name, pa.concat_tables(parts))


def _fill(table: pa.Table, name: str, old: pa.Array, values: pa.Array) -> pa.Table:
    """Replace column ``name`` by ``values`` where ``old`` (a boolean mask) is true."""
    at = table.schema.get_field_index(name)
    column = pc.if_else(old, values.cast(table.schema.field(name).type), table.column(name))
    return table.set_column(at, table.schema.field(name), column)


def _upgrade(name: str, table: pa.Table) -> pa.Table:
    """Rows of files of schema version 1 and 2 as version 3 shows them (the columns added in
    version 3 are null in those files): ``runs.n_trials`` per scenario with ``n_trials_total``,
    ``base_metric``/``year`` (and ``value_date``) of summary and histogram rows, and
    ``drift.beyond_noise`` (the old ``flagged``). Columns not selected are left alone."""
    cols = set(table.column_names)
    if table.num_rows == 0:
        return table
    if name == "runs" and {"n_trials", "n_trials_total", "scenarios"} <= cols:
        old = pc.is_null(table.column("n_trials_total"))
        if pc.any(old).as_py():
            total = table.column("n_trials")
            count = pc.list_value_length(pc.split_pattern(table.column("scenarios"), ","))
            per = pc.divide(total, pc.max_element_wise(count.cast(pa.int64()), 1))
            table = _fill(table, "n_trials_total", old, total.combine_chunks())
            table = _fill(table, "n_trials", old, per.combine_chunks())
    if name in ("summary", "histograms") and {"metric", "base_metric", "year"} <= cols:
        old = pc.is_null(table.column("base_metric"))
        if pc.any(old).as_py():
            base, year = metric_year_columns([str(m) for m in table.column("metric").to_pylist()])
            table = _fill(table, "base_metric", old, base)
            table = _fill(table, "year", old, year)
            if {"value_date", "value", "unit", "statistic"} <= cols:
                dates = value_dates(
                    table.column("value").to_numpy(zero_copy_only=False),
                    [str(u) for u in table.column("unit").to_pylist()],
                    [str(u) for u in table.column("statistic").to_pylist()],
                )
                table = _fill(table, "value_date", old, dates)
    if name == "drift" and {"flagged", "beyond_noise"} <= cols:
        old = pc.is_null(table.column("beyond_noise"))
        if pc.any(old).as_py():
            table = _fill(table, "beyond_noise", old, table.column("flagged").combine_chunks())
    return table


def _newest_schema(dataset: ds.FileSystemDataset) -> pa.Schema:
    """The schema of the newest file (the last as-of date), plus the columns only older files
    have: files of several schema versions then read with the current types (int32 years of
    version 3 instead of version 2's float64) and no column is dropped."""
    fragments = sorted(dataset.get_fragments(), key=lambda f: str(f.path))
    if not fragments:
        return dataset.schema
    newest = fragments[-1].physical_schema
    fields = list(newest)
    for fragment in fragments[:-1]:
        fields += [f for f in fragment.physical_schema if f.name not in {g.name for g in fields}]
    partition = [f for f in dataset.schema if f.name not in {g.name for g in fields}]
    return pa.schema(fields + partition)


def _dataset_schema(name: str) -> pa.Schema | None:
    """File schema plus typed partition columns, for the datasets with a fixed schema."""
    if name not in FIXED_SCHEMAS:
        return None
    return pa.schema([*FIXED_SCHEMAS[name], *PARTITIONING[name]])


def _empty_frame(name: str) -> pd.DataFrame:
    schema = _dataset_schema(name)
    if schema is None:
        raise ValueError(f"{name} has no fixed schema")
    return schema.empty_table().to_pandas()


def official_run_ids(output_dir: PathLike) -> list[str]:
    """Run ids of completed official runs (``run_kind`` official, or null: schema version 1)."""
    runs = read_dataset(output_dir, "runs", columns=["run_id", "status", "run_kind"])
    official = pc.and_(
        pc.equal(runs.column("status"), "completed"),
        pc.fill_null(pc.equal(runs.column("run_kind"), "official"), True),
    )
    return [str(r) for r in pc.filter(runs.column("run_id"), official).to_pylist()]


def _latest_keys(output_dir: PathLike, scenario: str | None) -> pd.DataFrame:
    """(scenario, as_of_date, run_id) of the latest official completed run per scenario."""
    where = ds.field("run_id").isin(pa.array(official_run_ids(output_dir), pa.string()))
    if scenario is not None:
        where &= ds.field("scenario") == check_scenario_name(scenario)
    keys = read_dataset(
        output_dir,
        "summary",
        columns=["scenario", "as_of_date", "created_at", "run_id"],
        filter=where,
    ).to_pandas()
    keys = keys.sort_values(["scenario", "as_of_date", "created_at", "run_id"])
    return keys.drop_duplicates("scenario", keep="last")[["scenario", "as_of_date", "run_id"]]


def latest_runs(output_dir: PathLike) -> list[tuple[str, dt.date, str]]:
    """(scenario, as_of_date, run_id) of the latest official completed run of each scenario."""
    keys = _latest_keys(output_dir, None)
    return [(str(s), d, str(r)) for s, d, r in keys.itertuples(index=False)]


def known_scenarios(output_dir: PathLike) -> list[str]:
    """Scenarios with a published summary of an official completed run."""
    return sorted(s for s, _, _ in latest_runs(output_dir))


def path_rows(summary: pa.Table) -> pa.Table:
    """The per-year rows of ``summary`` (metric ``<name>_<year>``) with the year split off:
    ``metric`` holds the name without the year, ``year`` (int32) the year; other columns kept."""
    summary = summary.drop_columns([c for c in ("base_metric", "year") if c in summary.column_names])
    names = summary.column("metric").to_pylist()
    matches = [_YEAR_METRIC_RE.fullmatch(str(n)) for n in names]
    keep = pa.array([m is not None for m in matches], pa.bool_())
    rows = summary.filter(keep)
    found = [m for m in matches if m is not None]
    at = rows.column_names.index("metric")
    rows = rows.set_column(at, "metric", pa.array([m.group(1) for m in found], pa.string()))
    return rows.add_column(at + 1, "year", pa.array([int(m.group(2)) for m in found], pa.int32()))


def latest_summary(output_dir: PathLike, scenario: str | None = None) -> pd.DataFrame:
    """The newest summary per scenario: latest as_of_date, latest official completed run there.

    Only runs whose ``runs`` row says ``completed`` and ``official`` count (what-if runs live
    under ``whatif/``). Columns: those of ``summary`` plus ``as_of_date`` and ``scenario``;
    rows by scenario, then in file order. An unknown ``scenario`` raises ValueError listing
    the known ones (empty frame only when nothing was published yet).
    """
    if scenario is not None:
        check_scenario_name(scenario)
        known = known_scenarios(output_dir)
        if known and scenario not in known:
            raise ValueError(
                f"no published scenario {scenario!r} in {output_dir}; known: {', '.join(known)}"
            )
    chosen = _latest_keys(output_dir, scenario)
    if chosen.empty:
        return _empty_frame("summary")
    run_ids = pa.array(chosen.run_id.tolist(), pa.string())
    rows = read_dataset(output_dir, "summary", filter=ds.field("run_id").isin(run_ids))
    df = rows.to_pandas().merge(chosen, how="inner")
    return df.sort_values("scenario", kind="stable").reset_index(drop=True)
