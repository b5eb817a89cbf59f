"""Readers of published outputs: one dataset as a pyarrow table, the latest summary.

Read-only; publication lives in pipeline.outputs.io (which re-exports these for callers).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from collections.abc import Sequence

from pipeline.common import PathLike
from pathlib import Path

from pipeline.outputs.layout import FIXED_SCHEMAS, PARTITIONING
from pipeline.outputs.records import check_scenario_name



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
    dataset = ds.dataset(
        path,
        format="parquet",
        schema=schema,
        partitioning=ds.partitioning(partitioning, flavor="hive"),
    )
    return dataset.to_table(columns=list(columns) if columns is not None else None, filter=filter)


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
