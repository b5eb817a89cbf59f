"""The ``backtest`` dataset: scored backtest forecasts as a pyarrow.Table of BACKTEST_SCHEMA.

The rows come from :func:`pipeline.backtest.score_rows` as plain mappings (one per case, target,
forecaster and score); this module adds the run's columns and applies the schema. It never
imports pipeline.backtest (that layer sits above this one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Final

import pyarrow as pa

from pipeline.outputs.schema import BACKTEST_SCHEMA, SCHEMA_VERSION

#: Columns the builder fills in for every row (the same for the whole run).
RUN_COLUMNS: Final[tuple[str, ...]] = ("run_id", "schema_version", "created_at")
#: Columns each scored row must carry, in schema order.
ROW_COLUMNS: Final[tuple[str, ...]] = tuple(
    name for name in BACKTEST_SCHEMA.names if name not in RUN_COLUMNS
)


def build_backtest_table(
    rows: Iterable[Mapping[str, Any]], *, run_id: str, created_at: dt.datetime
) -> pa.Table:
    """One table row per scored row, with :data:`BACKTEST_SCHEMA`.

    Parameters
    ----------
    rows : mappings with exactly the keys :data:`ROW_COLUMNS` (e.g.
        ``dataclasses.asdict`` of :class:`pipeline.backtest.ScoreRow`).
    run_id : id stored in every row.
    created_at : timestamp of the rows (UTC).

    Raises
    ------
    ValueError : a row lacks a column or has one the schema does not know.
    """
    expected = set(ROW_COLUMNS)
    records: list[dict[str, Any]] = []
    for row in rows:
        if set(row) != expected:
            missing = sorted(expected - set(row))
            unknown = sorted(set(row) - expected)
            raise ValueError(f"backtest row: missing columns {missing}, unknown {unknown}")
        records.append(
            {"run_id": run_id, **row, "schema_version": SCHEMA_VERSION, "created_at": created_at}
        )
    return pa.Table.from_pylist(records, schema=BACKTEST_SCHEMA)
