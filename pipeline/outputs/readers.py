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

logger = logging.getLogger("sma_forecast.outputs")

_PART_FILE_RE: Final[re.Pattern[str]] = re.compile(r"part-[A-Za-z0-9T_-]+\.parquet")


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
        missing = [f.name for f in expected if f.name not in schema.names]
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
        dataset = ds.dataset(path, format="parquet", schema=schema, partitioning=hive)
        return dataset.to_table(columns=cols, filter=filter)
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
    return pa.concat_tables(parts)


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


def latest_summary(output_dir: PathLike, scenario: str | None = None) -> pd.DataFrame:
    """The newest summary per scenario: latest as_of_date, latest completed run there.

    Only runs whose ``runs`` row says ``completed`` count. Columns: those of ``summary``
    plus ``as_of_date`` and ``scenario``; rows by scenario, then in file order.
    """
    runs = read_dataset(output_dir, "runs", columns=["run_id", "status"])
    completed = pc.filter(runs.column("run_id"), pc.equal(runs.column("status"), "completed"))
    where = ds.field("run_id").isin(pa.array(completed.to_pylist(), pa.string()))
    if scenario is not None:
        where &= ds.field("scenario") == check_scenario_name(scenario)
    keys = read_dataset(
        output_dir,
        "summary",
        columns=["scenario", "as_of_date", "created_at", "run_id"],
        filter=where,
    ).to_pandas()
    if keys.empty:
        return _empty_frame("summary")
    chosen = keys.sort_values(["scenario", "as_of_date", "created_at", "run_id"]).drop_duplicates(
        "scenario", keep="last"
    )
    run_ids = pa.array(chosen.run_id.tolist(), pa.string())
    rows = read_dataset(output_dir, "summary", filter=ds.field("run_id").isin(run_ids))
    df = rows.to_pandas().merge(chosen[["scenario", "as_of_date", "run_id"]], how="inner")
    return df.sort_values("scenario", kind="stable").reset_index(drop=True)
