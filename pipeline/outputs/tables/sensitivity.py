"""Table builder of the ``sensitivity`` dataset: rank (Spearman, tornado) and Sobol' rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa

from pipeline.analysis.rank_sensitivity import SensitivityRow
from pipeline.outputs.schema import SENSITIVITY_SCHEMA
from pipeline.outputs.tables._columns import common_columns, float_column


def to_sensitivity_frame(
    rows: Sequence[SensitivityRow], *, run_id: str, created_at: dt.datetime
) -> pa.Table:
    """The ``sensitivity`` dataset rows of one scenario (schema.SENSITIVITY_SCHEMA).

    ``rows`` come from ``pipeline.analysis.rank_sensitivity`` and ``pipeline.analysis.sobol``.
    Partition values (as_of_date, scenario) are not columns: they go in the folder names.
    """
    cols = common_columns(run_id, created_at, len(rows))
    cols.update(
        metric=pa.array([r.metric for r in rows], pa.string()),
        input=pa.array([r.input for r in rows], pa.string()),
        method=pa.array([r.method for r in rows], pa.string()),
        statistic=pa.array([r.statistic for r in rows], pa.string()),
        value=float_column([r.value for r in rows]),
        ci_low=float_column([r.ci_low for r in rows]),
        ci_high=float_column([r.ci_high for r in rows]),
        input_value=float_column([r.input_value for r in rows]),
        n_trials=pa.array([r.n_trials for r in rows], pa.int64()),
        rank=pa.array([r.rank for r in rows], pa.int32()),
        unit=pa.array([r.unit for r in rows], pa.string()),
        input_unit=pa.array([r.input_unit for r in rows], pa.string()),
    )
    return pa.table([cols[f.name] for f in SENSITIVITY_SCHEMA], schema=SENSITIVITY_SCHEMA)
