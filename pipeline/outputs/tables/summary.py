"""Table builder of the ``summary`` dataset: the statistics of a merged block summary."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from pipeline.analysis.accumulators import BlockSummary
from pipeline.analysis.statistics import summary_rows
from pipeline.outputs.schema import SUMMARY_SCHEMA
from pipeline.outputs.tables._columns import (
    common_columns,
    float_column,
    metric_year_columns,
    value_dates,
)


def to_summary_frame(summary: BlockSummary, *, run_id: str, created_at: dt.datetime) -> pa.Table:
    """The ``summary`` dataset rows of one scenario (schema.SUMMARY_SCHEMA).

    Per-year metrics (``contribution_krw_bn_2028``) also carry ``base_metric``
    (``contribution_krw_bn``) and ``year`` (2028); month-index values a ``value_date``.
    Partition values (as_of_date, scenario) are not columns: pass them to ``io.publish_run``.
    """
    rows = summary_rows(summary)
    cols = common_columns(run_id, created_at, len(rows))
    metrics = [r.metric for r in rows]
    base_metric, year = metric_year_columns(metrics)
    cols.update(
        metric=pa.array([r.metric for r in rows], pa.string()),
        statistic=pa.array([r.statistic for r in rows], pa.string()),
        value=float_column([r.value for r in rows]),
        mc_standard_error=float_column([r.mc_standard_error for r in rows]),
        n_trials=pa.array([r.n_trials for r in rows], pa.int64()),
        unit=pa.array([r.unit for r in rows], pa.string()),
        quantile_error_bound=float_column([r.quantile_error_bound for r in rows]),
        base_metric=base_metric,
        year=year,
        value_date=value_dates(
            [r.value for r in rows], [r.unit for r in rows], [r.statistic for r in rows]
        ),
    )
    return pa.table([cols[f.name] for f in SUMMARY_SCHEMA], schema=SUMMARY_SCHEMA)
